//! Settings: the embedded `config/default.toml` < a config file < the
//! `AMBASSADOR__SECTION__KEY` environment. Unknown keys and bad values fail at
//! load time naming the key; secrets never appear in `Debug` or `config check`.
//! Secret files are read later, per command ([`Settings::load_secrets`]).

pub mod ca;
pub mod oidc;
mod secrets;

pub use oidc::{Oidc, RoleName, CALLBACK_PATH};
pub use secrets::{dkim_signing_key, read_tracking_key, SecretError, SecretUse};

use crate::domain::HumanDuration;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The defaults, compiled in so the binary runs with no file at all.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Read when present and no `--config` was given.
pub const SYSTEM_CONFIG: &str = "/etc/ambassador/ambassador.toml";

/// The config file's name inside `$CONFIGURATION_DIRECTORY`, which systemd
/// sets from the unit's `ConfigurationDirectory=`.
const CONFIG_FILE_NAME: &str = "ambassador.toml";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Also read from `[organization]` (see [`organization_overrides`]).
    pub organisation: Organisation,
    /// `[organization]` as given; its keys were copied onto `organisation`.
    #[serde(default, skip_serializing, rename = "organization")]
    _organization_spelling: Option<serde::de::IgnoredAny>,
    pub database: Database,
    pub log: Log,
    pub smtp: Smtp,
    pub delivery: Delivery,
    pub http: Http,
    pub security: Security,
    /// `[oidc]`: sign-in through the organisation's identity provider.
    pub oidc: Oidc,
    pub report: Report,
    pub roster: Roster,
    pub templates: Templates,
    pub campaigns: Campaigns,
    pub completions: Completions,
    pub inbox: Inbox,
    pub bounces: Bounces,
}

/// `[inbox]`: the drop folder an HR system or a scheduled download writes
/// roster exports and completion reports into, imported as they arrive.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Inbox {
    /// The folder watched; empty: off.
    pub dir: PathBuf,
    /// File names (a glob, case ignored) read as roster exports; empty: none by name.
    pub roster_pattern: String,
    /// File names read as completion reports; empty: none by name.
    pub completions_pattern: String,
    /// A file written in place is read once its size and modification time
    /// have not changed for this long (a file renamed in is read at once).
    pub settle: HumanDuration,
    /// How often the folder is listed, besides the change notifications.
    pub scan_every: HumanDuration,
    /// The roster source and mode the folder's roster exports import as.
    pub roster_source: crate::store::RosterSource,
    pub roster_mode: crate::roster::ImportMode,
    /// The campaign completion reports credit; empty: the only campaign.
    pub campaign: String,
    /// Who is told by email of a rejected file (and of every import with `notify_success`).
    pub notify: Vec<crate::domain::EmailAddress>,
    pub notify_success: bool,
}

impl Inbox {
    /// Whether a drop folder is configured.
    pub fn enabled(&self) -> bool {
        !self.dir.as_os_str().is_empty()
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        for (key, pattern) in [
            ("inbox.roster_pattern", &self.roster_pattern),
            ("inbox.completions_pattern", &self.completions_pattern),
        ] {
            if let Err(e) = glob::Pattern::new(pattern) {
                anyhow::bail!("{key} = {pattern:?} is not a file-name pattern ({e}); write e.g. \"roster*.csv\"");
            }
        }
        for (key, value) in [
            ("inbox.settle", self.settle),
            ("inbox.scan_every", self.scan_every),
        ] {
            if value.as_std().is_zero() {
                anyhow::bail!("{key} must be longer than 0s (e.g. \"10s\")");
            }
        }
        Ok(())
    }

    /// The folder exists, is a folder, and `processed/` and `rejected/`
    /// can be made and written in it: checked by `config check` and when
    /// `serve` starts watching, not on every command.
    pub fn check_dir(&self) -> anyhow::Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        let dir = &self.dir;
        let meta = std::fs::metadata(dir).with_context(|| {
            format!(
                "inbox.dir = {}: cannot read it; create the folder or correct the path",
                dir.display()
            )
        })?;
        if !meta.is_dir() {
            anyhow::bail!("inbox.dir = {} is not a folder", dir.display());
        }
        for sub in ["processed", "rejected"] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path).with_context(|| {
                format!("inbox.dir: cannot create {}; give ambassador's user write access to the folder", path.display())
            })?;
            tempfile::tempfile_in(&path).with_context(|| {
                format!(
                    "inbox.dir: cannot write in {}; give ambassador's user write access to it",
                    path.display()
                )
            })?;
        }
        Ok(())
    }
}

