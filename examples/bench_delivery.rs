//! Delivery benchmark: N messages end to end through the outbox (plan, claim,
//! render, send, mark) to an SMTP sink on loopback, on the daemon's own path
//! (`Worker::run`, stopped once the outbox is empty). `benches/delivery.sh`
//! runs it beside Postfix's `smtp-source`; see docs/benchmarks.md.
//!
//! ```text
//! bench_delivery --port 2525 [--messages 20000] [--concurrency 16]
//! bench_delivery --port 2525 --size              # bytes of one message, for smtp-source -l
//! bench_delivery --port 2525 --transport lettre  # the same message through lettre's own pool (Nagle on)
//! bench_delivery --port 2525 --transport mailer  # ... through ambassador's mailer alone (TCP_NODELAY)
//! ```
//!
//! Scale-out (`benches/scale_out.sh`): the same run split into phases on one
//! database, so several processes (instances) can share the delivery.
//!
//! ```text
//! bench_delivery --database URL --dir DIR --phase prepare [--messages N]  # roster, campaign, plan (once)
//! bench_delivery --database URL --dir DIR --phase work --port 2525        # one instance: Worker::run until nothing is pending or sending
//! bench_delivery --database URL --dir DIR --phase check --messages N      # every row sent once; sends per instance
//! bench_delivery --database URL --dir DIR --phase reset                   # every row pending again, for the next run
//! ```

use ambassador::clock::{SharedClock, SystemClock};
use ambassador::config::{Settings, Tls, Transport};
use ambassador::roster::{self, ImportMode, ImportOptions};
use ambassador::App;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const CAMPAIGN: &str = r#"
slug = "bench"
name = "SOAR for Procurement Professionals"
course_url = "https://train.example.org/course/1"
video_url = "https://train.example.org/video/1"
contact = "ambassador@hospital.example.org"
starts_at = "2020-01-06T14:00:00Z"
due = "14d"
send_window = "always"

[[steps]]
name = "announcement"
at = "0s"
template = "news_item"
"#;

struct Args {
    port: u16,
    messages: usize,
    concurrency: usize,
    size_only: bool,
    transport: Option<String>,
    /// A database URL; a fresh SQLite file in a temporary folder when absent.
    database: Option<String>,
    /// Where the tracking key lives (shared by the instances of one run).
    dir: Option<std::path::PathBuf>,
    phase: Phase,
}

/// What one invocation does: everything (`all`) or one part of a scale-out run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    All,
    Prepare,
    Work,
    Check,
    Reset,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        port: 2525,
        messages: 20_000,
        concurrency: 16,
        size_only: false,
        transport: None,
        database: None,
        dir: None,
        phase: Phase::All,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--port" => a.port = value()?.parse()?,
            "--messages" => a.messages = value()?.parse()?,
            "--concurrency" => a.concurrency = value()?.parse()?,
            "--transport" => a.transport = Some(value()?),
            "--size" => a.size_only = true,
            "--database" => a.database = Some(value()?),
            "--dir" => a.dir = Some(value()?.into()),
            "--phase" => {
                a.phase = match value()?.as_str() {
                    "all" => Phase::All,
                    "prepare" => Phase::Prepare,
                    "work" => Phase::Work,
                    "check" => Phase::Check,
                    "reset" => Phase::Reset,
                    other => {
                        anyhow::bail!("--phase is all, prepare, work, check or reset, not {other}")
                    }
                }
            }
            "--bench" => {} // passed by `cargo bench`; harmless here
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let temp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let app = build_app(&a, &dir).await?;
    match a.phase {
        Phase::All | Phase::Prepare => {}
        Phase::Work => return work(&app).await,
        Phase::Check => return check(&app, a.messages).await,
        Phase::Reset => return reset(&app).await,
    }
    let people = if a.size_only || a.transport.is_some() {
        1
    } else {
        a.messages
    };
    import_roster(&app, people).await?;
    ambassador::campaign::apply(
        &app.store,
        app.clock.as_ref(),
        &app.composer.templates(),
        CAMPAIGN,
        "bench.toml",
        &ambassador::campaign::ApplyOptions {
            dry_run: false,
            allow_empty: false,
            org_tz: app.settings.organisation.time_zone.0,
        },
    )
    .await?;
    let sample = sample_message(&app).await?;
    if a.size_only {
        println!("{}", sample.formatted().len());
        return Ok(());
    }
    match a.transport.as_deref() {
        Some("lettre") => return lettre_alone(&a, &sample).await,
        Some("mailer") => return mailer_alone(&a, &app, &sample).await,
        Some(other) => anyhow::bail!("--transport is lettre or mailer, not {other}"),
        None => {}
    }

    let started = Instant::now();
    let plan = app.plan().await?;
    let planned = started.elapsed();
    if a.phase == Phase::Prepare {
        anyhow::ensure!(
            plan.enqueued as usize == a.messages,
            "expected {} enqueued, got {}",
            a.messages,
            plan.enqueued
        );
        println!(
            "prepared: {} messages of {} bytes, plan {:.3}s",
            plan.enqueued,
            sample.formatted().len(),
            planned.as_secs_f64()
        );
        app.store.close().await;
        return Ok(());
    }
    let stop = CancellationToken::new();
    let worker = tokio::spawn(app.worker.clone().run(stop.clone()));
    while outstanding(&app).await? {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    worker.await??;
    let total = started.elapsed();
    let counts = app.store.outbox_counts(None).await?;
    anyhow::ensure!(
        counts.sent as usize == a.messages && plan.enqueued as usize == a.messages,
        "expected {} sent, got {counts:?} after enqueuing {}",
        a.messages,
        plan.enqueued
    );
    let deliver = total - planned;
    println!(
        "ambassador: {} messages of {} bytes, c={}: plan {:.3}s, deliver {:.3}s, total {:.3}s, {:.0} msg/s (deliver only {:.0} msg/s)",
        a.messages,
        sample.formatted().len(),
        a.concurrency,
        planned.as_secs_f64(),
        deliver.as_secs_f64(),
        total.as_secs_f64(),
        a.messages as f64 / total.as_secs_f64(),
        a.messages as f64 / deliver.as_secs_f64(),
    );
    app.store.close().await;
    Ok(())
}

