//! `ambassador campaign …` and `ambassador exempt`.

mod apply;
mod show;

use ambassador::campaign::{self, definition_of, Status};
use ambassador::clock::{from_millis, to_millis, Clock, SystemClock};
use ambassador::config::{SecretUse, Settings};
use ambassador::store::Store;
use clap::{Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Create or update a campaign from its TOML file; a change reaches the rollout under way.
    #[command(
        after_help = "Examples:\n  ambassador campaign apply config/campaigns/soar.toml --dry-run\n  ambassador campaign apply config/campaigns/soar.toml\n\nA changed file is shown as a diff (dates, window, limits, steps, audience) with how\nmany enrolments and pending messages it touches. Applying it gives open enrolments\nthe new due date, moves pending messages under the new steps, window and limits,\nand enrols or removes people per the new audience. Nothing sent is sent again; a\nmessage being sent right now is left alone.\n\nEvery step's template is rendered once with sample data first, so a template\nthat names a missing variable fails here, not in a recipient's inbox."
    )]
    Apply {
        file: PathBuf,
        /// Show the changes and what they touch; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Accept an audience that matches nobody in the roster (e.g. before the first import).
        #[arg(long)]
        allow_empty: bool,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// List campaigns with their status and message counts.
    List,
    /// Show one campaign: dates, audience and how many it matches, window, steps, message counts.
    #[command(after_help = "Example:\n  ambassador campaign show soar-2027 --format json")]
    Show {
        slug: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Stop sending (within a second); planned messages wait.
    Pause { slug: String },
    /// Send again after a pause; messages that fell due meanwhile go out.
    Resume { slug: String },
    /// End a campaign for good; pending messages are cancelled. Asks first (or --yes).
    #[command(after_help = "Example:\n  ambassador campaign cancel soar-2027 --yes")]
    Cancel {
        slug: String,
        /// Cancel without asking (needed when not run from a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Print one step's complete message (.eml) exactly as it would be sent.
    #[command(
        after_help = "Examples:\n  ambassador campaign preview soar-2027 --step announcement > announcement.eml\n  ambassador campaign preview soar-2027 --step escalation --to priya.raman@hospital.org"
    )]
    Preview {
        slug: String,
        /// Step name from the campaign file.
        #[arg(long)]
        step: String,
        /// Render for this person from the roster (default: a sample person).
        #[arg(long, value_name = "EMAIL")]
        to: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    /// The stable schema documented in docs/cli-json.md.
    Json,
}

/// A preview is the message as sent, DKIM signature included; the other
/// campaign commands sign and send nothing.
pub fn secrets_used(cmd: &CampaignCommand) -> SecretUse {
    match cmd {
        CampaignCommand::Preview { .. } => SecretUse {
            dkim: true,
            ..SecretUse::NONE
        },
        _ => SecretUse::NONE,
    }
}

pub async fn run(cmd: CampaignCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    // The store only; templates for `apply`, and the composer (with the
    // tracking key) for `preview`, are built by the commands that use them.
    let store = super::open_store(settings).await?;
    let result = dispatch(cmd, &store, settings).await;
    store.close().await;
    result.map(|_| ExitCode::SUCCESS)
}

async fn dispatch(cmd: CampaignCommand, store: &Store, settings: &Settings) -> anyhow::Result<()> {
    let clock = SystemClock;
    let mut out = std::io::stdout().lock();
    match cmd {
        CampaignCommand::Apply {
            file,
            dry_run,
            allow_empty,
            format,
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let options = campaign::ApplyOptions {
                dry_run,
                allow_empty,
                org_tz: settings.organisation.time_zone.0,
            };
            let outcome = campaign::apply(
                store,
                &clock,
                &ambassador::app::load_templates(settings)?,
                &text,
                &file.display().to_string(),
                &options,
            )
            .await?;
            apply::print(&outcome, format, &mut out)?;
        }
        CampaignCommand::List => {
            writeln!(
                out,
                "{:<24} {:<10} {:<26} {:>8} {:>8} {:>8}",
                "slug", "status", "starts", "sent", "pending", "failed"
            )?;
            for row in store.campaigns().await? {
                let c = store.outbox_counts(Some(row.id)).await?;
                writeln!(
                    out,
                    "{:<24} {:<10} {:<26} {:>8} {:>8} {:>8}",
                    row.slug,
                    row.status,
                    from_millis(row.starts_at).to_rfc3339(),
                    c.sent,
                    c.pending,
                    c.failed + c.undeliverable
                )?;
            }
        }
        CampaignCommand::Show { slug, format } => {
            let row = campaign::find(store, &slug).await?;
            show::print(store, &row, format, &mut out).await?;
        }
        CampaignCommand::Pause { slug } => {
            set(store, &clock, &slug, Status::Paused, &mut out).await?
        }
        CampaignCommand::Resume { slug } => {
            set(store, &clock, &slug, Status::Active, &mut out).await?
        }
        CampaignCommand::Cancel { slug, yes } => {
            confirm_cancel(store, &slug, yes).await?;
            set(store, &clock, &slug, Status::Cancelled, &mut out).await?
        }
        CampaignCommand::Preview { slug, step, to } => {
            let row = campaign::find(store, &slug).await?;
            let c = definition_of(&row)?;
            let composer = ambassador::app::composer(store.clone(), settings)?;
            let message = composer
                .preview(row.id, &c, &step, to.as_deref(), clock.now())
                .await?;
            out.write_all(&message.formatted())?;
        }
    }
    Ok(())
}

/// Cancelling cannot be undone: ask on a terminal, and refuse without
/// `--yes` anywhere else (a script must say it means it).
async fn confirm_cancel(store: &Store, slug: &str, yes: bool) -> anyhow::Result<()> {
    let row = campaign::find(store, slug).await?;
    if yes || row.status == Status::Cancelled {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        anyhow::bail!(
            "cancelling campaign {slug:?} cannot be undone and needs confirmation; pass --yes to cancel it without a terminal"
        );
    }
    let pending = store.outbox_counts(Some(row.id)).await?.pending;
    eprint!(
        "Cancel campaign {slug} for good? Its {pending} pending messages are cancelled and it cannot be resumed. Type yes to confirm: "
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.read_line(&mut answer)?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        return Ok(());
    }
    anyhow::bail!("campaign {slug:?} was not cancelled (the answer was not yes)")
}

async fn set(
    store: &Store,
    clock: &dyn Clock,
    slug: &str,
    status: Status,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    campaign::set_status(store, clock, slug, status).await?;
    writeln!(out, "campaign {slug}: {}", status.as_str())?;
    Ok(())
}

/// `ambassador exempt EMAIL --campaign SLUG --reason TEXT`.
pub async fn exempt(
    settings: &Settings,
    email: &str,
    slug: &str,
    reason: &str,
) -> anyhow::Result<ExitCode> {
    let address = ambassador::domain::EmailAddress::parse(email)
        .map_err(|e| anyhow::anyhow!("{email:?} {e}"))?;
    let store = super::open_store(settings).await?;
    let result = exempt_in(&store, slug, &address, reason).await;
    store.close().await;
    result?;
    println!("{address} is exempt from {slug}: {reason}");
    Ok(ExitCode::SUCCESS)
}

async fn exempt_in(
    store: &ambassador::store::Store,
    slug: &str,
    address: &ambassador::domain::EmailAddress,
    reason: &str,
) -> anyhow::Result<()> {
    let row = campaign::find(store, slug).await?;
    let now = to_millis(SystemClock.now());
    Ok(campaign::exempt(store, &row, address, reason, now).await?)
}
