//! The admin web page over plain HTTP (no browser): sessions, CSRF, the
//! security headers, and upload confirmation. tests/browser.rs drives the
//! same pages in Chromium.

mod common;

use chrono::Duration;
use common::admin::{AdminServer, PASSWORD, TOKEN};
use common::app::{person, CAMPAIGN, HEADER};
use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode};

fn client() -> Client {
    Client::builder().redirect(Policy::none()).build().unwrap()
}

/// The value of a `name=value` cookie set by the response.
fn set_cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_string())
}

/// The `value` of the first hidden input named `name` in a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

/// Signs in with `password`; returns the response to the sign-in post.
async fn sign_in_with(s: &AdminServer, c: &Client, password: &str) -> Response {
    let form = c.get(s.url("/admin/sign-in")).send().await.unwrap();
    let pre = set_cookie(&form, "ambassador_sign_in").expect("the form sets its cookie");
    let token = hidden(&form.text().await.unwrap(), "csrf");
    c.post(s.url("/admin/sign-in"))
        .header("cookie", format!("ambassador_sign_in={pre}"))
        .form(&[("csrf", token.as_str()), ("password", password)])
        .send()
        .await
        .unwrap()
}

/// A signed-in session: (cookie header, CSRF token).
async fn signed_in(s: &AdminServer, c: &Client) -> (String, String) {
    let response = sign_in_with(s, c, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = format!(
        "ambassador_session={}",
        set_cookie(&response, "ambassador_session").unwrap()
    );
    let page = c
        .get(s.url("/admin"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = hidden(&page.text().await.unwrap(), "csrf");
    (cookie, csrf)
}

async fn with_campaign() -> AdminServer {
    let s = AdminServer::start().await;
    let roster = format!(
        "{HEADER}\n{}\n",
        person(1, "Ann", "Lee", "Procurement", "Buyer", "")
    );
    s.t.import(&roster).await;
    s.t.apply(CAMPAIGN).await;
    s
}

async fn status(s: &AdminServer) -> String {
    s.t.store()
        .campaign_by_slug("test")
        .await
        .unwrap()
        .unwrap()
        .status
        .to_string()
}

#[tokio::test]
async fn pages_send_a_visitor_without_a_session_to_sign_in() {
    let s = with_campaign().await;
    let c = client();
    for path in [
        "/admin",
        "/admin/roster",
        "/admin/campaigns/test",
        "/admin/campaigns/test/report.csv",
    ] {
        let r = c.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers()["location"], "/admin/sign-in", "{path}");
    }
    let forged = c
        .post(s.url("/admin/campaigns/test/pause"))
        .header("cookie", "ambassador_session=0123456789abcdef")
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::SEE_OTHER);
    assert_eq!(status(&s).await, "active");
}

#[tokio::test]
async fn an_expired_session_is_sent_to_sign_in() {
    let s = with_campaign().await;
    let c = client();
    let (cookie, _) = signed_in(&s, &c).await;
    s.t.clock.advance(Duration::hours(13));
    let r = c
        .get(s.url("/admin"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/admin/sign-in");
}

#[tokio::test]
async fn a_form_with_a_missing_or_wrong_csrf_token_is_refused() {
    let s = with_campaign().await;
    let c = client();
    let (cookie, csrf) = signed_in(&s, &c).await;
    let pause = |form: Vec<(&'static str, String)>| {
        c.post(s.url("/admin/campaigns/test/pause"))
            .header("cookie", &cookie)
            .form(&form)
            .send()
    };
    assert_eq!(pause(vec![]).await.unwrap().status(), StatusCode::FORBIDDEN);
    let wrong = pause(vec![("csrf", "f".repeat(64))]).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(status(&s).await, "active", "a refused form changes nothing");
    let right = pause(vec![("csrf", csrf)]).await.unwrap();
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(status(&s).await, "paused");
}

#[tokio::test]
async fn an_upload_without_the_csrf_token_is_refused() {
    let s = with_campaign().await;
    let c = client();
    let (cookie, _) = signed_in(&s, &c).await;
    let file = reqwest::multipart::Part::bytes(HEADER.as_bytes().to_vec()).file_name("r.csv");
    let form = reqwest::multipart::Form::new()
        .text("mode", "add")
        .part("file", file);
    let r = c
        .post(s.url("/admin/roster"))
        .header("cookie", &cookie)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn sign_in_needs_its_own_anti_forgery_token_and_the_right_password() {
    let s = AdminServer::start().await;
    let c = client();
    let forged = c
        .post(s.url("/admin/sign-in"))
        .form(&[("csrf", "abc"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let wrong = sign_in_with(&s, &c, "not the password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&wrong, "ambassador_session").is_none());
    let token = sign_in_with(&s, &c, TOKEN).await;
    assert_eq!(
        token.status(),
        StatusCode::SEE_OTHER,
        "the API token works as a password"
    );
    let cookie = token
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("ambassador_session="))
        .unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_the_preview_is_sandboxed() {
    let s = with_campaign().await;
    let c = client();
    let (cookie, _) = signed_in(&s, &c).await;
    let page = c
        .get(s.url("/admin/campaigns/test"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let frame = c
        .get(s.url("/admin/campaigns/test/steps/announcement/preview"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(frame.status(), StatusCode::OK);
    assert!(frame.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("sandbox"));
    assert_eq!(frame.headers()["x-frame-options"], "SAMEORIGIN");
    assert!(frame.text().await.unwrap().contains("SOAR"));
}

#[tokio::test]
async fn a_confirmed_roster_applies_what_was_previewed_once() {
    let s = with_campaign().await;
    let c = client();
    let (cookie, csrf) = signed_in(&s, &c).await;
    let roster = format!(
        "{HEADER}\n{}\n",
        person(2, "Bob", "Ng", "Procurement", "Buyer", "")
    );
    let file = reqwest::multipart::Part::bytes(roster.into_bytes()).file_name("add.csv");
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .text("mode", "add")
        .part("file", file);
    let preview = c
        .post(s.url("/admin/roster"))
        .header("cookie", &cookie)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status(), StatusCode::OK);
    let html = preview.text().await.unwrap();
    assert!(html.contains("data-count=\"added\">1<"), "{html}");
    assert!(
        s.t.store()
            .staff_by_email("bob.ng@hospital.example.org")
            .await
            .unwrap()
            .is_none(),
        "a dry run writes nothing"
    );
    let upload = hidden(&html, "upload");
    let apply = || {
        c.post(s.url("/admin/roster/apply"))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str()), ("upload", upload.as_str())])
            .send()
    };
    assert_eq!(apply().await.unwrap().status(), StatusCode::OK);
    assert!(s
        .t
        .store()
        .staff_by_email("bob.ng@hospital.example.org")
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        apply().await.unwrap().status(),
        StatusCode::BAD_REQUEST,
        "an upload applies once"
    );
}

/// A client whose connections come from `address` (127.0.0.0/8 is all loopback).
fn client_from(address: [u8; 4]) -> Client {
    Client::builder()
        .redirect(Policy::none())
        .local_address(std::net::IpAddr::from(address))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_flood_of_wrong_passwords_from_one_address_never_locks_out_another() {
    let s = AdminServer::start().await;
    let (attacker, admin) = (client_from([127, 0, 0, 1]), client_from([127, 0, 0, 2]));
    // Only failures count: many right sign-ins in a row are all let in.
    for _ in 0..12 {
        assert_eq!(
            sign_in_with(&s, &admin, PASSWORD).await.status(),
            StatusCode::SEE_OTHER
        );
    }
    let guesses = (0..12).map(|i| {
        let (s, attacker) = (&s, &attacker);
        async move {
            sign_in_with(s, attacker, &format!("guess {i}"))
                .await
                .status()
        }
    });
    let statuses = futures::future::join_all(guesses).await;
    assert!(statuses.contains(&StatusCode::UNAUTHORIZED), "{statuses:?}");
    let flooded = sign_in_with(&s, &attacker, PASSWORD).await;
    assert_eq!(
        flooded.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the flooding address waits"
    );
    let api = |c: &Client, token: &str| c.get(s.url("/api/campaigns")).bearer_auth(token).send();
    let refused = api(&attacker, TOKEN).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));

    assert_eq!(
        sign_in_with(&s, &admin, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        sign_in_with(&s, &admin, TOKEN).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(api(&admin, TOKEN).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn wrong_api_tokens_are_limited_per_address_and_never_block_the_right_one_elsewhere() {
    let s = AdminServer::start().await;
    let (attacker, admin) = (client_from([127, 0, 0, 1]), client_from([127, 0, 0, 2]));
    let api = |c: &Client, token: &str| c.get(s.url("/api/campaigns")).bearer_auth(token).send();
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(
            api(&attacker, &format!("guess {i}"))
                .await
                .unwrap()
                .status(),
        );
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
    assert_eq!(statuses[11], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    assert_eq!(api(&admin, TOKEN).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        sign_in_with(&s, &admin, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_upload_declared_over_the_limit_gets_413_at_once() {
    use std::io::{Read, Write};
    let s = AdminServer::start().await;
    let (cookie, _) = signed_in(&s, &client()).await;
    let address = s.base.trim_start_matches("http://").to_string();
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let head = format!(
            "POST /admin/roster HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\
             Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 900000000\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        let mut answer = vec![0u8; 64];
        let n = stream.read(&mut answer).unwrap_or(0);
        String::from_utf8_lossy(&answer[..n]).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
}

/// A campaign whose audience matches nobody active carries a warning on the
/// dashboard; one that matches people says how many.
#[tokio::test]
async fn the_dashboard_warns_of_a_campaign_whose_audience_matches_nobody() {
    let s = with_campaign().await;
    let nobody = CAMPAIGN
        .replace("slug = \"test\"", "slug = \"nobody\"")
        .replace(
            "department = [\"Supply Chain\", \"Procurement\"]",
            "department = [\"Nursing\"]",
        );
    s.t.apply_with(&nobody, false, true).await.unwrap();
    let c = client();
    let (cookie, _) = signed_in(&s, &c).await;
    let page = c
        .get(s.url("/admin"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let section = |slug: &str| {
        let start = page.find(&format!("data-campaign=\"{slug}\"")).unwrap();
        let rest = &page[start..];
        rest[..rest.find("</section>").unwrap()].to_string()
    };
    assert!(
        section("nobody").contains("data-warning=\"empty-audience\""),
        "{page}"
    );
    let matched = section("test");
    assert!(
        !matched.contains("data-warning")
            && matched.contains("Active people the audience matches: 1."),
        "{matched}"
    );
}
