//! No email the project sends looks like spam: SpamAssassin, with its local
//! rules only (no network tests, no Bayes), scores every kind of message
//! the demo writes (every campaign step, the weekly summary) and a
//! manager's team digest of the demo's rollout below 1.0 of its 5.0
//! threshold. Skipped with a reason where spamassassin is not installed;
//! `.ci/run` installs it and sets AMBASSADOR_REQUIRE_SPAMASSASSIN=1.

mod common;

use common::process::{ambassador, run_ok};
use common::skip::skip;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const MAX_SCORE: f64 = 1.0;
/// A manager in the demo's roster (examples/roster.csv).
const MANAGER: &str = "priya.raman@riverside-health.example.org";

fn spamassassin_present() -> bool {
    Command::new("spamassassin")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// SpamAssassin's score of `eml` and the rules that hit, local tests only.
fn score(eml: &Path, home: &Path) -> (f64, String) {
    let out = Command::new("spamassassin")
        .args(["-L", "-t", "--cf=use_bayes 0", "--cf=bayes_auto_learn 0"])
        .env("HOME", home)
        .stdin(std::fs::File::open(eml).unwrap())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let status: String = text
        .lines()
        .skip_while(|l| !l.starts_with("X-Spam-Status:"))
        .take_while(|l| l.starts_with("X-Spam-Status:") || l.starts_with('\t'))
        .collect();
    let score = status
        .split_once("score=")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no score from spamassassin for {}:\n{text}", eml.display()));
    (score, status)
}

/// One .eml per kind of message in the demo's outbox, by step name
/// (`00000012-reminder-1.eml` is a `reminder-1`; `weekly-…` the summary).
fn one_of_each_kind(outbox: &Path) -> BTreeMap<String, PathBuf> {
    let mut kinds = BTreeMap::new();
    for entry in std::fs::read_dir(outbox).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let kind = match name.split_once('-') {
            _ if name.starts_with("weekly-") => "weekly-summary".to_string(),
            Some((_, step)) => step.to_string(),
            None => name.clone(),
        };
        kinds.entry(kind).or_insert(path);
    }
    kinds
}

#[test]
fn every_kind_of_message_the_demo_writes_scores_below_one() {
    if !spamassassin_present() {
        return skip(
            "spamassassin is not installed (Debian: apt-get install spamassassin)",
            Some("AMBASSADOR_REQUIRE_SPAMASSASSIN"),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo-out");
    let config = dir.path().join("demo.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite://{}\"\n[security]\ntoken_key_file = \"{}\"\n",
            out.join("demo.db").display(),
            out.join("token.key").display()
        ),
    )
    .unwrap();
    run_ok(&config, &["demo", "--out", out.to_str().unwrap()]);
    let mut kinds = one_of_each_kind(&out.join("outbox"));
    let digest = dir.path().join("digest.eml");
    let preview = ambassador(
        &config,
        &["report", "preview-digest", "--manager", MANAGER, "--out"],
    )
    .arg(&digest)
    .output()
    .unwrap();
    assert!(
        preview.status.success(),
        "{}",
        String::from_utf8_lossy(&preview.stderr)
    );
    kinds.insert("team-digest".into(), digest);
    let expected = [
        "announcement",
        "escalation",
        "last-call",
        "reminder-1",
        "reminder-2",
        "team-digest",
        "thanks",
        "weekly-summary",
    ];
    assert_eq!(
        kinds.keys().collect::<Vec<_>>(),
        expected,
        "every kind, once"
    );
    let home = tempfile::tempdir().unwrap();
    let mut over = Vec::new();
    for (kind, eml) in &kinds {
        let (score, status) = score(eml, home.path());
        if score >= MAX_SCORE {
            over.push(format!("{kind}: {status}"));
        }
    }
    assert!(
        over.is_empty(),
        "scored {MAX_SCORE} or more:\n{}",
        over.join("\n")
    );
}
