//! Proves the loopback SMTP server in `common::smtp` against lettre's real
//! async client: messages arrive intact, and every injected fault reaches
//! the client as the error a misbehaving real server would cause.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::smtp::{Faults, Received, SmtpServer};
use futures::stream::{self, StreamExt};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::MultiPart;
use lettre::transport::smtp::{Error as SmtpError, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Generous: only a broken server takes this long, a healthy one milliseconds.
const WAIT: Duration = Duration::from_secs(10);
const SUBJECT: &str = "Your SOAR course – module 1 is ready";
const TEXT: &str = "Hello Amal,\nmodule 1 takes 20 minutes.\n";
const HTML: &str = "<p>Hello Amal,</p><p>module 1 takes <b>20 minutes</b>.</p>";

fn transport(server: &SmtpServer) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.port())
        .build()
}

fn pooled_transport(server: &SmtpServer, max_size: u32) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.port())
        .pool_config(PoolConfig::new().max_size(max_size))
        .build()
}

/// A reminder as ambassador sends it: multipart/alternative with its own
/// Message-ID (lettre adds none unless asked).
fn course_email(to: &str) -> Message {
    Message::builder()
        .message_id(None)
        .from("SOAR training <training@ambassador.test>".parse().unwrap())
        .to(to.parse().unwrap())
        .subject(SUBJECT)
        .multipart(MultiPart::alternative_plain_html(
            TEXT.to_owned(),
            HTML.to_owned(),
        ))
        .unwrap()
}

/// The Message-ID as mail-parser reports it: without angle brackets.
fn message_id(email: &Message) -> String {
    let raw = email.headers().get_raw("Message-ID").unwrap();
    raw.trim().trim_matches(['<', '>']).to_owned()
}

fn unix_lines(text: &str) -> String {
    text.replace("\r\n", "\n")
}

#[tokio::test]
async fn multipart_message_arrives_intact() {
    let server = SmtpServer::start(Faults::default()).await;
    let email = course_email("Amal Haddad <amal@hospital.test>");

    transport(&server).send(email.clone()).await.unwrap();

    let received = server.wait_for(1, WAIT).await;
    let message = &received[0];
    assert_eq!(message.from, "training@ambassador.test");
    assert_eq!(message.recipients, ["amal@hospital.test"]);
    assert_eq!(message.message_id(), Some(message_id(&email)));
    let content_type = message.header("Content-Type").unwrap();
    assert!(
        content_type.starts_with("multipart/alternative"),
        "{content_type}"
    );
    let parsed = message.parsed();
    assert_eq!(parsed.subject(), Some(SUBJECT));
    assert_eq!(unix_lines(&parsed.body_text(0).unwrap()), TEXT);
    assert_eq!(parsed.body_html(0).unwrap(), HTML);
}

#[tokio::test]
async fn lines_starting_with_a_dot_survive() {
    let server = SmtpServer::start(Faults::default()).await;
    let body = ".\r\n.hidden\r\n..two dots\r\nend\r\n";
    let email = Message::builder()
        .from("training@ambassador.test".parse().unwrap())
        .to("amal@hospital.test".parse().unwrap())
        .header(ContentType::TEXT_PLAIN)
        .header(ContentTransferEncoding::SevenBit)
        .body(body.to_owned())
        .unwrap();

    transport(&server).send(email).await.unwrap();

    let received = server.wait_for(1, WAIT).await;
    let raw = String::from_utf8(received[0].raw.clone()).unwrap();
    assert!(
        raw.contains("\r\n\r\n.\r\n.hidden\r\n..two dots\r\nend\r\n"),
        "{raw:?}"
    );
    let text = received[0].parsed().body_text(0).unwrap().into_owned();
    assert_eq!(text.trim_end(), body.trim_end());
}

#[tokio::test]
async fn rejected_recipient_is_a_permanent_error() {
    let server = SmtpServer::start(Faults::default().reject_rcpt_550("gone@hospital.test")).await;

    let error = transport(&server)
        .send(course_email("gone@hospital.test"))
        .await
        .unwrap_err();

    assert!(error.is_permanent(), "{error:?}");
    assert_eq!(error.status().map(u16::from), Some(550));
    assert!(server.messages().is_empty());
    assert_eq!(server.fault_counts().rejected_rcpt_550, 1);
}

#[tokio::test]
async fn one_rejected_recipient_fails_the_whole_message() {
    let server = SmtpServer::start(Faults::default().reject_rcpt_550("gone@hospital.test")).await;
    let email = Message::builder()
        .from("training@ambassador.test".parse().unwrap())
        .to("amal@hospital.test".parse().unwrap())
        .to("gone@hospital.test".parse().unwrap())
        .body(TEXT.to_owned())
        .unwrap();

    let error = transport(&server).send(email).await.unwrap_err();

    assert!(error.is_permanent(), "{error:?}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn temporary_failure_is_transient_and_the_retry_is_accepted() {
    let server = SmtpServer::start(Faults::default().temp_fail_451_every_nth(1)).await;
    let mailer = transport(&server);
    let email = course_email("amal@hospital.test");

    let error = mailer.send(email.clone()).await.unwrap_err();
    mailer.send(email.clone()).await.unwrap();

    assert!(error.is_transient(), "{error:?}");
    assert_eq!(error.status().map(u16::from), Some(451));
    let received = server.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message_id(), Some(message_id(&email)));
    assert_eq!(server.fault_counts().temp_failed_451, 1);
}

