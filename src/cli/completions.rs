//! `ambassador completions import FILE` and `completions add EMAIL --date DATE`.

use ambassador::clock::SystemClock;
use ambassador::completions::{self, CompletionError, CompletionOptions, CompletionReport};
use ambassador::config::Settings;
use ambassador::domain::EmailAddress;
use clap::{Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum CompletionsCommand {
    /// Record completions from a report exported from the learning network (CSV).
    #[command(
        after_help = "Examples:\n  ambassador completions import train-report.csv --dry-run\n  ambassador completions import train-report.csv --campaign soar-2027\n\nPeople are matched by email, then employee id, then a unique exact first and last\nname (listed as \"matched by name\" for review); rows that match nobody are listed\nwith the reason and never guessed; record those by hand with `completions add`. Importing\nthe same report again changes nothing. Map unusual headers in config:\n[completions] columns = { \"Learner Mail\" = \"email\" }."
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
    /// Record one completion by hand (a learner the report did not match, or who completed elsewhere).
    #[command(
        after_help = "Example:\n  ambassador completions add ann.lee@hospital.example.org --date 2027-01-20 --campaign soar-2027\n\nThe date is the day of completion (noon in the organisation's time zone), or a date and\ntime; a date in the future is refused. A completion already recorded stands."
    )]
    Add {
        /// The person's roster address.
        email: String,
        /// When they completed: YYYY-MM-DD (or a date and time).
        #[arg(long)]
        date: String,
        /// The campaign to credit (needed when more than one exists).
        #[arg(long)]
        campaign: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Human,
    /// The stable schema documented in docs/cli-json.md.
    Json,
}

pub async fn run(cmd: CompletionsCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    match cmd {
        CompletionsCommand::Import {
            file,
            campaign,
            dry_run,
            format,
        } => import(settings, file, campaign, dry_run, format).await,
        CompletionsCommand::Add {
            email,
            date,
            campaign,
        } => add(settings, &email, &date, campaign.as_deref()).await,
    }
}

async fn add(
    settings: &Settings,
    email: &str,
    date: &str,
    campaign: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let email = EmailAddress::parse(email).map_err(|e| anyhow::anyhow!("email {e}"))?;
    let store = super::open_store(settings).await?;
    let result = async {
        let row = completions::resolve_campaign(&store, campaign).await?;
        let tz = settings.organisation.time_zone.0;
        completions::add_one(&store, &SystemClock, tz, &row, &email, date)
            .await
            .map_err(anyhow::Error::from)
    }
    .await;
    store.close().await;
    let done = result?;
    let day = done
        .completed_at
        .with_timezone(&settings.organisation.time_zone.0);
    if done.recorded {
        println!(
            "{}: completion of {} on {} recorded",
            done.email,
            done.campaign,
            day.format("%Y-%m-%d %H:%M %Z")
        );
    } else {
        println!(
            "{}: a completion of {} was already recorded; it stands",
            done.email, done.campaign
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn import(
    settings: &Settings,
    file: PathBuf,
    campaign: Option<String>,
    dry_run: bool,
    format: Format,
) -> anyhow::Result<ExitCode> {
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
    if !dry_run {
        let detail = match &result {
            Ok(report) => ambassador::audit::completions_detail(report),
            Err(CompletionError::Malformed(report)) => {
                ambassador::audit::completions_detail(report)
            }
            Err(_) => serde_json::json!({
                "file": options.file_name,
                "sha256": ambassador::audit::sha256_hex(&bytes),
            }),
        };
        let action = ambassador::audit::Action::CompletionsImport;
        super::audit(&store, action, &options.file_name, &result, detail).await;
    }
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
    for m in &r.matched_by_name {
        println!(
            "  matched by name (check): line {}: {} -> {}",
            m.line, m.who, m.email
        );
    }
    for u in &r.unmatched {
        println!("  unmatched: line {}: {} ({})", u.line, u.who, u.reason);
    }
    for m in &r.malformed {
        println!("  malformed: {m}");
    }
    Ok(())
}
