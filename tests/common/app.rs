//! `TestApp`: a whole ambassador on a temporary SQLite file (or a fresh
//! PostgreSQL database when AMBASSADOR_TEST_PG is set), a manual clock, and a
//! real SMTP server on loopback. Tests drive time and work explicitly.

use super::smtp::{Faults, SmtpServer};
use ambassador::campaign::planner::PlanReport;
use ambassador::campaign::{self, ApplyOutcome};
use ambassador::clock::{ManualClock, SharedClock};
use ambassador::completions::{self, Completion};
use ambassador::config::{SecretUse, Settings, Tls, Transport};
use ambassador::delivery::DeliveryReport;
use ambassador::roster::{self, ImportMode, ImportOptions, ImportReport};
use ambassador::store::Store;
use ambassador::tracking::{self, Claims, Hit, LinkKind};
use ambassador::App;
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

/// Monday 11 January 2027, 09:00 in New York.
pub fn launch() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2027-01-11T14:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A campaign with every kind of step, no send window, 14 days to complete.
pub const CAMPAIGN: &str = r#"
slug = "test"
name = "SOAR for Procurement Professionals"
course_url = "https://train.example.org/course/1"
video_url = "https://train.example.org/video/1"
contact = "ambassador@hospital.example.org"
starts_at = "2027-01-11T14:00:00Z"
due = "14d"
send_window = "always"

[audience]
include = { department = ["Supply Chain", "Procurement"] }
exclude = { role = ["Contractor"] }

[[steps]]
name = "announcement"
at = "0s"
template = "news_item"

[[steps]]
name = "reminder-1"
at = "7d"
template = "reminder"

[[steps]]
name = "last-call"
at = "due-2d"
template = "reminder"

[[steps]]
name = "escalation"
at = "due+1d"
template = "escalation"
to = "manager"

[[steps]]
name = "thanks"
on = "completion"
template = "thanks"
"#;

pub const HEADER: &str =
    "Employee ID,First Name,Last Name,Email,Department,Job Title,Location,Manager Email,Time Zone";

pub struct TestApp {
    pub app: App,
    pub clock: ManualClock,
    pub smtp: SmtpServer,
    pub db: TestDb,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Faults::default(), |_| {}).await
    }

    /// With SMTP faults and settings changes.
    pub async fn spawn_with(faults: Faults, tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_on(SmtpServer::start(faults).await, &[], tweak).await
    }

    /// On a relay the test started (with TLS or AUTH, say), with settings
    /// loaded as `serve` loads them from `env` (AMBASSADOR__* variables,
    /// read and validated, `*_file` secrets read), then the test defaults
    /// (`tls = "none"` among them), then `tweak`.
    pub async fn spawn_on(
        smtp: SmtpServer,
        env: &[(&str, &str)],
        tweak: impl FnOnce(&mut Settings),
    ) -> Self {
        let db = TestDb::create().await;
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let mut settings = Settings::load_with_env(None, env).expect("the settings load");
        settings.database.url = db.url.clone();
        settings.security.token_key_file = db.dir.path().join("token.key");
        // As `serve` does: every `*_file` secret read and checked.
        settings
            .load_secrets(SecretUse::ALL)
            .expect("the secrets load");
        settings.http.public_url = "https://ambassador.hospital.example.org".into();
        settings.smtp.transport = Transport::Smtp;
        settings.smtp.host = "127.0.0.1".into();
        settings.smtp.port = smtp.port();
        settings.smtp.tls = Tls::None;
        settings.smtp.from = "SOAR Ambassador <ambassador@hospital.example.org>".into();
        settings.delivery.max_per_second = 0;
        settings.delivery.retry_base = ambassador::domain::HumanDuration::parse("10s").unwrap();
        settings.organisation.name = "Riverside Health".into();
        tweak(&mut settings);
        let clock = ManualClock::new(launch() - Duration::hours(1));
        let shared: SharedClock = Arc::new(clock.clone());
        let app = App::build(settings, shared).await.expect("the app builds");
        Self {
            app,
            clock,
            smtp,
            db,
        }
    }

    pub fn store(&self) -> &Store {
        &self.app.store
    }

    pub async fn import(&self, csv: &str) -> ImportReport {
        self.import_with(csv, ImportMode::Sync, true).await
    }

    pub async fn import_with(&self, csv: &str, mode: ImportMode, force: bool) -> ImportReport {
        let options = ImportOptions {
            source: ambassador::store::RosterSource::hr(),
            mode,
            dry_run: false,
            skip_invalid: false,
            force,
            file_name: "roster.csv".into(),
        };
        roster::import(
            &self.app.store,
            &self.clock,
            &self.app.settings.roster,
            csv.as_bytes(),
            &options,
            &mut |_, _| {},
        )
        .await
        .expect("the roster imports")
    }

    /// Applies a campaign file (an empty audience allowed: many tests apply
    /// before they import).
    pub async fn apply(&self, toml: &str) -> ApplyOutcome {
        self.apply_with(toml, false, true)
            .await
            .expect("the campaign applies")
    }

    pub async fn apply_with(
        &self,
        toml: &str,
        dry_run: bool,
        allow_empty: bool,
    ) -> anyhow::Result<ApplyOutcome> {
        let options = campaign::ApplyOptions {
            dry_run,
            allow_empty,
            org_tz: self.app.settings.organisation.time_zone.0,
        };
        campaign::apply(
            &self.app.store,
            &self.clock,
            &self.app.composer.templates(),
            toml,
            "test.toml",
            &options,
        )
        .await
    }

    /// Moves the clock to `at` and runs one planning tick and delivery pass.
    pub async fn tick_at(&self, at: DateTime<Utc>) -> (PlanReport, DeliveryReport) {
        self.clock.set(at);
        self.app
            .plan_and_deliver()
            .await
            .expect("planning and delivery succeed")
    }

    pub async fn tick(&self) -> (PlanReport, DeliveryReport) {
        self.app
            .plan_and_deliver()
            .await
            .expect("planning and delivery succeed")
    }

    pub async fn campaign_id(&self, slug: &str) -> i64 {
        campaign::find(&self.app.store, slug).await.unwrap().id
    }

    /// Records that `who` (the local part of a hospital.example.org address)
    /// completed the campaign `test` at `at`, as a completion report would.
    pub async fn complete(&self, who: &str, at: DateTime<Utc>) {
        let staff_id = self.staff_id(&format!("{who}@hospital.example.org")).await;
        let campaign = self.campaign_id("test").await;
        completions::record(
            self.store(),
            campaign,
            &[Completion { staff_id, at }],
            "report",
            false,
        )
        .await
        .unwrap();
    }

    /// The outbox id of `who`'s message of `step`.
    pub async fn outbox_id(&self, who: &str, step: &str) -> i64 {
        sqlx::query_scalar("SELECT id FROM outbox WHERE recipient = $1 AND step = $2")
            .bind(format!("{who}@hospital.example.org"))
            .bind(step)
            .fetch_one(self.store().pool())
            .await
            .unwrap()
    }

    /// Records a GET of a tracking link on `who`'s message of `step`, as the
    /// tracking route would.
    pub async fn hit(
        &self,
        who: &str,
        step: &str,
        kind: LinkKind,
        user_agent: &str,
        at: DateTime<Utc>,
    ) {
        self.hit_request(who, step, kind, user_agent, false, at)
            .await;
    }

    /// [`TestApp::hit`] by GET or (`head_request`) by HEAD, as scanners do.
    pub async fn hit_request(
        &self,
        who: &str,
        step: &str,
        kind: LinkKind,
        user_agent: &str,
        head_request: bool,
        at: DateTime<Utc>,
    ) {
        let outbox_id = self.outbox_id(who, step).await;
        tracking::record(
            self.store(),
            &Hit {
                claims: Claims { outbox_id, kind },
                at,
                user_agent,
                head_request,
            },
        )
        .await
        .unwrap();
    }

    pub async fn staff_id(&self, email: &str) -> i64 {
        self.app
            .store
            .staff_by_email(email)
            .await
            .unwrap()
            .unwrap()
            .id
    }

    /// Outbox rows as (recipient, step, status), sorted.
    pub async fn outbox(&self) -> Vec<(String, String, String)> {
        let mut rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT recipient, step, status FROM outbox")
                .fetch_all(self.app.store.pool())
                .await
                .unwrap();
        rows.sort();
        rows
    }
}

