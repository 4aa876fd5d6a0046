//! Incremental planning: each enrolment's next instant (`next_at`) says
//! when a tick must look at it, so a tick reads only the enrolments whose
//! time has passed, and triggers wake an enrolment when something about it
//! changes. On PostgreSQL too when AMBASSADOR_TEST_PG is set.

mod common;

use ambassador::clock::to_millis;
use ambassador::completions::{self, Completion};
use chrono::{DateTime, Duration, Utc};
use common::app::{launch, person, TestApp, CAMPAIGN, HEADER};

fn day(n: i64) -> DateTime<Utc> {
    launch() + Duration::days(n)
}

fn roster(bob_department: &str) -> String {
    let lines = [
        person(1, "Ann", "A", "Procurement", "Buyer", ""),
        person(2, "Bob", "B", bob_department, "Buyer", ""),
        person(
            3,
            "Cy",
            "C",
            "Procurement",
            "Buyer",
            "boss@hospital.example.org",
        ),
    ];
    format!("{HEADER}\n{}\n", lines.join("\n"))
}

/// The enrolments a tick at `at` would read, by email.
async fn due(t: &TestApp, at: DateTime<Utc>) -> Vec<String> {
    let id = t.campaign_id("test").await;
    let mut due: Vec<String> = t
        .store()
        .due_enrolments(id, to_millis(at))
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.state.person.email)
        .collect();
    due.sort();
    due
}

fn emails(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|n| format!("{n}@hospital.example.org"))
        .collect()
}

#[tokio::test]
async fn a_tick_reads_only_the_enrolments_whose_time_has_passed() {
    let t = TestApp::spawn().await;
    t.import(&roster("Procurement")).await;
    t.apply(CAMPAIGN).await;
    let (plan, _) = t.tick_at(day(0)).await;
    assert_eq!((plan.enrolled, plan.enqueued), (3, 3));

    // Nothing falls due before the first reminder, seven days in.
    assert_eq!(
        due(&t, day(7) - Duration::milliseconds(1)).await,
        emails(&[])
    );
    assert_eq!(due(&t, day(7)).await, emails(&["ann.a", "bob.b", "cy.c"]));
    let (plan, _) = t.tick_at(day(2)).await;
    assert_eq!(plan.enqueued, 0);

    // A completion wakes its enrolment at once; the tick plans the thanks,
    // and nothing more of that person ever falls due.
    let ann = t.staff_id("ann.a@hospital.example.org").await;
    let campaign = t.campaign_id("test").await;
    let at = day(3);
    completions::record(
        t.store(),
        campaign,
        &[Completion { staff_id: ann, at }],
        "report",
        false,
    )
    .await
    .unwrap();
    assert_eq!(due(&t, day(3)).await, emails(&["ann.a"]));
    let (plan, _) = t.tick_at(day(3)).await;
    assert_eq!(plan.enqueued, 1);
    assert_eq!(due(&t, day(60)).await, emails(&["bob.b", "cy.c"]));

    // A changed record wakes its person: Bob's new department is outside
    // the audience, so the tick has him leave.
    t.clock.set(day(4));
    t.import(&roster("Finance")).await;
    assert_eq!(due(&t, day(4)).await, emails(&["bob.b"]));
    let (plan, _) = t.tick_at(day(4)).await;
    assert_eq!(plan.left, 1);
    assert_eq!(due(&t, day(60)).await, emails(&["cy.c"]));

    // Cy's manager gets a digest when the escalation falls due (the day
    // after the due date), then once each week while Cy is open.
    t.tick_at(day(7)).await;
    t.tick_at(day(12)).await;
    assert_eq!(
        due(&t, day(15) - Duration::milliseconds(1)).await,
        emails(&[])
    );
    let (plan, _) = t.tick_at(day(15)).await;
    assert_eq!(plan.enqueued, 1);
    assert_eq!(due(&t, day(15)).await, emails(&[]));
    assert_eq!(due(&t, day(22)).await, emails(&["cy.c"]));
    let digests = t
        .outbox()
        .await
        .into_iter()
        .filter(|(to, step, _)| to == "boss@hospital.example.org" && step == "escalation")
        .count();
    assert_eq!(digests, 1);
    let (plan, _) = t.tick_at(day(22)).await;
    assert_eq!(plan.enqueued, 1, "the next week's digest");
}
