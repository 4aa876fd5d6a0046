//! What the report-fact triggers (migrations 0012, 0018) cost the writes
//! they follow: sent marks and tracking events, 100 to a statement as the
//! delivery and tracking writers commit them (one statement a batch), timed
//! with the triggers and, as the anchor in the same run, with them
//! disabled. SQLite or PostgreSQL. See docs/benchmarks.md.
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

/// One way of keeping the facts, timed in turn; the last is the anchor.
struct Config {
    name: &'static str,
    /// Statements (each may hold several) that put it in place.
    set_up: Vec<String>,
}

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
/// One batch of sent marks, its ids as a JSON array: per backend, since
/// the daemon writes each batch as one statement on both.
const MARKS_SQLITE: &str = "UPDATE outbox SET status = 'sent', accepted_at = 1000 + id, smtp_reply = '250 ok', lease_until = NULL, last_error = NULL, updated_at = 1000 + id
     WHERE leased_by = 'w' AND id IN (SELECT value FROM json_each($1))";
const MARKS_PG: &str = "UPDATE outbox SET status = 'sent', accepted_at = 1000 + outbox.id, smtp_reply = '250 ok', lease_until = NULL, last_error = NULL, updated_at = 1000 + outbox.id
     FROM (SELECT CAST(value AS BIGINT) AS id FROM json_array_elements_text(CAST($1 AS json))) u
     WHERE outbox.id = u.id AND outbox.leased_by = 'w'";
/// One batch of events, each `[at, kind, outbox, enrolment, machine]`.
const EVENTS_SQLITE: &str = "INSERT INTO events (at, kind, outbox_id, enrolment_id, campaign_id, link, ua_class, machine)
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, 1, NULL, 'human', value ->> 4 FROM json_each($1)";
const EVENTS_PG: &str = "INSERT INTO events (at, kind, outbox_id, enrolment_id, campaign_id, link, ua_class, machine)
     SELECT CAST(v ->> 0 AS BIGINT), v ->> 1, CAST(v ->> 2 AS BIGINT), CAST(v ->> 3 AS BIGINT), 1, NULL, 'human', CAST(v ->> 4 AS BIGINT)
     FROM json_array_elements(CAST($1 AS json)) v";
const RESET: [&str; 2] = [
    "DELETE FROM events",
    "UPDATE outbox SET status = 'sending', accepted_at = NULL",
];

