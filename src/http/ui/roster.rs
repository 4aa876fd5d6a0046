//! The roster: find people (search and pages), and upload a file: choose
//! it, read the dry run (every rejected row with its line and reason), then
//! apply exactly the bytes that were previewed.

use super::session::{SignedIn, Upload, UploadKind};
use super::{upload, AppState, UiError};
use crate::audit::{self, Action};
use crate::http::access::Caller;
use crate::roster::{self, ImportError, ImportMode, ImportOptions, ImportReport};
use crate::store::people::StaffSearch;
use crate::store::RosterSource;
use axum::extract::{Multipart, Query, State};
use axum::response::Html;
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;
use serde_json::{json, Value};

/// People listed on one page of the roster.
const PAGE_SIZE: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/roster", get(form).post(preview))
        .route("/roster/apply", post(apply))
}

/// The roster page's query: what to look for, whether to include people
/// who left, and which page.
#[derive(Debug, Default, Deserialize)]
struct Find {
    #[serde(default)]
    q: String,
    #[serde(default)]
    inactive: Option<String>,
    #[serde(default)]
    page: Option<String>,
}

async fn form(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Query(find): Query<Find>,
) -> Result<Html<String>, UiError> {
    let text: String = find
        .q
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let include_inactive = find.inactive.as_deref() == Some("1");
    // A page number that is not one shows the first page.
    let page = find
        .page
        .as_deref()
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| (1..=1_000_000).contains(p))
        .unwrap_or(1);
    let search = StaffSearch {
        text: text.clone(),
        include_inactive,
        offset: (page - 1) * PAGE_SIZE,
        limit: PAGE_SIZE,
    };
    let found = state.app.store.search_staff(&search).await?;
    let people: Vec<Value> = found
        .people
        .iter()
        .map(|p| {
            json!({
                "name": crate::delivery::context::full_name(&p.first_name, &p.last_name),
                "email": p.email,
                "department": p.department,
                "role": p.role,
                "manager": p.manager_email,
                "active": p.active == 1,
            })
        })
        .collect();
    let pages = (found.total + PAGE_SIZE - 1) / PAGE_SIZE;
    let link = |n: i64| {
        let mut query = format!("?q={}&page={n}", super::campaign::urlencode(&text));
        if include_inactive {
            query.push_str("&inactive=1");
        }
        query
    };
    let data = json!({
        "q": text,
        "inactive": include_inactive,
        "people": people,
        "total": found.total,
        "page": page,
        "pages": pages.max(1),
        "first": search.offset + 1,
        "last": search.offset + people.len() as i64,
        "previous": (page > 1).then(|| link(page - 1)),
        "next": (page < pages).then(|| link(page + 1)),
    });
    state
        .ui
        .view
        .page("roster", "Roster", "roster", Some(&session), &data)
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
        UploadKind::Roster,
        "mode",
        state.app.settings.roster.max_file_bytes,
    )
    .await?;
    let outcome = run(&state, &caller, &file, true, false).await?;
    // A refusal as a whole (an old file again, a mass deactivation) can be
    // overridden, as with --force: keep the upload for that confirmation.
    let upload_id = match &outcome {
        Ok(_) => Some(state.ui.uploads.stash(&session.id, file.clone())),
        Err((_, Some(report))) if report.refused.is_some() => {
            Some(state.ui.uploads.stash(&session.id, file.clone()))
        }
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
    Extension(caller): Extension<Caller>,
    Form(confirm): Form<upload::Confirm>,
) -> Result<Html<String>, UiError> {
    let file = upload::take(&state, &session, &confirm, UploadKind::Roster)?;
    let outcome = run(&state, &caller, &file, false, confirm.force).await?;
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

async fn run(
    state: &AppState,
    caller: &Caller,
    file: &Upload,
    dry_run: bool,
    force: bool,
) -> Result<Outcome, UiError> {
    let options = ImportOptions {
        source: RosterSource::hr(),
        mode: mode_of(file)?,
        dry_run,
        skip_invalid: file.skip_invalid,
        force,
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
    if !dry_run {
        let detail = match &result {
            Ok(report) => audit::roster_detail(report),
            Err(e) => match e.report() {
                Some(report) => audit::roster_detail(report),
                None => json!({ "file": file.file_name, "sha256": audit::sha256_hex(&bytes) }),
            },
        };
        let name = file.file_name.as_str();
        state
            .audit_result(caller, Action::RosterImport, name, &result, detail)
            .await;
    }
    match result {
        Ok(report) => Ok(Ok(report)),
        Err(ImportError::Database(e)) => Err(UiError::Internal(e)),
        // The CLI's wording names --skip-invalid; this page has a box for it.
        Err(ImportError::Rejected(report)) => Ok(Err((
            format!("{} row(s) rejected; nothing was imported. Fix the rows listed below and check the file again, or tick \"Skip rows that cannot be read\" to import the other rows.", report.counts.rejected),
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
    let forcible = upload_id.is_some() && report.is_some_and(|r| r.refused.is_some());
    json!({
        "file": file.file_name,
        "mode": mode_of(file).map(ImportMode::as_str).unwrap_or_default(),
        "skip_invalid": file.skip_invalid,
        "problem": problem,
        "applied": report.is_some_and(|r| r.applied),
        "upload": upload_id,
        "counts": report.map(|r| &r.counts),
        "rejected": report.map(|r| &r.rejected),
        "columns": report.map(|r| &r.columns),
        "warnings": report.map(|r| &r.warnings),
        "rejected_capped": report.and_then(|r| r.listed_at_most.filter(|n| r.rejected.len() >= *n)),
        "refused": report.and_then(|r| r.refused.as_deref()),
        "forcible": forcible,
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
