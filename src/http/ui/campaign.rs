//! One campaign: each step's email as the recipient will see it, pause and
//! resume, and exempting a person (with the list of exemptions, their
//! history, and undo). The report downloads are in `reports`.

use super::session::SignedIn;
use super::{check_csrf, AppState, UiError};
use crate::audit::Action;
use crate::campaign::{self, definition_of, ExemptError, Recipient, Status};
use crate::clock::to_millis;
use crate::http::access::Caller;
use crate::store::campaign::CampaignRow;
use crate::store::exemption::Actor;
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
        .route("/campaigns/{slug}/unexempt", post(unexempt))
        .route("/campaigns/{slug}/completions", post(add_completion))
}

pub(super) async fn find(state: &AppState, slug: &str) -> Result<CampaignRow, UiError> {
    state
        .app
        .store
        .campaign_by_slug(slug)
        .await?
        .ok_or(UiError::NotFound)
}

/// The campaign page's query: a notice after a form, and whom to preview for.
#[derive(Debug, Deserialize)]
struct PageQuery {
    notice: Option<String>,
    /// An address from the roster: the emails are shown as this person gets them.
    to: Option<String>,
}

impl PageQuery {
    fn to(&self) -> Option<&str> {
        self.to.as_deref().map(str::trim).filter(|t| !t.is_empty())
    }
}

/// Fixed messages for the redirect after a form: the URL never carries text
/// to show. These say the form did what was asked.
fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "paused" => "The campaign is paused: nothing more is sent until you resume it.",
        "resumed" => "The campaign is running again.",
        "exempted" => "The person is exempted; their pending messages are cancelled.",
        "unexempted" => {
            "The exemption is undone; the person gets the campaign's messages again from the next planning tick."
        }
        "completion-recorded" => "The completion is recorded; reminders stop and the thank-you follows.",
        "completion-stands" => "A completion was already recorded for that person; the first one stands.",
        _ => return None,
    })
}

/// The same for a form that changed nothing: shown as an error.
fn problem_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "unknown-person" => "Nobody in the roster has that address; nothing changed.",
        "outside-audience" => {
            "That person is not in this campaign's audience, so there is nothing to exempt them from; nothing changed."
        }
        "inactive-person" => {
            "That person has left the roster and was never enrolled; nothing changed."
        }
        "completion-bad-date" => {
            "Give the completion date as YYYY-MM-DD, today or earlier; nothing changed."
        }
        "completion-unknown-person" => "Nobody in the roster has that address; nothing changed.",
        "completion-not-enrolled" => {
            "That person is not enrolled in this campaign; nothing changed."
        }
        "bad-exemption" => {
            "Give a valid email address and a one-line reason (at most 500 characters)."
        }
        "cancelled" => "This campaign was cancelled and cannot be resumed.",
        "completed-person" => {
            "That person completed the course; a completion stands and is not exempted. Nothing changed."
        }
        "already-exempted" => {
            "That person is already exempted; undo the exemption first to give another reason. Nothing changed."
        }
        "not-exempted" => "That person is not exempted; nothing changed.",
        "campaign-cancelled" => "This campaign was cancelled; its exemptions no longer change.",
        "exemption-changed" => {
            "The exemption changed meanwhile (another admin?); look at the list again. Nothing changed."
        }
        _ => return None,
    })
}

async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Path(slug): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Html<String>, UiError> {
    let row = find(&state, &slug).await?;
    let definition = definition_of(&row)?;
    let now = state.app.clock.now();
    let to = q.to();
    let mut steps = Vec::new();
    for step in &definition.steps {
        steps.push(step_view(&state, &row, &definition, step, to, now).await?);
    }
    let listing = campaign::exemption_listing(&state.app.store, &row).await?;
    let data = json!({
        "exemptions": listing.exemptions,
        "exemption_history": listing.history,
        "slug": row.slug,
        "name": row.name,
        "status": row.status,
        "paused": row.status == Status::Paused,
        "active": row.status == Status::Active,
        "cancelled": row.status == Status::Cancelled,
        "steps": steps,
        "to": to,
        "to_query": to.map(|t| format!("?to={}", urlencode(t))).unwrap_or_default(),
        "notice": q.notice.as_deref().and_then(notice_text),
        "problem": q.notice.as_deref().and_then(problem_text),
        "overview": super::overview::overview(&state, &row, &definition, now).await?,
    });
    state
        .ui
        .view
        .page("campaign", &row.name, "campaign", Some(&session), &data)
}

