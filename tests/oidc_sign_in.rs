//! Sign-in through a real OpenID Connect provider (oidc-provider on
//! loopback, tests/oidc/), driven over HTTP as a browser would: the start
//! redirect, the provider's login page, the callback. Then every refusal:
//! a state that is not this sign-in's, no pending sign-in, an address
//! outside the allowed domains, an unverified address, nobody's account
//! when accounts are not created at sign-in, a disabled account, the
//! provider's own refusal (its words shown escaped), a wrong client secret.
//! And the role: the groups claim mapped, written to the account, audited.
//!
//! Without node or the package the tests say why and pass, unless
//! AMBASSADOR_REQUIRE_OIDC=1 (CI).

mod common;

use ambassador::accounts::Role;
use ambassador::store::AuditOutcome;
use common::admin::AdminServer;
use common::oidc::{provider_available, SsoServer};
use reqwest::{header, redirect, Client, StatusCode, Url};

/// A browser's cookie jar, without following redirects: each hop is checked.
fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(r: &reqwest::Response) -> Url {
    let to = r
        .headers()
        .get(header::LOCATION)
        .unwrap_or_else(|| panic!("no Location in a {} answer", r.status()))
        .to_str()
        .unwrap();
    r.url().join(to).unwrap()
}

/// Starts a sign-in at ambassador and signs in as `login` at the provider;
/// returns the callback URL the provider sent the browser back to (not
/// yet visited).
async fn through_provider(s: &SsoServer, c: &Client, login: &str) -> Url {
    let start = c.get(s.url("/admin/sign-in/oidc")).send().await.unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let pending = start
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("ambassador_oidc="))
        .expect("the pending sign-in cookie");
    assert!(
        pending.contains("HttpOnly") && pending.contains("SameSite=Lax"),
        "{pending}"
    );
    let mut url = location(&start);
    assert!(url.as_str().starts_with(&s.provider.issuer), "{url}");
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(!query["state"].is_empty() && !query["nonce"].is_empty());
    for _ in 0..10 {
        if url.as_str().starts_with(&s.base) {
            return url;
        }
        let r = c.get(url.clone()).send().await.unwrap();
        if r.status() == StatusCode::OK && url.path().starts_with("/interaction/") {
            // The provider's login page: submit it.
            let action = url.join(&format!("{}/login", url.path())).unwrap();
            let r = c
                .post(action)
                .form(&[("login", login)])
                .send()
                .await
                .unwrap();
            assert!(r.status().is_redirection(), "{}", r.status());
            url = location(&r);
            continue;
        }
        assert!(
            r.status().is_redirection(),
            "{url}: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
        url = location(&r);
    }
    panic!("the provider never sent the browser back");
}

/// The callback's answer: status, whether a session started, the page.
async fn answer(c: &Client, callback: Url) -> (StatusCode, Option<String>, String) {
    let r = c.get(callback).send().await.unwrap();
    let (status, cookie) = (r.status(), session_cookie(&r));
    (status, cookie, r.text().await.unwrap())
}

fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("ambassador_session=") && !v.starts_with("ambassador_session=;"))
}

