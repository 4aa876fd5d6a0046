//! `ambassador report`, `report send-weekly` and the previews of the
//! weekly summary and the team digest.

use ambassador::clock::SystemClock;
use ambassador::config::{SecretUse, Settings};
use ambassador::delivery::owner::Owner;
use ambassador::delivery::{Mailer, Sender};
use ambassador::report::{self, render, ReportJobs, ReportSettings};
use ambassador::store::Store;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
#[command(
    after_help = "Examples:\n  ambassador report                                   # the terminal table\n  ambassador report --format html --out report.html  # printable, with charts\n  ambassador report --format csv --as-of 2027-02-01 > week5.csv\n  ambassador report --evidence --out evidence.csv     # per person: every message and the completion\n  ambassador report send-weekly                       # the weekly summary email, now\n  ambassador report preview-weekly --out summary.eml  # the summary as it would be sent\n  ambassador report preview-digest --manager EMAIL    # a manager's team digest, likewise\n\nEvery figure is defined in docs/metrics.md."
)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: Option<ReportCommand>,
    /// The campaign (needed when more than one exists).
    #[arg(long)]
    pub campaign: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Figures as they stood at the end of this day (UTC), or at this RFC 3339 instant.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
    /// Per-person evidence (CSV): each message with the relay's reply, and how completion was recorded.
    #[arg(long)]
    pub evidence: bool,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Send this week's summary to report.recipients now.
    SendWeekly,
    /// Write this week's summary as it would be sent (.eml), sending nothing.
    #[command(
        after_help = "Examples:\n  ambassador report preview-weekly > summary.eml\n  ambassador report preview-weekly --campaign soar-2027 --out summary.eml\n\nRendered with the weekly_summary templates (templates.dir overrides them).\nAddressed to report.recipients, or to smtp.from while that list is empty."
    )]
    PreviewWeekly(PreviewArgs),
    /// Write one manager's team digest as it would be sent (.eml), sending nothing.
    #[command(
        after_help = "Examples:\n  ambassador report preview-digest --manager priya.raman@hospital.org > digest.eml\n  ambassador report preview-digest --manager priya.raman@hospital.org --campaign soar-2027 --out digest.eml\n\nRendered with the team_digest templates (templates.dir overrides them)."
    )]
    PreviewDigest {
        /// The manager, as the roster's manager_email column names them.
        #[arg(long, value_name = "EMAIL")]
        manager: String,
        #[command(flatten)]
        preview: PreviewArgs,
    },
}

/// What both previews take.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The campaign (needed when more than one exists).
    #[arg(long, value_name = "SLUG")]
    pub campaign: Option<String>,
    /// Write the .eml to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    /// Spreadsheet-safe: cells that could run as formulas are neutralised.
    Csv,
    /// The stable schema documented in docs/cli-json.md.
    Json,
    /// Self-contained and printable, with charts.
    Html,
}

/// Only `send-weekly` logs in to the relay; a preview is the message as
/// sent, DKIM signature included; reports themselves read no secret.
pub fn secrets_used(args: &ReportArgs) -> SecretUse {
    match args.command {
        Some(ReportCommand::SendWeekly) => SecretUse {
            smtp_login: true,
            ..SecretUse::NONE
        },
        Some(ReportCommand::PreviewWeekly(_) | ReportCommand::PreviewDigest { .. }) => SecretUse {
            dkim: true,
            ..SecretUse::NONE
        },
        None => SecretUse::NONE,
    }
}

pub async fn run(args: ReportArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    if let Some(command) = args.command {
        let jobs = report_jobs(settings).await?;
        let result = match command {
            ReportCommand::SendWeekly => send_weekly(&jobs).await,
            ReportCommand::PreviewWeekly(preview) => preview_weekly(&jobs, &preview).await,
            ReportCommand::PreviewDigest { manager, preview } => {
                preview_digest(&jobs, &manager, &preview).await
            }
        };
        jobs.store.close().await;
        return result;
    }
    let store = super::open_store(settings).await?;
    let result = render_report(args, &store, settings).await;
    store.close().await;
    result
}

/// Only what the summary, the digests and their previews use: the store,
/// the report templates, the reports' one-connection mailer and the sender
/// identity (DKIM included); no delivery pool, no worker, no tracking key.
async fn report_jobs(settings: &Settings) -> anyhow::Result<ReportJobs> {
    let sender = Sender::from_settings(&settings.smtp)?;
    let templates = ambassador::app::load_templates(settings)?;
    let store = super::open_store(settings).await?;
    Ok(ReportJobs {
        store,
        clock: Arc::new(SystemClock),
        mailer: Arc::new(Mailer::from_settings(&settings.smtp, 1)),
        sender,
        templates: Arc::new(RwLock::new(Arc::new(templates))),
        instance: Owner::current().id().into(),
        settings: ReportSettings::from_settings(settings),
    })
}

