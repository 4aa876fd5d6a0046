//! The database: a native pool per backend (`SqlitePool` or `PgPool`),
//! embedded migrations per backend, and queries named for what they mean. All
//! SQL lives below this module; dialect differences stay here too.
//!
//! Conventions that keep one SQL text for both backends where the dialects
//! agree: `$N` placeholders, every integer column 64-bit (`i64` in Rust),
//! instants as epoch milliseconds. [`on_pool!`] and [`on_tx!`] expand one
//! query expression into one match arm per backend, so each arm is checked
//! and run against its own driver's types.

/// Evaluates `$body` once per backend with `$c` bound to the store's native
/// pool (`&SqlitePool` or `&PgPool`): one query text, two typed drivers.
macro_rules! on_pool {
    ($store:expr, |$c:ident| $body:expr) => {
        match $store.native() {
            $crate::store::Pool::Sqlite($c) => $body,
            $crate::store::Pool::Postgres($c) => $body,
        }
    };
}

/// Like [`on_pool!`] for a transaction: `$c` is the transaction's native
/// connection (`&mut SqliteConnection` or `&mut PgConnection`); use it as
/// `&mut *$c` to run more than one statement.
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx.conn() {
            $crate::store::Conn::Sqlite($c) => $body,
            $crate::store::Conn::Postgres($c) => $body,
        }
    };
}

pub mod accounts;
pub mod audit;
pub mod bounces;
pub mod campaign;
pub mod edit;
pub mod enrolment;
pub mod events;
pub mod exemption;
pub mod inbox;
pub mod outbox;
pub mod people;
pub mod planning;
pub mod progress;
pub mod report;
pub mod roster;
pub mod sessions;
pub mod state;

pub use state::{
    ActorKind, AuditOutcome, CampaignStatus, EnrolmentStatus, ExemptionAction, ExemptionChannel,
    InboxOutcome, OutboxStatus, ReportKind, ReportOutcome, Role, RosterSource, StateError,
};

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{
    AnyPool, ConnectOptions, Executor, PgConnection, PgPool, Postgres, Sqlite, SqliteConnection,
    SqlitePool, Transaction,
};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Which engine a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The aggregate that joins text values with a separator. Queries that
    /// would return many small rows pack them into a few text values
    /// instead: sqlx-sqlite costs microseconds per row crossed
    /// (docs/benchmarks.md, "The stored roster").
    pub(crate) fn text_aggregate(self) -> &'static str {
        match self {
            Backend::Sqlite => "group_concat",
            Backend::Postgres => "string_agg",
        }
    }
}

/// Between the values of one packed row: U+001F (unit separator). The
/// roster reader refuses control characters in every field, so no stored
/// value holds it.
pub(crate) const UNIT_SEPARATOR: &str = "\u{1f}";
/// Between the rows packed into one value: U+001E (record separator),
/// refused in roster fields likewise.
pub(crate) const RECORD_SEPARATOR: &str = "\u{1e}";

/// The native pool of one backend.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A transaction on either backend; dropped without [`Tx::commit`] it rolls back.
#[derive(Debug)]
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// A transaction's native connection, for [`on_tx!`].
pub(crate) enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

impl Tx {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(tx) => Conn::Sqlite(tx),
            Tx::Postgres(tx) => Conn::Postgres(tx),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.rollback().await,
            Tx::Postgres(tx) => tx.rollback().await,
        }
    }
}

/// (matched, active) by audience, each with the roster mark it was counted
/// at: see [`Store::remember_audience`].
type AudienceCounts = std::collections::HashMap<String, (String, (u64, u64))>;

/// How SQLite write transactions begin: see [`Store::begin`].
pub(crate) const SQLITE_BEGIN: &str = "BEGIN IMMEDIATE";

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    backend: Backend,
    /// For [`Store::pool`]: opened on first use only.
    any: Arc<OnceLock<AnyPool>>,
    url: Arc<str>,
    max_connections: u32,
    /// Audience counts by audience, with the roster mark they were counted at.
    audiences: Arc<std::sync::Mutex<AudienceCounts>>,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// sqlx warns about any statement over 1 s, quoting all of it: a 3,000-row
/// insert is 100 KB of SQL, and `roster list` of 100,000 people takes about
/// that long. Warn only when something is wrong.
const SLOW_STATEMENT: Duration = Duration::from_secs(10);

