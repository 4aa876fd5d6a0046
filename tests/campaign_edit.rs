//! Editing a campaign mid-rollout on the manual clock: the due date and the
//! send window change while some announcements are sent, some wait, and one
//! is being sent. Every open enrolment gets the new due date, every pending
//! message lands inside the new window and limit, nothing sent is resent,
//! and the message in flight is not touched.

mod common;

use ambassador::clock::{from_millis, to_millis, Clock};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc, Weekday};
use common::app::{launch, TestApp, HEADER};
use std::collections::{BTreeMap, HashSet};

const NEW_YORK: chrono_tz::Tz = chrono_tz::America::New_York;

/// Monday 11 January 2027, 09:00 New York; due Friday 5 February; mornings only.
const BEFORE: &str = r#"
slug = "edited"
name = "SOAR for Procurement Professionals"
course_url = "https://train.example.org/course/1"
contact = "ambassador@hospital.example.org"
starts_at = "2027-01-11T14:00:00Z"
due = "2027-02-05"
max_per_hour = 10

[audience]
include = { department = ["Procurement"] }

[send_window]
days = "Mon-Fri"
hours = "09:00-12:00"
time_zone = "America/New_York"

[[steps]]
name = "announcement"
at = "0s"
template = "news_item"

[[steps]]
name = "reminder-1"
at = "7d"
template = "reminder"

[[steps]]
name = "last-call"
at = "due-2d"
template = "reminder"

[[steps]]
name = "thanks"
on = "completion"
template = "thanks"
"#;

/// The same campaign due a week later, afternoons only, five an hour.
fn after() -> String {
    BEFORE
        .replace("due = \"2027-02-05\"", "due = \"2027-02-12\"")
        .replace("hours = \"09:00-12:00\"", "hours = \"13:00-15:00\"")
        .replace("max_per_hour = 10", "max_per_hour = 5")
}

fn roster() -> String {
    let mut csv = format!("{HEADER}\n");
    for i in 1..=40 {
        csv.push_str(&format!(
            "E{i},P{i},X,p{i}@hospital.example.org,Procurement,Buyer,Main,,\n"
        ));
    }
    csv
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    id: i64,
    recipient: String,
    step: String,
    status: String,
    scheduled_at: i64,
    not_before: i64,
    accepted_at: Option<i64>,
}

async fn rows(t: &TestApp) -> Vec<Row> {
    sqlx::query_as(
        "SELECT id, recipient, step, status, scheduled_at, not_before, accepted_at FROM outbox ORDER BY id",
    )
    .fetch_all(t.store().pool())
    .await
    .unwrap()
}

async fn due_dates(t: &TestApp) -> Vec<i64> {
    sqlx::query_scalar("SELECT due_at FROM enrolments WHERE completed_at IS NULL")
        .fetch_all(t.store().pool())
        .await
        .unwrap()
}

/// The end of a day in New York, as the campaign resolves a due date.
fn end_of(date: NaiveDate) -> i64 {
    let end = date.and_hms_opt(23, 59, 59).unwrap();
    to_millis(
        NEW_YORK
            .from_local_datetime(&end)
            .unwrap()
            .with_timezone(&Utc),
    )
}

/// Monday to Friday, 13:00 to 15:00 New York.
fn in_new_window(at: DateTime<Utc>) -> bool {
    let local = at.with_timezone(&NEW_YORK);
    !matches!(local.weekday(), Weekday::Sat | Weekday::Sun) && (13..15).contains(&local.hour())
}

fn per_hour(instants: impl Iterator<Item = i64>) -> BTreeMap<i64, i64> {
    let mut hours = BTreeMap::new();
    for at in instants {
        *hours.entry(at.div_euclid(3_600_000)).or_default() += 1;
    }
    hours
}

