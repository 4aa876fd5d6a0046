//! The assembled application: settings, store, clock, templates, planner and
//! delivery worker. `serve` runs it until a signal; tests and the demo drive
//! the same parts explicitly with [`App::plan_and_deliver`].

use crate::campaign::planner::{self, PlanContext, PlanReport};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::delivery::{Composer, DeliveryReport, Mailer, Templates, Worker};
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
    plan_context: PlanContext,
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
        let worker = Arc::new(
            Worker::new(
                store.clone(),
                clock.clone(),
                composer.clone(),
                mailer,
                settings.delivery.clone(),
            )
            .with_metrics(metrics.clone()),
        );
        let report_mailer = Arc::new(Mailer::from_settings(&settings.smtp, 1));
        let plan_context = PlanContext {
            org_tz: settings.organisation.time_zone.0,
            message_id_domain: composer.domain().to_string(),
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
            plan_context,
        })
    }

    /// One planning tick.
    pub async fn plan(&self) -> anyhow::Result<PlanReport> {
        let report = planner::plan(&self.store, self.clock.as_ref(), &self.plan_context).await?;
        if report.enqueued > 0 {
            self.worker.outbox_changed.notify_one();
        }
        Ok(report)
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

    /// Runs HTTP, the scheduler and the delivery worker until `stop` is
    /// cancelled, then drains: open requests and in-flight messages finish,
    /// nothing stays claimed.
    pub async fn run_until_stopped(self, stop: CancellationToken) -> anyhow::Result<()> {
        let bind = self.settings.http.bind.clone();
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .with_context(|| {
                format!("cannot listen on http.bind = {bind}; is another process using it?")
            })?;
        tracing::info!(address = %listener.local_addr()?, "HTTP listening");
        let http = tokio::spawn(crate::http::serve(
            listener,
            crate::http::AppState::new(self.clone(), self.metrics.clone()),
            stop.clone(),
        ));
        let scheduler = crate::schedule::start(self.clone(), stop.clone()).await?;
        let worker = tokio::spawn(self.worker.clone().run(stop.clone()));
        tracing::info!(worker = self.worker.id(), "ambassador is running");
        crate::service::ready();
        let watchdog = crate::service::spawn_watchdog(stop.clone());
        stop.cancelled().await;
        crate::service::stopping();
        scheduler.stop().await;
        worker.await.context("the delivery worker crashed")??;
        http.await.context("the HTTP server crashed")??;
        if let Some(watchdog) = watchdog {
            let _ = watchdog.await;
        }
        self.store.close().await;
        Ok(())
    }

    /// Serves HTTP on an already bound listener (tests bind port 0).
    pub fn spawn_http(
        &self,
        listener: tokio::net::TcpListener,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        tokio::spawn(crate::http::serve(
            listener,
            crate::http::AppState::new(self.clone(), self.metrics.clone()),
            stop,
        ))
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

fn load_templates(settings: &Settings) -> anyhow::Result<Templates> {
    let dir = (!settings.templates.dir.as_os_str().is_empty())
        .then_some(settings.templates.dir.as_path());
    let templates = Templates::load(dir).context("cannot load the email templates")?;
    crate::report::email::check(&templates)
        .context("the report templates (weekly_summary, team_digest) do not render")?;
    Ok(templates)
}