/// `[bounces]`: the VERP return path and the bounce mailbox read over IMAP.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Bounces {
    /// `bounce@hospital.org`: messages leave with the envelope sender
    /// `bounce+TOKEN@hospital.org`, so a bounce names its message whatever
    /// the bouncing system did to the body. Empty: off (the sender is `smtp.from`).
    pub return_path: String,
    /// The bounce mailbox's IMAP server (implicit TLS); empty: none is read.
    pub imap_host: String,
    pub imap_port: u16,
    pub imap_user: String,
    /// The mailbox password, read from this file (or systemd credential).
    pub imap_password_file: PathBuf,
    /// Read by [`Settings::load_secrets`] from `imap_password_file`.
    #[serde(skip)]
    pub imap_password: Secret,
    /// The folder bounces arrive in.
    pub imap_folder: String,
    /// Where matched bounces are moved.
    pub processed_folder: String,
    /// Where messages that match no message of ours are moved (never deleted).
    pub unmatched_folder: String,
    /// PEM file of CA certificates to trust for the IMAP server besides the public roots.
    pub ca_file: PathBuf,
    /// How often the mailbox is read.
    pub every: HumanDuration,
    /// Soft bounces (4.x.x) to one address that count as a hard one.
    pub soft_limit: u32,
}

impl Bounces {
    /// Whether a bounce mailbox is configured.
    pub fn reads_mailbox(&self) -> bool {
        !self.imap_host.trim().is_empty()
    }

