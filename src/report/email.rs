//! The weekly summary and the team digest as email: rendered through the
//! same strict handlebars templates as the staff emails (`weekly_summary`
//! and `team_digest`, overridable from `templates.dir`), so an organisation
//! can change their wording, and a template that names a missing figure is
//! refused when it is loaded, not when the summary is due.

use crate::delivery::{header_safe, RenderedEmail, TemplateError, Templates};
use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use serde_json::{json, Value};

/// The template of the weekly summary.
pub const WEEKLY: &str = "weekly_summary";
/// The template of a manager's team digest.
pub const TEAM: &str = "team_digest";

/// Who sends a report and when: the headers every report shares.
pub struct Envelope<'a> {
    pub from: &'a Mailbox,
    pub to: Vec<Mailbox>,
    pub now: DateTime<Utc>,
    /// `weekly` or `team`: the Message-ID's prefix.
    pub kind: &'a str,
    pub domain: &'a str,
}

impl Envelope<'_> {
    fn builder(&self, subject: &str) -> anyhow::Result<lettre::message::MessageBuilder> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(header_safe(subject))
            .date(self.now.into())
            .message_id(Some(format!(
                "<{}.{}@{}>",
                self.kind,
                uuid::Uuid::new_v4().simple(),
                self.domain
            )));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        Ok(builder)
    }
}

/// A text and HTML message; the HTML may carry the chart as an inline PNG
/// the template shows with `cid:completion-chart`.
pub fn message(
    envelope: &Envelope<'_>,
    email: RenderedEmail,
    chart: Option<Vec<u8>>,
) -> anyhow::Result<Message> {
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(email.text);
    let html = SinglePart::builder()
        .header(ContentType::TEXT_HTML)
        .body(email.html);
    let alternative = MultiPart::alternative().singlepart(text);
    let alternative = match chart {
        Some(png) => {
            let chart = Attachment::new_inline("completion-chart".to_string())
                .body(png, ContentType::parse("image/png")?);
            alternative.multipart(MultiPart::related().singlepart(html).singlepart(chart))
        }
        None => alternative.singlepart(html),
    };
    Ok(envelope.builder(&email.subject)?.multipart(alternative)?)
}

/// Renders both report templates with sample figures, so a broken override
/// in `templates.dir` stops the start or the reload, as a broken campaign
/// template does.
pub fn check(templates: &Templates) -> Result<(), TemplateError> {
    templates.render_data(WEEKLY, &sample_weekly())?;
    templates.render_data(TEAM, &sample_team())?;
    Ok(())
}

/// The parts every report context shares with the staff emails' layout.
pub fn common(org: &str, name: &str, slug: &str, contact: &str) -> Value {
    json!({
        "organisation": { "name": org },
        "campaign": { "name": name, "slug": slug, "contact": contact },
        "pixel_url": "",
    })
}

/// Adds `extra`'s keys to `base` (both objects).
pub fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

fn sample_weekly() -> Value {
    let row = json!({ "label": "Completed", "meaning": "people", "value": "1", "change": "+1" });
    let week = json!({ "week_ending": "1 March 2027", "completed": 1, "target": 2 });
    merge(
        common("Org", "Course", "course", "contact@example.org"),
        json!({
            "as_of": "Monday 1 March 2027",
            "figures": { "completed": 1, "enrolled": 2, "overdue": 1, "completion_percent": "50%" },
            "headline": [row],
            "chart": { "alt": "alt", "description": "words", "width": 600, "height": 300 },
            "weeks": [week],
            "behind": [{ "group": "Ward", "rate": "50%" }],
            "reach": { "messages_sent": 1, "people_reached": 1, "people_undeliverable": 0, "people_bounced": 0, "opened": 1, "clicked": 1 },
            "next": "Nothing is scheduled.",
        }),
    )
}

fn sample_team() -> Value {
    let person = json!({ "full_name": "A B", "email": "a@example.org", "status": "open", "due_date": "1 March 2027" });
    merge(
        common("Org", "Course", "course", "contact@example.org"),
        json!({
            "manager": { "email": "m@example.org" },
            "counts": { "completed": 0, "open": 1, "overdue": 0, "total": 1 },
            "team": [person],
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_report_templates_render() {
        check(&Templates::embedded().unwrap()).unwrap();
    }
}
