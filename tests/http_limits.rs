//! What a hostile network gets from `serve`, on the real binary: idle
//! sockets beyond the connection cap and the open-file limit leave /healthz
//! answering; idle and half-sent requests are closed after their timeouts;
//! SIGTERM still drains an open request.

mod common;

use common::process::{terminate, Served};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A config for `serve` in `dir`: SQLite, file transport, and `http` keys.
fn config(dir: &Path, http: &str) -> PathBuf {
    let path = dir.join("ambassador.toml");
    let text = format!(
        "[database]\nurl = \"sqlite://{db}\"\n[smtp]\noutbox_dir = \"{outbox}\"\n\
         [http]\nbind = \"127.0.0.1:0\"\n{http}\n[security]\ntoken_key_file = \"{key}\"\nadmin_token = \"t0ken\"\n",
        db = dir.join("a.db").display(),
        outbox = dir.join("outbox").display(),
        key = dir.join("token.key").display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Waits for the server to close `stream`; how long that took.
fn time_until_closed(mut stream: TcpStream) -> Duration {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return started.elapsed(),
            Err(e) => panic!("the connection stayed open: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_sockets_beyond_the_cap_and_the_file_limit_leave_healthz_answering() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "max_connections = 32\nidle_timeout = \"120s\"");
    let mut served = Served::start_with_open_files(&config, 128);
    // More idle sockets than both the cap and the process's open-file limit.
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(served.address).unwrap())
        .collect();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let health = client
        .get(served.url("/healthz"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .unwrap_or_else(|e| panic!("/healthz did not answer: {e}; log: {}", served.log_text()));
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        !served.log_text().contains("accept error"),
        "the cap keeps the server under its file limit: {}",
        served.log_text()
    );
    // Stopping closes the idle sockets and exits cleanly.
    assert!(terminate(&mut served.child), "{}", served.log_text());
    drop(idle);
}

#[test]
fn idle_and_half_sent_requests_are_closed_after_their_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "idle_timeout = \"3s\"\nheader_timeout = \"1s\"");
    let served = Served::start_with_open_files(&config, 1024);

    let silent = TcpStream::connect(served.address).unwrap();
    let mut half = TcpStream::connect(served.address).unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let half_closed = time_until_closed(half);
    assert!(
        half_closed < Duration::from_millis(2500),
        "headers not finished within header_timeout: closed after {half_closed:?}"
    );
    let silent_closed = time_until_closed(silent);
    assert!(
        silent_closed > Duration::from_millis(1000),
        "a connection with no request gets idle_timeout, not header_timeout"
    );

    // After a complete request, keep-alive lasts idle_timeout.
    let mut kept = TcpStream::connect(served.address).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 12];
    kept.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let kept_closed = time_until_closed(kept);
    assert!(
        kept_closed > Duration::from_secs(2) && kept_closed < Duration::from_secs(6),
        "keep-alive closed after {kept_closed:?}, not about 3s"
    );
}

#[test]
fn sigterm_lets_an_open_request_finish() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    let mut served = Served::start_with_open_files(&config, 1024);
    let body = "Email,First Name\nann@hospital.example.org,Ann\n";
    let mut open = TcpStream::connect(served.address).unwrap();
    open.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "POST /api/roster?dry_run=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken\r\n\
         Content-Type: text/csv\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    open.write_all(head.as_bytes()).unwrap();
    // The handler asked for the body: the request is under way.
    let mut cont = [0u8; 25];
    open.read_exact(&mut cont).unwrap();
    assert_eq!(&cont, b"HTTP/1.1 100 Continue\r\n\r\n");
    let killed = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(served.child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !served.log_text().contains("shutdown requested") {
        assert!(
            Instant::now() < deadline,
            "no shutdown: {}",
            served.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    open.write_all(body.as_bytes()).unwrap();
    let mut response = String::new();
    open.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "the open request was answered: {response}"
    );
    assert!(served.child.wait().unwrap().success());
}

#[test]
fn the_units_open_file_limit_is_well_above_the_default_connection_cap() {
    let unit = include_str!("../systemd/ambassador.service");
    let limit: usize = unit
        .lines()
        .find_map(|l| l.strip_prefix("LimitNOFILE="))
        .expect("the unit sets LimitNOFILE")
        .trim()
        .parse()
        .unwrap();
    let defaults: toml::Value = toml::from_str(ambassador::config::DEFAULT_TOML).unwrap();
    let cap = defaults["http"]["max_connections"].as_integer().unwrap() as usize;
    assert!(
        limit >= 2 * cap,
        "LimitNOFILE={limit}, max_connections={cap}"
    );
}
