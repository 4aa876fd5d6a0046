//! Time-driven jobs (tokio-cron-scheduler): the planning tick every
//! `delivery.plan_every`, and the weekly summary on `report.weekly_cron`. Each tick is safe to run on several instances at
//! once, because planning is idempotent.

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
        })
    })
    .context("cannot create the planning job")?;
    scheduler
        .add(job)
        .await
        .context("cannot schedule planning")?;
    scheduler
        .start()
        .await
        .context("cannot start the scheduler")?;
    if let Err(e) = app.plan().await {
        tracing::error!(error = %crate::telemetry::scrub(&format!("{e:#}")), "first planning tick failed");
    }
    Ok(Scheduler { inner: scheduler })
}
