//! The planning tick: enrol new people, notice leavers, and put every message
//! that has fallen due into the outbox, placed in time by [`placement`]
//! (spread, send window, `max_per_hour`). Idempotent: the outbox's unique
//! dedupe key means a tick run twice, or on three instances at once,
//! enqueues each message once.

use super::definition::{Campaign, Offset, Recipient, Trigger};
use super::placement::{self, Draft};
use crate::clock::{from_millis, to_millis, Clock};
use crate::store::campaign::PlanningRow;
use crate::store::outbox::NewMessage;
use crate::store::{OutboxStatus, Store};
use chrono::{DateTime, Datelike, Utc};
use std::collections::{BTreeMap, HashSet};

/// What one tick did, summed over campaigns.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlanReport {
    pub enrolled: u64,
    pub left: u64,
    pub cancelled: u64,
    pub enqueued: u64,
}

/// A sentence for the log: "enrolled 3 people, planned 5 messages".
impl std::fmt::Display for PlanReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let parts: Vec<String> = [
            (self.enrolled, "enrolled", "person", "people"),
            (self.left, "noticed", "leaver", "leavers"),
            (self.cancelled, "cancelled", "message", "messages"),
            (self.enqueued, "planned", "message", "messages"),
        ]
        .into_iter()
        .filter(|(n, ..)| *n > 0)
        .map(|(n, verb, one, many)| format!("{verb} {}", plural(n, one, many)))
        .collect();
        if parts.is_empty() {
            f.write_str("nothing to do")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// Settings the planner needs.
#[derive(Debug, Clone)]
pub struct PlanContext {
    pub org_tz: chrono_tz::Tz,
    /// Right-hand side of generated Message-IDs (the sender's domain).
    pub message_id_domain: String,
}

/// A planning tick with what it needs: the scheduler and the root call
/// [`Planning::tick`], which wakes the delivery worker when it enqueued
/// something.
#[derive(Debug, Clone)]
pub struct Planning {
    pub store: Store,
    pub clock: crate::clock::SharedClock,
    pub context: PlanContext,
    /// Notified when a tick enqueued messages (the worker's `outbox_changed`).
    pub enqueued: std::sync::Arc<tokio::sync::Notify>,
}

impl Planning {
    /// One planning tick.
    pub async fn tick(&self) -> anyhow::Result<PlanReport> {
        let report = plan(&self.store, self.clock.as_ref(), &self.context).await?;
        if report.enqueued > 0 {
            self.enqueued.notify_one();
        }
        Ok(report)
    }
}

/// Runs one planning tick over every active campaign that has started.
#[tracing::instrument(skip_all)]
pub async fn plan(
    store: &Store,
    clock: &dyn Clock,
    ctx: &PlanContext,
) -> anyhow::Result<PlanReport> {
    let mut report = PlanReport::default();
    for row in store.campaigns().await? {
        if row.status != super::Status::Active {
            continue;
        }
        let campaign = super::definition_of(&row)?;
        let now = clock.now();
        if now < campaign.starts_at {
            continue;
        }
        report.enrolled += enrol(store, row.id, &campaign, now, ctx).await?;
        report.left += super::edit::sync_audience(store, row.id, &campaign, now).await?;
        let time_steps: Vec<String> = campaign
            .steps
            .iter()
            .filter(|s| s.at.is_some() && s.to == Recipient::Person)
            .map(|s| s.name.clone())
            .collect();
        let (left, cancelled) = store
            .sync_leavers(row.id, to_millis(now), &time_steps)
            .await?;
        report.left += left;
        report.cancelled += cancelled;
        let messages = due_messages(store, row.id, &campaign, now, ctx).await?;
        report.enqueued += store.enqueue(&messages, to_millis(now)).await?;
    }
    if report != PlanReport::default() {
        tracing::info!(
            enrolled = report.enrolled,
            left = report.left,
            cancelled = report.cancelled,
            enqueued = report.enqueued,
            "planning tick: {report}"
        );
    }
    Ok(report)
}

async fn enrol(
    store: &Store,
    campaign_id: i64,
    campaign: &Campaign,
    now: DateTime<Utc>,
    ctx: &PlanContext,
) -> anyhow::Result<u64> {
    let enrolled_at = now.max(campaign.starts_at.with_timezone(&Utc));
    let due_at = campaign.due.resolve(enrolled_at, ctx.org_tz);
    let rows: Vec<(i64, i64, i64)> = store
        .enrolment_candidates(campaign_id)
        .await?
        .into_iter()
        .filter(|p| campaign.audience.matches(p))
        .map(|p| (p.id, to_millis(enrolled_at), to_millis(due_at)))
        .collect();
    store.insert_enrolments(campaign_id, &rows).await
}

/// Every message of this campaign that is due now and not yet in the outbox.
async fn due_messages(
    store: &Store,
    campaign_id: i64,
    campaign: &Campaign,
    now: DateTime<Utc>,
    ctx: &PlanContext,
) -> anyhow::Result<Vec<NewMessage>> {
    let enqueued: HashSet<(i64, String)> = store
        .enqueued_steps(campaign_id)
        .await?
        .into_iter()
        .collect();
    let rows = store.planning_rows(campaign_id).await?;
    let mut out = Drafts::new(campaign_id, campaign, ctx);
    for row in &rows {
        let already = |step: &str| enqueued.contains(&(row.enrolment_id, step.to_string()));
        match row.completed_at {
            Some(done) => {
                for step in campaign
                    .steps
                    .iter()
                    .filter(|s| s.on == Some(Trigger::Completion) && !already(&s.name))
                {
                    out.person_message(row, &step.name, from_millis(done), OutboxStatus::Pending);
                }
            }
            None => person_steps_due(campaign, row, now, &already, &mut out),
        }
    }
    manager_digests(campaign, &rows, now, &mut out);
    placement::place_all(store, campaign, ctx.org_tz, now, out.drafts).await
}

/// The time steps due for one person. When several fell due at once (a late
/// joiner, or a daemon that was down), only one goes out: the announcement if
/// it was never sent, else the latest reminder; the others are recorded as
/// skipped so nobody gets a burst of messages.
fn person_steps_due(
    campaign: &Campaign,
    row: &PlanningRow,
    now: DateTime<Utc>,
    already: &dyn Fn(&str) -> bool,
    out: &mut Drafts,
) {
    let (enrolled_at, due_at) = (from_millis(row.enrolled_at), from_millis(row.due_at));
    let person_steps: Vec<(&str, DateTime<Utc>)> = campaign
        .steps
        .iter()
        .filter(|s| s.to == Recipient::Person)
        .filter_map(|s| {
            s.at.map(|at: Offset| (s.name.as_str(), at.resolve(enrolled_at, due_at)))
        })
        .collect();
    let first = person_steps.first().map(|(name, _)| *name);
    let mut due: Vec<(&str, DateTime<Utc>)> = person_steps
        .iter()
        .copied()
        .filter(|(name, at)| *at <= now && !already(name))
        .collect();
    if due.is_empty() {
        return;
    }
    due.sort_by_key(|(_, at)| *at);
    let chosen = match first {
        Some(f) if due.iter().any(|(n, _)| *n == f) => f,
        _ => due.last().map(|(n, _)| *n).unwrap_or_default(),
    };
    for (name, at) in due {
        let status = if name == chosen {
            OutboxStatus::Pending
        } else {
            OutboxStatus::Skipped
        };
        out.person_message(row, name, at, status);
    }
}

/// One digest per manager per week, listing their overdue people.
fn manager_digests(
    campaign: &Campaign,
    rows: &[PlanningRow],
    now: DateTime<Utc>,
    out: &mut Drafts,
) {
    for step in campaign.steps.iter().filter(|s| s.to == Recipient::Manager) {
        let Some(at) = step.at else { continue };
        let mut managers: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
        for row in rows.iter().filter(|r| r.completed_at.is_none()) {
            let Some(manager) = row.manager_email.as_deref() else {
                continue;
            };
            let when = at.resolve(from_millis(row.enrolled_at), from_millis(row.due_at));
            if when <= now {
                let first = managers.entry(manager).or_insert(when);
                *first = (*first).min(when);
            }
        }
        let week = now.with_timezone(&out.ctx.org_tz).iso_week();
        let cycle = format!("{}-W{:02}", week.year(), week.week());
        for (manager, when) in managers {
            let key = format!(
                "{}:{}:manager:{}:{}",
                campaign.slug, step.name, manager, cycle
            );
            out.message(
                key,
                (None, manager),
                &step.name,
                None,
                when,
                OutboxStatus::Pending,
            );
        }
    }
}

/// Builds the messages of one planning pass, before they are placed in time.
struct Drafts<'a> {
    campaign: &'a Campaign,
    ctx: &'a PlanContext,
    campaign_id: i64,
    drafts: Vec<Draft>,
}

