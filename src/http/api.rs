//! The admin API under /api: roster upload, campaigns, enrolments,
//! completions, exemptions and reports, behind a bearer token. Requests and
//! responses are JSON (uploads: a CSV body or a multipart form with `file`).
//! docs/openapi.json describes it and is served at /api/openapi.json.

use super::access::Caller;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery, JSON_LIMIT};
use super::spool::{Mapped, SpoolError, Spooled};
use super::AppState;
use crate::audit::{self, Action};
use crate::campaign::ExemptError;
use crate::campaign::{self, definition_of, Status};
use crate::clock::{from_millis, to_millis};
use crate::completions::{self, CompletionError, CompletionOptions};
use crate::roster::{self, ImportError, ImportMode, ImportOptions};
use crate::store::exemption::Actor;
use crate::store::{EnrolmentStatus, RosterSource};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{header, Method};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::StreamExt;
use serde::Deserialize;

const OPENAPI: &str = include_str!("../../docs/openapi.json");

pub fn router(state: AppState) -> Router<AppState> {
    let upload_limit = state.app.settings.roster.max_file_bytes as usize;
    Router::new()
        .route("/roster", post(upload_roster))
        .route("/completions", post(upload_completions))
        .layer(DefaultBodyLimit::max(upload_limit))
        .layer(axum::middleware::from_fn(
            move |request: Request, next: axum::middleware::Next| async move {
                if super::declared_over(request.headers(), upload_limit) {
                    return Err(ApiError::TooLarge(super::too_large_message(upload_limit)));
                }
                Ok(next.run(request).await)
            },
        ))
        .route("/campaigns", get(list_campaigns))
        .route("/campaigns/{slug}", get(show_campaign))
        .route("/campaigns/{slug}/pause", post(pause))
        .route("/campaigns/{slug}/resume", post(resume))
        .route(
            "/campaigns/{slug}/completions",
            post(add_completion).layer(DefaultBodyLimit::max(JSON_LIMIT)),
        )
        .route("/enrolments", get(enrolments))
        .route("/campaigns/{slug}/exemptions", get(exemptions))
        .route(
            "/exemptions",
            post(exempt).layer(DefaultBodyLimit::max(JSON_LIMIT)),
        )
        .route(
            "/exemptions/undo",
            post(unexempt).layer(DefaultBodyLimit::max(JSON_LIMIT)),
        )
        .route("/reports/{slug}", get(report))
        .route("/audit", get(audit_trail))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        // Unknown paths and methods answer like every other API error: JSON.
        // The 405 keeps the Allow header axum adds.
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|method: Method| async move {
            ApiError::MethodNotAllowed(method.to_string())
        })
}

/// The uploaded file, spooled to a temporary file as it arrives: a raw
/// body, or the `file` field of a multipart form.
async fn upload_file(request: Request, state: &AppState) -> Result<(Spooled, String), ApiError> {
    let limit = state.app.settings.roster.max_file_bytes;
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !is_multipart {
        let chunks = request
            .into_body()
            .into_data_stream()
            .map(|chunk| chunk.map_err(|e| SpoolError::Body(e.to_string())));
        let spooled = Spooled::from_stream(chunks, limit)
            .await
            .map_err(|e| spool_error(e, limit))?;
        return Ok((spooled, "upload.csv".into()));
    }
    let mut form = Multipart::from_request(request, state)
        .await
        .map_err(|e| ApiError::BadRequest(format!("not a multipart form: {e}")))?;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| multipart_error(e, limit))?
    {
        if field.name() == Some("file") {
            let name = field
                .file_name()
                .unwrap_or("upload.csv")
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            let chunks = field.map(|chunk| chunk.map_err(SpoolError::from));
            let spooled = Spooled::from_stream(chunks, limit)
                .await
                .map_err(|e| spool_error(e, limit))?;
            return Ok((spooled, name));
        }
    }
    Err(ApiError::BadRequest(
        "the form has no field named \"file\"".into(),
    ))
}

