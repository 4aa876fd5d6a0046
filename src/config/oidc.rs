//! `[oidc]`: sign-in through the organisation's identity provider (OpenID
//! Connect). Checked at load, so `config check` names a bad key before
//! anyone tries to sign in; the client secret is read with the other
//! secrets (see `secrets.rs`).

use super::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The path under `http.public_url` the provider sends people back to:
/// the redirect URI to register with the provider.
pub const CALLBACK_PATH: &str = "/admin/sign-in/oidc/callback";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Oidc {
    /// Shown on the sign-in page as "Sign in with NAME".
    pub provider_name: String,
    /// The provider's issuer (discovery at ISSUER/.well-known/openid-configuration); empty: off.
    pub issuer_url: String,
    pub client_id: String,
    /// A file holding the client secret (a credential name under systemd).
    pub client_secret_file: PathBuf,
    /// Read from `client_secret_file` by `Settings::load_secrets`; never in a config file.
    #[serde(skip)]
    pub client_secret: Secret,
    /// Scopes asked for besides `openid` (e.g. "email", "profile").
    pub scopes: Vec<String>,
    /// The ID token claim holding the person's email address.
    pub email_claim: String,
    /// Domains whose addresses may sign in (compared ignoring case); empty: any the provider vouches for.
    pub allowed_domains: Vec<String>,
    /// The claim (a string or a list of strings) that `roles` maps, e.g. "groups".
    pub role_claim: String,
    /// A value of `role_claim` -> the role it grants; the highest granted role wins.
    pub roles: BTreeMap<String, RoleName>,
    /// Create an account at the first sign-in of someone with none (false: an admin adds them first).
    pub create_accounts: bool,
    /// The role of an account created at sign-in when no value of `role_claim` maps to one.
    pub default_role: RoleName,
}

/// A role as the configuration names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    Viewer,
    Coordinator,
    Admin,
}

impl RoleName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Coordinator => "coordinator",
            Self::Admin => "admin",
        }
    }
}

impl Oidc {
    /// Whether sign-in through a provider is configured.
    pub fn enabled(&self) -> bool {
        !self.issuer_url.trim().is_empty()
    }

    /// The name on the sign-in button.
    pub fn display_name(&self) -> &str {
        match self.provider_name.trim() {
            "" => "single sign-on",
            name => name,
        }
    }

    /// The highest role any of `values` (the role claim's) maps to.
    pub fn mapped_role<'a>(&self, values: impl IntoIterator<Item = &'a str>) -> Option<RoleName> {
        values
            .into_iter()
            .filter_map(|v| self.roles.get(v).copied())
            .max()
    }

    /// Whether an address's domain may sign in.
    pub fn domain_allowed(&self, email: &str) -> bool {
        if self.allowed_domains.is_empty() {
            return true;
        }
        let Some((_, domain)) = email.rsplit_once('@') else {
            return false;
        };
        self.allowed_domains
            .iter()
            .any(|allowed| allowed.trim().eq_ignore_ascii_case(domain))
    }

    pub(super) fn validate(&self, public_url: &str) -> anyhow::Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        let issuer = self.issuer_url.trim();
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            anyhow::bail!("oidc.issuer_url must be an http(s) URL such as \"https://login.microsoftonline.com/TENANT-ID/v2.0\" (got a value starting with {:?})", issuer.split(':').next().unwrap_or(""));
        }
        if issuer.starts_with("http://") && !is_loopback_url(issuer) {
            anyhow::bail!(
                "oidc.issuer_url must use https (only a provider on this machine may use http)"
            );
        }
        if self.client_id.trim().is_empty() {
            anyhow::bail!("oidc.client_id is empty but oidc.issuer_url is set; copy the client (application) id the provider gave this app");
        }
        if self.client_secret_file.as_os_str().is_empty() {
            anyhow::bail!("oidc.client_secret_file is empty but oidc.issuer_url is set; put the client secret in a file (a credential under systemd) and name it here");
        }
        if self.email_claim.trim().is_empty() {
            anyhow::bail!("oidc.email_claim is empty; name the ID token claim with the person's address (\"email\", or \"preferred_username\" for Entra ID)");
        }
        if !self.roles.is_empty() && self.role_claim.trim().is_empty() {
            anyhow::bail!("oidc.roles is set but oidc.role_claim is empty; name the claim the roles map (e.g. \"groups\")");
        }
        for domain in &self.allowed_domains {
            let d = domain.trim();
            if d.is_empty()
                || d.contains('@')
                || d.contains(char::is_whitespace)
                || !d.contains('.')
            {
                anyhow::bail!("oidc.allowed_domains: {domain:?} is not a domain; write e.g. \"hospital.org\" (no @)");
            }
        }
        if !(public_url.starts_with("https://") || is_loopback_url(public_url)) {
            anyhow::bail!("oidc needs http.public_url to be the https address people use (the provider sends them back to it + {CALLBACK_PATH}); got {public_url:?}");
        }
        Ok(())
    }
}

/// http://localhost, 127.0.0.0/8 or [::1]: a provider or a server on this machine.
fn is_loopback_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or("");
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc() -> Oidc {
        Oidc {
            provider_name: String::new(),
            issuer_url: "https://login.example.org/tenant/v2.0".into(),
            client_id: "client".into(),
            client_secret_file: "oidc-secret".into(),
            client_secret: Secret::default(),
            scopes: vec![],
            email_claim: "email".into(),
            allowed_domains: vec!["Hospital.org".into()],
            role_claim: "groups".into(),
            roles: [
                ("staff".to_string(), RoleName::Viewer),
                ("coordinators".to_string(), RoleName::Coordinator),
            ]
            .into(),
            create_accounts: true,
            default_role: RoleName::Viewer,
        }
    }

    #[test]
    fn the_highest_mapped_role_wins_and_unmapped_values_grant_nothing() {
        let o = oidc();
        assert_eq!(
            o.mapped_role(["staff", "coordinators", "other"]),
            Some(RoleName::Coordinator)
        );
        assert_eq!(o.mapped_role(["other"]), None);
    }

    #[test]
    fn domains_compare_ignoring_case_and_only_the_whole_domain() {
        let o = oidc();
        assert!(o.domain_allowed("a@hospital.ORG"));
        assert!(!o.domain_allowed("a@evilhospital.org"));
        assert!(!o.domain_allowed("a@hospital.org.evil.com"));
        assert!(!o.domain_allowed("no-at-sign"));
    }

    #[test]
    fn a_plain_http_provider_is_refused_unless_it_is_on_this_machine() {
        let mut o = oidc();
        o.issuer_url = "http://login.example.org".into();
        let err = o.validate("https://ambassador.example.org").unwrap_err();
        assert!(err.to_string().contains("must use https"), "{err}");
        o.issuer_url = "http://localhost:8000".into();
        o.validate("http://127.0.0.1:8080").unwrap();
        o.issuer_url = "http://[::1]:8000".into();
        o.validate("http://127.0.0.1:8080").unwrap();
        let err = o.validate("http://ambassador.example.org").unwrap_err();
        assert!(err.to_string().contains("http.public_url"), "{err}");
    }
}
