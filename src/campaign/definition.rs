//! The campaign file (TOML) as types. Parsing is strict: unknown keys,
//! malformed offsets, duplicate step names and unsafe URLs fail with the key
//! and what to write instead.

use super::audience::Audience;
use super::window::SendWindow;
use crate::domain::{EmailAddress, HumanDuration};
use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A whole campaign, as applied from its file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// Stable identifier used on the command line and in dedupe keys.
    pub slug: String,
    pub name: String,
    /// Where "Start the course" goes.
    pub course_url: String,
    /// The call-to-action video, if any.
    #[serde(default)]
    pub video_url: Option<String>,
    /// Reply-to address and the "questions?" line.
    pub contact: EmailAddress,
    /// RFC 3339, e.g. "2027-01-11T09:00:00-05:00".
    pub starts_at: DateTime<FixedOffset>,
    pub due: Due,
    #[serde(default)]
    pub audience: Audience,
    #[serde(default)]
    pub send_window: SendWindow,
    /// At most this many of the campaign's messages placed in any one clock
    /// hour (UTC), paced evenly through the hour (0 or absent: no limit).
    /// A message goes to the first hour with room at or after its own time;
    /// see `campaign::placement`.
    #[serde(default)]
    pub max_per_hour: Option<u32>,
    /// Each message's own time is its due time plus a stable share of this
    /// (0 to `spread`), so a step due for many people at once goes out evenly.
    #[serde(default)]
    pub spread: Option<HumanDuration>,
    /// Offer a self-attested "I have completed it" link.
    #[serde(default)]
    pub completion_link: bool,
    pub steps: Vec<Step>,
}

/// When a person's training is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// This long after the person's enrolment.
    AfterEnrolment(HumanDuration),
    /// The end of this day, in the organisation's time zone.
    Date(NaiveDate),
}

/// One message of the campaign.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    /// When, relative to enrolment or the due date; absent for `on` steps.
    #[serde(default)]
    pub at: Option<Offset>,
    /// An event that triggers the step instead of a time.
    #[serde(default)]
    pub on: Option<Trigger>,
    /// Template name in templates/email (news_item, reminder, escalation, thanks).
    pub template: String,
    #[serde(default)]
    pub to: Recipient,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Completion,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Recipient {
    /// The enrolled person.
    #[default]
    Person,
    /// The person's manager: one digest per manager listing their overdue people.
    Manager,
}

/// `7d` (after enrolment), `due-2d` or `due+1d` (around the due date).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    AfterEnrolment(HumanDuration),
    BeforeDue(HumanDuration),
    AfterDue(HumanDuration),
}

impl Offset {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        let hint = "write e.g. \"0s\", \"7d\", \"due-2d\" or \"due+1d\"";
        if let Some(rest) = s.strip_prefix("due") {
            let rest = rest.trim_start();
            if let Some(d) = rest.strip_prefix('-') {
                return HumanDuration::parse(d)
                    .map(Offset::BeforeDue)
                    .map_err(|_| format!("`{raw}` is not an offset; {hint}"));
            }
            if let Some(d) = rest.strip_prefix('+') {
                return HumanDuration::parse(d)
                    .map(Offset::AfterDue)
                    .map_err(|_| format!("`{raw}` is not an offset; {hint}"));
            }
            if rest.is_empty() {
                return Ok(Offset::AfterDue(HumanDuration::from_secs(0)));
            }
        }
        HumanDuration::parse(s)
            .map(Offset::AfterEnrolment)
            .map_err(|_| format!("`{raw}` is not an offset; {hint}"))
    }

    /// The instant this offset names for one enrolment.
    pub fn resolve(
        self,
        enrolled_at: DateTime<chrono::Utc>,
        due_at: DateTime<chrono::Utc>,
    ) -> DateTime<chrono::Utc> {
        // Saturates instead of panicking; `check` keeps real files far from it.
        let far = chrono::DateTime::<chrono::Utc>::MAX_UTC;
        match self {
            Offset::AfterEnrolment(d) => enrolled_at.checked_add_signed(d.as_chrono()),
            Offset::BeforeDue(d) => due_at.checked_sub_signed(d.as_chrono()),
            Offset::AfterDue(d) => due_at.checked_add_signed(d.as_chrono()),
        }
        .unwrap_or(far)
    }

    fn duration(self) -> HumanDuration {
        match self {
            Offset::AfterEnrolment(d) | Offset::BeforeDue(d) | Offset::AfterDue(d) => d,
        }
    }
}

