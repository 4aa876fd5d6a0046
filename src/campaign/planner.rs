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
use crate::store::planning::NextAt;
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
/// Only enrolments whose `next_at` has passed are read (a step or digest
/// fell due, or something about them changed), and the roster only when it
/// changed since the campaign's last look; see `store::planning`.
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
        report.enrolled += enrol_new(store, row.id, &campaign, now, ctx).await?;
        plan_due(store, row.id, &campaign, now, ctx, &mut report).await?;
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

/// Enrols the people of the audience not yet enrolled, when the roster
/// changed since the campaign's last look (an import, a new person, an
/// enrolment removed, or the campaign file changed).
async fn enrol_new(
    store: &Store,
    campaign_id: i64,
    campaign: &Campaign,
    now: DateTime<Utc>,
    ctx: &PlanContext,
) -> anyhow::Result<u64> {
    let (seen, roster) = store.roster_marks(campaign_id).await?;
    if seen == roster {
        return Ok(0);
    }
    let enrolled = enrol(store, campaign_id, campaign, now, ctx).await?;
    store.set_roster_seen(campaign_id, &roster).await?;
    Ok(enrolled)
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

/// The tick's work on the enrolments that are due: audience moves and
/// leavers, messages nobody should receive any more, the messages that fell
/// due, and each enrolment's next instant.
async fn plan_due(
    store: &Store,
    campaign_id: i64,
    campaign: &Campaign,
    now: DateTime<Utc>,
    ctx: &PlanContext,
    report: &mut PlanReport,
) -> anyhow::Result<()> {
    let now_ms = to_millis(now);
    let mut due = store.due_enrolments(campaign_id, now_ms).await?;
    if due.is_empty() {
        return Ok(());
    }
    // People who left the audience or came back to it, then people gone
    // from the roster.
    let (leave, restore) =
        super::edit::audience_moves(due.iter().map(|d| &d.state), &campaign.audience);
    let leavers: Vec<i64> = due
        .iter()
        .map(|d| &d.state)
        .filter(|s| !s.active && s.left_at.is_none() && s.completed_at.is_none())
        .map(|s| s.enrolment_id)
        .collect();
    for d in &mut due {
        let id = d.state.enrolment_id;
        let moved = if leave.contains(&id) || leavers.contains(&id) {
            d.state.left_at = Some(now_ms);
            true
        } else if restore.contains(&id) {
            d.state.left_at = None;
            true
        } else {
            false
        };
        if moved {
            // What the `enrolments_replan` trigger makes of this very write.
            d.next_at = d.next_at.min(0) - 1;
        }
    }
    let gone: Vec<i64> = leave.iter().chain(&leavers).copied().collect();
    store.set_enrolments_left(&gone, Some(now_ms)).await?;
    store.set_enrolments_left(&restore, None).await?;
    report.left += gone.len() as u64;

    let stopped: Vec<i64> = due
        .iter()
        .filter(|d| d.state.left_at.is_some() || d.state.exempted_at.is_some())
        .map(|d| d.state.enrolment_id)
        .collect();
    report.cancelled += store
        .cancel_pending_of(&stopped, None, "left the roster or exempted", now_ms)
        .await?;
    let time_steps: Vec<String> = campaign
        .steps
        .iter()
        .filter(|s| s.at.is_some() && s.to == Recipient::Person)
        .map(|s| s.name.clone())
        .collect();
    if !time_steps.is_empty() {
        let completed: Vec<i64> = due
            .iter()
            .filter(|d| d.state.completed_at.is_some())
            .map(|d| d.state.enrolment_id)
            .collect();
        report.cancelled += store
            .cancel_pending_of(
                &completed,
                Some(&time_steps),
                "completed before sending",
                now_ms,
            )
            .await?;
    }

    let rows: Vec<PlanningRow> = due
        .iter()
        .map(|d| &d.state)
        .filter(|s| s.exempted_at.is_none() && s.left_at.is_none() && s.active)
        .map(|s| PlanningRow {
            enrolment_id: s.enrolment_id,
            staff_id: s.person.id,
            enrolled_at: s.enrolled_at,
            due_at: s.due_at,
            completed_at: s.completed_at,
            time_zone: s.person.time_zone.clone(),
            manager_email: s.person.manager_email.clone(),
            email: s.person.email.clone(),
        })
        .collect();
    let enqueued: HashSet<(i64, String)> = store
        .due_enqueued_steps(campaign_id, now_ms)
        .await?
        .into_iter()
        .collect();
    let messages = due_messages(store, campaign_id, campaign, now, ctx, &rows, &enqueued).await?;
    report.enqueued += store.enqueue(&messages, now_ms).await?;

    let planned: HashSet<i64> = rows.iter().map(|r| r.enrolment_id).collect();
    let updates: Vec<NextAt> = due
        .iter()
        .map(|d| NextAt {
            enrolment_id: d.state.enrolment_id,
            read: d.next_at,
            next_at: planned
                .contains(&d.state.enrolment_id)
                .then(|| next_at(campaign, &d.state, now, ctx.org_tz))
                .flatten(),
        })
        .collect();
    store.set_next_at(&updates).await
}

/// When the tick must next look at an enrolment it has just planned: its
/// earliest person step still ahead, or its manager's next digest (each
/// week while the person is open and a digest step has fallen due). `None`
/// for someone who completed: their completion steps are planned now.
fn next_at(
    campaign: &Campaign,
    state: &crate::store::edit::EnrolmentState,
    now: DateTime<Utc>,
    org_tz: chrono_tz::Tz,
) -> Option<i64> {
    if state.completed_at.is_some() {
        return None;
    }
    let (enrolled_at, due_at) = (from_millis(state.enrolled_at), from_millis(state.due_at));
    let has_manager = state.person.manager_email.is_some();
    campaign
        .steps
        .iter()
        .filter_map(|s| {
            let at = s.at?.resolve(enrolled_at, due_at);
            match s.to {
                Recipient::Person => (at > now).then_some(at),
                Recipient::Manager if has_manager => {
                    Some(if at > now { at } else { next_week(now, org_tz) })
                }
                Recipient::Manager => None,
            }
        })
        .min()
        .map(to_millis)
}

/// The start of the next ISO week in the organisation's time zone: when a
/// manager digest's cycle turns.
fn next_week(now: DateTime<Utc>, org_tz: chrono_tz::Tz) -> DateTime<Utc> {
    use chrono::TimeZone;
    let local = now.with_timezone(&org_tz);
    let days = 7 - i64::from(local.weekday().num_days_from_monday());
    let monday = local.date_naive() + chrono::Duration::days(days);
    let midnight = monday.and_time(chrono::NaiveTime::MIN);
    org_tz
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        // Midnight skipped by a clock change: an hour later is in that week.
        .unwrap_or_else(|| now + chrono::Duration::days(days))
}

/// Every message due now among `rows` and not yet in the outbox.
async fn due_messages(
    store: &Store,
    campaign_id: i64,
    campaign: &Campaign,
    now: DateTime<Utc>,
    ctx: &PlanContext,
    rows: &[PlanningRow],
    enqueued: &HashSet<(i64, String)>,
) -> anyhow::Result<Vec<NewMessage>> {
    let mut out = Drafts::new(campaign_id, campaign, ctx);
    for row in rows {
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
    manager_digests(campaign, rows, now, &mut out);
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
