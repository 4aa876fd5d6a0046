//! What the benchmark examples share: a fresh database per run.

use std::future::Future;

/// Runs `bench` with the URL of a fresh database: a SQLite file `NAME.db`
/// in a temporary folder, or with `pg` (an admin URL) a PostgreSQL database
/// `ambassador_NAME_<uuid>`. Both go afterwards, unless `keep` (then it says
/// where they are). The result is `bench`'s.
pub async fn on_fresh_database<F, Fut>(
    pg: Option<&str>,
    name: &str,
    keep: bool,
    bench: F,
) -> anyhow::Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    if let Some(admin) = pg {
        return on_fresh_postgres(admin, &format!("ambassador_{name}"), keep, bench).await;
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(format!("{name}.db"));
    let outcome = bench(format!("sqlite://{}", path.display())).await;
    if keep {
        println!("kept {}", path.display());
        std::mem::forget(dir);
    }
    outcome
}

/// Creates a database of a unique name (`prefix` and a UUID) on the server
/// `admin` points at, runs `bench` with its URL, and drops it afterwards,
/// unless `keep` (then it says which). The result is `bench`'s.
async fn on_fresh_postgres<F, Fut>(
    admin: &str,
    prefix: &str,
    keep: bool,
    bench: F,
) -> anyhow::Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(admin).await?;
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str()).await?;
    let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
    let outcome = bench(format!("{base}/{name}")).await;
    if keep {
        println!("kept database {name}");
    } else {
        sqlx::Executor::execute(
            &mut conn,
            format!("DROP DATABASE {name} WITH (FORCE)").as_str(),
        )
        .await?;
    }
    outcome
}
