//! The report facts that database triggers keep per enrolment give the
//! same report as the whole history, as of every day of a rollout built
//! through the real paths: planning, delivery over SMTP (one address
//! refused), tracking hits by people, proxies and scanners, completions,
//! an exemption and a leaver. On PostgreSQL too when AMBASSADOR_TEST_PG is set.

mod common;

use ambassador::clock::{to_millis, Clock};
use ambassador::report::{self};
use ambassador::store::report::{CountsFrom, ReportQuery};
use ambassador::tracking::LinkKind;
use chrono::{DateTime, Duration, Utc};
use common::app::{launch, person, TestApp, CAMPAIGN, HEADER};
use common::smtp::Faults;

const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1";
const PROXY: &str = "Mozilla/5.0 (via ggpht.com GoogleImageProxy)";

fn day(n: i64) -> DateTime<Utc> {
    launch() + Duration::days(n)
}

fn roster(without_fay: bool) -> String {
    let mut lines = vec![
        person(1, "Ann", "A", "Procurement", "Buyer", ""),
        person(2, "Bob", "B", "Procurement", "Buyer", ""),
        person(3, "Cy", "C", "Procurement", "Buyer", ""),
        person(4, "Dee", "D", "Procurement", "Buyer", ""),
        person(5, "Eve", "E", "Procurement", "Buyer", ""),
    ];
    if !without_fay {
        lines.push(person(6, "Fay", "F", "Supply Chain", "Buyer", ""));
    }
    format!("{HEADER}\n{}\n", lines.join("\n"))
}

/// A rollout over three weeks, with something happening most days.
async fn history() -> TestApp {
    let faults = Faults::default().reject_rcpt_550("eve.e@hospital.example.org");
    let t = TestApp::spawn_with(faults, |_| {}).await;
    t.import(&roster(false)).await;
    t.apply(&CAMPAIGN.replace(
        "include = { department = [\"Supply Chain\", \"Procurement\"] }",
        "",
    ))
    .await;
    t.tick_at(day(0)).await;
    t.hit("ann.a", "announcement", LinkKind::Open, PHONE, day(1))
        .await;
    t.hit("ann.a", "announcement", LinkKind::Course, PHONE, day(1))
        .await;
    t.hit("bob.b", "announcement", LinkKind::Open, PROXY, day(1))
        .await;
    t.hit("cy.c", "announcement", LinkKind::Course, PROXY, day(1))
        .await;
    t.complete("ann.a", day(2)).await;
    t.tick_at(day(2)).await;
    t.clock.set(day(3));
    t.store()
        .exempt(
            t.campaign_id("test").await,
            t.staff_id("dee.d@hospital.example.org").await,
            "on leave",
            to_millis(day(3)),
            &ambassador::store::exemption::Actor::cli("test"),
        )
        .await
        .unwrap();
    t.tick_at(day(7)).await;
    t.hit(
        "bob.b",
        "reminder-1",
        LinkKind::Open,
        PHONE,
        day(7) + Duration::hours(5),
    )
    .await;
    t.clock.set(day(8));
    t.import(&roster(true)).await;
    t.tick_at(day(8)).await;
    t.hit("cy.c", "reminder-1", LinkKind::Course, PHONE, day(9))
        .await;
    t.complete("bob.b", day(10)).await;
    t.tick_at(day(10)).await;
    t.tick_at(day(12)).await;
    t.tick_at(day(16)).await;
    t.hit("cy.c", "announcement", LinkKind::Open, PHONE, day(17))
        .await;
    t.tick_at(day(20)).await;
    t
}

/// Asserts that the report as of `at` is the same JSON from the facts as
/// from the history (`after` says what led there); returns the messages it
/// counted as sent.
async fn same_report_both_ways(
    t: &TestApp,
    row: &ambassador::store::campaign::CampaignRow,
    at: DateTime<Utc>,
    after: &str,
) -> u64 {
    let facts = report::build_from(t.store(), row, at, 3, CountsFrom::Facts)
        .await
        .unwrap();
    let history = report::build_from(t.store(), row, at, 3, CountsFrom::History)
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_string(&facts).unwrap(),
        serde_json::to_string(&history).unwrap(),
        "as of {at}, after: {after}"
    );
    facts.reach.messages_sent
}

#[tokio::test]
async fn the_facts_give_the_historys_report_as_of_every_day() {
    let t = history().await;
    let row = ambassador::campaign::find(t.store(), "test").await.unwrap();
    let mut reached = 0;
    for n in -1..=22 {
        for at in [day(n), day(n) + Duration::hours(12)] {
            let sent = same_report_both_ways(&t, &row, at, "").await;
            reached = reached.max(sent);
        }
    }
    // The history did happen: messages went out and were counted.
    assert!(reached >= 8, "only {reached} messages counted");
}

