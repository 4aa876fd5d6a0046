//! A restart on the same host takes back at once the messages (and the
//! weekly summary) its SIGKILLed predecessor left claimed, with a lease long
//! enough (10 minutes) that waiting for it would fail the test; a live
//! instance on the same host keeps its claims. On PostgreSQL when
//! AMBASSADOR_TEST_PG is set, else SQLite.

mod common;

use common::app::TestDb;
use common::process::{deploy, serve, terminate};
use common::smtp::{Faults, SmtpServer};
use std::collections::{BTreeMap, HashSet};
use std::process::Child;
use std::time::Duration;

const PEOPLE: usize = 20;
const CONCURRENCY: usize = 2;
const BOARD: &str = "board@hospital.example.org";
/// Two campaign messages in flight at a time, a long lease, and the weekly
/// summary due at once (on its own SMTP connection).
const SETTINGS: &str =
    "[delivery]\nconcurrency = 2\nmax_per_second = 0\nlease = \"10m\"\nplan_every = \"1s\"\n\
     [report]\nrecipients = [\"board@hospital.example.org\"]\nweekly_cron = \"* * * * * *\"\n";

/// A `serve` process that is killed if the test ends without stopping it.
struct Instance(Child);

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// outbox id -> (leased_by, lease_until) of every claimed message.
async fn claims(url: &str) -> BTreeMap<i64, (String, i64)> {
    let store = ambassador::store::Store::open(url, 1).await.unwrap();
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT id, leased_by, lease_until FROM outbox WHERE status = 'sending' ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    store.close().await;
    rows.into_iter()
        .map(|(id, by, until)| (id, (by, until)))
        .collect()
}

/// (claimed_by, claimed_at) of the scheduled summaries not sent.
async fn summary_claims(url: &str) -> Vec<(String, i64)> {
    let store = ambassador::store::Store::open(url, 1).await.unwrap();
    let rows = sqlx::query_as(
        "SELECT claimed_by, claimed_at FROM weekly_reports WHERE kind = 'weekly' AND outcome IS NULL",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    store.close().await;
    rows
}

/// Messages that went to the board: the weekly summaries.
fn summaries(smtp: &SmtpServer) -> usize {
    smtp.messages()
        .iter()
        .filter(|m| m.recipients.iter().any(|r| r == BOARD))
        .count()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_takes_back_at_once_what_the_killed_process_held() {
    let db = TestDb::create().await;
    let smtp = SmtpServer::start(Faults::default()).await;
    smtp.hold();
    let config = deploy(db.dir.path(), &db.url, smtp.port(), PEOPLE, SETTINGS);
    let log = |name: &str| db.dir.path().join(name);

    let mut first = Instance(serve(&config, &log("first.log")));
    // Two campaign messages and the summary, each held at MAIL FROM.
    smtp.wait_held(CONCURRENCY + 1, Duration::from_secs(60))
        .await;
    first.0.kill().unwrap(); // SIGKILL, mid-send
    first.0.wait().unwrap();
    let left = claims(&db.url).await;
    assert!(left.len() >= CONCURRENCY, "claimed at the kill: {left:?}");
    assert_eq!(
        summary_claims(&db.url).await.len(),
        1,
        "the summary is claimed"
    );
    assert!(
        left.values()
            .all(|(_, until)| *until > now_ms() + 5 * 60_000),
        "the lease is long: waiting for it would time the test out"
    );
    smtp.release();

    let mut second = Instance(serve(&config, &log("second.log")));
    let got = smtp.wait_for(PEOPLE + 1, Duration::from_secs(30)).await;
    let distinct: HashSet<String> = got.iter().flat_map(|m| m.recipients.clone()).collect();
    assert_eq!(
        distinct.len(),
        PEOPLE + 1,
        "everyone's message and the summary went out"
    );
    assert_eq!(summaries(&smtp), 1);
    let text = std::fs::read_to_string(log("second.log")).unwrap();
    assert!(text.contains("took back messages"), "{text}");
    assert!(
        terminate(&mut second.0),
        "the second instance stops cleanly"
    );
    assert!(claims(&db.url).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_instance_on_the_same_host_keeps_its_claims() {
    let db = TestDb::create().await;
    let smtp = SmtpServer::start(Faults::default()).await;
    smtp.hold();
    let config = deploy(db.dir.path(), &db.url, smtp.port(), PEOPLE, SETTINGS);
    let log = |name: &str| db.dir.path().join(name);

    let mut first = Instance(serve(&config, &log("first.log")));
    smtp.wait_held(CONCURRENCY, Duration::from_secs(60)).await;
    let before = claims(&db.url).await;
    assert!(!before.is_empty());

    // The second instance has started sending, so its start-up pass is done.
    let mut second = Instance(serve(&config, &log("second.log")));
    smtp.wait_held(2 * CONCURRENCY, Duration::from_secs(60))
        .await;
    let after = claims(&db.url).await;
    for (id, held) in &before {
        assert_eq!(
            after.get(id),
            Some(held),
            "message {id} stays with its live holder"
        );
    }
    let text = std::fs::read_to_string(log("second.log")).unwrap();
    assert!(!text.contains("took back messages"), "{text}");

    smtp.release();
    let got = smtp.wait_for(PEOPLE + 1, Duration::from_secs(30)).await;
    assert_eq!(got.len(), PEOPLE + 1, "each message once");
    assert_eq!(summaries(&smtp), 1);
    assert!(terminate(&mut first.0));
    assert!(terminate(&mut second.0));
}
