//! The production delivery path against a relay that speaks TLS and AUTH:
//! STARTTLS and implicit TLS with a certificate made for this run, AUTH
//! PLAIN and LOGIN, certificate verification, no password in the clear,
//! and connection reuse. The relay records each connection's events, so the
//! order of STARTTLS, AUTH and MAIL is asserted, not assumed.

mod common;

use ambassador::config::Tls;
use common::app::{launch, person, TestApp, CAMPAIGN, HEADER};
use common::process::ambassador;
use common::smtp::{Event, Relay, SmtpServer, TestCa};
use std::collections::BTreeSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const USER: &str = "ambassador";
const PASSWORD: &str = "correct horse battery staple";

/// Ann, Bob and Cy are in the campaign's audience: three announcements.
fn three_people() -> String {
    let lines = [
        person(1, "Ann", "Lee", "Procurement", "Buyer", ""),
        person(2, "Bob", "Ng", "Procurement", "Buyer", ""),
        person(3, "Cy", "Ode", "Supply Chain", "Buyer", ""),
    ];
    format!("{HEADER}\n{}\n", lines.join("\n"))
}

/// Imports three people, applies the campaign and runs the launch tick.
async fn launch_campaign(t: &TestApp) -> ambassador::delivery::DeliveryReport {
    t.import(&three_people()).await;
    t.apply(CAMPAIGN).await;
    t.tick_at(launch()).await.1
}

/// Each outbox row's last error, for messages not sent.
async fn last_errors(t: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT COALESCE(last_error, '') FROM outbox WHERE status <> 'sent'")
        .fetch_all(t.store().pool())
        .await
        .unwrap()
}

fn auth_events(server: &SmtpServer) -> Vec<Event> {
    server
        .events()
        .into_iter()
        .map(|(_, event)| event)
        .filter(|event| matches!(event, Event::Auth { .. }))
        .collect()
}

/// On every connection: an AUTH comes only once the session is encrypted
/// (after STARTTLS, or on implicit TLS), and every MAIL is encrypted and
/// authenticated.
fn assert_auth_only_after_tls(server: &SmtpServer) {
    let connections: BTreeSet<u64> = server.events().iter().map(|(id, _)| *id).collect();
    for id in connections {
        let transcript = server.transcript(id);
        let mut encrypted = false;
        for event in &transcript {
            match event {
                Event::Connected { encrypted: e } => encrypted = *e,
                Event::StartTls => encrypted = true,
                Event::Auth { encrypted: e, .. } => assert!(
                    encrypted && *e,
                    "AUTH before TLS on connection {id}: {transcript:?}"
                ),
                Event::Mail {
                    encrypted: e,
                    authenticated,
                } => assert!(*e && *authenticated, "connection {id}: {transcript:?}"),
                Event::TlsFailed(_) => {}
            }
        }
    }
}

#[tokio::test]
async fn starttls_with_a_password_file_authenticates_only_after_tls() {
    let ca = TestCa::generate("trusted-ca");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path());
    let password_file = dir.path().join("smtp-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let relay = SmtpServer::start_relay(Relay::default().starttls(&ca).auth(USER, PASSWORD)).await;
    let env = [
        ("AMBASSADOR__SMTP__USERNAME", USER),
        (
            "AMBASSADOR__SMTP__PASSWORD_FILE",
            password_file.to_str().unwrap(),
        ),
        ("AMBASSADOR__SMTP__CA_FILE", ca_file.to_str().unwrap()),
    ];
    // The default `tls` is "starttls"; the test defaults set "none", so put it back.
    let t = TestApp::spawn_on(relay, &env, |s| s.smtp.tls = Tls::Starttls).await;
    let report = launch_campaign(&t).await;
    assert_eq!(report.sent, 3, "{:?}", last_errors(&t).await);
    let received = t.smtp.wait_for(3, WAIT).await;
    assert_eq!(received.len(), 3);
    let auths = auth_events(&t.smtp);
    assert!(!auths.is_empty(), "the relay requires AUTH");
    assert!(
        auths.iter().all(
            |a| matches!(a, Event::Auth { mechanism, accepted: true, .. } if mechanism == "PLAIN")
        ),
        "{auths:?}"
    );
    let first = t.smtp.transcript(received[0].connection);
    assert_eq!(
        first[..3],
        [
            Event::Connected { encrypted: false },
            Event::StartTls,
            Event::Auth {
                mechanism: "PLAIN".into(),
                encrypted: true,
                accepted: true
            }
        ],
        "{first:?}"
    );
    assert_auth_only_after_tls(&t.smtp);
}

