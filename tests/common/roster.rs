//! Roster test harness: a real SQLite file in a temporary directory, a manual
//! clock, default roster settings, fixtures, and the binary for CLI tests.

use ambassador::clock::{Clock, ManualClock};
use ambassador::config::{Roster, Settings};
use ambassador::roster::{self, Counts, ImportError, ImportReport};
use ambassador::store::roster::StaffRow;
use ambassador::store::Store;
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use tempfile::TempDir;

pub use ambassador::roster::ImportOptions;

/// A fresh database of its own, deleted when the test ends.
pub struct TestDb {
    pub dir: TempDir,
    /// SQLite, or PostgreSQL when AMBASSADOR_TEST_PG is set; dropped with the test.
    pub database: super::app::TestDb,
    pub store: Store,
    pub clock: ManualClock,
    pub settings: Roster,
}

/// What a test compares before and after an import that must write nothing.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub staff: serde_json::Value,
    pub imports: i64,
    pub changes: i64,
}

impl TestDb {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = super::app::TestDb::create().await;
        let store = Store::open(&database.url, 2).await.unwrap();
        let start = DateTime::parse_from_rfc3339("2027-01-04T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let settings = Settings::load_with_env(None, vec![]).unwrap().roster;
        Self {
            dir,
            database,
            store,
            clock: ManualClock::new(start),
            settings,
        }
    }

    /// A database holding January's export: the state a bad file must not change.
    pub async fn with_january() -> Self {
        let db = Self::new().await;
        db.import(&fixture("hr_export_2027_01.csv"), &options())
            .await
            .unwrap();
        db
    }

    pub async fn import(
        &self,
        bytes: &[u8],
        options: &ImportOptions,
    ) -> Result<ImportReport, ImportError> {
        self.import_with(&self.settings, bytes, options).await
    }

    pub async fn import_with(
        &self,
        settings: &Roster,
        bytes: &[u8],
        options: &ImportOptions,
    ) -> Result<ImportReport, ImportError> {
        roster::import(
            &self.store,
            &self.clock,
            settings,
            bytes,
            options,
            &mut |_, _| {},
        )
        .await
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Everyone, active or not, in `roster list` order.
    pub async fn all_staff(&self) -> Vec<StaffRow> {
        self.store.list_staff(true).await.unwrap()
    }

    pub async fn all_staff_json(&self) -> serde_json::Value {
        serde_json::to_value(self.all_staff().await).unwrap()
    }

    /// Active addresses, sorted.
    pub async fn active_emails(&self) -> Vec<String> {
        let mut emails: Vec<String> = self
            .store
            .list_staff(false)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.email)
            .collect();
        emails.sort();
        emails
    }

    pub async fn person(&self, email: &str) -> StaffRow {
        self.all_staff()
            .await
            .into_iter()
            .find(|p| p.email == email)
            .unwrap_or_else(|| panic!("{email} is not in the staff table"))
    }

    pub async fn import_count(&self) -> i64 {
        self.count("roster_imports").await
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    pub async fn snapshot(&self) -> Snapshot {
        Snapshot {
            staff: self.all_staff_json().await,
            imports: self.count("roster_imports").await,
            changes: self.count("roster_changes").await,
        }
    }
}

/// A full sync of source "hr" from "roster.csv", all-or-nothing.
pub fn options() -> ImportOptions {
    ImportOptions {
        source: ambassador::store::RosterSource::hr(),
        mode: roster::ImportMode::Sync,
        dry_run: false,
        skip_invalid: false,
        force: false,
        file_name: "roster.csv".into(),
    }
}

pub fn counts(
    added: u64,
    updated: u64,
    unchanged: u64,
    deactivated: u64,
    reactivated: u64,
    rejected: u64,
) -> Counts {
    Counts {
        added,
        updated,
        unchanged,
        deactivated,
        reactivated,
        rejected,
    }
}

pub fn fixture_path(name: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "roster",
        name,
    ]
    .iter()
    .collect();
    path.display().to_string()
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap()
}

/// The first `n` lines of a fixture (header included), line endings kept:
/// a truncated export.
pub fn first_lines(name: &str, n: usize) -> Vec<u8> {
    let bytes = fixture(name);
    let end = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(n - 1)
        .map_or(bytes.len(), |(i, _)| i + 1);
    bytes[..end].to_vec()
}

/// The start of an .xlsx workbook (a zip archive), as an admin might upload it.
pub fn xlsx_bytes() -> Vec<u8> {
    let mut bytes = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00".to_vec();
    bytes.extend_from_slice(b"[Content_Types].xml");
    bytes.extend((0..2000u32).map(|i| (i * 131 % 256) as u8));
    bytes
}

/// The real binary against a database in its own temporary directory.
pub struct Cli {
    pub dir: TempDir,
}

impl Cli {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn roster(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("ambassador").unwrap();
        cmd.current_dir(self.dir.path())
            .env(
                "AMBASSADOR__DATABASE__URL",
                format!("sqlite://{}", self.dir.path().join("cli.db").display()),
            )
            .env_remove("RUST_LOG")
            .arg("roster")
            .args(args);
        cmd
    }
}
