//! The report downloads of a campaign: `report::build` as JSON (the API's
//! schema) and as CSV, computed when asked, as of the clock's now.

use super::campaign::{find, urlencode};
use super::{AppState, UiError};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/campaigns/{slug}/report.json", get(report_json))
        .route("/campaigns/{slug}/report.csv", get(report_csv))
}

async fn build_report(state: &AppState, slug: &str) -> Result<crate::report::Report, UiError> {
    let row = find(state, slug).await?;
    let app = &state.app;
    Ok(crate::report::build(
        &app.store,
        &row,
        app.clock.now(),
        app.settings.report.min_group_size,
    )
    .await?)
}

fn attachment(slug: &str, ext: &str) -> String {
    format!("attachment; filename=\"{}-report.{ext}\"", urlencode(slug))
}

async fn report_json(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response, UiError> {
    let report = build_report(&state, &slug).await?;
    Ok((
        [(header::CONTENT_DISPOSITION, attachment(&slug, "json"))],
        Json(report),
    )
        .into_response())
}

async fn report_csv(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response, UiError> {
    let report = build_report(&state, &slug).await?;
    let headers = [
        (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
        (header::CONTENT_DISPOSITION, attachment(&slug, "csv")),
    ];
    let csv = crate::report::render::csv(&report)?;
    Ok((headers, csv).into_response())
}