/// A failed multipart form read as the API's error.
fn multipart_error(e: axum::extract::multipart::MultipartError, limit: u64) -> ApiError {
    spool_error(e.into(), limit)
}

/// 413 for an upload over the limit, 400 for a broken body, 500 for our disk.
fn spool_error(e: SpoolError, limit: u64) -> ApiError {
    match e {
        SpoolError::TooLarge => ApiError::TooLarge(super::too_large_message(limit as usize)),
        SpoolError::Body(_) => ApiError::BadRequest(e.to_string()),
        SpoolError::Disk(_) => ApiError::Internal(e.into()),
    }
}

/// The spooled upload, mapped for the import that reads it.
fn mapped(spooled: &Spooled) -> Result<Mapped, ApiError> {
    spooled
        .map()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("cannot map the spooled upload: {e}")))
}

#[derive(Debug, Deserialize)]
struct RosterParams {
    #[serde(default)]
    source: RosterSource,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    skip_invalid: bool,
    #[serde(default)]
    force: bool,
}

async fn upload_roster(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(p): ApiQuery<RosterParams>,
    request: Request,
) -> Result<impl IntoResponse, ApiError> {
    let mode = match p.mode.as_deref() {
        None => ImportMode::Sync,
        Some(given) => given
            .parse()
            .map_err(|e| ApiError::BadRequest(format!("mode: {e}")))?,
    };
    let (spooled, file_name) = upload_file(request, &state).await?;
    let bytes = mapped(&spooled)?;
    let options = ImportOptions {
        source: p.source,
        mode,
        dry_run: p.dry_run,
        skip_invalid: p.skip_invalid,
        force: p.force,
        file_name,
    };
    let app = &state.app;
    let result = roster::import_listing(
        &app.store,
        app.clock.as_ref(),
        &app.settings.roster,
        &bytes,
        &options,
        super::ROSTER_LISTING,
        // Pages the import has read leave the resident set as it goes.
        &mut |_, _| bytes.release(),
    )
    .await;
    if !options.dry_run {
        let detail = match &result {
            Ok(report) => audit::roster_detail(report),
            Err(e) => match e.report() {
                Some(report) => audit::roster_detail(report),
                None => {
                    serde_json::json!({ "file": options.file_name, "sha256": audit::sha256_hex(&bytes) })
                }
            },
        };
        let target = options.file_name.as_str();
        state
            .audit_result(&caller, Action::RosterImport, target, &result, detail)
            .await;
    }
    match result {
        Ok(report) => Ok(Json(report)),
        Err(ImportError::Database(e)) => Err(e.into()),
        Err(e) => {
            let detail = e.report().and_then(|r| serde_json::to_value(r).ok());
            Err(ApiError::of_kind(e.kind(), e.into(), detail))
        }
    }
}

#[derive(Debug, Deserialize)]
struct CompletionParams {
    campaign: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

async fn upload_completions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(p): ApiQuery<CompletionParams>,
    request: Request,
) -> Result<impl IntoResponse, ApiError> {
    let (spooled, file_name) = upload_file(request, &state).await?;
    let bytes = mapped(&spooled)?;
    let options = CompletionOptions {
        campaign: p.campaign,
        dry_run: p.dry_run,
        file_name,
    };
    let app = &state.app;
    let tz = app.settings.organisation.time_zone.0;
    let result = completions::import(
        &app.store,
        app.clock.as_ref(),
        tz,
        &app.settings.completions.columns,
        &bytes,
        &options,
    )
    .await;
    if !options.dry_run {
        let detail = match &result {
            Ok(report) => audit::completions_detail(report),
            Err(CompletionError::Malformed(report)) => audit::completions_detail(report),
            Err(_) => {
                serde_json::json!({ "file": options.file_name, "sha256": audit::sha256_hex(&bytes) })
            }
        };
        let target = options.file_name.as_str();
        state
            .audit_result(&caller, Action::CompletionsImport, target, &result, detail)
            .await;
    }
    match result {
        Ok(report) => Ok(Json(report)),
        Err(CompletionError::Malformed(report)) => Err(ApiError::Unprocessable {
            message: format!(
                "{} malformed row(s); nothing was recorded",
                report.malformed.len()
            ),
            body: serde_json::to_value(&report).ok(),
        }),
        Err(CompletionError::Unreadable { reason, .. }) => Err(ApiError::Unprocessable {
            message: reason,
            body: None,
        }),
        // An unknown or ambiguous campaign is invalid, a database error ours:
        // the error's type says which.
        Err(CompletionError::Other(e)) => Err(e.into()),
    }
}