    fn validate(&self) -> anyhow::Result<()> {
        let rp = self.return_path.trim();
        if !rp.is_empty() {
            let ok = rp.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.is_empty()
                    && !local.contains('+')
                    && local.len() + 1 + 50 <= 64
                    && !rp.contains(|c: char| c.is_whitespace() || c == '<' || c == '>')
            });
            if !ok {
                anyhow::bail!("bounces.return_path = {rp:?} must be a plain address such as \"bounce@hospital.org\" (no '+', a local part of at most 13 characters: the 50-character token is added to it)");
            }
        }
        if !self.reads_mailbox() {
            return Ok(());
        }
        if self.imap_user.trim().is_empty() {
            anyhow::bail!("bounces.imap_host is set but bounces.imap_user is empty; set the bounce mailbox's login");
        }
        if self.imap_password_file.as_os_str().is_empty() {
            anyhow::bail!("bounces.imap_host is set but bounces.imap_password_file is empty; set the file holding the mailbox password");
        }
        for (key, folder) in [
            ("bounces.imap_folder", &self.imap_folder),
            ("bounces.processed_folder", &self.processed_folder),
            ("bounces.unmatched_folder", &self.unmatched_folder),
        ] {
            if folder.trim().is_empty()
                || !folder.is_ascii()
                || folder.contains(|c: char| c.is_control() || c == '"' || c == '\\')
            {
                anyhow::bail!("{key} = {folder:?} must be a folder name in ASCII without quotes, backslashes or control characters");
            }
        }
        if self.processed_folder == self.imap_folder || self.unmatched_folder == self.imap_folder {
            anyhow::bail!("bounces.processed_folder and bounces.unmatched_folder must differ from bounces.imap_folder");
        }
        if self.every.as_std().is_zero() {
            anyhow::bail!("bounces.every must be longer than 0s (e.g. \"5m\")");
        }
        if self.soft_limit == 0 {
            anyhow::bail!("bounces.soft_limit must be at least 1 (the default is 3)");
        }
        if !self.ca_file.as_os_str().is_empty() {
            ca::read_ca_file(&self.ca_file).map_err(|e| anyhow::anyhow!("bounces.ca_file: {e}"))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Campaigns {
    /// A folder of campaign `*.toml` files that `serve` applies at start and
    /// on every SIGHUP; empty: campaigns are applied by hand only.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Completions {
    /// Extra header mappings for completion reports: "Header" = "email" |
    /// "employee_id" | ... | "ignore"; checked at load (config check).
    pub columns: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Templates {
    /// A folder whose NAME.PART.hbs files override the shipped templates; empty: shipped only.
    pub dir: PathBuf,
    /// Which shipped set: U.S. English (the course's own) or British English.
    pub language: Language,
}

/// The spelling of the shipped email templates (`templates.language`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Language {
    #[serde(rename = "en-US")]
    EnUs,
    #[serde(rename = "en-GB")]
    EnGb,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Organisation {
    pub name: String,
    pub time_zone: TimeZone,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// May hold a password (postgres://user:pw@host/db); printed redacted.
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    pub transport: Transport,
    pub outbox_dir: PathBuf,
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: String,
    pub password: Secret,
    pub password_file: PathBuf,
    pub from: String,
    pub reply_to: String,
    pub pool_size: u32,
    pub timeout: HumanDuration,
    /// Send the password over an unencrypted connection (`tls = "none"`):
    /// only for a relay on the same host, where it never crosses a network.
    pub allow_insecure_auth: bool,
    /// PEM file of extra CA certificates to trust for the relay (a private
    /// CA); empty: the built-in public roots only. Verification stays on.
    pub ca_file: PathBuf,
    pub dkim_selector: String,
    pub dkim_domain: String,
    pub dkim_key_file: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    pub concurrency: usize,
    /// Sends per second for this instance, evenly spaced (0: no limit). Per
    /// instance, not per fleet: see docs/architecture.md.
    pub max_per_second: u32,
    pub max_attempts: u32,
    pub retry_base: HumanDuration,
    pub lease: HumanDuration,
    pub plan_every: HumanDuration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    pub bind: String,
    pub public_url: String,
    /// How long a client may take to send a request's headers, from its first byte.
    pub header_timeout: HumanDuration,
    /// How long a connection may sit with no request before it is closed.
    pub idle_timeout: HumanDuration,
    /// How long a request may take, upload and import included, before it
    /// is answered 408.
    pub request_timeout: HumanDuration,
    /// Open connections at most; over it, idle ones are closed to make room.
    pub max_connections: usize,
    /// Reverse proxies whose X-Forwarded-For names the real client (for per-client limits).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Security {
    pub admin_token: Secret,
    /// SHA-256 (hex) of the admin token: lets the config hold no usable secret.
    pub admin_token_sha256: Secret,
    pub admin_token_file: PathBuf,
    pub token_key_file: PathBuf,
    /// Argon2 PHC string of the admin web page's password; empty: sign in with the admin token only.
    /// Deprecated, like the admin token: named accounts (`ambassador admin add`) replace both.
    pub admin_password_hash: Secret,
    /// An admin page session without a request for this long ends.
    pub session_idle_timeout: HumanDuration,
    /// A session ends this long after sign-in, however busy.
    pub session_lifetime: HumanDuration,
    /// How long audit entries are kept; older ones are purged daily (the
    /// purge leaves its own entry).
    pub audit_retention: HumanDuration,
}

impl Security {
    /// Whether the deprecated shared credential (admin token or password) is configured.
    pub fn has_shared_credential(&self) -> bool {
        !self.admin_token.is_empty()
            || !self.admin_token_sha256.is_empty()
            || !self.admin_password_hash.is_empty()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub recipients: Vec<crate::domain::EmailAddress>,
    pub weekly_cron: String,
    pub min_group_size: u32,
    /// When each manager gets their team's status; empty: never.
    pub manager_digest_cron: String,
}

/// `[roster]`: owned by the roster module, which reads it; named here too so
/// `config::Roster` keeps working.
pub use crate::roster::RosterSettings as Roster;

impl Http {
    fn validate(&self) -> anyhow::Result<()> {
        if self.max_connections < 2 {
            anyhow::bail!("http.max_connections must be at least 2 (the default is 512)");
        }
        for (key, value) in [
            ("http.header_timeout", self.header_timeout),
            ("http.idle_timeout", self.idle_timeout),
            ("http.request_timeout", self.request_timeout),
        ] {
            if value.as_std().is_zero() {
                anyhow::bail!("{key} must be longer than 0s (e.g. \"10s\")");
            }
        }
        Ok(())
    }
}

/// A value that must never be printed: `Debug` and `Serialize` redact it.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"<redacted>\""
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "<redacted>" })
    }
}

