//! Bounces come back: messages go out through a real Postfix on loopback,
//! which bounces those to unknown users with a genuine DSN into a real
//! Dovecot's Maildir; ambassador reads that mailbox over IMAP with TLS,
//! marks the address undeliverable, and sends it nothing more. Auto-replies
//! stay where they are; mail it cannot match goes to the unmatched folder.
//! The servers are started by the tests (tests/common/mailservers.rs); the
//! tests skip with a reason where they cannot run, except with
//! AMBASSADOR_REQUIRE_DOVECOT=1 (`.ci/run`).
//!
//! The parsing tests read stored samples (tests/fixtures/bounces/, origin
//! in its README.md) and need no server.

mod common;

use ambassador::bounces::parse::{classify, Action, Classified};
use ambassador::bounces::MailboxRun;
use ambassador::config::Settings;
use chrono::{DateTime, Duration, Utc};
use common::app::{launch, TestApp, CAMPAIGN, HEADER};
use common::mailservers::{MailServers, BOUNCE_DOMAIN, IMAP_USER, STAFF_DOMAIN};
use common::skip::skip;
use common::smtp::{Faults, SmtpServer};
use lettre::AsyncTransport;

const REQUIRE: &str = "AMBASSADOR_REQUIRE_DOVECOT";

/// ann and cat exist; dan's server is unreachable (4.4.1, given up at
/// once); bob, and anyone else, is unknown (5.1.1).
fn servers() -> Option<MailServers> {
    match MailServers::start(
        &["ann", "cat"],
        &["dan"],
        "ambassador",
        "hospital.example.org",
    ) {
        Ok(s) => Some(s),
        Err(why) => {
            skip(
                &format!("no Postfix and Dovecot to test bounces against: {why}"),
                Some(REQUIRE),
            );
            None
        }
    }
}

fn roster(bob: &str) -> String {
    let mut csv = String::from(HEADER);
    for (id, first, email) in [
        ("E1", "Ann", format!("ann@{STAFF_DOMAIN}")),
        ("E2", "Bob", bob.to_string()),
        ("E3", "Cat", format!("cat@{STAFF_DOMAIN}")),
        ("E4", "Dan", format!("dan@{STAFF_DOMAIN}")),
    ] {
        csv.push_str(&format!(
            "\n{id},{first},Lee,{email},Procurement,Buyer,North Campus,,America/New_York"
        ));
    }
    csv.push('\n');
    csv
}

/// An ambassador sending through the Postfix and reading the Dovecot of
/// `servers`, its settings loaded from the environment as `serve` loads them.
async fn ambassador(servers: &MailServers, verp: bool, soft_limit: u32) -> TestApp {
    let port = servers.imap_port.to_string();
    let limit = soft_limit.to_string();
    let mut env = vec![
        ("AMBASSADOR__BOUNCES__IMAP_HOST", "127.0.0.1"),
        ("AMBASSADOR__BOUNCES__IMAP_PORT", port.as_str()),
        ("AMBASSADOR__BOUNCES__IMAP_USER", IMAP_USER),
        (
            "AMBASSADOR__BOUNCES__IMAP_PASSWORD_FILE",
            servers.password_file.to_str().unwrap(),
        ),
        (
            "AMBASSADOR__BOUNCES__CA_FILE",
            servers.ca_file.to_str().unwrap(),
        ),
        ("AMBASSADOR__BOUNCES__SOFT_LIMIT", limit.as_str()),
    ];
    let return_path = format!("bounce@{BOUNCE_DOMAIN}");
    if verp {
        env.push(("AMBASSADOR__BOUNCES__RETURN_PATH", return_path.as_str()));
    }
    let smtp_port = servers.smtp_port;
    // The test relay is not used: every message goes to Postfix.
    let t = TestApp::spawn_on(
        SmtpServer::start(Faults::default()).await,
        &env,
        move |s: &mut Settings| {
            s.smtp.port = smtp_port;
        },
    )
    .await;
    t.apply(CAMPAIGN).await;
    t
}

