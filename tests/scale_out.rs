//! Several `serve` processes on one PostgreSQL database share the work:
//! every message arrives once (a killed instance's in-flight messages at most
//! twice), all instances send some, and the weekly summary goes out once.
//! Needs PostgreSQL; skips with the reason printed when none answers (CI
//! makes it mandatory with AMBASSADOR_REQUIRE_PG=1).

mod common;

use common::app::{postgres_or_skip, TestDb};
use common::process::{deploy, serve, terminate};
use common::smtp::{Faults, SmtpServer};
use std::collections::HashSet;
use std::time::Duration;

const PEOPLE: usize = 5000;
const CONCURRENCY: usize = 4;
/// Messages one instance has started and not yet marked, at most:
/// `concurrency` sending, the rest sent and waiting for their mark's commit.
const STARTED: usize = ambassador::delivery::AWAITING_MARKS_PER_SLOT * CONCURRENCY;
const BOARD: &str = "board@hospital.example.org";

#[tokio::test(flavor = "multi_thread")]
async fn three_instances_share_the_work_survive_a_kill_and_send_the_weekly_summary_once() {
    let Some(admin) = postgres_or_skip("the multi-instance test").await else {
        return;
    };
    let db = TestDb::postgres(&admin).await;
    let smtp = SmtpServer::start(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[delivery]\nconcurrency = {CONCURRENCY}\nmax_per_second = 400\nlease = \"30s\"\nplan_every = \"1s\"\n\
         [report]\nrecipients = [\"{BOARD}\"]\nweekly_cron = \"* * * * * *\"\n"
    );
    let config = deploy(dir.path(), &db.url, smtp.port(), PEOPLE, &extra);
    let log = |n: usize| dir.path().join(format!("instance-{n}.log"));

    let mut instances: Vec<_> = (0..3).map(|n| serve(&config, &log(n))).collect();
    smtp.wait_for(PEOPLE / 4, Duration::from_secs(120)).await;
    instances[1].kill().unwrap(); // SIGKILL, mid-send
    instances[1].wait().unwrap();
    let at_kill = smtp.messages().len();
    assert!(
        at_kill < PEOPLE,
        "the kill must land mid-send ({at_kill} already received)"
    );

    let mut want = PEOPLE + 1; // everyone, plus the weekly summary
    loop {
        let got = smtp.wait_for(want, Duration::from_secs(120)).await;
        let distinct: HashSet<String> = got.iter().flat_map(|m| m.recipients.clone()).collect();
        if distinct.len() == PEOPLE + 1 {
            break;
        }
        want = got.len() + 1;
    }
    for n in [0, 2] {
        assert!(
            terminate(&mut instances[n]),
            "instance {n} exits cleanly on SIGTERM; its log:\n{}",
            std::fs::read_to_string(log(n)).unwrap_or_default()
        );
    }

    let received = smtp.messages();
    let weekly = received.iter().filter(|m| m.recipients == [BOARD]).count();
    assert_eq!(
        weekly, 1,
        "the weekly summary goes out once, not once per instance"
    );
    let duplicates = smtp.duplicates();
    assert_eq!(received.len(), PEOPLE + 1 + duplicates.len());
    assert!(
        duplicates.len() <= STARTED,
        "only the killed instance's in-flight messages may repeat: {duplicates:?}"
    );
    for n in [0, 2] {
        let text = std::fs::read_to_string(log(n)).unwrap();
        assert!(
            text.contains("weekly summary run"),
            "instance {n} ran the weekly job too"
        );
    }

    let store = ambassador::store::Store::open(&db.url, 2).await.unwrap();
    let by_worker: Vec<(String, i64)> = sqlx::query_as(
        "SELECT leased_by, COUNT(*) FROM outbox WHERE status = 'sent' GROUP BY leased_by",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        by_worker.iter().map(|(_, n)| n).sum::<i64>(),
        PEOPLE as i64,
        "every message marked sent"
    );
    assert!(
        by_worker.len() >= 3,
        "all three instances sent part of the work: {by_worker:?}"
    );
    store.close().await;
}
