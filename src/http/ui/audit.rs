//! The audit trail page (admins only): entries filtered by person, action
//! and dates, and the same selection as CSV (spreadsheet-safe) or JSON.
//! Each export is itself recorded.

use super::dashboard::when;
use super::session::SignedIn;
use super::{AppState, UiError};
use crate::audit::{self, Action, Query as AuditQuery};
use crate::http::access::Caller;
use crate::store::AuditOutcome;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::json;

/// Entries shown on the page; the exports carry up to `audit::MAX_ENTRIES`.
const SHOWN: usize = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit", get(show))
        .route("/audit.csv", get(export_csv))
        .route("/audit.json", get(export_json))
}

/// The filter's query string, for the export links (values percent-encoded).
fn query_string(q: &AuditQuery) -> String {
    let pairs = [
        ("actor", &q.actor),
        ("action", &q.action),
        ("from", &q.from),
        ("to", &q.to),
    ];
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", super::campaign::urlencode(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
    Query(q): Query<AuditQuery>,
) -> Result<Html<String>, UiError> {
    let tz = state.app.settings.organisation.time_zone.0;
    let (entries, problem) = match q.filter(tz) {
        Ok(filter) => (audit::entries(&state.app.store, &filter).await?, None),
        Err(e) => (Vec::new(), Some(format!("{e:#}"))),
    };
    let rows: Vec<_> = entries
        .iter()
        .take(SHOWN)
        .map(|e| {
            json!({
                "at": when(e.at, tz),
                "actor": e.actor,
                "actor_kind": e.actor_kind,
                "address": e.address,
                "action": e.action,
                "target": e.target,
                "outcome": e.outcome,
                "failed": e.outcome == AuditOutcome::Failure,
                "detail": e.detail.to_string(),
            })
        })
        .collect();
    let actions: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
    let data = json!({
        "entries": rows,
        "total": entries.len(),
        "more": entries.len().saturating_sub(SHOWN),
        "problem": problem,
        "q": q,
        "actions": actions.iter().map(|a| json!({ "name": a, "current": *a == q.action })).collect::<Vec<_>>(),
        "query": query_string(&q),
    });
    state
        .ui
        .view
        .page("audit", "Audit trail", "audit", Some(&session), &data)
}

/// The filtered entries for an export, the export itself recorded.
async fn exported(
    state: &AppState,
    caller: &Caller,
    q: &AuditQuery,
    format: &str,
) -> Result<Vec<audit::Entry>, UiError> {
    let tz = state.app.settings.organisation.time_zone.0;
    let filter = q.filter(tz)?;
    let entries = audit::entries(&state.app.store, &filter).await?;
    let detail = json!({
        "format": format,
        "entries": entries.len(),
        "filter": { "actor": q.actor, "action": q.action, "from": q.from, "to": q.to },
    });
    let actor = caller.actor();
    state
        .audit(
            &actor,
            Action::AuditExport,
            "audit_log",
            AuditOutcome::Success,
            detail,
        )
        .await;
    Ok(entries)
}

async fn export_csv(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, UiError> {
    let entries = exported(&state, &caller, &q, "csv").await?;
    let body = audit::to_csv(&entries)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

async fn export_json(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, UiError> {
    let entries = exported(&state, &caller, &q, "json").await?;
    Ok((
        [(
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"audit.json\"",
        )],
        Json(entries),
    )
        .into_response())
}