/// The longest due period or step offset a campaign may name. A rollout is
/// months long; a typo such as "99999999999d" must be an error naming the
/// key, not a date past the end of the calendar.
const MAX_TIMING_DAYS: u64 = 3650;

impl std::fmt::Display for Offset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Offset::AfterEnrolment(d) => write!(f, "{d}"),
            Offset::BeforeDue(d) => write!(f, "due-{d}"),
            Offset::AfterDue(d) => write!(f, "due+{d}"),
        }
    }
}

macro_rules! string_serde {
    ($t:ty, $parse:expr) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                $parse(&raw).map_err(serde::de::Error::custom)
            }
        }
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}
string_serde!(Offset, Offset::parse);
string_serde!(Due, Due::parse);

impl Due {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Ok(date) = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d") {
            return Ok(Due::Date(date));
        }
        HumanDuration::parse(raw)
            .map(Due::AfterEnrolment)
            .map_err(|_| format!("due = `{raw}` is neither a duration after enrolment (\"30d\") nor a date (\"2027-02-28\")"))
    }

    /// A person's due instant: relative to their enrolment, or the end of the
    /// due date in the organisation's time zone.
    pub fn resolve(
        self,
        enrolled_at: DateTime<chrono::Utc>,
        tz: chrono_tz::Tz,
    ) -> DateTime<chrono::Utc> {
        use chrono::TimeZone;
        match self {
            Due::AfterEnrolment(d) => enrolled_at
                .checked_add_signed(d.as_chrono())
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC),
            Due::Date(date) => {
                let end = date.and_hms_opt(23, 59, 59).unwrap_or_default();
                tz.from_local_datetime(&end)
                    .earliest()
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .unwrap_or_else(|| end.and_utc())
            }
        }
    }
}

impl std::fmt::Display for Due {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Due::AfterEnrolment(d) => write!(f, "{d}"),
            Due::Date(date) => write!(f, "{}", date.format("%Y-%m-%d")),
        }
    }
}

/// Why a campaign file cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

impl Campaign {
    /// Parses and checks a campaign file's text.
    pub fn from_toml(text: &str, file: &str) -> Result<Self, DefinitionError> {
        let invalid = |message: String| DefinitionError::Invalid {
            file: file.to_string(),
            message,
        };
        let campaign: Campaign =
            toml::from_str(text).map_err(|e| invalid(e.to_string().trim_end().to_string()))?;
        campaign.check().map_err(invalid)?;
        Ok(campaign)
    }

    fn check(&self) -> Result<(), String> {
        let slug_ok = !self.slug.is_empty()
            && self.slug.len() <= 64
            && self
                .slug
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !slug_ok {
            return Err(format!(
                "slug = {:?}: use 1-64 lower-case letters, digits and dashes, e.g. \"soar-2027\"",
                self.slug
            ));
        }
        if self.name.trim().is_empty() || self.name.chars().any(char::is_control) {
            return Err("name must be a non-empty line of text".into());
        }
        check_url("course_url", &self.course_url)?;
        if let Some(video) = &self.video_url {
            check_url("video_url", video)?;
        }
        self.check_timings()?;
        if self.steps.is_empty() {
            return Err("the campaign has no [[steps]]; add at least the announcement".into());
        }
        let mut names = BTreeSet::new();
        for step in &self.steps {
            let key = format!("step {:?}", step.name);
            if step.name.is_empty()
                || !step
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "{key}: a step name uses letters, digits, '-' and '_' only"
                ));
            }
            if !names.insert(step.name.as_str()) {
                return Err(format!("{key} appears twice; step names must be unique"));
            }
            match (step.at, step.on) {
                (Some(_), Some(_)) => return Err(format!("{key} has both `at` and `on`; use one")),
                (None, None) => {
                    return Err(format!(
                        "{key} needs `at = \"7d\"` (or \"due-2d\") or `on = \"completion\"`"
                    ))
                }
                _ => {}
            }
            if step.to == Recipient::Manager && step.on.is_some() {
                return Err(format!(
                    "{key}: a manager digest runs at a time (`at`), not on completion"
                ));
            }
        }
        for (field, rule) in self.audience.include.iter().chain(&self.audience.exclude) {
            if rule.is_empty() {
                return Err(format!(
                    "audience: {field} lists no values; remove it or name at least one"
                ));
            }
        }
        if let Some(spread) = self.spread {
            if spread.as_std().as_secs() > 7 * 86_400 {
                return Err("spread is longer than 7 days; use a shorter spread".into());
            }
        }
        self.check_feasible()
    }

    /// Every due period and step offset within [`MAX_TIMING_DAYS`], and a
    /// due date in a plausible range, so every date of the campaign exists.
    fn check_timings(&self) -> Result<(), String> {
        let too_long = |d: HumanDuration| d.as_std().as_secs() > MAX_TIMING_DAYS * 86_400;
        match self.due {
            Due::AfterEnrolment(d) if too_long(d) => {
                return Err(format!(
                    "due is longer than {MAX_TIMING_DAYS} days ({d}); write e.g. \"30d\""
                ))
            }
            Due::Date(date) if !(2000..=2999).contains(&chrono::Datelike::year(&date)) => {
                return Err(format!(
                    "due = \"{date}\" is not a date this campaign can run to; write e.g. \"2027-02-28\""
                ))
            }
            _ => {}
        }
        for step in &self.steps {
            if let Some(at) = step.at.filter(|at| too_long(at.duration())) {
                return Err(format!(
                    "step {:?}: at is further than {MAX_TIMING_DAYS} days ({at}); write e.g. \"7d\" or \"due-2d\"",
                    step.name
                ));
            }
        }
        Ok(())
    }

    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }
}

