//! Stored-roster read benchmark: what an unchanged re-import reads first,
//! the source's people in `StoredPerson` form, read packed about a thousand
//! people to a row (`Store::stored_people`, what the import uses) against
//! one row a person decoded by the native driver (this example's own
//! query, through its own `SqlitePool` or `PgPool`), in the same run, with
//! a check that both read the same people. See docs/benchmarks.md, "Roster
//! import".
//!
//! ```text
//! bench_stored_people [--people 100000] [--runs 7]
//! bench_stored_people --pg postgres://postgres@127.0.0.1:5432/postgres   # a fresh database, dropped afterwards
//! ```

mod support;

use ambassador::store::roster::StoredPerson;
use ambassador::store::{Backend, Store};
use std::time::{Duration, Instant};

struct Args {
    people: usize,
    runs: usize,
    pg: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        people: 100_000,
        runs: 7,
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
            "--runs" => a.runs = value()?.parse::<usize>()?.max(1),
            "--pg" => a.pg = Some(value()?),
            "--bench" => {}
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    support::on_fresh_database(a.pg.as_deref(), "people", false, |url| {
        let a = &a;
        async move { run(a, &url).await }
    })
    .await
}

async fn run(a: &Args, url: &str) -> anyhow::Result<()> {
    let store = Store::open(url, 4).await?;
    fill_staff(&store, a.people).await?;
    let native = Native::connect(url, store.backend()).await?;
    let packed = store.stored_people("hr").await?;
    let per_row = native.stored_people_per_row("hr").await?;
    anyhow::ensure!(
        key(&packed) == key(&per_row),
        "the two reads differ: {} and {} people",
        packed.len(),
        per_row.len()
    );
    let mut times = (Vec::new(), Vec::new());
    for _ in 0..a.runs {
        let started = Instant::now();
        store.stored_people("hr").await?;
        times.0.push(started.elapsed());
        let started = Instant::now();
        native.stored_people_per_row("hr").await?;
        times.1.push(started.elapsed());
    }
    let (packed_s, per_row_s) = (median(times.0), median(times.1));
    println!(
        "{:?}, {} people: packed {:.3} s, one row a person {:.3} s (median of {}, alternating): per-row / packed {:.2}x",
        store.backend(),
        a.people,
        packed_s.as_secs_f64(),
        per_row_s.as_secs_f64(),
        a.runs,
        per_row_s.as_secs_f64() / packed_s.as_secs_f64()
    );
    Ok(())
}

/// A stored person as one row: id, active, employee id, email, then
/// [`StoredPerson::FIELDS`] (manager email and time zone may be NULL).
type PersonRow = (
    i64,
    i64,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
);

/// The same database through the native driver, for the per-row read.
enum Native {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Native {
    async fn connect(url: &str, backend: Backend) -> anyhow::Result<Self> {
        Ok(match backend {
            Backend::Sqlite => Self::Sqlite(sqlx::SqlitePool::connect(url).await?),
            Backend::Postgres => Self::Postgres(sqlx::PgPool::connect(url).await?),
        })
    }

    /// `Store::stored_people` read one row a person, each value decoded by
    /// the driver: the alternative the packing is measured against.
    async fn stored_people_per_row(&self, source: &str) -> anyhow::Result<Vec<StoredPerson>> {
        let sql = format!(
            "SELECT id, active, employee_id, email, {} FROM staff WHERE source = $1",
            StoredPerson::FIELDS.join(", ")
        );
        let rows: Vec<PersonRow> = match self {
            Self::Sqlite(pool) => sqlx::query_as(&sql).bind(source).fetch_all(pool).await?,
            Self::Postgres(pool) => sqlx::query_as(&sql).bind(source).fetch_all(pool).await?,
        };
        let separator = StoredPerson::SEPARATOR.to_string();
        Ok(rows
            .into_iter()
            .map(
                |(id, active, employee_id, email, f1, f2, f3, f4, f5, f6, f7, f8)| StoredPerson {
                    id,
                    active: active == 1,
                    employee_id: employee_id.map(Box::from),
                    email: Box::from(email),
                    fields: Box::from(
                        [
                            f1,
                            f2,
                            f3,
                            f4,
                            f5,
                            f6.unwrap_or_default(),
                            f7.unwrap_or_default(),
                            f8,
                        ]
                        .join(&separator),
                    ),
                },
            )
            .collect())
    }
}

fn key(people: &[StoredPerson]) -> Vec<(i64, bool, Option<&str>, &str, &str)> {
    let mut k: Vec<_> = people
        .iter()
        .map(|p| {
            (
                p.id,
                p.active,
                p.employee_id.as_deref(),
                &*p.email,
                &*p.fields,
            )
        })
        .collect();
    k.sort();
    k
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Inserts `people` people as a roster import would leave them: employee
/// ids, names, department, role, facility, manager, a time zone for some,
/// an attribute each; a thousand a statement.
async fn fill_staff(store: &Store, people: usize) -> anyhow::Result<()> {
    const COLUMNS: usize = 11;
    let numbered = store.backend() == Backend::Postgres;
    let ids: Vec<usize> = (1..=people).collect();
    for batch in ids.chunks(1000) {
        let mut next = 0;
        let values: Vec<String> = batch
            .iter()
            .map(|_| {
                let cols: Vec<String> = (0..COLUMNS)
                    .map(|_| {
                        next += 1;
                        if numbered {
                            format!("${next}")
                        } else {
                            "?".into()
                        }
                    })
                    .collect();
                format!("({})", cols.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO staff (source, employee_id, email, first_name, last_name, department, role, facility, manager_email, time_zone, attributes, created_at, updated_at)
             SELECT 'hr', v.*, 0 FROM (VALUES {}) AS v",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for i in batch {
            q = q
                .bind(format!("E{i:06}"))
                .bind(format!("person{i}@health.example.org"))
                .bind(format!("Fírst{}", i % 997))
                .bind(format!("Last-{}", i % 1999))
                .bind(format!("Department {}", i % 40))
                .bind(format!("Role {}", i % 25))
                .bind(format!("Facility {}", i % 10))
                .bind(format!("manager{}@health.example.org", i / 40))
                .bind((i % 3 == 0).then_some("America/Chicago"))
                .bind(format!("{{\"cost_center\":\"CC-{}\"}}", i % 500))
                .bind(0_i64);
        }
        q.execute(store.pool()).await?;
    }
    Ok(())
}
