//! Errors of the admin page, shown as a short HTML page. As at the API edge,
//! internal causes are logged once and never shown.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("This form has expired or did not come from this page. Go back, reload the page and try again.")]
    Forbidden,
    #[error("There is nothing here.")]
    NotFound,
    #[error("{0}")]
    TooLarge(String),
    #[error("Something went wrong on our side; the server log has the details.")]
    Internal(#[from] anyhow::Error),
}

impl From<handlebars::RenderError> for UiError {
    fn from(e: handlebars::RenderError) -> Self {
        UiError::Internal(anyhow::anyhow!("cannot render an admin page: {e}"))
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = match &self {
            UiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            UiError::Forbidden => StatusCode::FORBIDDEN,
            UiError::NotFound => StatusCode::NOT_FOUND,
            UiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            UiError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "admin page failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = handlebars::html_escape(&self.to_string());
        let page = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{} | ambassador</title><link rel=\"stylesheet\" href=\"/admin/admin.css\"></head>\
             <body><main id=\"main\" class=\"narrow\"><h1>{}</h1><p>{message}</p>\
             <p><a href=\"/admin\">Back to the dashboard</a></p></main></body></html>",
            status.canonical_reason().unwrap_or("Error"),
            status.canonical_reason().unwrap_or("Error"),
        );
        (status, Html(page)).into_response()
    }
}