async fn build_app(a: &Args, dir: &std::path::Path) -> anyhow::Result<App> {
    let mut settings = Settings::load_with_env(None, Vec::new())?;
    settings.database.url = match &a.database {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", dir.join("bench.db").display()),
    };
    settings.security.token_key_file = dir.join("token.key");
    settings.smtp.transport = Transport::Smtp;
    settings.smtp.host = "127.0.0.1".into();
    settings.smtp.port = a.port;
    settings.smtp.tls = Tls::None;
    settings.smtp.from = "SOAR Ambassador <ambassador@hospital.example.org>".into();
    settings.smtp.pool_size = a.concurrency as u32;
    settings.delivery.concurrency = a.concurrency;
    settings.delivery.max_per_second = 0;
    settings.organisation.name = "Riverside Health".into();
    let clock: SharedClock = Arc::new(SystemClock);
    App::build(settings, clock).await
}

async fn import_roster(app: &App, people: usize) -> anyhow::Result<()> {
    let mut csv = String::from(
        "Employee ID,First Name,Last Name,Email,Department,Job Title,Location,Manager Email,Time Zone\n",
    );
    for i in 0..people {
        csv.push_str(&format!(
            "E{i},Person{i},Surname{i},person{i}@hospital.example.org,Procurement,Buyer,Main,boss@hospital.example.org,\n"
        ));
    }
    let options = ImportOptions {
        source: ambassador::store::RosterSource::hr(),
        mode: ImportMode::Sync,
        dry_run: false,
        skip_invalid: false,
        force: true,
        file_name: "roster.csv".into(),
    };
    roster::import(
        &app.store,
        app.clock.as_ref(),
        &app.settings.roster,
        csv.as_bytes(),
        &options,
        &mut |_, _| {},
    )
    .await?;
    Ok(())
}

/// One message as the worker would compose it, for its size and the transport-only runs.
async fn sample_message(app: &App) -> anyhow::Result<Message> {
    let row = ambassador::campaign::find(&app.store, "bench").await?;
    let campaign = ambassador::campaign::definition_of(&row)?;
    app.composer
        .preview(
            row.id,
            &campaign,
            "announcement",
            Some("person0@hospital.example.org"),
            chrono::Utc::now(),
        )
        .await
}

/// Messages not yet sent; an index range, so polling costs the run little.
/// Whether any row is still pending or sending. Polled every 20 ms during a
/// run, so it must stay cheap: a `COUNT(*)` of the rows left cost PostgreSQL
/// up to 17 ms a poll, as much CPU as the claims it was waiting for.
async fn outstanding(app: &App) -> anyhow::Result<bool> {
    let left: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE status IN ('pending', 'sending') LIMIT 1) AS left_over",
    )
    .fetch_one(app.store.pool())
    .await?;
    Ok(left > 0)
}

