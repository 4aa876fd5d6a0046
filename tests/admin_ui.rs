//! The admin web page over plain HTTP (no browser): sessions, CSRF, the
//! security headers, and upload confirmation. tests/browser.rs drives the
//! same pages in Chromium.

mod common;

use chrono::Duration;
use common::admin::{AdminServer, PASSWORD, TOKEN};
use common::app::{launch, person, CAMPAIGN, HEADER};
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
async fn a_completion_is_recorded_from_the_campaign_page_with_its_csrf_token() {
    let s = with_campaign().await;
    s.t.tick_at(launch()).await;
    s.t.clock.set(launch() + Duration::days(3));
    let c = client();
    let (cookie, csrf) = signed_in(&s, &c).await;
    let page = c
        .get(s.url("/admin/campaigns/test"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("action=\"/admin/campaigns/test/completions\""),
        "{page}"
    );
    let post = |form: Vec<(&'static str, String)>| {
        c.post(s.url("/admin/campaigns/test/completions"))
            .header("cookie", &cookie)
            .form(&form)
            .send()
    };
    let ann = || ("email", "ann.lee@hospital.example.org".to_string());
    let date = || ("date", "2027-01-12".to_string());
    let staff = s.t.staff_id("ann.lee@hospital.example.org").await;
    let campaign = s.t.campaign_id("test").await;

    let forged = post(vec![ann(), date()]).await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        s.t.store().completion_state(campaign, staff).await.unwrap(),
        Some(None),
        "a refused form records nothing"
    );
    let done = post(vec![("csrf", csrf.clone()), ann(), date()])
        .await
        .unwrap();

    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        done.headers()["location"],
        "/admin/campaigns/test?notice=completion-recorded"
    );
    assert!(s
        .t
        .store()
        .completion_state(campaign, staff)
        .await
        .unwrap()
        .is_some_and(|c| c.is_some()));
    let future = post(vec![("csrf", csrf), ann(), ("date", "2027-02-01".into())])
        .await
        .unwrap();
    assert_eq!(
        future.headers()["location"],
        "/admin/campaigns/test?notice=completion-bad-date"
    );
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
async fn the_roster_dry_run_page_shows_where_each_column_goes_escaped() {
    let s = with_campaign().await;
    let c = client();
    let (cookie, csrf) = signed_in(&s, &c).await;
    let roster = "Primary Work Email,Legal First Name,<b>Badge</b>,Time Zone\n\
                  bob.ng@hospital.example.org,Bob,7,Lunar Base Time\n";
    let file = reqwest::multipart::Part::bytes(roster.as_bytes().to_vec()).file_name("x.csv");
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf)
        .text("mode", "add")
        .part("file", file);

    let html = c
        .post(s.url("/admin/roster"))
        .header("cookie", &cookie)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert!(
        html.contains("<tr><td>Primary Work Email</td><td>email</td><td></td></tr>"),
        "{html}"
    );
    assert!(
        html.contains("<tr><td>&lt;b&gt;Badge&lt;/b&gt;</td><td>attributes.b_badge_b</td>"),
        "{html}"
    );
    assert!(html.contains("<td class=\"num\">2</td><td>Time Zone</td><td>&quot;Lunar Base Time&quot; is not a time zone"), "{html}");
}

