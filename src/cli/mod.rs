//! Argument definitions (clap) and the dispatch to each command.

mod admin;
mod bounces;
mod campaign;
mod completions;
mod db;
mod report;
mod roster;
mod serve;
mod table;

use ambassador::config::{SecretUse, Settings};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Rolls the SOAR forced-labor training course out to your staff: imports HR
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
    /// Apply, inspect, pause, resume, cancel and preview campaigns.
    #[command(subcommand)]
    Campaign(campaign::CampaignCommand),
    /// Rollout metrics: table, CSV, JSON, HTML, evidence; the weekly summary.
    Report(report::ReportArgs),
    /// Read the bounce mailbox now (the daemon reads it every bounces.every).
    #[command(subcommand)]
    Bounces(bounces::BouncesCommand),
    /// Record completions from the learning network's reports.
    #[command(subcommand)]
    Completions(completions::CompletionsCommand),
    /// Stop messaging one person in one campaign (on leave, trained elsewhere), or undo that.
    #[command(
        after_help = "Examples:\n  ambassador exempt ann.lee@hospital.org --campaign soar-2027 --reason \"trained at previous employer\"\n  ambassador exempt ann.lee@hospital.org --campaign soar-2027 --undo --reason \"exempted by mistake\"\n  ambassador campaign exemptions soar-2027     # who is exempted, and every change\n\nOnly someone the campaign is about: enrolled, or in its audience (then enrolled as exempted).\nRefused, and nothing changes: someone outside the audience, someone who completed (the\ncompletion stands), someone already exempted (undo first), any change in a cancelled campaign.\nEvery exemption and undo is kept with your user name, the time and the reason."
    )]
    Exempt {
        email: String,
        #[arg(long)]
        campaign: String,
        /// Why; kept for the report and the exemption history.
        #[arg(long)]
        reason: String,
        /// Undo the person's exemption: planning messages them again from its next tick.
        #[arg(long)]
        undo: bool,
    },
    /// Named accounts with roles, and their personal API tokens.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Run the daemon: planning on a schedule, delivery workers, until SIGTERM.
    #[command(
        after_help = "Example:\n  ambassador --config /etc/ambassador/ambassador.toml serve"
    )]
    Serve,
    /// A whole rollout on embedded defaults and a simulated clock, ending today: no server, no config.
    #[command(
        after_help = "Example:\n  ambassador demo --out demo-out && ls demo-out/outbox\n\nThe campaign is moved by whole weeks so the rollout ends today. A sample admin and viewer\nare made with random passwords, printed with the serve command that opens the demo at /admin."
    )]
    Demo {
        /// Where the demo database and the .eml files go (replaced on each run).
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and every secret; print the effective values with secrets redacted.
    #[command(
        after_help = "Example:\n  AMBASSADOR__SMTP__PORT=2525 ambassador --config site.toml config check\n\nReads every *_file secret and checks it as serve does at start: admin_token_sha256 is 64 hex\ndigits, admin_password_hash is Argon2, the DKIM key is RSA, [oidc] has its client secret file; a secret given two ways is refused.\n[oidc] is checked too (issuer URL, client id, domains, roles); the provider itself is first contacted at sign-in."
    )]
    Check,
}

impl Command {
    fn is_daemon(&self) -> bool {
        matches!(self, Command::Serve)
    }

    /// The secrets this command reads: all for `serve` and `config check`,
    /// otherwise only what it sends or signs with, so one-off commands run
    /// without the service's credentials.
    fn secrets_used(&self) -> SecretUse {
        match self {
            Command::Serve | Command::Config(ConfigCommand::Check) => SecretUse::ALL,
            Command::Report(args) => report::secrets_used(args),
            Command::Campaign(cmd) => campaign::secrets_used(cmd),
            Command::Bounces(_) => bounces::secrets_used(),
            _ => SecretUse::NONE,
        }
    }
}

/// Runs one command; the exit code says whether it succeeded.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    settings.load_secrets(cli.command.secrets_used())?;
    // One-shot commands report on stdout/stderr themselves; their logs stay
    // at warn unless RUST_LOG asks for more. The daemon logs at log.level.
    ambassador::telemetry::init(&settings.log, !cli.command.is_daemon());
    match cli.command {
        Command::Config(ConfigCommand::Check) => {
            print!("{}", settings.to_redacted_toml());
            settings.inbox.check_dir()?;
            for advice in settings.advisories() {
                eprintln!("warning: {advice}");
            }
            eprintln!("configuration is valid");
            Ok(ExitCode::SUCCESS)
        }
        Command::Db(cmd) => db::run(cmd, &settings).await,
        Command::Roster(cmd) => roster::run(cmd, &settings).await,
        Command::Campaign(cmd) => campaign::run(cmd, &settings).await,
        Command::Completions(cmd) => completions::run(cmd, &settings).await,
        Command::Bounces(cmd) => bounces::run(cmd, &settings).await,
        Command::Report(args) => report::run(args, &settings).await,
        Command::Exempt {
            email,
            campaign,
            reason,
            undo,
        } => campaign::exempt(&settings, &email, &campaign, &reason, undo).await,
        Command::Admin(cmd) => admin::run(cmd, &settings).await,
        Command::Serve => serve::serve(settings).await,
        Command::Demo { out } => serve::demo(&settings, &out).await,
    }
}

/// Opens the configured database, applying pending migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<ambassador::store::Store> {
    ambassador::store::Store::open(&settings.database.url, settings.database.max_connections).await
}

/// Who runs the command, for the exemption history and the audit trail:
/// the login name, or the numeric user id when the environment names nobody.
pub(crate) fn os_user() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.trim().is_empty())
        // SAFETY: getuid has no preconditions and cannot fail.
        .unwrap_or_else(|| format!("uid {}", unsafe { libc::getuid() }))
}

/// Records a command's action in the audit trail, as the OS user: success,
/// or failure with the error.
pub(crate) async fn audit<T, E: std::fmt::Display>(
    store: &ambassador::store::Store,
    action: ambassador::audit::Action,
    target: &str,
    result: &Result<T, E>,
    detail: serde_json::Value,
) {
    use ambassador::clock::Clock;
    let (outcome, detail) = ambassador::audit::outcome_of(result, detail);
    let now = ambassador::clock::to_millis(ambassador::clock::SystemClock.now());
    let actor = ambassador::audit::Actor::cli(os_user());
    ambassador::audit::record(store, now, &actor, action, target, outcome, detail).await;
}

/// A value for one line of terminal output: control characters shown escaped.
pub(crate) fn text_cell(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