#[tokio::test]
async fn a_person_signs_in_through_the_provider_and_reaches_the_dashboard() {
    if !provider_available() {
        return;
    }
    let s = SsoServer::start(|_| {}).await;
    let c = browser();
    let page = c.get(s.url("/admin/sign-in")).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(
        page.contains("href=\"/admin/sign-in/oidc\">Sign in with Hospital Login</a>"),
        "{page}"
    );
    let callback = through_provider(&s, &c, "carol").await;
    assert_eq!(callback.path(), ambassador::config::CALLBACK_PATH);
    let (status, session, onward) = answer(&c, callback).await;
    assert_eq!(status, StatusCode::OK, "{onward}");
    let cookie = session.expect("a session starts");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(onward.contains("url=/admin\""), "{onward}");
    let dashboard = c.get(s.url("/admin")).send().await.unwrap();
    assert_eq!(dashboard.status(), StatusCode::OK);
    let dashboard = dashboard.text().await.unwrap();
    assert!(dashboard.contains("Dashboard"), "{dashboard}");
    // Made at first sign-in, with the role its groups claim maps to.
    assert!(
        dashboard.contains("carol.coord@hospital.example.org (coordinator)"),
        "{dashboard}"
    );
    let account = account(&s, "carol.coord@hospital.example.org").await;
    assert_eq!(account.role, Role::Coordinator);
    assert_eq!(account.created_by, "sign-in");
    assert!(account.password_hash.is_none());
    let entries = audit(&s, "account.add").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].target, "carol.coord@hospital.example.org");
    let sign_ins = audit(&s, "sign_in").await;
    assert_eq!(sign_ins.len(), 1, "{sign_ins:?}");
    assert_eq!(sign_ins[0].outcome, AuditOutcome::Success);
    assert!(
        sign_ins[0].detail.contains("openid connect"),
        "{sign_ins:?}"
    );
    // A coordinator reaches the roster page.
    let roster = c.get(s.url("/admin/roster")).send().await.unwrap();
    assert_eq!(roster.status(), StatusCode::OK);
}

async fn account(s: &SsoServer, email: &str) -> ambassador::accounts::Account {
    ambassador::accounts::find_by_email(s.t.store(), email)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no account for {email}"))
}

async fn audit(s: &SsoServer, action: &str) -> Vec<ambassador::store::audit::EntryRow> {
    let filter = ambassador::store::audit::EntryFilter {
        action: action.into(),
        limit: 100,
        ..Default::default()
    };
    s.t.store().audit_entries(&filter).await.unwrap()
}

/// An account as an admin adds it (`ambassador admin add`), with no password.
async fn add_account(s: &SsoServer, email: &str, role: Role) -> ambassador::accounts::Account {
    let email = ambassador::domain::EmailAddress::parse(email).unwrap();
    ambassador::accounts::create(s.t.store(), &email, role, None, "root", 0)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_role_claim_decides_the_role_at_every_sign_in_and_nothing_maps_to_the_default() {
    if !provider_available() {
        return;
    }
    let s = SsoServer::start(|_| {}).await;
    // Added as a viewer; the provider says she is in the admins' group.
    add_account(&s, "alice.admin@hospital.example.org", Role::Viewer).await;
    let c = browser();
    let callback = through_provider(&s, &c, "alice").await;
    let (status, session, page) = answer(&c, callback).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(session.is_some());
    let alice = account(&s, "alice.admin@hospital.example.org").await;
    assert_eq!(alice.role, Role::Admin);
    let changes = audit(&s, "account.role").await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(
        changes[0].detail.contains("\"to\":\"admin\""),
        "{changes:?}"
    );

    // Victor's groups map to nothing: a new account gets the default, viewer,
    // and a viewer gets no roster page.
    let c = browser();
    let callback = through_provider(&s, &c, "victor").await;
    let (status, _, page) = answer(&c, callback).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        account(&s, "victor.viewer@hospital.example.org").await.role,
        Role::Viewer
    );
    let dashboard = c
        .get(s.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        dashboard.contains("victor.viewer@hospital.example.org (viewer)"),
        "{dashboard}"
    );
    let roster = c.get(s.url("/admin/roster")).send().await.unwrap();
    assert_eq!(roster.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_disabled_account_is_refused() {
    if !provider_available() {
        return;
    }
    let s = SsoServer::start(|_| {}).await;
    let nadia = add_account(&s, "nadia.new@hospital.example.org", Role::Coordinator).await;
    assert!(s.t.store().disable_account(nadia.id, 1).await.unwrap());
    let c = browser();
    let callback = through_provider(&s, &c, "nadia").await;
    let (status, session, page) = answer(&c, callback).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(session.is_none());
    assert!(
        page.contains("The account nadia.new@hospital.example.org is disabled"),
        "{page}"
    );
    let failures = audit(&s, "sign_in").await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].outcome, AuditOutcome::Failure);
}

