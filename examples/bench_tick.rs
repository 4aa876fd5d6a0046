//! Planning-tick benchmark: a campaign with 100,000 people enrolled and
//! their announcements sent, then planning ticks at an instant when nothing
//! is due (the next reminder is days away): the time per tick, which the
//! scheduler pays every `delivery.plan_every` (a minute by default). See
//! docs/benchmarks.md.
//!
//! ```text
//! bench_tick [--people 100000] [--ticks 20]
//! bench_tick --pg postgres://postgres@127.0.0.1:5432/postgres   # a fresh database, dropped afterwards
//! ```
//!
//! Uses only `Store::open`, `Store::upsert_campaign` and
//! `campaign::planner::plan`, so the same file measures an older planner
//! as the anchor.

mod support;

use ambassador::campaign::planner::{plan, PlanContext, PlanReport};
use ambassador::campaign::Campaign;
use ambassador::clock::{to_millis, ManualClock};
use ambassador::store::Store;
use std::time::{Duration, Instant};

struct Args {
    people: usize,
    ticks: usize,
    pg: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        people: 100_000,
        ticks: 20,
        pg: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--people" => a.people = value()?.parse()?,
            "--ticks" => a.ticks = value()?.parse::<usize>()?.max(1),
            "--pg" => a.pg = Some(value()?),
            "--bench" => {} // passed by `cargo bench`; harmless here
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    support::on_fresh_database(a.pg.as_deref(), "tick", false, |url| {
        let a = &a;
        async move { run(a, &url).await }
    })
    .await
}

async fn run(a: &Args, url: &str) -> anyhow::Result<()> {
    let store = Store::open(url, 4).await?;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/campaigns/soar.toml"
    ))?;
    let campaign = Campaign::from_toml(&text, "soar.toml")?;
    let start = campaign.starts_at.with_timezone(&chrono::Utc);
    store
        .upsert_campaign(
            &campaign.slug,
            &campaign.name,
            &serde_json::to_string(&campaign)?,
            to_millis(start),
            to_millis(start) - 7 * 86_400_000,
        )
        .await?;
    fill_staff(&store, a.people, to_millis(start)).await?;

    let ctx = PlanContext {
        org_tz: chrono_tz::America::New_York,
        message_id_domain: "health.example.org".into(),
    };
    // The first tick enrols everyone and plans their announcements; then
    // they are all sent, as the worker would.
    let clock = ManualClock::new(start + chrono::Duration::minutes(5));
    let t = Instant::now();
    let first = plan(&store, &clock, &ctx).await?;
    println!("first tick: {first} in {:.1} s", t.elapsed().as_secs_f64());
    anyhow::ensure!(
        first.enrolled as usize == a.people,
        "not everyone was enrolled: {first:?}"
    );
    sqlx::query(
        "UPDATE outbox SET status = 'sent', attempts = 1, accepted_at = not_before + 1000, updated_at = not_before + 1000
         WHERE status = 'pending'",
    )
    .execute(store.pool())
    .await?;

    // Two days in: the next reminder is five days away.
    clock.advance(chrono::Duration::days(2));
    let settle = plan(&store, &clock, &ctx).await?; // the first look after the sends
    println!("settling tick: {settle}");
    let mut times = Vec::with_capacity(a.ticks);
    for _ in 0..a.ticks {
        clock.advance(chrono::Duration::minutes(1));
        let t = Instant::now();
        let report = plan(&store, &clock, &ctx).await?;
        times.push(t.elapsed());
        anyhow::ensure!(
            report == PlanReport::default(),
            "a tick with nothing due did something: {report}"
        );
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "planning tick, {} enrolled, nothing due: median {:.4} s of {} ticks (min {:.4} s, max {:.4} s)",
        a.people,
        median.as_secs_f64(),
        a.ticks,
        secs(times[0]),
        secs(times[times.len() - 1])
    );
    store.close().await;
    Ok(())
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Inserts `people` active staff in the campaign's audience, a thousand a
/// statement, 40 people per manager.
async fn fill_staff(store: &Store, people: usize, now: i64) -> anyhow::Result<()> {
    let numbered = store.backend() == ambassador::store::Backend::Postgres;
    let ids: Vec<usize> = (1..=people).collect();
    for batch in ids.chunks(1000) {
        let mut values = Vec::with_capacity(batch.len());
        for (row, _) in batch.iter().enumerate() {
            let cols: Vec<String> = (0..6)
                .map(|c| {
                    if numbered {
                        format!("${}", row * 6 + c + 1)
                    } else {
                        "?".to_string()
                    }
                })
                .collect();
            values.push(format!("({})", cols.join(", ")));
        }
        let sql = format!(
            "INSERT INTO staff (source, email, department, manager_email, created_at, updated_at) VALUES {}",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for i in batch {
            q = q
                .bind("hr")
                .bind(format!("person{i}@health.example.org"))
                .bind("Supply Chain")
                .bind(format!("manager{}@health.example.org", i / 40))
                .bind(now)
                .bind(now);
        }
        q.execute(store.pool()).await?;
    }
    Ok(())
}
