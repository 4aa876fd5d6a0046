//! `max_per_hour` and `spread` on the manual clock, with a send window, two
//! time zones, a late joiner and completions: every message is placed inside
//! its window, never before its due time, no clock hour holds more than
//! `max_per_hour`, and no message waits while an earlier open hour has room.

mod common;

use ambassador::clock::{from_millis, to_millis};
use chrono::{DateTime, Datelike, Duration, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use common::app::{launch, TestApp, HEADER};
use std::collections::BTreeMap;

const PER_HOUR: i64 = 10;
const SPREAD: Duration = Duration::hours(1);

/// Monday 09:00 New York; a window of three hours a day, ten messages an hour.
const CAMPAIGN: &str = r#"
slug = "paced"
name = "SOAR for Procurement Professionals"
course_url = "https://train.example.org/course/1"
contact = "ambassador@hospital.example.org"
starts_at = "2027-01-11T14:00:00Z"
due = "30d"
max_per_hour = 10
spread = "1h"

[send_window]
days = "Mon-Fri"
hours = "09:00-12:00"
time_zone = "America/New_York"

[[steps]]
name = "announcement"
at = "0s"
template = "news_item"

[[steps]]
name = "thanks"
on = "completion"
template = "thanks"
"#;

/// 24 people in New York and 6 in Los Angeles, whose window opens when New
/// York's shuts; the West coast rows come first, so their messages, held
/// for later, are planned before everyone else's.
fn roster(joiner: bool) -> String {
    let mut csv = format!("{HEADER}\n");
    let mut row = |i: u32, tz: &str| {
        csv.push_str(&format!(
            "E{i},P{i},X,p{i}@hospital.example.org,Procurement,Buyer,Main,,{tz}\n"
        ));
    };
    (1..=6).for_each(|i| row(i, "America/Los_Angeles"));
    (7..=30).for_each(|i| row(i, ""));
    if joiner {
        row(31, "");
    }
    csv
}

/// One outbox row as placed.
#[derive(Debug, sqlx::FromRow)]
struct Placed {
    recipient: String,
    step: String,
    status: String,
    scheduled_at: i64,
    not_before: i64,
    accepted_at: Option<i64>,
}

#[tokio::test]
async fn each_message_takes_the_earliest_open_hour_with_room_at_or_after_its_own_time() {
    let t = TestApp::spawn().await;
    t.import(&roster(false)).await;
    t.apply(CAMPAIGN).await;
    let joins = launch() + Duration::minutes(90); // 10:30 in New York
    let completes = launch() + Duration::minutes(130);
    let campaign = t.campaign_id("paced").await;

    let mut events = vec![joins, completes];
    t.tick_at(launch()).await;
    for _ in 0..500 {
        let due = t.store().next_due().await.unwrap().map(from_millis);
        let next_event = events.first().copied();
        let Some(at) = [due, next_event].into_iter().flatten().min() else {
            break;
        };
        if Some(at) == next_event {
            events.remove(0);
            t.clock.set(at);
            if at == joins {
                t.import(&roster(true)).await;
            } else {
                for i in [7, 8, 9] {
                    let who = t.staff_id(&format!("p{i}@hospital.example.org")).await;
                    let done = to_millis(at);
                    t.store()
                        .complete_enrolment(campaign, who, done, "test")
                        .await
                        .unwrap();
                }
            }
        }
        t.tick_at(at).await;
    }

    let rows: Vec<Placed> = sqlx::query_as(
        "SELECT recipient, step, status, scheduled_at, not_before, accepted_at FROM outbox",
    )
    .fetch_all(t.store().pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 31 + 3, "announcements and three thank-yous");
    assert!(rows.iter().all(|r| r.status == "sent"), "{rows:#?}");

    let per_hour = count_per_hour(rows.iter().map(|r| r.not_before));
    assert!(
        per_hour.values().all(|n| *n <= PER_HOUR),
        "at most {PER_HOUR} an hour: {per_hour:?}"
    );
    assert!(
        per_hour.values().any(|n| *n == PER_HOUR),
        "the limit was reached, so it was tested: {per_hour:?}"
    );
    let sent_per_hour = count_per_hour(rows.iter().filter_map(|r| r.accepted_at));
    assert!(sent_per_hour.values().all(|n| *n <= PER_HOUR));
    // Paced: the k-th message of an hour is no earlier than k × 6 minutes past it.
    for hour in per_hour.keys() {
        let mut times: Vec<DateTime<Utc>> = rows
            .iter()
            .map(|r| from_millis(r.not_before))
            .filter(|at| hour_start(*at) == *hour)
            .collect();
        times.sort();
        for (k, at) in times.iter().enumerate() {
            let earliest = *hour + Duration::minutes(60 / PER_HOUR) * k as i32;
            assert!(*at >= earliest, "message {k} of {hour} at {at}: not paced");
        }
    }

    for r in &rows {
        let zone = zone_of(&r.recipient);
        let placed = from_millis(r.not_before);
        assert!(r.not_before >= r.scheduled_at, "before its due time: {r:?}");
        assert!(in_window(placed, zone), "outside its window: {r:?}");
        assert!(r.accepted_at >= Some(r.not_before), "sent early: {r:?}");
        // Every open hour after its latest own time (due + spread) and before
        // the one it got was full when the run ended, so full when it was placed.
        let own_latest = from_millis(r.scheduled_at) + SPREAD;
        let mut hour = hour_start(own_latest) + Duration::hours(1);
        while hour < hour_start(placed) {
            if in_window(hour, zone) {
                let taken = per_hour.get(&hour).copied().unwrap_or(0);
                assert_eq!(taken, PER_HOUR, "{r:?} waited past {hour}, which had room");
            }
            hour += Duration::hours(1);
        }
    }

    let joiner = rows
        .iter()
        .find(|r| r.recipient == "p31@hospital.example.org" && r.step == "announcement")
        .unwrap();
    assert!(
        from_millis(joiner.not_before) < launch() + Duration::hours(3),
        "the joiner is announced the same morning, not behind the West coast: {joiner:?}"
    );
}

fn zone_of(recipient: &str) -> Tz {
    let n: u32 = recipient[1..recipient.find('@').unwrap()].parse().unwrap();
    if n <= 6 {
        chrono_tz::America::Los_Angeles
    } else {
        chrono_tz::America::New_York
    }
}

/// Monday to Friday, 09:00 to 12:00 local time.
fn in_window(at: DateTime<Utc>, zone: Tz) -> bool {
    let local = at.with_timezone(&zone);
    !matches!(local.weekday(), Weekday::Sat | Weekday::Sun) && (9..12).contains(&local.hour())
}

fn hour_start(at: DateTime<Utc>) -> DateTime<Utc> {
    from_millis(to_millis(at).div_euclid(3_600_000) * 3_600_000)
}

fn count_per_hour(instants: impl Iterator<Item = i64>) -> BTreeMap<DateTime<Utc>, i64> {
    let mut hours = BTreeMap::new();
    for at in instants {
        *hours.entry(hour_start(from_millis(at))).or_default() += 1;
    }
    hours
}

/// `spread` alone (no window, no hourly limit): a step due for everyone at
/// once goes out over the spread, each at its due time plus a stable share.
#[tokio::test]
async fn spread_places_a_step_evenly_over_its_length_after_it_falls_due() {
    let t = TestApp::spawn().await;
    t.import(&roster(false)).await;
    let spread_only = CAMPAIGN
        .replace("max_per_hour = 10\n", "")
        .replace(
            "[send_window]\ndays = \"Mon-Fri\"\nhours = \"09:00-12:00\"\ntime_zone = \"America/New_York\"\n",
            "send_window = \"always\"\n",
        );
    t.apply(&spread_only).await;
    t.tick_at(launch()).await;
    let mut placed: Vec<i64> = sqlx::query_scalar("SELECT not_before FROM outbox")
        .fetch_all(t.store().pool())
        .await
        .unwrap();
    placed.sort();
    assert_eq!(placed.len(), 30);
    let (start, end) = (to_millis(launch()), to_millis(launch() + SPREAD));
    assert!(
        placed.iter().all(|at| (start..end).contains(at)),
        "{placed:?}"
    );
    for quarter in 0..4 {
        let from = start + quarter * (end - start) / 4;
        let to = from + (end - start) / 4;
        let n = placed.iter().filter(|at| (from..to).contains(*at)).count();
        assert!(
            n >= 3,
            "quarter {quarter} of the spread has {n} of 30: {placed:?}"
        );
    }
    t.tick_at(launch() + SPREAD / 2).await;
    let due_by_half = placed.iter().filter(|at| **at <= start + (end - start) / 2);
    let sent = t.outbox().await.into_iter().filter(|(_, _, s)| s == "sent");
    assert_eq!(
        sent.count(),
        due_by_half.count(),
        "each goes at its own time"
    );
}
