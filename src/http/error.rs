//! The one error type of the HTTP edge, and the one mapping from a kind of
//! failure ([`crate::problem::Kind`]) to an HTTP status, which the admin
//! page shares. Internal causes are logged once and never shown to the
//! client; every error body is JSON `{"error": ..., "detail"?: ...}`.

use crate::problem::{kind_of, Kind};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// The token is good, its role may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("this path does not take the {0} method; the Allow header lists those it takes")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{message}")]
    Unprocessable {
        message: String,
        body: Option<serde_json::Value>,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many failed attempts from this address; try again in {0} seconds")]
    TooManyRequests(u64),
    #[error("internal error")]
    Internal(anyhow::Error),
}

impl ApiError {
    /// A 404 that says no more than that (tracking links, unknown routes).
    pub fn not_found() -> Self {
        ApiError::NotFound("not found".into())
    }

    /// The kind of failure, from which the status follows.
    pub fn kind(&self) -> Kind {
        match self {
            ApiError::BadRequest(_) => Kind::BadRequest,
            ApiError::Unauthorized => Kind::Unauthorised,
            ApiError::Forbidden(_) => Kind::Forbidden,
            ApiError::NotFound(_) => Kind::NotFound,
            ApiError::MethodNotAllowed(_) => Kind::MethodNotAllowed,
            ApiError::Conflict(_) => Kind::Conflict,
            ApiError::Unprocessable { .. } => Kind::Invalid,
            ApiError::Unavailable(_) => Kind::Unavailable,
            ApiError::TooLarge(_) => Kind::TooLarge,
            ApiError::UnsupportedMediaType(_) => Kind::UnsupportedMediaType,
            ApiError::TooManyRequests(_) => Kind::TooManyRequests,
            ApiError::Internal(_) => Kind::Internal,
        }
    }

    /// A failure of `kind` whose message the caller sees (`detail`: the
    /// report behind a refused import). Internal kinds keep `cause` hidden.
    pub fn of_kind(kind: Kind, cause: anyhow::Error, detail: Option<serde_json::Value>) -> Self {
        let message = format!("{cause:#}");
        match kind {
            Kind::BadRequest => ApiError::BadRequest(message),
            Kind::Unauthorised => ApiError::Unauthorized,
            Kind::Forbidden => ApiError::Forbidden(message),
            Kind::NotFound => ApiError::NotFound(message),
            Kind::MethodNotAllowed => ApiError::MethodNotAllowed(message),
            Kind::Conflict => ApiError::Conflict(message),
            Kind::Invalid => ApiError::Unprocessable {
                message,
                body: detail,
            },
            Kind::TooLarge => ApiError::TooLarge(message),
            Kind::UnsupportedMediaType => ApiError::UnsupportedMediaType(message),
            Kind::TooManyRequests => ApiError::TooManyRequests(1),
            Kind::Unavailable => ApiError::Unavailable(message),
            Kind::Internal => ApiError::Internal(cause),
        }
    }
}

/// Any error: its kind is read from its type ([`kind_of`]); without one it is ours.
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::of_kind(kind_of(&e), e, None)
    }
}

/// The HTTP status of each kind of failure, for the API and the admin page.
pub fn status(kind: Kind) -> StatusCode {
    match kind {
        Kind::BadRequest => StatusCode::BAD_REQUEST,
        Kind::Unauthorised => StatusCode::UNAUTHORIZED,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Kind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status(self.kind());
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = %crate::telemetry::scrub(&format!("{e:#}")), "request failed");
        }
        let retry_after = match &self {
            ApiError::TooManyRequests(secs) => Some(*secs),
            _ => None,
        };
        let mut body = serde_json::json!({ "error": self.to_string() });
        if let ApiError::Unprocessable {
            body: Some(detail), ..
        } = self
        {
            body["detail"] = detail;
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Bearer".parse().expect("static header"),
            );
        }
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, secs.into());
        }
        response
    }
}
