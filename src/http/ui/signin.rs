//! Signing in and out. The sign-in form is protected from cross-site posts
//! by a double-submit token (cookie and hidden field must match), since
//! there is no session yet; failed attempts are slowed, and limited per
//! client address (shared with wrong API tokens, see [`crate::http`]'s limit).

use super::session::{self, SignedIn, COOKIE};
use super::{check_csrf, AppState, UiError};
use crate::accounts::{self, Principal};
use crate::audit::{self, Action};
use crate::clock::to_millis;
use crate::store::AuditOutcome;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The sign-in form's own anti-forgery cookie.
const SIGN_IN_COOKIE: &str = "ambassador_sign_in";
/// Every wrong password costs this long: guessing stays slow even under the rate limit.
const FAILURE_DELAY: Duration = Duration::from_secs(1);

pub fn router() -> Router<AppState> {
    Router::new().route("/sign-in", get(form).post(sign_in))
}

pub fn sign_out_router() -> Router<AppState> {
    Router::new().route("/sign-out", post(sign_out))
}

#[derive(Debug, Deserialize)]
struct Notice {
    notice: Option<String>,
}

async fn form(State(state): State<AppState>, Query(q): Query<Notice>) -> Result<Response, UiError> {
    let notice = match q.notice.as_deref() {
        Some("signed-out") => Some("You are signed out."),
        _ => None,
    };
    let off = sign_in_off(&state).await?;
    render(&state, StatusCode::OK, notice, None, off)
}

/// The form with a fresh anti-forgery token in a cookie and a hidden field.
pub(super) fn render(
    state: &AppState,
    status: StatusCode,
    notice: Option<&str>,
    problem: Option<&str>,
    off: bool,
) -> Result<Response, UiError> {
    let token = session::random_token();
    let sso = state.ui.sso.as_ref().map(|p| p.display_name());
    let page = state.ui.view.page(
        "sign_in",
        "Sign in",
        "sign_in",
        None,
        &json!({ "token": token, "notice": notice, "problem": problem, "off": off, "sso": sso }),
    )?;
    let cookie = session::set_cookie(
        SIGN_IN_COOKIE,
        &token,
        "/admin/sign-in",
        3600,
        state.ui.secure_cookies,
    );
    Ok((status, [(header::SET_COOKIE, cookie)], page).into_response())
}