/// Sends one raw message to the bounce mailbox through Postfix, as a
/// vacation program or a person would.
async fn mail_to_bounce_mailbox(servers: &MailServers, raw: &str) {
    let transport =
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(servers.smtp_port)
            .build();
    let envelope = lettre::address::Envelope::new(
        Some("someone@elsewhere.test".parse().unwrap()),
        vec![format!("bounce@{BOUNCE_DOMAIN}").parse().unwrap()],
    )
    .unwrap();
    transport
        .send_raw(&envelope, raw.replace('\n', "\r\n").as_bytes())
        .await
        .expect("Postfix takes the message");
}

async fn status_of(t: &TestApp, recipient: &str, step: &str) -> String {
    sqlx::query_scalar("SELECT status FROM outbox WHERE recipient = $1 AND step = $2")
        .bind(recipient)
        .bind(step)
        .fetch_one(t.store().pool())
        .await
        .unwrap()
}

async fn matched_by(t: &TestApp) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT address, kind, matched_by FROM bounces ORDER BY address, kind")
        .fetch_all(t.store().pool())
        .await
        .unwrap()
}

async fn read_mailbox(t: &TestApp) -> MailboxRun {
    t.app
        .bounces()
        .expect("a bounce mailbox is configured")
        .run()
        .await
        .expect("the bounce mailbox is read")
}

fn days(n: i64) -> DateTime<Utc> {
    launch() + Duration::days(n)
}

const AUTO_REPLY: &str = "From: Ann Lee <ann@staff.test>
To: bounce@bounces.test
Subject: Automatic reply: SOAR training
Auto-Submitted: auto-replied
Message-ID: <ooo-1@staff.test>
Date: Mon, 11 Jan 2027 14:00:05 +0000

I am out of the office until Monday.
";

const STRAY: &str = "From: Erin Doe <erin@elsewhere.test>
To: bounce@bounces.test
Subject: Question about the course
Message-ID: <question-1@elsewhere.test>
Date: Mon, 11 Jan 2027 15:00:00 +0000

Is the course also available in Spanish?
";

#[tokio::test]
async fn a_postfix_bounce_marks_the_address_and_no_reminder_follows() {
    let Some(servers) = servers() else { return };
    let t = ambassador(&servers, true, 3).await;
    let bob = format!("bob@{STAFF_DOMAIN}");
    t.import(&roster(&bob)).await;
    let (_, sent) = t.tick_at(launch()).await;
    assert_eq!(sent.sent, 4, "the announcement goes to all four");
    // Bob's bounce and Dan's soft bounce, then an auto-reply and a stray message.
    servers.wait_for_inbox(2, std::time::Duration::from_secs(30));
    mail_to_bounce_mailbox(&servers, AUTO_REPLY).await;
    mail_to_bounce_mailbox(&servers, STRAY).await;
    servers.wait_for_inbox(4, std::time::Duration::from_secs(30));

    let run = read_mailbox(&t).await;

    assert_eq!(
        run,
        MailboxRun {
            marked: 1,
            counted: 1,
            auto_replies: 1,
            unmatched: 1,
            ..MailboxRun::default()
        }
    );
    assert_eq!(
        matched_by(&t).await,
        [
            (bob.clone(), "hard".into(), "verp".into()),
            (format!("dan@{STAFF_DOMAIN}"), "soft".into(), "verp".into()),
        ],
        "both bounces name their message by the VERP return path"
    );
    assert!(t.store().address_bounced(&bob).await.unwrap());
    assert!(
        !t.store()
            .address_bounced(&format!("dan@{STAFF_DOMAIN}"))
            .await
            .unwrap(),
        "one soft bounce of three"
    );
    // Nothing deleted: bounces processed, the stray message unmatched, the auto-reply left.
    assert_eq!(servers.count("Ambassador-Processed"), 2);
    let unmatched = servers.files("Ambassador-Unmatched");
    assert_eq!(unmatched.len(), 1);
    assert!(std::fs::read_to_string(&unmatched[0])
        .unwrap()
        .contains("Question about the course"));
    let inbox = servers.files("INBOX");
    assert_eq!(inbox.len(), 1);
    assert!(std::fs::read_to_string(&inbox[0])
        .unwrap()
        .contains("Automatic reply"));
    // The auto-reply is read once, not on every run.
    assert_eq!(read_mailbox(&t).await, MailboxRun::default());
    assert_eq!(servers.count("INBOX"), 1);

    // The report and the dashboard's figures: Bob bounced, not reached.
    let row = ambassador::campaign::find(t.store(), "test").await.unwrap();
    let report = ambassador::report::build(t.store(), &row, days(1), 3)
        .await
        .unwrap();
    assert_eq!(report.bounces.people_bounced, 1);
    assert_eq!(report.reach.people_reached, 3);
    let listed = &report.bounces.people;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].email.as_str(),
            listed[0].employee_id.as_deref(),
            listed[0].status.as_str()
        ),
        (bob.as_str(), Some("E2"), "5.1.1")
    );
    assert!(
        listed[0].diagnostic.contains("unknown user"),
        "{}",
        listed[0].diagnostic
    );
    assert!(ambassador::report::render::table(&report).contains(&format!("address bounced  {bob}")));

    // The first reminder goes to everyone but Bob.
    let (_, sent) = t.tick_at(days(7)).await;
    assert_eq!(sent.sent, 3);
    assert_eq!(status_of(&t, &bob, "reminder-1").await, "cancelled");
    assert_eq!(
        status_of(&t, &format!("ann@{STAFF_DOMAIN}"), "reminder-1").await,
        "sent"
    );

    // HR fixes the address: the mark is gone and the last call goes out.
    let robert = format!("robert.bob@{STAFF_DOMAIN}");
    t.import(&roster(&robert)).await;
    assert!(!t.store().address_bounced(&robert).await.unwrap());
    assert!(t.store().bounced_people(None).await.unwrap().is_empty());
    t.tick_at(days(12)).await;
    let last_call: Vec<(String, String)> = sqlx::query_as(
        "SELECT o.status, s.email FROM outbox o JOIN enrolments e ON e.id = o.enrolment_id
         JOIN staff s ON s.id = e.staff_id WHERE s.employee_id = 'E2' AND o.step = 'last-call'",
    )
    .fetch_all(t.store().pool())
    .await
    .unwrap();
    assert_eq!(last_call, [("sent".to_string(), robert.clone())]);
}