/// An IANA time zone name, checked at load time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(pub chrono_tz::Tz);

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse::<chrono_tz::Tz>().map(TimeZone).map_err(|_| {
            serde::de::Error::custom(format!(
                "`{raw}` is not an IANA time zone; write e.g. \"America/New_York\""
            ))
        })
    }
}

impl Serialize for TimeZone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name())
    }
}

/// `[organization]` (and `AMBASSADOR__ORGANIZATION__*`) is the U.S.
/// spelling of `[organisation]`: its keys, as `organisation.KEY` overrides.
/// Giving both is refused, since which one wins would be a guess.
fn organization_overrides(
    given: &config::Config,
    where_: &str,
) -> anyhow::Result<Vec<(String, config::Value)>> {
    let Ok(us) = given.get_table("organization") else {
        return Ok(Vec::new());
    };
    if given.get_table("organisation").is_ok() {
        anyhow::bail!(
            "invalid configuration ({where_} and AMBASSADOR__* variables): both [organisation] and [organization] are given; keep one (they are the same section, spelled two ways)"
        );
    }
    Ok(us
        .into_iter()
        .map(|(key, value)| (format!("organisation.{key}"), value))
        .collect())
}

impl Settings {
    /// Settings that load but are probably a mistake: `config check` prints
    /// them and `serve` logs them, so an admin hears before the first week.
    pub fn advisories(&self) -> Vec<String> {
        let mut advice = Vec::new();
        if self.oidc.enabled() && self.oidc.create_accounts && self.oidc.allowed_domains.is_empty()
        {
            advice.push(format!(
                "oidc.allowed_domains is empty and oidc.create_accounts is on, so anyone the provider signs in gets an account ({}); list your domains, e.g. allowed_domains = [\"hospital.org\"]",
                self.oidc.default_role.as_str()
            ));
        }
        if self.report.recipients.is_empty() {
            advice.push(
                "report.recipients is empty, so the weekly summary goes to nobody; list leadership's addresses there, e.g. recipients = [\"cno@hospital.org\"]".to_string(),
            );
        }
        if self.inbox.enabled() && self.inbox.notify.is_empty() {
            advice.push(
                "inbox.dir is set but inbox.notify is empty, so nobody is emailed when a dropped file is rejected; list the admins' addresses there".to_string(),
            );
        }
        if self.security.has_shared_credential() {
            advice.push(
                "security.admin_token / admin_password_hash is a shared admin credential, deprecated: give each person an account (`ambassador admin add EMAIL --role ROLE`) and a personal API token (`ambassador admin token create`), then remove it".to_string(),
            );
        }
        advice
    }

