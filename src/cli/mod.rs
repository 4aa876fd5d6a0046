//! Argument definitions (clap) and the dispatch to each command.

mod db;
mod roster;

use ambassador::config::Settings;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Rolls the SOAR forced-labour training course out to your staff: imports HR
/// rosters, sends the announcement and reminders by email, follows up through
/// managers, and reports completion to leadership.
#[derive(Debug, Parser)]
#[command(name = "ambassador", version, propagate_version = true)]
#[command(
    after_help = "Examples:\n  ambassador demo                         # a whole rollout on a simulated clock, no server needed\n  ambassador roster import staff.csv --dry-run\n  ambassador --config /etc/ambassador/ambassador.toml serve\n\nConfiguration: built-in defaults < /etc/ambassador/ambassador.toml (or --config) < AMBASSADOR__SECTION__KEY variables."
)]
pub struct Cli {
    /// Configuration file (default: /etc/ambassador/ambassador.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the configuration and print it, secrets redacted.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Database maintenance: migrations and backups.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Import and list the staff roster.
    #[command(subcommand)]
    Roster(roster::RosterCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration; print the effective values with secrets redacted.
    #[command(
        after_help = "Example:\n  AMBASSADOR__SMTP__PORT=2525 ambassador --config site.toml config check"
    )]
    Check,
}

impl Command {
    fn is_daemon(&self) -> bool {
        false
    }
}

/// Runs one command; the exit code says whether it succeeded.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(cli.config.as_deref())?;
    // One-shot commands report on stdout/stderr themselves; their logs stay
    // at warn unless RUST_LOG asks for more. The daemon logs at log.level.
    ambassador::telemetry::init(&settings.log, !cli.command.is_daemon());
    match cli.command {
        Command::Config(ConfigCommand::Check) => {
            print!("{}", settings.to_redacted_toml());
            eprintln!("configuration is valid");
            Ok(ExitCode::SUCCESS)
        }
        Command::Db(cmd) => db::run(cmd, &settings).await,
        Command::Roster(cmd) => roster::run(cmd, &settings).await,
    }
}

/// Opens the configured database, applying pending migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<ambassador::store::Store> {
    ambassador::store::Store::open(&settings.database.url, settings.database.max_connections).await
}
