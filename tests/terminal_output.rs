//! What the one-shot commands print to a terminal or a pipe: a closed pipe
//! (`ambassador roster list | head`) ends quietly with exit 0, and tables fit
//! the terminal's width (wrapping cells, never cutting them) unless `--wide`.

mod common;

use common::app::{person, TestApp, HEADER};
use common::process::{ambassador, config_for_app};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

const LONG_DEPARTMENT: &str = "Supply Chain > Strategic Sourcing > Capital Equipment";

/// A roster of `n` people of `department`.
async fn roster_of(n: u32, department: &str) -> (TestApp, tempfile::TempDir, std::path::PathBuf) {
    let t = TestApp::spawn().await;
    let mut csv = vec![HEADER.to_string()];
    for i in 0..n {
        csv.push(person(
            i,
            "Maximiliana",
            &format!("Featherstonehaugh{i}"),
            department,
            "Senior Buyer",
            "dana.ross.supervisor@hospital.example.org",
        ));
    }
    t.import(&(csv.join("\n") + "\n")).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_for_app(dir.path(), &t);
    (t, dir, config)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_stops_early_ends_the_listing_quietly() {
    // 3,000 people print far more than a pipe holds, so writing blocks and
    // then fails once the reader has gone.
    let (_t, _dir, config) = roster_of(3_000, LONG_DEPARTMENT).await;
    let mut child = ambassador(&config, &["roster", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("email"), "{first}");
    // The reader (and with it the pipe) is dropped here, like `head -1`.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "nothing about the pipe: {stderr}");
}

/// The campaign of the other tests, started a day ago by the system clock,
/// so `serve`'s first planning tick enrols and plans.
fn started_campaign() -> String {
    let start = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ");
    common::app::CAMPAIGN.replace(
        "starts_at = \"2027-01-11T14:00:00Z\"",
        &format!("starts_at = \"{start}\""),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_serve_log_reads_as_sentences_without_library_chatter() {
    let (t, dir, config) = roster_of(1, "Procurement").await;
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[http]\nbind = \"127.0.0.1:0\"\n");
    std::fs::write(&config, text).unwrap();
    let campaign = dir.path().join("campaign.toml");
    std::fs::write(&campaign, started_campaign()).unwrap();
    common::process::run_ok(&config, &["campaign", "apply", campaign.to_str().unwrap()]);
    let mut served = common::process::Served::start_with(&config);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !served.log_text().contains("planning tick") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            served.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(common::process::terminate(&mut served.child));
    let lines: Vec<serde_json::Value> = served
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let planning = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("planning tick")
        })
        .unwrap();
    assert_eq!(
        planning["message"],
        "planning tick: enrolled 1 person, planned 1 message"
    );
    for line in &lines {
        let message = line["message"].as_str().unwrap_or_default();
        assert!(!message.contains(" { "), "a Debug dump: {line}");
        let target = line["target"].as_str().unwrap_or_default();
        assert!(
            line["level"] != "INFO" || target.starts_with("ambassador"),
            "library chatter at info: {line}"
        );
    }
    drop(t);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_roster_table_fits_the_terminal_and_wide_keeps_one_line_each() {
    let (_t, _dir, config) = roster_of(3, LONG_DEPARTMENT).await;
    let list = |args: &[&str]| {
        let out = ambassador(&config, args)
            .env("COLUMNS", "80")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let fitted = list(&["roster", "list"]);
    assert!(
        fitted.lines().all(|l| l.chars().count() <= 80),
        "every line fits 80 columns:\n{fitted}"
    );
    assert!(!fitted.contains('…'), "nothing is cut off:\n{fitted}");
    let letters = |text: &str| text.chars().filter(|c| !c.is_whitespace()).count();
    let wide = list(&["roster", "list", "--wide"]);
    assert_eq!(
        letters(&fitted),
        letters(&wide),
        "wrapped, not cut:\n{fitted}"
    );
    assert_eq!(
        wide.lines().count(),
        1 + 3 + 1,
        "a header, three people, the count"
    );
    let ann = wide.lines().nth(1).unwrap();
    assert!(
        ann.contains(LONG_DEPARTMENT) && ann.contains("dana.ross.supervisor@hospital.example.org"),
        "{ann}"
    );
    assert!(wide.trim_end().ends_with("3 people"), "{wide}");
}
