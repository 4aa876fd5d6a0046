//! Signing in and out. The sign-in form is protected from cross-site posts
//! by a double-submit token (cookie and hidden field must match), since
//! there is no session yet; failed attempts are slowed, and limited per
//! client address (shared with wrong API tokens, see [`crate::http`]'s limit).

use super::session::{self, SignedIn, COOKIE};
use super::{check_csrf, AppState, UiError};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
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
    render(&state, StatusCode::OK, notice, None)
}

/// The form with a fresh anti-forgery token in a cookie and a hidden field.
pub(super) fn render(
    state: &AppState,
    status: StatusCode,
    notice: Option<&str>,
    problem: Option<&str>,
) -> Result<Response, UiError> {
    let token = session::random_token();
    let sso = state.ui.sso.as_ref().map(|p| p.display_name());
    let off = state.admin_digest.is_none() && state.ui.password_hash.is_none() && sso.is_none();
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

#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(default)]
    csrf: String,
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
    if state.auth_failures.blocked(client).is_some() {
        let problem = "Too many sign-in attempts. Wait a minute, then try again.";
        return render(&state, StatusCode::TOO_MANY_REQUESTS, None, Some(problem));
    }
    if !password_matches(&state, f.password).await {
        state.auth_failures.failed(client);
        tracing::warn!(%client, "admin page: failed sign-in");
        tokio::time::sleep(FAILURE_DELAY).await;
        let problem = "That password is not right. Check it and try again.";
        return render(&state, StatusCode::UNAUTHORIZED, None, Some(problem));
    }
    let signed_in = state.ui.sessions.create(state.app.clock.now());
    tracing::info!("admin page: signed in");
    let max_age = state.ui.sessions.ttl().num_seconds();
    let secure = state.ui.secure_cookies;
    // Two Set-Cookie headers: AppendHeaders keeps both (an array would keep the last).
    let cookies = AppendHeaders([
        (
            header::SET_COOKIE,
            session::set_cookie(COOKIE, &signed_in.id, "/admin", max_age, secure),
        ),
        (
            header::SET_COOKIE,
            session::set_cookie(SIGN_IN_COOKIE, "", "/admin/sign-in", 0, secure),
        ),
    ]);
    Ok((cookies, Redirect::to("/admin")).into_response())
}

/// The admin token, or the password against its Argon2 hash (off the async threads: it is slow on purpose).
async fn password_matches(state: &AppState, presented: String) -> bool {
    if presented.is_empty() {
        return false;
    }
    if let Some(expected) = state.admin_digest.as_deref() {
        let digest = Sha256::digest(presented.trim().as_bytes());
        if bool::from(digest.as_slice().ct_eq(expected)) {
            return true;
        }
    }
    let Some(phc) = state.ui.password_hash.clone() else {
        return false;
    };
    tokio::task::spawn_blocking(move || verify_password(&phc, &presented))
        .await
        .unwrap_or(false)
}

fn verify_password(phc: &str, presented: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc).is_ok_and(|hash| {
        argon2::Argon2::default()
            .verify_password(presented.as_bytes(), &hash)
            .is_ok()
    })
}

#[derive(Debug, Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, UiError> {
    check_csrf(&session, &f.csrf)?;
    state.ui.sessions.end(&session.id);
    let cookie = session::set_cookie(COOKIE, "", "/admin", 0, state.ui.secure_cookies);
    Ok((
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/admin/sign-in?notice=signed-out"),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};

    #[test]
    fn an_argon2_hash_verifies_only_its_password() {
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let phc = argon2::Argon2::default()
            .hash_password(b"open sesame", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password(&phc, "open sesame"));
        assert!(!verify_password(&phc, "open sesame!"));
        assert!(!verify_password("not a hash", "open sesame"));
    }
}
