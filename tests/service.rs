//! ambassador as a systemd service, tested on the real binary: the unit
//! passes `systemd-analyze`, SIGHUP reloads templates without losing or
//! repeating a message, the sd_notify protocol is spoken with the unit's
//! environment, and the README's backup and restore commands work.
//!
//! Tests wait on the daemon's log lines (read from its stderr through a
//! pipe), on received messages and on notify datagrams, never on sleeps.

mod common;

use common::smtp::{Faults, SmtpServer};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/ambassador.service");
const WAIT: Duration = Duration::from_secs(60);

fn ambassador(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ambassador"));
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG");
    cmd
}

fn run_ok(config: &Path, args: &[&str]) -> String {
    let out = ambassador(config, args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

/// A running `serve` whose stderr (JSON log lines) is read line by line.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for the next log line containing `text`; returns it.
    fn wait_for_log(&mut self, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("no log line with {text:?}; log so far:\n{}", self.log()),
            }
        }
    }

    fn log(&self) -> String {
        self.seen.join("\n")
    }

    /// SIGTERM, then the exit status once the daemon drained.
    fn stop(&mut self) -> (std::process::ExitStatus, String) {
        signal(&self.child, "TERM");
        self.wait_exit()
    }

    /// The exit status, and the whole log, of a daemon already signalled.
    fn wait_exit(&mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        self.seen.extend(self.lines.iter());
        (status, self.log())
    }
}

/// A failed test must not leave a daemon behind.
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- the unit file ---------------------------------------------------------

fn systemd_analyze() -> Option<PathBuf> {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        common::skip::skip(
            "the unit file checks: systemd-analyze is not installed (apt-get install systemd; .ci/run does)",
            Some("AMBASSADOR_REQUIRE_SYSTEMD"),
        );
    }
    found.then(|| PathBuf::from("systemd-analyze"))
}

#[test]
fn unit_file_verifies_and_is_rated_2_or_lower() {
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    // `verify` checks that ExecStart's binary exists: point it at the one
    // under test instead of /usr/bin/ambassador.
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(UNIT)
        .unwrap()
        .replace("/usr/bin/ambassador", env!("CARGO_BIN_EXE_ambassador"));
    let copy = dir.path().join("ambassador.service");
    std::fs::write(&copy, unit).unwrap();
    let verify = Command::new(&analyze)
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );

    let security = Command::new(&analyze)
        .args(["security", "--offline=yes", "--no-pager", UNIT])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    let score = exposure(&report).unwrap_or_else(|| {
        panic!(
            "no exposure level in:\n{report}\n{}",
            String::from_utf8_lossy(&security.stderr)
        )
    });
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{report}");
}

/// The number in "→ Overall exposure level for ambassador.service: 1.2 OK".
fn exposure(report: &str) -> Option<f64> {
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))?;
    let after = line.rsplit_once(".service:")?.1.trim();
    after.split_whitespace().next()?.parse().ok()
}

// --- SIGHUP ----------------------------------------------------------------

const CAMPAIGN: &str = r#"
slug = "reload"
name = "Reload test"
course_url = "https://train.example.org/c"
contact = "ambassador@hospital.example.org"
starts_at = "2020-01-01T00:00:00Z"
due = "3650d"
send_window = "always"
[[steps]]
name = "announcement"
at = "0s"
template = "news_item"
"#;

/// A config for `serve` against `smtp_port`, with its templates and
/// campaigns read from folders in `dir`.
fn reload_setup(dir: &Path, smtp_port: u16) -> PathBuf {
    let templates = dir.join("templates");
    std::fs::create_dir(&templates).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/email");
    for entry in std::fs::read_dir(shipped).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "hbs") {
            std::fs::copy(&path, templates.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(templates.join("news_item.subject.hbs"), "Original subject").unwrap();
    let campaigns = dir.join("campaigns");
    std::fs::create_dir(&campaigns).unwrap();
    std::fs::write(campaigns.join("reload.toml"), CAMPAIGN).unwrap();
    let config = dir.join("ambassador.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[database]
url = "sqlite://{db}"
[smtp]
transport = "smtp"
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "Ambassador <ambassador@hospital.example.org>"
[http]
bind = "127.0.0.1:0"
[security]
token_key_file = "{key}"
[templates]
dir = "{templates}"
[campaigns]
dir = "{campaigns}"
[delivery]
plan_every = "1s"
"#,
            db = dir.join("amb.db").display(),
            key = dir.join("token.key").display(),
            templates = templates.display(),
            campaigns = campaigns.display(),
        ),
    )
    .unwrap();
    config
}

