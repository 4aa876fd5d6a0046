//! Every way a request to /api can be wrong, as a client sends it to a
//! running server: each answer has the status of its kind, a JSON content
//! type and the documented body `{"error": ..., "detail"?: ...}`, and its
//! status is one docs/openapi.json lists for the operation. Runs on SQLite,
//! and on PostgreSQL when AMBASSADOR_TEST_PG is set.

mod common;

use common::app::{TestApp, CAMPAIGN};
use reqwest::{Client, Method, StatusCode};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "correct horse battery staple";
const UPLOAD_LIMIT: u64 = 2_000;

/// One bad request and what must come back.
struct Case {
    method: Method,
    path: &'static str,
    content_type: Option<&'static str>,
    body: String,
    token: bool,
    status: StatusCode,
    /// Part of the message in `error`.
    says: &'static str,
    /// The operation in docs/openapi.json whose responses must list `status`
    /// (none for a path or method the spec does not have).
    documented_as: Option<(&'static str, &'static str)>,
}

fn case(method: Method, path: &'static str, status: StatusCode, says: &'static str) -> Case {
    Case {
        method,
        path,
        content_type: None,
        body: String::new(),
        token: true,
        status,
        says,
        documented_as: None,
    }
}

impl Case {
    fn json(mut self, body: &str) -> Self {
        self.content_type = Some("application/json");
        self.body = body.to_string();
        self
    }
    fn body(mut self, content_type: &'static str, body: String) -> Self {
        self.content_type = Some(content_type);
        self.body = body;
        self
    }
    fn without_token(mut self) -> Self {
        self.token = false;
        self
    }
    fn documented(mut self, path: &'static str, method: &'static str) -> Self {
        self.documented_as = Some((path, method));
        self
    }
}

