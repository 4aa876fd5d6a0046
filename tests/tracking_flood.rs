//! The real binary, flooded with open-pixel requests from many clients and
//! killed with SIGKILL (or stopped with SIGTERM) in the middle of the flood:
//! every hit a client saw answered 200 is in the database. Hits are
//! committed in groups, and a 200 is sent only once the hit's own group has
//! committed; on SIGTERM the open requests drain and their hits commit.

mod common;

use common::app::TestDb;
use common::process::{deploy, Served};
use common::smtp::{Faults, Received, SmtpServer};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PEOPLE: usize = 200;
const CLIENTS: usize = 32;
/// 200s seen before the kill: about five hits a message, well under the
/// per-message rate limit (20 at once), so every answered hit is recorded.
const KILL_AFTER: usize = 1_000;

#[tokio::test(flavor = "multi_thread")]
async fn every_pixel_answered_200_is_recorded_when_serve_is_killed_mid_flood() {
    let flood = Flood::start().await;
    flood.reached.notified().await;
    let mut served = flood.served;
    served.child.kill().unwrap(); // SIGKILL, requests in flight
    served.child.wait().unwrap();
    let (ok, sent) = flood.counts.joined(flood.clients).await;
    assert!(ok >= KILL_AFTER, "{ok} answered before the kill");

    let events = count_events(&flood.db.url).await;
    assert!(
        events >= ok,
        "{ok} hits were answered 200, only {events} are recorded"
    );
    assert!(
        events <= sent,
        "{events} events for {sent} requests: something recorded twice"
    );
    let log = served.log_text();
    assert!(!log.contains("cannot record tracking hits"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_flood_commits_every_answered_hit_and_exits_cleanly() {
    let flood = Flood::start().await;
    flood.reached.notified().await;
    let mut served = flood.served;
    assert!(
        common::process::terminate(&mut served.child),
        "serve drains and exits with 0: {}",
        served.log_text()
    );
    let (ok, sent) = flood.counts.joined(flood.clients).await;
    let events = count_events(&flood.db.url).await;
    assert!(
        events >= ok,
        "{ok} hits were answered 200, only {events} are recorded"
    );
    assert!(events <= sent, "{events} events for {sent} requests");
}

/// `serve` on a deployment of PEOPLE delivered messages, with CLIENTS
/// clients requesting their pixels in turn until the server goes away.
struct Flood {
    db: TestDb,
    served: Served,
    counts: Arc<Counts>,
    clients: Vec<tokio::task::JoinHandle<()>>,
    /// Notified once KILL_AFTER requests were answered 200.
    reached: Arc<tokio::sync::Notify>,
    _smtp: SmtpServer,
}

impl Flood {
    async fn start() -> Self {
        let db = TestDb::create().await;
        let smtp = SmtpServer::start(Faults::default()).await;
        let settings = "[delivery]\nconcurrency = 4\nmax_per_second = 0\nplan_every = \"1s\"\n";
        let config = deploy(db.dir.path(), &db.url, smtp.port(), PEOPLE, settings);
        let served = Served::start_with(&config);
        let mail = smtp.wait_for(PEOPLE, Duration::from_secs(60)).await;
        let pixels: Arc<Vec<String>> =
            Arc::new(mail.iter().map(|m| served.url(&pixel(m))).collect());
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let counts = Arc::new(Counts::default());
        let reached = Arc::new(tokio::sync::Notify::new());
        let clients = (0..CLIENTS)
            .map(|_| {
                let (client, pixels, counts, reached) = (
                    client.clone(),
                    pixels.clone(),
                    counts.clone(),
                    reached.clone(),
                );
                tokio::spawn(async move {
                    loop {
                        let i = counts.sent.fetch_add(1, Ordering::SeqCst);
                        match client.get(&pixels[i % pixels.len()]).send().await {
                            Ok(r) if r.status() == reqwest::StatusCode::OK => {
                                if counts.ok.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
                                    reached.notify_one();
                                }
                            }
                            Ok(r) => panic!("a pixel answered {}", r.status()),
                            // The server is gone.
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        Self {
            db,
            served,
            counts,
            clients,
            reached,
            _smtp: smtp,
        }
    }
}

#[derive(Default)]
struct Counts {
    /// Requests started.
    sent: AtomicUsize,
    /// Requests answered 200.
    ok: AtomicUsize,
}

impl Counts {
    /// Waits for every client to see the server gone; (answered 200, started).
    async fn joined(&self, clients: Vec<tokio::task::JoinHandle<()>>) -> (usize, usize) {
        for client in clients {
            client.await.unwrap();
        }
        (
            self.ok.load(Ordering::SeqCst),
            self.sent.load(Ordering::SeqCst),
        )
    }
}

/// The path of the open-tracking pixel in a message's HTML.
fn pixel(m: &Received) -> String {
    let html = m.parsed().body_html(0).unwrap().to_string();
    let start = html
        .find("/t/o/")
        .unwrap_or_else(|| panic!("no pixel in {html}"));
    let rest = &html[start..];
    rest[..rest.find('"').unwrap()].to_string()
}

async fn count_events(url: &str) -> usize {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n as usize
}
