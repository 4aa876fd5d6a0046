//! "Sign in with <provider>": the two legs of the OpenID Connect sign-in
//! (see [`crate::sso`]). GET /admin/sign-in/oidc sends the browser to the
//! provider with a fresh state, nonce and PKCE challenge, remembered in a
//! short-lived cookie; the provider sends it back to the callback, which
//! checks the state, trades the code for a verified ID token, finds (or
//! creates) the person's account and starts a session.
//!
//! The pending cookie is `SameSite=Lax`: the callback is a top-level
//! navigation from the provider's site, which a `Strict` cookie would not
//! follow. For the same reason the callback answers with a page that moves
//! on to /admin rather than a redirect: browsers treat a redirect that began
//! on another site as cross-site, and the session cookie is `Strict`.

use super::session;
use super::{AppState, UiError};
use crate::accounts::{self, Principal, Role};
use crate::audit::{self, Action};
use crate::clock::to_millis;
use crate::config::RoleName;
use crate::domain::EmailAddress;
use crate::sso::{Identity, Pending, Provider, SsoError};
use crate::store::AuditOutcome;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::json;

/// The cookie that carries a sign-in between its two legs.
const PENDING_COOKIE: &str = "ambassador_oidc";
const PENDING_PATH: &str = "/admin/sign-in/oidc";
/// How long someone may take at the provider.
const PENDING_SECONDS: i64 = 600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sign-in/oidc", get(begin))
        .route("/sign-in/oidc/callback", get(callback))
}

/// The pending cookie: HttpOnly, Lax (see the module's doc), Secure on https.
fn pending_cookie(value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{PENDING_COOKIE}={value}; Path={PENDING_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

async fn begin(State(state): State<AppState>) -> Result<Response, UiError> {
    let Some(provider) = state.ui.sso.clone() else {
        return Err(UiError::NotFound);
    };
    match provider.begin().await {
        Ok((url, pending)) => {
            let cookie = pending_cookie(
                &pending.to_cookie(),
                PENDING_SECONDS,
                state.ui.secure_cookies,
            );
            Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&url)).into_response())
        }
        Err(e) => refuse(&state, &e),
    }
}

#[derive(Debug, Deserialize)]
struct Answer {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    /// The provider's name for itself (RFC 9207), when it sends one.
    iss: Option<String>,
}

async fn callback(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    Query(answer): Query<Answer>,
) -> Result<Response, UiError> {
    let Some(provider) = state.ui.sso.clone() else {
        return Err(UiError::NotFound);
    };
    let client = state.client(&extensions, &headers);
    let pending = session::cookie(&headers, PENDING_COOKIE).and_then(Pending::from_cookie);
    let outcome = async {
        if let Some(error) = answer.error.as_deref() {
            let why = match answer.error_description.as_deref() {
                Some(d) if !d.trim().is_empty() => format!("{error}: {d}"),
                _ => error.to_string(),
            };
            return Err(SsoError::Refused(why));
        }
        if let Some(iss) = answer.iss.as_deref().filter(|i| !provider.is_issuer(i)) {
            return Err(SsoError::WrongIssuer(iss.to_string()));
        }
        let pending = pending.ok_or(SsoError::NoPending)?;
        if !pending.state_matches(answer.state.as_deref().unwrap_or("")) {
            return Err(SsoError::StateMismatch);
        }
        let code = answer.code.as_deref().unwrap_or("");
        if code.is_empty() {
            return Err(SsoError::Refused(
                "the answer has no authorization code".into(),
            ));
        }
        provider.finish(pending, code).await
    }
    .await;
    let identity = match outcome {
        Ok(identity) => identity,
        Err(e) => {
            record_failure(&state, client, "", &e.to_string()).await;
            return refuse(&state, &e);
        }
    };
    let principal = match admit(&state, &provider, &identity, client).await {
        Ok(principal) => principal,
        Err(Admission::Refused(why)) => {
            tracing::warn!(email = %identity.email, reason = %why, "admin page: single sign-on refused");
            record_failure(&state, client, &identity.email, &why).await;
            return refusal_page(&state, StatusCode::FORBIDDEN, &why);
        }
        Err(Admission::Failed(e)) => return Err(UiError::Internal(e)),
    };
    let mut cookies = super::signin::start_session(&state, &principal, METHOD, client).await?;
    // The sign-in form's cookie is cleared by start_session; this one too.
    cookies.0[1] = (
        header::SET_COOKIE,
        pending_cookie("", 0, state.ui.secure_cookies),
    );
    Ok((cookies, Html(ONWARD_PAGE)).into_response())
}

/// How the audit trail names this way of signing in.
const METHOD: &str = "openid connect";

/// After sign-in: on to the dashboard from this site (see the module's doc).
const ONWARD_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"refresh\" content=\"0;url=/admin\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Signed in | ambassador</title><link rel=\"stylesheet\" href=\"/admin/admin.css\"></head>\
<body><main id=\"main\" class=\"wrap\"><h1>Signed in</h1>\
<p><a href=\"/admin\">Continue to the dashboard</a></p></main></body></html>";

