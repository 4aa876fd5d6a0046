//! The admin web page's test helpers: a server with a known password, and
//! an Argon2 hash cheap enough for debug builds.

use super::app::TestApp;
use argon2::password_hash::{PasswordHasher, SaltString};
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "calm blue lighthouse";
pub const TOKEN: &str = "correct horse battery staple";

/// An Argon2id PHC string for `password` with small parameters: verifying
/// uses the parameters in the string, so tests stay fast in debug builds.
pub fn cheap_hash(password: &str) -> String {
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"ambassador-tests").unwrap();
    hasher
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

/// A TestApp serving HTTP on a loopback port, with the admin password and
/// token set; `public_url` is http so the session cookie works without TLS.
pub struct AdminServer {
    pub t: TestApp,
    pub base: String,
    _stop: tokio_util::sync::DropGuard,
}

impl AdminServer {
    pub async fn start() -> Self {
        let t = TestApp::spawn_with(Default::default(), |s| {
            s.security.admin_token = ambassador::config::Secret::new(TOKEN);
            s.security.admin_password_hash = ambassador::config::Secret::new(cheap_hash(PASSWORD));
            s.http.public_url = "http://127.0.0.1".into();
        })
        .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        t.app.spawn_http(listener, stop.clone());
        Self {
            t,
            base,
            _stop: stop.drop_guard(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A named account with a local password (hashed cheaply for debug builds).
pub async fn account(
    s: &AdminServer,
    email: &str,
    role: ambassador::accounts::Role,
) -> ambassador::accounts::Account {
    let address = ambassador::domain::EmailAddress::parse(email).unwrap();
    let hash = cheap_hash(PASSWORD);
    let now = ambassador::clock::to_millis(ambassador::clock::Clock::now(&s.t.clock));
    ambassador::accounts::create(s.t.store(), &address, role, Some(&hash), "test", now)
        .await
        .unwrap()
}

/// A personal API token for `account`, valid for 30 days from the test clock.
pub async fn token_for(s: &AdminServer, account: &ambassador::accounts::Account) -> String {
    let now = ambassador::clock::to_millis(ambassador::clock::Clock::now(&s.t.clock));
    ambassador::accounts::token::create(s.t.store(), account, "test", 30 * 86_400_000, now)
        .await
        .unwrap()
        .secret
}

/// The value of `name` in a page's hidden input.
pub fn hidden_value(html: &str, name: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let selector = scraper::Selector::parse(&format!("input[name=\"{name}\"]")).unwrap();
    doc.select(&selector)
        .next()
        .and_then(|e| e.value().attr("value"))
        .unwrap_or_default()
        .to_string()
}

/// Signs in through the form as `email` (empty: the shared password) with
/// `password`; returns the sign-in response.
pub async fn sign_in_form(
    base: &str,
    c: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let form = c.get(format!("{base}/admin/sign-in")).send().await.unwrap();
    let cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("ambassador_sign_in="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_string();
    let csrf = hidden_value(&form.text().await.unwrap(), "csrf");
    c.post(format!("{base}/admin/sign-in"))
        .header("cookie", cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

/// The session cookie ("ambassador_session=...") a sign-in response set.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("ambassador_session=") && !v.starts_with("ambassador_session=;"))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

/// A client that follows no redirect, so a test sees each 303.
pub fn no_redirect_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