#[tokio::test]
async fn an_old_roster_uploaded_again_is_refused_and_can_be_imported_anyway() {
    let s = with_campaign().await;
    let first = format!(
        "{HEADER}\n{}\n",
        person(1, "Ann", "Lee", "Procurement", "Buyer", "")
    );
    s.t.import(&format!(
        "{HEADER}\n{}\n{}\n",
        person(1, "Ann", "Lee", "Procurement", "Buyer", ""),
        person(2, "Bob", "Ng", "Procurement", "Buyer", "")
    ))
    .await;
    let c = client();
    let (cookie, csrf) = signed_in(&s, &c).await;
    let file = reqwest::multipart::Part::bytes(first.into_bytes()).file_name("january.csv");
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .text("mode", "sync")
        .part("file", file);

    let html = c
        .post(s.url("/admin/roster"))
        .header("cookie", &cookie)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert!(html.contains("this file has the same content as"), "{html}");
    assert!(html.contains("name=\"force\" value=\"true\""), "{html}");
    let bob = || s.t.store().staff_by_email("bob.ng@hospital.example.org");
    assert_eq!(
        bob().await.unwrap().unwrap().active,
        1,
        "nothing written yet"
    );
    let upload = hidden(&html, "upload");
    let applied = c
        .post(s.url("/admin/roster/apply"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("upload", upload.as_str()),
            ("force", "true"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(applied.status(), StatusCode::OK);
    assert!(applied
        .text()
        .await
        .unwrap()
        .contains("The roster is imported."));
    assert_eq!(
        bob().await.unwrap().unwrap().active,
        0,
        "the old file is the roster again"
    );
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

/// The part of the campaign page about one step.
fn step_section<'a>(page: &'a str, step: &str) -> &'a str {
    let start = page
        .find(&format!("data-step=\"{step}\""))
        .unwrap_or_else(|| panic!("no step {step} in {page}"));
    let rest = &page[start..];
    &rest[..rest.find("</article>").unwrap()]
}

async fn page_of(s: &AdminServer, c: &Client, cookie: &str, path: &str) -> (StatusCode, String) {
    let response = c
        .get(s.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn the_campaign_page_shows_each_step_as_of_its_send_time() {
    let s = with_campaign().await;
    let c = client();
    let (cookie, _) = signed_in(&s, &c).await;
    let (status, page) = page_of(&s, &c, &cookie, "/admin/campaigns/test").await;
    assert_eq!(status, StatusCode::OK);
    // Enrolled at the start, due 14 days later: 25 January 2027.
    let last_call = step_section(&page, "last-call");
    assert!(last_call.contains("You have 2 days left"), "{last_call}");
    assert!(last_call.contains("25 January 2027"), "{last_call}");
    let escalation = step_section(&page, "escalation");
    assert!(
        escalation.contains("25 January 2027 (1 day ago)"),
        "{escalation}"
    );
}

#[tokio::test]
async fn the_campaign_page_previews_for_one_person_or_says_why_they_get_nothing() {
    let s = with_campaign().await;
    let roster = format!(
        "{HEADER}\n{}\n{}\n",
        person(
            1,
            "Ann",
            "Lee",
            "Procurement",
            "Buyer",
            "cy.oh@hospital.example.org"
        ),
        person(2, "Cy", "Oh", "Nursing", "Nurse", "")
    );
    s.t.import(&roster).await;
    let c = client();
    let (cookie, _) = signed_in(&s, &c).await;
    let ann = "ann.lee%40hospital.example.org";
    let (_, page) = page_of(&s, &c, &cookie, &format!("/admin/campaigns/test?to={ann}")).await;
    let last_call = step_section(&page, "last-call");
    assert!(
        last_call.contains("Hi Ann") && last_call.contains("You have 2 days left"),
        "{last_call}"
    );
    let frame_path = format!("/admin/campaigns/test/steps/last-call/preview?to={ann}");
    let in_page = frame_path.replace('=', "&#x3D;");
    assert!(last_call.contains(&in_page), "{last_call}");
    let (status, frame) = page_of(&s, &c, &cookie, &frame_path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(frame.contains("Ann"), "{frame}");

    let cy = "cy.oh%40hospital.example.org";
    let (_, page) = page_of(&s, &c, &cookie, &format!("/admin/campaigns/test?to={cy}")).await;
    let announcement = step_section(&page, "announcement");
    assert!(
        announcement.contains("data-nothing")
            && announcement.contains("is not in the audience of campaign test"),
        "{announcement}"
    );
    assert!(!announcement.contains("<iframe"), "{announcement}");
    // Cy manages Ann, who is not enrolled before the start: the digest Cy
    // would get once she is, with her as overdue as she is when it goes out.
    let escalation = step_section(&page, "escalation");
    assert!(
        escalation.contains("Ann Lee") && escalation.contains("25 January 2027 (1 day ago)"),
        "{escalation}"
    );
    let (status, _) = page_of(
        &s,
        &c,
        &cookie,
        &format!("/admin/campaigns/test/steps/announcement/preview?to={cy}"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_roster_page_finds_people_a_page_at_a_time_and_escapes_them() {
    let s = AdminServer::start().await;
    let mut lines: Vec<String> = (1..=60)
        .map(|i| person(i, &format!("Ann{i:02}"), "Lee", "Procurement", "Buyer", ""))
        .collect();
    lines.push(person(61, "Zed", "Oh", "R&D <Lab>", "Chemist", ""));
    lines.push(person(62, "Gone", "Away", "Procurement", "Buyer", ""));
    s.t.import(&format!("{HEADER}\n{}\n", lines.join("\n")))
        .await;
    lines.pop();
    s.t.import_with(
        &format!("{HEADER}\n{}\n", lines.join("\n")),
        ambassador::roster::ImportMode::Sync,
        true,
    )
    .await;
    let c = client();
    let (cookie, _) = signed_in(&s, &c).await;

    let (status, first) = page_of(&s, &c, &cookie, "/admin/roster").await;
    assert_eq!(status, StatusCode::OK);
    assert!(first.contains("data-total=\"61\""), "{first}");
    assert_eq!(first.matches("<tr data-person=").count(), 50);
    assert!(
        first.contains("/admin/roster?q&#x3D;&amp;page&#x3D;2"),
        "{first}"
    );
    let (_, second) = page_of(&s, &c, &cookie, "/admin/roster?q=&page=2").await;
    assert_eq!(second.matches("<tr data-person=").count(), 11);
    assert!(
        !second.contains("gone.away@"),
        "people who left are not listed"
    );

    let (_, found) = page_of(&s, &c, &cookie, "/admin/roster?q=r%26d").await;
    assert!(found.contains("data-total=\"1\""), "{found}");
    assert!(found.contains("R&amp;D &lt;Lab&gt;"), "{found}");
    assert!(!found.contains("<Lab>"), "{found}");
    let (_, by_email) = page_of(&s, &c, &cookie, "/admin/roster?q=ANN07.LEE%40").await;
    assert!(by_email.contains("data-total=\"1\""), "{by_email}");
    let (_, wildcard) = page_of(&s, &c, &cookie, "/admin/roster?q=%25").await;
    assert!(
        wildcard.contains("data-total=\"0\""),
        "a % matches only a %: {wildcard}"
    );
    let (_, hostile) = page_of(&s, &c, &cookie, "/admin/roster?q=%22%3E%3Cscript%3E").await;
    assert!(!hostile.contains("\"><script>"), "{hostile}");
    let (_, with_gone) = page_of(&s, &c, &cookie, "/admin/roster?q=away&inactive=1").await;
    assert!(with_gone.contains("gone.away@"), "{with_gone}");
}

#[tokio::test]
async fn a_web_upload_can_skip_rows_that_cannot_be_read() {
    let s = AdminServer::start().await;
    let c = client();
    let (cookie, csrf) = signed_in(&s, &c).await;
    let roster = format!(
        "{HEADER}\n{}\nE9,Bad,Row,not-an-address,Procurement,Buyer,Main,,\n",
        person(2, "Bob", "Ng", "Procurement", "Buyer", "")
    );
    let upload = |skip: bool| {
        let file = reqwest::multipart::Part::bytes(roster.clone().into_bytes()).file_name("r.csv");
        let mut form = reqwest::multipart::Form::new()
            .text("csrf", csrf.clone())
            .text("mode", "add")
            .part("file", file);
        if skip {
            form = form.text("skip_invalid", "1");
        }
        c.post(s.url("/admin/roster"))
            .header("cookie", &cookie)
            .multipart(form)
            .send()
    };
    let refused = upload(false).await.unwrap().text().await.unwrap();
    assert!(
        refused.contains("Skip rows that cannot be read"),
        "{refused}"
    );
    assert!(!refused.contains("name=\"upload\""), "{refused}");
    let dry = upload(true).await.unwrap().text().await.unwrap();
    assert!(dry.contains("data-count=\"added\">1<"), "{dry}");
    assert!(dry.contains("data-count=\"rejected\">1<"), "{dry}");
    let kept = hidden(&dry, "upload");
    let applied = c
        .post(s.url("/admin/roster/apply"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("upload", kept.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(applied.status(), StatusCode::OK);
    assert!(s
        .t
        .store()
        .staff_by_email("bob.ng@hospital.example.org")
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn the_campaign_page_shows_the_plan_who_is_left_and_who_is_exempt() {
    let s = with_campaign().await;
    let boss = "mia.boss@hospital.example.org";
    let roster = [
        person(1, "Ann", "Lee", "Procurement", "Buyer", boss),
        person(2, "Bob", "Ng", "Supply Chain", "Analyst", boss),
        person(3, "Cy", "Oh", "Nursing", "Nurse", boss),
        person(4, "Dee", "Fox", "Procurement", "Contractor", boss),
        person(5, "Eve", "Kim", "Procurement", "Buyer", boss),
    ];
    s.t.import(&format!("{HEADER}\n{}\n", roster.join("\n")))
        .await;
    s.t.tick_at(common::app::launch()).await;
    let row = ambassador::campaign::find(s.t.store(), "test")
        .await
        .unwrap();
    let eve = ambassador::domain::EmailAddress::parse("eve.kim@hospital.example.org").unwrap();
    ambassador::campaign::exempt(
        s.t.store(),
        &row,
        &eve,
        "<b>on leave</b>",
        0,
        &ambassador::store::exemption::Actor::cli("test"),
    )
    .await
    .unwrap();
    let bob = s.t.staff_id("bob.ng@hospital.example.org").await;
    s.t.store()
        .complete_enrolment(row.id, bob, 0, "test")
        .await
        .unwrap();
    let c = client();
    let (cookie, csrf) = signed_in(&s, &c).await;
    let (_, page) = page_of(&s, &c, &cookie, "/admin/campaigns/test").await;

    assert!(
        page.contains("14 days after each person&#x27;s enrolment"),
        "{page}"
    );
    assert!(
        page.contains("only department: Procurement, Supply Chain")
            || page.contains("only department: Supply Chain, Procurement"),
        "{page}"
    );
    assert!(page.contains("not role: Contractor"), "{page}");
    assert!(page.contains("data-audience-count=\"3\""), "{page}");
    assert!(page.contains("data-fact=\"window\">any time<"), "{page}");
    let announcement = &page[page.find("data-step-row=\"announcement\"").unwrap()..];
    let announcement = &announcement[..announcement.find("</tr>").unwrap()];
    assert!(announcement.contains("data-sent>3<"), "{announcement}");
    let reminder = &page[page.find("data-step-row=\"reminder-1\"").unwrap()..];
    assert!(
        reminder.contains("Monday, 18 January 2027 09:00"),
        "{reminder}"
    );

    assert!(page.contains("data-open-total=\"1\""), "{page}");
    let ann = &page[page.find("data-open=\"ann.lee@").unwrap()..];
    assert!(ann[..ann.find("</tr>").unwrap()].contains(boss), "{ann}");
    assert!(!page.contains("data-open=\"bob.ng@"), "Bob completed");
    assert!(page.contains("data-exempted=\"eve.kim@"), "{page}");
    assert!(page.contains("&lt;b&gt;on leave&lt;/b&gt;"), "{page}");

    // A form that changed nothing reads as an error, not a success.
    let refused = c
        .post(s.url("/admin/campaigns/test/exempt"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "nobody@hospital.example.org"),
            ("reason", "x"),
        ])
        .send()
        .await
        .unwrap();
    let target = refused.headers()["location"].to_str().unwrap().to_string();
    let (_, page) = page_of(&s, &c, &cookie, &target).await;
    assert!(
        page.contains("<p class=\"problem\" role=\"alert\">Nobody in the roster has that address"),
        "{page}"
    );
    assert!(!page.contains("class=\"notice\""), "{page}");
}

#[tokio::test]
async fn cancelled_campaigns_are_marked_in_every_list() {
    let s = with_campaign().await;
    s.t.apply(&CAMPAIGN.replace("slug = \"test\"", "slug = \"live\""))
        .await;
    ambassador::campaign::set_status(
        s.t.store(),
        &s.t.clock,
        "test",
        ambassador::campaign::Status::Cancelled,
    )
    .await
    .unwrap();
    let c = client();
    let (cookie, _) = signed_in(&s, &c).await;
    let (_, dashboard) = page_of(&s, &c, &cookie, "/admin").await;
    let card = |slug: &str| {
        let at = dashboard
            .find(&format!("data-campaign=\"{slug}\""))
            .unwrap();
        dashboard[at..at + 600].to_string()
    };
    assert!(card("test").contains("data-cancelled"), "{}", card("test"));
    assert!(!card("live").contains("data-cancelled"), "{}", card("live"));
    let (_, form) = page_of(&s, &c, &cookie, "/admin/completions").await;
    let group = &form[form
        .find("<optgroup label=\"Cancelled campaigns\">")
        .expect(&form)..];
    assert!(group.contains("value=\"test\""), "{group}");
    assert!(!group.contains("value=\"live\""), "{group}");
    let (_, page) = page_of(&s, &c, &cookie, "/admin/campaigns/test").await;
    assert!(page.contains("This campaign was cancelled"), "{page}");
}

#[tokio::test]
async fn the_campaign_page_lists_exemptions_escaped_and_undoes_one() {
    let s = with_campaign().await;
    let c = client();
    let (cookie, csrf) = signed_in(&s, &c).await;
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        c.post(s.url(path))
            .header("cookie", &cookie)
            .form(&form)
            .send()
    };
    let ann = "ann.lee@hospital.example.org".to_string();
    let reason = "<b>on leave</b>".to_string();
    let r = post(
        "/admin/campaigns/test/exempt",
        vec![
            ("csrf", csrf.clone()),
            ("email", ann.clone()),
            ("reason", reason),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = |c: &Client| {
        c.get(s.url("/admin/campaigns/test"))
            .header("cookie", &cookie)
            .send()
    };
    let html = page(&c).await.unwrap().text().await.unwrap();
    assert!(html.contains("&lt;b&gt;on leave&lt;/b&gt;"), "{html}");
    assert!(!html.contains("<b>on leave"), "the reason is escaped");
    assert!(
        html.contains("shared admin credential (page)"),
        "who exempted: {html}"
    );
    assert!(
        html.contains("action=\"/admin/campaigns/test/unexempt\""),
        "{html}"
    );

    let forged = post(
        "/admin/campaigns/test/unexempt",
        vec![("email", ann.clone()), ("reason", "back".into())],
    )
    .await
    .unwrap();
    assert_eq!(
        forged.status(),
        StatusCode::FORBIDDEN,
        "undo needs the CSRF token"
    );
    let undone = post(
        "/admin/campaigns/test/unexempt",
        vec![("csrf", csrf), ("email", ann), ("reason", "back".into())],
    )
    .await
    .unwrap();
    assert_eq!(undone.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        undone.headers()["location"],
        "/admin/campaigns/test?notice=unexempted"
    );
    let html = page(&c).await.unwrap().text().await.unwrap();
    assert!(html.contains("Nobody is exempted."), "{html}");
    assert!(
        html.contains("<td>removed</td>"),
        "the history keeps the undo: {html}"
    );
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

#[tokio::test]
async fn the_dashboard_lists_the_drop_folders_files_with_their_outcome_escaped() {
    let s = AdminServer::start().await;
    let folder = tempfile::tempdir().unwrap();
    let mut settings = (*s.t.app.settings).clone();
    settings.inbox.dir = folder.path().to_path_buf();
    settings.inbox.settle = ambassador::domain::HumanDuration::parse("1h").unwrap();
    settings.inbox.scan_every = ambassador::domain::HumanDuration::parse("100ms").unwrap();
    let app = &s.t.app;
    let inbox = ambassador::inbox::Inbox::new(
        &settings,
        app.store.clone(),
        app.clock.clone(),
        app.report_mailer.clone(),
        app.composer.sender(),
        app.instance.clone(),
    );
    let mut looks = inbox.looks();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(inbox.run(stop.clone()));
    looks.changed().await.unwrap();
    // A name as an uploader may choose it, markup included.
    let name = "roster <i>June & co.csv";
    let part = folder.path().join("upload.part");
    std::fs::write(
        &part,
        format!("{HEADER}\nE1,Ann,Lee,not-an-address,Nursing,RN,Main,,\n"),
    )
    .unwrap();
    std::fs::rename(&part, folder.path().join(name)).unwrap();
    let rejected = folder.path().join("rejected");
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while std::fs::read_dir(&rejected).unwrap().count() < 2 {
            looks.changed().await.unwrap();
        }
    })
    .await
    .expect("the file is rejected within seconds");
    stop.cancel();
    task.await.unwrap().unwrap();

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
    let start = page.find("data-inbox>").expect("the drop folder section");
    let section = &page[start..start + page[start..].find("</section>").unwrap()];
    assert!(
        section.contains("data-inbox-file=\"roster &lt;i&gt;June &amp; co.csv\""),
        "{section}"
    );
    assert!(!section.contains("<i>June"), "{section}");
    assert!(section.contains("data-outcome=\"rejected\""), "{section}");
    assert!(section.contains("1 row(s) cannot be imported"), "{section}");
    assert!(section.contains("rejected/"), "{section}");
}

#[tokio::test]
async fn the_dashboard_lists_a_bounced_address_with_its_roster_row_escaped() {
    let s = AdminServer::start().await;
    let bob = "bob.ray@hospital.example.org";
    let roster = format!(
        "{HEADER}\n{}\nE2,<b>Bob</b>,Ray,{bob},Procurement,Buyer,Main,,\n",
        person(1, "Ann", "Lee", "Procurement", "Buyer", "")
    );
    s.t.import(&roster).await;
    s.t.apply(CAMPAIGN).await;
    s.t.tick_at(launch()).await;
    let message_id: String =
        sqlx::query_scalar("SELECT message_id FROM outbox WHERE recipient = $1")
            .bind(bob)
            .fetch_one(s.t.store().pool())
            .await
            .unwrap();
    let message =
        s.t.store()
            .bounced_message_by_id(&message_id)
            .await
            .unwrap()
            .expect("the message is found by its Message-ID");
    let effect =
        s.t.store()
            .record_bounce(
                &message,
                &ambassador::store::bounces::NewBounce {
                    received_at: ambassador::clock::to_millis(launch()),
                    kind: ambassador::store::bounces::BounceKind::Hard,
                    status: "5.1.1",
                    diagnostic: "<script>alert(1)</script> unknown user",
                    matched_by: "message_id",
                },
                3,
            )
            .await
            .unwrap();
    assert_eq!(effect, ambassador::store::bounces::BounceEffect::Marked);
    let c = client();
    let (cookie, _) = signed_in(&s, &c).await;

    let (_, dashboard) = page_of(&s, &c, &cookie, "/admin").await;

    let at = dashboard
        .find("<h3>Address bounced</h3>")
        .expect(&dashboard);
    let section = &dashboard[at..dashboard[at..].find("</table>").unwrap() + at];
    assert!(section.contains("<strong>1</strong>"), "{section}");
    assert!(
        section.contains(&format!("data-bounced=\"{bob}\"")),
        "{section}"
    );
    assert!(section.contains("<td>E2</td>"), "the roster row: {section}");
    assert!(
        section.contains("&lt;b&gt;Bob&lt;/b&gt; Ray"),
        "escaped: {section}"
    );
    assert!(section.contains("address bounced (5.1.1)"), "{section}");
    assert!(
        !dashboard.contains("<script>alert(1)"),
        "the diagnostic is escaped"
    );
    assert!(
        dashboard.contains("data-metric=\"reached\">1<"),
        "two reached by the relay, one of them bounced: {dashboard}"
    );
}
