//! The HTTP side of `serve` (axum): public tracking routes, the admin API
//! under /api, the admin web page under /admin, and /healthz, /readyz, /metrics. Each resource file exposes
//! `router()`; limits (body size, per-token rate, timeouts) are set here.

pub(crate) mod access;
mod api;
mod auth;
mod error;
mod extract;
mod headers;
mod health;
mod limit;
mod memory;
mod server;
mod spool;
mod tracking;
mod ui;

pub use error::ApiError;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::delivery::Composer;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::tracking::{Recorder, Tracker};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::num::NonZeroU32;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What an uploaded roster's report lists: the first 100 problems and up
/// to 100 changes of each kind, so the answer stays small whatever the file.
const ROSTER_LISTING: crate::roster::Listing = crate::roster::Listing::First(100);

/// Why a body over `limit` bytes is refused, in words for people.
fn too_large_message(limit: usize) -> String {
    format!("the upload is larger than {limit} bytes (roster.max_file_bytes); split the file or raise the limit")
}

/// The declared Content-Length, when there is one and it exceeds `limit`:
/// such a body is refused before a byte of it is read.
fn declared_over(headers: &axum::http::HeaderMap, limit: usize) -> bool {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|declared| declared > limit as u64)
}

/// The application's parts the routes use, handed over by the composition
/// root (`app`), so `http` depends on none of the daemon's tasks.
#[derive(Debug, Clone)]
pub struct Parts {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub clock: SharedClock,
    /// Previews of campaign messages.
    pub composer: Composer,
    /// Checks the tokens of tracking links.
    pub tracker: Tracker,
    /// Queues tracking hits to the writer that commits them in groups.
    pub recorder: Recorder,
}

/// Shared by every handler. One `Arc`: axum clones the state for every
/// extractor and middleware layer of every request, and a clone of the
/// parts themselves (strings, pools, metrics) was a tenth of a tracking
/// hit's CPU (docs/benchmarks.md, "Tracking").
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] shares.
pub struct Shared {
    pub app: Parts,
    pub metrics: Metrics,
    admin_digest: Option<Arc<Vec<u8>>>,
    /// Per-message limit on recorded hits, so a flood cannot fill the disk.
    hits: governor::DefaultKeyedRateLimiter<i64>,
    /// Failed sign-ins and API tokens per client address.
    auth_failures: limit::Failures,
    /// The admin web page's sessions and templates.
    ui: ui::UiState,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(app: Parts, metrics: Metrics) -> Self {
        let admin_digest = auth::expected_digest(&app.settings.security).map(Arc::new);
        // 20 recorded hits at once per message, then one every 3 seconds.
        let quota = governor::Quota::per_minute(NonZeroU32::new(20).expect("non-zero"))
            .allow_burst(NonZeroU32::new(20).expect("non-zero"));
        let ui = ui::UiState::new(&app.settings);
        Self(Arc::new(Shared {
            app,
            metrics,
            admin_digest,
            hits: governor::RateLimiter::keyed(quota),
            auth_failures: limit::Failures::default(),
            ui,
        }))
    }
}

impl AppState {
    /// Appends an audit entry, as of the clock's now.
    async fn audit(
        &self,
        actor: &crate::audit::Actor,
        action: crate::audit::Action,
        target: &str,
        outcome: crate::store::AuditOutcome,
        detail: serde_json::Value,
    ) {
        let now = crate::clock::to_millis(self.app.clock.now());
        crate::audit::record(&self.app.store, now, actor, action, target, outcome, detail).await
    }

    /// Records how `result` ended: success, or failure with its error.
    async fn audit_result<T, E: std::fmt::Display>(
        &self,
        caller: &access::Caller,
        action: crate::audit::Action,
        target: &str,
        result: &Result<T, E>,
        detail: serde_json::Value,
    ) {
        let (outcome, detail) = crate::audit::outcome_of(result, detail);
        self.audit(&caller.actor(), action, target, outcome, detail)
            .await
    }

    /// Who sent `request`, as far as per-client limits are concerned.
    fn client(
        &self,
        extensions: &axum::http::Extensions,
        headers: &axum::http::HeaderMap,
    ) -> std::net::IpAddr {
        limit::client_address(extensions, headers, &self.app.settings.http.trusted_proxies)
    }
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    let https = state.app.settings.http.public_url.starts_with("https:");
    let request_timeout = state.app.settings.http.request_timeout.as_std();
    let router = Router::new()
        .merge(tracking::router())
        .nest("/api", api::router(state.clone()))
        .nest("/admin", ui::router(state.clone()))
        .merge(health::router())
        // Every route's rule (http::access): who the caller is, and whether
        // their role may use it.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::authorise,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        // Outside the timeout, whose 408 has no body: under /api it gets
        // the JSON error body every other API error has.
        .layer(axum::middleware::from_fn_with_state(
            state.app.settings.http.request_timeout,
            api_timeout_body,
        ))
        // Outside the timeout, so a timed-out upload is trimmed after too.
        .layer(axum::middleware::from_fn(
            memory::give_back_after_large_bodies,
        ))
        .with_state(state);
    if https {
        router.layer(axum::middleware::map_response(headers::hsts))
    } else {
        router
    }
}

/// The timeout layer answers 408 with an empty body; under /api that
/// becomes the documented `{"error": ...}`, naming the setting.
async fn api_timeout_body(
    State(limit): State<crate::domain::HumanDuration>,
    request: Request,
    next: Next,
) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    if !api || response.status() != axum::http::StatusCode::REQUEST_TIMEOUT {
        return response;
    }
    let error = format!(
        "the request took longer than http.request_timeout ({}); send it again, or raise the limit for large uploads",
        limit
    );
    (
        axum::http::StatusCode::REQUEST_TIMEOUT,
        axum::Json(serde_json::json!({ "error": error })),
    )
        .into_response()
}

async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    state
        .metrics
        .http_requests
        .with_label_values(&[route.as_str(), response.status().as_str()])
        .inc();
    response
}

/// Serves until `stop` is cancelled, then finishes open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let limits = server::Limits::from_settings(&state.app.settings.http);
    server::run(listener, router(state), limits, stop).await;
    Ok(())
}
