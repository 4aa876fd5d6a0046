//! The database: one `sqlx::Any` pool for SQLite and PostgreSQL, embedded
//! migrations per backend, and queries named for what they mean. All SQL lives
//! below this module; dialect differences stay here too.
//!
//! Conventions that keep one code path for both backends: `$N` placeholders,
//! every integer column 64-bit (`i64` in Rust), instants as epoch milliseconds.

pub mod bounces;
pub mod campaign;
pub mod edit;
pub mod enrolment;
pub mod events;
pub mod exemption;
pub mod outbox;
pub mod people;
pub mod progress;
pub mod report;
pub mod roster;
pub mod state;

pub use state::{
    CampaignStatus, EnrolmentStatus, ExemptionAction, ExemptionChannel, OutboxStatus, ReportKind,
    ReportOutcome, RosterSource, StateError,
};

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Which engine a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    /// Connects (creating a SQLite file if needed). Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
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
        let options = AnyConnectOptions::from_str(&url)
            .with_context(|| format!("database.url is not a valid {backend:?} URL"))?
            // sqlx warns about any statement over 1 s, quoting all of it: a
            // 3,000-row insert is 100 KB of SQL, and `roster list` of 100,000
            // people takes about that long. Warn only when something is wrong.
            .log_slow_statements(log::LevelFilter::Warn, Duration::from_secs(10));
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers (reports, backups) run beside the writer;
                        // the busy timeout makes writers queue instead of failing.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open the {backend:?} database at database.url"))?;
        Ok(Self { pool, backend })
    }

    /// Connects and applies any pending migrations.
    pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let store = Self::connect(url, max_connections).await?;
        store.migrate().await?;
        Ok(store)
    }

    #[tracing::instrument(skip_all, fields(backend = ?self.backend))]
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.pool)
            .await
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
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = $1")
                .bind(true)
                .fetch_one(&self.pool)
                .await
                .ok()
                .flatten();
        Ok(applied.unwrap_or(0) >= latest)
    }

    /// Writes a consistent copy of the database to `dest` while others keep
    /// writing (SQLite `VACUUM INTO`). PostgreSQL is backed up with pg_dump.
    #[tracing::instrument(skip_all)]
    pub async fn backup(&self, dest: &Path) -> anyhow::Result<()> {
        if self.backend != Backend::Sqlite {
            anyhow::bail!(
                "db backup copies SQLite databases; for PostgreSQL use pg_dump (see README, Backups)"
            );
        }
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
            .execute(&self.pool)
            .await
            .with_context(|| format!("cannot write the backup to {dest}"))?;
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
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

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
