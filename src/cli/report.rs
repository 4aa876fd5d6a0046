//! `ambassador report` and `ambassador report send-weekly`.

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
use std::sync::Arc;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
#[command(
    after_help = "Examples:\n  ambassador report                                   # the terminal table\n  ambassador report --format html --out report.html  # printable, with charts\n  ambassador report --format csv --as-of 2027-02-01 > week5.csv\n  ambassador report --evidence --out evidence.csv     # per person: every message and the completion\n  ambassador report send-weekly                       # the weekly summary email, now\n\nEvery figure is defined in docs/metrics.md."
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

/// Only `send-weekly` logs in to the relay; reports themselves read no secret.
pub fn secrets_used(args: &ReportArgs) -> SecretUse {
    match args.command {
        Some(ReportCommand::SendWeekly) => SecretUse {
            smtp_login: true,
            ..SecretUse::NONE
        },
        None => SecretUse::NONE,
    }
}

pub async fn run(args: ReportArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    if let Some(ReportCommand::SendWeekly) = args.command {
        let sender = Sender::from_settings(&settings.smtp)?;
        let store = super::open_store(settings).await?;
        let result = send_weekly(&report_jobs(store.clone(), sender, settings)).await;
        store.close().await;
        return result;
    }
    let store = super::open_store(settings).await?;
    let result = render_report(args, &store, settings).await;
    store.close().await;
    result
}

/// Only what the summary uses: the store, the reports' one-connection
/// mailer and the sender identity; no delivery pool, no worker, no
/// templates, no tracking key.
fn report_jobs(store: Store, sender: Sender, settings: &Settings) -> ReportJobs {
    ReportJobs {
        store,
        clock: Arc::new(SystemClock),
        mailer: Arc::new(Mailer::from_settings(&settings.smtp, 1)),
        sender,
        instance: Owner::current().id().into(),
        settings: ReportSettings::from_settings(settings),
    }
}

async fn send_weekly(jobs: &ReportJobs) -> anyhow::Result<ExitCode> {
    let outcomes = report::weekly::send_weekly(jobs, true).await?;
    for o in &outcomes {
        println!("{}: {}", o.campaign, o.outcome);
    }
    let failed = outcomes
        .iter()
        .any(|o| o.outcome.starts_with("failed") || o.outcome == "no-recipients");
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
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
    match &args.out {
        Some(path) => {
            std::fs::write(path, text)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            eprintln!("report written to {}", path.display());
        }
        None => print!("{text}"),
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
