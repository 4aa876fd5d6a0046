//! The real binary, flooded with open-pixel requests from many clients and
//! killed with SIGKILL in the middle of the flood: every hit a client saw
//! answered 200 is in the database. Hits are committed in groups, and a 200
//! is sent only once the hit's own group has committed.

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
    let db = TestDb::create().await;
    let smtp = SmtpServer::start(Faults::default()).await;
    let settings = "[delivery]\nconcurrency = 4\nmax_per_second = 0\nplan_every = \"1s\"\n";
    let config = deploy(db.dir.path(), &db.url, smtp.port(), PEOPLE, settings);
    let mut served = Served::start_with(&config);
    let mail = smtp.wait_for(PEOPLE, Duration::from_secs(60)).await;
    let pixels: Arc<Vec<String>> = Arc::new(mail.iter().map(|m| served.url(&pixel(m))).collect());

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let counts = Arc::new(Counts::default());
    let reached = Arc::new(tokio::sync::Notify::new());
    let flood: Vec<_> = (0..CLIENTS)
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

    reached.notified().await;
    served.child.kill().unwrap(); // SIGKILL, requests in flight
    served.child.wait().unwrap();
    for client in flood {
        client.await.unwrap();
    }
    let ok = counts.ok.load(Ordering::SeqCst);
    let sent = counts.sent.load(Ordering::SeqCst);
    assert!(ok >= KILL_AFTER, "{ok} answered before the kill");

    let events = count_events(&db.url).await;
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

#[derive(Default)]
struct Counts {
    /// Requests started.
    sent: AtomicUsize,
    /// Requests answered 200.
    ok: AtomicUsize,
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
