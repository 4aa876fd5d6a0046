//! Completion reports against a real database: a TRAIN-style export where
//! learners registered with personal addresses, status columns, times in
//! the future, and one completion recorded by hand.

mod common;

use ambassador::completions::{self, CompletionError, CompletionOptions, CompletionReport};
use ambassador::domain::EmailAddress;
use chrono::{DateTime, Duration, Utc};
use common::app::{launch, TestApp, CAMPAIGN};
use common::smtp::Faults;
use std::collections::BTreeMap;

const TZ: chrono_tz::Tz = chrono_tz::America::Chicago;

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(full).unwrap()
}

/// The Workday roster, everyone enrolled in the test campaign at launch.
async fn enrolled() -> TestApp {
    let t = TestApp::spawn_with(Faults::default(), |_| {}).await;
    let roster = String::from_utf8(fixture("roster/workday_export.csv")).unwrap();
    t.import(&roster).await;
    t.apply(&CAMPAIGN.replace(
        "include = { department = [\"Supply Chain\", \"Procurement\"] }",
        "",
    ))
    .await;
    t.tick_at(launch()).await;
    t
}

fn february() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2027-02-01T15:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

async fn import(t: &TestApp, bytes: &[u8]) -> Result<CompletionReport, CompletionError> {
    let options = CompletionOptions {
        campaign: Some("test".into()),
        dry_run: false,
        file_name: "train.csv".into(),
    };
    completions::import(t.store(), &t.clock, TZ, &BTreeMap::new(), bytes, &options).await
}

#[tokio::test]
async fn personal_addresses_match_by_unique_name_for_review_and_shared_names_stay_unmatched() {
    let t = enrolled().await;
    t.clock.set(february());

    let report = import(&t, &fixture("completions/train_export.csv"))
        .await
        .unwrap();

    assert_eq!(
        (
            report.rows,
            report.matched,
            report.newly_completed,
            report.not_completed
        ),
        (10, 8, 8, 3)
    );
    let by_name: Vec<(u64, &str, &str)> = report
        .matched_by_name
        .iter()
        .map(|m| (m.line, m.who.as_str(), m.email.as_str()))
        .collect();
    assert_eq!(
        by_name,
        [
            (
                3,
                "dhernandez.home@mail.example.com (Daniel Hernández)",
                "daniel.hernandez@mercyvalley.example.org"
            ),
            (
                6,
                "bobby.smith.jr@mail.example.net (Robert Smith, Jr.)",
                "robert.smith@mercyvalley.example.org"
            ),
            (
                13,
                "kenji.w@mail.example.org (Kenji Watanabe)",
                "kenji.watanabe@mercyvalley.example.org"
            ),
        ]
    );
    let unmatched: Vec<(u64, &str)> = report
        .unmatched
        .iter()
        .map(|u| (u.line, u.reason.as_str()))
        .collect();
    assert_eq!(
        unmatched,
        [
            (8, "2 people are called Maria Garcia, so the name cannot say which; record the completion by hand (ambassador completions add EMAIL --date YYYY-MM-DD)"),
            (12, "no one in the roster has the address zoe.stranger@mail.example.com, nor the name Zoe Stranger"),
        ]
    );
}

#[tokio::test]
async fn a_progress_status_column_is_read() {
    let t = enrolled().await;
    t.clock.set(february());
    let csv = "Email,Progress Status,Completion Date\n\
               priya.raman@mercyvalley.example.org,In Progress,01/20/2027\n\
               wei.chen@mercyvalley.example.org,Completed,01/20/2027\n";

    let report = import(&t, csv.as_bytes()).await.unwrap();

    assert_eq!((report.newly_completed, report.not_completed), (1, 1));
}

#[tokio::test]
async fn completion_times_in_the_future_are_refused_with_their_line() {
    let t = enrolled().await;
    t.clock.set(february());
    let csv = "Email,Completion Date\n\
               priya.raman@mercyvalley.example.org,2027-02-01 10:00\n\
               wei.chen@mercyvalley.example.org,2027-02-01 10:30\n\
               olivia.brown@mercyvalley.example.org,02/02/2027\n";

    let err = import(&t, csv.as_bytes()).await.unwrap_err();

    let CompletionError::Malformed(report) = err else {
        panic!("refused as malformed: {err}");
    };
    let lines: Vec<(u64, &str)> = report
        .malformed
        .iter()
        .map(|e| (e.line, e.column.as_str()))
        .collect();
    // 15:00 UTC is 09:00 in Chicago: 10:00 and 10:30 local are later today.
    assert_eq!(
        lines,
        [
            (2, "Completion Date"),
            (3, "Completion Date"),
            (4, "Completion Date")
        ]
    );
    assert!(
        report.malformed[0]
            .reason
            .starts_with("\"2027-02-01 10:00\" is in the future (it is now 2027-02-01 09:00 CST)"),
        "{}",
        report.malformed[0].reason
    );
    assert_eq!(report.newly_completed, 0);
}

#[tokio::test]
async fn todays_date_counts_from_now_and_shows_in_the_report_at_once() {
    let t = enrolled().await;
    t.clock.set(february());
    let csv = "Email,Completion Date\npriya.raman@mercyvalley.example.org,02/01/2027\n";

    let report = import(&t, csv.as_bytes()).await.unwrap();

    assert_eq!(report.newly_completed, 1);
    let row = ambassador::campaign::find(t.store(), "test").await.unwrap();
    let figures = ambassador::report::build(t.store(), &row, february(), 3)
        .await
        .unwrap();
    assert_eq!(figures.outcome.completed, 1);
}

#[tokio::test]
async fn one_completion_is_recorded_by_hand_and_the_first_one_stands() {
    let t = enrolled().await;
    t.clock.set(february());
    let row = ambassador::campaign::find(t.store(), "test").await.unwrap();
    let maria = EmailAddress::parse("maria.garcia2@mercyvalley.example.org").unwrap();

    let done = completions::add_one(t.store(), &t.clock, TZ, &row, &maria, "2027-01-23")
        .await
        .unwrap();

    assert!(done.recorded);
    assert_eq!(
        done.completed_at,
        DateTime::parse_from_rfc3339("2027-01-23T18:00:00Z").unwrap()
    );
    let again = completions::add_one(t.store(), &t.clock, TZ, &row, &maria, "2027-01-25")
        .await
        .unwrap();
    assert!(!again.recorded);
    let tomorrow = (february() + Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let future = completions::add_one(t.store(), &t.clock, TZ, &row, &maria, &tomorrow)
        .await
        .unwrap_err();
    assert!(future.to_string().contains("is in the future"), "{future}");
    let stranger = EmailAddress::parse("zoe.stranger@mail.example.com").unwrap();
    let unknown = completions::add_one(t.store(), &t.clock, TZ, &row, &stranger, "2027-01-23")
        .await
        .unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "no one in the roster has the address zoe.stranger@mail.example.com; check it with ambassador roster list"
    );
}
