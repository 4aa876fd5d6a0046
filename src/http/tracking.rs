//! Public tracking routes: the open pixel, click redirects to the campaign's
//! own URLs, and the self-attested completion page (recorded only on the
//! POST from that page, because scanners follow GET links).

use super::error::ApiError;
use super::AppState;
use crate::campaign::definition_of;
use crate::clock::to_millis;
use crate::completions::{self, Completion};
use crate::tracking::{self, Claims, LinkKind, Queued};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t/o/{file}", get(open))
        .route("/t/c/{token}", get(click))
        .route("/t/done/{token}", get(confirm_page).post(confirm))
        .layer(DefaultBodyLimit::max(1024))
        .layer(axum::middleware::map_response(super::headers::tracking))
}

fn verify(state: &AppState, token: &str, kinds: &[LinkKind]) -> Result<Claims, ApiError> {
    state
        .app
        .tracker
        .key()
        .verify(token)
        .filter(|c| kinds.contains(&c.kind))
        .ok_or_else(ApiError::not_found)
}

/// Records a hit unless this message has had too many lately; returns once
/// the event is committed (the tracking writer groups hits into one commit).
/// False when the hit's message does not exist.
async fn note(
    state: &AppState,
    claims: Claims,
    method: &Method,
    headers: &HeaderMap,
) -> Result<bool, ApiError> {
    if state.hits.check_key(&claims.outbox_id).is_err() {
        tracing::debug!(
            outbox_id = claims.outbox_id,
            "tracking hit over the rate limit; not recorded"
        );
        return Ok(true);
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let hit = Queued {
        outbox_id: claims.outbox_id,
        kind: claims.kind,
        at: to_millis(state.app.clock.now()),
        class: tracking::classify_agent(user_agent, method == Method::HEAD),
    };
    Ok(state.app.recorder.record(hit).await?.is_some())
}

async fn open(
    State(state): State<AppState>,
    Path(file): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = file.strip_suffix(".gif").ok_or_else(ApiError::not_found)?;
    let claims = verify(&state, token, &[LinkKind::Open])?;
    if !note(&state, claims, &method, &headers).await? {
        return Err(ApiError::not_found());
    }
    Ok((
        [
            (header::CONTENT_TYPE, "image/gif"),
            (header::CACHE_CONTROL, "no-store, private"),
        ],
        PIXEL,
    )
        .into_response())
}

async fn click(
    State(state): State<AppState>,
    Path(token): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let claims = verify(&state, &token, &[LinkKind::Course, LinkKind::Video])?;
    let message = state
        .app
        .store
        .tracked_message(claims.outbox_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let row = state
        .app
        .store
        .campaign_by_id(message.campaign_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let campaign = definition_of(&row)?;
    // Only a URL from the campaign definition, never one from the request.
    let target = tracking::destination(&campaign, claims.kind)
        .ok_or_else(ApiError::not_found)?
        .to_string();
    note(&state, claims, &method, &headers).await?;
    Ok(Redirect::to(&target).into_response())
}

async fn confirm_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Html<String>, ApiError> {
    let claims = verify(&state, &token, &[LinkKind::Complete])?;
    state
        .app
        .store
        .tracked_message(claims.outbox_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Html(page(
        "Confirm your completion",
        "<p>Have you completed the course <em>SOAR for Procurement Professionals in Healthcare Systems</em>?</p>\
         <form method=\"post\"><button type=\"submit\">Yes, I have completed it</button></form>\
         <p>If you have not finished yet, just close this page.</p>",
    )))
}

async fn confirm(
    State(state): State<AppState>,
    Path(token): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let claims = verify(&state, &token, &[LinkKind::Complete])?;
    let message = state
        .app
        .store
        .tracked_message(claims.outbox_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let staff_id = message.staff_id.ok_or_else(ApiError::not_found)?;
    note(&state, claims, &method, &headers).await?;
    let now = state.app.clock.now();
    completions::record(
        &state.app.store,
        message.campaign_id,
        &[Completion { staff_id, at: now }],
        "self-attested",
        false,
    )
    .await?;
    Ok((StatusCode::OK, Html(page("Thank you", "<p>Your completion is recorded. Thank you for taking the time to learn how to spot and respond to forced labor in our supply chain.</p>"))).into_response())
}

/// A minimal, accessible page: the text is ours, nothing from the request is echoed.
fn page(title: &str, body: &str) -> String {
    let css = super::headers::TRACKING_CSS;
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{css}</style></head><body>\
         <h1>{title}</h1>{body}</body></html>"
    )
}
