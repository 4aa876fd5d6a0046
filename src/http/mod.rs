//! The HTTP side of `serve` (axum): public tracking routes, the admin API
//! under /api, the admin web page under /admin, and /healthz, /readyz, /metrics. Each resource file exposes
//! `router()`; limits (body size, per-token rate, timeouts) are set here.

mod api;
mod auth;
mod error;
mod health;
mod tracking;
mod ui;

pub use error::ApiError;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::delivery::Composer;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::tracking::Tracker;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub app: Parts,
    pub metrics: Metrics,
    admin_digest: Option<Arc<Vec<u8>>>,
    /// Per-message limit on recorded hits, so a flood cannot fill the disk.
    hits: Arc<governor::DefaultKeyedRateLimiter<i64>>,
    /// The admin web page's sessions and templates.
    ui: Arc<ui::UiState>,
}

impl AppState {
    pub fn new(app: Parts, metrics: Metrics) -> Self {
        let admin_digest = auth::expected_digest(&app.settings.security).map(Arc::new);
        // 20 recorded hits at once per message, then one every 3 seconds.
        let quota = governor::Quota::per_minute(NonZeroU32::new(20).expect("non-zero"))
            .allow_burst(NonZeroU32::new(20).expect("non-zero"));
        let ui = Arc::new(ui::UiState::new(&app.settings));
        Self {
            app,
            metrics,
            admin_digest,
            hits: Arc::new(governor::RateLimiter::keyed(quota)),
            ui,
        }
    }
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(tracking::router())
        .nest("/api", api::router(state.clone()))
        .nest("/admin", ui::router(state.clone()))
        .merge(health::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .with_state(state)
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
    let app = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    Ok(())
}
