//! Time-driven jobs (tokio-cron-scheduler): the planning tick every
//! `delivery.plan_every`, the weekly summary on `report.weekly_cron`, and
//! the bounce mailbox every `bounces.every` when one is configured.
//! Both are safe to run on several instances at once: planning is
//! idempotent, and the weekly send is claimed with a unique key. Each
//! planning tick also sends again what a dead instance claimed and never
//! sent (`report::resend`).

use crate::campaign::planner::Planning;
use crate::heartbeat::Heartbeat;
use crate::report::ReportJobs;
use anyhow::Context;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

/// What the scheduled jobs run, built by the composition root.
#[derive(Debug, Clone)]
pub struct Jobs {
    pub planning: Planning,
    /// Reads the bounce mailbox; `None`: no `bounces.imap_host`.
    pub bounces: Option<crate::bounces::BounceJob>,
    pub reports: ReportJobs,
    pub timing: Timing,
    /// Beaten when a planning tick starts and when it ends; the watchdog reads it.
    pub heartbeat: Heartbeat,
    pub housekeeping: Housekeeping,
}

/// Purges what has outlived its time: admin page sessions past their
/// limits (hourly) and audit entries past `security.audit_retention`
/// (daily, leaving an entry of its own).
#[derive(Debug, Clone)]
pub struct Housekeeping {
    pub store: crate::store::Store,
    pub clock: crate::clock::SharedClock,
    pub audit_retention_ms: i64,
    pub session_limits: crate::store::sessions::SessionLimits,
}

impl Housekeeping {
    pub fn from_settings(
        settings: &crate::config::Settings,
        store: crate::store::Store,
        clock: crate::clock::SharedClock,
    ) -> Self {
        let retention = settings.security.audit_retention.as_std().as_millis();
        Self {
            store,
            clock,
            audit_retention_ms: i64::try_from(retention).unwrap_or(i64::MAX),
            session_limits: crate::accounts::session::limits(&settings.security),
        }
    }

    /// Deletes expired sessions; returns how many.
    pub async fn purge_sessions(&self) -> anyhow::Result<u64> {
        let now = crate::clock::to_millis(self.clock.now());
        self.store.purge_sessions(now, self.session_limits).await
    }

    /// Deletes audit entries older than the retention; the purge is audited.
    pub async fn purge_audit(&self) -> anyhow::Result<u64> {
        let now = crate::clock::to_millis(self.clock.now());
        crate::audit::purge(&self.store, now, self.audit_retention_ms).await
    }
}

/// Hourly: expired sessions. Daily at 03:30: old audit entries.
fn housekeeping_jobs(jobs: &Jobs) -> anyhow::Result<Vec<Job>> {
    let (hourly, daily) = (jobs.housekeeping.clone(), jobs.housekeeping.clone());
    let sessions = Job::new_async_tz("0 7 * * * *", jobs.timing.time_zone, move |_id, _lock| {
        let work = hourly.clone();
        Box::pin(async move {
            match work.purge_sessions().await {
                Ok(n) => tracing::debug!(sessions = n, "expired admin sessions purged"),
                Err(e) => tracing::error!(error = %crate::telemetry::scrub(&format!("{e:#}")), "cannot purge expired sessions; the next hour retries"),
            }
        })
    })
    .context("cannot create the session purge job")?;
    let audit = Job::new_async_tz("0 30 3 * * *", jobs.timing.time_zone, move |_id, _lock| {
        let work = daily.clone();
        Box::pin(async move {
            match work.purge_audit().await {
                Ok(n) => tracing::info!(entries = n, "audit entries past security.audit_retention purged"),
                Err(e) => tracing::error!(error = %crate::telemetry::scrub(&format!("{e:#}")), "cannot purge old audit entries; tomorrow retries"),
            }
        })
    })
    .context("cannot create the audit purge job")?;
    Ok(vec![sessions, audit])
}

/// When the jobs run.
#[derive(Debug, Clone)]
pub struct Timing {
    /// `delivery.plan_every`.
    pub plan_every: std::time::Duration,
    /// `report.weekly_cron`.
    pub weekly_cron: String,
    /// `report.manager_digest_cron`; empty: no digests.
    pub manager_digest_cron: String,
    /// `organisation.time_zone`, in which the cron expressions are read.
    pub time_zone: chrono_tz::Tz,
}

impl Timing {
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self {
            plan_every: settings.delivery.plan_every.as_std(),
            weekly_cron: settings.report.weekly_cron.clone(),
            manager_digest_cron: settings.report.manager_digest_cron.clone(),
            time_zone: settings.organisation.time_zone.0,
        }
    }
}

/// The running scheduler; stop it on shutdown.
pub struct Scheduler {
    inner: JobScheduler,
}

impl Scheduler {
    pub async fn stop(mut self) {
        if let Err(e) = self.inner.shutdown().await {
            tracing::warn!(error = %e, "scheduler did not stop cleanly");
        }
    }
}

