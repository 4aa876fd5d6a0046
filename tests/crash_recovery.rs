//! The real binary, killed with SIGKILL mid-send and started again, loses
//! nothing; only messages in flight at the kill may arrive twice, and then
//! with the same Message-ID. SIGTERM drains and exits cleanly.

mod common;

use common::process::{run_ok, serve};
use common::smtp::{Faults, SmtpServer};
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const PEOPLE: usize = 300;
const CONCURRENCY: usize = 4;

fn setup(dir: &Path, smtp_port: u16) -> std::path::PathBuf {
    let config = dir.join("ambassador.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[database]
url = "sqlite://{db}"
[smtp]
transport = "smtp"
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "Ambassador <ambassador@hospital.example.org>"
[http]
bind = "127.0.0.1:0"
[security]
token_key_file = "{key}"
[delivery]
concurrency = {CONCURRENCY}
max_per_second = 300
lease = "2s"
plan_every = "1s"
"#,
            db = dir.join("amb.db").display(),
            key = dir.join("token.key").display()
        ),
    )
    .unwrap();
    let mut csv = String::from("Email,First Name,Department\n");
    for i in 0..PEOPLE {
        csv.push_str(&format!("p{i}@hospital.example.org,P{i},Procurement\n"));
    }
    std::fs::write(dir.join("roster.csv"), csv).unwrap();
    std::fs::write(
        dir.join("campaign.toml"),
        r#"
slug = "crash"
name = "Crash test"
course_url = "https://train.example.org/c"
contact = "ambassador@hospital.example.org"
starts_at = "2020-01-01T00:00:00Z"
due = "3650d"
send_window = "always"
[[steps]]
name = "announcement"
at = "0s"
template = "news_item"
"#,
    )
    .unwrap();
    run_ok(
        &config,
        &["roster", "import", dir.join("roster.csv").to_str().unwrap()],
    );
    run_ok(
        &config,
        &[
            "campaign",
            "apply",
            dir.join("campaign.toml").to_str().unwrap(),
        ],
    );
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_send_loses_nothing_and_sigterm_exits_cleanly() {
    let smtp = SmtpServer::start(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), smtp.port());
    let db_url = format!("sqlite://{}", dir.path().join("amb.db").display());

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
    // A worker keeps up to twice its concurrency claimed ahead, besides those sending.
    assert!(
        in_flight <= 3 * CONCURRENCY,
        "{in_flight} claimed at the kill"
    );
    let unmarked = before_restart - marked;
    assert!(
        unmarked <= CONCURRENCY.min(in_flight),
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
        duplicates.len() >= unmarked && duplicates.len() <= CONCURRENCY,
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
