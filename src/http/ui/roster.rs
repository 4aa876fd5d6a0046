//! Roster upload: choose a file, read the dry run (every rejected row with
//! its line and reason), then apply exactly the bytes that were previewed.

use super::session::{SignedIn, Upload, UploadKind};
use super::{upload, AppState, UiError};
use crate::roster::{self, ImportError, ImportMode, ImportOptions, ImportReport};
use crate::store::RosterSource;
use axum::extract::{Multipart, State};
use axum::response::Html;
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/roster", get(form).post(preview))
        .route("/roster/apply", post(apply))
}

async fn form(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
) -> Result<Html<String>, UiError> {
    state.ui.view.page(
        "roster",
        "Roster upload",
        "roster",
        Some(&session),
        &json!({}),
    )
}

async fn preview(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    form: Multipart,
) -> Result<Html<String>, UiError> {
    let file = upload::read(
        form,
        &session,
        UploadKind::Roster,
        "mode",
        state.app.settings.roster.max_file_bytes,
    )
    .await?;
    let outcome = run(&state, &file, true).await?;
    let upload_id = match &outcome {
        Ok(_) => state.ui.sessions.stash(&session.id, file.clone()),
        Err(_) => None,
    };
    let data = result_view(&file, &outcome, upload_id);
    let page = state.ui.view.page(
        "roster_result",
        "Roster dry run",
        "roster",
        Some(&session),
        &data,
    )?;
    Ok(page)
}

async fn apply(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Form(confirm): Form<upload::Confirm>,
) -> Result<Html<String>, UiError> {
    let file = upload::take(&state, &session, &confirm, UploadKind::Roster)?;
    let outcome = run(&state, &file, false).await?;
    let data = result_view(&file, &outcome, None);
    state.ui.view.page(
        "roster_result",
        "Roster imported",
        "roster",
        Some(&session),
        &data,
    )
}

/// The form's mode choice (an unknown one is refused, never read as sync).
fn mode_of(file: &Upload) -> Result<ImportMode, UiError> {
    file.choice
        .parse()
        .map_err(|e| UiError::BadRequest(format!("Choose how to import the file: {e}.")))
}

/// The import's report, or why it wrote nothing (with its report when there is one).
type Outcome = Result<ImportReport, (String, Option<ImportReport>)>;

async fn run(state: &AppState, file: &Upload, dry_run: bool) -> Result<Outcome, UiError> {
    let options = ImportOptions {
        source: RosterSource::hr(),
        mode: mode_of(file)?,
        dry_run,
        skip_invalid: false,
        force: false,
        file_name: file.file_name.clone(),
    };
    let bytes = upload::contents(file)?;
    let app = &state.app;
    let result = roster::import_listing(
        &app.store,
        app.clock.as_ref(),
        &app.settings.roster,
        &bytes,
        &options,
        crate::http::ROSTER_LISTING,
        &mut |_, _| bytes.release(),
    )
    .await;
    match result {
        Ok(report) => Ok(Ok(report)),
        Err(ImportError::Database(e)) => Err(UiError::Internal(e)),
        // The CLI's wording names --skip-invalid, which this page does not offer.
        Err(ImportError::Rejected(report)) => Ok(Err((
            format!("{} row(s) rejected; nothing was imported. Fix the rows listed below and check the file again.", report.counts.rejected),
            Some(*report),
        ))),
        Err(e) => Ok(Err((e.to_string(), e.report().cloned()))),
    }
}

fn result_view(file: &Upload, outcome: &Outcome, upload_id: Option<String>) -> Value {
    let (report, problem) = match outcome {
        Ok(r) => (Some(r), None),
        Err((message, r)) => (r.as_ref(), Some(message.as_str())),
    };
    json!({
        "file": file.file_name,
        "mode": mode_of(file).map(ImportMode::as_str).unwrap_or_default(),
        "problem": problem,
        "applied": report.is_some_and(|r| r.applied),
        "upload": upload_id,
        "counts": report.map(|r| &r.counts),
        "rejected": report.map(|r| &r.rejected),
        "rejected_capped": report.and_then(|r| r.listed_at_most.filter(|n| r.rejected.len() >= *n)),
        "refused": report.and_then(|r| r.refused.as_deref()),
        "changes": report.map(changes),
    })
}

/// Added, updated and deactivated people, as one line each (capped: a first
/// import of 20,000 people is a count, not a list).
fn changes(report: &ImportReport) -> Value {
    const SHOWN: usize = 200;
    let c = &report.counts;
    let total = c.added + c.updated + c.reactivated + c.deactivated;
    let rows: Vec<Value> = report
        .changes
        .iter()
        .take(SHOWN)
        .map(|c| {
            let fields: Vec<&str> = c.fields.iter().map(|f| f.field).collect();
            json!({ "action": c.action, "email": c.email, "line": c.line, "fields": fields.join(", ") })
        })
        .collect();
    json!({ "rows": rows, "more": total.saturating_sub(rows.len() as u64) })
}