/// The weekly summary on `report.weekly_cron`, in the organisation's time
/// zone. Every instance runs it; the claimed report key makes one send.
fn weekly_job(jobs: &Jobs) -> anyhow::Result<Job> {
    let cron = jobs.timing.weekly_cron.clone();
    let reports = jobs.reports.clone();
    Job::new_async_tz(cron.as_str(), jobs.timing.time_zone, move |_id, _lock| {
        let reports = reports.clone();
        Box::pin(async move {
            match crate::report::weekly::send_weekly(&reports, false).await {
                Ok(outcomes) => {
                    let each: Vec<String> = outcomes
                        .iter()
                        .map(|o| format!("{}: {}", o.campaign, o.outcome))
                        .collect();
                    let each = if each.is_empty() {
                        "no campaign to report on".to_string()
                    } else {
                        crate::telemetry::scrub(&each.join("; "))
                    };
                    tracing::info!(campaigns = outcomes.len(), "weekly summary run: {each}")
                }
                Err(e) => tracing::error!(error = %crate::telemetry::scrub(&format!("{e:#}")), "weekly summary failed; `ambassador report send-weekly` sends it by hand"),
            }
        })
    })
    .with_context(|| format!("report.weekly_cron = {cron:?} is not a valid six-field cron expression (sec min hour day month weekday), e.g. \"0 0 8 * * Mon\""))
}

/// The optional manager team digests on `report.manager_digest_cron`.
fn team_digest_job(jobs: &Jobs) -> anyhow::Result<Job> {
    let cron = jobs.timing.manager_digest_cron.clone();
    let reports = jobs.reports.clone();
    Job::new_async_tz(cron.as_str(), jobs.timing.time_zone, move |_id, _lock| {
        let reports = reports.clone();
        Box::pin(async move {
            match crate::report::team::send_team_digests(&reports).await {
                Ok(sent) => tracing::info!(digests = sent.len(), "manager digests run"),
                Err(e) => tracing::error!(error = %crate::telemetry::scrub(&format!("{e:#}")), "manager digests failed"),
            }
        })
    })
    .with_context(|| format!("report.manager_digest_cron = {cron:?} is not a valid six-field cron expression, e.g. \"0 0 8 * * Fri\""))
}

/// The bounce mailbox, every `bounces.every`. Runs on every instance:
/// recording a bounce is idempotent and a message moved by one instance
/// is simply gone for the others.
fn bounce_job(bounces: &crate::bounces::BounceJob) -> anyhow::Result<Job> {
    let bounces = bounces.clone();
    let every = bounces.every();
    Job::new_repeated_async(every, move |_id, _lock| {
        let bounces = bounces.clone();
        Box::pin(async move {
            match bounces.run().await {
                Ok(run) => tracing::info!(
                    marked = run.marked,
                    counted = run.counted,
                    auto_replies = run.auto_replies,
                    unmatched = run.unmatched,
                    errors = run.errors,
                    "bounce mailbox read"
                ),
                Err(e) => tracing::error!(error = %crate::telemetry::scrub(&format!("{e:#}")), "cannot read the bounce mailbox; the next run tries again"),
            }
        })
    })
    .context("cannot create the bounce mailbox job")
}

/// Starts the jobs. The first planning tick runs at once.
pub async fn start(jobs: Jobs, stop: CancellationToken) -> anyhow::Result<Scheduler> {
    let scheduler = JobScheduler::new()
        .await
        .context("cannot start the scheduler")?;
    let tick_jobs = jobs.clone();
    let job = Job::new_repeated_async(jobs.timing.plan_every, move |_id, _lock| {
        let jobs = tick_jobs.clone();
        let stop = stop.clone();
        Box::pin(async move {
            if !stop.is_cancelled() {
                planning_tick(&jobs).await;
            }
        })
    })
    .context("cannot create the planning job")?;
    scheduler
        .add(job)
        .await
        .context("cannot schedule planning")?;
    scheduler
        .add(weekly_job(&jobs)?)
        .await
        .context("cannot schedule the weekly summary")?;
    if !jobs.timing.manager_digest_cron.trim().is_empty() {
        scheduler
            .add(team_digest_job(&jobs)?)
            .await
            .context("cannot schedule the manager digests")?;
    }
    for job in housekeeping_jobs(&jobs)? {
        scheduler
            .add(job)
            .await
            .context("cannot schedule the housekeeping")?;
    }
    if let Some(bounces) = &jobs.bounces {
        scheduler
            .add(bounce_job(bounces)?)
            .await
            .context("cannot schedule the bounce mailbox")?;
    }
    scheduler
        .start()
        .await
        .context("cannot start the scheduler")?;
    jobs.heartbeat.beat();
    if let Err(e) = jobs.planning.tick().await {
        tracing::error!(error = %crate::telemetry::scrub(&format!("{e:#}")), "first planning tick failed");
    }
    jobs.heartbeat.beat();
    Ok(Scheduler { inner: scheduler })
}

/// Plans, then sends again what a dead instance claimed and never sent. A
/// failed tick is logged and the next one retries; either way the tick ran,
/// which is the progress the watchdog looks for.
async fn planning_tick(jobs: &Jobs) {
    jobs.heartbeat.beat();
    if let Err(e) = jobs.planning.tick().await {
        tracing::error!(error = %crate::telemetry::scrub(&format!("{e:#}")), "planning tick failed; the next tick retries");
    }
    if let Err(e) = crate::report::resend::resend_unsent(&jobs.reports).await {
        tracing::error!(error = %crate::telemetry::scrub(&format!("{e:#}")), "cannot send unsent summaries again; the next tick retries");
    }
    jobs.heartbeat.beat();
}
