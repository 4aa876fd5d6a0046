//! Completion report upload, the same way as the roster: a dry run first
//! (matched, newly completed, every unmatched or malformed row), then apply.

use super::session::{SignedIn, Upload, UploadKind};
use super::{upload, AppState, UiError};
use crate::audit::{self, Action};
use crate::completions::{self, CompletionError, CompletionOptions, CompletionReport};
use crate::http::access::Caller;
use axum::extract::{Multipart, State};
use axum::response::Html;
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/completions", get(form).post(preview))
        .route("/completions/apply", post(apply))
}

async fn form(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
) -> Result<Html<String>, UiError> {
    let campaigns: Vec<Value> = state
        .app
        .store
        .campaigns()
        .await?
        .into_iter()
        .map(|c| {
            let cancelled = c.status == crate::campaign::Status::Cancelled;
            json!({ "slug": c.slug, "name": c.name, "status": c.status, "cancelled": cancelled })
        })
        .collect();
    // Cancelled campaigns are listed apart, so nobody picks one by mistake.
    let any_cancelled = campaigns.iter().any(|c| c["cancelled"] == true);
    let data = json!({ "campaigns": campaigns, "any_cancelled": any_cancelled });
    state.ui.view.page(
        "completions",
        "Completions upload",
        "completions",
        Some(&session),
        &data,
    )
}

async fn preview(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Extension(caller): Extension<Caller>,
    form: Multipart,
) -> Result<Html<String>, UiError> {
    let file = upload::read(
        form,
        &session,
        UploadKind::Completions,
        "campaign",
        state.app.settings.roster.max_file_bytes,
    )
    .await?;
    let outcome = run(&state, &caller, &file, true).await?;
    let upload_id = match &outcome {
        Ok(_) => Some(state.ui.uploads.stash(&session.id, file.clone())),
        Err(_) => None,
    };
    let data = result_view(&file, &outcome, upload_id);
    state.ui.view.page(
        "completions_result",
        "Completions dry run",
        "completions",
        Some(&session),
        &data,
    )
}

async fn apply(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Extension(caller): Extension<Caller>,
    Form(confirm): Form<upload::Confirm>,
) -> Result<Html<String>, UiError> {
    let file = upload::take(&state, &session, &confirm, UploadKind::Completions)?;
    let outcome = run(&state, &caller, &file, false).await?;
    let data = result_view(&file, &outcome, None);
    state.ui.view.page(
        "completions_result",
        "Completions recorded",
        "completions",
        Some(&session),
        &data,
    )
}

/// The import's report, or why it recorded nothing (with its report when there is one).
type Outcome = Result<CompletionReport, (String, Option<CompletionReport>)>;

async fn run(
    state: &AppState,
    caller: &Caller,
    file: &Upload,
    dry_run: bool,
) -> Result<Outcome, UiError> {
    let options = CompletionOptions {
        campaign: (!file.choice.is_empty()).then(|| file.choice.clone()),
        dry_run,
        file_name: file.file_name.clone(),
    };
    let bytes = upload::contents(file)?;
    let app = &state.app;
    let result = completions::import(
        &app.store,
        app.clock.as_ref(),
        app.settings.organisation.time_zone.0,
        &app.settings.completions.columns,
        &bytes,
        &options,
    )
    .await;
    if !dry_run {
        let detail = match &result {
            Ok(report) => audit::completions_detail(report),
            Err(CompletionError::Malformed(report)) => audit::completions_detail(report),
            Err(_) => json!({ "file": file.file_name, "sha256": audit::sha256_hex(&bytes) }),
        };
        let name = file.file_name.as_str();
        state
            .audit_result(caller, Action::CompletionsImport, name, &result, detail)
            .await;
    }
    match result {
        Ok(report) => Ok(Ok(report)),
        Err(CompletionError::Malformed(report)) => {
            let message = CompletionError::Malformed(report.clone()).to_string();
            Ok(Err((message, Some(*report))))
        }
        // The caller's (an unknown campaign, an unreadable file) is shown on
        // the page; ours is the error page. The error's type says which.
        Err(e) if e.kind().is_callers() => Ok(Err((e.to_string(), None))),
        Err(CompletionError::Other(e)) => Err(e.into()),
        Err(e) => Err(UiError::Internal(e.into())),
    }
}

fn result_view(file: &Upload, outcome: &Outcome, upload_id: Option<String>) -> Value {
    let (report, problem) = match outcome {
        Ok(r) => (Some(r), None),
        Err((message, r)) => (r.as_ref(), Some(message.as_str())),
    };
    json!({
        "file": file.file_name,
        "problem": problem,
        "applied": report.is_some_and(|r| r.applied),
        "upload": upload_id,
        "unmatched_count": report.map_or(0, |r| r.unmatched.len()),
        "report": report,
    })
}
