//! The composition root: builds the parts (settings, store, clock, templates,
//! planner, delivery worker, report jobs) and hands each task only what it
//! uses. `serve` runs and supervises the tasks until a signal or until one of
//! them fails; tests and the demo drive the same parts explicitly with
//! [`App::plan_and_deliver`]. Nothing below `app` depends on it.

use crate::campaign::planner::{PlanContext, PlanReport, Planning};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::delivery::{Composer, DeliveryReport, Mailer, Templates, Worker};
use crate::heartbeat::Heartbeat;
use crate::report::{ReportJobs, ReportSettings};
use crate::service::Watched;
use crate::store::Store;
use anyhow::Context;
use std::sync::{Arc, RwLock};
use tokio_util::sync::CancellationToken;

/// A running ambassador.
#[derive(Debug, Clone)]
pub struct App {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub clock: SharedClock,
    pub templates: Arc<RwLock<Arc<Templates>>>,
    pub composer: Composer,
    pub worker: Arc<Worker>,
    pub tracker: crate::tracking::Tracker,
    pub metrics: crate::metrics::Metrics,
    /// A small separate mailer for reports, so they never wait behind a campaign.
    pub report_mailer: Arc<Mailer>,
    /// This process as it holds claims: outbox leases and report claims.
    pub instance: Arc<str>,
    planning: Planning,
    /// The scheduler's progress mark, for the watchdog.
    schedule_beat: Heartbeat,
}

impl App {
    /// Connects, migrates, loads templates and builds the mailer.
    pub async fn build(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        let store = Store::open(&settings.database.url, settings.database.max_connections).await?;
        Self::with_store(settings, clock, store)
    }

    /// As [`App::build`], on an already open store.
    pub fn with_store(
        settings: Settings,
        clock: SharedClock,
        store: Store,
    ) -> anyhow::Result<Self> {
        let templates = Arc::new(RwLock::new(Arc::new(load_templates(&settings)?)));
        let key = crate::tracking::load_or_create_key(&settings.security.token_key_file)?;
        let tracker = crate::tracking::Tracker::new(key, &settings.http.public_url);
        let composer = Composer::new(store.clone(), templates.clone(), &settings, tracker.clone())?;
        let mailer = Mailer::from_settings(&settings.smtp, settings.smtp.pool_size.max(1) as usize);
        let metrics = crate::metrics::Metrics::new();
        let instance: Arc<str> = crate::delivery::owner::Owner::current().id().into();
        let worker = Arc::new(
            Worker::new(
                store.clone(),
                clock.clone(),
                composer.clone(),
                mailer,
                settings.delivery.clone(),
                instance.to_string(),
            )
            .with_metrics(metrics.clone()),
        );
        let report_mailer = Arc::new(Mailer::from_settings(&settings.smtp, 1));
        let planning = Planning {
            store: store.clone(),
            clock: clock.clone(),
            context: PlanContext {
                org_tz: settings.organisation.time_zone.0,
                message_id_domain: composer.domain().to_string(),
            },
            enqueued: worker.outbox_changed.clone(),
        };
        Ok(Self {
            settings: Arc::new(settings),
            store,
            clock,
            templates,
            composer,
            worker,
            tracker,
            metrics,
            report_mailer,
            instance,
            planning,
            schedule_beat: Heartbeat::default(),
        })
    }

    /// One planning tick.
    pub async fn plan(&self) -> anyhow::Result<PlanReport> {
        self.planning.tick().await
    }

    /// What the report jobs (weekly summary, team digests, resend) use.
    pub fn reports(&self) -> ReportJobs {
        ReportJobs {
            store: self.store.clone(),
            clock: self.clock.clone(),
            mailer: self.report_mailer.clone(),
            sender: self.composer.sender(),
            templates: self.templates.clone(),
            instance: self.instance.clone(),
            settings: ReportSettings::from_settings(&self.settings),
        }
    }

    /// The drop folder's task, when `inbox.dir` is set: the reports'
    /// mailer and sender for its notices, this instance for its claims.
    pub fn inbox(&self) -> Option<crate::inbox::Inbox> {
        self.settings.inbox.enabled().then(|| {
            crate::inbox::Inbox::new(
                &self.settings,
                self.store.clone(),
                self.clock.clone(),
                self.report_mailer.clone(),
                self.composer.sender(),
                self.instance.clone(),
            )
        })
    }