#[tokio::test]
async fn soft_bounces_to_the_limit_make_a_hard_one() {
    let Some(servers) = servers() else { return };
    let t = ambassador(&servers, true, 2).await;
    let dan = format!("dan@{STAFF_DOMAIN}");
    t.import(&roster(&format!("bob@{STAFF_DOMAIN}"))).await;
    t.tick_at(launch()).await;
    servers.wait_for_inbox(2, std::time::Duration::from_secs(30));
    let first = read_mailbox(&t).await;
    assert_eq!(
        (first.marked, first.counted),
        (1, 1),
        "Bob marked, Dan counted"
    );
    assert!(!t.store().address_bounced(&dan).await.unwrap());

    t.tick_at(days(7)).await;
    servers.wait_for_inbox(1, std::time::Duration::from_secs(30));
    let second = read_mailbox(&t).await;

    assert_eq!(
        second.marked, 1,
        "Dan's second soft bounce reaches the limit of 2"
    );
    assert!(t.store().address_bounced(&dan).await.unwrap());
    t.tick_at(days(12)).await;
    assert_eq!(status_of(&t, &dan, "last-call").await, "cancelled");
}

#[tokio::test]
async fn without_verp_a_bounce_is_matched_by_the_returned_message_id() {
    let Some(servers) = servers() else { return };
    let t = ambassador(&servers, false, 3).await;
    let bob = format!("bob@{STAFF_DOMAIN}");
    t.import(&roster(&bob)).await;
    t.tick_at(launch()).await;
    servers.wait_for_inbox(2, std::time::Duration::from_secs(30));
    let dsn = std::fs::read_to_string(&servers.files("INBOX")[0]).unwrap();
    assert!(
        dsn.contains("Delivered-To: ambassador@hospital.example.org") && !dsn.contains("bounce+"),
        "without VERP the bounce goes to smtp.from: {dsn}"
    );

    let run = read_mailbox(&t).await;

    assert_eq!((run.marked, run.counted, run.unmatched), (1, 1, 0));
    assert_eq!(
        matched_by(&t).await,
        [
            (bob.clone(), "hard".into(), "message_id".into()),
            (
                format!("dan@{STAFF_DOMAIN}"),
                "soft".into(),
                "message_id".into()
            ),
        ]
    );
    assert!(t.store().address_bounced(&bob).await.unwrap());
}

