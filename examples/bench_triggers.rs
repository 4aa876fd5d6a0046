//! What the report-fact triggers (migration 0012) cost the writes they
//! follow: sent marks and tracking events, each batched 100 to a
//! transaction as the delivery and tracking writers commit them, timed with
//! the triggers and, as the anchor in the same run, with them disabled.
//! SQLite or PostgreSQL. See docs/benchmarks.md.
//!
//! ```text
//! bench_triggers [--messages 10000] [--events 100000] [--rounds 3]
//! bench_triggers --pg postgres://postgres@127.0.0.1:5432/postgres
//! ```
//!
//! Writes through its own native pool with plain SQL, so it measures the
//! database's side whichever code path the daemon uses.

use std::time::{Duration, Instant};

struct Args {
    messages: usize,
    events: usize,
    rounds: usize,
    pg: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        messages: 10_000,
        events: 100_000,
        rounds: 3,
        pg: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--messages" => a.messages = value()?.parse()?,
            "--events" => a.events = value()?.parse()?,
            "--rounds" => a.rounds = value()?.parse::<usize>()?.max(1),
            "--pg" => a.pg = Some(value()?),
            "--bench" => {}
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

const BATCH: usize = 100;

/// The statements of one run; `$N` placeholders work on both backends.
const FILL: [&str; 3] = [
    "INSERT INTO campaigns (slug, name, definition, starts_at, created_at, updated_at) VALUES ('bench', 'bench', '{}', 0, 0, 0)",
    "INSERT INTO report_steps (campaign_id, step, role) VALUES (1, 'announcement', 'announcement')",
    "INSERT INTO report_steps (campaign_id, step, role) VALUES (1, 'reminder-1', 'reminder')",
];
const STAFF: &str =
    "INSERT INTO staff (source, email, created_at, updated_at) VALUES ('hr', $1, 0, 0)";
const ENROL: &str =
    "INSERT INTO enrolments (campaign_id, staff_id, enrolled_at, due_at) VALUES (1, $1, 0, 0)";
const MESSAGE: &str = "INSERT INTO outbox (dedupe_key, campaign_id, enrolment_id, step, recipient, message_id, scheduled_at, not_before, status, leased_by, created_at, updated_at)
     VALUES ($1, 1, $2, $3, 'x', 'm', 0, 0, 'sending', 'w', 0, 0)";
const MARK: &str = "UPDATE outbox SET status = 'sent', accepted_at = $1, smtp_reply = '250 ok', lease_until = NULL, last_error = NULL, updated_at = $1
     WHERE id = $2 AND leased_by = 'w'";
const EVENT: &str = "INSERT INTO events (at, kind, outbox_id, enrolment_id, campaign_id, link, ua_class, machine) VALUES ($1, $2, $3, $4, 1, NULL, 'human', $5)";
const RESET: [&str; 2] = [
    "DELETE FROM events",
    "UPDATE outbox SET status = 'sending', accepted_at = NULL",
];

macro_rules! bench {
    ($pool:expr, $a:expr, $toggle:expr) => {{
        let pool = $pool;
        let a = $a;
        for sql in FILL {
            sqlx::query(sql).execute(&pool).await?;
        }
        let mut tx = pool.begin().await?;
        for i in 1..=a.messages as i64 {
            sqlx::query(STAFF)
                .bind(format!("p{i}@example.org"))
                .execute(&mut *tx)
                .await?;
            sqlx::query(ENROL).bind(i).execute(&mut *tx).await?;
            for (k, step) in ["announcement", "reminder-1"].iter().enumerate() {
                sqlx::query(MESSAGE)
                    .bind(format!("{i}:{k}"))
                    .bind(i)
                    .bind(*step)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        let messages = 2 * a.messages as i64;
        let mut best: [[Duration; 2]; 2] = [[Duration::MAX; 2]; 2];
        for _ in 0..a.rounds {
            for (t, on) in [true, false].into_iter().enumerate() {
                for sql in RESET {
                    sqlx::query(sql).execute(&pool).await?;
                }
                for sql in $toggle(on) {
                    sqlx::query(&sql).execute(&pool).await?;
                }
                let started = Instant::now();
                for batch in (1..=messages).collect::<Vec<_>>().chunks(BATCH) {
                    let mut tx = pool.begin().await?;
                    for id in batch {
                        sqlx::query(MARK)
                            .bind(1_000 + id)
                            .bind(*id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                }
                best[t][0] = best[t][0].min(started.elapsed());
                let started = Instant::now();
                for batch in (0..a.events as i64).collect::<Vec<_>>().chunks(BATCH) {
                    let mut tx = pool.begin().await?;
                    for i in batch {
                        let outbox = i % messages + 1;
                        sqlx::query(EVENT)
                            .bind(2_000 + i)
                            .bind(if i % 3 == 0 { "click" } else { "open" })
                            .bind(outbox)
                            .bind((outbox + 1) / 2)
                            .bind(i64::from(i % 4 == 0))
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                }
                best[t][1] = best[t][1].min(started.elapsed());
            }
        }
        for sql in $toggle(true) {
            sqlx::query(&sql).execute(&pool).await?;
        }
        let per = |d: Duration, n: i64| d.as_secs_f64() * 1e6 / n as f64;
        let names = ["sent marks", "events"];
        let counts = [messages, a.events as i64];
        for w in 0..2 {
            let (with, without) = (per(best[0][w], counts[w]), per(best[1][w], counts[w]));
            println!(
                "{:<10}: {:>7.1} µs a row with the triggers, {:>7.1} µs without (anchor): {:+.1} µs, {:.2}× ({} rows, {} a transaction, best of {})",
                names[w],
                with,
                without,
                with - without,
                with / without,
                counts[w],
                BATCH,
                a.rounds
            );
        }
        pool.close().await;
    }};
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let dir = tempfile::tempdir()?;
    match &a.pg {
        None => {
            let url = format!("sqlite://{}", dir.path().join("triggers.db").display());
            ambassador::store::Store::open(&url, 1).await?.close().await;
            let options: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(
                    options
                        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal),
                )
                .await?;
            // SQLite cannot disable a trigger: the anchor runs with the
            // triggers dropped, and they are created again from the
            // migration's own text afterwards.
            let text = include_str!("../migrations/sqlite/0012_report_facts.sql");
            let creates: Vec<String> = triggers_of(text);
            let toggle = |on: bool| -> Vec<String> {
                let drops = [
                    "outbox_facts_sent_insert",
                    "outbox_facts_sent_update",
                    "outbox_facts_undeliverable_insert",
                    "outbox_facts_undeliverable_update",
                    "outbox_facts_recount",
                    "outbox_facts_delete",
                    "events_facts",
                ]
                .iter()
                .map(|t| format!("DROP TRIGGER IF EXISTS {t}"));
                let creates = creates.iter().filter(|_| on).cloned();
                drops.chain(creates).collect()
            };
            bench_sqlite(pool, &a, toggle).await
        }
        Some(admin) => {
            let name = format!("ambassador_triggers_{}", uuid::Uuid::new_v4().simple());
            let admin_pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(admin)
                .await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&admin_pool)
                .await?;
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            let url = format!("{base}/{name}");
            ambassador::store::Store::open(&url, 1).await?.close().await;
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await?;
            let toggle = |on: bool| -> Vec<String> {
                let verb = if on { "ENABLE" } else { "DISABLE" };
                vec![
                    format!("ALTER TABLE outbox {verb} TRIGGER outbox_facts"),
                    format!("ALTER TABLE events {verb} TRIGGER events_facts"),
                ]
            };
            let outcome = bench_pg(pool, &a, toggle).await;
            sqlx::query(&format!("DROP DATABASE {name}"))
                .execute(&admin_pool)
                .await?;
            outcome
        }
    }
}

/// The `CREATE TRIGGER … END;` statements of a migration.
fn triggers_of(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("CREATE TRIGGER") {
        let tail = &rest[start..];
        let Some(end) = tail.find("\nEND;") else {
            break;
        };
        out.push(tail[..end + 5].to_string());
        rest = &tail[end + 5..];
    }
    out
}

async fn bench_sqlite(
    pool: sqlx::SqlitePool,
    a: &Args,
    toggle: impl Fn(bool) -> Vec<String>,
) -> anyhow::Result<()> {
    bench!(pool, a, toggle);
    Ok(())
}

async fn bench_pg(
    pool: sqlx::PgPool,
    a: &Args,
    toggle: impl Fn(bool) -> Vec<String>,
) -> anyhow::Result<()> {
    bench!(pool, a, toggle);
    Ok(())
}
