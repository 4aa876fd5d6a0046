//! Sign-in through the organisation's OpenID Connect provider (`[oidc]`):
//! the authorization code flow with PKCE, state and nonce, through the
//! `openidconnect` crate. The ID token's signature is checked against the
//! provider's published keys (JWKS), with its issuer, audience, expiry and
//! nonce; then the address and the role claim are read from it.
//!
//! Nothing is kept on the server between the two legs: what the callback
//! needs (state, nonce, PKCE verifier) travels in a short-lived HttpOnly
//! cookie ([`Pending`]), so any instance can finish a sign-in another began.
//! The provider's discovery document and keys are fetched on first use and
//! kept for [`METADATA_TTL`]; a token signed with a key not seen yet fetches
//! them again once (the provider rotated its keys).

use crate::config::{Oidc, RoleName, CALLBACK_PATH};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    reqwest, AdditionalClaims, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields,
    IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long the provider's metadata and keys are used before being fetched again.
pub const METADATA_TTL: Duration = Duration::from_secs(3600);
/// How long a call to the provider may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// The ID token's claims beyond the standard ones (the role claim, e.g. `groups`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OtherClaims {
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}
impl AdditionalClaims for OtherClaims {}

type IdFields = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Tokens = StandardTokenResponse<IdFields, CoreTokenType>;
type OidcClient = openidconnect::Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a sign-in through the provider did not succeed, in words for the
/// person signing in (the page escapes them).
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("The identity provider could not be reached or answered with something unusable ({0}). Try again in a minute; if it goes on, the server log has the details.")]
    Provider(String),
    #[error("The identity provider refused the sign-in: {0}.")]
    Refused(String),
    #[error("This sign-in took too long or began in another browser. Start again from the sign-in page.")]
    NoPending,
    #[error("The answer from the identity provider does not belong to the sign-in that began in this browser (its state differs). Start again from the sign-in page.")]
    StateMismatch,
    #[error("The answer came from another identity provider ({0}) than the one configured. Start again from the sign-in page.")]
    WrongIssuer(String),
    #[error("The identity provider's ID token was refused: {0}.")]
    BadIdToken(String),
    #[error("The identity provider did not say which email address you have (no \"{0}\" claim). Ask your administrator to add it to the ID token (see oidc.email_claim).")]
    NoEmail(String),
    #[error("The identity provider says the address {0} is not verified.")]
    EmailNotVerified(String),
    #[error(
        "{email}: {domain} is not among the domains that may sign in here (oidc.allowed_domains)."
    )]
    DomainNotAllowed { email: String, domain: String },
}

impl SsoError {
    /// Whether the person (or their browser) is at fault, as opposed to the provider or the network.
    pub fn is_refusal(&self) -> bool {
        !matches!(self, SsoError::Provider(_))
    }
}

/// What the callback needs from the start of a sign-in, carried in a cookie.
#[derive(Debug)]
pub struct Pending {
    state: String,
    nonce: String,
    verifier: String,
}

impl Pending {
    /// The cookie value: three URL-safe random strings.
    pub fn to_cookie(&self) -> String {
        format!("{}.{}.{}", self.state, self.nonce, self.verifier)
    }

    /// Reads a cookie value made by [`Pending::to_cookie`].
    pub fn from_cookie(value: &str) -> Option<Self> {
        let mut parts = value.split('.');
        let (state, nonce, verifier) = (parts.next()?, parts.next()?, parts.next()?);
        let url_safe = |s: &str| {
            !s.is_empty()
                && s.len() <= 256
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if parts.next().is_some() || ![state, nonce, verifier].into_iter().all(url_safe) {
            return None;
        }
        Some(Self {
            state: state.into(),
            nonce: nonce.into(),
            verifier: verifier.into(),
        })
    }

    /// Whether the callback's `state` is this sign-in's (constant time).
    pub fn state_matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        !presented.is_empty() && bool::from(presented.as_bytes().ct_eq(self.state.as_bytes()))
    }
}

/// Who the provider says signed in, checked against `[oidc]`.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The provider's stable id for the person (`sub`).
    pub subject: String,
    /// Their address, lower-cased: names their account.
    pub email: String,
    pub name: Option<String>,
    /// The highest role the role claim maps to, if any.
    pub mapped_role: Option<RoleName>,
}