    /// What the HTTP routes use; their tracking hits go to `recorder`'s writer.
    pub fn http_state(&self, recorder: crate::tracking::Recorder) -> crate::http::AppState {
        let parts = crate::http::Parts {
            settings: self.settings.clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            composer: self.composer.clone(),
            tracker: self.tracker.clone(),
            recorder,
        };
        crate::http::AppState::new(parts, self.metrics.clone())
    }

    /// What reads the bounce mailbox; `None` when `bounces.imap_host` is
    /// empty. The settings' secrets must be loaded (the mailbox password).
    pub fn bounces(&self) -> Option<crate::bounces::BounceJob> {
        self.settings.bounces.reads_mailbox().then(|| {
            crate::bounces::BounceJob::new(
                self.store.clone(),
                self.clock.clone(),
                self.tracker.key().clone(),
                self.settings.bounces.clone(),
            )
        })
    }

    /// What the scheduled jobs use.
    fn schedule_jobs(&self) -> crate::schedule::Jobs {
        crate::schedule::Jobs {
            bounces: self.bounces(),
            planning: self.planning.clone(),
            reports: self.reports(),
            timing: crate::schedule::Timing::from_settings(&self.settings),
            heartbeat: self.schedule_beat.clone(),
            housekeeping: crate::schedule::Housekeeping::from_settings(
                &self.settings,
                self.store.clone(),
                self.clock.clone(),
            ),
        }
    }

    /// Sends everything due now.
    pub async fn deliver_due(&self) -> anyhow::Result<DeliveryReport> {
        self.worker.deliver_due().await
    }

    /// Plans, then sends everything due: one step of the simulated clock.
    pub async fn plan_and_deliver(&self) -> anyhow::Result<(PlanReport, DeliveryReport)> {
        let plan = self.plan().await?;
        let delivery = self.deliver_due().await?;
        Ok((plan, delivery))
    }

    /// Runs HTTP, the scheduler, the delivery worker and the drop folder until `stop` is
    /// cancelled or one of the tasks ends on its own (an error, a panic),
    /// then drains: open requests and in-flight messages finish, nothing
    /// stays claimed. A task that failed is returned as the error, so the
    /// process exits non-zero and systemd restarts it.
    pub async fn run_until_stopped(self, stop: CancellationToken) -> anyhow::Result<()> {
        let bind = self.settings.http.bind.clone();
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .with_context(|| {
                format!("cannot listen on http.bind = {bind}; is another process using it?")
            })?;
        tracing::info!(address = %listener.local_addr()?, "HTTP listening");
        let mut tasks = Tasks::default();
        // The writer ends after the HTTP server, which holds its only
        // recorder: open requests drain first, then their hits commit.
        let (recorder, writer) = crate::tracking::writer(self.store.clone());
        tasks.spawn("the tracking writer", tokio::spawn(writer.run()));
        tasks.spawn(
            "the HTTP server",
            tokio::spawn(crate::http::serve(
                listener,
                self.http_state(recorder),
                stop.clone(),
            )),
        );
        let scheduler = crate::schedule::start(self.schedule_jobs(), stop.clone()).await?;
        tasks.spawn(
            "the delivery worker",
            tokio::spawn(self.worker.clone().run(stop.clone())),
        );
        if let Some(inbox) = self.inbox() {
            tasks.spawn("the drop folder", tokio::spawn(inbox.run(stop.clone())));
        }
        tracing::info!(worker = self.worker.id(), "ambassador is running");
        crate::service::ready();
        let watchdog = crate::service::spawn_watchdog(stop.clone(), self.watched());
        let failure = tasks.first_failure(&stop).await;
        stop.cancel();
        crate::service::stopping();
        scheduler.stop().await;
        let failure = failure.or(tasks.drain().await);
        if let Some(watchdog) = watchdog {
            let _ = watchdog.await;
        }
        self.store.close().await;
        failure.map_or(Ok(()), Err)
    }

    /// The loops the watchdog requires progress from: the worker's turns
    /// (at least one per idle poll, a second) and the planning ticks (one
    /// per `delivery.plan_every`).
    fn watched(&self) -> Vec<Watched> {
        vec![
            Watched {
                name: "delivery worker",
                heartbeat: self.worker.heartbeat(),
                slack: crate::delivery::IDLE_POLL,
            },
            Watched {
                name: "scheduler",
                heartbeat: self.schedule_beat.clone(),
                slack: self.settings.delivery.plan_every.as_std(),
            },
        ]
    }

