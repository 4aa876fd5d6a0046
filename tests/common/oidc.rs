//! A real OpenID Connect provider for the sign-in tests: `oidc-provider`
//! (npm) run by tests/oidc/provider.mjs on loopback, and an admin server
//! configured to sign in through it.
//!
//! Without node or the package (`npm install --prefix tests/oidc`) a test
//! says why and passes, unless AMBASSADOR_REQUIRE_OIDC=1 (CI).

use super::app::TestApp;
use ambassador::config::{Oidc, RoleName, Secret};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use tokio_util::sync::CancellationToken;

pub const CLIENT_ID: &str = "ambassador-test";
pub const CLIENT_SECRET: &str = "a-client-secret-for-tests-only";
/// The group (in the `groups` claim) the tests map to coordinator.
pub const COORDINATOR_GROUP: &str = "training-coordinators";
pub const ADMIN_GROUP: &str = "ambassador-admins";

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc/provider.mjs");
const PACKAGE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/oidc/node_modules/oidc-provider/package.json"
);

/// Whether node and oidc-provider are here; when not, says why (or fails in CI).
pub fn provider_available() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let package = Path::new(PACKAGE).exists();
    if node && package {
        return true;
    }
    let missing = match (node, package) {
        (false, _) => "node is not installed (apt-get install nodejs npm)",
        _ => "the oidc-provider package is not installed (npm install --prefix tests/oidc)",
    };
    super::skip::skip(
        &format!("the OpenID Connect tests: {missing}"),
        Some("AMBASSADOR_REQUIRE_OIDC"),
    );
    false
}

/// The provider's process, ended when dropped (its standard input closes too).
pub struct TestProvider {
    child: Child,
    pub issuer: String,
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestProvider {
    /// Starts the provider for a client whose callback is `redirect_uri`;
    /// returns once it serves (it prints its issuer then).
    pub fn start(redirect_uri: &str) -> Self {
        let mut child = Command::new("node")
            .arg(SCRIPT)
            .args([CLIENT_ID, CLIENT_SECRET, redirect_uri])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the provider prints its issuer");
        let issuer = line
            .trim()
            .strip_prefix("issuer ")
            .unwrap_or_else(|| panic!("the provider did not start: {line:?}"))
            .to_string();
        Self { child, issuer }
    }
}

/// `[oidc]` for the test provider: hospital.example.org only, groups mapped.
pub fn settings(issuer: &str, secret_file: &Path) -> Oidc {
    Oidc {
        provider_name: "Hospital Login".into(),
        issuer_url: issuer.into(),
        client_id: CLIENT_ID.into(),
        client_secret_file: secret_file.to_path_buf(),
        client_secret: Secret::new(CLIENT_SECRET),
        scopes: vec!["email".into(), "profile".into(), "groups".into()],
        email_claim: "email".into(),
        allowed_domains: vec!["hospital.example.org".into()],
        role_claim: "groups".into(),
        roles: [
            (COORDINATOR_GROUP.to_string(), RoleName::Coordinator),
            (ADMIN_GROUP.to_string(), RoleName::Admin),
        ]
        .into(),
        create_accounts: true,
        default_role: RoleName::Viewer,
    }
}

/// An admin server whose sign-in page offers the test provider.
pub struct SsoServer {
    pub t: TestApp,
    pub base: String,
    pub provider: TestProvider,
    _stop: tokio_util::sync::DropGuard,
    _secret: tempfile::TempDir,
}

impl SsoServer {
    /// With `[oidc]` as [`settings`] makes it, then `tweak`.
    pub async fn start(tweak: impl FnOnce(&mut ambassador::config::Settings)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let provider = TestProvider::start(&format!("{base}{}", ambassador::config::CALLBACK_PATH));
        let secret = tempfile::tempdir().unwrap();
        let secret_file = secret.path().join("oidc-secret");
        std::fs::write(&secret_file, CLIENT_SECRET).unwrap();
        let issuer = provider.issuer.clone();
        let t = TestApp::spawn_with(Default::default(), |s| {
            s.security.admin_password_hash =
                Secret::new(super::admin::cheap_hash(super::admin::PASSWORD));
            s.http.public_url = base.clone();
            s.oidc = settings(&issuer, &secret_file);
            tweak(s);
        })
        .await;
        let stop = CancellationToken::new();
        t.app.spawn_http(listener, stop.clone());
        Self {
            t,
            base,
            provider,
            _stop: stop.drop_guard(),
            _secret: secret,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}
