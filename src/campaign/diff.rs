//! What a changed campaign file changes, key by key, in words: `campaign
//! apply` prints it before (and, with `--dry-run`, instead of) applying.

use super::definition::Campaign;
use super::describe;
use serde::Serialize;

/// One changed key: `from` and `to` in words; `""` for a step added or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `due`, `starts_at`, `send_window`, `audience`, `step "reminder-1"`, ...
    pub key: String,
    pub from: String,
    pub to: String,
}

/// The keys that differ between the stored campaign and the new file.
pub fn changes(old: &Campaign, new: &Campaign) -> Vec<Change> {
    let mut out = Vec::new();
    let mut compare = |key: &str, from: String, to: String| {
        if from != to {
            out.push(Change {
                key: key.to_string(),
                from,
                to,
            });
        }
    };
    compare("name", old.name.clone(), new.name.clone());
    compare(
        "starts_at",
        old.starts_at.to_rfc3339(),
        new.starts_at.to_rfc3339(),
    );
    compare("due", describe::due(old.due), describe::due(new.due));
    compare(
        "send_window",
        describe::window(&old.send_window),
        describe::window(&new.send_window),
    );
    compare(
        "max_per_hour",
        describe::limit(old.max_per_hour),
        describe::limit(new.max_per_hour),
    );
    compare(
        "spread",
        describe::spread(old.spread),
        describe::spread(new.spread),
    );
    compare(
        "audience",
        describe::audience(&old.audience),
        describe::audience(&new.audience),
    );
    compare("course_url", old.course_url.clone(), new.course_url.clone());
    compare(
        "video_url",
        old.video_url.clone().unwrap_or_default(),
        new.video_url.clone().unwrap_or_default(),
    );
    compare("contact", old.contact.to_string(), new.contact.to_string());
    compare(
        "completion_link",
        old.completion_link.to_string(),
        new.completion_link.to_string(),
    );
    for step in &old.steps {
        let to = new.step(&step.name).map(describe::step).unwrap_or_default();
        compare(&format!("step {:?}", step.name), describe::step(step), to);
    }
    for step in new.steps.iter().filter(|s| old.step(&s.name).is_none()) {
        compare(
            &format!("step {:?}", step.name),
            String::new(),
            describe::step(step),
        );
    }
    out
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.from.is_empty(), self.to.is_empty()) {
            (true, _) => write!(f, "{}: added ({})", self.key, self.to),
            (_, true) => write!(f, "{}: removed (was {})", self.key, self.from),
            _ => write!(f, "{}: {} -> {}", self.key, self.from, self.to),
        }
    }
}
