//! What templates see. One struct for every step, every field always present
//! (empty when it does not apply), so strict mode can catch typos in templates
//! without tripping over optional data. templates/email/README.md lists them.

use crate::campaign::{Campaign, Recipient, Step};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// The parts of a [`MessageContext`] that differ from one message to the
/// next, as paths from its root; the rest is the same for every message of a
/// step on a given day. Composition renders what is the same once and fills
/// these in (where the template only prints them).
pub const PER_MESSAGE: &[&[&str]] = &[
    &["person"],
    &["links"],
    &["pixel_url"],
    &["campaign", "due_date"],
    &["manager"],
];

#[derive(Debug, Clone, Serialize)]
pub struct MessageContext {
    pub organisation: Organisation,
    pub person: Person,
    pub campaign: CampaignView,
    pub links: Links,
    pub pixel_url: String,
    pub step: StepView,
    pub manager: Manager,
    pub overdue: Vec<OverduePerson>,
    pub overdue_count: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Organisation {
    pub name: String,
}

/// The recipient (for a manager digest: the manager, as far as the roster knows them).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Person {
    pub first_name: String,
    pub last_name: String,
    pub full_name: String,
    pub email: String,
    pub department: String,
    pub role: String,
    pub facility: String,
    pub attributes: BTreeMap<String, String>,
}

impl Person {
    pub fn new(first_name: &str, last_name: &str, email: &str) -> Self {
        Self {
            first_name: first_name.to_string(),
            last_name: last_name.to_string(),
            full_name: full_name(first_name, last_name),
            email: email.to_string(),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CampaignView {
    pub slug: String,
    pub name: String,
    pub contact: String,
    pub due_date: String,
    pub days_left: i64,
    pub has_video: bool,
}

/// The message's links; made by `tracking`, which signs them.
pub use crate::tracking::Links;

#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Manager {
    pub full_name: String,
    pub email: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OverduePerson {
    pub full_name: String,
    pub email: String,
    pub department: String,
    pub role: String,
    pub due_date: String,
    pub days_overdue: i64,
}

/// "Ann Lee", or whichever half is known.
pub fn full_name(first: &str, last: &str) -> String {
    format!("{} {}", first.trim(), last.trim())
        .trim()
        .to_string()
}

/// Dates as people read them: "Friday, 12 February 2027".
pub fn human_date(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz).format("%A, %-d %B %Y").to_string()
}

/// Whole days from `now` until `due`, rounded up (negative when overdue).
pub fn days_until(due: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let secs = (due - now).num_seconds();
    if secs >= 0 {
        (secs + 86_399) / 86_400
    } else {
        -((-secs) / 86_400)
    }
}

impl CampaignView {
    pub fn new(
        campaign: &Campaign,
        due: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        tz: chrono_tz::Tz,
    ) -> Self {
        Self {
            slug: campaign.slug.clone(),
            name: campaign.name.clone(),
            contact: campaign.contact.to_string(),
            due_date: due.map(|d| human_date(d, tz)).unwrap_or_default(),
            days_left: due.map(|d| days_until(d, now)).unwrap_or(0),
            has_video: campaign.video_url.is_some(),
        }
    }
}

/// A complete context with made-up values, used to check templates when a campaign is applied.
pub fn sample_context(campaign: &Campaign, step: &Step) -> MessageContext {
    let now = campaign.starts_at.with_timezone(&Utc);
    let due = now + chrono::Duration::days(30);
    let tz = chrono_tz::UTC;
    let mut person = Person::new("Sample", "Person", "sample.person@example.org");
    person.department = "Supply Chain".into();
    let digest = step.to == Recipient::Manager;
    MessageContext {
        organisation: Organisation {
            name: "Example Health".into(),
        },
        person,
        campaign: CampaignView::new(campaign, Some(due), now, tz),
        links: Links {
            course: campaign.course_url.clone(),
            video: campaign.video_url.clone().unwrap_or_default(),
            complete: if campaign.completion_link {
                "https://example.org/complete".into()
            } else {
                String::new()
            },
        },
        pixel_url: String::new(),
        step: StepView {
            name: step.name.clone(),
        },
        manager: if digest {
            Manager {
                full_name: "Sample Manager".into(),
                email: "manager@example.org".into(),
            }
        } else {
            Manager::default()
        },
        overdue: if digest {
            vec![OverduePerson {
                full_name: "Sample Person".into(),
                email: "sample.person@example.org".into(),
                department: "Supply Chain".into(),
                role: "Buyer".into(),
                due_date: human_date(due, tz),
                days_overdue: 3,
            }]
        } else {
            Vec::new()
        },
        overdue_count: usize::from(digest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_up_and_go_negative() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(days_until(now + chrono::Duration::hours(1), now), 1);
        assert_eq!(days_until(now + chrono::Duration::days(2), now), 2);
        assert_eq!(days_until(now - chrono::Duration::days(3), now), -3);
    }

    #[test]
    fn full_name_tolerates_a_missing_half() {
        assert_eq!(full_name("Ann", ""), "Ann");
        assert_eq!(full_name(" Ann ", "Lee"), "Ann Lee");
    }
}