#[tokio::test]
async fn a_wrong_password_or_an_untrusted_certificate_fails_the_run_and_moves_nothing() {
    let Some(servers) = servers() else { return };
    let t = ambassador(&servers, true, 3).await;
    t.import(&roster(&format!("bob@{STAFF_DOMAIN}"))).await;
    t.tick_at(launch()).await;
    servers.wait_for_inbox(2, std::time::Duration::from_secs(30));

    let mut wrong = t.app.settings.bounces.clone();
    wrong.imap_password = ambassador::config::Secret::new("not the password");
    let job = ambassador::bounces::BounceJob::new(
        t.store().clone(),
        t.app.clock.clone(),
        t.app.tracker.key().clone(),
        wrong,
    );
    let error = format!("{:#}", job.run().await.unwrap_err());
    assert!(
        error.contains("refused the login of bounces.imap_user \"bounces\""),
        "{error}"
    );
    assert!(
        !error.contains("not the password"),
        "the password is never shown: {error}"
    );

    let mut untrusted = t.app.settings.bounces.clone();
    untrusted.ca_file = std::path::PathBuf::new();
    let job = ambassador::bounces::BounceJob::new(
        t.store().clone(),
        t.app.clock.clone(),
        t.app.tracker.key().clone(),
        untrusted,
    );
    let error = format!("{:#}", job.run().await.unwrap_err());
    assert!(error.contains("TLS with the bounce mailbox"), "{error}");

    assert_eq!(servers.count("INBOX"), 2, "nothing moved");
    assert!(matched_by(&t).await.is_empty());
}

#[tokio::test]
async fn the_fetch_command_reads_the_mailbox_once_and_prints_what_it_did() {
    let Some(servers) = servers() else { return };
    let t = ambassador(&servers, true, 3).await;
    t.import(&roster(&format!("bob@{STAFF_DOMAIN}"))).await;
    t.tick_at(launch()).await;
    servers.wait_for_inbox(2, std::time::Duration::from_secs(30));
    let port = servers.imap_port.to_string();
    let key = t.db.dir.path().join("token.key");
    let command = |format: &str| {
        let mut c = assert_cmd::Command::cargo_bin("ambassador").unwrap();
        c.args(["bounces", "fetch", "--format", format])
            .env("AMBASSADOR__DATABASE__URL", &t.db.url)
            .env("AMBASSADOR__SECURITY__TOKEN_KEY_FILE", &key)
            .env("AMBASSADOR__BOUNCES__IMAP_HOST", "127.0.0.1")
            .env("AMBASSADOR__BOUNCES__IMAP_PORT", &port)
            .env("AMBASSADOR__BOUNCES__IMAP_USER", IMAP_USER)
            .env(
                "AMBASSADOR__BOUNCES__IMAP_PASSWORD_FILE",
                &servers.password_file,
            )
            .env("AMBASSADOR__BOUNCES__CA_FILE", &servers.ca_file);
        c.output().unwrap()
    };

    let out = command("json");

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    common::cli_json::check(
        "bounces fetch",
        &json,
        &common::cli_json::tables("bounces fetch")[0],
    );
    assert_eq!(
        (json["marked"].as_u64(), json["counted"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(t
        .store()
        .address_bounced(&format!("bob@{STAFF_DOMAIN}"))
        .await
        .unwrap());
    let again = command("text");
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("0 address(es) marked undeliverable"),
        "nothing left to read: {}",
        String::from_utf8_lossy(&again.stdout)
    );

    // Without a mailbox configured it says what to set, and reads nothing.
    let none = assert_cmd::Command::cargo_bin("ambassador")
        .unwrap()
        .args(["bounces", "fetch"])
        .env("AMBASSADOR__DATABASE__URL", &t.db.url)
        .output()
        .unwrap();
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("set bounces.imap_host"));
}

// Parsing stored samples: no server needed.

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/bounces")
            .join(name),
    )
    .unwrap()
}