async fn list_campaigns(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut out = Vec::new();
    for row in state.app.store.campaigns().await? {
        let counts = state.app.store.outbox_counts(Some(row.id)).await?;
        out.push(serde_json::json!({ "slug": row.slug, "name": row.name, "status": row.status, "starts_at": from_millis(row.starts_at), "messages": counts }));
    }
    Ok(Json(out))
}

async fn find(
    state: &AppState,
    slug: &str,
) -> Result<crate::store::campaign::CampaignRow, ApiError> {
    state
        .app
        .store
        .campaign_by_slug(slug)
        .await?
        .ok_or_else(ApiError::not_found)
}

async fn show_campaign(
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let row = find(&state, &slug).await?;
    let definition = definition_of(&row)?;
    let counts = state.app.store.outbox_counts(Some(row.id)).await?;
    Ok(Json(
        serde_json::json!({ "slug": row.slug, "status": row.status, "definition": definition, "messages": counts }),
    ))
}

async fn set_status(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    status: Status,
) -> Result<Json<serde_json::Value>, ApiError> {
    find(state, slug).await?;
    // A cancelled campaign is a conflict (409); a database failure is ours.
    let result =
        campaign::set_status(&state.app.store, state.app.clock.as_ref(), slug, status).await;
    let action = match status {
        Status::Paused => Action::CampaignPause,
        Status::Active => Action::CampaignResume,
        _ => Action::CampaignCancel,
    };
    state
        .audit_result(caller, action, slug, &result, serde_json::json!({}))
        .await;
    result?;
    Ok(Json(
        serde_json::json!({ "slug": slug, "status": status.as_str() }),
    ))
}

async fn pause(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(slug): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    set_status(&state, &caller, &slug, Status::Paused).await
}

async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(slug): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    set_status(&state, &caller, &slug, Status::Active).await
}

#[derive(Debug, Deserialize)]
struct EnrolmentFilter {
    campaign: Option<String>,
    status: Option<String>,
    department: Option<String>,
}

async fn enrolments(
    State(state): State<AppState>,
    ApiQuery(f): ApiQuery<EnrolmentFilter>,
) -> Result<impl IntoResponse, ApiError> {
    let wanted = f
        .status
        .as_deref()
        .map(str::parse::<EnrolmentStatus>)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("status: {e}")))?;
    let now = to_millis(state.app.clock.now());
    let rows = state
        .app
        .store
        .enrolment_list(f.campaign.as_deref(), f.department.as_deref(), now)
        .await?;
    let filtered: Vec<_> = rows
        .into_iter()
        .filter(|r| wanted.is_none_or(|s| r.status == s))
        .collect();
    Ok(Json(filtered))
}

#[derive(Debug, Deserialize)]
struct ExemptionRequest {
    email: String,
    campaign: String,
    reason: String,
}

async fn exempt(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<ExemptionRequest>,
) -> Result<impl IntoResponse, ApiError> {
    change_exemption(&state, &caller, req, false).await
}

/// Undoes an exemption; the reason is kept in the history.
async fn unexempt(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<ExemptionRequest>,
) -> Result<impl IntoResponse, ApiError> {
    change_exemption(&state, &caller, req, true).await
}

