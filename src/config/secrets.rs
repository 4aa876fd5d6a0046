//! Secrets are read per command: `serve` and `config check` read and check
//! every one; a one-off command reads only those it uses, so it runs outside
//! the unit (no `$CREDENTIALS_DIRECTORY`) without the service's credentials.

use super::{Secret, Settings, Transport};
use std::path::{Path, PathBuf};

/// Which secrets a command uses. The others are dropped from its settings
/// unread, so nothing downstream can reach for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SecretUse {
    /// `smtp.password` / `smtp.password_file`: logging in to the relay.
    pub smtp_login: bool,
    /// `smtp.dkim_*`: signing campaign messages.
    pub dkim: bool,
    /// `security.admin_token*`, `admin_password_hash` and `oidc.client_secret_file`: the API and /admin.
    pub admin: bool,
    /// `security.token_key_file`, when it exists: tracking links.
    pub tracking_key: bool,
    /// `bounces.imap_password_file`, when a bounce mailbox is configured.
    pub bounce_mailbox: bool,
}

impl SecretUse {
    /// Commands that read no secret at all (roster, completions, exempt, db, ...).
    pub const NONE: Self = Self {
        smtp_login: false,
        dkim: false,
        admin: false,
        tracking_key: false,
        bounce_mailbox: false,
    };
    /// `serve` and `config check`.
    pub const ALL: Self = Self {
        smtp_login: true,
        dkim: true,
        admin: true,
        tracking_key: true,
        bounce_mailbox: true,
    };
}

