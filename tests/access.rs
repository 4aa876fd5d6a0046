//! Every route of the router, for every role (and nobody), against the
//! expected allow/deny table. The routes are read from the router's source
//! (`.route("PATH", get(..).post(..))` under src/http/), so a route added
//! without a row here fails `the_table_names_every_route_of_the_router`,
//! and a row whose rule in `http::access` differs fails the walk.

mod common;

use ambassador::accounts::Role;
use common::admin::{account, no_redirect_client, session_cookie, sign_in_form, token_for};
use common::admin::{AdminServer, PASSWORD};
use common::app::{person, CAMPAIGN, HEADER};
use reqwest::StatusCode;
use std::collections::BTreeSet;
use std::path::Path;

/// Who may use a route: nobody signed in, or at least this role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Public,
    Viewer,
    Coordinator,
    Admin,
}

use Needs::{Admin, Coordinator, Public, Viewer};

/// The expected table: method, path as the router matches it, what it needs.
const TABLE: &[(&str, &str, Needs)] = &[
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
    ("GET", "/admin/sign-in/oidc", Public),
    ("GET", "/admin/sign-in/oidc/callback", Public),
    ("GET", "/admin/admin.css", Public),
    ("POST", "/admin/sign-out", Viewer),
    ("GET", "/admin", Viewer),
    ("GET", "/admin/campaigns/{slug}", Viewer),
    ("GET", "/admin/campaigns/{slug}/report.json", Viewer),
    ("GET", "/admin/campaigns/{slug}/report.csv", Viewer),
    ("GET", "/api/campaigns", Viewer),
    ("GET", "/api/campaigns/{slug}", Viewer),
    ("GET", "/api/reports/{slug}", Viewer),
    ("GET", "/admin/roster", Coordinator),
    ("POST", "/admin/roster", Coordinator),
    ("POST", "/admin/roster/apply", Coordinator),
    ("GET", "/admin/completions", Coordinator),
    ("POST", "/admin/completions", Coordinator),
    ("POST", "/admin/completions/apply", Coordinator),
    (
        "GET",
        "/admin/campaigns/{slug}/steps/{step}/preview",
        Coordinator,
    ),
    ("POST", "/admin/campaigns/{slug}/pause", Coordinator),
    ("POST", "/admin/campaigns/{slug}/resume", Coordinator),
    ("POST", "/admin/campaigns/{slug}/exempt", Coordinator),
    ("POST", "/admin/campaigns/{slug}/unexempt", Coordinator),
    ("POST", "/admin/campaigns/{slug}/completions", Coordinator),
    ("POST", "/api/roster", Coordinator),
    ("POST", "/api/completions", Coordinator),
    ("POST", "/api/campaigns/{slug}/pause", Coordinator),
    ("POST", "/api/campaigns/{slug}/resume", Coordinator),
    ("POST", "/api/campaigns/{slug}/completions", Coordinator),
    ("GET", "/api/enrolments", Coordinator),
    ("GET", "/api/campaigns/{slug}/exemptions", Coordinator),
    ("POST", "/api/exemptions", Coordinator),
    ("POST", "/api/exemptions/undo", Coordinator),
    ("GET", "/admin/accounts", Admin),
    ("POST", "/admin/accounts", Admin),
    ("POST", "/admin/accounts/{id}/disable", Admin),
    ("POST", "/admin/accounts/{id}/enable", Admin),
    ("POST", "/admin/accounts/{id}/role", Admin),
    ("GET", "/admin/audit", Admin),
    ("GET", "/admin/audit.csv", Admin),
    ("GET", "/admin/audit.json", Admin),
    ("GET", "/api/audit", Admin),
];

/// Where each router file's routes are nested (src/http/mod.rs).
fn prefix_of(file: &Path) -> &'static str {
    let name = file.to_string_lossy();
    if name.contains("/ui/") {
        "/admin"
    } else if name.ends_with("api.rs") {
        "/api"
    } else {
        ""
    }
}

/// Every (method, path) the router's source registers.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let mut files = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut routes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let prefix = prefix_of(&file);
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            let call = &rest[at + ".route(".len()..];
            let end = closing_paren(call);
            let args = &call[..end];
            let path = args.split('"').nth(1).expect("a route's path literal");
            let path = match (prefix, path) {
                ("", p) => p.to_string(),
                (pre, "/") => pre.to_string(),
                (pre, p) => format!("{pre}{p}"),
            };
            for (word, method) in [
                ("get(", "GET"),
                ("post(", "POST"),
                ("put(", "PUT"),
                ("delete(", "DELETE"),
                ("patch(", "PATCH"),
            ] {
                let found = args.match_indices(word).any(|(i, _)| {
                    i == 0
                        || !args.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && args.as_bytes()[i - 1] != b'_'
                });
                if found {
                    routes.insert((method.to_string(), path.clone()));
                }
            }
            rest = &call[end..];
        }
    }
    routes
}

/// The index of the parenthesis closing a call whose '(' was just read.
fn closing_paren(text: &str) -> usize {
    let mut depth = 1;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    panic!("an unclosed .route( call")
}