async fn change_exemption(
    state: &AppState,
    caller: &Caller,
    req: ExemptionRequest,
    undo: bool,
) -> Result<Json<serde_json::Value>, ApiError> {
    // Well-formed JSON holding a value that cannot be used: 422, like the
    // refusals that follow.
    let invalid = |message: String| ApiError::Unprocessable {
        message,
        body: None,
    };
    let email = crate::domain::EmailAddress::parse(&req.email)
        .map_err(|e| invalid(format!("email {e}")))?;
    if !campaign::valid_reason(&req.reason) {
        return Err(invalid(
            "reason must be one line of text, at most 500 characters".into(),
        ));
    }
    let row = find(state, &req.campaign).await?;
    let now = to_millis(state.app.clock.now());
    let actor = Actor::api(caller.principal.name());
    let (store, reason) = (&state.app.store, req.reason.trim());
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
    let detail = serde_json::json!({ "campaign": row.slug, "reason": reason });
    state
        .audit_result(caller, action, email.as_str(), &done, detail)
        .await;
    done.map_err(|e| match e {
        ExemptError::Store(e) => ApiError::from(e),
        refused => ApiError::of_kind(refused.kind(), refused.into(), None),
    })?;
    Ok(Json(
        serde_json::json!({ "email": email, "campaign": row.slug, "exempt": !undo }),
    ))
}

/// The campaign's exemptions and their history.
async fn exemptions(
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let row = find(&state, &slug).await?;
    Ok(Json(
        campaign::exemption_listing(&state.app.store, &row).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompletionRequest {
    email: String,
    /// YYYY-MM-DD, or a date and time as in completion reports.
    date: String,
}

/// Records one completion by hand (`ambassador completions add`).
async fn add_completion(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(slug): ApiPath<String>,
    ApiJson(req): ApiJson<CompletionRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let email =
        crate::domain::EmailAddress::parse(&req.email).map_err(|e| ApiError::Unprocessable {
            message: format!("email {e}"),
            body: None,
        })?;
    let row = find(&state, &slug).await?;
    let app = &state.app;
    let tz = app.settings.organisation.time_zone.0;
    let result =
        completions::add_one(&app.store, app.clock.as_ref(), tz, &row, &email, &req.date).await;
    let detail = serde_json::json!({ "campaign": row.slug, "date": req.date });
    state
        .audit_result(
            &caller,
            Action::CompletionAdd,
            email.as_str(),
            &result,
            detail,
        )
        .await;
    match result {
        Ok(done) => Ok(Json(done)),
        Err(completions::ManualError::Store(e)) => Err(ApiError::from(e)),
        Err(refused) => Err(ApiError::of_kind(refused.kind(), refused.into(), None)),
    }
}

async fn report(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(slug): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let row = find(&state, &slug).await?;
    let now = state.app.clock.now();
    let report = crate::report::build(
        &state.app.store,
        &row,
        now,
        state.app.settings.report.min_group_size,
    )
    .await;
    let detail = serde_json::json!({ "format": "json", "channel": "api" });
    state
        .audit_result(&caller, Action::ReportExport, &slug, &report, detail)
        .await;
    Ok(Json(report?))
}

#[derive(Debug, Deserialize)]
struct AuditParams {
    #[serde(flatten)]
    query: audit::Query,
    #[serde(default)]
    format: Option<String>,
}

/// The audit trail, filtered, as JSON (default) or spreadsheet-safe CSV.
async fn audit_trail(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> Result<axum::response::Response, ApiError> {
    let csv = match p.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "format: unknown value {other:?}; use json or csv"
            )))
        }
    };
    let tz = state.app.settings.organisation.time_zone.0;
    let filter = p.query.filter(tz)?;
    let entries = audit::entries(&state.app.store, &filter).await?;
    let detail = serde_json::json!({
        "format": if csv { "csv" } else { "json" },
        "entries": entries.len(),
        "filter": { "actor": p.query.actor, "action": p.query.action, "from": p.query.from, "to": p.query.to },
    });
    state
        .audit(
            &caller.actor(),
            Action::AuditExport,
            "audit_log",
            crate::store::AuditOutcome::Success,
            detail,
        )
        .await;
    if csv {
        let body = audit::to_csv(&entries)?;
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"audit.csv\"",
                ),
            ],
            body,
        )
            .into_response());
    }
    Ok(Json(entries).into_response())
}
