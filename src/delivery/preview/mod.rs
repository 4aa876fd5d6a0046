//! Previews that tell the truth: one step rendered for one person as of that
//! step's own send time, with the campaign's real due rule. A sample person
//! is enrolled the way the planner enrols people (at the start, or now for a
//! late joiner); a named person gets exactly what their enrolment, due date
//! and manager make of the step, or a [`NoMessage`] saying why they get
//! nothing. `campaign preview` and the admin campaign page both call
//! [`Composer::preview_step`], so they never disagree.

mod digest;
mod person;

use super::compose::Composer;
use super::context::{days_until, human_date, MessageContext, OverduePerson, Person};
use crate::campaign::{Campaign, Recipient, Step};
use chrono::{DateTime, Utc};

/// One step rendered for one person, as of the moment it is (or would be) sent.
#[derive(Debug, Clone)]
pub struct Preview {
    pub context: MessageContext,
    pub template: String,
    /// When the message goes out; "days left" and "days overdue" are as of this instant.
    pub at: DateTime<Utc>,
    /// How `at` was found, for the reader: "sent …", "the step is at due-2d", …
    pub timing: String,
    /// True when this message already went out (it stands whatever happens next).
    pub sent: bool,
}

/// Why a person gets nothing from a step: each is a plain sentence for the
/// command line's stderr and the admin page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoMessage {
    #[error("nobody in the roster has the address {email}; `ambassador roster list` shows who is")]
    UnknownPerson { email: String },
    #[error("{email} is not in the audience of campaign {campaign} (department {department:?}, role {role:?}, facility {facility:?}), so they get nothing from it")]
    OutsideAudience {
        email: String,
        campaign: String,
        department: String,
        role: String,
        facility: String,
    },
    #[error("{email} is not active in the roster and was never enrolled in campaign {campaign}, so they get nothing from it")]
    Inactive { email: String, campaign: String },
    #[error(
        "{email} left the roster on {date}, so they get nothing more from campaign {campaign}"
    )]
    Left {
        email: String,
        campaign: String,
        date: String,
    },
    #[error("{email} completed campaign {campaign} on {date}; the {step:?} step is not sent after completion")]
    Completed {
        email: String,
        campaign: String,
        step: String,
        date: String,
    },
    #[error("{email} is exempt from campaign {campaign} ({reason}), so they get nothing from it")]
    Exempted {
        email: String,
        campaign: String,
        reason: String,
    },
    #[error("{email} gets no {step:?} message: a later step fell due at the same time, and only one goes out at once")]
    Skipped { email: String, step: String },
    #[error("{email}'s {step:?} message was cancelled ({reason}), so they get none")]
    Cancelled {
        email: String,
        step: String,
        reason: String,
    },
    #[error("campaign {campaign} was cancelled, so {email} gets nothing more from it")]
    CampaignCancelled { email: String, campaign: String },
    #[error("the {step:?} step goes to managers, and {email} has nobody still to complete campaign {campaign}{hint}")]
    NotAManager {
        email: String,
        step: String,
        campaign: String,
        /// Names the person's own manager, who gets the digest about them.
        hint: String,
    },
    #[error("the {step:?} step goes to managers, and none of {email}'s people is overdue in campaign {campaign} when it is sent")]
    NobodyOverdue {
        email: String,
        step: String,
        campaign: String,
    },
}

/// A preview, or why there is nothing to preview.
pub type PreviewOutcome = Result<Preview, NoMessage>;

