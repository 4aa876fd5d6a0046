//! Where in time each new message goes. A message's own time is its step's
//! due time, moved later by a stable share of `spread`; it is then put at the
//! earliest instant at or after that which is inside its send window and in a
//! clock hour (UTC) that still has room under `max_per_hour`.
//!
//! Invariants: a message never goes before its own time, never outside its
//! window, and no clock hour holds more than `max_per_hour` messages of the
//! campaign (counting those already in the outbox). Each message looks only
//! at its own hour's count, so one message held for later (another time
//! zone's window, a far spread) never pushes the others behind it.

use super::definition::Campaign;
use crate::clock::{from_millis, to_millis};
use crate::store::outbox::NewMessage;
use crate::store::{OutboxStatus, Store};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

const HOUR_MS: i64 = 3_600_000;

/// A message whose time is not placed yet.
#[derive(Debug)]
pub(super) struct Draft {
    /// `not_before` is ignored until placed; `scheduled_at` is the step's due time.
    pub message: NewMessage,
    /// The recipient's own time zone, when the roster gives one (for the window).
    pub time_zone: Option<chrono_tz::Tz>,
}

/// Places every pending draft (in order of their own times, so earlier ones
/// get the earlier room) and returns the messages to enqueue. Drafts that are
/// not pending (`skipped`) are recorded at `now`.
pub(super) async fn place_all(
    store: &Store,
    campaign: &Campaign,
    org_tz: chrono_tz::Tz,
    now: DateTime<Utc>,
    drafts: Vec<Draft>,
) -> anyhow::Result<Vec<NewMessage>> {
    let book = match campaign.max_per_hour.filter(|n| *n > 0) {
        Some(per_hour)
            if drafts
                .iter()
                .any(|d| d.message.status == OutboxStatus::Pending) =>
        {
            let taken = store
                .placed_per_hour(drafts[0].message.campaign_id, hour_of(now))
                .await?;
            Some(HourBook::new(per_hour, taken))
        }
        _ => None,
    };
    Ok(place_drafts(campaign, org_tz, now, book, drafts))
}

/// Places pending messages again after an edit of the campaign: `held` is
/// what the outbox holds per hour besides them (sent, in flight), so each
/// gets the earliest room under the new window and limits as if new.
pub(super) fn place_again(
    campaign: &Campaign,
    org_tz: chrono_tz::Tz,
    now: DateTime<Utc>,
    held: Vec<(i64, i64)>,
    drafts: Vec<Draft>,
) -> Vec<NewMessage> {
    let book = campaign
        .max_per_hour
        .filter(|n| *n > 0)
        .map(|per_hour| HourBook::new(per_hour, held));
    place_drafts(campaign, org_tz, now, book, drafts)
}

fn place_drafts(
    campaign: &Campaign,
    org_tz: chrono_tz::Tz,
    now: DateTime<Utc>,
    mut book: Option<HourBook>,
    mut drafts: Vec<Draft>,
) -> Vec<NewMessage> {
    for draft in &mut drafts {
        draft.message.not_before = own_time(campaign, &draft.message, now);
    }
    drafts.sort_by_key(|d| d.message.not_before);
    for draft in &mut drafts {
        if draft.message.status == OutboxStatus::Pending {
            let at = place(
                campaign,
                org_tz,
                book.as_mut(),
                &draft.message,
                draft.time_zone,
            );
            draft.message.not_before = to_millis(at);
        }
    }
    drafts.into_iter().map(|d| d.message).collect()
}

/// The step's due time (never before `now`) plus a stable share of `spread`:
/// a hash of the dedupe key spreads people evenly, the same way every tick.
fn own_time(campaign: &Campaign, message: &NewMessage, now: DateTime<Utc>) -> i64 {
    if message.status != OutboxStatus::Pending {
        return to_millis(now);
    }
    let at = message.scheduled_at.max(to_millis(now));
    match campaign.spread {
        Some(spread) => {
            let span = spread.as_std().as_millis().max(1) as u64;
            at + (fnv1a(&message.dedupe_key) % span) as i64
        }
        None => at,
    }
}

/// The earliest instant at or after the message's own time inside its window
/// and in an hour with room. Within an hour, the k-th message placed goes no
/// earlier than k × (1 h / max_per_hour) past the hour, so a full hour is
/// paced evenly rather than sent at once.
fn place(
    campaign: &Campaign,
    org_tz: chrono_tz::Tz,
    book: Option<&mut HourBook>,
    message: &NewMessage,
    tz: Option<chrono_tz::Tz>,
) -> DateTime<Utc> {
    let window = &campaign.send_window;
    let mut at = window.next_open(from_millis(message.not_before), tz, org_tz);
    let Some(book) = book else {
        return at;
    };
    loop {
        let hour = book.first_with_room(hour_of(at));
        if hour > hour_of(at) {
            // Full hours skipped: the window may be shut when the next one with room starts.
            at = window.next_open(from_millis(hour * HOUR_MS), tz, org_tz);
            if hour_of(at) != hour {
                continue;
            }
        }
        let paced = at.max(from_millis(hour * HOUR_MS + book.pace_offset(hour)));
        let open = window.next_open(paced, tz, org_tz);
        if open == paced {
            book.take(hour);
            return paced;
        }
        at = open; // the window shuts before this message's turn in the hour
    }
}