/// One instance of a scale-out run: the daemon's `Worker::run` until no row
/// is pending or sending (whichever instance sent it). Prints when it started
/// and stopped (epoch ms, so the script can span all instances) and how many
/// rows this instance marked sent.
async fn work(app: &App) -> anyhow::Result<()> {
    let started = epoch_ms();
    let stop = CancellationToken::new();
    let worker = tokio::spawn(app.worker.clone().run(stop.clone()));
    while outstanding(app).await? {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let finished = epoch_ms();
    stop.cancel();
    worker.await??;
    let mine: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'sent' AND leased_by = $1")
            .bind(app.worker.id())
            .fetch_one(app.store.pool())
            .await?;
    println!("instance: started {started} finished {finished} sent {mine}");
    app.store.close().await;
    Ok(())
}

fn epoch_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

/// Every one of `messages` rows sent, each claimed once (attempts = 1: no
/// lease expired and no row went out twice); prints the sends per instance.
async fn check(app: &App, messages: usize) -> anyhow::Result<()> {
    let counts = app.store.outbox_counts(None).await?;
    anyhow::ensure!(
        counts.sent as usize == messages && counts.pending + counts.sending == 0,
        "expected {messages} sent, got {counts:?}"
    );
    let reclaimed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE attempts <> 1")
        .fetch_one(app.store.pool())
        .await?;
    anyhow::ensure!(
        reclaimed == 0,
        "{reclaimed} rows were claimed more than once"
    );
    let per: Vec<(i64,)> = sqlx::query_as(
        "SELECT COUNT(*) FROM outbox WHERE status = 'sent' GROUP BY leased_by ORDER BY 1 DESC",
    )
    .fetch_all(app.store.pool())
    .await?;
    let per: Vec<String> = per.iter().map(|(n,)| n.to_string()).collect();
    println!(
        "check: {} sent, each claimed once; per instance {}",
        counts.sent,
        per.join(" / ")
    );
    app.store.close().await;
    Ok(())
}

/// Puts every row back to pending so the next run sends the same messages.
async fn reset(app: &App) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE outbox SET status = 'pending', attempts = 0, lease_until = NULL, leased_by = NULL, accepted_at = NULL, smtp_reply = NULL",
    )
    .execute(app.store.pool())
    .await?;
    // The update leaves a dead version of every row on PostgreSQL; clear them
    // so each run starts from the same table. SQLite gets no ANALYZE: the
    // daemon never runs one, and statistics taken with every row pending
    // made every run after the first about 3x slower, at 3x the CPU a
    // message (docs/benchmarks.md).
    if app.store.backend() == ambassador::store::Backend::Postgres {
        sqlx::query("VACUUM ANALYZE outbox")
            .execute(app.store.pool())
            .await?;
    }
    app.store.close().await;
    Ok(())
}

/// lettre's own pooled transport as released: it connects itself and leaves Nagle on.
async fn lettre_alone(a: &Args, sample: &Message) -> anyhow::Result<()> {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(a.port)
        .pool_config(PoolConfig::new().max_size(a.concurrency as u32))
        .build();
    let raw = Arc::new(sample.formatted());
    let envelope = sample.envelope().clone();
    let transport = Arc::new(transport);
    let elapsed = fan_out(a, move || {
        let (t, raw, envelope) = (transport.clone(), raw.clone(), envelope.clone());
        async move { t.send_raw(&envelope, &raw).await.is_ok() }
    })
    .await?;
    report("lettre pool, Nagle on", a, elapsed);
    Ok(())
}

/// ambassador's mailer alone (its own TCP connections, TCP_NODELAY), no outbox.
async fn mailer_alone(a: &Args, app: &App, sample: &Message) -> anyhow::Result<()> {
    let mailer = Arc::new(ambassador::delivery::Mailer::from_settings(
        &app.settings.smtp,
        a.concurrency,
    ));
    let raw = Arc::new(sample.formatted());
    let envelope = sample.envelope().clone();
    let elapsed = fan_out(a, move || {
        let (m, raw, envelope) = (mailer.clone(), raw.clone(), envelope.clone());
        async move {
            matches!(
                m.send(&envelope, &raw, "bench").await,
                ambassador::delivery::SendOutcome::Accepted(_)
            )
        }
    })
    .await?;
    report("ambassador mailer, TCP_NODELAY", a, elapsed);
    Ok(())
}

/// Runs `a.messages` sends, `a.concurrency` at a time; fails if any was refused.
async fn fan_out<F, Fut>(a: &Args, send: F) -> anyhow::Result<Duration>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(a.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for _ in 0..a.messages {
        let permit = slots.clone().acquire_owned().await?;
        let fut = send();
        tasks.spawn(async move {
            let ok = fut.await;
            drop(permit);
            ok
        });
        while let Some(done) = tasks.try_join_next() {
            anyhow::ensure!(done?, "a send failed");
        }
    }
    while let Some(done) = tasks.join_next().await {
        anyhow::ensure!(done?, "a send failed");
    }
    Ok(started.elapsed())
}

fn report(what: &str, a: &Args, elapsed: Duration) {
    println!(
        "{what}: {} messages, c={}: {:.3}s, {:.0} msg/s",
        a.messages,
        a.concurrency,
        elapsed.as_secs_f64(),
        a.messages as f64 / elapsed.as_secs_f64()
    );
}