#[test]
fn a_postfix_dsn_gives_status_recipient_token_and_message_id() {
    let Classified::Bounce(b) = classify(&fixture("postfix-unknown-user.eml")) else {
        panic!("not a bounce")
    };
    assert!(b.is_hard());
    assert_eq!(b.status, "5.1.1");
    assert_eq!(b.recipient.as_deref(), Some("bob@staff.test"));
    assert!(b.diagnostic.contains("unknown user"), "{}", b.diagnostic);
    assert_eq!(b.verp_tokens.len(), 1);
    assert_eq!(b.verp_tokens[0].len(), 50);
    assert!(b
        .original_message_id
        .as_deref()
        .is_some_and(|id| id.ends_with("@hospital.example.org>")));
}

#[test]
fn a_postfix_soft_dsn_is_a_failed_4xx() {
    let Classified::Bounce(b) = classify(&fixture("postfix-connection-refused.eml")) else {
        panic!("not a bounce")
    };
    assert_eq!((b.action, b.status.as_str()), (Action::Failed, "4.4.1"));
    assert!(
        b.diagnostic.contains("Connection refused"),
        "folded diagnostic joined: {}",
        b.diagnostic
    );
    assert!(b.is_soft() && !b.is_hard());
}

#[test]
fn an_exchange_ndr_without_a_delivery_status_part_is_read_from_its_text() {
    let Classified::Bounce(b) = classify(&fixture("exchange-recipient-not-found.eml")) else {
        panic!("not a bounce")
    };
    assert!(b.is_hard());
    assert_eq!(b.status, "5.1.10");
    assert_eq!(
        b.original_message_id.as_deref(),
        Some("<8d2c0a5e7b1f4c3a9e6d5b4a3c2e1f00@hospital.example.org>"),
        "the Message-ID of the returned headers"
    );
    assert!(b.verp_tokens.is_empty());
}

#[test]
fn a_postfix_bounce_flattened_to_text_keeps_status_and_message_id() {
    // What a forwarding rule that keeps only the text makes of a Postfix DSN.
    let raw = "From: MAILER-DAEMON@staff.test (Mail Delivery System)
To: hr-admin@hospital.example.org
Subject: Fwd: Undelivered Mail Returned to Sender

<bob@staff.test>: host mx.staff.test[192.0.2.5] said: 550 5.1.1 <bob@staff.test>:
    Recipient address rejected: User unknown in local recipient table (in reply
    to RCPT TO command)

> Message-ID: <0f1e2d3c4b5a69788796a5b4c3d2e1f0@hospital.example.org>
> Subject: SOAR training
";
    let Classified::Bounce(b) = classify(raw.as_bytes()) else {
        panic!("not a bounce")
    };
    assert_eq!(b.status, "5.1.1");
    assert_eq!(b.recipient.as_deref(), Some("bob@staff.test"));
    assert_eq!(
        b.original_message_id.as_deref(),
        Some("<0f1e2d3c4b5a69788796a5b4c3d2e1f0@hospital.example.org>")
    );
}

#[test]
fn auto_replies_are_told_by_header_or_subject_and_other_mail_is_neither() {
    assert_eq!(classify(AUTO_REPLY.as_bytes()), Classified::AutoReply);
    let by_subject = AUTO_REPLY
        .replace("Auto-Submitted: auto-replied\n", "")
        .replace("Automatic reply", "Out of Office");
    assert_eq!(classify(by_subject.as_bytes()), Classified::AutoReply);
    let exchange_oof = AUTO_REPLY
        .replace(
            "Auto-Submitted: auto-replied\n",
            "X-Auto-Response-Suppress: All\n",
        )
        .replace("Automatic reply: ", "");
    assert_eq!(
        classify(exchange_oof.as_bytes()),
        Classified::Other,
        "suppression alone is no reply"
    );
    assert_eq!(classify(STRAY.as_bytes()), Classified::Other);
    assert_eq!(classify(b"\xff\xfe not mail at all"), Classified::Other);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Whatever arrives in the mailbox, reading it never panics: arbitrary
    /// bytes, and a real DSN cut short or with a byte changed.
    #[test]
    fn no_message_makes_the_parser_panic(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
        cut in 0usize..4000,
        at in 0usize..4000,
        byte in proptest::prelude::any::<u8>(),
    ) {
        let _ = classify(&bytes);
        let mut dsn = fixture("postfix-unknown-user.eml");
        dsn.truncate(cut.max(1));
        if let Some(b) = dsn.get_mut(at) {
            *b = byte;
        }
        let _ = classify(&dsn);
    }
}