#[tokio::test]
async fn an_edit_of_due_date_and_window_mid_rollout_reaches_every_enrolment_and_pending_message() {
    let t = TestApp::spawn().await;
    t.import(&roster()).await;
    t.apply(BEFORE).await;
    // 40 announcements, ten an hour: 30 fit Monday morning, 10 wait for Tuesday.
    t.tick_at(launch()).await;
    t.tick_at(launch() + Duration::minutes(70)).await;
    let sent_before: Vec<Row> = rows(&t)
        .await
        .into_iter()
        .filter(|r| r.status == "sent")
        .collect();
    assert!(!sent_before.is_empty(), "some were sent before the edit");
    // One message is being sent right now: a worker holds its claim.
    let now = to_millis(t.clock.now()) + 3_600_000;
    let held = t
        .store()
        .claim_due(now, now + 600_000, "busy-worker", 1, &[])
        .await
        .unwrap();
    let in_flight = rows(&t)
        .await
        .into_iter()
        .find(|r| r.id == held[0].id)
        .unwrap();
    let pending_before = rows(&t)
        .await
        .iter()
        .filter(|r| r.status == "pending")
        .count();
    assert!(pending_before > 10, "many wait: {pending_before}");

    let dry = t.apply_with(&after(), true, false).await.unwrap();
    assert!(!dry.applied);
    assert_eq!(dry.effect.due_dates, 40, "{dry:?}");
    assert_eq!(
        dry.effect.messages_moved as usize, pending_before,
        "{dry:?}"
    );
    let keys: Vec<&str> = dry.changes.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["due", "send_window", "max_per_hour"], "{dry:?}");
    assert!(
        due_dates(&t)
            .await
            .iter()
            .all(|d| *d == end_of(date(2027, 2, 5))),
        "a dry run writes nothing"
    );

    let applied = t.apply(&after()).await;
    assert!(applied.applied && applied.changed);

    let new_due = end_of(date(2027, 2, 12));
    let dues = due_dates(&t).await;
    assert_eq!(dues.len(), 40);
    assert!(
        dues.iter().all(|d| *d == new_due),
        "every open enrolment: {dues:?}"
    );
    let now_rows = rows(&t).await;
    let pending: Vec<&Row> = now_rows.iter().filter(|r| r.status == "pending").collect();
    assert_eq!(pending.len(), pending_before);
    for r in &pending {
        assert!(
            in_new_window(from_millis(r.not_before)),
            "outside the new window: {r:?}"
        );
        assert!(r.not_before >= r.scheduled_at, "before its time: {r:?}");
    }
    let flight = now_rows.iter().find(|r| r.id == in_flight.id).unwrap();
    assert_eq!(
        (
            flight.status.as_str(),
            flight.not_before,
            flight.scheduled_at
        ),
        ("sending", in_flight.not_before, in_flight.scheduled_at),
        "the claimed message is not touched"
    );
    // The worker finishes it as it was claimed.
    let sent = ambassador::store::outbox::Mark::Sent {
        id: in_flight.id,
        at: now,
        reply: "250 2.0.0 accepted".into(),
    };
    t.store()
        .record_marks("busy-worker", &[sent])
        .await
        .unwrap();

    // Run the rollout to its end: reminders and last calls included.
    for _ in 0..400 {
        let Some(at) = t.store().next_due().await.unwrap() else {
            let next = t.clock.now() + Duration::hours(12);
            if next > from_millis(new_due) + Duration::days(2) {
                break;
            }
            t.tick_at(next).await;
            continue;
        };
        t.tick_at(from_millis(at).max(t.clock.now())).await;
    }

    let all = rows(&t).await;
    let applied_at = launch() + Duration::minutes(70);
    for r in all.iter().filter(|r| r.status == "sent") {
        if r.id == in_flight.id || sent_before.iter().any(|b| b.id == r.id) {
            continue;
        }
        let at = from_millis(r.not_before);
        assert!(
            at > applied_at && in_new_window(at),
            "sent after the edit outside its window: {r:?}"
        );
        assert!(r.accepted_at >= Some(r.not_before), "sent early: {r:?}");
    }
    for b in &sent_before {
        let now = all.iter().find(|r| r.id == b.id).unwrap();
        assert_eq!(
            (now.status.as_str(), now.accepted_at),
            ("sent", b.accepted_at)
        );
    }
    let after_edit = per_hour(
        all.iter()
            .filter(|r| r.id != in_flight.id && r.not_before > to_millis(applied_at))
            .map(|r| r.not_before),
    );
    assert!(
        after_edit.values().all(|n| *n <= 5),
        "five an hour: {after_edit:?}"
    );
    let last_calls: Vec<&Row> = all.iter().filter(|r| r.step == "last-call").collect();
    assert_eq!(last_calls.len(), 40, "{all:#?}");
    let two_days_before = new_due - 2 * 86_400_000;
    assert!(
        last_calls.iter().all(|r| r.scheduled_at == two_days_before),
        "the last call counts back from the new due date"
    );
    let unique: HashSet<(&str, &str)> = all
        .iter()
        .map(|r| (r.recipient.as_str(), r.step.as_str()))
        .collect();
    assert_eq!(unique.len(), all.len(), "one message per person and step");
    assert!(t.smtp.duplicates().is_empty(), "nothing sent twice");
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A narrower audience removes people (their pending messages cancelled,
/// what they were sent kept); a wider one enrols people at once.
#[tokio::test]
async fn an_edit_of_the_audience_enrols_and_removes_people() {
    let t = TestApp::spawn().await;
    let mut csv = roster();
    csv.push_str("E41,Sam,Ng,sam.ng@hospital.example.org,Supply Chain,Buyer,Main,,\n");
    t.import(&csv).await;
    t.apply(BEFORE).await;
    t.tick_at(launch()).await;
    t.tick_at(launch() + Duration::minutes(70)).await;
    let sent = |rows: &[Row]| -> Vec<(String, i64)> {
        rows.iter()
            .filter(|r| r.status == "sent")
            .map(|r| (r.recipient.clone(), r.accepted_at.unwrap()))
            .collect()
    };
    let before = rows(&t).await;
    let nobody = BEFORE.replace(
        "include = { department = [\"Procurement\"] }",
        "include = { department = [\"Nursing\"] }",
    );
    let err = t.apply_with(&nobody, true, false).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("matches none of the 41 active people"),
        "a dry run says so too: {err}"
    );
    t.apply_with(&nobody, true, true)
        .await
        .expect("--allow-empty accepts it");
    let err = t.apply_with(&nobody, false, false).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("matches none of the 41 active people"),
        "{err}"
    );
    let either = BEFORE.replace(
        "include = { department = [\"Procurement\"] }",
        "include = { department = [\"Supply Chain\"] }\nexclude = { department = [\"Procurement\"] }",
    );
    let swapped = t.apply(&either).await;
    assert_eq!(
        (
            swapped.effect.enrolled,
            swapped.effect.removed,
            swapped.audience
        ),
        (1, 40, 1),
        "{swapped:?}"
    );
    let after = rows(&t).await;
    assert_eq!(sent(&after), sent(&before), "what was sent stays sent");
    assert!(
        after
            .iter()
            .filter(|r| r.recipient != "sam.ng@hospital.example.org")
            .all(|r| r.status == "sent" || r.status == "cancelled"),
        "no pending message for people who left: {after:#?}"
    );
    t.tick_at(launch() + Duration::minutes(71)).await;
    let sam: Vec<Row> = rows(&t)
        .await
        .into_iter()
        .filter(|r| r.recipient == "sam.ng@hospital.example.org")
        .collect();
    assert_eq!(sam.len(), 1, "Sam is enrolled and announced: {sam:?}");
    let report = t.tick_at(launch() + Duration::days(30)).await.0;
    assert_eq!(report.left, 0, "the planner keeps the same audience");
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM enrolments WHERE left_at IS NULL AND completed_at IS NULL",
    )
    .fetch_one(t.store().pool())
    .await
    .unwrap();
    assert_eq!(open, 1, "only Sam is still in the campaign");
}
