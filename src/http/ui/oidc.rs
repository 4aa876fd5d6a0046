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

use super::session::{self, COOKIE};
use super::{AppState, UiError};
use crate::sso::{Identity, Pending, SsoError};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

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
    headers: HeaderMap,
    Query(answer): Query<Answer>,
) -> Result<Response, UiError> {
    let Some(provider) = state.ui.sso.clone() else {
        return Err(UiError::NotFound);
    };
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
            return Err(SsoError::Refused("the answer has no authorization code".into()));
        }
        provider.finish(pending, code).await
    }
    .await;
    let identity = match outcome {
        Ok(identity) => identity,
        Err(e) => return refuse(&state, &e),
    };
    match accounts::admit(&state, &provider, &identity).await {
        Ok(()) => {}
        Err(Admission::Refused(why)) => {
            tracing::warn!(email = %identity.email, reason = %why, "admin page: single sign-on refused");
            return refusal_page(&state, StatusCode::FORBIDDEN, &why);
        }
        Err(Admission::Failed(e)) => return Err(UiError::Internal(e)),
    }
    tracing::info!(email = %identity.email, "admin page: signed in through the identity provider");
    let signed_in = state.ui.sessions.create(state.app.clock.now());
    let max_age = state.ui.sessions.ttl().num_seconds();
    let secure = state.ui.secure_cookies;
    let cookies = AppendHeaders([
        (
            header::SET_COOKIE,
            session::set_cookie(COOKIE, &signed_in.id, "/admin", max_age, secure),
        ),
        (header::SET_COOKIE, pending_cookie("", 0, secure)),
    ]);
    Ok((cookies, Html(ONWARD_PAGE)).into_response())
}

/// After sign-in: on to the dashboard from this site (see the module's doc).
const ONWARD_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"refresh\" content=\"0;url=/admin\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Signed in | ambassador</title><link rel=\"stylesheet\" href=\"/admin/admin.css\"></head>\
<body><main id=\"main\" class=\"wrap\"><h1>Signed in</h1>\
<p><a href=\"/admin\">Continue to the dashboard</a></p></main></body></html>";

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
    let mut page = super::signin::render(state, status, None, Some(why))?;
    page.headers_mut().append(
        header::SET_COOKIE,
        pending_cookie("", 0, state.ui.secure_cookies)
            .parse()
            .expect("a cookie is a header value"),
    );
    Ok(page)
}

/// Why someone the provider vouched for may still not come in.
pub(super) enum Admission {
    /// Shown to them (escaped).
    Refused(String),
    Failed(anyhow::Error),
}

/// Accounts, as the sign-in sees them: find the person's account (or
/// create it when `oidc.create_accounts` allows), refuse a disabled one.
mod accounts {
    use super::{Admission, AppState, Identity};
    use crate::sso::Provider;

    pub(super) async fn admit(
        _state: &AppState,
        provider: &Provider,
        identity: &Identity,
    ) -> Result<(), Admission> {
        if !provider.creates_accounts() {
            return Err(Admission::Refused(format!(
                "{} has no account here, and accounts are not created at sign-in (oidc.create_accounts = false). Ask an administrator to add you.",
                identity.email
            )));
        }
        let _role = identity.mapped_role.unwrap_or(provider.default_role());
        Ok(())
    }
}
