//! SIGTERM while an SMTP transaction is in flight: the real `serve` process
//! waits for the relay's answer, marks the message sent, gives back what it
//! had claimed but not started, and says truthfully whether anything is
//! left claimed. The relay holds the final reply after DATA until the test
//! releases it; the test knows the signal arrived from systemd's STOPPING=1.

mod common;

use common::app::TestDb;
use common::process::{ambassador, deploy};
use common::smtp::{DataHold, Faults, SmtpServer};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
/// More than a claim takes at `concurrency = 1` (up to 4 ahead): one in
/// flight, some claimed ahead, and at least one still pending.
const PEOPLE: usize = 6;

/// A `serve` process whose first message is held at the relay.
struct Held {
    smtp: SmtpServer,
    hold: DataHold,
    db: TestDb,
    dir: tempfile::TempDir,
    child: Child,
    notify: UnixDatagram,
}

impl Held {
    /// One message at a time, so one is in flight and the next claimed ahead.
    async fn start() -> Self {
        let hold = DataHold::new();
        let smtp = SmtpServer::start(Faults::default().hold_data(&hold)).await;
        let db = TestDb::create().await;
        let dir = tempfile::tempdir().unwrap();
        let extra = "[delivery]\nconcurrency = 1\nmax_per_second = 0\nplan_every = \"1s\"\n";
        let config = deploy(dir.path(), &db.url, smtp.port(), PEOPLE, extra);
        let socket = dir.path().join("notify.sock");
        let notify = UnixDatagram::bind(&socket).unwrap();
        notify.set_read_timeout(Some(WAIT)).unwrap();
        let child = ambassador(&config, &["serve"])
            .env("NOTIFY_SOCKET", &socket)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log_path(dir.path())).unwrap())
            .spawn()
            .unwrap();
        hold.wait_held(1, WAIT).await;
        Self {
            smtp,
            hold,
            db,
            dir,
            child,
            notify,
        }
    }

    async fn store(&self) -> ambassador::store::Store {
        ambassador::store::Store::open(&self.db.url, 1)
            .await
            .unwrap()
    }

    /// SIGTERM, then waits until the daemon says it is draining.
    fn terminate(&self) {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        tokio::task::block_in_place(|| wait_for_notification(&self.notify, "STOPPING=1"));
    }

    fn wait_exit(&mut self) -> (ExitStatus, String) {
        let status = tokio::task::block_in_place(|| self.child.wait().unwrap());
        (
            status,
            std::fs::read_to_string(log_path(self.dir.path())).unwrap(),
        )
    }
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("serve.log")
}

/// Reads notify datagrams until one holds `state`.
fn wait_for_notification(socket: &UnixDatagram, state: &str) {
    let mut buf = [0u8; 4096];
    loop {
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {state}: {e}"));
        if String::from_utf8_lossy(&buf[..n])
            .lines()
            .any(|l| l == state)
        {
            return;
        }
    }
}

/// (status, attempts, leased_by) of every outbox row, by id.
async fn outbox(store: &ambassador::store::Store) -> Vec<(String, i64, Option<String>)> {
    sqlx::query_as("SELECT status, attempts, leased_by FROM outbox ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_transaction_finishes_it_marks_it_sent_and_leaves_nothing_claimed() {
    let mut serve = Held::start().await;
    let store = serve.store().await;
    let claimed = outbox(&store).await;
    assert!(
        claimed.iter().any(|(status, _, _)| status == "sending"),
        "a message is in flight: {claimed:?}"
    );

    serve.terminate();
    assert!(
        serve.smtp.messages().is_empty(),
        "the relay has not answered yet"
    );
    serve.hold.release();
    let (status, log) = serve.wait_exit();
    assert!(status.success(), "SIGTERM exits with 0: {status:?}\n{log}");

    let received = serve.smtp.messages();
    assert_eq!(received.len(), 1, "only the message in flight went out");
    let rows = outbox(&store).await;
    let sent: Vec<String> =
        sqlx::query_scalar("SELECT message_id FROM outbox WHERE status = 'sent'")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        sent.iter()
            .map(|id| id.trim_matches(['<', '>']))
            .collect::<Vec<_>>(),
        vec![received[0].message_id().unwrap()],
        "the held message is marked sent: {rows:?}"
    );
    let unsent: Vec<_> = rows.iter().filter(|(s, _, _)| s != "sent").collect();
    assert_eq!(unsent.len(), PEOPLE - 1, "{rows:?}");
    assert!(
        unsent
            .iter()
            .all(|(s, attempts, _)| s == "pending" && *attempts == 0),
        "the rest are given back untried: {rows:?}"
    );
    assert!(
        log.contains("delivery stopped; no message left claimed"),
        "{log}"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_left_claimed_at_stop_is_counted_in_a_warning() {
    let mut serve = Held::start().await;
    let store = serve.store().await;
    // Stands in for a claim the worker could not give back (a release that
    // failed, a claim too old to start): a pending row under its lease.
    let worker: String =
        sqlx::query_scalar("SELECT leased_by FROM outbox WHERE status = 'sending' LIMIT 1")
            .fetch_one(store.pool())
            .await
            .unwrap();
    let stuck = sqlx::query(
        "UPDATE outbox SET status = 'sending', leased_by = $1, lease_until = $2
         WHERE id = (SELECT MIN(id) FROM outbox WHERE status = 'pending')",
    )
    .bind(&worker)
    .bind(i64::MAX)
    .execute(store.pool())
    .await
    .unwrap();
    assert_eq!(stuck.rows_affected(), 1);

    serve.terminate();
    serve.hold.release();
    let (status, log) = serve.wait_exit();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(!log.contains("no message left claimed"), "{log}");
    let warning = log
        .lines()
        .find(|l| l.contains("left claimed until their lease expires"))
        .unwrap_or_else(|| panic!("no warning about the claimed message:\n{log}"));
    assert!(
        warning.contains("WARN") || warning.contains("\"level\":\"WARN\""),
        "{warning}"
    );
    assert!(warning.contains("1 message(s)"), "{warning}");
    store.close().await;
}
