//! Admin page sessions live in the database: every instance accepts the
//! same cookie, a restart keeps it, signing out ends it everywhere, and the
//! idle and absolute limits end it. The process test runs two real `serve`
//! instances on one PostgreSQL database (skipped with the reason printed
//! when none answers; AMBASSADOR_REQUIRE_PG=1 makes it mandatory).

mod common;

use ambassador::accounts::Role;
use chrono::Duration;
use common::admin::{account, no_redirect_client, session_cookie, sign_in_form, AdminServer};
use common::admin::{hidden_value, PASSWORD};
use common::app::{postgres_or_skip, TestDb};
use common::process::{ambassador as command, serve, terminate};
use reqwest::StatusCode;
use std::io::Write;
use std::process::Stdio;
use tokio_util::sync::CancellationToken;

/// The status of the dashboard for `cookie` at `base`.
async fn dashboard(c: &reqwest::Client, base: &str, cookie: &str) -> StatusCode {
    c.get(format!("{base}/admin"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
}

/// A second instance of the server on the same database and clock.
async fn second_instance(s: &AdminServer) -> (String, CancellationToken) {
    let settings = s.t.app.settings.as_ref().clone();
    let clock: ambassador::clock::SharedClock = std::sync::Arc::new(s.t.clock.clone());
    let app = ambassador::App::build(settings, clock).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    app.spawn_http(listener, stop.clone());
    (base, stop)
}

#[tokio::test]
async fn two_instances_share_a_session_and_sign_out_ends_it_on_both() {
    let s = AdminServer::start().await;
    let (other, stop) = second_instance(&s).await;
    let c = no_redirect_client();
    account(&s, "ann@hospital.example.org", Role::Coordinator).await;
    let signed = sign_in_form(&s.base, &c, "ann@hospital.example.org", PASSWORD).await;
    let cookie = session_cookie(&signed).unwrap();
    assert_eq!(dashboard(&c, &s.base, &cookie).await, StatusCode::OK);
    assert_eq!(dashboard(&c, &other, &cookie).await, StatusCode::OK);
    // The page from the other instance carries the same CSRF token: a form
    // shown by one instance is accepted by the other.
    let page = c
        .get(format!("{other}/admin"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let csrf = hidden_value(&page.text().await.unwrap(), "csrf");
    let out = c
        .post(s.url("/admin/sign-out"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(dashboard(&c, &other, &cookie).await, StatusCode::SEE_OTHER);
    assert_eq!(dashboard(&c, &s.base, &cookie).await, StatusCode::SEE_OTHER);
    assert_eq!(s.t.store().session_count().await.unwrap(), 0);
    stop.cancel();
}

#[tokio::test]
async fn a_session_ends_when_idle_or_at_its_absolute_limit() {
    let s = AdminServer::start().await;
    let c = no_redirect_client();
    account(&s, "ann@hospital.example.org", Role::Viewer).await;
    let sign_in = || async {
        let r = sign_in_form(&s.base, &c, "ann@hospital.example.org", PASSWORD).await;
        session_cookie(&r).unwrap()
    };
    // Idle: 30 minutes without a request (security.session_idle_timeout).
    let idle = sign_in().await;
    s.t.clock.advance(Duration::minutes(29));
    assert_eq!(dashboard(&c, &s.base, &idle).await, StatusCode::OK);
    s.t.clock.advance(Duration::minutes(29));
    assert_eq!(
        dashboard(&c, &s.base, &idle).await,
        StatusCode::OK,
        "each request moves the idle limit"
    );
    s.t.clock.advance(Duration::minutes(31));
    assert_eq!(dashboard(&c, &s.base, &idle).await, StatusCode::SEE_OTHER);
    // Absolute: 12 hours after sign-in, however busy (security.session_lifetime).
    let busy = sign_in().await;
    for _ in 0..((12 * 60) / 20 - 1) {
        s.t.clock.advance(Duration::minutes(20));
        assert_eq!(dashboard(&c, &s.base, &busy).await, StatusCode::OK);
    }
    s.t.clock.advance(Duration::minutes(20));
    assert_eq!(dashboard(&c, &s.base, &busy).await, StatusCode::SEE_OTHER);
    // Expired sessions left behind are purged.
    let forgotten = sign_in().await;
    s.t.clock.advance(Duration::hours(1));
    let limits = ambassador::accounts::session::limits(&s.t.app.settings.security);
    let now = ambassador::clock::to_millis(ambassador::clock::Clock::now(&s.t.clock));
    assert!(s.t.store().purge_sessions(now, limits).await.unwrap() >= 1);
    assert_eq!(s.t.store().session_count().await.unwrap(), 0);
    assert_eq!(
        dashboard(&c, &s.base, &forgotten).await,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn disabling_an_account_ends_its_sessions_and_revokes_its_tokens() {
    let s = AdminServer::start().await;
    let c = no_redirect_client();
    let ann = account(&s, "ann@hospital.example.org", Role::Coordinator).await;
    let token = common::admin::token_for(&s, &ann).await;
    let cookie = session_cookie(&sign_in_form(&s.base, &c, &ann.email, PASSWORD).await).unwrap();
    let now = ambassador::clock::to_millis(ambassador::clock::Clock::now(&s.t.clock));
    assert!(s.t.store().disable_account(ann.id, now).await.unwrap());
    assert_eq!(dashboard(&c, &s.base, &cookie).await, StatusCode::SEE_OTHER);
    let api = c
        .get(s.url("/api/campaigns"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    let again = sign_in_form(&s.base, &c, &ann.email, PASSWORD).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let s = AdminServer::start().await;
    let ann = account(&s, "ann@hospital.example.org", Role::Viewer).await;
    let token = common::admin::token_for(&s, &ann).await;
    let c = reqwest::Client::new();
    let ok = c
        .get(s.url("/api/campaigns"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    s.t.clock.advance(Duration::days(31));
    let late = c
        .get(s.url("/api/campaigns"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), StatusCode::UNAUTHORIZED);
}

/// A free loopback port (bound, then released for `serve` to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `serve` at `base` answers /readyz, or fails the test.
async fn ready(base: &str) {
    for _ in 0..300 {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await {
            if r.status() == StatusCode::OK {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{base} never became ready");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_serve_processes_on_one_postgresql_accept_the_same_cookie_and_a_restart_keeps_it() {
    let Some(admin_url) = postgres_or_skip("the shared-session process test").await else {
        return;
    };
    let db = TestDb::postgres(&admin_url).await;
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port()];
    let config_of = |n: usize| {
        let path = dir.path().join(format!("instance-{n}.toml"));
        let text = format!(
            "[database]\nurl = \"{}\"\n[http]\nbind = \"127.0.0.1:{}\"\npublic_url = \"http://127.0.0.1\"\n\
             [security]\ntoken_key_file = \"{}\"\n[smtp]\ntransport = \"file\"\n",
            db.url,
            ports[n],
            dir.path().join("token.key").display()
        );
        std::fs::write(&path, text).unwrap();
        path
    };
    let configs = [config_of(0), config_of(1)];
    let mut add = command(
        &configs[0],
        &[
            "admin",
            "add",
            "ann@hospital.example.org",
            "--role",
            "admin",
            "--password-stdin",
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    let out = add.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = |n: usize| dir.path().join(format!("instance-{n}.log"));
    let mut instances = vec![serve(&configs[0], &log(0)), serve(&configs[1], &log(1))];
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    for base in &bases {
        ready(base).await;
    }
    let c = no_redirect_client();
    let signed = sign_in_form(
        &bases[0],
        &c,
        "ann@hospital.example.org",
        "a long enough password",
    )
    .await;
    let cookie = session_cookie(&signed).expect("instance 0 signs in");
    assert_eq!(dashboard(&c, &bases[0], &cookie).await, StatusCode::OK);
    assert_eq!(
        dashboard(&c, &bases[1], &cookie).await,
        StatusCode::OK,
        "instance 1 accepts instance 0's cookie"
    );
    // Restart instance 1: the session is still there.
    assert!(terminate(&mut instances[1]), "instance 1 exits cleanly");
    instances[1] = serve(&configs[1], &log(1));
    ready(&bases[1]).await;
    assert_eq!(
        dashboard(&c, &bases[1], &cookie).await,
        StatusCode::OK,
        "a restart keeps the session"
    );
    // A cookie nobody issued is refused by both.
    let forged =
        "ambassador_session=0000000000000000000000000000000000000000000000000000000000000000";
    assert_eq!(
        dashboard(&c, &bases[1], forged).await,
        StatusCode::SEE_OTHER
    );
    for mut instance in instances {
        assert!(terminate(&mut instance));
    }
}
