//! The admin web page under /admin: server-rendered HTML (handlebars,
//! escaped), no script. Sign-in with the admin password or token, or through
//! the organisation's identity provider ([`oidc`]), starts a
//! session (see [`session`]); every form carries the session's CSRF token;
//! every page is sent with a strict Content-Security-Policy.

mod accounts;
mod audit;
mod campaign;
mod completions;
mod dashboard;
mod error;
mod oidc;
mod overview;
mod reports;
mod roster;
pub(super) mod session;
mod signin;
mod upload;
mod view;

pub use error::UiError;

use super::AppState;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::{from_fn, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use session::SignedIn;
use subtle::ConstantTimeEq;

/// What the admin page keeps between requests.
pub struct UiState {
    /// Uploads waiting for "apply", in this process.
    uploads: session::Uploads,
    /// Idle and absolute session limits (`security.session_*`).
    pub(super) limits: crate::store::sessions::SessionLimits,
    view: view::View,
    /// The Argon2 PHC string, when a password is configured.
    password_hash: Option<String>,
    /// Cookies get `Secure` when people reach us over https.
    secure_cookies: bool,
    /// The identity provider of `[oidc]`, when configured.
    sso: Option<std::sync::Arc<crate::sso::Provider>>,
}

impl UiState {
    pub fn new(settings: &crate::config::Settings) -> Self {
        let hash = settings.security.admin_password_hash.expose().trim();
        Self {
            uploads: session::Uploads::default(),
            limits: crate::accounts::session::limits(&settings.security),
            view: view::View::new(),
            password_hash: (!hash.is_empty()).then(|| hash.to_string()),
            secure_cookies: settings.http.public_url.starts_with("https:"),
            sso: crate::sso::Provider::from_settings(&settings.oidc, &settings.http.public_url)
                .unwrap_or_else(|e| {
                    tracing::error!(error = %format!("{e:#}"), "single sign-on is off: [oidc] is unusable");
                    None
                }),
        }
    }
}

/// The /admin routes (nested by the caller).
pub fn router(state: AppState) -> Router<AppState> {
    // Room for the file plus the form's other fields.
    let upload_limit = state.app.settings.roster.max_file_bytes as usize + 64 * 1024;
    let private = Router::new()
        .merge(dashboard::router())
        .merge(roster::router())
        .merge(completions::router())
        .merge(campaign::router())
        .merge(reports::router())
        .merge(accounts::router())
        .merge(audit::router())
        .merge(signin::sign_out_router());
    Router::new()
        .merge(private)
        .merge(signin::router())
        .merge(oidc::router())
        .route("/admin.css", get(stylesheet))
        .layer(DefaultBodyLimit::max(upload_limit))
        .layer(from_fn(move |request: Request, next: Next| async move {
            if super::declared_over(request.headers(), upload_limit) {
                let message = format!(
                    "The file is too large: {}.",
                    super::too_large_message(upload_limit)
                );
                return Err(UiError::TooLarge(message));
            }
            Ok(next.run(request).await)
        }))
        .layer(from_fn(security_headers))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../../templates/ui/admin.css"),
    )
}

/// CSP, framing, referrer and caching rules for every admin response; a
/// handler that set its own (the email preview) keeps them.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let defaults = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in defaults {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

/// Refuses a form whose CSRF token is not this session's.
fn check_csrf(session: &SignedIn, presented: &str) -> Result<(), UiError> {
    if presented.is_empty() || !bool::from(presented.as_bytes().ct_eq(session.csrf.as_bytes())) {
        return Err(UiError::Forbidden);
    }
    Ok(())
}
