//! A changed campaign applied to a rollout under way: open enrolments get the
//! new due date, pending messages move under the new steps, window and
//! limits, and people join or leave per the new audience. What was sent
//! stays sent, and a message a worker has claimed is not touched (the
//! writes only change rows still `pending`).

use super::definition::{Campaign, Recipient};
use super::placement::{self, Draft};
use crate::clock::{from_millis, to_millis};
use crate::store::edit::{EditWrites, EnrolmentState, PendingMessage};
use crate::store::outbox::NewMessage;
use crate::store::{OutboxStatus, Store};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// How many enrolments and messages an edit touches.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Effect {
    /// Open enrolments whose due date changes.
    pub due_dates: u64,
    /// Pending messages placed at another time.
    pub messages_moved: u64,
    /// Pending messages cancelled (their step was removed, or the person left the audience).
    pub messages_cancelled: u64,
    /// People the new audience enrols.
    pub enrolled: u64,
    /// Enrolled people the new audience no longer includes.
    pub removed: u64,
}

/// An edit worked out against the database, not yet written.
#[derive(Debug, Default)]
pub(super) struct Edit {
    pub writes: EditWrites,
    pub effect: Effect,
}

/// Where one enrolment stands after the edit.
struct After {
    enrolled_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
    removed: bool,
}

/// Works out what applying `new` over `old` changes for campaign `id`.
pub(super) async fn plan(
    store: &Store,
    id: i64,
    old: &Campaign,
    new: &Campaign,
    org_tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> anyhow::Result<Edit> {
    let mut edit = Edit::default();
    let states = store.enrolment_states(id).await?;
    let mut after = HashMap::with_capacity(states.len());
    for state in &states {
        after.insert(state.enrolment_id, enrolment(new, org_tz, state, &mut edit));
    }
    if now >= new.starts_at {
        let enrolled_at = now.max(new.starts_at.with_timezone(&Utc));
        let due_at = to_millis(new.due.resolve(enrolled_at, org_tz));
        for person in store.enrolment_candidates(id).await? {
            if new.audience.matches(&person) {
                edit.writes
                    .enrol
                    .push((person.id, to_millis(enrolled_at), due_at));
            }
        }
        edit.effect.enrolled = edit.writes.enrol.len() as u64;
    }
    if moves_messages(old, new) || !edit.writes.leave.is_empty() {
        let pending = store.pending_messages(id).await?;
        replace(store, id, new, org_tz, now, &after, pending, &mut edit).await?;
    }
    Ok(edit)
}

/// Whether the edit can change when (or whether) a pending message goes.
fn moves_messages(old: &Campaign, new: &Campaign) -> bool {
    old.due != new.due
        || old.steps != new.steps
        || old.send_window != new.send_window
        || old.max_per_hour != new.max_per_hour
        || old.spread != new.spread
}

/// The new due date and audience membership of one enrolment.
fn enrolment(
    new: &Campaign,
    org_tz: chrono_tz::Tz,
    state: &EnrolmentState,
    edit: &mut Edit,
) -> After {
    let enrolled_at = from_millis(state.enrolled_at);
    let due_at = new.due.resolve(enrolled_at, org_tz);
    let mut removed = false;
    if state.completed_at.is_none() {
        if to_millis(due_at) != state.due_at {
            edit.writes
                .due_dates
                .push((state.enrolment_id, to_millis(due_at)));
            edit.effect.due_dates += u64::from(state.is_open());
        }
        match audience_move(state, &new.audience) {
            Some(Move::Leave) => {
                edit.writes.leave.push(state.enrolment_id);
                edit.effect.removed += 1;
                removed = true;
            }
            Some(Move::Return) => edit.writes.restore.push(state.enrolment_id),
            None => {}
        }
    }
    After {
        enrolled_at,
        due_at,
        removed,
    }
}

/// Places every pending message again under the new campaign, keeping only
/// real moves; messages with no place in it any more are cancelled.
#[allow(clippy::too_many_arguments)]
async fn replace(
    store: &Store,
    id: i64,
    new: &Campaign,
    org_tz: chrono_tz::Tz,
    now: DateTime<Utc>,
    after: &HashMap<i64, After>,
    pending: Vec<PendingMessage>,
    edit: &mut Edit,
) -> anyhow::Result<()> {
    let mut drafts = Vec::with_capacity(pending.len());
    let mut by_key = HashMap::with_capacity(pending.len());
    for m in pending {
        match scheduled_under(new, after, &m) {
            Err(reason) => edit.writes.cancel.push((m.id, reason)),
            Ok(scheduled_at) => {
                drafts.push(Draft {
                    message: NewMessage {
                        dedupe_key: m.dedupe_key.clone(),
                        campaign_id: id,
                        enrolment_id: m.enrolment_id,
                        step: m.step.clone(),
                        recipient: m.recipient.clone(),
                        message_id: String::new(),
                        scheduled_at,
                        not_before: scheduled_at,
                        status: OutboxStatus::Pending,
                    },
                    time_zone: m.time_zone.as_deref().and_then(|z| z.parse().ok()),
                });
                by_key.insert(m.dedupe_key.clone(), m);
            }
        }
    }
    edit.effect.messages_cancelled = edit.writes.cancel.len() as u64;
    let held = store.held_per_hour(id, placement::hour_of(now)).await?;
    for placed in placement::place_again(new, org_tz, now, held, drafts) {
        let Some(old) = by_key.get(&placed.dedupe_key) else {
            continue;
        };
        // A retry keeps its back-off.
        let not_before = if old.attempts > 0 {
            placed.not_before.max(old.not_before)
        } else {
            placed.not_before
        };
        if (placed.scheduled_at, not_before) != (old.scheduled_at, old.not_before) {
            edit.writes
                .moves
                .push((old.id, placed.scheduled_at, not_before));
        }
    }
    edit.effect.messages_moved = edit.writes.moves.len() as u64;
    Ok(())
}

/// A pending message's step time under the new campaign, or why it goes no more.
fn scheduled_under(
    new: &Campaign,
    after: &HashMap<i64, After>,
    m: &PendingMessage,
) -> Result<i64, &'static str> {
    let step = new
        .step(&m.step)
        .ok_or("its step was removed from the campaign")?;
    let Some(enrolment) = m.enrolment_id else {
        // A manager digest: its time is the earliest overdue person's.
        return match (step.to, step.at) {
            (Recipient::Manager, Some(_)) => Ok(m.scheduled_at),
            _ => Err("its step no longer goes to managers"),
        };
    };
    if step.to == Recipient::Manager {
        return Err("its step now goes to managers");
    }
    let Some(person) = after.get(&enrolment) else {
        return Ok(m.scheduled_at);
    };
    if person.removed {
        return Err("no longer in the campaign's audience");
    }
    Ok(match step.at {
        Some(at) => to_millis(at.resolve(person.enrolled_at, person.due_at)),
        None => m.scheduled_at, // on completion: the completion time
    })
}

