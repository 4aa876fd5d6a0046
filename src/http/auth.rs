//! Bearer-token authentication for /api. The token is kept only as its
//! SHA-256 and compared in constant time; wrong tokens count against the
//! client's address (see [`super::limit`]).

use super::error::ApiError;
use super::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The digest presented tokens are compared with; `None` disables the API.
pub fn expected_digest(security: &crate::config::Security) -> Option<Vec<u8>> {
    if !security.admin_token_sha256.is_empty() {
        return hex::decode(security.admin_token_sha256.expose().trim()).ok();
    }
    (!security.admin_token.is_empty())
        .then(|| Sha256::digest(security.admin_token.expose().as_bytes()).to_vec())
}

pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(expected) = state.admin_digest.as_deref() else {
        return Err(ApiError::Unavailable("the admin API is off: set security.admin_token_file (or admin_token_sha256) and restart".into()));
    };
    let client = state.client(request.extensions(), request.headers());
    if let Some(wait) = state.auth_failures.blocked(client) {
        return Err(ApiError::TooManyRequests(wait.as_secs().max(1)));
    }
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    let digest = Sha256::digest(presented.trim().as_bytes());
    if bool::from(digest.as_slice().ct_eq(expected)) {
        Ok(next.run(request).await)
    } else {
        state.auth_failures.failed(client);
        tracing::warn!(%client, "API: wrong bearer token");
        Err(ApiError::Unauthorized)
    }
}
