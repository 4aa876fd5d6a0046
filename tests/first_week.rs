//! The admin's first week, end to end on the manual clock: a Workday-style
//! HR export (BOM, semicolons, legal and preferred names, Workday time-zone
//! labels, a cost-centre hierarchy), an own campaign whose audience is the
//! last level of that hierarchy minus contingent workers, an edit of the due
//! date and the send window while the announcements wait for the window,
//! and a TRAIN export where some learners registered with personal
//! addresses. Every person gets the new due date, every message lands
//! inside its window and the hourly limit, and the report matches a count
//! made by hand from the two fixtures.

mod common;

use ambassador::clock::{from_millis, to_millis, Clock};
use ambassador::completions::{self, CompletionOptions};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc, Weekday};
use common::app::TestApp;
use common::smtp::Faults;
use std::collections::{BTreeMap, BTreeSet};

const CHICAGO: chrono_tz::Tz = chrono_tz::America::Chicago;
const PER_HOUR: usize = 4;

/// Sunday 10 January 2027, 08:00 in Chicago: the window (weekdays, office
/// hours) is shut until Monday, so every announcement waits.
const BEFORE: &str = r#"
slug = "soar-2027"
name = "SOAR for Procurement Professionals"
course_url = "https://train.example.org/course/1"
contact = "ambassador@mercyvalley.example.org"
starts_at = "2027-01-10T14:00:00Z"
due = "2027-01-22"
max_per_hour = 4

[audience]
include = { department = { last = ["Procurement", "Supply Chain"] } }
exclude = { worker_type = "Contingent Worker" }

[send_window]
days = "Mon-Fri"
hours = "08:00-17:00"
time_zone = "America/Chicago"

[[steps]]
name = "announcement"
at = "0s"
template = "news_item"

[[steps]]
name = "reminder"
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

/// The edit an admin makes on Sunday afternoon: a week more, and any time.
fn after() -> String {
    BEFORE
        .replace("due = \"2027-01-22\"", "due = \"2027-01-29\"")
        .replace(
            "[send_window]\ndays = \"Mon-Fri\"\nhours = \"08:00-17:00\"\ntime_zone = \"America/Chicago\"\n",
            "",
        )
        .replace("max_per_hour = 4\n", "max_per_hour = 4\nsend_window = \"always\"\n")
}

/// Counted by hand from tests/fixtures/roster/workday_export.csv: the last
/// level of "Cost Center Hierarchy" is Procurement (W1002-W1005, W1011,
/// W1012) or Supply Chain (W1001, W1016, W1017, W1024); W1012 is a
/// contingent worker.
const AUDIENCE: [&str; 9] = [
    "margaret.okonkwo",
    "daniel.hernandez",
    "priya.raman",
    "thomas.obrien",
    "aisha.bello",
    "hannah.kowalski",
    "kenji.watanabe",
    "olivia.brown",
    "noor.haddad",
];

