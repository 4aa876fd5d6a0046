//! The real binary, killed with SIGKILL mid-send and started again, loses
//! nothing; only messages in flight at the kill may arrive twice, and then
//! with the same Message-ID. SIGTERM drains and exits cleanly.

mod common;

use common::process::{deploy, serve};
use common::smtp::{Faults, SmtpServer};
use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

const PEOPLE: usize = 300;
const CONCURRENCY: usize = 4;
/// Messages started and not yet marked, at most: `concurrency` sending,
/// the rest sent and waiting for their mark's group commit.
const STARTED: usize = ambassador::delivery::AWAITING_MARKS_PER_SLOT * CONCURRENCY;

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_send_loses_nothing_and_sigterm_exits_cleanly() {
    let smtp = SmtpServer::start(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("amb.db").display());
    let delivery = format!("[delivery]\nconcurrency = {CONCURRENCY}\nmax_per_second = 300\nlease = \"2s\"\nplan_every = \"1s\"\n");
    let config = deploy(dir.path(), &db_url, smtp.port(), PEOPLE, &delivery);

    let mut first = serve(&config, &dir.path().join("first.log"));
    smtp.wait_for(PEOPLE / 3, Duration::from_secs(60)).await;
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let before_restart = smtp.messages().len();
    assert!(
        before_restart < PEOPLE,
        "the kill must land mid-send ({before_restart} already sent)"
    );

    // Messages the relay took but the dead process never marked are sent
    // again once their lease expires: exactly those may arrive twice.
    let store = ambassador::store::Store::open(&db_url, 1).await.unwrap();
    let (marked, in_flight) = (count(&store, "sent").await, count(&store, "sending").await);
    // A worker keeps up to 4 × its concurrency claimed ahead, and up to
    // 4 × its concurrency started (sending, or sent and waiting for the
    // mark's commit: those may repeat).
    assert!(
        in_flight <= 4 * CONCURRENCY + STARTED,
        "{in_flight} claimed at the kill"
    );
    let unmarked = before_restart - marked;
    assert!(
        unmarked <= STARTED.min(in_flight),
        "{unmarked} accepted but unmarked, {in_flight} claimed"
    );

    let mut second = serve(&config, &dir.path().join("second.log"));
    let mut want = PEOPLE + unmarked;
    loop {
        let got = smtp.wait_for(want, Duration::from_secs(60)).await;
        let distinct: HashSet<String> = got.iter().flat_map(|m| m.recipients.clone()).collect();
        // Everyone has theirs, and every unmarked message has been resent;
        // the SIGTERM drain below records the last marks.
        if distinct.len() == PEOPLE && got.len() >= PEOPLE + unmarked {
            break;
        }
        want = got.len() + 1;
    }

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(second.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = second.wait().unwrap();
    let log = std::fs::read_to_string(dir.path().join("second.log")).unwrap();
    assert!(exit.success(), "SIGTERM exits with 0: {exit:?}\n{log}");
    assert!(log.contains("no message left claimed"), "{log}");

    // Both processes are gone: what arrived is final.
    let received = smtp.messages();
    let duplicates = smtp.duplicates();
    assert_eq!(received.len(), PEOPLE + duplicates.len());
    assert!(
        duplicates.len() >= unmarked && duplicates.len() <= STARTED,
        "only messages in flight at the kill may repeat: {duplicates:?}"
    );
    assert_eq!(count(&store, "sent").await, PEOPLE);
}

async fn count(store: &ambassador::store::Store, status: &str) -> usize {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = $1")
        .bind(status)
        .fetch_one(store.pool())
        .await
        .unwrap();
    n as usize
}