async fn send_weekly(jobs: &ReportJobs) -> anyhow::Result<ExitCode> {
    let outcomes = report::weekly::send_weekly(jobs, true).await?;
    for o in &outcomes {
        println!("{}: {}", o.campaign, o.outcome);
    }
    if outcomes
        .iter()
        .any(|o| o.outcome == ambassador::store::ReportOutcome::NoRecipients)
    {
        eprintln!("no summary was sent: report.recipients is empty; list leadership's addresses there (see `ambassador config check`)");
    }
    let failed = outcomes.iter().any(|o| o.outcome.is_problem());
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// This week's summary as it would go out now, signed, to `--out` or stdout.
async fn preview_weekly(jobs: &ReportJobs, args: &PreviewArgs) -> anyhow::Result<ExitCode> {
    let row =
        ambassador::completions::resolve_campaign(&jobs.store, args.campaign.as_deref()).await?;
    let mut recipients = jobs.settings.recipients.clone();
    if recipients.is_empty() {
        recipients.push(jobs.sender.from().email.to_string());
    }
    let message = report::weekly::compose(jobs, &row, jobs.clock.now(), &recipients).await?;
    write_eml(jobs, message, args.out.as_deref())
}

/// One manager's digest as it would go out now, signed, to `--out` or stdout.
async fn preview_digest(
    jobs: &ReportJobs,
    manager: &str,
    args: &PreviewArgs,
) -> anyhow::Result<ExitCode> {
    let row =
        ambassador::completions::resolve_campaign(&jobs.store, args.campaign.as_deref()).await?;
    let teams = report::team::teams(jobs, &row, jobs.clock.now()).await?;
    let wanted = manager.trim().to_lowercase();
    let Some((address, team)) = teams.iter().find(|(m, _)| m.to_lowercase() == wanted) else {
        anyhow::bail!(
            "--manager {manager}: nobody in campaign {} names this address as their manager (the roster's manager_email column); `ambassador roster list` shows who does",
            row.slug
        );
    };
    let message = report::team::compose(jobs, &row, address, team)?;
    write_eml(jobs, message, args.out.as_deref())
}

/// Signs `message` as a send would and writes it as an .eml file.
fn write_eml(
    jobs: &ReportJobs,
    mut message: lettre::Message,
    out: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    jobs.sender.sign(&mut message);
    let raw = message.formatted();
    match out {
        Some(path) => {
            std::fs::write(path, raw)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            eprintln!("preview written to {}", path.display());
        }
        None => std::io::Write::write_all(&mut std::io::stdout(), &raw)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The report in the chosen format, to `--out` or standard output.
async fn render_report(
    args: ReportArgs,
    store: &Store,
    settings: &Settings,
) -> anyhow::Result<ExitCode> {
    let row = ambassador::completions::resolve_campaign(store, args.campaign.as_deref()).await?;
    let text = if args.evidence {
        render::evidence_csv(&store.evidence(row.id).await?)?
    } else {
        let as_of = match &args.as_of {
            Some(raw) => parse_as_of(raw)?,
            None => Utc::now(),
        };
        let r = report::build(store, &row, as_of, settings.report.min_group_size).await?;
        match args.format {
            Format::Table => render::table(&r),
            Format::Csv => render::csv(&r)?,
            Format::Json => serde_json::to_string_pretty(&r)? + "\n",
            Format::Html => render::html(&r),
        }
    };
    let format = if args.evidence {
        "evidence".to_string()
    } else {
        format!("{:?}", args.format).to_lowercase()
    };
    let written: Result<(), &str> = Ok(());
    let detail = serde_json::json!({
        "format": format,
        "channel": "cli",
        "out": args.out.as_ref().map(|p| p.display().to_string()),
    });
    let action = ambassador::audit::Action::ReportExport;
    super::audit(store, action, &row.slug, &written, detail).await;
    match &args.out {
        Some(path) => {
            std::fs::write(path, text)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            eprintln!("report written to {}", path.display());
        }
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_as_of(raw: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        anyhow::anyhow!(
            "--as-of {raw:?}: write a date like 2027-02-01 or an instant like 2027-02-01T17:00:00Z"
        )
    })?;
    Ok(day.and_hms_opt(23, 59, 59).unwrap_or_default().and_utc())
}
