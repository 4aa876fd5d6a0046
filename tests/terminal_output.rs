//! What the one-shot commands print to a terminal or a pipe: a closed pipe
//! (`ambassador roster list | head`) ends quietly with exit 0, and tables fit
//! the terminal's width (wrapping cells, never cutting them) unless `--wide`.

mod common;

use common::app::{person, TestApp, HEADER};
use common::process::{ambassador, config_for_app};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

/// A roster of `n` people in a department with a long name.
async fn roster_of(n: u32) -> (TestApp, tempfile::TempDir, std::path::PathBuf) {
    let t = TestApp::spawn().await;
    let mut csv = vec![HEADER.to_string()];
    for i in 0..n {
        csv.push(person(
            i,
            "Maximiliana",
            &format!("Featherstonehaugh{i}"),
            "Supply Chain > Strategic Sourcing > Capital Equipment",
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
    let (_t, _dir, config) = roster_of(3_000).await;
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
