//! Security headers the public side sends: tracking pages are ours alone
//! (no script, no framing, no sniffing, no referrer carrying the token), and
//! HSTS on every response once people reach us over https.

use axum::http::{header, HeaderValue};
use axum::response::Response;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The tracking pages' only style, allowed by its hash (no inline styles otherwise).
pub const TRACKING_CSS: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}button{font-size:1.1rem;padding:.6rem 1.2rem}";

/// Nothing loads, nothing runs, nothing frames us; the form posts back here only.
static TRACKING_CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(TRACKING_CSS));
    let policy = format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&policy).expect("an ASCII policy")
});

/// One year; subdomains are left alone, since other hosts may share the domain.
const HSTS: &str = "max-age=31536000";

/// Headers for every tracking response (pixel, redirects, completion page).
pub async fn tracking(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, TRACKING_CSP.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Strict-Transport-Security on every response.
pub async fn hsts(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static(HSTS),
    );
    response
}
