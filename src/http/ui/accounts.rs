//! The accounts page (admins only): every account with its role and state,
//! adding one, changing a role, disabling and enabling. Each change is
//! recorded in the audit trail. Tokens are made on the command line
//! (`ambassador admin token create`), where the secret is shown once.

use super::dashboard::when;
use super::session::SignedIn;
use super::{check_csrf, AppState, UiError};
use crate::accounts::{self, Role};
use crate::audit::Action;
use crate::clock::{from_millis, to_millis};
use crate::domain::EmailAddress;
use crate::http::access::Caller;
use axum::extract::{Path, Query, State};
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/accounts", get(show).post(add))
        .route("/accounts/{id}/disable", post(disable))
        .route("/accounts/{id}/enable", post(enable))
        .route("/accounts/{id}/role", post(set_role))
}

#[derive(Debug, Deserialize)]
struct Notice {
    notice: Option<String>,
}

/// Fixed notices only: the query string never puts text on the page.
fn notice_text(code: &str) -> Option<(&'static str, bool)> {
    Some(match code {
        "added" => ("The account was added.", false),
        "disabled" => (
            "The account was disabled: its sessions ended and its tokens were revoked.",
            false,
        ),
        "enabled" => (
            "The account was enabled. Its old tokens stay revoked.",
            false,
        ),
        "role" => (
            "The role was changed; it applies from the account's next request.",
            false,
        ),
        "exists" => ("An account with that email exists already.", true),
        "bad-email" => ("That is not an email address.", true),
        "bad-role" => ("Choose a role: admin, coordinator or viewer.", true),
        "bad-password" => (
            "A password needs at least 12 characters; leave it empty for single sign-on only.",
            true,
        ),
        "yourself" => (
            "You cannot disable yourself or lower your own role; ask another admin.",
            true,
        ),
        "unchanged" => ("Nothing changed.", false),
        _ => return None,
    })
}

async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Query(q): Query<Notice>,
) -> Result<Html<String>, UiError> {
    let tz = state.app.settings.organisation.time_zone.0;
    let rows: Vec<_> = accounts::list(&state.app.store)
        .await?
        .into_iter()
        .map(|a| {
            json!({
                "id": a.id,
                "email": a.email,
                "role": a.role,
                "disabled": a.disabled(),
                "password": a.password_hash.is_some(),
                "created": when(from_millis(a.created_at), tz),
                "created_by": a.created_by,
                "roles": Role::ALL.iter().map(|r| json!({ "name": r, "current": *r == a.role })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let (notice, problem) = match q.notice.as_deref().and_then(notice_text) {
        Some((text, true)) => (None, Some(text)),
        Some((text, false)) => (Some(text), None),
        None => (None, None),
    };
    let data =
        json!({ "accounts": rows, "notice": notice, "problem": problem, "roles": Role::ALL });
    state
        .ui
        .view
        .page("accounts", "Accounts", "accounts", Some(&session), &data)
}

fn back(notice: &str) -> Redirect {
    Redirect::to(&format!("/admin/accounts?notice={notice}"))
}

#[derive(Debug, Deserialize)]
struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

async fn add(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Extension(caller): Extension<Caller>,
    Form(f): Form<AddForm>,
) -> Result<Redirect, UiError> {
    check_csrf(&session, &f.csrf)?;
    let Ok(email) = EmailAddress::parse(f.email.trim()) else {
        return Ok(back("bad-email"));
    };
    let Ok(role) = f.role.parse::<Role>() else {
        return Ok(back("bad-role"));
    };
    let hash = if f.password.is_empty() {
        None
    } else {
        let password = f.password.clone();
        let hashed = tokio::task::spawn_blocking(move || accounts::password::hash(&password))
            .await
            .map_err(|e| UiError::Internal(e.into()))?;
        match hashed {
            Ok(h) => Some(h),
            Err(_) => return Ok(back("bad-password")),
        }
    };
    let now = to_millis(state.app.clock.now());
    let store = &state.app.store;
    let by = caller.principal.name().to_string();
    let result = accounts::create(store, &email, role, hash.as_deref(), &by, now).await;
    let detail = json!({ "role": role, "password": hash.is_some() });
    state
        .audit_result(&caller, Action::AccountAdd, email.as_str(), &result, detail)
        .await;
    match result {
        Ok(_) => Ok(back("added")),
        Err(e) if crate::problem::kind_of(&e) == crate::problem::Kind::Conflict => {
            Ok(back("exists"))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
}

/// The account a path names, or the page's 404.
async fn account(state: &AppState, id: i64) -> Result<accounts::Account, UiError> {
    state
        .app
        .store
        .account_by_id(id)
        .await?
        .ok_or(UiError::NotFound)
}

async fn disable(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Form(f): Form<ChangeForm>,
) -> Result<Redirect, UiError> {
    check_csrf(&session, &f.csrf)?;
    let target = account(&state, id).await?;
    if caller.principal.account_id() == Some(id) {
        return Ok(back("yourself"));
    }
    let now = to_millis(state.app.clock.now());
    let result = state.app.store.disable_account(id, now).await;
    state
        .audit_result(
            &caller,
            Action::AccountDisable,
            &target.email,
            &result,
            json!({}),
        )
        .await;
    Ok(back(if result? { "disabled" } else { "unchanged" }))
}

async fn enable(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Form(f): Form<ChangeForm>,
) -> Result<Redirect, UiError> {
    check_csrf(&session, &f.csrf)?;
    let target = account(&state, id).await?;
    let result = state.app.store.enable_account(id).await;
    state
        .audit_result(
            &caller,
            Action::AccountEnable,
            &target.email,
            &result,
            json!({}),
        )
        .await;
    Ok(back(if result? { "enabled" } else { "unchanged" }))
}

async fn set_role(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Form(f): Form<ChangeForm>,
) -> Result<Redirect, UiError> {
    check_csrf(&session, &f.csrf)?;
    let target = account(&state, id).await?;
    let Ok(role) = f.role.parse::<Role>() else {
        return Ok(back("bad-role"));
    };
    if caller.principal.account_id() == Some(id) && role != Role::Admin {
        return Ok(back("yourself"));
    }
    let result = state.app.store.set_account_role(id, role).await;
    let detail = json!({ "from": target.role, "to": role });
    state
        .audit_result(&caller, Action::AccountRole, &target.email, &result, detail)
        .await;
    Ok(back(if result? { "role" } else { "unchanged" }))
}
