//! One campaign: each step's email as the recipient will see it, pause and
//! resume, and exempting a person. The report downloads are in `reports`.

use super::session::SignedIn;
use super::{check_csrf, AppState, UiError};
use crate::campaign::{self, definition_of, Recipient, Status};
use crate::clock::to_millis;
use crate::store::campaign::CampaignRow;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/campaigns/{slug}", get(show))
        .route("/campaigns/{slug}/steps/{step}/preview", get(preview))
        .route("/campaigns/{slug}/pause", post(pause))
        .route("/campaigns/{slug}/resume", post(resume))
        .route("/campaigns/{slug}/exempt", post(exempt))
}

pub(super) async fn find(state: &AppState, slug: &str) -> Result<CampaignRow, UiError> {
    state
        .app
        .store
        .campaign_by_slug(slug)
        .await?
        .ok_or(UiError::NotFound)
}

#[derive(Debug, Deserialize)]
struct Notice {
    notice: Option<String>,
}

/// Fixed messages for the redirect after a form: the URL never carries text to show.
fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "paused" => "The campaign is paused: nothing more is sent until you resume it.",
        "resumed" => "The campaign is running again.",
        "exempted" => "The person is exempted; their pending messages are cancelled.",
        "unknown-person" => "Nobody in the roster has that address; nothing changed.",
        "outside-audience" => {
            "That person is not in this campaign's audience, so there is nothing to exempt them from; nothing changed."
        }
        "inactive-person" => {
            "That person has left the roster and was never enrolled; nothing changed."
        }
        "bad-exemption" => {
            "Give a valid email address and a one-line reason (at most 500 characters)."
        }
        "cancelled" => "This campaign was cancelled and cannot be resumed.",
        _ => return None,
    })
}

async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Path(slug): Path<String>,
    Query(q): Query<Notice>,
) -> Result<Html<String>, UiError> {
    let row = find(&state, &slug).await?;
    let definition = definition_of(&row)?;
    let now = state.app.clock.now();
    let mut steps = Vec::new();
    for step in &definition.steps {
        let parts = state
            .app
            .composer
            .preview_parts(row.id, &definition, &step.name, None, now)
            .await?;
        steps.push(json!({
            "name": step.name,
            "template": step.template,
            "to_manager": step.to == Recipient::Manager,
            "subject": parts.subject,
            "text": parts.text,
        }));
    }
    let data = json!({
        "slug": row.slug,
        "name": row.name,
        "status": row.status,
        "paused": row.status == Status::Paused,
        "active": row.status == Status::Active,
        "steps": steps,
        "notice": q.notice.as_deref().and_then(notice_text),
    });
    state
        .ui
        .view
        .page("campaign", &row.name, "campaign", Some(&session), &data)
}

/// The HTML part alone, for the sandboxed preview frame. Its CSP sandboxes
/// it (no script, no same-origin) and blocks every fetch, the tracking pixel
/// included, so a preview never records an open.
async fn preview(
    State(state): State<AppState>,
    Path((slug, step)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let row = find(&state, &slug).await?;
    let definition = definition_of(&row)?;
    if definition.step(&step).is_none() {
        return Err(UiError::NotFound);
    }
    let now = state.app.clock.now();
    let parts = state
        .app
        .composer
        .preview_parts(row.id, &definition, &step, None, now)
        .await?;
    let headers = [
        (
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'",
        ),
        (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
    ];
    Ok((headers, Html(parts.html)).into_response())
}

#[derive(Debug, Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

async fn pause(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Path(slug): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Redirect, UiError> {
    set_status(&state, &session, &slug, &f.csrf, Status::Paused).await
}

async fn resume(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Path(slug): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Redirect, UiError> {
    set_status(&state, &session, &slug, &f.csrf, Status::Active).await
}

async fn set_status(
    state: &AppState,
    session: &SignedIn,
    slug: &str,
    csrf: &str,
    status: Status,
) -> Result<Redirect, UiError> {
    check_csrf(session, csrf)?;
    let row = find(state, slug).await?;
    let notice = if row.status == Status::Cancelled {
        "cancelled"
    } else {
        campaign::set_status(&state.app.store, state.app.clock.as_ref(), slug, status).await?;
        tracing::info!(
            campaign = slug,
            status = status.as_str(),
            "admin page: campaign status set"
        );
        if status == Status::Paused {
            "paused"
        } else {
            "resumed"
        }
    };
    Ok(back(slug, notice))
}

fn back(slug: &str, notice: &str) -> Redirect {
    Redirect::to(&format!(
        "/admin/campaigns/{}?notice={notice}",
        urlencode(slug)
    ))
}

/// Slugs are already URL-safe; this keeps the redirect safe regardless.
pub(super) fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Deserialize)]
struct Exemption {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    reason: String,
}

async fn exempt(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Path(slug): Path<String>,
    Form(f): Form<Exemption>,
) -> Result<Redirect, UiError> {
    check_csrf(&session, &f.csrf)?;
    let row = find(&state, &slug).await?;
    let reason = f.reason.trim();
    let email = crate::domain::EmailAddress::parse(f.email.trim());
    let (Ok(email), false) = (
        email,
        reason.is_empty() || reason.chars().count() > 500 || reason.chars().any(char::is_control),
    ) else {
        return Ok(back(&slug, "bad-exemption"));
    };
    let now = to_millis(state.app.clock.now());
    use crate::campaign::ExemptError;
    let notice = match crate::campaign::exempt(&state.app.store, &row, &email, reason, now).await {
        Ok(()) => "exempted",
        Err(ExemptError::UnknownPerson(_)) => "unknown-person",
        Err(ExemptError::OutsideAudience { .. }) => "outside-audience",
        Err(ExemptError::Inactive { .. }) => "inactive-person",
        Err(ExemptError::Store(e)) => return Err(e.into()),
    };
    Ok(back(&slug, notice))
}
