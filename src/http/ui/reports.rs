//! The report downloads of a campaign: `report::build` as JSON (the API's
//! schema) and as CSV, computed when asked, as of the clock's now.

use super::campaign::{find, urlencode};
use super::{AppState, UiError};
use crate::audit::Action;
use crate::http::access::Caller;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/campaigns/{slug}/report.json", get(report_json))
        .route("/campaigns/{slug}/report.csv", get(report_csv))
}

/// The report, its export recorded in the audit trail.
async fn build_report(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    format: &str,
) -> Result<crate::report::Report, UiError> {
    let row = find(state, slug).await?;
    let app = &state.app;
    let report = crate::report::build(
        &app.store,
        &row,
        app.clock.now(),
        app.settings.report.min_group_size,
    )
    .await;
    let detail = serde_json::json!({ "format": format, "channel": "page" });
    state
        .audit_result(caller, Action::ReportExport, slug, &report, detail)
        .await;
    Ok(report?)
}

fn attachment(slug: &str, ext: &str) -> String {
    format!("attachment; filename=\"{}-report.{ext}\"", urlencode(slug))
}

async fn report_json(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(slug): Path<String>,
) -> Result<Response, UiError> {
    let report = build_report(&state, &caller, &slug, "json").await?;
    Ok((
        [(header::CONTENT_DISPOSITION, attachment(&slug, "json"))],
        Json(report),
    )
        .into_response())
}

async fn report_csv(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(slug): Path<String>,
) -> Result<Response, UiError> {
    let report = build_report(&state, &caller, &slug, "csv").await?;
    let headers = [
        (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
        (header::CONTENT_DISPOSITION, attachment(&slug, "csv")),
    ];
    let csv = crate::report::render::csv(&report)?;
    Ok((headers, csv).into_response())
}