#[test]
fn the_table_names_every_route_of_the_router() {
    let source = routes_in_source();
    assert!(
        source.len() > 30,
        "the scan found too few routes: {source:?}"
    );
    let table: BTreeSet<(String, String)> = TABLE
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = source.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in this table (and a rule in src/http/access.rs): {missing:?}"
    );
    let stale: Vec<_> = table.difference(&source).collect();
    assert!(
        stale.is_empty(),
        "rows for routes the router no longer has: {stale:?}"
    );
}

/// A concrete path for a route pattern.
fn concrete(pattern: &str, account_id: i64) -> String {
    pattern
        .replace("{slug}", "test")
        .replace("{step}", "announcement")
        .replace("{id}", &account_id.to_string())
        .replace("{file}", "nothing.gif")
        .replace("{token}", "nothing")
}

/// Whether the answer is the access layer's refusal (not the handler's own
/// answer, such as a form without its CSRF token).
async fn refused(path: &str, response: reqwest::Response) -> bool {
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.text().await.unwrap_or_default();
    if status == StatusCode::UNAUTHORIZED {
        return path.starts_with("/api/");
    }
    if status == StatusCode::SEE_OTHER && location.as_deref() == Some("/admin/sign-in") {
        return true;
    }
    status == StatusCode::FORBIDDEN && body.contains("has the role")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_allows_exactly_the_roles_its_rule_names() {
    let s = AdminServer::start().await;
    s.t.import(&format!(
        "{HEADER}\n{}\n",
        person(1, "Ann", "Lee", "Procurement", "Buyer", "")
    ))
    .await;
    s.t.apply(CAMPAIGN).await;
    let c = no_redirect_client();
    let target = account(&s, "target@hospital.example.org", Role::Viewer).await;
    let mut callers: Vec<(Option<Role>, Option<String>, Option<String>)> = vec![(None, None, None)];
    for role in [Role::Viewer, Role::Coordinator, Role::Admin] {
        let email = format!("{role}@hospital.example.org");
        let a = account(&s, &email, role).await;
        let token = token_for(&s, &a).await;
        let signed = sign_in_form(&s.base, &c, &email, PASSWORD).await;
        let cookie = session_cookie(&signed).expect("the account signs in");
        callers.push((Some(role), Some(cookie), Some(token)));
    }
    let mut wrong = Vec::new();
    for (method, pattern, needs) in TABLE {
        let path = concrete(pattern, target.id);
        for (role, cookie, token) in &callers {
            let allowed = match (needs, role) {
                (Public, _) => true,
                (_, None) => false,
                (Viewer, Some(_)) => true,
                (Coordinator, Some(r)) => r.allows(Role::Coordinator),
                (Admin, Some(r)) => r.allows(Role::Admin),
            };
            let mut request = match *method {
                "GET" => c.get(s.url(&path)),
                _ => c.post(s.url(&path)),
            };
            if let Some(cookie) = cookie {
                request = request.header("cookie", cookie);
            }
            if let (Some(token), true) = (token, path.starts_with("/api/")) {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let was_refused = refused(&path, response).await;
            if was_refused == allowed {
                wrong.push(format!(
                    "{method} {path} as {role:?}: {status}, expected {}",
                    if allowed { "allowed" } else { "refused" }
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The walk signed nobody out and disabled nobody: every POST without its
    // CSRF token was refused by its handler.
    let target = s.t.store().account_by_id(target.id).await.unwrap().unwrap();
    assert!(!target.disabled());
}

#[tokio::test]
async fn a_viewer_sees_no_upload_form_and_the_api_refuses_their_post() {
    let s = AdminServer::start().await;
    s.t.apply(CAMPAIGN).await;
    let c = no_redirect_client();
    let viewer = account(&s, "cno@hospital.example.org", Role::Viewer).await;
    let signed = sign_in_form(&s.base, &c, &viewer.email, PASSWORD).await;
    let cookie = session_cookie(&signed).unwrap();
    let dashboard = c
        .get(s.url("/admin"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(dashboard.status(), StatusCode::OK);
    let html = dashboard.text().await.unwrap();
    assert!(
        !html.contains("href=\"/admin/roster\""),
        "no roster link for a viewer"
    );
    assert!(html.contains("cno@hospital.example.org (viewer)"));
    let campaign = c
        .get(s.url("/admin/campaigns/test"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!campaign.contains("/pause\""), "no pause form for a viewer");
    assert!(
        !campaign.contains("/exempt\""),
        "no exemption form for a viewer"
    );
    let roster = c
        .get(s.url("/admin/roster"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(roster.status(), StatusCode::FORBIDDEN);
    assert!(!roster.text().await.unwrap().contains("type=\"file\""));
    let token = token_for(&s, &viewer).await;
    let post = c
        .post(s.url("/api/roster"))
        .bearer_auth(&token)
        .body(format!("{HEADER}\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = post.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("viewer"), "{body}");
    let read = c
        .get(s.url("/api/campaigns"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
}