/// Sign-in is off when there is neither a shared credential nor an
/// account, nor an identity provider.
pub(super) async fn sign_in_off(state: &AppState) -> Result<bool, UiError> {
    Ok(state.admin_digest.is_none()
        && state.ui.password_hash.is_none()
        && state.ui.sso.is_none()
        && state.app.store.accounts().await?.is_empty())
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn sign_in(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Result<Response, UiError> {
    let expected = session::cookie(&headers, SIGN_IN_COOKIE).unwrap_or("");
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(f.csrf.as_bytes())) {
        return Err(UiError::Forbidden);
    }
    let client = state.client(&extensions, &headers);
    let now = to_millis(state.app.clock.now());
    let tried = f.email.trim().chars().take(200).collect::<String>();
    if state.auth_failures.blocked(client).is_some() {
        let actor = audit::Actor::anonymous(&tried, client);
        let detail = json!({ "reason": "too many attempts from this address" });
        let store = &state.app.store;
        audit::record(
            store,
            now,
            &actor,
            Action::SignIn,
            &tried,
            AuditOutcome::Failure,
            detail,
        )
        .await;
        let problem = "Too many sign-in attempts. Wait a minute, then try again.";
        return render(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            None,
            Some(problem),
            false,
        );
    }
    let Some(principal) = who_signs_in(&state, &tried, f.password).await? else {
        state.auth_failures.failed(client);
        tracing::warn!(%client, "admin page: failed sign-in");
        let actor = audit::Actor::anonymous(&tried, client);
        let detail = json!({ "reason": "wrong email or password, or the account is disabled" });
        let store = &state.app.store;
        audit::record(
            store,
            now,
            &actor,
            Action::SignIn,
            &tried,
            AuditOutcome::Failure,
            detail,
        )
        .await;
        tokio::time::sleep(FAILURE_DELAY).await;
        let problem = "That email and password do not match an account that may sign in. Check them and try again.";
        return render(&state, StatusCode::UNAUTHORIZED, None, Some(problem), false);
    };
    let method = match principal {
        Principal::Shared => "shared credential",
        Principal::Account(_) => "password",
    };
    sign_in_as(&state, &principal, method, client).await
}

/// Starts a session for `principal` (signed in by `method`: "password",
/// single sign-on...), records it in the audit trail, and answers with the
/// session cookie and a redirect to the dashboard. Every way of signing in
/// ends here.
pub(super) async fn sign_in_as(
    state: &AppState,
    principal: &Principal,
    method: &str,
    client: std::net::IpAddr,
) -> Result<Response, UiError> {
    let cookies = start_session(state, principal, method, client).await?;
    Ok((cookies, Redirect::to("/admin")).into_response())
}

/// The session of [`sign_in_as`], started and recorded: its cookie, and
/// the sign-in form's cookie cleared. For a sign-in that must not answer
/// with a redirect (single sign-on, see `oidc`).
pub(super) async fn start_session(
    state: &AppState,
    principal: &Principal,
    method: &str,
    client: std::net::IpAddr,
) -> Result<AppendHeaders<[(header::HeaderName, String); 2]>, UiError> {
    let now = to_millis(state.app.clock.now());
    let store = &state.app.store;
    let started =
        accounts::session::start(store, principal.account_id(), now, state.ui.limits).await?;
    if *principal == Principal::Shared {
        super::super::access::warn_shared();
    }
    tracing::info!(method, "admin page: signed in");
    let actor = audit::Actor::principal(principal, client);
    let detail = json!({ "method": method, "role": principal.role() });
    let name = principal.name();
    audit::record(
        store,
        now,
        &actor,
        Action::SignIn,
        name,
        AuditOutcome::Success,
        detail,
    )
    .await;
    let max_age = state.ui.limits.absolute_ms / 1000;
    let secure = state.ui.secure_cookies;
    // Two Set-Cookie headers: AppendHeaders keeps both (an array would keep the last).
    let cookies = AppendHeaders([
        (
            header::SET_COOKIE,
            session::set_cookie(COOKIE, &started.id, "/admin", max_age, secure),
        ),
        (
            header::SET_COOKIE,
            session::set_cookie(SIGN_IN_COOKIE, "", "/admin/sign-in", 0, secure),
        ),
    ]);
    Ok(cookies)
}

/// Who the form's email and password sign in: an enabled account with that
/// local password, or (email left empty) the shared admin token or password.
async fn who_signs_in(
    state: &AppState,
    email: &str,
    presented: String,
) -> Result<Option<Principal>, UiError> {
    if presented.is_empty() {
        return Ok(None);
    }
    if email.is_empty() {
        if super::super::access::is_shared_token(state, &presented) {
            return Ok(Some(Principal::Shared));
        }
        let Some(phc) = state.ui.password_hash.clone() else {
            return Ok(None);
        };
        let matches = verify_off_thread(phc, presented).await;
        return Ok(matches.then_some(Principal::Shared));
    }
    let account = accounts::find_by_email(&state.app.store, email).await?;
    let Some(account) = account.filter(|a| !a.disabled()) else {
        return Ok(None);
    };
    let Some(phc) = account.password_hash.clone() else {
        return Ok(None);
    };
    let matches = verify_off_thread(phc, presented).await;
    Ok(matches.then_some(Principal::Account(account)))
}

/// Argon2 off the async threads: it is slow on purpose.
async fn verify_off_thread(phc: String, presented: String) -> bool {
    tokio::task::spawn_blocking(move || accounts::password::verify(&phc, &presented))
        .await
        .unwrap_or(false)
}

#[derive(Debug, Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    Extension(session): Extension<SignedIn>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, UiError> {
    check_csrf(&session, &f.csrf)?;
    let store = &state.app.store;
    accounts::session::end(store, &session.id).await?;
    state.ui.uploads.forget(&session.id);
    let client = state.client(&extensions, &headers);
    let now = to_millis(state.app.clock.now());
    let actor = audit::Actor::principal(&session.principal, client);
    let name = session.principal.name();
    audit::record(
        store,
        now,
        &actor,
        Action::SignOut,
        name,
        AuditOutcome::Success,
        json!({}),
    )
    .await;
    let cookie = session::set_cookie(COOKIE, "", "/admin", 0, state.ui.secure_cookies);
    Ok((
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/admin/sign-in?notice=signed-out"),
    )
        .into_response())
}
