//! The HTTP side against a running server on a loopback port: tracking
//! routes, the admin API, completions, health and metrics.

mod common;

use base64::Engine;
use chrono::Duration;
use common::app::{launch, person, TestApp, CAMPAIGN, HEADER};
use common::smtp::Received;
use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};
use std::time::Duration as StdDuration;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "correct horse battery staple";
const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";

struct Server {
    t: TestApp,
    base: String,
    client: Client,
    _stop: tokio_util::sync::DropGuard,
}

async fn server() -> Server {
    server_with(|_| {}).await
}

/// A server with the admin token and one more change to the settings.
async fn server_with(tweak: impl FnOnce(&mut ambassador::config::Settings)) -> Server {
    let t = TestApp::spawn_with(Default::default(), |s| {
        s.security.admin_token = ambassador::config::Secret::new(TOKEN);
        tweak(s);
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    t.app.spawn_http(listener, stop.clone());
    let client = Client::builder()
        .redirect(Policy::none())
        .user_agent(PHONE)
        .build()
        .unwrap();
    Server {
        t,
        base,
        client,
        _stop: stop.drop_guard(),
    }
}

fn team() -> String {
    format!(
        "{HEADER}\n{}\n{}\n",
        person(
            1,
            "Ann",
            "Lee",
            "Procurement",
            "Buyer",
            "mia.boss@hospital.example.org"
        ),
        person(
            2,
            "Bob",
            "Ng",
            "Procurement",
            "Buyer",
            "mia.boss@hospital.example.org"
        )
    )
}

/// Launches the campaign, delivers the announcements, and moves an hour on
/// so hits no longer look like scanners reacting to delivery.
async fn announced() -> (Server, Vec<Received>) {
    let s = server().await;
    s.t.import(&team()).await;
    s.t.apply(CAMPAIGN).await;
    s.t.tick_at(launch()).await;
    let mail = s.t.smtp.wait_for(2, StdDuration::from_secs(10)).await;
    s.t.clock.set(launch() + Duration::hours(1));
    (s, mail)
}

/// The first tracked URL in a message's HTML with this path prefix, made local.
fn link(s: &Server, m: &Received, prefix: &str) -> String {
    let html = m.parsed().body_html(0).unwrap().to_string();
    let public = format!("https://ambassador.hospital.example.org/t/{prefix}/");
    let start = html
        .find(&public)
        .unwrap_or_else(|| panic!("no /t/{prefix}/ link in {html}"));
    let rest = &html[start..];
    let url = &rest[..rest.find('"').unwrap()];
    url.replace("https://ambassador.hospital.example.org", &s.base)
        .replace("&amp;", "&")
}

fn to(mail: &[Received], who: &str) -> Received {
    mail.iter()
        .find(|m| m.recipients[0].starts_with(who))
        .cloned()
        .unwrap()
}

async fn events(s: &Server) -> Vec<(String, String, i64)> {
    sqlx::query_as("SELECT kind, ua_class, machine FROM events ORDER BY id")
        .fetch_all(s.t.store().pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_pixel_is_a_gif_and_records_exactly_one_human_open() {
    let (s, mail) = announced().await;
    let response = s
        .client
        .get(link(&s, &to(&mail, "ann"), "o"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/gif");
    assert!(response.bytes().await.unwrap().starts_with(b"GIF89a"));
    assert_eq!(events(&s).await, vec![("open".into(), "human".into(), 0)]);
}

#[tokio::test]
async fn a_click_redirects_only_to_the_campaigns_own_url() {
    let (s, mail) = announced().await;
    let url = link(&s, &to(&mail, "ann"), "c");
    for attempt in [
        url.clone(),
        format!("{url}?url=https://evil.example.com/"),
        format!("{url}?next=//evil.example.com"),
    ] {
        let response = s.client.get(&attempt).send().await.unwrap();
        assert!(
            response.status().is_redirection(),
            "{attempt}: {}",
            response.status()
        );
        assert_eq!(
            response.headers()["location"],
            "https://train.example.org/course/1"
        );
    }
    assert_eq!(
        events(&s).await.iter().filter(|e| e.0 == "click").count(),
        3
    );
}

#[tokio::test]
async fn forged_truncated_and_rewritten_tokens_get_404_and_record_nothing() {
    let (s, mail) = announced().await;
    let pixel = link(&s, &to(&mail, "ann"), "o");
    let click = link(&s, &to(&mail, "ann"), "c");
    let token = click.rsplit('/').next().unwrap().to_string();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut bytes = engine.decode(&token).unwrap();
    bytes[7] ^= 1; // point Ann's signed token at the neighbouring message (Bob's)
    let rewritten = engine.encode(&bytes);
    let mut flipped = token.clone().into_bytes();
    flipped[token.len() - 1] = if flipped[token.len() - 1] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let attempts = [
        click.replace(&token, &rewritten),
        click.replace(&token, std::str::from_utf8(&flipped).unwrap()),
        click.replace(&token, &token[..token.len() - 4]),
        click.replace(&token, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        pixel.replace("/t/o/", "/t/c/").replace(".gif", ""), // an open token on the click route
        click.replace("/t/c/", "/t/o/") + ".gif",            // a click token as a pixel
    ];
    for url in attempts {
        assert_eq!(
            s.client.get(&url).send().await.unwrap().status(),
            StatusCode::NOT_FOUND,
            "{url}"
        );
    }
    assert!(events(&s).await.is_empty());
}

#[tokio::test]
async fn scanners_and_image_proxies_are_recorded_as_machine_events() {
    let (s, mail) = announced().await;
    let click = link(&s, &to(&mail, "ann"), "c");
    let head = s.client.head(&click).send().await.unwrap();
    assert!(head.status().is_redirection());
    let proxy =
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
    s.client
        .get(link(&s, &to(&mail, "bob"), "o"))
        .header("user-agent", proxy)
        .send()
        .await
        .unwrap();
    // A hit seconds after delivery is a link scanner, whatever it calls itself.
    s.t.clock.set(launch() + Duration::seconds(2));
    s.client
        .get(link(&s, &to(&mail, "bob"), "c"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        events(&s).await,
        vec![
            ("click".into(), "scanner".into(), 1),
            ("open".into(), "proxy".into(), 1),
            ("click".into(), "scanner".into(), 1)
        ]
    );
}

#[tokio::test]
async fn self_attested_completion_records_only_on_the_pages_post() {
    let s = server().await;
    s.t.import(&team()).await;
    s.t.apply(&CAMPAIGN.replace(
        "send_window = \"always\"",
        "send_window = \"always\"\ncompletion_link = true",
    ))
    .await;
    s.t.tick_at(launch()).await;
    let mail = s.t.smtp.wait_for(2, StdDuration::from_secs(10)).await;
    let done = link(&s, &to(&mail, "ann"), "done");
    let page = s.client.get(&done).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("<form method=\"post\">"));
    let campaign = s.t.campaign_id("test").await;
    let ann = s.t.staff_id("ann.lee@hospital.example.org").await;
    assert_eq!(
        s.t.store().completion_state(campaign, ann).await.unwrap(),
        Some(None),
        "a GET records nothing"
    );
    assert_eq!(
        s.client.post(&done).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert!(matches!(
        s.t.store().completion_state(campaign, ann).await.unwrap(),
        Some(Some(_))
    ));
    let (_, sent) = s.t.tick().await;
    assert_eq!(sent.sent, 1, "the thank-you goes out on the next tick");
}

#[tokio::test]
async fn admin_routes_refuse_a_missing_or_wrong_token() {
    let s = server().await;
    let url = format!("{}/api/campaigns", s.base);
    assert_eq!(
        s.client.get(&url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.client
            .get(&url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let ok = s.client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let body: serde_json::Value = ok.json().await.unwrap();
    assert!(body.is_array());
    let error: serde_json::Value = s
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(error["error"].as_str().unwrap().contains("bearer token"));
}

#[tokio::test]
async fn pause_and_enrolment_listing_over_the_api() {
    let (s, _) = announced().await;
    let pause = s
        .client
        .post(format!("{}/api/campaigns/test/pause", s.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(pause.status(), StatusCode::OK);
    let shown: serde_json::Value = s
        .client
        .get(format!("{}/api/campaigns/test", s.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["status"], "paused");
    let open: Vec<serde_json::Value> = s
        .client
        .get(format!(
            "{}/api/enrolments?campaign=test&status=open",
            s.base
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(open.len(), 2);
    let missing = s
        .client
        .post(format!("{}/api/campaigns/nope/pause", s.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

/// The CLI's JSON report for the same file, against its own fresh database.
fn cli_import(csv: &str, dry_run: bool) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("roster.csv");
    std::fs::write(&file, csv).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ambassador"));
    cmd.args([
        "roster",
        "import",
        file.to_str().unwrap(),
        "--format",
        "json",
    ])
    .env(
        "AMBASSADOR__DATABASE__URL",
        format!("sqlite://{}", dir.path().join("cli.db").display()),
    );
    if dry_run {
        cmd.arg("--dry-run");
    }
    let out = cmd.output().unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

fn comparable(mut report: serde_json::Value) -> serde_json::Value {
    // The API lists at most 100 of each kind; the CLI every row.
    for volatile in ["file", "import_id", "listed_at_most"] {
        report[volatile] = serde_json::Value::Null;
    }
    report
}

#[tokio::test]
async fn a_roster_uploaded_over_the_api_gives_the_same_result_as_the_cli() {
    let s = server().await;
    let bad = format!(
        "{}\nnot-an-email,Zed,Q,Procurement\n",
        team()
            .trim_end()
            .lines()
            .map(|l| l.split(',').take(5).collect::<Vec<_>>().join(","))
            .collect::<Vec<_>>()
            .join("\n")
            .replace(
                "Employee ID,First Name,Last Name,Email,Department",
                "Email,First Name,Last Name,Employee ID,Department"
            )
    );
    for (csv, dry_run) in [(team(), true), (bad, false), (team(), false)] {
        let url = format!("{}/api/roster?dry_run={dry_run}", s.base);
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(csv.clone().into_bytes()).file_name("roster.csv"),
        );
        let response = s
            .client
            .post(&url)
            .bearer_auth(TOKEN)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        let api = if status == StatusCode::OK {
            body
        } else {
            body["detail"].clone()
        };
        assert_eq!(
            comparable(api),
            comparable(cli_import(&csv, dry_run)),
            "status {status}"
        );
    }
    let raw = s
        .client
        .post(format!("{}/api/roster?dry_run=true", s.base))
        .bearer_auth(TOKEN)
        .header("content-type", "text/csv")
        .body(team())
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::OK, "a plain CSV body works too");
}

#[tokio::test]
async fn completion_reports_match_unmatch_deduplicate_and_refuse_malformed_rows() {
    let (s, _) = announced().await;
    s.t.clock.set(launch() + Duration::days(14));
    let url = format!("{}/api/completions?campaign=test", s.base);
    let post = |body: String| {
        s.client
            .post(&url)
            .bearer_auth(TOKEN)
            .header("content-type", "text/csv")
            .body(body)
            .send()
    };
    let malformed = "Email,Completion Date\nann.lee@hospital.example.org,soon\n".to_string();
    let refused = post(malformed).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["detail"]["malformed"][0]["line"], 2);
    let report = "First Name,Last Name,Email,Completion Date,Status\n\
                  Ann,Lee,ann.lee@hospital.example.org,01/20/2027,Completed\n\
                  Ann,Lee,ann.lee@hospital.example.org,01/21/2027,Completed\n\
                  Bob,Ng,,2027-01-19,In Progress\n\
                  Zoe,Stranger,zoe@elsewhere.example.org,2027-01-19,Completed\n\
                  Bob,Ng,,2027-01-19,Completed\n";
    let first: serde_json::Value = post(report.into()).await.unwrap().json().await.unwrap();
    assert_eq!(
        (
            first["matched"].as_u64(),
            first["newly_completed"].as_u64(),
            first["duplicates"].as_u64(),
            first["not_completed"].as_u64()
        ),
        (Some(2), Some(2), Some(1), Some(1))
    );
    assert_eq!(first["unmatched"][0]["line"], 5);
    assert!(first["unmatched"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("no one in the roster"));
    let again: serde_json::Value = post(report.into()).await.unwrap().json().await.unwrap();
    assert_eq!(
        (
            again["newly_completed"].as_u64(),
            again["already_completed"].as_u64()
        ),
        (Some(0), Some(2)),
        "re-importing changes nothing"
    );
}

#[tokio::test]
async fn one_completion_is_recorded_by_hand_over_the_api() {
    let (s, _) = announced().await;
    s.t.clock.set(launch() + Duration::days(14));
    let url = format!("{}/api/campaigns/test/completions", s.base);
    let post = |body: serde_json::Value| s.client.post(&url).bearer_auth(TOKEN).json(&body).send();

    let done =
        post(serde_json::json!({ "email": "ann.lee@hospital.example.org", "date": "2027-01-20" }))
            .await
            .unwrap();

    assert_eq!(done.status(), StatusCode::OK);
    let body: serde_json::Value = done.json().await.unwrap();
    assert_eq!(
        (body["recorded"].as_bool(), body["campaign"].as_str()),
        (Some(true), Some("test"))
    );
    let again: serde_json::Value =
        post(serde_json::json!({ "email": "ann.lee@hospital.example.org", "date": "2027-01-21" }))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(again["recorded"], false, "the first completion stands");
    let future =
        post(serde_json::json!({ "email": "ann.lee@hospital.example.org", "date": "2027-03-01" }))
            .await
            .unwrap();
    assert_eq!(future.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error: serde_json::Value = future.json().await.unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap_or_default()
            .contains("is in the future"),
        "{error}"
    );
}

#[tokio::test]
async fn health_readiness_metrics_and_openapi_answer() {
    let (s, _) = announced().await;
    assert_eq!(
        s.client
            .get(format!("{}/healthz", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.client
            .get(format!("{}/readyz", s.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ready\n"
    );
    let metrics = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ambassador_messages{status=\"sent\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ambassador_http_requests_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ambassador_send_seconds_count{outcome=\"accepted\"} 2"),
        "send latency is measured: {metrics}"
    );
    let spec: serde_json::Value = s
        .client
        .get(format!("{}/api/openapi.json", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        spec["paths"]["/api/roster"].is_object(),
        "the spec documents the roster upload"
    );
}

/// The base64 SHA-256 that a CSP `style-src 'sha256-…'` names for the page's one <style>.
fn style_hash(page: &str) -> String {
    use sha2::Digest;
    let css = &page[page.find("<style>").unwrap() + 7..page.find("</style>").unwrap()];
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(css.as_bytes()))
}

#[tokio::test]
async fn tracking_responses_forbid_sniffing_scripts_and_framing() {
    let s = server().await;
    s.t.import(&team()).await;
    s.t.apply(&CAMPAIGN.replace(
        "send_window = \"always\"",
        "send_window = \"always\"\ncompletion_link = true",
    ))
    .await;
    s.t.tick_at(launch()).await;
    let mail = s.t.smtp.wait_for(2, StdDuration::from_secs(10)).await;
    let ann = to(&mail, "ann");
    for prefix in ["o", "c", "done"] {
        let response = s.client.get(link(&s, &ann, prefix)).send().await.unwrap();
        let h = response.headers().clone();
        assert_eq!(h["x-content-type-options"], "nosniff", "/t/{prefix}/");
        assert_eq!(h["x-frame-options"], "DENY", "/t/{prefix}/");
        assert_eq!(h["referrer-policy"], "no-referrer", "/t/{prefix}/");
        let csp = h["content-security-policy"].to_str().unwrap().to_string();
        for part in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(part), "/t/{prefix}/: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        if prefix == "done" {
            let page = response.text().await.unwrap();
            assert!(
                !page.contains("style=\""),
                "no inline style attributes: {page}"
            );
            let allowed = format!("style-src 'sha256-{}'", style_hash(&page));
            assert!(
                csp.contains(&allowed),
                "the page's own style is allowed: {csp}"
            );
        }
    }
}

#[tokio::test]
async fn every_response_sends_hsts_when_public_url_is_https_and_none_otherwise() {
    let https =
        server_with(|s| s.http.public_url = "https://ambassador.hospital.example.org".into()).await;
    let plain = server_with(|s| s.http.public_url = "http://127.0.0.1:8080".into()).await;
    for path in [
        "/healthz",
        "/api/campaigns",
        "/api/openapi.json",
        "/admin/sign-in",
        "/t/o/forged.gif",
        "/nowhere",
    ] {
        let response = https
            .client
            .get(format!("{}{path}", https.base))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response
                .headers()
                .get("strict-transport-security")
                .map(|v| v.to_str().unwrap()),
            Some("max-age=31536000"),
            "{path} ({})",
            response.status()
        );
        let response = plain
            .client
            .get(format!("{}{path}", plain.base))
            .send()
            .await
            .unwrap();
        assert!(
            response
                .headers()
                .get("strict-transport-security")
                .is_none(),
            "{path} over http"
        );
    }
}

/// Sends `head` on a raw connection and returns what the server answers
/// (the connection is left open: no body follows the headers).
fn raw_answer(base: &str, head: &str) -> (String, StdDuration) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(StdDuration::from_secs(20)))
        .unwrap();
    let started = std::time::Instant::now();
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&answer).contains("}") {
            break;
        }
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

/// POSTs to `path` a body declared over the limit, then one sent chunked
/// that runs over it: both get 413 with the JSON error naming the key, the
/// declared one at once, before a byte of it is read.
async fn assert_upload_over_the_limit_gets_413(path: &str, chunk: &str) {
    let s = server_with(|s| s.roster.max_file_bytes = 1000).await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: text/csv\r\nContent-Length: 60000000\r\n\r\n"
    );
    let base = s.base.clone();
    let (answer, took) = tokio::task::spawn_blocking(move || raw_answer(&base, &head))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(took < StdDuration::from_secs(5), "answered after {took:?}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("roster.max_file_bytes"),
        "{json}"
    );

    // Undeclared (chunked): cut off once the streamed body passes the limit.
    let chunked = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let base = s.base.clone();
    let (answer, _) = tokio::task::spawn_blocking(move || raw_answer(&base, &chunked))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("roster.max_file_bytes"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_over_the_limit_gets_413_with_the_json_error_at_once() {
    assert_upload_over_the_limit_gets_413("/api/roster?dry_run=true", &"x".repeat(2000)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_completions_upload_over_the_limit_gets_413_with_the_json_error() {
    let rows = "someone@hospital.example.org,2026-01-01\n".repeat(60);
    assert_upload_over_the_limit_gets_413("/api/completions?campaign=test", &rows).await;
}

#[tokio::test]
async fn a_roster_dry_run_over_the_api_lists_the_first_100_problems_and_counts_the_rest() {
    let s = server().await;
    let mut csv = String::from("Email,First Name,Department\n");
    for i in 0..250 {
        csv.push_str(&format!("p{i}@hospital.example.org,P{i},Procurement\n"));
    }
    let upload = |csv: String| {
        s.client
            .post(format!("{}/api/roster?dry_run=true", s.base))
            .bearer_auth(TOKEN)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
    };
    let fine: serde_json::Value = upload(csv.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(fine["counts"]["added"], 250);
    assert_eq!(fine["changes"].as_array().unwrap().len(), 100);
    assert_eq!(fine["listed_at_most"], 100);
    assert_eq!(fine["changes"][0]["email"], "p0@hospital.example.org");

    for i in 0..150 {
        csv.push_str(&format!("bad-address-{i},B{i},Procurement\n"));
    }
    let refused = upload(csv).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let detail = &refused.json::<serde_json::Value>().await.unwrap()["detail"];
    assert_eq!(detail["counts"]["rejected"], 150);
    let listed = detail["rejected"].as_array().unwrap();
    assert_eq!(listed.len(), 100);
    assert_eq!(listed[0]["line"], 252, "the first problems, in line order");
}
