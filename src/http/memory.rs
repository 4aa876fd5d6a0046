//! Giving memory back after a large upload. Reading a 50 MB roster takes a
//! few hundred thousand small allocations spread over glibc's per-thread
//! arenas; freed, they stay resident unless the allocator is asked to trim.

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

/// Bodies above this size (or of unknown size) are followed by a trim.
const LARGE_BODY: usize = 1024 * 1024;

/// Runs the request, then returns free heap pages to the system when its
/// body was large.
pub async fn give_back_after_large_bodies(request: Request, next: Next) -> Response {
    let large = large_body(request.headers());
    let response = next.run(request).await;
    if large {
        trim();
    }
    response
}

fn large_body(headers: &axum::http::HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING) || super::declared_over(headers, LARGE_BODY)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim takes no pointers and only releases free pages; it
    // is thread-safe in glibc.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
