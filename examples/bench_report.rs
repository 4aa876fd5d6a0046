//! Report benchmark: the full rollout report (`report::build`) over a large,
//! realistic history, from the report facts and, as the anchor, from the
//! whole history, with `Store::report_counts` and each of its three
//! aggregate statements timed alone and their query plans printed and
//! checked for full scans of the big tables, on SQLite or PostgreSQL. The
//! two reports are first checked byte for byte (JSON) at several as-of
//! instants. See docs/benchmarks.md.
//!
//! ```text
//! bench_report [--people 100000] [--events 1000000] [--runs 5]
//! bench_report --pg postgres://postgres@127.0.0.1:5432/postgres   # a fresh database, dropped afterwards
//! bench_report --keep     # keep the SQLite file or PostgreSQL database (printed) for a look in a shell
//! ```
//!
//! The history (fixed seed): staff across 40 departments, 10 facilities,
//! 60 roles and one manager per ~33 people; one campaign (the shipped
//! config/campaigns/soar.toml); one enrolment each (10% join late, ~60%
//! complete at various times, 2% exempted, 3% leave); the announcement,
//! reminders and thanks they would have received (2% of addresses bounce)
//! plus manager escalations; opens and clicks, by people and by machines,
//! on the messages that were sent. The report is taken 10 weeks in.

mod support;