macro_rules! bench {
    ($pool:expr, $a:expr, $configs:expr, $marks:expr, $events:expr) => {{
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
        let configs: &[Config] = $configs;
        let mut best = vec![[Duration::MAX; 2]; configs.len()];
        for _ in 0..a.rounds {
            for (t, config) in configs.iter().enumerate() {
                for sql in RESET {
                    sqlx::query(sql).execute(&pool).await?;
                }
                for sql in &config.set_up {
                    sqlx::raw_sql(sql).execute(&pool).await?;
                }
                let started = Instant::now();
                for batch in (1..=messages).collect::<Vec<_>>().chunks(BATCH) {
                    let ids = serde_json::to_string(batch)?;
                    sqlx::query($marks).bind(ids).execute(&pool).await?;
                }
                best[t][0] = best[t][0].min(started.elapsed());
                let started = Instant::now();
                for batch in (0..a.events as i64).collect::<Vec<_>>().chunks(BATCH) {
                    let rows: Vec<serde_json::Value> = batch
                        .iter()
                        .map(|i| {
                            let outbox = i % messages + 1;
                            let kind = if i % 3 == 0 { "click" } else { "open" };
                            serde_json::json!([
                                2_000 + i,
                                kind,
                                outbox,
                                (outbox + 1) / 2,
                                i64::from(i % 4 == 0)
                            ])
                        })
                        .collect();
                    sqlx::query($events)
                        .bind(serde_json::to_string(&rows)?)
                        .execute(&pool)
                        .await?;
                }
                best[t][1] = best[t][1].min(started.elapsed());
            }
        }
        let per = |d: Duration, n: i64| d.as_secs_f64() * 1e6 / n as f64;
        let names = ["sent marks", "events"];
        let counts = [messages, a.events as i64];
        let anchor = best.len() - 1;
        for w in 0..2 {
            let without = per(best[anchor][w], counts[w]);
            println!(
                "{}: {} rows, {} a statement, best of {}",
                names[w], counts[w], BATCH, a.rounds
            );
            for (config, best) in configs.iter().zip(&best) {
                let with = per(best[w], counts[w]);
                println!(
                    "  {:<34} {:>7.1} µs a row: {:+.1} µs, {:.2}× the anchor",
                    config.name,
                    with,
                    with - without,
                    with / without
                );
            }
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
            // 0012's triggers, with those 0018 redefines taken from 0018.
            let redefined = triggers_of(include_str!(
                "../migrations/sqlite/0018_report_fact_transitions.sql"
            ));
            let name = |t: &str| t.split_whitespace().nth(2).unwrap_or("").to_string();
            let creates: Vec<String> =
                triggers_of(include_str!("../migrations/sqlite/0012_report_facts.sql"))
                    .into_iter()
                    .map(|t| {
                        redefined
                            .iter()
                            .find(|r| name(r) == name(&t))
                            .cloned()
                            .unwrap_or(t)
                    })
                    .collect();
            let drops: Vec<String> = [
                "outbox_facts_sent_insert",
                "outbox_facts_sent_update",
                "outbox_facts_undeliverable_insert",
                "outbox_facts_undeliverable_update",
                "outbox_facts_recount",
                "outbox_facts_delete",
                "events_facts",
            ]
            .iter()
            .map(|t| format!("DROP TRIGGER IF EXISTS {t}"))
            .collect();
            let configs = [
                Config {
                    name: "row triggers (0012, 0018)",
                    set_up: drops.iter().chain(&creates).cloned().collect(),
                },
                Config {
                    name: "no triggers (anchor)",
                    set_up: drops,
                },
            ];
            bench_sqlite(pool, &a, &configs).await
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
            // The row triggers of 0012, put back for the comparison: its
            // functions and triggers, without the backfill.
            let v12 = include_str!("../migrations/postgres/0012_report_facts.sql");
            let row_triggers = v12[v12.find("CREATE FUNCTION outbox_facts()").unwrap_or(0)
                ..v12.find("-- Backfill").unwrap_or(v12.len())]
                .to_string();
            // USER: every trigger but the foreign keys' own, whatever the
            // migrations name them.
            let none = [
                "ALTER TABLE outbox DISABLE TRIGGER USER",
                "ALTER TABLE events DISABLE TRIGGER USER",
                "DROP FUNCTION IF EXISTS outbox_facts() CASCADE",
                "DROP FUNCTION IF EXISTS events_facts() CASCADE",
            ]
            .map(String::from);
            let configs = [
                Config {
                    name: "statement triggers (0018)",
                    set_up: none
                        .iter()
                        .cloned()
                        .chain([
                            "ALTER TABLE outbox ENABLE TRIGGER USER".to_string(),
                            "ALTER TABLE events ENABLE TRIGGER USER".to_string(),
                        ])
                        .collect(),
                },
                Config {
                    name: "row triggers (0012)",
                    set_up: none.iter().cloned().chain([row_triggers]).collect(),
                },
                Config {
                    name: "no triggers (anchor)",
                    set_up: none.to_vec(),
                },
            ];
            let outcome = bench_pg(pool, &a, &configs).await;
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

async fn bench_sqlite(pool: sqlx::SqlitePool, a: &Args, configs: &[Config]) -> anyhow::Result<()> {
    bench!(pool, a, configs, MARKS_SQLITE, EVENTS_SQLITE);
    Ok(())
}

async fn bench_pg(pool: sqlx::PgPool, a: &Args, configs: &[Config]) -> anyhow::Result<()> {
    bench!(pool, a, configs, MARKS_PG, EVENTS_PG);
    Ok(())
}