/// Why a secret, or a combination of secret settings, is refused.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{value} and {file} are both set; keep only {file} (or only {value}), so it is clear which one is used")]
    ValueAndFile {
        value: &'static str,
        file: &'static str,
    },
    #[error("security.admin_token_sha256 and {other} are both set; keep only one way of giving the admin token")]
    DigestAndToken { other: &'static str },
    #[error("{key}: cannot read {}: {source}; check the path and that this user may read it (under systemd, a relative name is looked up in $CREDENTIALS_DIRECTORY)", path.display())]
    Unreadable {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{key}: {} is empty; put the secret in it, or unset {key}", path.display())]
    EmptyFile { key: &'static str, path: PathBuf },
    #[error("security.admin_token_sha256 must be 64 hexadecimal digits, the output of `printf %s \"$TOKEN\" | sha256sum` (got {found})")]
    BadDigest { found: String },
    #[error("security.admin_password_hash is not an Argon2 PHC string ({why}); it must look like \"$argon2id$v=19$m=...\" (see config/default.toml for how to make one)")]
    BadPasswordHash { why: String },
    #[error("{key} is set but smtp.username is empty, so the password would never be used; set smtp.username or remove {key}")]
    PasswordWithoutUser { key: &'static str },
    #[error("smtp.username is set but neither smtp.password_file nor smtp.password is; set the relay password (or empty smtp.username for a relay without login)")]
    UserWithoutPassword,
    #[error("DKIM needs all three of smtp.dkim_selector, smtp.dkim_domain and smtp.dkim_key_file; missing: {missing}")]
    PartialDkim { missing: String },
    #[error("smtp.dkim_key_file {} is not an RSA private key in PKCS#1 PEM (\"BEGIN RSA PRIVATE KEY\"; make one with `openssl genrsa -traditional 2048`)", path.display())]
    BadDkimKey { path: PathBuf },
    #[error("security.token_key_file {} {why}; delete it to generate a new key (links already sent stop working)", path.display())]
    BadTrackingKey { path: PathBuf, why: &'static str },
}

impl Settings {
    /// Reads and checks the secrets `uses` names and drops the others, so
    /// the same settings can go to `App::build` without touching them.
    pub fn load_secrets(&mut self, uses: SecretUse) -> Result<(), SecretError> {
        if uses.bounce_mailbox && self.bounces.reads_mailbox() {
            self.bounces.imap_password = read_secret(
                &self.bounces.imap_password_file,
                "bounces.imap_password_file",
            )?;
        } else {
            self.bounces.imap_password = Secret::default();
            self.bounces.imap_password_file = PathBuf::new();
        }
        if uses.smtp_login {
            self.load_smtp_login()?;
        } else {
            self.smtp.password = Secret::default();
            self.smtp.password_file = PathBuf::new();
        }
        if uses.dkim {
            dkim_signing_key(&self.smtp)?;
        } else {
            self.smtp.dkim_selector.clear();
            self.smtp.dkim_domain.clear();
            self.smtp.dkim_key_file = PathBuf::new();
        }
        if uses.admin {
            self.load_admin()?;
        } else {
            self.security.admin_token = Secret::default();
            self.security.admin_token_file = PathBuf::new();
            self.security.admin_token_sha256 = Secret::default();
            self.security.admin_password_hash = Secret::default();
            self.oidc.client_secret = Secret::default();
            self.oidc.client_secret_file = PathBuf::new();
        }
        if uses.tracking_key {
            read_tracking_key(&self.security.token_key_file)?;
        }
        Ok(())
    }

    fn load_smtp_login(&mut self) -> Result<(), SecretError> {
        let smtp = &mut self.smtp;
        let has_file = !smtp.password_file.as_os_str().is_empty();
        if has_file && !smtp.password.is_empty() {
            return Err(SecretError::ValueAndFile {
                value: "smtp.password",
                file: "smtp.password_file",
            });
        }
        if has_file {
            smtp.password = read_secret(&smtp.password_file, "smtp.password_file")?;
        }
        let key = if has_file {
            "smtp.password_file"
        } else {
            "smtp.password"
        };
        if smtp.username.is_empty() && !smtp.password.is_empty() {
            return Err(SecretError::PasswordWithoutUser { key });
        }
        if smtp.transport == Transport::Smtp
            && !smtp.username.is_empty()
            && smtp.password.is_empty()
        {
            return Err(SecretError::UserWithoutPassword);
        }
        Ok(())
    }

    fn load_admin(&mut self) -> Result<(), SecretError> {
        let security = &mut self.security;
        let has_file = !security.admin_token_file.as_os_str().is_empty();
        let has_digest = !security.admin_token_sha256.is_empty();
        if has_file && !security.admin_token.is_empty() {
            return Err(SecretError::ValueAndFile {
                value: "security.admin_token",
                file: "security.admin_token_file",
            });
        }
        if has_digest && (has_file || !security.admin_token.is_empty()) {
            let other = if has_file {
                "security.admin_token_file"
            } else {
                "security.admin_token"
            };
            return Err(SecretError::DigestAndToken { other });
        }
        if has_digest {
            check_digest(security.admin_token_sha256.expose())?;
        }
        if has_file {
            security.admin_token =
                read_secret(&security.admin_token_file, "security.admin_token_file")?;
        }
        check_password_hash(security.admin_password_hash.expose())?;
        if self.oidc.enabled() {
            self.oidc.client_secret =
                read_secret(&self.oidc.client_secret_file, "oidc.client_secret_file")?;
        }
        Ok(())
    }
}

/// The DKIM signing key the `smtp.dkim_*` keys name, or `None` when DKIM is
/// off. The one reader of the key file: `config check` and the composer
/// both go through it, so they accept and refuse the same keys.
pub fn dkim_signing_key(
    smtp: &super::Smtp,
) -> Result<Option<lettre::message::dkim::DkimSigningKey>, SecretError> {
    use lettre::message::dkim::{DkimSigningAlgorithm, DkimSigningKey};
    let parts = [
        ("smtp.dkim_selector", smtp.dkim_selector.is_empty()),
        ("smtp.dkim_domain", smtp.dkim_domain.is_empty()),
        (
            "smtp.dkim_key_file",
            smtp.dkim_key_file.as_os_str().is_empty(),
        ),
    ];
    let missing: Vec<&str> = parts.iter().filter(|p| p.1).map(|p| p.0).collect();
    if missing.len() == parts.len() {
        return Ok(None);
    }
    if !missing.is_empty() {
        return Err(SecretError::PartialDkim {
            missing: missing.join(", "),
        });
    }
    let pem = read_secret(&smtp.dkim_key_file, "smtp.dkim_key_file")?;
    DkimSigningKey::new(pem.expose(), DkimSigningAlgorithm::Rsa)
        .map(Some)
        .map_err(|_| SecretError::BadDkimKey {
            path: smtp.dkim_key_file.clone(),
        })
}

/// A `*_file` secret: the file's text without the trailing line break.
/// An empty file is refused: it would silently turn the feature off.
fn read_secret(path: &Path, key: &'static str) -> Result<Secret, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::Unreadable {
        key,
        path: path.to_path_buf(),
        source,
    })?;
    let value = text.trim_end_matches(['\n', '\r']);
    if value.trim().is_empty() {
        return Err(SecretError::EmptyFile {
            key,
            path: path.to_path_buf(),
        });
    }
    Ok(Secret::new(value))
}

fn check_digest(digest: &str) -> Result<(), SecretError> {
    let digest = digest.trim();
    if digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(());
    }
    // Say what is wrong without echoing the value.
    let found = match digest.chars().find(|c| !c.is_ascii_hexdigit()) {
        Some(_) => format!("{} characters, not all hexadecimal", digest.chars().count()),
        None => format!("{} hexadecimal digits", digest.len()),
    };
    Err(SecretError::BadDigest { found })
}

/// An Argon2 PHC string whose parameters Argon2 accepts; empty is allowed
/// (the admin page then takes the admin token only).
fn check_password_hash(hash: &str) -> Result<(), SecretError> {
    let hash = hash.trim();
    if hash.is_empty() {
        return Ok(());
    }
    let bad = |why: &str| SecretError::BadPasswordHash { why: why.into() };
    let parsed = argon2::password_hash::PasswordHash::new(hash)
        .map_err(|_| bad("it does not parse as a PHC string"))?;
    if argon2::Algorithm::try_from(parsed.algorithm).is_err() {
        return Err(bad("its algorithm is not argon2id, argon2i or argon2d"));
    }
    if argon2::Params::try_from(&parsed).is_err() {
        return Err(bad("its m, t or p parameter is out of range"));
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err(bad("it has no salt or no hash"));
    }
    Ok(())
}

/// The tracking key's bytes, or `None` when its file does not exist yet
/// (serve creates it). The one reader of the key file: `config check` and
/// the tracker both go through it.
pub fn read_tracking_key(path: &Path) -> Result<Option<Vec<u8>>, SecretError> {
    if !path.exists() {
        return Ok(None);
    }
    let bad = |why| SecretError::BadTrackingKey {
        path: path.to_path_buf(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|_| bad("cannot be read"))?;
    let key = hex::decode(text.trim()).map_err(|_| bad("does not hold a hex key"))?;
    if key.len() < 16 {
        return Err(bad("holds a key shorter than 16 bytes"));
    }
    Ok(Some(key))
}
