//! Errors of the admin page, shown as a short HTML page. The status comes
//! from the same mapping as the API's (`http::error::status`); as there,
//! internal causes are logged once and never shown.

use crate::problem::{kind_of, Kind};
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
    /// A failure the library classified as the caller's, with its message.
    #[error("{1}")]
    Refused(Kind, String),
    #[error("Something went wrong on our side; the server log has the details.")]
    Internal(anyhow::Error),
}

impl UiError {
    pub fn kind(&self) -> Kind {
        match self {
            UiError::BadRequest(_) => Kind::BadRequest,
            UiError::Forbidden => Kind::Forbidden,
            UiError::NotFound => Kind::NotFound,
            UiError::TooLarge(_) => Kind::TooLarge,
            UiError::Refused(kind, _) => *kind,
            UiError::Internal(_) => Kind::Internal,
        }
    }
}

/// Any error: shown when its type says it is the caller's, else ours.
impl From<anyhow::Error> for UiError {
    fn from(e: anyhow::Error) -> Self {
        match kind_of(&e) {
            Kind::Internal => UiError::Internal(e),
            kind => UiError::Refused(kind, format!("{e:#}")),
        }
    }
}

impl From<handlebars::RenderError> for UiError {
    fn from(e: handlebars::RenderError) -> Self {
        UiError::Internal(anyhow::anyhow!("cannot render an admin page: {e}"))
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = super::super::error::status(self.kind());
        if let UiError::Internal(e) = &self {
            tracing::error!(error = %format!("{e:#}"), "admin page failed");
        }
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
