//! `ambassador bounces fetch`: one pass over the bounce mailbox now, as the
//! daemon does every `bounces.every`.

use ambassador::bounces::BounceJob;
use ambassador::clock::SystemClock;
use ambassador::config::{SecretUse, Settings};
use clap::Subcommand;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum BouncesCommand {
    /// Read the bounce mailbox once: record bounces, move what was read, print what happened.
    #[command(
        after_help = "Example:\n  ambassador bounces fetch\n  ambassador bounces fetch --format json\n\nNeeds [bounces] imap_host, imap_user and imap_password_file. Matched bounces move to\nbounces.processed_folder, unmatched mail to bounces.unmatched_folder; auto-replies stay."
    )]
    Fetch {
        /// text or json.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
}

/// The bounce mailbox's password and the tracking key (VERP tokens).
pub fn secrets_used() -> SecretUse {
    SecretUse {
        bounce_mailbox: true,
        tracking_key: true,
        ..SecretUse::NONE
    }
}

pub async fn run(cmd: BouncesCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    let BouncesCommand::Fetch { format } = cmd;
    if !settings.bounces.reads_mailbox() {
        anyhow::bail!("no bounce mailbox is configured; set bounces.imap_host, imap_user and imap_password_file (README, \"Bounces\")");
    }
    let store = super::open_store(settings).await?;
    let key = ambassador::tracking::load_or_create_key(&settings.security.token_key_file)?;
    let job = BounceJob::new(store, Arc::new(SystemClock), key, settings.bounces.clone());
    let run = job.run().await?;
    if format == "json" {
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else {
        println!(
            "bounce mailbox read: {} address(es) marked undeliverable, {} bounce(s) counted, {} ignored, {} auto-repl(y/ies) left, {} unmatched moved",
            run.marked, run.counted, run.ignored, run.auto_replies, run.unmatched
        );
        if run.errors > 0 {
            eprintln!(
                "{} message(s) could not be recorded and stay in the mailbox (see the log)",
                run.errors
            );
        }
    }
    Ok(if run.errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