/// A database for one test: a SQLite file in a temporary folder, or a fresh
/// PostgreSQL database (dropped afterwards) when AMBASSADOR_TEST_PG is set.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl TestDb {
    /// PostgreSQL when AMBASSADOR_TEST_PG is set, else SQLite.
    pub async fn create() -> Self {
        match std::env::var("AMBASSADOR_TEST_PG") {
            Ok(admin_url) if !admin_url.is_empty() => Self::postgres(&admin_url).await,
            _ => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Self { url, dir, pg: None }
            }
        }
    }

    /// A fresh PostgreSQL database on the server `admin_url` points at.
    pub async fn postgres(admin_url: &str) -> Self {
        let name = format!("ambassador_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(admin_url)
            .await
            .expect("PostgreSQL is reachable");
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
        Self {
            url: format!("{base}/{name}"),
            dir: tempfile::tempdir().unwrap(),
            pg: Some((admin_url.to_string(), name)),
        }
    }
}

/// The PostgreSQL server for tests that need one: AMBASSADOR_TEST_PG, or the
/// local default. `None` (with the reason printed) when none answers, unless
/// AMBASSADOR_REQUIRE_PG=1 (CI), where that is a failure.
pub async fn postgres_or_skip(test: &str) -> Option<String> {
    let url = std::env::var("AMBASSADOR_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
    sqlx::any::install_default_drivers();
    let attempt = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        <sqlx::AnyConnection as sqlx::Connection>::connect(&url),
    )
    .await;
    match attempt {
        Ok(Ok(_)) => Some(url),
        other => {
            let why = match other {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".into(),
            };
            let reason = format!("{test}: no PostgreSQL at {url} ({why}); set AMBASSADOR_TEST_PG");
            super::skip::skip(&reason, Some("AMBASSADOR_REQUIRE_PG"));
            None
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.pg.take() {
            // Async drop does not exist: a short-lived runtime on its own thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut conn) =
                        <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url).await
                    {
                        let _ = sqlx::Executor::execute(
                            &mut conn,
                            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                        )
                        .await;
                    }
                });
            })
            .join();
        }
    }
}

/// A roster line: id, first, last, email, department, role, manager.
pub fn person(
    id: u32,
    first: &str,
    last: &str,
    department: &str,
    role: &str,
    manager: &str,
) -> String {
    format!(
        "E{id},{first},{last},{}.{}@hospital.example.org,{department},{role},Main,{manager},",
        first.to_lowercase(),
        last.to_lowercase()
    )
}