/// A failed sign-in through the provider, in the audit trail.
async fn record_failure(state: &AppState, client: std::net::IpAddr, email: &str, why: &str) {
    let now = to_millis(state.app.clock.now());
    audit::record(
        &state.app.store,
        now,
        &audit::Actor::anonymous(email, client),
        Action::SignIn,
        email,
        AuditOutcome::Failure,
        json!({ "method": METHOD, "reason": why }),
    )
    .await;
}

/// A failed sign-in: the sign-in page with the reason (escaped), the pending cookie cleared.
fn refuse(state: &AppState, e: &SsoError) -> Result<Response, UiError> {
    let status = if e.is_refusal() {
        tracing::warn!(reason = %e, "admin page: single sign-on refused");
        match e {
            SsoError::DomainNotAllowed { .. } | SsoError::EmailNotVerified(_) => {
                StatusCode::FORBIDDEN
            }
            _ => StatusCode::BAD_REQUEST,
        }
    } else {
        tracing::error!(reason = %e, "admin page: single sign-on failed");
        StatusCode::BAD_GATEWAY
    };
    refusal_page(state, status, &e.to_string())
}

fn refusal_page(state: &AppState, status: StatusCode, why: &str) -> Result<Response, UiError> {
    let mut page = super::signin::render(state, status, None, Some(why), false)?;
    page.headers_mut().append(
        header::SET_COOKIE,
        pending_cookie("", 0, state.ui.secure_cookies)
            .parse()
            .expect("a cookie is a header value"),
    );
    Ok(page)
}

/// Why someone the provider vouched for may still not come in.
enum Admission {
    /// Shown to them (escaped).
    Refused(String),
    Failed(anyhow::Error),
}

/// The account the provider's person signs in as: theirs, with the role the
/// role claim maps to written to it (audited) when it differs; or a new one
/// when `oidc.create_accounts` allows (the mapped role, else the default).
/// A disabled account is refused.
async fn admit(
    state: &AppState,
    provider: &Provider,
    identity: &Identity,
    client: std::net::IpAddr,
) -> Result<Principal, Admission> {
    let store = &state.app.store;
    let now = to_millis(state.app.clock.now());
    let mapped = identity.mapped_role.map(role);
    let found = accounts::find_by_email(store, &identity.email)
        .await
        .map_err(Admission::Failed)?;
    let account = match found {
        Some(account) => account,
        None if !provider.creates_accounts() => {
            return Err(Admission::Refused(format!(
                "{} has no account here, and accounts are not created at sign-in (oidc.create_accounts = false). Ask an administrator to add you.",
                identity.email
            )))
        }
        None => {
            let email = EmailAddress::parse(&identity.email)
                .map_err(|e| Admission::Refused(format!("{}: {e}", identity.email)))?;
            let new_role = mapped.unwrap_or(role(provider.default_role()));
            let created = accounts::create(store, &email, new_role, None, CREATED_BY, now).await;
            let actor = audit::Actor::anonymous(&identity.email, client);
            let outcome = if created.is_ok() {
                AuditOutcome::Success
            } else {
                AuditOutcome::Failure
            };
            let detail = json!({ "role": new_role, "method": METHOD });
            audit::record(store, now, &actor, Action::AccountAdd, &identity.email, outcome, detail)
                .await;
            match created {
                Ok(account) => account,
                // Two first sign-ins at once: the other made it.
                Err(e) => accounts::find_by_email(store, &identity.email)
                    .await
                    .map_err(Admission::Failed)?
                    .ok_or(Admission::Failed(e))?,
            }
        }
    };
    if account.disabled() {
        return Err(Admission::Refused(format!(
            "The account {} is disabled. Ask an administrator to enable it.",
            account.email
        )));
    }
    let mut account = account;
    if let Some(to) = mapped.filter(|to| *to != account.role) {
        let changed = store.set_account_role(account.id, to).await;
        let actor = audit::Actor::anonymous(&account.email, client);
        let outcome = if changed.is_ok() {
            AuditOutcome::Success
        } else {
            AuditOutcome::Failure
        };
        let detail = json!({ "from": account.role, "to": to, "method": METHOD });
        audit::record(
            store,
            now,
            &actor,
            Action::AccountRole,
            &account.email,
            outcome,
            detail,
        )
        .await;
        changed.map_err(Admission::Failed)?;
        account.role = to;
    }
    Ok(Principal::Account(account))
}

/// Who created an account made at sign-in, in the account list.
const CREATED_BY: &str = "sign-in";

/// A role as `[oidc]` names it, as accounts store it.
fn role(name: RoleName) -> Role {
    match name {
        RoleName::Viewer => Role::Viewer,
        RoleName::Coordinator => Role::Coordinator,
        RoleName::Admin => Role::Admin,
    }
}