#[tokio::test]
async fn implicit_tls_authenticates_with_login() {
    let ca = TestCa::generate("trusted-ca");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path());
    let relay = Relay::default()
        .implicit_tls(&ca)
        .auth(USER, PASSWORD)
        .auth_mechanisms(&["LOGIN"]);
    let relay = SmtpServer::start_relay(relay).await;
    let t = TestApp::spawn_on(relay, &[], |s| {
        s.smtp.tls = Tls::Tls;
        s.smtp.ca_file = ca_file.clone();
        s.smtp.username = USER.into();
        s.smtp.password = ambassador::config::Secret::new(PASSWORD);
    })
    .await;
    let report = launch_campaign(&t).await;
    assert_eq!(report.sent, 3, "{:?}", last_errors(&t).await);
    let received = t.smtp.wait_for(3, WAIT).await;
    let first = t.smtp.transcript(received[0].connection);
    assert_eq!(
        first[..2],
        [
            Event::Connected { encrypted: true },
            Event::Auth {
                mechanism: "LOGIN".into(),
                encrypted: true,
                accepted: true
            }
        ],
        "{first:?}"
    );
    assert_auth_only_after_tls(&t.smtp);
}

#[tokio::test]
async fn a_relay_certificate_from_an_unknown_ca_is_refused() {
    let rogue = TestCa::generate("rogue-ca");
    let trusted = TestCa::generate("trusted-ca");
    let dir = tempfile::tempdir().unwrap();
    let trusted_file = trusted.write_pem(dir.path());
    // Trusting only the public roots, and trusting another private CA.
    for ca_file in [None, Some(trusted_file)] {
        let relay =
            SmtpServer::start_relay(Relay::default().starttls(&rogue).auth(USER, PASSWORD)).await;
        let t = TestApp::spawn_on(relay, &[], |s| {
            s.smtp.tls = Tls::Starttls;
            s.smtp.ca_file = ca_file.clone().unwrap_or_default();
            s.smtp.username = USER.into();
            s.smtp.password = ambassador::config::Secret::new(PASSWORD);
        })
        .await;
        let report = launch_campaign(&t).await;
        assert_eq!((report.sent, report.retried), (0, 3), "ca_file {ca_file:?}");
        assert!(t.smtp.messages().is_empty());
        assert!(auth_events(&t.smtp).is_empty(), "{:?}", t.smtp.events());
        // The relay sees the handshake fail: the client refused its certificate.
        let failed = |e: &Event| matches!(e, Event::TlsFailed(_));
        t.smtp.wait_for_event(failed, WAIT).await;
        for error in last_errors(&t).await {
            assert!(error.to_lowercase().contains("certificate"), "{error}");
        }
    }
}

#[tokio::test]
async fn a_relay_without_starttls_receives_no_auth() {
    // Settings built in code skip `config check`: the mailer itself refuses.
    for tls in [Tls::None, Tls::Starttls] {
        let relay = SmtpServer::start_relay(Relay::default().auth(USER, PASSWORD)).await;
        let t = TestApp::spawn_on(relay, &[], |s| {
            s.smtp.tls = tls;
            s.smtp.username = USER.into();
            s.smtp.password = ambassador::config::Secret::new(PASSWORD);
        })
        .await;
        let report = launch_campaign(&t).await;
        assert_eq!((report.sent, report.retried), (0, 3), "tls {tls:?}");
        assert!(auth_events(&t.smtp).is_empty(), "{:?}", t.smtp.events());
        assert!(t.smtp.messages().is_empty());
        let expected = match tls {
            Tls::None => "unencrypted connection",
            _ => "STARTTLS is not supported",
        };
        for error in last_errors(&t).await {
            assert!(error.contains(expected), "{error}");
        }
    }
}