/// One step of the page: the email as `to` (or a sample person) gets it, as
/// of its own send time, or why they get nothing. The same code as
/// `campaign preview`.
async fn step_view(
    state: &AppState,
    row: &CampaignRow,
    definition: &crate::campaign::Campaign,
    step: &crate::campaign::Step,
    to: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<serde_json::Value, UiError> {
    let composer = &state.app.composer;
    let mut view = json!({
        "name": step.name,
        "template": step.template,
        "to_manager": step.to == Recipient::Manager,
        "at": step.at.map(crate::campaign::words::offset_in_words),
    });
    match composer
        .preview_step(row.id, definition, &step.name, to, now)
        .await?
    {
        Ok(preview) => {
            let parts = composer.preview_parts(&preview)?;
            view["subject"] = json!(parts.subject);
            view["text"] = json!(parts.text);
            view["timing"] = json!(preview.timing);
        }
        Err(nothing) => view["nothing"] = json!(nothing.to_string()),
    }
    Ok(view)
}

/// The HTML part alone, for the sandboxed preview frame. Its CSP sandboxes
/// it (no script, no same-origin) and blocks every fetch, the tracking pixel
/// included, so a preview never records an open.
async fn preview(
    State(state): State<AppState>,
    Path((slug, step)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Result<Response, UiError> {
    let row = find(&state, &slug).await?;
    let definition = definition_of(&row)?;
    if definition.step(&step).is_none() {
        return Err(UiError::NotFound);
    }
    let now = state.app.clock.now();
    let composer = &state.app.composer;
    let Ok(preview) = composer
        .preview_step(row.id, &definition, &step, q.to(), now)
        .await?
    else {
        // The page says why this person gets nothing; there is no email to frame.
        return Err(UiError::NotFound);
    };
    let parts = composer.preview_parts(&preview)?;
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
    Extension(caller): Extension<Caller>,
    Path(slug): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Redirect, UiError> {
    set_status(&state, &session, &caller, &slug, &f.csrf, Status::Paused).await
}

async fn resume(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Extension(caller): Extension<Caller>,
    Path(slug): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Redirect, UiError> {
    set_status(&state, &session, &caller, &slug, &f.csrf, Status::Active).await
}

async fn set_status(
    state: &AppState,
    session: &SignedIn,
    caller: &Caller,
    slug: &str,
    csrf: &str,
    status: Status,
) -> Result<Redirect, UiError> {
    check_csrf(session, csrf)?;
    let row = find(state, slug).await?;
    let action = if status == Status::Paused {
        Action::CampaignPause
    } else {
        Action::CampaignResume
    };
    let notice = if row.status == Status::Cancelled {
        let refused: Result<(), &str> = Err("the campaign is cancelled");
        let detail = json!({});
        state
            .audit_result(caller, action, slug, &refused, detail)
            .await;
        "cancelled"
    } else {
        let result =
            campaign::set_status(&state.app.store, state.app.clock.as_ref(), slug, status).await;
        state
            .audit_result(caller, action, slug, &result, json!({}))
            .await;
        result?;
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
    Extension(caller): Extension<Caller>,
    Path(slug): Path<String>,
    Form(f): Form<Exemption>,
) -> Result<Redirect, UiError> {
    change_exemption(&state, &session, &caller, &slug, f, false).await
}

async fn unexempt(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Extension(caller): Extension<Caller>,
    Path(slug): Path<String>,
    Form(f): Form<Exemption>,
) -> Result<Redirect, UiError> {
    change_exemption(&state, &session, &caller, &slug, f, true).await
}

/// Exempts, or undoes an exemption, and answers with a fixed notice.
async fn change_exemption(
    state: &AppState,
    session: &SignedIn,
    caller: &Caller,
    slug: &str,
    f: Exemption,
    undo: bool,
) -> Result<Redirect, UiError> {
    check_csrf(session, &f.csrf)?;
    let row = find(state, slug).await?;
    let reason = f.reason.trim();
    let email = crate::domain::EmailAddress::parse(f.email.trim());
    let (Ok(email), true) = (email, campaign::valid_reason(reason)) else {
        return Ok(back(slug, "bad-exemption"));
    };
    let now = to_millis(state.app.clock.now());
    let (store, actor) = (&state.app.store, Actor::page(caller.principal.name()));
    let done = if undo {
        campaign::unexempt(store, &row, &email, reason, now, &actor).await
    } else {
        campaign::exempt(store, &row, &email, reason, now, &actor).await
    };
    let action = if undo {
        Action::Unexempt
    } else {
        Action::Exempt
    };
    let detail = json!({ "campaign": row.slug, "reason": reason });
    state
        .audit_result(caller, action, email.as_str(), &done, detail)
        .await;
    let notice = match done {
        Ok(()) if undo => "unexempted",
        Ok(()) => "exempted",
        Err(ExemptError::UnknownPerson(_)) => "unknown-person",
        Err(ExemptError::OutsideAudience { .. }) => "outside-audience",
        Err(ExemptError::Inactive { .. }) => "inactive-person",
        Err(ExemptError::Completed { .. }) => "completed-person",
        Err(ExemptError::AlreadyExempted { .. }) => "already-exempted",
        Err(ExemptError::NotExempted { .. }) => "not-exempted",
        Err(ExemptError::Cancelled(_)) => "campaign-cancelled",
        Err(ExemptError::Conflict(_)) => "exemption-changed",
        Err(ExemptError::Store(e)) => return Err(e.into()),
    };
    Ok(back(slug, notice))
}

#[derive(Debug, Deserialize)]
struct ManualCompletionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    date: String,
}

/// One completion recorded by hand, as `ambassador completions add` does.
async fn add_completion(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Extension(caller): Extension<Caller>,
    Path(slug): Path<String>,
    Form(f): Form<ManualCompletionForm>,
) -> Result<Redirect, UiError> {
    check_csrf(&session, &f.csrf)?;
    let row = find(&state, &slug).await?;
    let Ok(email) = crate::domain::EmailAddress::parse(f.email.trim()) else {
        return Ok(back(&slug, "completion-unknown-person"));
    };
    let app = &state.app;
    let tz = app.settings.organisation.time_zone.0;
    use crate::completions::ManualError;
    let result =
        crate::completions::add_one(&app.store, app.clock.as_ref(), tz, &row, &email, &f.date)
            .await;
    let detail = json!({ "campaign": row.slug, "date": f.date });
    state
        .audit_result(
            &caller,
            Action::CompletionAdd,
            email.as_str(),
            &result,
            detail,
        )
        .await;
    let notice = match result {
        Ok(done) if done.recorded => "completion-recorded",
        Ok(_) => "completion-stands",
        Err(ManualError::BadDate(_)) => "completion-bad-date",
        Err(ManualError::UnknownPerson(_)) => "completion-unknown-person",
        Err(ManualError::NotEnrolled { .. }) => "completion-not-enrolled",
        Err(ManualError::Store(e)) => return Err(e.into()),
    };
    Ok(back(&slug, notice))
}