/// Which clock hour (UTC) an instant is in, as hours since the epoch.
pub(super) fn hour_of(t: DateTime<Utc>) -> i64 {
    to_millis(t).div_euclid(HOUR_MS)
}

/// Messages per clock hour, and a shortcut past full hours.
#[derive(Debug)]
struct HourBook {
    per_hour: i64,
    taken: HashMap<i64, i64>,
    /// For a full hour, a later hour to look at next (path-compressed), so
    /// placing 100,000 messages behind each other stays linear.
    skip: HashMap<i64, i64>,
}

impl HourBook {
    fn new(per_hour: u32, taken: Vec<(i64, i64)>) -> Self {
        Self {
            per_hour: i64::from(per_hour),
            taken: taken.into_iter().collect(),
            skip: HashMap::new(),
        }
    }

    fn full(&self, hour: i64) -> bool {
        self.taken.get(&hour).copied().unwrap_or(0) >= self.per_hour
    }

    /// The first hour at or after `hour` that has room.
    fn first_with_room(&mut self, hour: i64) -> i64 {
        let mut path = Vec::new();
        let mut at = hour;
        while self.full(at) {
            path.push(at);
            at = self.skip.get(&at).copied().unwrap_or(at + 1);
        }
        for full in path {
            self.skip.insert(full, at);
        }
        at
    }

    /// How far into `hour` the next message placed there may go, at the earliest.
    fn pace_offset(&self, hour: i64) -> i64 {
        self.taken.get(&hour).copied().unwrap_or(0) * HOUR_MS / self.per_hour
    }

    fn take(&mut self, hour: i64) {
        *self.taken.entry(hour).or_default() += 1;
    }
}

/// FNV-1a: a tiny, stable, well-distributed hash for spreading messages.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_hours_are_skipped_and_remembered() {
        let mut book = HourBook::new(2, vec![(10, 2), (11, 2), (13, 1)]);
        assert_eq!(book.first_with_room(10), 12);
        book.take(12);
        book.take(12);
        assert_eq!(book.first_with_room(10), 13);
        assert_eq!(book.first_with_room(11), 13);
        assert_eq!(book.pace_offset(13), HOUR_MS / 2);
        book.take(13);
        assert_eq!(book.first_with_room(10), 14);
    }

    /// 100,000 messages due at once (a launch) under a window and 2,000 an
    /// hour: every one placed inside the window and the limit, quickly
    /// (full hours are skipped, not walked message by message).
    #[test]
    fn a_launch_of_100k_is_placed_within_window_and_limit() {
        let campaign = Campaign::from_toml(
            r#"slug = "big"
name = "Big"
course_url = "https://train.example.org/c"
contact = "ambassador@hospital.example.org"
starts_at = "2027-01-11T14:00:00Z"
due = "30d"
max_per_hour = 2000
spread = "4h"
[send_window]
days = "Mon-Fri"
hours = "09:00-16:00"
[[steps]]
name = "announcement"
at = "0s"
template = "news_item"
"#,
            "big.toml",
        )
        .unwrap();
        let org = chrono_tz::America::New_York;
        let due = to_millis(campaign.starts_at.to_utc());
        let mut book = HourBook::new(2000, Vec::new());
        let started = std::time::Instant::now();
        let mut placed = Vec::new();
        for i in 0..100_000 {
            let mut message = NewMessage {
                dedupe_key: format!("big:{i}:announcement:0"),
                campaign_id: 1,
                enrolment_id: Some(i),
                step: "announcement".into(),
                recipient: format!("p{i}@hospital.example.org"),
                message_id: String::new(),
                scheduled_at: due,
                not_before: 0,
                status: OutboxStatus::Pending,
            };
            message.not_before = own_time(&campaign, &message, from_millis(due));
            placed.push(place(&campaign, org, Some(&mut book), &message, None));
        }
        let elapsed = started.elapsed();
        let mut per_hour: HashMap<i64, i64> = HashMap::new();
        for at in &placed {
            *per_hour.entry(hour_of(*at)).or_default() += 1;
            assert_eq!(campaign.send_window.next_open(*at, None, org), *at);
            assert!(to_millis(*at) >= due);
        }
        assert!(per_hour.values().all(|n| *n <= 2000));
        assert_eq!(per_hour.len(), 50, "100,000 at 2,000 an hour fill 50 hours");
        eprintln!("placed 100,000 messages in {elapsed:?}");
    }
}