/// Adds one person to the roster while the daemon runs.
fn add_person(dir: &Path, config: &Path, email: &str) {
    let file = dir.join(format!("{email}.csv"));
    std::fs::write(&file, format!("Email,First Name\n{email},P\n")).unwrap();
    run_ok(
        config,
        &["roster", "import", file.to_str().unwrap(), "--mode", "add"],
    );
}

fn subject_to(messages: &[common::smtp::Received], email: &str) -> String {
    let message = messages
        .iter()
        .find(|m| m.recipients.iter().any(|r| r == email))
        .unwrap_or_else(|| panic!("nothing sent to {email}"));
    message.parsed().subject().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_refuses_a_broken_template_then_takes_a_fixed_one() {
    let smtp = SmtpServer::start(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = reload_setup(dir.path(), smtp.port());
    let subject_file = dir.path().join("templates/news_item.subject.hbs");
    add_person(dir.path(), &config, "a@hospital.example.org");
    let mut daemon = Daemon::start(ambassador(&config, &["serve"]));
    let sent = smtp.wait_for(1, WAIT).await;
    assert_eq!(
        subject_to(&sent, "a@hospital.example.org"),
        "Original subject"
    );

    std::fs::write(&subject_file, "Broken {{#if}}").unwrap();
    signal(&daemon.child, "HUP");
    let refused = tokio::task::block_in_place(|| daemon.wait_for_log("reload refused"));
    assert!(
        refused.contains("news_item"),
        "the reason names the template: {refused}"
    );
    add_person(dir.path(), &config, "b@hospital.example.org");
    let sent = smtp.wait_for(2, WAIT).await;
    assert_eq!(
        subject_to(&sent, "b@hospital.example.org"),
        "Original subject",
        "the running templates stay after a refused reload"
    );

    std::fs::write(&subject_file, "Updated subject").unwrap();
    signal(&daemon.child, "HUP");
    tokio::task::block_in_place(|| daemon.wait_for_log("reloaded templates and campaign files"));
    add_person(dir.path(), &config, "c@hospital.example.org");
    let sent = smtp.wait_for(3, WAIT).await;
    assert_eq!(
        subject_to(&sent, "c@hospital.example.org"),
        "Updated subject"
    );

    let (status, log) = tokio::task::block_in_place(|| daemon.stop());
    assert!(status.success(), "SIGTERM exits with 0: {status:?}\n{log}");
    let received = smtp.messages();
    let recipients: HashSet<String> = received.iter().flat_map(|m| m.recipients.clone()).collect();
    assert_eq!(received.len(), 3, "one message each, none twice: {log}");
    assert_eq!(recipients.len(), 3);
    assert!(smtp.duplicates().is_empty());
}

/// Applies a campaign like CAMPAIGN under another slug and name, through
/// the CLI while the daemon runs.
fn apply_campaign(dir: &Path, config: &Path, slug: &str) {
    let file = dir.join(format!("{slug}.toml"));
    let text = CAMPAIGN
        .replace("slug = \"reload\"", &format!("slug = \"{slug}\""))
        .replace(
            "name = \"Reload test\"",
            &format!("name = \"Campaign {slug}\""),
        );
    std::fs::write(&file, text).unwrap();
    run_ok(
        config,
        &["campaign", "apply", file.to_str().unwrap(), "--allow-empty"],
    );
}

/// The subject of the summary of campaign `slug`, once it has arrived
/// (the campaign of `campaigns.dir` has its own summary too).
async fn summary_subject(smtp: &SmtpServer, slug: &str) -> String {
    let wanted = format!("Campaign {slug}");
    let mut n = 1;
    loop {
        let sent = smtp.wait_for(n, WAIT).await;
        let found = sent
            .iter()
            .map(|m| m.parsed().subject().unwrap_or_default().to_string())
            .find(|s| s.contains(&wanted));
        if let Some(subject) = found {
            return subject;
        }
        assert!(n < 10, "no summary of {slug} among {} messages", sent.len());
        n = sent.len() + 1;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_takes_a_changed_weekly_summary_template_into_the_next_summary() {
    let smtp = SmtpServer::start(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = reload_setup(dir.path(), smtp.port());
    // A summary every second: each campaign's is claimed once a week, so
    // each new campaign gets exactly one, from the daemon's own templates.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "[report]\nweekly_cron = \"* * * * * *\"\nrecipients = [\"board@hospital.example.org\"]\n",
    );
    std::fs::write(&config, text).unwrap();
    let subject_file = dir.path().join("templates/weekly_summary.subject.hbs");
    std::fs::write(&subject_file, "Original summary: {{campaign.name}}").unwrap();
    apply_campaign(dir.path(), &config, "first");
    let mut daemon = Daemon::start(ambassador(&config, &["serve"]));
    let first = summary_subject(&smtp, "first").await;
    assert_eq!(first, "Original summary: Campaign first");

    // Changed on disk but not reloaded: the daemon keeps what it loaded.
    std::fs::write(&subject_file, "Updated summary: {{campaign.name}}").unwrap();
    apply_campaign(dir.path(), &config, "second");
    let second = summary_subject(&smtp, "second").await;
    assert_eq!(second, "Original summary: Campaign second");

    signal(&daemon.child, "HUP");
    tokio::task::block_in_place(|| daemon.wait_for_log("reloaded templates and campaign files"));
    apply_campaign(dir.path(), &config, "third");
    let third = summary_subject(&smtp, "third").await;
    assert_eq!(third, "Updated summary: Campaign third");

    let (status, log) = tokio::task::block_in_place(|| daemon.stop());
    assert!(status.success(), "SIGTERM exits with 0: {status:?}\n{log}");
}

/// The name line of `campaign show reload` (`reload — NAME`).
fn shown_name(config: &Path) -> String {
    let shown = run_ok(config, &["campaign", "show", "reload"]);
    shown.lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_applies_a_changed_campaign_file_and_refuses_a_broken_one() {
    let smtp = SmtpServer::start(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = reload_setup(dir.path(), smtp.port());
    // The subject shows which definition of the campaign a message was sent under.
    std::fs::write(
        dir.path().join("templates/news_item.subject.hbs"),
        "About {{campaign.name}}",
    )
    .unwrap();
    let campaign_file = dir.path().join("campaigns/reload.toml");
    add_person(dir.path(), &config, "a@hospital.example.org");
    let mut daemon = Daemon::start(ambassador(&config, &["serve"]));
    let sent = smtp.wait_for(1, WAIT).await;
    assert_eq!(
        subject_to(&sent, "a@hospital.example.org"),
        "About Reload test"
    );

    let renamed = CAMPAIGN.replace("Reload test", "Renamed course");
    std::fs::write(&campaign_file, &renamed).unwrap();
    signal(&daemon.child, "HUP");
    let applied = tokio::task::block_in_place(|| {
        daemon.wait_for_log("reloaded templates and campaign files")
    });
    assert!(applied.contains("\"changed\":1"), "{applied}");
    assert_eq!(shown_name(&config), "reload — Renamed course");
    add_person(dir.path(), &config, "b@hospital.example.org");
    let sent = smtp.wait_for(2, WAIT).await;
    assert_eq!(
        subject_to(&sent, "b@hospital.example.org"),
        "About Renamed course"
    );

    // A file that parses but names a template that does not exist, then
    // one that is not TOML: both refused, the running campaign stays.
    let unknown_template = renamed
        .replace("Renamed course", "Broken course")
        .replace("\"news_item\"", "\"no_such_template\"");
    for broken in [unknown_template.as_str(), "slug = \"reload\"\nname = "] {
        std::fs::write(&campaign_file, broken).unwrap();
        signal(&daemon.child, "HUP");
        let refused = tokio::task::block_in_place(|| daemon.wait_for_log("reload refused"));
        assert!(
            refused.contains("reload.toml"),
            "the reason names the file: {refused}"
        );
        assert_eq!(shown_name(&config), "reload — Renamed course");
    }
    add_person(dir.path(), &config, "c@hospital.example.org");
    let sent = smtp.wait_for(3, WAIT).await;
    assert_eq!(
        subject_to(&sent, "c@hospital.example.org"),
        "About Renamed course",
        "the running campaign stays after a refused reload"
    );

    let (status, log) = tokio::task::block_in_place(|| daemon.stop());
    assert!(status.success(), "SIGTERM exits with 0: {status:?}\n{log}");
    assert_eq!(smtp.messages().len(), 3, "one message each: {log}");
    assert!(smtp.duplicates().is_empty());
}

// --- sd_notify with the unit's environment ---------------------------------

/// The directories systemd gives the unit, laid out in a temp dir.
struct UnitDirs {
    _root: tempfile::TempDir,
    state: PathBuf,
    configuration: PathBuf,
    credentials: PathBuf,
    notify_socket: PathBuf,
}

impl UnitDirs {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let dir = |name: &str| {
            let path = root.path().join(name);
            std::fs::create_dir(&path).unwrap();
            path
        };
        let (state, configuration, credentials) = (dir("state"), dir("config"), dir("creds"));
        let notify_socket = root.path().join("notify.sock");
        Self {
            _root: root,
            state,
            configuration,
            credentials,
            notify_socket,
        }
    }

    /// `serve` as the unit runs it: no --config, the environment and
    /// working directory systemd sets up.
    fn serve(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ambassador"));
        cmd.arg("serve")
            .current_dir(&self.state)
            .env_remove("RUST_LOG")
            .env("STATE_DIRECTORY", &self.state)
            .env("CONFIGURATION_DIRECTORY", &self.configuration)
            .env("CREDENTIALS_DIRECTORY", &self.credentials)
            .env("NOTIFY_SOCKET", &self.notify_socket)
            .env("WATCHDOG_USEC", "200000");
        cmd
    }
}

/// Reads notify datagrams until one holds `state`; returns everything read.
fn wait_for_notification(socket: &UnixDatagram, state: &str) -> String {
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {state} (got {seen:?}): {e}"));
        let datagram = String::from_utf8_lossy(&buf[..n]);
        seen.push_str(&datagram);
        if datagram.lines().any(|l| l == state) {
            return seen;
        }
    }
}

/// "127.0.0.1:PORT" from the JSON line `HTTP listening`.
fn listening_address(line: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(line).unwrap();
    json["address"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn under_the_units_environment_it_notifies_ready_watchdog_and_stopping() {
    let unit = UnitDirs::new();
    std::fs::write(
        unit.configuration.join("ambassador.toml"),
        "[http]\nbind = \"127.0.0.1:0\"\n[security]\nadmin_token_file = \"admin-token\"\n",
    )
    .unwrap();
    std::fs::write(
        unit.credentials.join("admin-token"),
        "t0ken-from-credential\n",
    )
    .unwrap();
    let socket = UnixDatagram::bind(&unit.notify_socket).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();

    let mut daemon = Daemon::start(unit.serve());
    tokio::task::block_in_place(|| wait_for_notification(&socket, "READY=1"));
    let listening = tokio::task::block_in_place(|| daemon.wait_for_log("HTTP listening"));
    assert!(
        unit.state.join("ambassador.db").exists(),
        "relative paths land in the working (state) directory"
    );

    let url = format!("http://{}/api/campaigns", listening_address(&listening));
    let client = reqwest::Client::new();
    let with_token = client
        .get(&url)
        .bearer_auth("t0ken-from-credential")
        .send()
        .await
        .unwrap();
    assert_eq!(
        with_token.status(),
        200,
        "the credential is the admin token"
    );
    let without = client.get(&url).send().await.unwrap();
    assert_eq!(without.status(), 401);

    tokio::task::block_in_place(|| wait_for_notification(&socket, "WATCHDOG=1"));
    signal(&daemon.child, "TERM");
    tokio::task::block_in_place(|| wait_for_notification(&socket, "STOPPING=1"));
    let (status, log) = tokio::task::block_in_place(|| daemon.wait_exit());
    assert!(status.success(), "{status:?}\n{log}");
    assert!(!log.contains("t0ken-from-credential"), "{log}");
}

// --- supervision: a failed or wedged worker gets the daemon restarted ------

#[tokio::test(flavor = "multi_thread")]
async fn serve_exits_non_zero_when_the_worker_loses_its_database() {
    let dir = tempfile::tempdir().unwrap();
    let config = plain_config(dir.path());
    let mut daemon = Daemon::start(ambassador(&config, &["serve"]));
    tokio::task::block_in_place(|| daemon.wait_for_log("ambassador is running"));

    // A real fault from outside: another process renames the table the
    // worker claims from, so every claim fails ("no such table").
    let url = format!("sqlite://{}", dir.path().join("amb.db").display());
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE outbox RENAME TO outbox_gone")
        .execute(&mut db)
        .await
        .unwrap();
    let broken_at = Instant::now();

    let (status, log) = tokio::task::block_in_place(|| {
        daemon.wait_for_log("stopping the other tasks");
        daemon.wait_exit()
    });
    assert!(
        !status.success(),
        "a failed worker exits non-zero: {status:?}\n{log}"
    );
    assert!(
        broken_at.elapsed() < Duration::from_secs(30),
        "it exits within seconds, not after a lease: {:?}",
        broken_at.elapsed()
    );
    assert!(log.contains("the delivery worker failed"), "{log}");
    assert!(log.contains("outbox"), "the cause is logged: {log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watchdog_stops_pinging_when_the_worker_stalls() {
    // A relay that accepts connections and never says a word: with a long
    // smtp.timeout and one send at a time, the first send holds the only
    // slot and the worker's loop waits for it with the second message ready.
    let relay = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_port = relay.local_addr().unwrap().port();
    let (connected, connections) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in relay.incoming().map_while(Result::ok) {
            held.push(stream);
            if connected.send(()).is_err() {
                break;
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = reload_setup(dir.path(), relay_port);
    add_person(dir.path(), &config, "a@hospital.example.org");
    add_person(dir.path(), &config, "b@hospital.example.org");
    let notify = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&notify).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut cmd = ambassador(&config, &["serve"]);
    cmd.env("NOTIFY_SOCKET", &notify)
        .env("WATCHDOG_USEC", "300000")
        .env("AMBASSADOR__SMTP__TIMEOUT", "1h")
        .env("AMBASSADOR__DELIVERY__CONCURRENCY", "1");
    let mut daemon = Daemon::start(cmd);
    tokio::task::block_in_place(|| wait_for_notification(&socket, "WATCHDOG=1"));
    connections
        .recv_timeout(WAIT)
        .expect("the worker reached the relay");

    let stalled = tokio::task::block_in_place(|| {
        daemon.wait_for_log("no progress within the watchdog interval")
    });
    assert!(stalled.contains("delivery worker"), "{stalled}");
    // Pings sent before that line are already queued: drop them. Then
    // silence, over five watchdog intervals.
    let mut buf = [0u8; 4096];
    socket.set_nonblocking(true).unwrap();
    while socket.recv(&mut buf).is_ok() {}
    socket.set_nonblocking(false).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    while let Ok(n) = socket.recv(&mut buf) {
        let datagram = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(
            !datagram.lines().any(|l| l == "WATCHDOG=1"),
            "a ping after the stall was reported: {datagram:?}\n{}",
            daemon.log()
        );
    }
}

// --- backup and restore ------------------------------------------------------

fn plain_config(dir: &Path) -> PathBuf {
    let config = dir.join("ambassador.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite://{}\"\n[http]\nbind = \"127.0.0.1:0\"\n[security]\ntoken_key_file = \"{}\"\n[smtp]\noutbox_dir = \"{}\"\n",
            dir.join("amb.db").display(),
            dir.join("token.key").display(),
            dir.join("outbox").display(),
        ),
    )
    .unwrap();
    config
}

#[test]
fn a_backup_taken_while_serving_restores_the_same_roster() {
    let dir = tempfile::tempdir().unwrap();
    let config = plain_config(dir.path());
    let roster = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/roster.csv");
    run_ok(&config, &["roster", "import", roster.to_str().unwrap()]);
    let before = run_ok(&config, &["roster", "list", "--format", "csv"]);
    assert!(before.lines().count() > 1, "{before}");

    let mut daemon = Daemon::start(ambassador(&config, &["serve"]));
    daemon.wait_for_log("ambassador is running");
    let backup = dir.path().join("backup.db");
    run_ok(&config, &["db", "backup", backup.to_str().unwrap()]);
    // A change after the backup, which the restore must undo.
    let late = dir.path().join("late.csv");
    std::fs::write(&late, "Email,First Name\nlate@hospital.example.org,Late\n").unwrap();
    run_ok(
        &config,
        &["roster", "import", late.to_str().unwrap(), "--mode", "add"],
    );
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");

    // The README's restore: service stopped, copy over, no stale WAL.
    let db = dir.path().join("amb.db");
    for stale in ["amb.db-wal", "amb.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(stale));
    }
    std::fs::copy(&backup, &db).unwrap();

    let after = run_ok(&config, &["roster", "list", "--format", "csv"]);
    assert_eq!(after, before);
}
