//! Delivery against a relay that misbehaves: 451s, connections dropped
//! before and after the reply, 550 for some addresses. Every deliverable
//! message must arrive; duplicates only where the relay stored a message but
//! the reply was lost.

mod common;

use chrono::Duration;
use common::app::{launch, person, TestApp, CAMPAIGN, HEADER};
use common::smtp::Faults;
use std::collections::HashSet;

const REJECTED: [&str; 2] = ["p3.x@hospital.example.org", "p17.x@hospital.example.org"];

fn staff(n: u32) -> String {
    let mut csv = String::from(HEADER);
    for i in 1..=n {
        csv.push('\n');
        csv.push_str(&person(
            i,
            &format!("P{i}"),
            "X",
            "Procurement",
            "Buyer",
            "",
        ));
    }
    csv.push('\n');
    csv
}

#[tokio::test]
async fn every_deliverable_message_arrives_despite_faults_and_550s_are_recorded() {
    let faults = Faults::default()
        .reject_rcpt_550(REJECTED[0])
        .reject_rcpt_550(REJECTED[1])
        .temp_fail_451_every_nth(3)
        .drop_before_reply_every_nth(4)
        .drop_after_mail_every_nth(5);
    let t = TestApp::spawn_with(faults, |s| s.delivery.max_attempts = 10).await;
    t.import(&staff(30)).await;
    t.apply(CAMPAIGN).await;
    let mut at = launch();
    t.tick_at(at).await;
    for _ in 0..20 {
        let pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')",
        )
        .fetch_one(t.store().pool())
        .await
        .unwrap();
        if pending == 0 {
            break;
        }
        // Retries wait for their backoff on the manual clock; an hour covers it.
        at += Duration::hours(1);
        t.tick_at(at).await;
    }
    let outbox = t.outbox().await;
    let status_of = |who: &str| {
        outbox
            .iter()
            .find(|(r, s, _)| r == who && s == "announcement")
            .map(|(_, _, st)| st.clone())
            .unwrap()
    };
    for rejected in REJECTED {
        assert_eq!(status_of(rejected), "undeliverable");
    }
    let received = t.smtp.messages();
    let delivered: HashSet<String> = received.iter().flat_map(|m| m.recipients.clone()).collect();
    assert_eq!(
        delivered.len(),
        28,
        "every deliverable address got its announcement"
    );
    for r in &delivered {
        assert_eq!(status_of(r), "sent", "{r}");
    }
    let faults = t.smtp.fault_counts();
    assert!(
        faults.temp_failed_451 > 0
            && faults.dropped_before_reply > 0
            && faults.dropped_after_mail > 0,
        "{faults:?}"
    );
    let duplicates = t.smtp.duplicates();
    assert_eq!(
        received.len(),
        28 + duplicates.len(),
        "extra copies are exactly the duplicates"
    );
    assert!(
        duplicates.len() <= faults.dropped_before_reply,
        "{} duplicates, {} replies lost",
        duplicates.len(),
        faults.dropped_before_reply
    );
    let reply: String = sqlx::query_scalar("SELECT smtp_reply FROM outbox WHERE recipient = $1")
        .bind(REJECTED[0])
        .fetch_one(t.store().pool())
        .await
        .unwrap();
    assert!(reply.contains("550"), "{reply}");
}

#[tokio::test]
async fn a_message_that_keeps_failing_stops_at_max_attempts() {
    let t = TestApp::spawn_with(Faults::default().temp_fail_451_every_nth(1), |s| {
        s.delivery.max_attempts = 1
    })
    .await;
    t.import(&staff(1)).await;
    t.apply(CAMPAIGN).await;
    t.tick_at(launch()).await;
    assert_eq!(
        t.outbox().await,
        vec![(
            "p1.x@hospital.example.org".into(),
            "announcement".into(),
            "failed".into()
        )]
    );
}