    /// Loads settings from the layers; `file` is `--config`, if given.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_with_env(file, std::env::vars())
    }

    /// As [`Settings::load`], with the environment passed in (for tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        use config::{Config, Environment, File, FileFormat};
        let mut builder =
            Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        let env: Vec<(String, String)> = env.into_iter().collect();
        let service = ServiceDirs::from_env(&env);
        let chosen = match file {
            Some(path) => Some(path.to_path_buf()),
            None => service.default_config(),
        };
        if let Some(path) = &chosen {
            if !path.exists() {
                anyhow::bail!(
                    "config file {} does not exist; pass an existing file to --config",
                    path.display()
                );
            }
            builder = builder.add_source(File::from(path.as_path()).format(FileFormat::Toml));
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("AMBASSADOR__"))
            .collect();
        let environment = || {
            Environment::with_prefix("AMBASSADOR")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("report.recipients")
                .with_list_parse_key("inbox.notify")
                .source(Some(env.clone()))
        };
        builder = builder.add_source(environment());
        let where_ = chosen
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the built-in defaults".into());
        let mut given = Config::builder();
        if let Some(path) = &chosen {
            given = given.add_source(File::from(path.as_path()).format(FileFormat::Toml));
        }
        let given = given
            .add_source(environment())
            .build()
            .with_context(|| format!("cannot read the configuration ({where_})"))?;
        for (key, value) in organization_overrides(&given, &where_)? {
            builder = builder.set_override(key, value)?;
        }
        let raw = builder
            .build()
            .with_context(|| format!("cannot read the configuration ({where_})"))?;
        let mut settings: Settings = raw.try_deserialize().map_err(|e| {
            anyhow::anyhow!("invalid configuration ({where_} and AMBASSADOR__* variables): {e}")
        })?;
        settings.resolve_credentials(service.credentials.as_deref());
        settings.validate()?;
        Ok(settings)
    }

    /// Points each relative `*_file` at systemd's credentials directory when
    /// the file is there: the unit passes secrets with `LoadCredential=`, and
    /// the config cannot spell `${CREDENTIALS_DIRECTORY}` (no expansion).
    /// A file that is not a credential stays relative to the working
    /// directory, e.g. the tracking key generated in the state directory.
    fn resolve_credentials(&mut self, credentials: Option<&Path>) {
        let Some(dir) = credentials else { return };
        for path in [
            &mut self.smtp.password_file,
            &mut self.smtp.dkim_key_file,
            &mut self.security.admin_token_file,
            &mut self.security.token_key_file,
            &mut self.oidc.client_secret_file,
            &mut self.bounces.imap_password_file,
        ] {
            if path.as_os_str().is_empty() || path.is_absolute() {
                continue;
            }
            let candidate = dir.join(&*path);
            if candidate.exists() {
                *path = candidate;
            }
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            anyhow::bail!("database.url must start with sqlite:// or postgres:// (got a value starting with {:?})", url.split(':').next().unwrap_or(""));
        }
        if !(0.0..=1.0).contains(&self.roster.max_deactivate_share) {
            anyhow::bail!(
                "roster.max_deactivate_share must be between 0.0 and 1.0 (e.g. 0.2 for 20%)"
            );
        }
        if self.roster.max_columns == 0 || self.roster.max_field_length == 0 {
            anyhow::bail!(
                "roster.max_columns and roster.max_field_length must be at least 1 (defaults: 200 and 256)"
            );
        }
        for (header, target) in &self.roster.columns {
            if let Err(reason) = crate::roster::Mapping::parse(target) {
                anyhow::bail!("roster.columns, {header:?}: {reason}");
            }
        }
        for (header, target) in &self.completions.columns {
            if let Err(reason) = crate::completions::check_mapping(target) {
                anyhow::bail!("completions.columns, {header:?}: {reason}");
            }
        }
        self.http.validate()?;
        self.inbox.validate()?;
        if self.delivery.concurrency == 0 {
            anyhow::bail!("delivery.concurrency must be at least 1");
        }
        if self.smtp.transport == Transport::Smtp && self.smtp.host.trim().is_empty() {
            anyhow::bail!(
                "smtp.host is empty but smtp.transport = \"smtp\"; set the relay's host name"
            );
        }
        self.validate_smtp_security()?;
        self.oidc.validate(&self.http.public_url)?;
        self.bounces.validate()?;
        if !self.smtp.from.contains('@') {
            anyhow::bail!("smtp.from must be an address like \"Name <ambassador@hospital.org>\"");
        }
        Ok(())
    }

    /// AUTH only over TLS unless allowed for a local relay, and a CA file
    /// that holds certificates: both found here, before anything is sent.
    fn validate_smtp_security(&self) -> anyhow::Result<()> {
        let smtp = &self.smtp;
        if smtp.transport != Transport::Smtp {
            return Ok(());
        }
        if smtp.tls == Tls::None && !smtp.username.is_empty() && !smtp.allow_insecure_auth {
            anyhow::bail!(
                "smtp.username is set but smtp.tls = \"none\": the password would cross the network in cleartext. \
                 Set smtp.tls = \"starttls\" or \"tls\", or, only for a relay on this same host, smtp.allow_insecure_auth = true"
            );
        }
        if !smtp.ca_file.as_os_str().is_empty() {
            ca::read_ca_file(&smtp.ca_file).map_err(|e| anyhow::anyhow!("smtp.ca_file: {e}"))?;
        }
        Ok(())
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database.url = redact_url(&self.database.url);
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// The directories systemd hands a service through the environment.
struct ServiceDirs {
    /// `$CONFIGURATION_DIRECTORY` (`ConfigurationDirectory=`).
    configuration: Option<PathBuf>,
    /// `$CREDENTIALS_DIRECTORY` (`LoadCredential=`).
    credentials: Option<PathBuf>,
}

impl ServiceDirs {
    fn from_env(env: &[(String, String)]) -> Self {
        let dir = |name: &str| {
            env.iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| PathBuf::from(v))
        };
        Self {
            configuration: dir("CONFIGURATION_DIRECTORY"),
            credentials: dir("CREDENTIALS_DIRECTORY"),
        }
    }

    /// The config file read when no `--config` was given: the one in the
    /// unit's configuration directory, else the system one, if present.
    fn default_config(&self) -> Option<PathBuf> {
        let in_unit_dir = self
            .configuration
            .as_ref()
            .map(|dir| dir.join(CONFIG_FILE_NAME));
        in_unit_dir
            .into_iter()
            .chain([PathBuf::from(SYSTEM_CONFIG)])
            .find(|path| path.exists())
    }
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!(
                    "{}{}:<redacted>{}",
                    &url[..scheme_end + 3],
                    user,
                    &url[at..]
                )
            } else {
                url.to_string()
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> anyhow::Result<Settings> {
        Settings::load_with_env(
            None,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    fn load_file(toml: &str, env: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ambassador.toml");
        std::fs::write(&path, toml).unwrap();
        Settings::load_with_env(
            Some(&path),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn organization_is_read_as_organisation_and_both_are_refused() {
        let s = load_file("[organization]\nname = \"Mercy Valley Health\"\n", &[]).unwrap();
        assert_eq!(s.organisation.name, "Mercy Valley Health");
        assert_eq!(
            s.organisation.time_zone.0.name(),
            "America/New_York",
            "defaults kept"
        );
        assert!(!s.to_redacted_toml().contains("[organization]"));
        let s = load(&[("AMBASSADOR__ORGANIZATION__NAME", "From Env")]).unwrap();
        assert_eq!(s.organisation.name, "From Env");
        for err in [
            load_file(
                "[organisation]\nname = \"A\"\n[organization]\nname = \"B\"\n",
                &[],
            ),
            load_file(
                "[organisation]\nname = \"A\"\n",
                &[("AMBASSADOR__ORGANIZATION__NAME", "B")],
            ),
        ] {
            let err = format!("{:#}", err.unwrap_err());
            assert!(
                err.contains("both [organisation] and [organization]"),
                "{err}"
            );
        }
        let err = format!(
            "{:#}",
            load_file("[organization]\nnmae = \"x\"\n", &[]).unwrap_err()
        );
        assert!(err.contains("nmae"), "an unknown key is still named: {err}");
    }

    #[test]
    fn a_bounce_mailbox_is_checked_naming_the_key() {
        let err =
            load(&[("AMBASSADOR__BOUNCES__RETURN_PATH", "bounce+x@hospital.org")]).unwrap_err();
        assert!(
            format!("{err:#}").contains("bounces.return_path"),
            "{err:#}"
        );
        let err = load(&[("AMBASSADOR__BOUNCES__IMAP_HOST", "mail.hospital.org")]).unwrap_err();
        assert!(format!("{err:#}").contains("bounces.imap_user"), "{err:#}");
        let mailbox = [
            ("AMBASSADOR__BOUNCES__IMAP_HOST", "mail.hospital.org"),
            ("AMBASSADOR__BOUNCES__IMAP_USER", "bounce@hospital.org"),
            ("AMBASSADOR__BOUNCES__IMAP_PASSWORD_FILE", "bounce-password"),
        ];
        let err = load(&[
            mailbox[0],
            mailbox[1],
            mailbox[2],
            ("AMBASSADOR__BOUNCES__PROCESSED_FOLDER", "INBOX"),
        ])
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("bounces.processed_folder"),
            "{err:#}"
        );
        let err = load(&[
            mailbox[0],
            mailbox[1],
            mailbox[2],
            ("AMBASSADOR__BOUNCES__UNMATCHED_FOLDER", "Bounces \"old\""),
        ])
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("bounces.unmatched_folder"),
            "{err:#}"
        );
        let s = load(&[
            mailbox[0],
            mailbox[1],
            mailbox[2],
            ("AMBASSADOR__BOUNCES__RETURN_PATH", "bounce@hospital.org"),
        ])
        .unwrap();
        assert!(s.bounces.reads_mailbox());
        assert_eq!(s.bounces.soft_limit, 3);
    }

    #[test]
    fn unusable_http_limits_are_refused_naming_the_key() {
        let err = load(&[("AMBASSADOR__HTTP__MAX_CONNECTIONS", "1")]).unwrap_err();
        assert!(
            format!("{err:#}").contains("http.max_connections"),
            "{err:#}"
        );
        let err = load(&[("AMBASSADOR__HTTP__IDLE_TIMEOUT", "0s")]).unwrap_err();
        assert!(format!("{err:#}").contains("http.idle_timeout"), "{err:#}");
        let s = load(&[("AMBASSADOR__HTTP__HEADER_TIMEOUT", "5s")]).unwrap();
        assert_eq!(s.http.header_timeout.as_std().as_secs(), 5);
    }

    #[test]
    fn roster_columns_map_to_fields_attributes_or_ignore_and_nothing_else() {
        let s = load_file(
            "[roster]\ncolumns = { \"Preferred Name\" = \"first_name\", \"Cost Center\" = \"attributes.cost_center\", \"SSN\" = \"ignore\", \"Notes\" = \"\" }\n", &[])
        .unwrap();
        assert_eq!(s.roster.columns.len(), 4);
        let err = load_file("[roster]\ncolumns = { \"Nick\" = \"nickname\" }\n", &[]).unwrap_err();
        let completions = load_file(
            "[completions]\ncolumns = { \"Finished On\" = \"completed_at\", \"Course\" = \"ignore\" }\n", &[])
        .unwrap();
        assert_eq!(completions.completions.columns.len(), 2);
        let wrong = load_file(
            "[completions]\ncolumns = { \"Finished On\" = \"finished\" }\n",
            &[],
        )
        .unwrap_err();
        assert_eq!(
            format!("{wrong:#}"),
            "completions.columns, \"Finished On\": \"finished\" is not a completion report column; use one of: email, employee_id, first_name, last_name, completed_at, status, or \"ignore\""
        );
        assert_eq!(
            format!("{err:#}"),
            "roster.columns, \"Nick\": \"nickname\" is not a roster field; use one of: email, employee_id, first_name, last_name, department, role, facility, manager_email, time_zone, \"attributes.NAME\" or \"ignore\""
        );
    }

    #[test]
    fn the_drop_folder_is_off_by_default_and_checked_when_set() {
        let s = load(&[]).unwrap();
        assert!(!s.inbox.enabled());
        assert!(s.inbox.check_dir().is_ok(), "nothing to check when off");
        let err = load(&[
            ("AMBASSADOR__INBOX__DIR", "/srv/inbox"),
            ("AMBASSADOR__INBOX__ROSTER_PATTERN", "roster[.csv"),
        ])
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("inbox.roster_pattern"),
            "{err:#}"
        );
        let folder = tempfile::tempdir().unwrap();
        let missing = folder.path().join("inbox");
        let s = load(&[
            ("AMBASSADOR__INBOX__DIR", missing.to_str().unwrap()),
            ("AMBASSADOR__INBOX__NOTIFY", "a@hospital.org,b@hospital.org"),
        ])
        .unwrap();
        assert_eq!(s.inbox.notify.len(), 2);
        let err = s.inbox.check_dir().unwrap_err();
        assert!(format!("{err:#}").contains("inbox.dir"), "{err:#}");
        std::fs::create_dir(&missing).unwrap();
        s.inbox.check_dir().unwrap();
        assert!(missing.join("processed").is_dir() && missing.join("rejected").is_dir());
    }

    #[test]
    fn defaults_load_without_any_file() {
        let s = load(&[]).unwrap();
        assert_eq!(s.smtp.transport, Transport::File);
        assert!(s.database.url.starts_with("sqlite:"));
        // A relay is reached over STARTTLS unless the admin says otherwise.
        assert_eq!(s.smtp.tls, Tls::Starttls);
        assert!(!s.smtp.allow_insecure_auth);
    }

    #[test]
    fn environment_overrides_a_key() {
        let s = load(&[("AMBASSADOR__SMTP__PORT", "2525")]).unwrap();
        assert_eq!(s.smtp.port, 2525);
    }

    #[test]
    fn a_wrong_type_names_the_key() {
        let err = load(&[("AMBASSADOR__SMTP__PORT", "many")]).unwrap_err();
        assert!(format!("{err:#}").contains("port"), "{err:#}");
    }

    #[test]
    fn a_relative_secret_file_is_read_from_the_credentials_directory() {
        let creds = tempfile::tempdir().unwrap();
        std::fs::write(creds.path().join("smtp-password"), "s3cret\n").unwrap();
        let s = load(&[
            ("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap()),
            ("AMBASSADOR__SMTP__USERNAME", "ambassador"),
            ("AMBASSADOR__SMTP__PASSWORD_FILE", "smtp-password"),
        ])
        .unwrap();
        assert!(
            s.smtp.password.is_empty(),
            "read only when a command uses it"
        );
        let mut s = s;
        s.load_secrets(SecretUse::ALL).unwrap();
        assert_eq!(s.smtp.password.expose(), "s3cret");
        assert_eq!(s.smtp.password_file, creds.path().join("smtp-password"));
    }

    #[test]
    fn a_file_that_is_not_a_credential_stays_relative() {
        let creds = tempfile::tempdir().unwrap();
        let s = load(&[("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap())]).unwrap();
        assert_eq!(s.security.token_key_file, PathBuf::from("token.key"));
    }

    #[test]
    fn auth_without_tls_is_refused_unless_allowed_for_a_local_relay() {
        let cleartext = [
            ("AMBASSADOR__SMTP__TRANSPORT", "smtp"),
            ("AMBASSADOR__SMTP__TLS", "none"),
            ("AMBASSADOR__SMTP__USERNAME", "ambassador"),
        ];
        let err = load(&cleartext).unwrap_err();
        assert!(
            format!("{err:#}").contains("smtp.allow_insecure_auth = true"),
            "{err:#}"
        );
        let allowed = [
            &cleartext[..],
            &[("AMBASSADOR__SMTP__ALLOW_INSECURE_AUTH", "true")],
        ];
        assert!(load(&allowed.concat()).unwrap().smtp.allow_insecure_auth);
        // No username: nothing to protect.
        assert!(load(&cleartext[..2]).is_ok());
    }

    #[test]
    fn a_ca_file_without_a_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "not a certificate\n").unwrap();
        let err = load(&[
            ("AMBASSADOR__SMTP__TRANSPORT", "smtp"),
            ("AMBASSADOR__SMTP__CA_FILE", file.to_str().unwrap()),
        ])
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("smtp.ca_file") && text.contains("BEGIN CERTIFICATE"),
            "{text}"
        );
    }

    #[test]
    fn secrets_are_redacted_everywhere() {
        let s = load(&[
            ("AMBASSADOR__SMTP__PASSWORD", "hunter2"),
            ("AMBASSADOR__DATABASE__URL", "postgres://amb:pw123@db/amb"),
        ])
        .unwrap();
        let shown = s.to_redacted_toml();
        assert!(
            !shown.contains("hunter2") && !shown.contains("pw123"),
            "{shown}"
        );
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(
            shown.contains("postgres://amb:<redacted>@db/amb"),
            "{shown}"
        );
    }
}