#[tokio::test]
async fn dropped_reply_is_an_error_yet_the_message_is_stored() {
    let server = SmtpServer::start(Faults::default().drop_before_reply_every_nth(1)).await;
    let mailer = transport(&server);
    let email = course_email("amal@hospital.test");

    let error = mailer.send(email.clone()).await.unwrap_err();

    assert_lost_connection(&error);
    assert_eq!(server.wait_for(1, WAIT).await.len(), 1);
    mailer.send(email.clone()).await.unwrap();
    assert_eq!(server.wait_for(2, WAIT).await.len(), 2);
    assert_eq!(server.duplicates(), [message_id(&email)]);
    assert_eq!(server.fault_counts().dropped_before_reply, 1);
}

#[tokio::test]
async fn hang_up_after_mail_from_is_an_error_and_stores_nothing() {
    let server = SmtpServer::start(Faults::default().drop_after_mail_every_nth(2)).await;
    let mailer = transport(&server);
    let first = course_email("amal@hospital.test");
    let second = course_email("omar@hospital.test");

    mailer.send(first.clone()).await.unwrap();
    let error = mailer.send(second.clone()).await.unwrap_err();
    let stored_after_drop = server.messages().len();
    mailer.send(second.clone()).await.unwrap();

    assert_lost_connection(&error);
    assert_eq!(stored_after_drop, 1);
    let ids: Vec<_> = server
        .wait_for(2, WAIT)
        .await
        .iter()
        .map(|m| m.message_id())
        .collect();
    assert_eq!(ids, [Some(message_id(&first)), Some(message_id(&second))]);
    assert_eq!(server.fault_counts().dropped_after_mail, 1);
}

/// RSET and HELO are never sent by lettre, so this speaks SMTP by hand.
#[tokio::test]
async fn rset_and_helo_discard_the_transaction() {
    let server = SmtpServer::start(Faults::default()).await;
    let mut client = BufReader::new(TcpStream::connect(server.addr()).await.unwrap());
    assert!(read_reply(&mut client).await.starts_with("220 "));

    let script = [
        ("HELO client.test", "250 "),
        ("MAIL FROM:<training@ambassador.test>", "250 "),
        ("RSET", "250 "),
        ("RCPT TO:<amal@hospital.test>", "503 "),
        ("MAIL FROM:<training@ambassador.test>", "250 "),
        ("HELO client.test", "250 "),
        ("DATA", "503 "),
        ("NOOP", "250 "),
        ("QUIT", "221 "),
    ];
    for (command, expected) in script {
        client
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
        let reply = read_reply(&mut client).await;
        assert!(reply.starts_with(expected), "{command} -> {reply}");
    }
    assert!(server.messages().is_empty());
}

async fn read_reply(client: &mut BufReader<TcpStream>) -> String {
    let mut reply = String::new();
    client.read_line(&mut reply).await.unwrap();
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_delivers_200_concurrent_messages() {
    let server = SmtpServer::start(Faults::default()).await;
    let mailer = pooled_transport(&server, 20);
    let emails = learner_emails(200);
    let sent: BTreeSet<String> = emails.iter().map(message_id).collect();

    // 50 at a time rather than all 200: lettre's pool does not cap open
    // connections, so bounded concurrency is what lets it reuse them.
    let results: Vec<_> = stream::iter(emails)
        .map(|email| mailer.send(email))
        .buffer_unordered(50)
        .collect()
        .await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let received = server.wait_for(200, WAIT).await;
    assert_eq!(received.len(), 200);
    assert_eq!(distinct_ids(&received), sent);
    assert!(received
        .iter()
        .all(|m| m.parsed().body_html(0).as_deref() == Some(HTML)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_delivers_every_message_despite_faults_when_retried() {
    let faults = Faults::default()
        .temp_fail_451_every_nth(7)
        .drop_before_reply_every_nth(11)
        .drop_after_mail_every_nth(13);
    let server = SmtpServer::start(faults).await;
    let mailer = pooled_transport(&server, 20);
    let emails = learner_emails(200);
    let sent: BTreeSet<String> = emails.iter().map(message_id).collect();

    let results: Vec<_> = stream::iter(emails)
        .map(|email| send_with_retries(&mailer, email))
        .buffer_unordered(50)
        .collect()
        .await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // 200 distinct messages: 200 / 11 = 18 stored twice.
    let received = server.wait_for(218, WAIT).await;
    assert_eq!(received.len(), 218);
    assert_eq!(distinct_ids(&received), sent);
    assert_eq!(server.duplicates().len(), 18);
    let counts = server.fault_counts();
    assert_eq!(
        (counts.temp_failed_451, counts.dropped_before_reply),
        (28, 18)
    );
    // At least 200 + 28 + 18 MAIL FROMs reached the server: 246 / 13 = 18.
    assert!(counts.dropped_after_mail >= 18, "{counts:?}");
}

fn distinct_ids(received: &[Received]) -> BTreeSet<String> {
    received.iter().filter_map(Received::message_id).collect()
}

fn learner_emails(n: usize) -> Vec<Message> {
    (0..n)
        .map(|i| course_email(&format!("learner{i}@hospital.test")))
        .collect()
}

/// Retries what is not permanent, as ambassador's delivery worker will.
async fn send_with_retries(
    mailer: &AsyncSmtpTransport<Tokio1Executor>,
    email: Message,
) -> Result<(), SmtpError> {
    const ATTEMPTS: usize = 10;
    let mut attempt = 1;
    loop {
        match mailer.send(email.clone()).await {
            Ok(_) => return Ok(()),
            Err(error) if error.is_permanent() || attempt == ATTEMPTS => return Err(error),
            Err(_) => attempt += 1,
        }
    }
}

/// A hang-up is neither transient nor permanent to lettre: it reports a
/// malformed ("incomplete") response, with no SMTP status.
fn assert_lost_connection(error: &SmtpError) {
    assert!(error.is_response(), "{error:?}");
    assert!(!error.is_transient() && !error.is_permanent(), "{error:?}");
    assert_eq!(error.status(), None);
}