#[tokio::test]
async fn the_sign_in_page_offers_no_provider_when_none_is_configured() {
    let s = AdminServer::start().await;
    let page = reqwest::get(s.url("/admin/sign-in"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"password\""), "{page}");
    assert!(!page.contains("Sign in with"), "{page}");
    let start = reqwest::get(s.url("/admin/sign-in/oidc")).await.unwrap();
    assert_eq!(start.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_callback_for_another_sign_in_or_none_is_refused() {
    if !provider_available() {
        return;
    }
    let s = SsoServer::start(|_| {}).await;
    let c = browser();
    let callback = through_provider(&s, &c, "carol").await;

    // Another state than the one this browser's sign-in began with.
    let mut forged = callback.clone();
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            let v = if k == "state" { format!("{v}x") } else { v };
            (k, v)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let r = c.get(forged).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(session_cookie(&r).is_none());
    let page = r.text().await.unwrap();
    assert!(page.contains("its state differs"), "{page}");

    // The genuine answer in another browser: no pending sign-in there.
    let (status, session, page) = answer(&browser(), callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(session.is_none());
    assert!(page.contains("began in another browser"), "{page}");
}

#[tokio::test]
async fn an_address_outside_the_allowed_domains_is_refused() {
    if !provider_available() {
        return;
    }
    let s = SsoServer::start(|_| {}).await;
    let c = browser();
    let callback = through_provider(&s, &c, "eve").await;
    let (status, session, page) = answer(&c, callback).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(session.is_none());
    assert!(
        page.contains("eve@elsewhere.example.com: elsewhere.example.com is not among the domains that may sign in here"),
        "{page}"
    );
    let r = c.get(s.url("/admin")).send().await.unwrap();
    assert!(r.status().is_redirection(), "still signed out");
}

#[tokio::test]
async fn an_unverified_address_is_refused() {
    if !provider_available() {
        return;
    }
    let s = SsoServer::start(|_| {}).await;
    let c = browser();
    let callback = through_provider(&s, &c, "uma").await;
    let (status, session, page) = answer(&c, callback).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(session.is_none());
    assert!(page.contains("is not verified"), "{page}");
}

#[tokio::test]
async fn without_accounts_made_at_sign_in_a_person_with_none_is_refused() {
    if !provider_available() {
        return;
    }
    let s = SsoServer::start(|s| s.oidc.create_accounts = false).await;
    let c = browser();
    let callback = through_provider(&s, &c, "nadia").await;
    let (status, session, page) = answer(&c, callback).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(session.is_none());
    assert!(
        page.contains("nadia.new@hospital.example.org has no account here"),
        "{page}"
    );
    assert!(
        ambassador::accounts::find_by_email(s.t.store(), "nadia.new@hospital.example.org")
            .await
            .unwrap()
            .is_none()
    );

    // Someone an admin added signs in all the same.
    add_account(&s, "victor.viewer@hospital.example.org", Role::Viewer).await;
    let c = browser();
    let callback = through_provider(&s, &c, "victor").await;
    let (status, session, page) = answer(&c, callback).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(session.is_some());
}

#[tokio::test]
async fn the_providers_refusal_is_shown_in_its_words_escaped() {
    if !provider_available() {
        return;
    }
    let s = SsoServer::start(|_| {}).await;
    let c = browser();
    let callback = through_provider(&s, &c, "<b>mallory</b>").await;
    let (status, session, page) = answer(&c, callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(session.is_none());
    assert!(
        page.contains("access_denied: no such person: &lt;b&gt;mallory&lt;/b&gt;"),
        "{page}"
    );
    assert!(!page.contains("<b>mallory"), "{page}");
}

#[tokio::test]
async fn a_wrong_client_secret_is_the_providers_refusal_not_a_sign_in() {
    if !provider_available() {
        return;
    }
    let s = SsoServer::start(|s| {
        s.oidc.client_secret = ambassador::config::Secret::new("not-the-secret");
    })
    .await;
    let c = browser();
    let callback = through_provider(&s, &c, "carol").await;
    let (status, session, page) = answer(&c, callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(session.is_none());
    assert!(
        page.contains("The identity provider refused the sign-in: invalid_client"),
        "{page}"
    );
}