impl Composer {
    /// One step of `campaign` for `to` (an address in the roster), or for a
    /// sample person when `to` is `None`, as of the step's own send time.
    /// The outer error is a failure (unknown step, database); the inner one
    /// says why this person gets nothing.
    pub async fn preview_step(
        &self,
        campaign_id: i64,
        campaign: &Campaign,
        step_name: &str,
        to: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<PreviewOutcome> {
        let step = campaign.step(step_name).ok_or_else(|| {
            let names: Vec<&str> = campaign.steps.iter().map(|s| s.name.as_str()).collect();
            anyhow::Error::from(crate::problem::Problem::NotFound(format!(
                "campaign {} has no step {step_name:?}; its steps are: {}",
                campaign.slug,
                names.join(", ")
            )))
        })?;
        let Some(email) = to else {
            return Ok(Ok(self.sample_preview(campaign, step, now)));
        };
        let email = email.trim().to_lowercase();
        let Some(staff) = self.store().staff_by_email(&email).await? else {
            return Ok(Err(NoMessage::UnknownPerson { email }));
        };
        let cancelled = self
            .store()
            .campaign_by_id(campaign_id)
            .await?
            .is_some_and(|row| row.status == crate::campaign::Status::Cancelled);
        let nothing_more = NoMessage::CampaignCancelled {
            email: staff.email.clone(),
            campaign: campaign.slug.clone(),
        };
        if step.to == Recipient::Manager {
            if cancelled {
                return Ok(Err(nothing_more));
            }
            return self
                .digest_preview(campaign_id, campaign, step, &staff, now)
                .await;
        }
        let preview = self
            .person_preview(campaign_id, campaign, step, &staff, now)
            .await?;
        // In a cancelled campaign only what was sent stands.
        Ok(match preview {
            Ok(p) if cancelled && !p.sent => Err(nothing_more),
            other => other,
        })
    }

    /// The sample person, enrolled as the planner would enrol someone now.
    fn sample_preview(&self, campaign: &Campaign, step: &Step, now: DateTime<Utc>) -> Preview {
        let (enrolled_at, due_at) = would_enrol(campaign, now, self.org_tz());
        let (at, timing) = step_time(step, enrolled_at, due_at, None);
        let mut person = Person::new("Sample", "Person", "sample.person@example.org");
        person.department = "Supply Chain".into();
        let mut context = self.context(campaign, person, 0, &step.name, Some(due_at), at);
        if step.to == Recipient::Manager {
            context.manager = super::context::Manager {
                full_name: "Sample Manager".into(),
                email: "manager@example.org".into(),
            };
            context.person = Person::new("Sample", "Manager", "manager@example.org");
            context.campaign.due_date = String::new();
            context.campaign.days_left = 0;
            context.overdue = vec![OverduePerson {
                full_name: "Sample Person".into(),
                email: "sample.person@example.org".into(),
                department: "Supply Chain".into(),
                role: "Buyer".into(),
                due_date: human_date(due_at, self.org_tz()),
                days_overdue: -days_until(due_at, at),
            }];
            context.overdue_count = 1;
        }
        Preview {
            context,
            template: step.template.clone(),
            at,
            timing: format!(
                "a sample person enrolled {}; {timing}, {}",
                self.when(enrolled_at),
                self.when(at)
            ),
            sent: false,
        }
    }

    /// An instant as the admin reads it, in the organisation's time zone.
    pub(super) fn when(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.org_tz())
            .format("%A, %-d %B %Y %H:%M %Z")
            .to_string()
    }
}

/// When the planner would enrol someone it meets at `now`, and their due
/// date under the campaign's own rule (a fixed date, or a period after enrolment).
pub(super) fn would_enrol(
    campaign: &Campaign,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let enrolled_at = now.max(campaign.starts_at.with_timezone(&Utc));
    (enrolled_at, campaign.due.resolve(enrolled_at, tz))
}

/// A step's own time for one enrolment: its offset from enrolment or the
/// due date; a completion step at completion (`completion`, else enrolment).
pub(super) fn step_time(
    step: &Step,
    enrolled_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
    completion: Option<DateTime<Utc>>,
) -> (DateTime<Utc>, String) {
    match step.at {
        Some(offset) => (
            offset.resolve(enrolled_at, due_at),
            format!(
                "the step goes out {}",
                crate::campaign::words::offset_in_words(offset)
            ),
        ),
        None => (
            completion.unwrap_or(enrolled_at).max(enrolled_at),
            "the step goes out on completion".into(),
        ),
    }
}
