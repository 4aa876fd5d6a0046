//! The digest a manager gets from a manager step: their people still to
//! complete, as overdue as they are when it goes out; before the planner
//! has enrolled them, the digest it would send once it has.

use super::{would_enrol, NoMessage, Preview, PreviewOutcome};
use crate::campaign::{Campaign, Step};
use crate::clock::from_millis;
use crate::delivery::compose::Composer;
use crate::delivery::context::{days_until, full_name, human_date, Manager, OverduePerson, Person};
use crate::store::roster::StaffRow;
use chrono::{DateTime, Utc};

impl Composer {
    /// The digest a manager gets (or would get) from a manager step: their
    /// people still to complete, as overdue as they are when it is sent.
    pub(super) async fn digest_preview(
        &self,
        campaign_id: i64,
        campaign: &Campaign,
        step: &Step,
        staff: &StaffRow,
        now: DateTime<Utc>,
    ) -> anyhow::Result<PreviewOutcome> {
        let (email, slug) = (staff.email.clone(), campaign.slug.clone());
        let reports = self.store().open_reports(campaign_id, &email).await?;
        let offset = step.at;
        let first = reports
            .iter()
            .filter_map(|r| {
                offset.map(|o| o.resolve(from_millis(r.enrolled_at), from_millis(r.due_at)))
            })
            .min();
        let Some(first) = first else {
            if let Some(preview) = self
                .future_digest(campaign_id, campaign, step, staff, now)
                .await?
            {
                return Ok(Ok(preview));
            }
            let hint = match staff.manager_email.as_deref() {
                Some(m) if !m.is_empty() => format!(
                    "; their own manager, {m}, gets the digest about them (preview it with --to {m})"
                ),
                _ => String::new(),
            };
            return Ok(Err(NoMessage::NotAManager {
                email,
                step: step.name.clone(),
                campaign: slug,
                hint,
            }));
        };
        let at = first.max(now);
        let row =
            crate::store::outbox::ClaimedMessage::digest_preview(campaign_id, &step.name, &email);
        let Some(context) = self.digest_context(&row, campaign, at).await? else {
            return Ok(Err(NoMessage::NobodyOverdue {
                email,
                step: step.name.clone(),
                campaign: slug,
            }));
        };
        let timing = if at == first {
            let rule = offset.map(crate::campaign::words::offset_in_words);
            format!(
                "{}, for the first of their people: {}",
                rule.unwrap_or_default(),
                self.when(at)
            )
        } else {
            format!("this week's digest, {}", self.when(at))
        };
        Ok(Ok(Preview {
            context,
            template: step.template.clone(),
            at,
            timing,
            sent: false,
        }))
    }

    /// The digest once the planner enrols the manager's people it has not
    /// enrolled yet (before the start, or joiners since the last tick), or
    /// `None` when it would enrol none of them or none would be overdue.
    async fn future_digest(
        &self,
        campaign_id: i64,
        campaign: &Campaign,
        step: &Step,
        manager: &StaffRow,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<Preview>> {
        let Some(offset) = step.at else {
            return Ok(None);
        };
        let mut people = Vec::new();
        for p in self
            .store()
            .reports_not_enrolled(campaign_id, &manager.email)
            .await?
        {
            let target = self.store().exemption_target(campaign_id, &p.email).await?;
            if target.is_some_and(|t| campaign.audience.matches(&t.person)) {
                people.push(p);
            }
        }
        let (enrolled_at, due_at) = would_enrol(campaign, now, self.org_tz());
        let at = offset.resolve(enrolled_at, due_at);
        if people.is_empty() || due_at >= at {
            return Ok(None);
        }
        let me = Person::new(&manager.first_name, &manager.last_name, &manager.email);
        let mut context = self.context(campaign, me.clone(), 0, &step.name, None, at);
        context.manager = Manager {
            full_name: me.full_name,
            email: manager.email.clone(),
        };
        context.overdue = people
            .iter()
            .map(|p| OverduePerson {
                full_name: full_name(&p.first_name, &p.last_name),
                email: p.email.clone(),
                department: p.department.clone(),
                role: p.role.clone(),
                due_date: human_date(due_at, self.org_tz()),
                days_overdue: -days_until(due_at, at),
            })
            .collect();
        context.overdue_count = context.overdue.len();
        let rule = crate::campaign::words::offset_in_words(offset);
        Ok(Some(Preview {
            context,
            template: step.template.clone(),
            at,
            timing: format!(
                "their people are not enrolled yet, so enrolled {}; the step goes out {rule}, {}",
                self.when(enrolled_at),
                self.when(at)
            ),
            sent: false,
        }))
    }
}
