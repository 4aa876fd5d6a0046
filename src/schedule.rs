//! Time-driven jobs (tokio-cron-scheduler): the planning tick every
//! `delivery.plan_every`, and the weekly summary on `report.weekly_cron`.
//! Both are safe to run on several instances at once: planning is
//! idempotent, and the weekly send is claimed with a unique key. Each
//! planning tick also sends again what a dead instance claimed and never
//! sent (`report::resend`).

use crate::app::App;
use anyhow::Context;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

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
fn weekly_job(app: &App) -> anyhow::Result<Job> {
    let cron = app.settings.report.weekly_cron.clone();
    let weekly_app = app.clone();
    Job::new_async_tz(cron.as_str(), app.settings.organisation.time_zone.0, move |_id, _lock| {
        let app = weekly_app.clone();
        Box::pin(async move {
            match crate::report::weekly::send_weekly(&app, false).await {
                Ok(outcomes) => tracing::info!(?outcomes, "weekly summary run"),
                Err(e) => tracing::error!(error = %crate::telemetry::scrub(&format!("{e:#}")), "weekly summary failed; `ambassador report send-weekly` sends it by hand"),
            }
        })
    })
    .with_context(|| format!("report.weekly_cron = {cron:?} is not a valid six-field cron expression (sec min hour day month weekday), e.g. \"0 0 8 * * Mon\""))
}

/// The optional manager team digests on `report.manager_digest_cron`.
fn team_digest_job(app: &App) -> anyhow::Result<Job> {
    let cron = app.settings.report.manager_digest_cron.clone();
    let job_app = app.clone();
    Job::new_async_tz(cron.as_str(), app.settings.organisation.time_zone.0, move |_id, _lock| {
        let app = job_app.clone();
        Box::pin(async move {
            match crate::report::team::send_team_digests(&app).await {
                Ok(sent) => tracing::info!(digests = sent.len(), "manager digests run"),
                Err(e) => tracing::error!(error = %crate::telemetry::scrub(&format!("{e:#}")), "manager digests failed"),
            }
        })
    })
    .with_context(|| format!("report.manager_digest_cron = {cron:?} is not a valid six-field cron expression, e.g. \"0 0 8 * * Fri\""))
}

/// Starts the jobs. The first planning tick runs at once.
pub async fn start(app: App, stop: CancellationToken) -> anyhow::Result<Scheduler> {
    let scheduler = JobScheduler::new()
        .await
        .context("cannot start the scheduler")?;
    let every = app.settings.delivery.plan_every.as_std();
    let tick_app = app.clone();
    let job = Job::new_repeated_async(every, move |_id, _lock| {
        let app = tick_app.clone();
        let stop = stop.clone();
        Box::pin(async move {
            if stop.is_cancelled() {
                return;
            }
            if let Err(e) = app.plan().await {
                tracing::error!(error = %crate::telemetry::scrub(&format!("{e:#}")), "planning tick failed; the next tick retries");
            }
            if let Err(e) = crate::report::resend::resend_unsent(&app).await {
                tracing::error!(error = %crate::telemetry::scrub(&format!("{e:#}")), "cannot send unsent summaries again; the next tick retries");
            }
        })
    })
    .context("cannot create the planning job")?;
    scheduler
        .add(job)
        .await
        .context("cannot schedule planning")?;
    scheduler
        .add(weekly_job(&app)?)
        .await
        .context("cannot schedule the weekly summary")?;
    if !app.settings.report.manager_digest_cron.trim().is_empty() {
        scheduler
            .add(team_digest_job(&app)?)
            .await
            .context("cannot schedule the manager digests")?;
    }
    scheduler
        .start()
        .await
        .context("cannot start the scheduler")?;
    if let Err(e) = app.plan().await {
        tracing::error!(error = %crate::telemetry::scrub(&format!("{e:#}")), "first planning tick failed");
    }
    Ok(Scheduler { inner: scheduler })
}