use ambassador::campaign::Campaign;
use ambassador::clock::{from_millis, to_millis};
use ambassador::store::report::{report_params, report_sql, CountsFrom, Param, ReportQuery};
use ambassador::store::{Backend, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{Any, Row, Transaction};
use std::time::{Duration, Instant};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

struct Args {
    people: usize,
    events: usize,
    runs: usize,
    pg: Option<String>,
    /// Keep the SQLite file or PostgreSQL database (printed) for a look in a shell.
    keep: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        people: 100_000,
        events: 1_000_000,
        runs: 5,
        pg: None,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--people" => a.people = value()?.parse()?,
            "--events" => a.events = value()?.parse()?,
            "--runs" => a.runs = value()?.parse::<usize>()?.max(1),
            "--pg" => a.pg = Some(value()?),
            "--keep" => a.keep = true,
            "--bench" => {} // passed by `cargo bench`; harmless here
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    support::on_fresh_database(a.pg.as_deref(), "bench", a.keep, |url| {
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
    let start = to_millis(campaign.starts_at.into());
    let (campaign_id, _) = store
        .upsert_campaign(
            &campaign.slug,
            &campaign.name,
            &serde_json::to_string(&campaign)?,
            start,
            start - 7 * DAY,
        )
        .await?;
    let as_of = from_millis(start + 70 * DAY);

    let started = Instant::now();
    let counts = fill(&store, a, campaign_id, start).await?;
    if store.backend() == Backend::Postgres {
        // What autovacuum does to freshly loaded tables within a minute or
        // so: statistics, and the visibility map index-only scans rely on.
        sqlx::query("VACUUM ANALYZE").execute(store.pool()).await?;
    }
    println!(
        "backend {:?}: filled {} staff, {} enrolments, {} outbox rows, {} events in {:.1} s",
        store.backend(),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        started.elapsed().as_secs_f64()
    );

    let row = store
        .campaign_by_id(campaign_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the campaign vanished"))?;
    // The facts must give the report the whole history gives, byte for
    // byte, as of any instant: before the start, mid-rollout (people with
    // messages on both sides of the instant), at the report's instant and
    // after everything. The first report writes report_steps and recounts.
    let started = Instant::now();
    let instants = [-1, 3, 10, 24, 45, 70, 120].map(|d| from_millis(start + d * DAY));
    for at in instants {
        let facts = ambassador::report::build_from(&store, &row, at, 5, CountsFrom::Facts).await?;
        let history =
            ambassador::report::build_from(&store, &row, at, 5, CountsFrom::History).await?;
        let (facts, history) = (
            serde_json::to_string(&facts)?,
            serde_json::to_string(&history)?,
        );
        anyhow::ensure!(
            facts == history,
            "the report from the facts differs from the history's as of {at}:\nfacts   {facts}\nhistory {history}"
        );
    }
    println!(
        "report JSON from the facts identical to the history's as of {} instants (checked in {:.1} s)",
        instants.len(),
        started.elapsed().as_secs_f64()
    );

    for from in [CountsFrom::History, CountsFrom::Facts] {
        let built = ambassador::report::build_from(&store, &row, as_of, 5, from).await?; // warm-up
        let build = median(a.runs, || async {
            ambassador::report::build_from(&store, &row, as_of, 5, from).await?;
            Ok(())
        })
        .await?;
        println!(
            "report::build from the {from:?}: median {:.3} s of {} runs (enrolled {}, completed {}, messages {}, opened_all {}, {} weekly points)",
            build.as_secs_f64(),
            a.runs,
            built.population.enrolled,
            built.outcome.completed,
            built.reach.messages_sent,
            built.engagement.opened_all,
            built.weekly.len()
        );
    }

    let reminders: Vec<String> = ["reminder-1", "reminder-2", "last-call"]
        .map(String::from)
        .to_vec();
    let query = ReportQuery {
        campaign_id,
        as_of: to_millis(as_of),
        start,
        announcement: "announcement",
        reminders: &reminders,
    };
    let rows = store.report_counts(&query).await?; // warm-up
    let counts = median(a.runs, || async {
        store.report_counts(&query).await?;
        Ok(())
    })
    .await?;
    println!(
        "  report_counts alone: {:.3} s ({} groups, {} + {} week buckets, {} middle values)",
        counts.as_secs_f64(),
        rows.groups.len(),
        rows.completed_by_week.len(),
        rows.due_by_week.len(),
        rows.middle_ms.len()
    );

    let audience = median(a.runs, || async {
        ambassador::campaign::audience_size(&store, &campaign).await?;
        Ok(())
    })
    .await?;
    let bounced = median(a.runs, || async {
        store.bounced_people(Some(campaign_id)).await?;
        Ok(())
    })
    .await?;
    println!(
        "  campaign::audience_size alone: {:.3} s; bounced_people alone: {:.3} s",
        audience.as_secs_f64(),
        bounced.as_secs_f64()
    );

    let mut full = Vec::new();
    for (name, sql) in report_sql(store.backend(), CountsFrom::Facts, reminders.len()) {
        let params = report_params(CountsFrom::Facts, name, &query);
        let alone = median(a.runs, || async {
            store.report_rows(&sql, params.clone()).await?;
            Ok(())
        })
        .await?;
        println!(
            "statement {name}: {:.3} s alone; plan:",
            alone.as_secs_f64()
        );
        for line in explain(&store, &sql, &params).await? {
            println!("  {line}");
            if full_scan(&line) {
                full.push(format!("{name}: {}", line.trim()));
            }
        }
    }
    if full.is_empty() {
        println!("full scans of staff, enrolments, outbox or events: none");
    } else {
        println!("FULL SCANS of big tables: {full:#?}");
    }
    store.close().await;
    Ok(())
}

/// Whether a plan line reads a whole big table (or a whole index of one)
/// rather than a range: `SCAN table` in SQLite, `Seq Scan on table` in
/// PostgreSQL. The statement names these tables without aliases, or with
/// the aliases listed, so CTE scans (`SCAN facts`) do not count.
fn full_scan(line: &str) -> bool {
    let line = line.trim_start();
    let object = line
        .strip_prefix("SCAN ")
        .or_else(|| line.split("Seq Scan on ").nth(1))
        .and_then(|rest| rest.split_whitespace().next());
    matches!(
        object,
        Some("staff" | "s" | "enrolments" | "e" | "outbox" | "events")
    )
}

/// Median wall time of `runs` calls of `f`.
async fn median<F, Fut>(runs: usize, mut f: F) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

fn bind<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    params: &[Param<'q>],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    for p in params {
        query = match *p {
            Param::Int(i) => query.bind(i),
            Param::Text(t) => query.bind(t),
        };
    }
    query
}

async fn explain(store: &Store, sql: &str, params: &[Param<'_>]) -> anyhow::Result<Vec<String>> {
    let sqlite = store.backend() == Backend::Sqlite;
    let text = if sqlite {
        format!("EXPLAIN QUERY PLAN {sql}")
    } else {
        format!("EXPLAIN {sql}")
    };
    let rows = bind(sqlx::query(&text), params)
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(if sqlite {
                let depth: i64 = r.try_get("parent")?;
                let detail: String = r.try_get("detail")?;
                format!("{}{detail}", if depth == 0 { "" } else { "  " })
            } else {
                r.try_get::<String, _>(0)?
            })
        })
        .collect()
}

/// Builds placeholders for a multi-row INSERT: `?` on SQLite (binding a
/// numbered parameter there scans every name), `$N` on PostgreSQL.
fn values(store: &Store, rows: usize, columns: usize) -> String {
    let numbered = store.backend() == Backend::Postgres;
    let mut sql = String::with_capacity(rows * columns * 6);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..columns {
            if col > 0 {
                sql.push_str(", ");
            }
            if numbered {
                sql.push_str(&format!("${}", row * columns + col + 1));
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql
}

/// A value bound into a bulk INSERT.
enum V {
    I(i64),
    N(Option<i64>),
    S(String),
    O(Option<String>),
}

/// Inserts `rows` into `table` in statements of 1,000 rows.
async fn insert(
    tx: &mut Transaction<'static, Any>,
    store: &Store,
    table: &str,
    columns: &str,
    rows: Vec<Vec<V>>,
) -> anyhow::Result<()> {
    let width = columns.split(',').count();
    for batch in rows.chunks(1000) {
        let sql = format!(
            "INSERT INTO {table} ({columns}) VALUES {}",
            values(store, batch.len(), width)
        );
        let mut q = sqlx::query(&sql);
        for row in batch {
            for v in row {
                q = match v {
                    V::I(i) => q.bind(*i),
                    V::N(n) => q.bind(*n),
                    V::S(s) => q.bind(s.as_str()),
                    V::O(o) => q.bind(o.as_deref()),
                };
            }
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// What happened to one enrolment, as generated.
struct Person {
    enrolled_at: i64,
    completed_at: Option<i64>,
    exempted_at: Option<i64>,
    left_at: Option<i64>,
    bounces: bool,
    engaged: bool,
}

/// Fills the database; returns the row counts of staff, enrolments, outbox, events.
async fn fill(store: &Store, a: &Args, campaign_id: i64, start: i64) -> anyhow::Result<[usize; 4]> {
    let mut rng = StdRng::seed_from_u64(2027);
    let people: Vec<Person> = (0..a.people).map(|_| person(&mut rng, start)).collect();
    let mut tx = store.pool().begin().await?;

    let staff: Vec<Vec<V>> = people
        .iter()
        .enumerate()
        .map(|(i, p)| staff_row(&mut rng, i, p, start))
        .collect();
    insert(&mut tx, store, "staff", "id, source, employee_id, email, first_name, last_name, department, role, facility, manager_email, time_zone, active, created_at, updated_at, deactivated_at", staff).await?;

    let enrolments: Vec<Vec<V>> = people
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let id = i as i64 + 1;
            vec![
                V::I(id),
                V::I(campaign_id),
                V::I(id),
                V::I(p.enrolled_at),
                V::I(p.enrolled_at + 30 * DAY),
                V::N(p.completed_at),
                V::O(p.completed_at.map(|_| "report".to_string())),
                V::N(p.exempted_at),
                V::O(p.exempted_at.map(|_| "already trained".to_string())),
                V::N(p.left_at),
            ]
        })
        .collect();
    insert(&mut tx, store, "enrolments", "id, campaign_id, staff_id, enrolled_at, due_at, completed_at, completion_source, exempted_at, exempt_reason, left_at", enrolments).await?;

    let (outbox, sent) = outbox_rows(&mut rng, &people, campaign_id, a.people);
    let outbox_count = outbox.len();
    insert(&mut tx, store, "outbox", "id, dedupe_key, campaign_id, enrolment_id, step, recipient, message_id, scheduled_at, not_before, status, attempts, accepted_at, created_at, updated_at", outbox).await?;

    // A chunk at a time: a million rows of bound values would take ~0.5 GB.
    for chunk in (0..a.events).collect::<Vec<_>>().chunks(50_000) {
        let events: Vec<Vec<V>> = chunk
            .iter()
            .map(|i| event_row(&mut rng, *i, &sent, &people, campaign_id))
            .collect();
        insert(
            &mut tx,
            store,
            "events",
            "id, at, kind, outbox_id, enrolment_id, campaign_id, link, ua_class, machine",
            events,
        )
        .await?;
    }
    tx.commit().await?;
    Ok([a.people, a.people, outbox_count, a.events])
}

fn person(rng: &mut StdRng, start: i64) -> Person {
    let enrolled_at = if rng.gen_bool(0.1) {
        start + rng.gen_range(1..28) * DAY
    } else {
        start
    };
    // Skewed towards the first weeks; a few complete after the report's instant.
    let completed_at = rng
        .gen_bool(0.6)
        .then(|| enrolled_at + (75.0 * DAY as f64 * rng.gen::<f64>().powi(2)) as i64 + HOUR);
    let exempted_at = (completed_at.is_none() && rng.gen_bool(0.05))
        .then(|| enrolled_at + rng.gen_range(1..20) * DAY);
    let left_at = (completed_at.is_none() && exempted_at.is_none() && rng.gen_bool(0.075))
        .then(|| enrolled_at + rng.gen_range(1..60) * DAY);
    Person {
        enrolled_at,
        completed_at,
        exempted_at,
        left_at,
        bounces: rng.gen_bool(0.02),
        engaged: rng.gen_bool(0.7),
    }
}

const FIRST: [&str; 8] = [
    "Ana", "Bo", "Chloé", "Dev", "Eun-ji", "Femi", "Grace", "Hugo",
];
const LAST: [&str; 8] = [
    "Álvarez", "Brown", "Chen", "Dubois", "Evans", "Fischer", "García", "Hughes",
];

fn staff_row(rng: &mut StdRng, i: usize, p: &Person, start: i64) -> Vec<V> {
    let id = i as i64 + 1;
    vec![
        V::I(id),
        V::S("hr".into()),
        V::O(Some(format!("E{id:07}"))),
        V::S(format!("person{id}@health.example.org")),
        V::S(FIRST[rng.gen_range(0..FIRST.len())].into()),
        V::S(LAST[rng.gen_range(0..LAST.len())].into()),
        V::S(format!("Department {:02}", rng.gen_range(0..40))),
        V::S(format!("Role {:02}", rng.gen_range(0..60))),
        V::S(format!("Facility {}", rng.gen_range(0..10))),
        V::O(Some(format!(
            "manager{}@health.example.org",
            rng.gen_range(0..3000)
        ))),
        V::O(Some("America/New_York".into())),
        V::I(i64::from(p.left_at.is_none())),
        V::I(start - 30 * DAY),
        V::I(p.left_at.unwrap_or(start - 30 * DAY)),
        V::N(p.left_at),
    ]
}

/// A sent message an event can point at: (outbox id, enrolment index, accepted at).
type Sent = (i64, usize, i64);

/// The person steps of soar.toml each enrolment reached, thanks on completion,
/// and one escalation per manager; returns the rows and the sent ones.
fn outbox_rows(
    rng: &mut StdRng,
    people: &[Person],
    campaign_id: i64,
    count: usize,
) -> (Vec<Vec<V>>, Vec<Sent>) {
    let steps = [
        ("announcement", 0),
        ("reminder-1", 7 * DAY),
        ("reminder-2", 14 * DAY),
        ("last-call", 28 * DAY),
    ];
    let mut rows = Vec::with_capacity(count * 4);
    let mut sent = Vec::with_capacity(count * 4);
    for (i, p) in people.iter().enumerate() {
        let stopped = [p.completed_at, p.exempted_at, p.left_at]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(i64::MAX);
        let mut due: Vec<(&str, i64)> = steps
            .iter()
            .map(|(s, at)| (*s, p.enrolled_at + at))
            .filter(|(_, at)| *at < stopped)
            .collect();
        if let Some(done) = p.completed_at {
            due.push(("thanks", done + HOUR));
        }
        for (step, at) in due {
            let id = rows.len() as i64 + 1;
            let not_before = at + rng.gen_range(0..4 * HOUR);
            let accepted = (!p.bounces).then(|| not_before + rng.gen_range(1_000..60_000));
            if let Some(t) = accepted {
                sent.push((id, i, t));
            }
            rows.push(vec![
                V::I(id),
                V::S(format!("soar-2027:{}:{step}:0", i + 1)),
                V::I(campaign_id),
                V::N(Some(i as i64 + 1)),
                V::S(step.into()),
                V::S(format!("person{}@health.example.org", i + 1)),
                V::S(format!("<{id}.bench@health.example.org>")),
                V::I(at),
                V::I(not_before),
                V::S(if p.bounces { "undeliverable" } else { "sent" }.into()),
                V::I(1),
                V::N(accepted),
                V::I(at),
                V::I(not_before + 60_000),
            ]);
        }
    }
    for m in 0..3000 {
        let id = rows.len() as i64 + 1;
        let at = people.first().map_or(0, |p| p.enrolled_at) + 31 * DAY;
        rows.push(vec![
            V::I(id),
            V::S(format!("soar-2027:manager{m}:escalation:0")),
            V::I(campaign_id),
            V::N(None),
            V::S("escalation".into()),
            V::S(format!("manager{m}@health.example.org")),
            V::S(format!("<{id}.bench@health.example.org>")),
            V::I(at),
            V::I(at),
            V::S("sent".into()),
            V::I(1),
            V::N(Some(at + 5_000)),
            V::I(at),
            V::I(at + 5_000),
        ]);
    }
    (rows, sent)
}

/// One open or click on a random sent message: people engage hours to days
/// after delivery; proxies and scanners within seconds.
fn event_row(
    rng: &mut StdRng,
    i: usize,
    sent: &[Sent],
    people: &[Person],
    campaign_id: i64,
) -> Vec<V> {
    let (outbox_id, person, accepted) = sent[rng.gen_range(0..sent.len())];
    let machine = !people[person].engaged || rng.gen_bool(0.3);
    let click = rng.gen_bool(if machine { 0.15 } else { 0.35 });
    let at = if machine {
        accepted + rng.gen_range(500..9_000)
    } else {
        accepted + rng.gen_range(60_000..5 * DAY)
    };
    let ua = match (machine, rng.gen_bool(0.5)) {
        (false, _) => "human",
        (true, true) => "proxy",
        (true, false) => "scanner",
    };
    vec![
        V::I(i as i64 + 1),
        V::I(at),
        V::S(if click { "click" } else { "open" }.into()),
        V::I(outbox_id),
        V::N(Some(person as i64 + 1)),
        V::I(campaign_id),
        V::O(click.then(|| if rng.gen_bool(0.8) { "course" } else { "video" }.to_string())),
        V::S(ua.into()),
        V::I(i64::from(machine)),
    ]
}