/// Counting other steps as the announcement and reminders (the campaign
/// file changed) recounts the facts that depend on it, and a report that
/// names the same steps again writes nothing.
#[tokio::test]
async fn other_report_steps_recount_the_facts() {
    let t = history().await;
    let campaign_id = t.campaign_id("test").await;
    let now = to_millis(t.clock.now());
    let start = to_millis(launch());
    let named = ["last-call".to_string()];
    for (announcement, reminders) in [
        ("reminder-1", &named[..]),
        ("announcement", &[][..]),
        ("announcement", &[][..]),
    ] {
        let q = ReportQuery {
            campaign_id,
            as_of: now,
            start,
            announcement,
            reminders,
        };
        let facts = t
            .store()
            .report_counts_from(&q, CountsFrom::Facts)
            .await
            .unwrap();
        let history = t
            .store()
            .report_counts_from(&q, CountsFrom::History)
            .await
            .unwrap();
        assert_eq!(
            (facts.reminders_sent, &facts.middle_ms, facts.days_counted),
            (
                history.reminders_sent,
                &history.middle_ms,
                history.days_counted
            ),
            "announcement {announcement}, reminders {reminders:?}"
        );
    }
}

/// Changes no code path makes today (a sent message's acceptance moved, a
/// bounce turned into an acceptance, a sent message deleted) still leave
/// the facts equal to the history's: the triggers recount what they touch.
#[tokio::test]
async fn the_facts_follow_changes_that_undo_an_acceptance_or_a_bounce() {
    let t = history().await;
    let row = ambassador::campaign::find(t.store(), "test").await.unwrap();
    let changes = [
        "UPDATE outbox SET accepted_at = accepted_at - 3600000
         WHERE id = (SELECT MIN(id) FROM outbox WHERE status = 'sent' AND enrolment_id IS NOT NULL)",
        "UPDATE outbox SET status = 'sent', accepted_at = updated_at WHERE status = 'undeliverable'",
        "UPDATE outbox SET status = 'undeliverable'
         WHERE id = (SELECT MAX(id) FROM outbox WHERE status = 'sent' AND enrolment_id IS NOT NULL)",
        "DELETE FROM outbox WHERE id = (SELECT MAX(id) FROM outbox WHERE status = 'sent' AND enrolment_id IS NOT NULL
           AND id NOT IN (SELECT outbox_id FROM events) AND id NOT IN (SELECT outbox_id FROM bounces))",
    ];
    for change in changes {
        let done = sqlx::query(change)
            .execute(t.store().pool())
            .await
            .unwrap()
            .rows_affected();
        assert!(done >= 1, "the change touched nothing: {change}");
        for at in [day(5), t.clock.now()] {
            same_report_both_ways(&t, &row, at, change).await;
        }
    }
}

/// The breakdowns the database packs and the report counts are the ones
/// grouping in SQL gives (the reference), group by group, as of days before,
/// during and after the rollout: the report's JSON hides small groups, so
/// this compares the raw counts.
#[tokio::test]
async fn the_packed_breakdowns_count_as_grouping_in_sql_does() {
    let t = history().await;
    let campaign_id = t.campaign_id("test").await;
    let reminders = ["reminder-1".to_string()];
    let sorted_groups = |mut counts: ambassador::store::report::ReportCounts| {
        counts
            .groups
            .sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        counts.groups
    };
    for n in [-1, 2, 9, 22] {
        let q = ReportQuery {
            campaign_id,
            as_of: to_millis(day(n)),
            start: to_millis(launch()),
            announcement: "announcement",
            reminders: &reminders,
        };
        let packed = t.store().report_counts_from(&q, CountsFrom::Facts);
        let grouped = t.store().report_counts_from(&q, CountsFrom::History);
        let (packed, grouped) = (
            sorted_groups(packed.await.unwrap()),
            sorted_groups(grouped.await.unwrap()),
        );
        assert_eq!(packed, grouped, "as of day {n}");
        if n >= 2 {
            let procurement = packed
                .iter()
                .find(|(dimension, value, _)| dimension == "department" && value == "Procurement")
                .map(|(_, _, counts)| *counts)
                .unwrap_or_default();
            assert!(
                procurement.enrolled >= 4 && procurement.completed >= 1,
                "as of day {n}: {packed:?}"
            );
        }
    }
}