    /// Serves HTTP on an already bound listener (tests bind port 0), with
    /// its own tracking writer, which ends after the server. The writer's
    /// failure shows as failed tracking hits (`serve` supervises it).
    pub fn spawn_http(
        &self,
        listener: tokio::net::TcpListener,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        let (recorder, writer) = crate::tracking::writer(self.store.clone());
        let writer = tokio::spawn(writer.run());
        let http = crate::http::serve(listener, self.http_state(recorder), stop);
        tokio::spawn(async move {
            let served = http.await;
            writer
                .await
                .unwrap_or_else(|e| Err(anyhow::anyhow!("panicked: {e}")))
                .context("the tracking writer failed")?;
            served
        })
    }

    /// Replaces the templates with a fresh load; on error the running ones stay.
    pub fn reload_templates(&self) -> anyhow::Result<()> {
        self.install_templates(self.load_templates()?);
        Ok(())
    }

    /// Reads the templates afresh without installing them, so a reload can
    /// check everything before it changes anything.
    pub fn load_templates(&self) -> anyhow::Result<Templates> {
        load_templates(&self.settings)
    }

    /// Makes `templates` the ones new messages render with; renders already
    /// running keep the `Arc` they hold, so nothing in flight changes.
    pub fn install_templates(&self, templates: Templates) {
        *self.templates.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(templates);
    }
}

/// A composer for one-off commands (a campaign preview): templates loaded
/// once, the tracking key read (or created, as `serve` would).
pub fn composer(store: Store, settings: &Settings) -> anyhow::Result<Composer> {
    let templates = Arc::new(RwLock::new(Arc::new(load_templates(settings)?)));
    let key = crate::tracking::load_or_create_key(&settings.security.token_key_file)?;
    let tracker = crate::tracking::Tracker::new(key, &settings.http.public_url);
    Composer::new(store, templates, settings, tracker)
}

/// The email templates: `templates.dir` over the embedded ones.
pub fn load_templates(settings: &Settings) -> anyhow::Result<Templates> {
    let dir = (!settings.templates.dir.as_os_str().is_empty())
        .then_some(settings.templates.dir.as_path());
    let templates = Templates::load_in(settings.templates.language, dir)
        .context("cannot load the email templates")?;
    crate::report::email::check(&templates)
        .context("the report templates (weekly_summary, team_digest) do not render")?;
    Ok(templates)
}

/// The daemon's long-running tasks, each with the name its failure is
/// reported under.
#[derive(Default)]
struct Tasks {
    set: tokio::task::JoinSet<anyhow::Result<()>>,
    names: std::collections::HashMap<tokio::task::Id, &'static str>,
}

impl Tasks {
    fn spawn(&mut self, name: &'static str, task: tokio::task::JoinHandle<anyhow::Result<()>>) {
        let handle = self.set.spawn(async move {
            task.await
                .unwrap_or_else(|e| Err(anyhow::anyhow!("panicked: {e}")))
        });
        self.names.insert(handle.id(), name);
    }

    /// Waits for `stop`, or for the first task to end: before `stop`, even
    /// a clean end is a failure, since the daemon cannot work without it.
    async fn first_failure(&mut self, stop: &CancellationToken) -> Option<anyhow::Error> {
        let (name, result) = tokio::select! {
            biased;
            _ = stop.cancelled() => return None,
            Some(done) = self.set.join_next_with_id() => self.joined(done),
        };
        let error = match result {
            // The stop signal came in the same instant: a clean end is the drain.
            Ok(()) if stop.is_cancelled() => return None,
            Ok(()) => anyhow::anyhow!("{name} stopped unexpectedly"),
            Err(e) => e.context(format!("{name} failed")),
        };
        tracing::error!(error = %crate::telemetry::scrub(&format!("{error:#}")), "stopping the other tasks; exiting with an error so the service manager restarts ambassador");
        Some(error)
    }

    /// A joined task's name and result; a panic is an error.
    fn joined(
        &self,
        done: Result<(tokio::task::Id, anyhow::Result<()>), tokio::task::JoinError>,
    ) -> (&'static str, anyhow::Result<()>) {
        let (id, result) = match done {
            Ok((id, result)) => (id, result),
            Err(e) => (e.id(), Err(anyhow::anyhow!("panicked: {e}"))),
        };
        (self.names.get(&id).copied().unwrap_or("a task"), result)
    }

    /// Waits for every remaining task; returns the first failure.
    async fn drain(&mut self) -> Option<anyhow::Error> {
        let mut failure = None;
        while let Some(done) = self.set.join_next_with_id().await {
            let (name, result) = self.joined(done);
            if let Err(e) = result {
                failure.get_or_insert(e.context(format!("{name} failed")));
            }
        }
        failure
    }
}
