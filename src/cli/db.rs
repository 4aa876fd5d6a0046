//! `ambassador db migrate | backup FILE`.

use ambassador::config::Settings;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations (serve also does this on start).
    Migrate,
    /// Write a consistent copy of the SQLite database, safe while the daemon runs.
    #[command(
        after_help = "Example:\n  ambassador db backup /var/backups/ambassador-$(date +%F).db\n\nRestore: stop the service, copy the backup over database.url's file, start it."
    )]
    Backup {
        /// Where to write the copy; must not exist yet.
        file: PathBuf,
    },
}

pub async fn run(cmd: DbCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = super::open_store(settings).await?;
    match cmd {
        DbCommand::Migrate => eprintln!("database is up to date"),
        DbCommand::Backup { file } => {
            store.backup(&file).await?;
            eprintln!("backup written to {}", file.display());
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
