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