/// The planner's share of audience changes, among the enrolments a tick
/// reads: (enrolments whose person left the audience, their record changed
/// or the audience did; enrolments whose person is back in it). Completed
/// enrolments stay as they are.
pub(super) fn audience_moves<'a>(
    states: impl Iterator<Item = &'a EnrolmentState>,
    audience: &super::Audience,
) -> (Vec<i64>, Vec<i64>) {
    let (mut leave, mut restore) = (Vec::new(), Vec::new());
    for state in states.filter(|s| s.completed_at.is_none()) {
        match audience_move(state, audience) {
            Some(Move::Leave) => leave.push(state.enrolment_id),
            Some(Move::Return) => restore.push(state.enrolment_id),
            None => {}
        }
    }
    (leave, restore)
}

/// How an open enrolment moves when its person's record and the audience
/// are compared: an active person the audience no longer matches leaves;
/// one who left and matches again returns. Deactivated people are the
/// roster sync's to handle.
enum Move {
    Leave,
    Return,
}

fn audience_move(state: &EnrolmentState, audience: &super::Audience) -> Option<Move> {
    let active = state.active;
    let in_audience = active && audience.matches(&state.person);
    if active && !in_audience && state.left_at.is_none() {
        Some(Move::Leave)
    } else if in_audience && state.left_at.is_some() {
        Some(Move::Return)
    } else {
        None
    }
}