#[tokio::test]
async fn allow_insecure_auth_sends_the_password_to_a_relay_without_tls() {
    let relay = SmtpServer::start_relay(Relay::default().auth(USER, PASSWORD)).await;
    let t = TestApp::spawn_on(relay, &[], |s| {
        s.smtp.tls = Tls::None;
        s.smtp.allow_insecure_auth = true;
        s.smtp.username = USER.into();
        s.smtp.password = ambassador::config::Secret::new(PASSWORD);
    })
    .await;
    assert_eq!(launch_campaign(&t).await.sent, 3);
    let auths = auth_events(&t.smtp);
    assert!(!auths.is_empty());
    assert!(
        auths.iter().all(|a| matches!(
            a,
            Event::Auth {
                encrypted: false,
                accepted: true,
                ..
            }
        )),
        "{auths:?}"
    );
}

/// A config for a relay on `tls = "none"` with a username, plus `extra`.
fn cleartext_auth_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let config = dir.join("ambassador.toml");
    let text = format!(
        "[database]\nurl = \"sqlite://{}\"\n[smtp]\ntransport = \"smtp\"\nhost = \"relay.hospital.example.org\"\n\
         tls = \"none\"\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\n{extra}\n\
         [http]\nbind = \"127.0.0.1:0\"\n[security]\ntoken_key_file = \"{}\"\n",
        dir.join("ambassador.db").display(),
        dir.join("token.key").display()
    );
    std::fs::write(&config, text).unwrap();
    config
}

/// Runs the binary, killing it if it has not exited within `limit`.
fn run_with_limit(mut cmd: std::process::Command, limit: Duration) -> std::process::Output {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    match finished.recv_timeout(limit) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("still running after {limit:?}: it did not refuse the configuration");
        }
    }
}

#[test]
fn config_check_and_serve_refuse_auth_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let config = cleartext_auth_config(dir.path(), "");
    for args in [&["config", "check"][..], &["serve"][..]] {
        let out = run_with_limit(ambassador(&config, args), Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted it: {stderr}");
        assert!(
            stderr.contains("smtp.tls = \"none\"") && stderr.contains("smtp.allow_insecure_auth"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains(PASSWORD), "the password is never shown");
    }
    assert!(
        !dir.path().join("ambassador.db").exists(),
        "serve stopped before touching the database"
    );
    // Allowed for a relay on the same host.
    let allowed = cleartext_auth_config(dir.path(), "allow_insecure_auth = true");
    let out = ambassador(&allowed, &["config", "check"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_pool_of_four_sends_100_messages_over_at_most_four_connections() {
    let t = TestApp::spawn_with(Default::default(), |s| {
        s.smtp.pool_size = 4;
        // More workers than connections: the pool, not the worker, bounds them.
        s.delivery.concurrency = 8;
    })
    .await;
    let people: Vec<String> = (1..=100)
        .map(|i| person(i, &format!("P{i}"), "Buyer", "Procurement", "Buyer", ""))
        .collect();
    t.import(&format!("{HEADER}\n{}\n", people.join("\n")))
        .await;
    t.apply(CAMPAIGN).await;
    let report = t.tick_at(launch()).await.1;
    assert_eq!(report.sent, 100);
    let received = t.smtp.wait_for(100, WAIT).await;
    let used: BTreeSet<u64> = received.iter().map(|m| m.connection).collect();
    assert!(
        t.smtp.connections() <= 4 && used.len() <= 4,
        "{} connections accepted, messages on {used:?}",
        t.smtp.connections()
    );
}
