//! `ambassador campaign …` and `ambassador exempt`.

use ambassador::campaign::{self, definition_of, Status};
use ambassador::clock::{from_millis, to_millis, Clock, SystemClock};
use ambassador::config::{SecretUse, Settings};
use ambassador::store::Store;
use clap::Subcommand;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Create or update a campaign from its TOML file (idempotent: nothing sent is sent again).
    #[command(
        after_help = "Example:\n  ambassador campaign apply config/campaigns/soar.toml\n\nEvery step's template is rendered once with sample data first, so a template\nthat names a missing variable fails here, not in a recipient's inbox."
    )]
    Apply { file: PathBuf },
    /// List campaigns with their status and message counts.
    List,
    /// Show one campaign: its steps, audience and message counts.
    Show { slug: String },
    /// Stop sending (within a second); planned messages wait.
    Pause { slug: String },
    /// Send again after a pause; messages that fell due meanwhile go out.
    Resume { slug: String },
    /// End a campaign for good; pending messages are cancelled.
    Cancel { slug: String },
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
        CampaignCommand::Apply { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let outcome = campaign::apply(
                store,
                &clock,
                &ambassador::app::load_templates(settings)?,
                &text,
                &file.display().to_string(),
            )
            .await?;
            let what = match (outcome.created, outcome.changed) {
                (true, _) => "created",
                (false, true) => "updated (messages already sent are not sent again)",
                (false, false) => "unchanged",
            };
            writeln!(out, "campaign {}: {what}", outcome.slug)?;
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
        CampaignCommand::Show { slug } => {
            let row = campaign::find(store, &slug).await?;
            let c = definition_of(&row)?;
            let counts = store.outbox_counts(Some(row.id)).await?;
            writeln!(
                out,
                "{} — {}\nstatus: {}\nstarts: {}\ndue: {}\ncourse: {}\ncontact: {}",
                c.slug, c.name, row.status, c.starts_at, c.due, c.course_url, c.contact
            )?;
            writeln!(out, "audience: {}", serde_json::to_string(&c.audience)?)?;
            writeln!(
                out,
                "send window: {}",
                serde_json::to_string(&c.send_window)?
            )?;
            writeln!(out, "steps:")?;
            for s in &c.steps {
                let when =
                    s.at.map(|a| format!("at {a}"))
                        .unwrap_or_else(|| "on completion".into());
                writeln!(
                    out,
                    "  {:<14} {:<16} template {:<12} to {:?}",
                    s.name, when, s.template, s.to
                )?;
            }
            writeln!(out, "messages: {}", serde_json::to_string(&counts)?)?;
        }
        CampaignCommand::Pause { slug } => {
            set(store, &clock, &slug, Status::Paused, &mut out).await?
        }
        CampaignCommand::Resume { slug } => {
            set(store, &clock, &slug, Status::Active, &mut out).await?
        }
        CampaignCommand::Cancel { slug } => {
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
