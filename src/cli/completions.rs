//! `ambassador completions import FILE`.

use ambassador::clock::SystemClock;
use ambassador::completions::{self, CompletionError, CompletionOptions, CompletionReport};
use ambassador::config::Settings;
use clap::{Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum CompletionsCommand {
    /// Record completions from a report exported from the learning network (CSV).
    #[command(
        after_help = "Examples:\n  ambassador completions import train-report.csv --dry-run\n  ambassador completions import train-report.csv --campaign soar-2027\n\nPeople are matched by employee id, then email, then exact first and last name;\nrows that match nobody are listed with the reason and never guessed. Importing\nthe same report again changes nothing. Map unusual headers in config:\n[completions] columns = { \"Learner Mail\" = \"email\" }."
    )]
    Import {
        file: PathBuf,
        /// The campaign to credit (needed when more than one exists).
        #[arg(long)]
        campaign: Option<String>,
        /// Show what would be recorded; write nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Human,
    /// The stable schema documented in docs/cli-json.md.
    Json,
}

pub async fn run(cmd: CompletionsCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    let CompletionsCommand::Import {
        file,
        campaign,
        dry_run,
        format,
    } = cmd;
    let bytes =
        std::fs::read(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let store = super::open_store(settings).await?;
    let options = CompletionOptions {
        campaign,
        dry_run,
        file_name: file.display().to_string(),
    };
    let result = completions::import(
        &store,
        &SystemClock,
        settings.organisation.time_zone.0,
        &settings.completions.columns,
        &bytes,
        &options,
    )
    .await;
    store.close().await;
    match result {
        Ok(report) => {
            print(&report, format)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(CompletionError::Malformed(report)) => {
            print(&report, format)?;
            eprintln!("error: {}", CompletionError::Malformed(report.clone()));
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

fn print(r: &CompletionReport, format: Format) -> anyhow::Result<()> {
    if let Format::Json = format {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    let verb = if r.applied {
        "recorded"
    } else if r.dry_run {
        "dry run, nothing written"
    } else {
        "nothing written"
    };
    println!(
        "{} ({}) for campaign {}: {verb}",
        r.file, r.encoding, r.campaign
    );
    println!(
        "  rows {}  matched {}  newly completed {}  already completed {}  not completed {}  duplicates {}  unmatched {}",
        r.rows, r.matched, r.newly_completed, r.already_completed, r.not_completed, r.duplicates, r.unmatched.len()
    );
    for u in &r.unmatched {
        println!("  unmatched: line {}: {} ({})", u.line, u.who, u.reason);
    }
    for m in &r.malformed {
        println!("  malformed: {m}");
    }
    Ok(())
}
