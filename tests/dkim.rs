//! DKIM signatures checked by an independent verifier: dkimpy (Debian
//! python3-dkim, PyPI dkimpy) through tests/dkim_verify.py, with the public
//! key served locally instead of from DNS. Every kind of message ambassador
//! sends is verified, and tampered copies must fail.
//!
//! The RSA key is made here with the `rsa` crate, so no openssl is needed.
//! Without a python3 that has dkimpy the test says so and skips, unless
//! AMBASSADOR_REQUIRE_DKIM=1 (set by .ci/run).

mod common;

use ambassador::completions::{self, Completion};
use ambassador::report;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use common::app::{launch, person, TestApp, CAMPAIGN, HEADER};
use common::smtp::Received;
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::EncodePublicKey;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SELECTOR: &str = "amb2027";
const DOMAIN: &str = "hospital.example.org";
const MIA: &str = "mia.boss@hospital.example.org";
const BOARD: &str = "board@hospital.example.org";

/// dkimpy, fed the public key of one test.
struct Verifier {
    python: String,
    record_file: PathBuf,
}

impl Verifier {
    /// A python3 that can `import dkim`: $AMBASSADOR_DKIM_PYTHON, else
    /// `python3` on PATH, else Debian's (python3-dkim installs there, which a
    /// version manager's python3 on PATH does not see).
    fn find_python() -> Option<String> {
        let candidates = match std::env::var("AMBASSADOR_DKIM_PYTHON") {
            Ok(python) if !python.is_empty() => vec![python],
            _ => vec!["python3".to_owned(), "/usr/bin/python3".to_owned()],
        };
        candidates.into_iter().find(|python| {
            Command::new(python)
                .args(["-c", "import dkim"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    }

    /// The verifier, or `None` with the reason printed (a failure when
    /// AMBASSADOR_REQUIRE_DKIM=1).
    fn or_skip(dir: &Path, record: &str) -> Option<Verifier> {
        let Some(python) = Self::find_python() else {
            let reason = "skipping the DKIM verification test: no python3 with dkimpy \
                          (Debian: apt install python3-dkim; PyPI: pip install dkimpy)";
            assert!(
                std::env::var("AMBASSADOR_REQUIRE_DKIM").as_deref() != Ok("1"),
                "{reason}"
            );
            let _ = std::io::stderr().write_all(format!("{reason}\n").as_bytes());
            return None;
        };
        let record_file = dir.join("dkim.txt");
        std::fs::write(&record_file, record).unwrap();
        Some(Verifier {
            python,
            record_file,
        })
    }

    /// Ok when dkimpy verifies `raw`; Err with its explanation otherwise.
    fn verify(&self, raw: &[u8]) -> Result<(), String> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dkim_verify.py");
        let mut child = Command::new(&self.python)
            .arg(script)
            .arg(&self.record_file)
            .arg(format!("{SELECTOR}._domainkey.{DOMAIN}."))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the dkimpy wrapper");
        child.stdin.take().unwrap().write_all(raw).unwrap();
        let out = child.wait_with_output().unwrap();
        match out.status.code() {
            Some(0) => Ok(()),
            Some(1) => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
            _ => panic!(
                "the wrapper failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
}

/// A 2048-bit RSA key: the private half as PKCS#1 PEM in `dir` (as
/// smtp.dkim_key_file takes it), the public half as a DKIM TXT record.
fn dkim_key(dir: &Path) -> (PathBuf, String) {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("an RSA key");
    let pem = key.to_pkcs1_pem(LineEnding::LF).unwrap();
    let path = dir.join("dkim.pem");
    std::fs::write(&path, pem.as_bytes()).unwrap();
    let public = key.to_public_key().to_public_key_der().unwrap();
    let p = base64::engine::general_purpose::STANDARD.encode(public.as_bytes());
    (path, format!("v=DKIM1; k=rsa; p={p}"))
}

fn day(n: i64) -> DateTime<Utc> {
    launch() + Duration::days(n)
}

/// Ann completes, Bob does not; both report to Mia.
fn roster() -> String {
    let lines = [
        person(1, "Ann", "Lee", "Procurement", "Buyer", MIA),
        person(2, "Bob", "Ng", "Procurement", "Buyer", MIA),
        person(3, "Mia", "Boss", "Leadership", "Director", ""),
    ];
    format!("{HEADER}\n{}\n", lines.join("\n"))
}

/// Runs the campaign through every step, then the team digest and the
/// weekly summary; returns what the relay received, in order.
async fn every_kind_of_message(t: &TestApp) -> Vec<Received> {
    t.import(&roster()).await;
    t.apply(CAMPAIGN).await;
    t.tick_at(day(0)).await; // announcement to Ann and Bob
    let ann = t.staff_id("ann.lee@hospital.example.org").await;
    let campaign = t.campaign_id("test").await;
    let done = [Completion {
        staff_id: ann,
        at: day(2),
    }];
    completions::record(t.store(), campaign, &done, "report", false)
        .await
        .unwrap();
    t.tick_at(day(2)).await; // thanks to Ann
    t.tick_at(day(7)).await; // reminder-1 to Bob
    t.tick_at(day(12)).await; // last-call to Bob
    t.tick_at(day(15)).await; // escalation to Mia
    t.clock.set(day(16));
    assert_eq!(
        report::team::send_team_digests(&t.app.reports())
            .await
            .unwrap()
            .len(),
        1
    );
    let weekly = report::weekly::send_weekly(&t.app.reports(), false)
        .await
        .unwrap();
    assert_eq!(weekly[0].outcome, ambassador::store::ReportOutcome::Sent);
    t.smtp.wait_for(8, std::time::Duration::from_secs(10)).await
}

#[tokio::test]
async fn every_kind_of_message_has_a_dkim_signature_that_dkimpy_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (key_file, record) = dkim_key(dir.path());
    let Some(verifier) = Verifier::or_skip(dir.path(), &record) else {
        return;
    };
    let t = TestApp::spawn_with(Default::default(), |s| {
        s.smtp.dkim_selector = SELECTOR.into();
        s.smtp.dkim_domain = DOMAIN.into();
        s.smtp.dkim_key_file = key_file.clone();
        s.report.recipients = vec![ambassador::domain::EmailAddress::parse(BOARD).unwrap()];
    })
    .await;
    let received = every_kind_of_message(&t).await;
    let to = |m: &Received| m.recipients.join(",");
    let mut who: Vec<String> = received.iter().map(to).collect();
    who[..2].sort();
    let (ann, bob) = (
        "ann.lee@hospital.example.org",
        "bob.ng@hospital.example.org",
    );
    assert_eq!(
        who,
        [ann, bob, ann, bob, bob, MIA, MIA, BOARD],
        "every kind, once"
    );
    for message in &received {
        let subject = message.header("Subject").unwrap_or_default();
        if let Err(why) = verifier.verify(&message.raw) {
            panic!("to {} ({subject}): {why}", to(message));
        }
    }
}

#[tokio::test]
async fn a_tampered_message_fails_dkim_verification() {
    let dir = tempfile::tempdir().unwrap();
    let (key_file, record) = dkim_key(dir.path());
    let Some(verifier) = Verifier::or_skip(dir.path(), &record) else {
        return;
    };
    let t = TestApp::spawn_with(Default::default(), |s| {
        s.smtp.dkim_selector = SELECTOR.into();
        s.smtp.dkim_domain = DOMAIN.into();
        s.smtp.dkim_key_file = key_file.clone();
    })
    .await;
    t.import(&roster()).await;
    t.apply(CAMPAIGN).await;
    t.tick_at(day(0)).await;
    let message = &t.smtp.wait_for(1, std::time::Duration::from_secs(10)).await[0];
    verifier
        .verify(&message.raw)
        .expect("the original verifies");
    let raw = String::from_utf8(message.raw.clone()).unwrap();
    // A phishing edit of the body's text, and of the subject.
    let body = raw.replacen("Please complete it by", "Please pay by", 1);
    let subject = raw.replacen("Subject: ", "Subject: URGENT ", 1);
    assert!(body != raw && subject != raw, "both edits apply");
    for tampered in [body, subject] {
        let why = verifier
            .verify(tampered.as_bytes())
            .expect_err("tampering is caught");
        assert!(why.contains("NOT verified"), "{why}");
    }
}
