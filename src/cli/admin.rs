//! `ambassador admin`: named accounts and their personal API tokens. Every
//! change is recorded in the audit trail under the OS user who ran it.

use ambassador::accounts::{self, Role};
use ambassador::audit::Action;
use ambassador::clock::{from_millis, to_millis, Clock, SystemClock};
use ambassador::config::Settings;
use ambassador::domain::{EmailAddress, HumanDuration};
use ambassador::store::Store;
use clap::{Subcommand, ValueEnum};
use std::io::{BufRead, Write};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Add a named account with a role: admin, coordinator or viewer.
    #[command(
        after_help = "Examples:\n  ambassador admin add cno@hospital.org --role viewer\n  printf '%s\\n' \"$PASSWORD\" | ambassador admin add it-oncall@hospital.org --role admin --password-stdin\n\nRoles: viewer (dashboards and reports), coordinator (also rosters, completions, exemptions,\ncampaigns, previews), admin (also accounts and the audit trail). A local password is\nbreak-glass sign-in for the admin page; accounts without one sign in with single sign-on."
    )]
    Add {
        email: String,
        #[arg(long)]
        role: Role,
        /// Read a local password (at least 12 characters) from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the accounts, their roles and whether they are disabled.
    List {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Disable an account: its sessions end and its tokens are revoked at once.
    Disable { email: String },
    /// Enable a disabled account again (its old tokens stay revoked).
    Enable { email: String },
    /// Change an account's role; it applies from the account's next request.
    Role {
        email: String,
        #[arg(long)]
        role: Role,
    },
    /// Personal API tokens: each belongs to an account and carries its role.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token for an account; it is printed once and kept only as its SHA-256.
    #[command(
        after_help = "Example:\n  ambassador admin token create hr-sync@hospital.org --name nightly-roster --expires 90d\n  curl -H \"Authorization: Bearer $TOKEN\" https://ambassador.hospital.org/api/campaigns"
    )]
    Create {
        email: String,
        /// What the token is for, e.g. "nightly-roster".
        #[arg(long)]
        name: String,
        /// How long it lives, e.g. 30d, 90d (at most 400d).
        #[arg(long, default_value = "90d")]
        expires: String,
    },
    /// List tokens (of one account when EMAIL is given), without their secrets.
    List {
        email: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Revoke a token by the id `token list` shows.
    Revoke { id: i64 },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// The longest a token may live: a forgotten one expires within the year.
const MAX_TOKEN_DAYS: u64 = 400;

pub async fn run(cmd: AdminCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    // Read the password before opening the database, so a bad one changes nothing.
    let password = match &cmd {
        AdminCommand::Add {
            password_stdin: true,
            ..
        } => Some(read_password()?),
        _ => None,
    };
    let store = super::open_store(settings).await?;
    let result = dispatch(cmd, &store, password).await;
    store.close().await;
    result.map(|_| ExitCode::SUCCESS)
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    accounts::password::hash(&password).map_err(|e| anyhow::anyhow!("--password-stdin: {e:#}"))
}

async fn dispatch(cmd: AdminCommand, store: &Store, hash: Option<String>) -> anyhow::Result<()> {
    let now = to_millis(SystemClock.now());
    let user = super::os_user();
    let mut out = std::io::stdout().lock();
    match cmd {
        AdminCommand::Add { email, role, .. } => {
            let address =
                EmailAddress::parse(&email).map_err(|e| anyhow::anyhow!("{email:?} {e}"))?;
            let result = accounts::create(store, &address, role, hash.as_deref(), &user, now).await;
            let detail = serde_json::json!({ "role": role, "password": hash.is_some() });
            super::audit(store, Action::AccountAdd, address.as_str(), &result, detail).await;
            let account = result?;
            writeln!(out, "added {} as {}", account.email, account.role)?;
        }
        AdminCommand::List { format } => {
            let list = accounts::list(store).await?;
            if let Format::Json = format {
                serde_json::to_writer_pretty(&mut out, &list)?;
                writeln!(out)?;
                return Ok(());
            }
            if list.is_empty() {
                writeln!(
                    out,
                    "no accounts; add one with `ambassador admin add EMAIL --role admin`"
                )?;
            }
            for a in list {
                writeln!(
                    out,
                    "{:<40} {:<12} {:<9} {}",
                    super::text_cell(&a.email),
                    a.role,
                    if a.disabled() { "disabled" } else { "active" },
                    if a.password_hash.is_some() {
                        "local password"
                    } else {
                        ""
                    }
                )?;
            }
        }
        AdminCommand::Disable { email } => {
            let account = accounts::require(store, &email).await?;
            let result = store.disable_account(account.id, now).await;
            super::audit(
                store,
                Action::AccountDisable,
                &account.email,
                &result,
                serde_json::json!({}),
            )
            .await;
            if result? {
                writeln!(
                    out,
                    "disabled {}: its sessions ended and its tokens were revoked",
                    account.email
                )?;
            } else {
                writeln!(out, "{} was disabled already", account.email)?;
            }
        }
        AdminCommand::Enable { email } => {
            let account = accounts::require(store, &email).await?;
            let result = store.enable_account(account.id).await;
            super::audit(
                store,
                Action::AccountEnable,
                &account.email,
                &result,
                serde_json::json!({}),
            )
            .await;
            if result? {
                writeln!(out, "enabled {}", account.email)?;
            } else {
                writeln!(out, "{} was not disabled", account.email)?;
            }
        }
        AdminCommand::Role { email, role } => {
            let account = accounts::require(store, &email).await?;
            let result = store.set_account_role(account.id, role).await;
            let detail = serde_json::json!({ "from": account.role, "to": role });
            super::audit(store, Action::AccountRole, &account.email, &result, detail).await;
            result?;
            writeln!(out, "{} is now {}", account.email, role)?;
        }
        AdminCommand::Token(cmd) => token(cmd, store, now, &mut out).await?,
    }
    Ok(())
}

async fn token(
    cmd: TokenCommand,
    store: &Store,
    now: i64,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create {
            email,
            name,
            expires,
        } => {
            let ttl =
                HumanDuration::parse(&expires).map_err(|e| anyhow::anyhow!("--expires: {e}"))?;
            if ttl.as_std() > std::time::Duration::from_secs(MAX_TOKEN_DAYS * 86_400) {
                anyhow::bail!(
                    "--expires: at most {MAX_TOKEN_DAYS}d; make a new token before it runs out"
                );
            }
            let account = accounts::require(store, &email).await?;
            let ttl_ms = i64::try_from(ttl.as_std().as_millis()).unwrap_or(i64::MAX);
            let result = accounts::token::create(store, &account, &name, ttl_ms, now).await;
            let detail = serde_json::json!({
                "name": name.trim(),
                "id": result.as_ref().ok().map(|c| c.id),
                "expires_at": result.as_ref().ok().map(|c| from_millis(c.expires_at).to_rfc3339()),
            });
            super::audit(store, Action::TokenCreate, &account.email, &result, detail).await;
            let created = result?;
            eprintln!(
                "token {} for {} ({}), expires {}. It is shown only now; keep it in a secret store:",
                created.id,
                account.email,
                account.role,
                from_millis(created.expires_at).format("%Y-%m-%d %H:%M UTC")
            );
            writeln!(out, "{}", created.secret)?;
        }
        TokenCommand::List { email, format } => {
            let account_id = match email {
                Some(email) => Some(accounts::require(store, &email).await?.id),
                None => None,
            };
            let tokens = store.tokens(account_id).await?;
            if let Format::Json = format {
                serde_json::to_writer_pretty(&mut *out, &tokens)?;
                writeln!(out)?;
                return Ok(());
            }
            if tokens.is_empty() {
                writeln!(out, "no tokens")?;
            }
            for t in tokens {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.expires_at <= now {
                    "expired"
                } else {
                    "live"
                };
                writeln!(
                    out,
                    "{:>5}  {:<32} {:<24} {:<8} expires {}",
                    t.id,
                    super::text_cell(&t.email),
                    super::text_cell(&t.name),
                    state,
                    from_millis(t.expires_at).format("%Y-%m-%d")
                )?;
            }
        }
        TokenCommand::Revoke { id } => {
            let result = accounts::token::revoke(store, id, now).await;
            let target = result.as_ref().map(|t| t.email.clone()).unwrap_or_default();
            let detail = serde_json::json!({ "id": id });
            super::audit(store, Action::TokenRevoke, &target, &result, detail).await;
            let token = result?;
            writeln!(
                out,
                "revoked token {} ({}) of {}",
                token.id,
                super::text_cell(&token.name),
                token.email
            )?;
        }
    }
    Ok(())
}
