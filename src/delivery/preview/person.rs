//! What one named person gets from a step sent to people: their own
//! enrolment and due date, or why they get nothing.

use super::{step_time, would_enrol, NoMessage, Preview, PreviewOutcome};
use crate::campaign::{Campaign, Step};
use crate::clock::from_millis;
use crate::delivery::compose::Composer;
use crate::delivery::context::{human_date, Person};
use crate::store::enrolment::EnrolmentDetail;
use crate::store::roster::StaffRow;
use crate::store::OutboxStatus;
use chrono::{DateTime, Utc};

impl Composer {
    /// What one person gets from a step sent to them.
    pub(super) async fn person_preview(
        &self,
        campaign_id: i64,
        campaign: &Campaign,
        step: &Step,
        staff: &StaffRow,
        now: DateTime<Utc>,
    ) -> anyhow::Result<PreviewOutcome> {
        let enrolment = self.store().enrolment_detail(campaign_id, staff.id).await?;
        let (due_at, at, timing, sent) = match enrolment {
            Some(e) => match self
                .enrolled_time(campaign, step, &staff.email, &e, now)
                .await?
            {
                Ok((at, timing, sent)) => (from_millis(e.due_at), at, timing, sent),
                Err(nothing) => return Ok(Err(nothing)),
            },
            None => {
                if let Some(nothing) = self.not_enrolled(campaign_id, campaign, staff).await? {
                    return Ok(Err(nothing));
                }
                let (enrolled_at, due_at) = would_enrol(campaign, now, self.org_tz());
                let (at, timing) = step_time(step, enrolled_at, due_at, Some(now));
                let timing = format!(
                    "not enrolled yet, so enrolled {}; {timing}, {}",
                    self.when(enrolled_at),
                    self.when(at)
                );
                (due_at, at, timing, false)
            }
        };
        let mut person = Person::new(&staff.first_name, &staff.last_name, &staff.email);
        person.department = staff.department.clone();
        person.role = staff.role.clone();
        person.facility = staff.facility.clone();
        person.attributes = serde_json::from_str(&staff.attributes).unwrap_or_default();
        let context = self.context(campaign, person, 0, &step.name, Some(due_at), at);
        Ok(Ok(Preview {
            context,
            template: step.template.clone(),
            at,
            timing,
            sent,
        }))
    }

    /// Why someone without an enrolment gets nothing, or `None` when the
    /// planner would enrol them.
    async fn not_enrolled(
        &self,
        campaign_id: i64,
        campaign: &Campaign,
        staff: &StaffRow,
    ) -> anyhow::Result<Option<NoMessage>> {
        let (email, slug) = (staff.email.clone(), campaign.slug.clone());
        let Some(target) = self.store().exemption_target(campaign_id, &email).await? else {
            return Ok(Some(NoMessage::UnknownPerson { email }));
        };
        if !target.active {
            return Ok(Some(NoMessage::Inactive {
                email,
                campaign: slug,
            }));
        }
        if !campaign.audience.matches(&target.person) {
            return Ok(Some(NoMessage::OutsideAudience {
                email,
                campaign: slug,
                department: staff.department.clone(),
                role: staff.role.clone(),
                facility: staff.facility.clone(),
            }));
        }
        Ok(None)
    }

    /// When an enrolled person gets the step: as sent, or as placed by the
    /// planner, else at its offset; or why they get nothing.
    async fn enrolled_time(
        &self,
        campaign: &Campaign,
        step: &Step,
        email: &str,
        e: &EnrolmentDetail,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<(DateTime<Utc>, String, bool), NoMessage>> {
        let planned = self.store().planned_step(e.id, &step.name).await?;
        if let Some(p) = planned.as_ref().filter(|p| p.status == OutboxStatus::Sent) {
            let sent = from_millis(p.accepted_at.unwrap_or(p.not_before));
            return Ok(Ok((sent, format!("sent {}", self.when(sent)), true)));
        }
        let (email, step_name, slug) =
            (email.to_string(), step.name.clone(), campaign.slug.clone());
        if e.exempted_at.is_some() {
            let reason = e.exempt_reason.clone().unwrap_or_default();
            return Ok(Err(NoMessage::Exempted {
                email,
                campaign: slug,
                reason,
            }));
        }
        if let Some(left) = e.left_at {
            let date = human_date(from_millis(left), self.org_tz());
            return Ok(Err(NoMessage::Left {
                email,
                campaign: slug,
                date,
            }));
        }
        let completed = e.completed_at.map(from_millis);
        if let (Some(_), Some(done)) = (step.at, completed) {
            let date = human_date(done, self.org_tz());
            return Ok(Err(NoMessage::Completed {
                email,
                campaign: slug,
                step: step_name,
                date,
            }));
        }
        Ok(match planned {
            Some(p) if p.status == OutboxStatus::Skipped => Err(NoMessage::Skipped {
                email,
                step: step_name,
            }),
            Some(p) if p.status == OutboxStatus::Cancelled => Err(NoMessage::Cancelled {
                email,
                step: step_name,
                reason: p.last_error.unwrap_or_else(|| "no reason kept".into()),
            }),
            Some(p) => {
                let placed = from_millis(p.not_before);
                let timing = format!("{}, placed for {}", p.status, self.when(placed));
                Ok((placed, timing, false))
            }
            None => {
                let (enrolled_at, due_at) = (from_millis(e.enrolled_at), from_millis(e.due_at));
                let (at, timing) = step_time(step, enrolled_at, due_at, completed.or(Some(now)));
                Ok((at, format!("{timing}, {}", self.when(at)), false))
            }
        })
    }
}