/// The configured provider.
pub struct Provider {
    settings: Oidc,
    redirect: RedirectUrl,
    http: reqwest::Client,
    metadata: Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.settings.issuer_url)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// The provider `[oidc]` names, or `None` when it is off. Contacts
    /// nobody: discovery happens at the first sign-in.
    pub fn from_settings(oidc: &Oidc, public_url: &str) -> anyhow::Result<Option<Arc<Self>>> {
        if !oidc.enabled() {
            return Ok(None);
        }
        let redirect = RedirectUrl::new(format!(
            "{}{CALLBACK_PATH}",
            public_url.trim_end_matches('/')
        ))?;
        // No redirects: the crate's advice, so a token request is never sent
        // elsewhere. No idle connections kept: sign-ins are minutes apart, and a
        // connection the provider closed meanwhile fails the next request.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .timeout(PROVIDER_TIMEOUT)
            .build()?;
        Ok(Some(Arc::new(Self {
            settings: oidc.clone(),
            redirect,
            http,
            metadata: Mutex::new(None),
        })))
    }

    /// The sign-in page's "Sign in with NAME".
    pub fn display_name(&self) -> &str {
        self.settings.display_name()
    }

    /// Whether an answer's `iss` parameter (RFC 9207) names this provider.
    pub fn is_issuer(&self, iss: &str) -> bool {
        iss.trim_end_matches('/') == self.settings.issuer_url.trim().trim_end_matches('/')
    }

    /// Whether someone with no account gets one at sign-in.
    pub fn creates_accounts(&self) -> bool {
        self.settings.create_accounts
    }

    /// The role of an account created at sign-in when nothing maps.
    pub fn default_role(&self) -> RoleName {
        self.settings.default_role
    }

    async fn metadata(&self, fresh: bool) -> Result<CoreProviderMetadata, SsoError> {
        let mut cached = self.metadata.lock().await;
        if let Some((at, metadata)) = cached.as_ref() {
            if !fresh && at.elapsed() < METADATA_TTL {
                return Ok(metadata.clone());
            }
        }
        let issuer = IssuerUrl::new(self.settings.issuer_url.trim().to_string())
            .map_err(|e| SsoError::Provider(format!("oidc.issuer_url: {e}")))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| {
                let why = error_chain(&e);
                tracing::warn!(error = %why, "OpenID Connect discovery failed");
                SsoError::Provider(format!("discovery failed: {why}"))
            })?;
        *cached = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    fn client(&self, metadata: CoreProviderMetadata) -> OidcClient {
        OidcClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(
                self.settings.client_secret.expose().to_string(),
            )),
        )
        .set_redirect_uri(self.redirect.clone())
    }

    /// Starts a sign-in: where to send the browser, and what to remember.
    pub async fn begin(&self) -> Result<(String, Pending), SsoError> {
        let client = self.client(self.metadata(false).await?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.settings.scopes {
            let scope = scope.trim();
            if !scope.is_empty() && scope != "openid" {
                request = request.add_scope(Scope::new(scope.to_string()));
            }
        }
        let (url, state, nonce) = request.url();
        let pending = Pending {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
        };
        Ok((url.to_string(), pending))
    }

    /// Finishes a sign-in: the code for tokens (with the PKCE verifier),
    /// the ID token verified, the address and role read and checked.
    pub async fn finish(&self, pending: Pending, code: &str) -> Result<Identity, SsoError> {
        let client = self.client(self.metadata(false).await?);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| SsoError::Provider(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| match &e {
                openidconnect::RequestTokenError::ServerResponse(r) => {
                    SsoError::Refused(match r.error_description() {
                        Some(d) => format!("{}: {d}", r.error()),
                        None => r.error().to_string(),
                    })
                }
                _ => SsoError::Provider(format!("the token request failed: {}", error_chain(&e))),
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| SsoError::BadIdToken("the token response has no ID token".into()))?;
        let nonce = Nonce::new(pending.nonce);
        let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Ok(claims) => claims.clone(),
            // A key not seen yet: the provider may have rotated them; fetch once more.
            Err(ClaimsVerificationError::SignatureVerification(_)) => {
                let client = self.client(self.metadata(true).await?);
                let verifier = client.id_token_verifier();
                id_token
                    .claims(&verifier, &nonce)
                    .map_err(|e| SsoError::BadIdToken(e.to_string()))?
                    .clone()
            }
            Err(e) => return Err(SsoError::BadIdToken(e.to_string())),
        };
        self.identity(&claims)
    }

    fn identity(
        &self,
        claims: &openidconnect::IdTokenClaims<OtherClaims, CoreGenderClaim>,
    ) -> Result<Identity, SsoError> {
        let claim = self.settings.email_claim.trim();
        let other = |name: &str| claims.additional_claims().rest.get(name);
        let email = match claim {
            "email" => claims.email().map(|e| e.as_str().to_string()),
            "preferred_username" => claims.preferred_username().map(|u| u.as_str().to_string()),
            _ => other(claim).and_then(|v| v.as_str()).map(str::to_string),
        }
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty())
        .ok_or_else(|| SsoError::NoEmail(claim.to_string()))?;
        if claim == "email" && claims.email_verified() == Some(false) {
            return Err(SsoError::EmailNotVerified(email));
        }
        let domain = match crate::domain::EmailAddress::parse(&email) {
            Ok(_) => email.rsplit_once('@').map(|(_, d)| d.to_string()),
            Err(_) => None,
        };
        let Some(domain) = domain else {
            return Err(SsoError::NoEmail(claim.to_string()));
        };
        if !self.settings.domain_allowed(&email) {
            return Err(SsoError::DomainNotAllowed { email, domain });
        }
        let values: Vec<&str> = match other(self.settings.role_claim.trim()) {
            Some(serde_json::Value::String(one)) => vec![one.as_str()],
            Some(serde_json::Value::Array(many)) => {
                many.iter().filter_map(|v| v.as_str()).collect()
            }
            _ => Vec::new(),
        };
        Ok(Identity {
            subject: claims.subject().as_str().to_string(),
            email,
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_string()),
            mapped_role: self.settings.mapped_role(values),
        })
    }
}

/// An error with its causes, for the log and the page (never a token or secret: the crate's errors hold none).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_cookie_reads_back_and_a_forged_one_does_not() {
        let p = Pending {
            state: "abc_-1".into(),
            nonce: "n0nce".into(),
            verifier: "v3rifier".into(),
        };
        let back = Pending::from_cookie(&p.to_cookie()).unwrap();
        assert!(back.state_matches("abc_-1"));
        assert!(!back.state_matches("abc_-2"));
        assert!(!back.state_matches(""));
        for bad in ["", "a.b", "a.b.c.d", "a.b.c d", "a..c", "a.b.<c>"] {
            assert!(Pending::from_cookie(bad).is_none(), "{bad}");
        }
    }
}