impl<'a> Drafts<'a> {
    fn new(campaign_id: i64, campaign: &'a Campaign, ctx: &'a PlanContext) -> Self {
        Self {
            campaign,
            ctx,
            campaign_id,
            drafts: Vec::new(),
        }
    }

    fn person_message(
        &mut self,
        row: &PlanningRow,
        step: &str,
        scheduled: DateTime<Utc>,
        status: OutboxStatus,
    ) {
        let key = format!("{}:{}:{}:0", self.campaign.slug, row.enrolment_id, step);
        let tz = row.time_zone.as_deref().and_then(|z| z.parse().ok());
        let recipient = (Some(row.enrolment_id), row.email.as_str());
        self.message(key, recipient, step, tz, scheduled, status);
    }

    /// A message due at `scheduled`; `not_before` is set when it is placed.
    fn message(
        &mut self,
        key: String,
        (enrolment_id, recipient): (Option<i64>, &str),
        step: &str,
        time_zone: Option<chrono_tz::Tz>,
        scheduled: DateTime<Utc>,
        status: OutboxStatus,
    ) {
        let message = NewMessage {
            message_id: format!(
                "<{}@{}>",
                uuid::Uuid::new_v4().simple(),
                self.ctx.message_id_domain
            ),
            dedupe_key: key,
            campaign_id: self.campaign_id,
            enrolment_id,
            step: step.to_string(),
            recipient: recipient.to_string(),
            scheduled_at: to_millis(scheduled),
            not_before: to_millis(scheduled),
            status,
        };
        self.drafts.push(Draft { message, time_zone });
    }
}