/// Links in emails must be absolute http(s) URLs with nothing that could break out of an attribute.
fn check_url(key: &str, url: &str) -> Result<(), String> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://x".len()
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>' | '`'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{key} = {url:?} must be an absolute http:// or https:// URL without spaces or quotes"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_in_all_three_forms() {
        assert_eq!(
            Offset::parse("7d").unwrap(),
            Offset::AfterEnrolment(HumanDuration::parse("7d").unwrap())
        );
        assert_eq!(
            Offset::parse("due-2d").unwrap(),
            Offset::BeforeDue(HumanDuration::parse("2d").unwrap())
        );
        assert_eq!(
            Offset::parse("due+1d").unwrap(),
            Offset::AfterDue(HumanDuration::parse("1d").unwrap())
        );
        assert!(Offset::parse("tomorrow").unwrap_err().contains("due-2d"));
    }

    #[test]
    fn the_shipped_soar_campaign_parses() {
        let text = include_str!("../../config/campaigns/soar.toml");
        let campaign = Campaign::from_toml(text, "soar.toml").unwrap();
        assert_eq!(
            campaign.steps.first().map(|s| s.template.as_str()),
            Some("news_item")
        );
    }

    #[test]
    fn duplicate_step_names_are_refused() {
        let text = r#"
slug = "x"
name = "X"
course_url = "https://example.org/c"
contact = "a@example.org"
starts_at = "2027-01-11T09:00:00-05:00"
due = "30d"
[[steps]]
name = "a"
at = "0s"
template = "news_item"
[[steps]]
name = "a"
at = "1d"
template = "reminder"
"#;
        let err = Campaign::from_toml(text, "x.toml").unwrap_err().to_string();
        assert!(err.contains("appears twice"), "{err}");
    }

    #[test]
    fn javascript_urls_are_refused() {
        assert!(check_url("course_url", "javascript:alert(1)").is_err());
        assert!(check_url("course_url", "https://x.org/\"onclick").is_err());
    }

    #[test]
    fn timings_past_the_calendar_are_refused_naming_the_key() {
        let shipped = include_str!("../../config/campaigns/soar.toml");
        for (from, to, expected) in [
            (
                "at = \"7d\"",
                "at = \"99999999999d\"",
                "step \"reminder-1\": at is further than 3650 days",
            ),
            (
                "at = \"due+1d\"",
                "at = \"due+5000000y\"",
                "step \"escalation\": at is further than 3650 days",
            ),
            (
                "due = \"30d\"",
                "due = \"4000d\"",
                "due is longer than 3650 days",
            ),
            (
                "due = \"30d\"",
                "due = \"9999-12-31\"",
                "due = \"9999-12-31\" is not a date",
            ),
        ] {
            let text = shipped.replacen(from, to, 1);
            let err = Campaign::from_toml(&text, "soar.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{to}: {err}");
        }
    }

    #[test]
    fn resolving_a_huge_offset_saturates_instead_of_panicking() {
        let at = chrono::DateTime::<chrono::Utc>::MAX_UTC - chrono::Duration::days(1);
        let offset = Offset::parse("due+30d").unwrap();
        assert_eq!(
            offset.resolve(at, at),
            chrono::DateTime::<chrono::Utc>::MAX_UTC
        );
    }
}
