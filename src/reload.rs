//! SIGHUP: reload the email templates and the campaign files in
//! `campaigns.dir` without a restart (`systemctl reload ambassador`).
//!
//! A reload checks everything before it changes anything: the templates must
//! compile and every campaign file must parse and render with them. If any
//! check fails the running templates and campaigns stay and the reason is
//! logged. Messages being rendered keep the templates they started with, and
//! applying a campaign is idempotent, so a reload neither drops nor repeats
//! work.

use crate::campaign::{self, ApplyOutcome, Campaign};
use crate::delivery::Templates;
use crate::App;
use anyhow::Context;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// A campaign file read from `campaigns.dir`.
struct CampaignFile {
    name: String,
    text: String,
}

/// Reloads on every SIGHUP until `stop`.
pub fn on_hangup(app: App, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut hangups = match listen() {
            Ok(signals) => signals,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP; reload needs a restart");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = hangups.recv() => reload_and_log(&app).await,
                _ = stop.cancelled() => break,
            }
        }
    })
}

#[cfg(unix)]
fn listen() -> std::io::Result<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{signal, SignalKind};
    signal(SignalKind::hangup())
}

#[cfg(not(unix))]
fn listen() -> std::io::Result<NeverSignal> {
    Ok(NeverSignal)
}

/// Windows has no SIGHUP: a reload there means a restart.
#[cfg(not(unix))]
struct NeverSignal;

#[cfg(not(unix))]
impl NeverSignal {
    async fn recv(&mut self) -> Option<()> {
        std::future::pending().await
    }
}

/// One reload, its outcome logged: operators read it in the journal.
pub async fn reload_and_log(app: &App) {
    tracing::info!("reload requested");
    let result = reload(app).await;
    let detail = match &result {
        Ok(applied) => serde_json::json!({
            "campaigns": applied.len(),
            "changed": applied.iter().filter(|a| a.changed).count(),
        }),
        Err(_) => serde_json::json!({}),
    };
    let (outcome, detail) = crate::audit::outcome_of(&result, detail);
    let now = crate::clock::to_millis(app.clock.now());
    let actor = crate::audit::Actor::system();
    let action = crate::audit::Action::ConfigReload;
    crate::audit::record(&app.store, now, &actor, action, "SIGHUP", outcome, detail).await;
    match result {
        Ok(applied) => tracing::info!(
            campaigns = applied.len(),
            changed = applied.iter().filter(|a| a.changed).count(),
            "reloaded templates and campaign files"
        ),
        Err(e) => tracing::error!(
            error = %crate::telemetry::scrub(&format!("{e:#}")),
            "reload refused; the running templates and campaigns stay"
        ),
    }
}

/// Checks the templates and every campaign file, then installs the
/// templates and applies the campaigns. Returns what each file did.
pub async fn reload(app: &App) -> anyhow::Result<Vec<ApplyOutcome>> {
    let templates = app.load_templates()?;
    let files = read_campaign_dir(&app.settings.campaigns.dir)?;
    check_campaigns(&templates, &files)?;
    app.install_templates(templates);
    apply_campaigns(app, &files).await
}

/// Applies the campaign files in `campaigns.dir`, with the running
/// templates; `serve` does this once at start.
pub async fn apply_campaign_dir(app: &App) -> anyhow::Result<Vec<ApplyOutcome>> {
    let files = read_campaign_dir(&app.settings.campaigns.dir)?;
    apply_campaigns(app, &files).await
}

fn check_campaigns(templates: &Templates, files: &[CampaignFile]) -> anyhow::Result<()> {
    for file in files {
        let campaign = Campaign::from_toml(&file.text, &file.name)?;
        templates
            .check_campaign(&campaign)
            .with_context(|| format!("{}: its templates do not render", file.name))?;
    }
    Ok(())
}

async fn apply_campaigns(app: &App, files: &[CampaignFile]) -> anyhow::Result<Vec<ApplyOutcome>> {
    let templates = app
        .templates
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    // A fresh deployment applies its campaigns before the first roster
    // import, so an empty audience is a warning here, not a refusal.
    let options = campaign::ApplyOptions {
        dry_run: false,
        allow_empty: true,
        org_tz: app.settings.organisation.time_zone.0,
    };
    let mut applied = Vec::with_capacity(files.len());
    for file in files {
        let outcome = campaign::apply(
            &app.store,
            app.clock.as_ref(),
            &templates,
            &file.text,
            &file.name,
            &options,
        )
        .await?;
        log_outcome(&file.name, &outcome);
        if outcome.created || outcome.changed {
            let detail = serde_json::json!({
                "file": file.name,
                "created": outcome.created,
                "changes": outcome.changes.len(),
            });
            let now = crate::clock::to_millis(app.clock.now());
            let (actor, action) = (
                crate::audit::Actor::system(),
                crate::audit::Action::CampaignApply,
            );
            let success = crate::store::AuditOutcome::Success;
            crate::audit::record(
                &app.store,
                now,
                &actor,
                action,
                &outcome.slug,
                success,
                detail,
            )
            .await;
        }
        applied.push(outcome);
    }
    Ok(applied)
}

/// Says in the journal what a campaign file changed and whom it reaches.
fn log_outcome(file: &str, outcome: &ApplyOutcome) {
    let slug = &outcome.slug;
    for change in &outcome.changes {
        tracing::info!("campaign {slug} ({file}) changed {change}");
    }
    if outcome.changed && !outcome.created {
        let e = &outcome.effect;
        tracing::info!(
            "campaign {slug}: {} open enrolments got a new due date, {} pending messages moved, {} were cancelled, {} people enrolled, {} left the campaign",
            e.due_dates, e.messages_moved, e.messages_cancelled, e.enrolled, e.removed
        );
    }
    if outcome.audience == 0 {
        tracing::warn!("campaign {slug}: its audience matches nobody active in the roster");
    }
}

/// The `*.toml` files of `dir`, by name; an empty `dir` means none.
fn read_campaign_dir(dir: &Path) -> anyhow::Result<Vec<CampaignFile>> {
    if dir.as_os_str().is_empty() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("campaigns.dir: cannot read {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    paths.iter().map(|path| read_campaign_file(path)).collect()
}

fn read_campaign_file(path: &Path) -> anyhow::Result<CampaignFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the campaign file {}", path.display()))?;
    Ok(CampaignFile {
        name: path.display().to_string(),
        text,
    })
}
