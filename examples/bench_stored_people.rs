//! Stored-roster read benchmark: what an unchanged re-import reads first,
//! the source's people in `StoredPerson` form, read packed about a thousand
//! people to a row (`Store::stored_people`, what the import uses) against
//! one row a person decoded by the native driver
//! (`Store::stored_people_per_row`), in the same run, with a check that
//! both read the same people. See docs/benchmarks.md, "Roster import".
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
    let packed = store.stored_people("hr").await?;
    let per_row = store.stored_people_per_row("hr").await?;
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
        store.stored_people_per_row("hr").await?;
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
