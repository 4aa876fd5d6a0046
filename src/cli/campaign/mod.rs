//! `ambassador campaign …` and `ambassador exempt [--undo]`.

mod apply;
mod show;

use ambassador::audit::Action;
use ambassador::campaign::{self, definition_of, ExemptionListing, Status};
use ambassador::clock::{from_millis, to_millis, Clock, SystemClock};
use ambassador::config::{SecretUse, Settings};
use ambassador::store::exemption::Actor;
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
    /// List who is exempted, by whom, when and why, and every exemption and undo.
    #[command(
        after_help = "Examples:\n  ambassador campaign exemptions soar-2027\n  ambassador campaign exemptions soar-2027 --format json   # see docs/cli-json.md"
    )]
    Exemptions {
        slug: String,
        #[arg(long, value_enum, default_value = "text")]
        format: ExemptionsFormat,
    },
    /// Print one step's complete message (.eml) as it is sent, worded as of the step's own send time.
    #[command(
        after_help = "Examples:\n  ambassador campaign preview soar-2027 --step announcement > announcement.eml\n  ambassador campaign preview soar-2027 --step escalation --to priya.raman@hospital.org\n\nWithout --to the message is for a sample person enrolled as the campaign\nenrols people, with its real due rule. With --to it is exactly what that\nperson gets or would get; when they get nothing from the step (not in the\naudience, completed, exempted, left, unknown) the reason goes to stderr and\nthe exit status is 1."
    )]
    Preview {
        slug: String,
        /// Step name from the campaign file.
        #[arg(long)]
        step: String,
        /// Render what this person from the roster gets (default: a sample person).
        #[arg(long, value_name = "EMAIL")]
        to: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExemptionsFormat {
    Text,
    Json,
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
            .await;
            if !dry_run {
                let target = match &outcome {
                    Ok(o) => o.slug.clone(),
                    Err(_) => file.display().to_string(),
                };
                let detail = match &outcome {
                    Ok(o) => serde_json::json!({
                        "file": file.display().to_string(),
                        "created": o.created,
                        "changes": o.changes.len(),
                    }),
                    Err(_) => serde_json::json!({ "file": file.display().to_string() }),
                };
                super::audit(store, Action::CampaignApply, &target, &outcome, detail).await;
            }
            let outcome = outcome?;
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
        CampaignCommand::Exemptions { slug, format } => {
            let row = campaign::find(store, &slug).await?;
            let listing = campaign::exemption_listing(store, &row).await?;
            match format {
                ExemptionsFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &listing)?;
                    writeln!(out)?;
                }
                ExemptionsFormat::Text => print_exemptions(&listing, &mut out)?,
            }
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
    let result = campaign::set_status(store, clock, slug, status).await;
    let action = match status {
        Status::Paused => Action::CampaignPause,
        Status::Active => Action::CampaignResume,
        Status::Cancelled => Action::CampaignCancel,
    };
    super::audit(store, action, slug, &result, serde_json::json!({})).await;
    result?;
    writeln!(out, "campaign {slug}: {}", status.as_str())?;
    Ok(())
}

/// The exemptions as text: one line each, then the history. Roster values
/// are printed through `text_cell` (no control characters reach the terminal).
fn print_exemptions(listing: &ExemptionListing, out: &mut impl Write) -> anyhow::Result<()> {
    if listing.exemptions.is_empty() {
        writeln!(out, "nobody is exempted from {}", listing.campaign)?;
    } else {
        writeln!(out, "exempted from {}:", listing.campaign)?;
    }
    for e in &listing.exemptions {
        writeln!(
            out,
            "  {}  since {}  by {} ({})  reason: {}",
            text_cell(&e.email),
            from_millis(e.exempted_at).format("%Y-%m-%d %H:%M UTC"),
            text_cell(&e.by),
            e.channel,
            text_cell(&e.reason)
        )?;
    }
    if !listing.history.is_empty() {
        writeln!(out, "history:")?;
    }
    for h in &listing.history {
        writeln!(
            out,
            "  {}  {:<8}  {}  by {} ({})  reason: {}",
            from_millis(h.at).format("%Y-%m-%d %H:%M UTC"),
            h.action,
            text_cell(&h.email),
            text_cell(&h.by),
            h.channel,
            text_cell(&h.reason)
        )?;
    }
    Ok(())
}

use super::text_cell;

/// `ambassador exempt EMAIL --campaign SLUG --reason TEXT [--undo]`.
pub async fn exempt(
    settings: &Settings,
    email: &str,
    slug: &str,
    reason: &str,
    undo: bool,
) -> anyhow::Result<ExitCode> {
    let address = ambassador::domain::EmailAddress::parse(email)
        .map_err(|e| anyhow::anyhow!("{email:?} {e}"))?;
    let reason = reason.trim();
    if !campaign::valid_reason(reason) {
        anyhow::bail!("--reason must be one line of text, at most 500 characters");
    }
    let store = super::open_store(settings).await?;
    let result = exempt_in(&store, slug, &address, reason, undo).await;
    store.close().await;
    result?;
    if undo {
        println!("{address} is no longer exempt from {slug}: {reason}");
    } else {
        println!("{address} is exempt from {slug}: {reason}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn exempt_in(
    store: &ambassador::store::Store,
    slug: &str,
    address: &ambassador::domain::EmailAddress,
    reason: &str,
    undo: bool,
) -> anyhow::Result<()> {
    let row = campaign::find(store, slug).await?;
    let now = to_millis(SystemClock.now());
    let actor = Actor::cli(super::os_user());
    let result = if undo {
        campaign::unexempt(store, &row, address, reason, now, &actor).await
    } else {
        campaign::exempt(store, &row, address, reason, now, &actor).await
    };
    let action = if undo {
        Action::Unexempt
    } else {
        Action::Exempt
    };
    let detail = serde_json::json!({ "campaign": row.slug, "reason": reason });
    super::audit(store, action, address.as_str(), &result, detail).await;
    Ok(result?)
}
