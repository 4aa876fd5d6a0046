//! Who may use which route: one table of every route (method and path as
//! the router matches it) and the least role it needs, enforced by one
//! middleware on the whole router. A route missing from the table is
//! treated as admin-only (fail closed), and `tests/access.rs` walks every
//! route of the router against the table with every role, so a new route
//! without its rule fails there.
//!
//! Callers are identified here too: /api by bearer token (a personal token,
//! or the deprecated shared `admin_token`), /admin by the session cookie.

use super::error::ApiError;
use super::ui::session::{self, SignedIn, COOKIE};
use super::ui::UiError;
use super::AppState;
use crate::accounts::{self, Principal, Role};
use crate::clock::to_millis;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Who sent a request to a route that needs a role, and from where: what
/// handlers record in the audit trail.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub address: std::net::IpAddr,
}

impl Caller {
    pub fn actor(&self) -> crate::audit::Actor {
        crate::audit::Actor::principal(&self.principal, self.address)
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: tracking links, health, the sign-in page, the API's description.
    Public,
    /// A signed-in session or a token whose role allows at least this one.
    Least(Role),
}

use Access::{Least, Public};
const VIEWER: Access = Least(Role::Viewer);
const COORDINATOR: Access = Least(Role::Coordinator);
const ADMIN: Access = Least(Role::Admin);

/// Every route: method, path as matched, and what it needs. HEAD follows GET.
pub const RULES: &[(&str, &str, Access)] = &[
    // Tracking links and the completion confirmation: the staff who got the email.
    ("GET", "/t/o/{file}", Public),
    ("GET", "/t/c/{token}", Public),
    ("GET", "/t/done/{token}", Public),
    ("POST", "/t/done/{token}", Public),
    ("GET", "/healthz", Public),
    ("GET", "/readyz", Public),
    ("GET", "/metrics", Public),
    ("GET", "/api/openapi.json", Public),
    ("GET", "/admin/sign-in", Public),
    ("POST", "/admin/sign-in", Public),
    // Single sign-on: the start, and the identity provider's answer.
    ("GET", "/admin/sign-in/oidc", Public),
    ("GET", "/admin/sign-in/oidc/callback", Public),
    ("GET", "/admin/admin.css", Public),
    // Dashboards and reports: every role.
    ("POST", "/admin/sign-out", VIEWER),
    ("GET", "/admin", VIEWER),
    ("GET", "/admin/campaigns/{slug}", VIEWER),
    ("GET", "/admin/campaigns/{slug}/report.json", VIEWER),
    ("GET", "/admin/campaigns/{slug}/report.csv", VIEWER),
    ("GET", "/api/campaigns", VIEWER),
    ("GET", "/api/campaigns/{slug}", VIEWER),
    ("GET", "/api/reports/{slug}", VIEWER),
    // Rosters, completions, exemptions, campaigns, previews: coordinators.
    ("GET", "/admin/roster", COORDINATOR),
    ("POST", "/admin/roster", COORDINATOR),
    ("POST", "/admin/roster/apply", COORDINATOR),
    ("GET", "/admin/completions", COORDINATOR),
    ("POST", "/admin/completions", COORDINATOR),
    ("POST", "/admin/completions/apply", COORDINATOR),
    (
        "GET",
        "/admin/campaigns/{slug}/steps/{step}/preview",
        COORDINATOR,
    ),
    ("POST", "/admin/campaigns/{slug}/pause", COORDINATOR),
    ("POST", "/admin/campaigns/{slug}/resume", COORDINATOR),
    ("POST", "/admin/campaigns/{slug}/exempt", COORDINATOR),
    ("POST", "/admin/campaigns/{slug}/unexempt", COORDINATOR),
    ("POST", "/admin/campaigns/{slug}/completions", COORDINATOR),
    ("POST", "/api/roster", COORDINATOR),
    ("POST", "/api/completions", COORDINATOR),
    ("POST", "/api/campaigns/{slug}/pause", COORDINATOR),
    ("POST", "/api/campaigns/{slug}/resume", COORDINATOR),
    ("POST", "/api/campaigns/{slug}/completions", COORDINATOR),
    ("GET", "/api/enrolments", COORDINATOR),
    ("GET", "/api/campaigns/{slug}/exemptions", COORDINATOR),
    ("POST", "/api/exemptions", COORDINATOR),
    ("POST", "/api/exemptions/undo", COORDINATOR),
    // Accounts and the audit trail: admins.
    ("GET", "/admin/accounts", ADMIN),
    ("POST", "/admin/accounts", ADMIN),
    ("POST", "/admin/accounts/{id}/disable", ADMIN),
    ("POST", "/admin/accounts/{id}/enable", ADMIN),
    ("POST", "/admin/accounts/{id}/role", ADMIN),
    ("GET", "/admin/audit", ADMIN),
    ("GET", "/admin/audit.csv", ADMIN),
    ("GET", "/admin/audit.json", ADMIN),
    ("GET", "/api/audit", ADMIN),
];

/// The rule for a request; a route the table does not name needs an admin.
pub fn rule(method: &Method, path: &str) -> Access {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    RULES
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map_or(ADMIN, |(_, _, access)| *access)
}

/// Identifies the caller and checks the route's rule. Unmatched paths pass
/// on to the fallbacks (404, 405), which disclose nothing.
pub async fn authorise(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(path) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
    else {
        return next.run(request).await;
    };
    let method = if request.method() == Method::HEAD {
        "GET"
    } else {
        request.method().as_str()
    };
    if !RULES.iter().any(|(m, p, _)| *m == method && *p == path) {
        // A method this path has no rule for: the router has no handler for
        // it either (tests/access.rs checks every handler has a rule), so it
        // answers 405 with Allow, as before any rule.
        return next.run(request).await;
    }
    let needed = match rule(request.method(), &path) {
        Public => return next.run(request).await,
        Least(role) => role,
    };
    let address = state.client(request.extensions(), request.headers());
    if path.starts_with("/api/") {
        match api_caller(&state, request.headers().clone(), address).await {
            Ok(principal) if principal.role().allows(needed) => {
                request
                    .extensions_mut()
                    .insert(Caller { principal, address });
                next.run(request).await
            }
            Ok(principal) => ApiError::Forbidden(refusal(&principal, needed)).into_response(),
            Err(e) => e.into_response(),
        }
    } else {
        match page_caller(&state, request.headers().clone()).await {
            Ok(Some(signed_in)) if signed_in.principal.role().allows(needed) => {
                let principal = signed_in.principal.clone();
                request.extensions_mut().insert(signed_in);
                request
                    .extensions_mut()
                    .insert(Caller { principal, address });
                next.run(request).await
            }
            Ok(Some(signed_in)) => {
                let message = refusal(&signed_in.principal, needed);
                UiError::Refused(crate::problem::Kind::Forbidden, message).into_response()
            }
            Ok(None) => Redirect::to("/admin/sign-in").into_response(),
            Err(e) => UiError::Internal(e).into_response(),
        }
    }
}

/// Why a role is refused, in words.
fn refusal(principal: &Principal, needed: Role) -> String {
    format!(
        "{} has the role {}; this needs {} or above. An admin can change the role.",
        principal.name(),
        principal.role(),
        needed
    )
}

/// Only one deprecation warning per process, not one per request.
static SHARED_WARNED: std::sync::Once = std::sync::Once::new();

/// Logs, once, that the shared credential was used.
pub fn warn_shared() {
    SHARED_WARNED.call_once(|| {
        tracing::warn!("the shared admin credential (security.admin_token / admin_password_hash) was used; it is deprecated: give each person an account and a personal token (`ambassador admin add`, `ambassador admin token create`)");
    });
}

/// Whether `presented` is the configured shared admin token.
pub fn is_shared_token(state: &AppState, presented: &str) -> bool {
    let Some(expected) = state.admin_digest.as_deref() else {
        return false;
    };
    let digest = Sha256::digest(presented.trim().as_bytes());
    bool::from(digest.as_slice().ct_eq(expected))
}

/// The bearer token's principal; wrong tokens count against the client's
/// address (see [`super::limit`]).
async fn api_caller(
    state: &AppState,
    headers: axum::http::HeaderMap,
    client: std::net::IpAddr,
) -> Result<Principal, ApiError> {
    if let Some(wait) = state.auth_failures.blocked(client) {
        return Err(ApiError::TooManyRequests(wait.as_secs().max(1)));
    }
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    if is_shared_token(state, presented) {
        warn_shared();
        return Ok(Principal::Shared);
    }
    let now = to_millis(state.app.clock.now());
    match accounts::token::authenticate(&state.app.store, presented, now).await? {
        Some((_, account)) => Ok(Principal::Account(account)),
        None => {
            state.auth_failures.failed(client);
            tracing::warn!(%client, "API: wrong, expired or revoked bearer token");
            Err(ApiError::Unauthorized)
        }
    }
}

/// The live session the cookie names, if any.
async fn page_caller(
    state: &AppState,
    headers: axum::http::HeaderMap,
) -> anyhow::Result<Option<SignedIn>> {
    let Some(id) = session::cookie(&headers, COOKIE) else {
        return Ok(None);
    };
    let now = to_millis(state.app.clock.now());
    let live = accounts::session::find(&state.app.store, id, now, state.ui.limits).await?;
    Ok(live.map(|l| SignedIn {
        id: l.id,
        csrf: l.csrf,
        principal: l.principal,
    }))
}