/// Counted by hand from tests/fixtures/completions/train_export.csv: who in
/// the audience completed, and how the row finds them. Daniel and Kenji
/// registered with personal addresses and have unique names in the roster.
const COMPLETED: [(&str, &str); 5] = [
    ("margaret.okonkwo", "email"),
    ("daniel.hernandez", "name"),
    ("priya.raman", "email"),
    ("olivia.brown", "email"),
    ("kenji.watanabe", "name"),
];

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn address(name: &str) -> String {
    format!("{name}@mercyvalley.example.org")
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

/// The end of a day in Chicago, as a fixed `due` date resolves.
fn end_of(date: NaiveDate) -> i64 {
    let end = date.and_hms_opt(23, 59, 59).unwrap();
    to_millis(
        CHICAGO
            .from_local_datetime(&end)
            .unwrap()
            .with_timezone(&Utc),
    )
}

fn office_hours(at: DateTime<Utc>) -> bool {
    let local = at.with_timezone(&CHICAGO);
    !matches!(local.weekday(), Weekday::Sat | Weekday::Sun) && (8..17).contains(&local.hour())
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct Message {
    recipient: String,
    step: String,
    status: String,
    scheduled_at: i64,
    not_before: i64,
    accepted_at: Option<i64>,
}

async fn outbox(t: &TestApp) -> Vec<Message> {
    sqlx::query_as(
        "SELECT recipient, step, status, scheduled_at, not_before, accepted_at FROM outbox ORDER BY id",
    )
    .fetch_all(t.store().pool())
    .await
    .unwrap()
}

async fn open_due_dates(t: &TestApp) -> BTreeMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT s.email, e.due_at FROM enrolments e JOIN staff s ON s.id = e.staff_id
         WHERE e.completed_at IS NULL AND e.exempted_at IS NULL AND e.left_at IS NULL",
    )
    .fetch_all(t.store().pool())
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// Ticks the planner and the worker at every instant something falls due,
/// up to `until`.
async fn run_until(t: &TestApp, until: DateTime<Utc>) {
    for _ in 0..500 {
        let next = match t.store().next_due().await.unwrap() {
            Some(due) => from_millis(due).max(t.clock.now()),
            None => until,
        };
        if next >= until {
            break;
        }
        t.tick_at(next).await;
    }
    t.tick_at(until).await;
}

#[tokio::test]
async fn a_workday_export_an_edit_mid_rollout_and_a_train_export_add_up() {
    let t = TestApp::spawn_with(Faults::default(), |s| s.organisation.time_zone.0 = CHICAGO).await;
    let roster = String::from_utf8(fixture("roster/workday_export.csv")).unwrap();
    let imported = t.import(&roster).await;
    assert_eq!(imported.counts.added, 24, "{imported:?}");
    assert_eq!(imported.counts.rejected, 0, "{imported:?}");

    t.apply(BEFORE).await;
    t.tick_at(at("2027-01-10T14:00:00Z")).await;
    let waiting = outbox(&t).await;
    let invited: BTreeSet<String> = waiting.iter().map(|m| m.recipient.clone()).collect();
    let expected: BTreeSet<String> = AUDIENCE.iter().map(|n| address(n)).collect();
    assert_eq!(invited, expected, "the audience, counted by hand");
    assert!(
        waiting
            .iter()
            .all(|m| m.status == "pending" && office_hours(from_millis(m.not_before))),
        "held for Monday's office hours: {waiting:#?}"
    );

    // Sunday 10:00 in Chicago: the admin moves the due date a week and
    // lets the announcements go at any time.
    t.clock.set(at("2027-01-10T16:00:00Z"));
    let edit = t.apply_with(&after(), false, false).await.unwrap();
    assert!(edit.applied, "{edit:?}");
    let new_due = end_of(NaiveDate::from_ymd_opt(2027, 1, 29).unwrap());
    let dues = open_due_dates(&t).await;
    assert_eq!(dues.len(), AUDIENCE.len(), "{dues:?}");
    assert!(
        dues.values().all(|d| *d == new_due),
        "every open enrolment is due on the new date: {dues:?}"
    );
    let moved = outbox(&t).await;
    assert!(
        moved
            .iter()
            .all(|m| m.not_before < to_millis(at("2027-01-11T14:00:00Z"))),
        "no announcement still waits for Monday: {moved:#?}"
    );

    // The week runs; the TRAIN export is downloaded on Thursday the 28th.
    run_until(&t, at("2027-01-28T18:00:00Z")).await;
    let options = CompletionOptions {
        campaign: Some("soar-2027".into()),
        dry_run: false,
        file_name: "train_export.csv".into(),
    };
    let report = completions::import(
        t.store(),
        &t.clock,
        CHICAGO,
        &BTreeMap::new(),
        &fixture("completions/train_export.csv"),
        &options,
    )
    .await
    .unwrap();
    let by_name: BTreeSet<String> = report
        .matched_by_name
        .iter()
        .map(|m| m.email.clone())
        .collect();
    for (name, how) in COMPLETED {
        assert_eq!(
            by_name.contains(&address(name)),
            how == "name",
            "{name} matched by {how}: {report:?}"
        );
    }
    run_until(&t, at("2027-02-01T18:00:00Z")).await;

    // Every message: inside the window in force when it was placed, never
    // before its time, never more than the hourly limit in a clock hour.
    let all = outbox(&t).await;
    let edited_at = to_millis(at("2027-01-10T16:00:00Z"));
    let mut hours: BTreeMap<i64, usize> = BTreeMap::new();
    for m in all.iter().filter(|m| m.status == "sent") {
        let sent = m.accepted_at.expect("a sent message has its time");
        assert!(sent >= m.not_before && m.not_before >= m.scheduled_at.min(edited_at));
        if sent < edited_at {
            assert!(office_hours(from_millis(sent)), "{m:?}");
        }
        *hours.entry(sent.div_euclid(3_600_000)).or_default() += 1;
    }
    assert!(
        hours.values().all(|n| *n <= PER_HOUR),
        "at most {PER_HOUR} an hour: {hours:?}"
    );
    let sent = |step: &str| -> BTreeSet<String> {
        all.iter()
            .filter(|m| m.step == step && m.status == "sent")
            .map(|m| m.recipient.clone())
            .collect()
    };
    assert_eq!(sent("announcement"), expected);
    // The last call counts back from the new due date (27 January), before
    // the export came in, so everyone still open then gets one.
    let last_calls: Vec<&Message> = all.iter().filter(|m| m.step == "last-call").collect();
    assert!(
        last_calls
            .iter()
            .all(|m| m.scheduled_at == new_due - 2 * 86_400_000),
        "{last_calls:#?}"
    );
    let finishers: BTreeSet<String> = COMPLETED.iter().map(|(n, _)| address(n)).collect();
    assert_eq!(sent("thanks"), finishers);

    // The report, as of Monday 1 February, against the hand count.
    let row = ambassador::campaign::find(t.store(), "soar-2027")
        .await
        .unwrap();
    let r = ambassador::report::build(t.store(), &row, at("2027-02-01T18:00:00Z"), 3)
        .await
        .unwrap();
    assert_eq!(
        (
            r.population.enrolled,
            r.population.exempted,
            r.population.left
        ),
        (AUDIENCE.len() as u64, 0, 0)
    );
    assert_eq!(r.reach.people_reached, AUDIENCE.len() as u64);
    assert_eq!(r.outcome.completed, COMPLETED.len() as u64);
    assert_eq!(r.outcome.completed_on_time, COMPLETED.len() as u64);
    assert_eq!(r.outcome.overdue, (AUDIENCE.len() - COMPLETED.len()) as u64);
    assert!(r.outcome.median_days_to_complete.is_some());
    // The terminal table shows each department's whole hierarchy.
    let table = ambassador::report::render::table(&r);
    assert!(
        table.contains("  Mercy Valley Health > Operations > Procurement  "),
        "{table}"
    );
}