fn table() -> Vec<Case> {
    use StatusCode as S;
    let exemption = ("/api/exemptions", "post");
    let long_reason = format!(
        r#"{{"email":"ann@hospital.example.org","campaign":"test","reason":"{}"}}"#,
        "x".repeat(70_000)
    );
    let csv = "Employee ID,Email\n1,ann@hospital.example.org\n".to_string();
    vec![
        case(
            Method::POST,
            "/api/exemptions",
            S::BAD_REQUEST,
            "the body is not valid JSON",
        )
        .json(r#"{"email": "#)
        .documented(exemption.0, exemption.1),
        case(
            Method::POST,
            "/api/exemptions",
            S::UNPROCESSABLE_ENTITY,
            "the body must be a JSON object, not an array",
        )
        .json("[]")
        .documented(exemption.0, exemption.1),
        case(
            Method::POST,
            "/api/exemptions",
            S::UNPROCESSABLE_ENTITY,
            "missing field `reason`",
        )
        .json(r#"{"email":"ann@hospital.example.org","campaign":"test"}"#)
        .documented(exemption.0, exemption.1),
        case(
            Method::POST,
            "/api/exemptions",
            S::UNPROCESSABLE_ENTITY,
            "field \"reason\": invalid type: integer `7`",
        )
        .json(r#"{"email":"ann@hospital.example.org","campaign":"test","reason":7}"#)
        .documented(exemption.0, exemption.1),
        case(
            Method::POST,
            "/api/exemptions",
            S::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type: application/json",
        )
        .body(
            "text/plain",
            r#"{"email":"a@b.org","campaign":"test","reason":"x"}"#.into(),
        )
        .documented(exemption.0, exemption.1),
        case(
            Method::POST,
            "/api/exemptions",
            S::PAYLOAD_TOO_LARGE,
            "larger than 65536 bytes",
        )
        .body("application/json", long_reason)
        .documented(exemption.0, exemption.1),
        case(Method::POST, "/api/exemptions", S::NOT_FOUND, "not found")
            .json(r#"{"email":"ann@hospital.example.org","campaign":"nope","reason":"on leave"}"#)
            .documented(exemption.0, exemption.1),
        case(
            Method::POST,
            "/api/exemptions",
            S::UNPROCESSABLE_ENTITY,
            "nobody in the roster has the address",
        )
        .json(r#"{"email":"nobody@hospital.example.org","campaign":"test","reason":"on leave"}"#)
        .documented(exemption.0, exemption.1),
        case(
            Method::GET,
            "/api/enrolments?status=nope",
            S::BAD_REQUEST,
            "expected one of: open, overdue",
        )
        .documented("/api/enrolments", "get"),
        case(
            Method::GET,
            "/api/enrolments?campaign=a&campaign=b",
            S::BAD_REQUEST,
            "query string",
        )
        .documented("/api/enrolments", "get"),
        case(
            Method::POST,
            "/api/roster?dry_run=1",
            S::BAD_REQUEST,
            "dry_run",
        )
        .body("text/csv", csv.clone())
        .documented("/api/roster", "post"),
        case(
            Method::POST,
            "/api/roster?mode=replace",
            S::BAD_REQUEST,
            "expected one of: sync, add",
        )
        .body("text/csv", csv.clone())
        .documented("/api/roster", "post"),
        case(
            Method::POST,
            "/api/roster",
            S::PAYLOAD_TOO_LARGE,
            "roster.max_file_bytes",
        )
        .body("text/csv", "x".repeat(UPLOAD_LIMIT as usize + 1))
        .documented("/api/roster", "post"),
        case(
            Method::POST,
            "/api/completions?campaign=nope",
            S::UNPROCESSABLE_ENTITY,
            "no campaign with slug \"nope\"",
        )
        .body("text/csv", "Email,Status,Completion Date\n".into())
        .documented("/api/completions", "post"),
        case(
            Method::POST,
            "/api/campaigns/old/resume",
            S::CONFLICT,
            "campaign \"old\" was cancelled and cannot be resumed",
        )
        .documented("/api/campaigns/{slug}/resume", "post"),
        case(
            Method::POST,
            "/api/campaigns/old/pause",
            S::CONFLICT,
            "was cancelled",
        )
        .documented("/api/campaigns/{slug}/pause", "post"),
        case(
            Method::GET,
            "/api/campaigns/nope",
            S::NOT_FOUND,
            "not found",
        )
        .documented("/api/campaigns/{slug}", "get"),
        case(Method::GET, "/api/reports/%FF", S::BAD_REQUEST, "UTF-8")
            .documented("/api/reports/{slug}", "get"),
        case(
            Method::GET,
            "/api/campaigns",
            S::UNAUTHORIZED,
            "bearer token",
        )
        .without_token()
        .documented("/api/campaigns", "get"),
        case(Method::GET, "/api/nowhere", S::NOT_FOUND, "not found"),
        case(
            Method::DELETE,
            "/api/campaigns",
            S::METHOD_NOT_ALLOWED,
            "does not take the DELETE method",
        ),
        case(
            Method::PUT,
            "/api/openapi.json",
            S::METHOD_NOT_ALLOWED,
            "does not take the PUT method",
        ),
    ]
}

/// The statuses docs/openapi.json lists for one operation.
fn documented_statuses(spec: &serde_json::Value, path: &str, method: &str) -> Vec<String> {
    spec["paths"][path][method]["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("the spec has no {method} {path}"))
        .keys()
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_request_gets_its_status_and_the_documented_json_error() {
    let t = TestApp::spawn_with(Default::default(), |s| {
        s.security.admin_token = ambassador::config::Secret::new(TOKEN);
        s.roster.max_file_bytes = UPLOAD_LIMIT;
    })
    .await;
    t.apply(CAMPAIGN).await;
    t.apply(&CAMPAIGN.replace("slug = \"test\"", "slug = \"old\""))
        .await;
    ambassador::campaign::set_status(
        t.store(),
        &t.clock,
        "old",
        ambassador::campaign::Status::Cancelled,
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    t.app.spawn_http(listener, stop);
    let client = Client::new();
    let spec: serde_json::Value =
        serde_json::from_str(include_str!("../docs/openapi.json")).unwrap();

    for c in table() {
        let what = format!("{} {}", c.method, c.path);
        let mut request = client.request(c.method.clone(), format!("{base}{}", c.path));
        if c.token {
            request = request.bearer_auth(TOKEN);
        }
        if let Some(content_type) = c.content_type {
            request = request.header("content-type", content_type).body(c.body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        assert_eq!(status, c.status, "{what}: {text}");
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert_eq!(content_type, "application/json", "{what}: {text}");
        let body: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
        let object = body.as_object().unwrap_or_else(|| panic!("{what}: {text}"));
        assert!(
            object.keys().all(|k| k == "error" || k == "detail"),
            "{what}: only error and detail: {text}"
        );
        let error = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: {text}"));
        assert!(
            error.contains(c.says),
            "{what}: {error:?} lacks {:?}",
            c.says
        );
        assert!(
            !error.contains("Request") && !error.contains("struct"),
            "{what}: names no Rust type: {error}"
        );
        if status == StatusCode::METHOD_NOT_ALLOWED {
            let allow = headers.get("allow").and_then(|v| v.to_str().ok());
            assert!(
                allow.is_some_and(|a| a.contains("GET")),
                "{what}: Allow lists the methods: {allow:?}"
            );
        }
        if let Some((path, method)) = c.documented_as {
            let listed = documented_statuses(&spec, path, method);
            assert!(
                listed.contains(&status.as_str().to_string()),
                "{what}: docs/openapi.json lists {listed:?} for {method} {path}, not {status}"
            );
        }
    }
    assert!(
        t.store().list_staff(true).await.unwrap().is_empty(),
        "no bad request changed anything"
    );
}

/// A request that outlives `http.request_timeout` (here a body that stops
/// arriving) gets 408 with the same JSON error body, naming the setting.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_that_times_out_gets_408_with_the_json_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = TestApp::spawn_with(Default::default(), |s| {
        s.security.admin_token = ambassador::config::Secret::new(TOKEN);
        s.http.request_timeout = ambassador::domain::HumanDuration::parse("1s").unwrap();
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    t.app.spawn_http(listener, stop);

    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/roster HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: text/csv\r\nContent-Length: 1000\r\nConnection: close\r\n\r\nEmail\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The rest of the body never comes; the server answers when its timer ends.
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("content-type: application/json"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let body: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {answer}"));
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("http.request_timeout (1s)")),
        "{body}"
    );
}