impl Store {
    /// Connects (creating a SQLite file if needed). Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        };
        let invalid = || format!("database.url is not a valid {backend:?} URL");
        let cannot_open = || format!("cannot open the {backend:?} database at database.url");
        let max = max_connections.max(1);
        let pool = match backend {
            Backend::Sqlite => {
                // WAL lets readers (reports, backups) run beside the writer;
                // the busy timeout makes writers queue instead of failing.
                let options = SqliteConnectOptions::from_str(&url)
                    .with_context(invalid)?
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(10))
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT);
                let pool = SqlitePoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options)
                    .await
                    .with_context(cannot_open)?;
                Pool::Sqlite(pool)
            }
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(&url)
                    .with_context(invalid)?
                    .log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT);
                let pool = PgPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options)
                    .await
                    .with_context(cannot_open)?;
                Pool::Postgres(pool)
            }
        };
        Ok(Self {
            pool,
            backend,
            any: Arc::default(),
            audiences: Arc::default(),
            url: url.into(),
            max_connections: max,
        })
    }

    /// Connects and applies any pending migrations.
    pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let store = Self::connect(url, max_connections).await?;
        store.migrate().await?;
        Ok(store)
    }

    #[tracing::instrument(skip_all, fields(backend = ?self.backend))]
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        }
        .context("cannot apply database migrations")?;
        Ok(())
    }

    /// True when every embedded migration has been applied.
    pub async fn is_migrated(&self) -> anyhow::Result<bool> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let latest = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> = on_pool!(self, |c| sqlx::query_scalar(
            "SELECT MAX(version) FROM _sqlx_migrations WHERE success = $1"
        )
        .bind(true)
        .fetch_one(c)
        .await
        .ok()
        .flatten());
        Ok(applied.unwrap_or(0) >= latest)
    }

    /// Writes a consistent copy of the database to `dest` while others keep
    /// writing (SQLite `VACUUM INTO`). PostgreSQL is backed up with pg_dump.
    #[tracing::instrument(skip_all)]
    pub async fn backup(&self, dest: &Path) -> anyhow::Result<()> {
        let Pool::Sqlite(pool) = &self.pool else {
            anyhow::bail!(
                "db backup copies SQLite databases; for PostgreSQL use pg_dump (see README, Backups)"
            );
        };
        if dest.exists() {
            anyhow::bail!(
                "{} already exists; choose a new file name so no backup is overwritten",
                dest.display()
            );
        }
        let dest = dest
            .to_str()
            .context("the backup path must be valid UTF-8")?;
        sqlx::query("VACUUM INTO $1")
            .bind(dest)
            .execute(pool)
            .await
            .with_context(|| format!("cannot write the backup to {dest}"))?;
        Ok(())
    }

    /// A `sqlx::Any` pool on the same database, for ad-hoc SQL written once
    /// for both backends (tests and tools). The store's own queries run on
    /// the native pool; this one connects on first use, with the same
    /// connection settings.
    pub fn pool(&self) -> &AnyPool {
        self.any.get_or_init(|| {
            sqlx::any::install_default_drivers();
            let backend = self.backend;
            let options = AnyConnectOptions::from_str(&self.url)
                .expect("the URL was parsed when the store connected")
                .log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT);
            AnyPoolOptions::new()
                .max_connections(self.max_connections)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                        }
                        Ok(())
                    })
                })
                .connect_lazy_with(options)
        })
    }

    /// The native pool, for [`on_pool!`].
    pub(crate) fn native(&self) -> &Pool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether long parameter lists use `$N` (PostgreSQL) or `?` (SQLite,
    /// where binding a numbered parameter scans every name: see
    /// `roster::placeholders`).
    pub(crate) fn numbered(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and
    /// writes later fails with "database is locked" at once, without the
    /// busy timeout, when another connection wrote in between (WAL
    /// snapshots cannot be upgraded); taken up front, the lock is waited for.
    pub async fn begin(&self) -> anyhow::Result<Tx> {
        Ok(match &self.pool {
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin_with(SQLITE_BEGIN).await?),
            Pool::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    pub async fn close(&self) {
        if let Some(any) = self.any.get() {
            any.close().await;
        }
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Store;
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Executor};
    use std::str::FromStr;
    use std::time::Duration;

    #[tokio::test]
    async fn a_sqlite_write_transaction_holds_the_write_lock_from_its_start() {
        // A deferred transaction that read first could not write once
        // another connection had written: "database is locked" at once.
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("lock.db").display());
        let store = Store::open(&url, 2).await.unwrap();
        let mut other = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .busy_timeout(Duration::ZERO)
            .connect()
            .await
            .unwrap();

        let tx = store.begin().await.unwrap();
        let refused = other.execute("BEGIN IMMEDIATE").await;
        assert!(
            refused.is_err(),
            "another writer must wait for the open transaction"
        );
        tx.rollback().await.unwrap();
        other.execute("BEGIN IMMEDIATE").await.unwrap();
        other.execute("ROLLBACK").await.unwrap();
    }
}
