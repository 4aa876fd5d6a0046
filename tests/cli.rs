//! The command line, run as the real binary: every command in
//! `ambassador --help` with its main options, `--format json` checked field
//! by field against docs/cli-json.md, and the exit status and message of
//! the common mistakes (missing file, unknown config key, unknown campaign,
//! bad date). History that needs time to pass (planning ticks) is made
//! in-process on the same database; everything read back goes through the
//! binary.

mod common;

use chrono::{Duration, Utc};
use common::app::TestApp;
use common::cli_json::{check, check_each, tables};
use common::process::{ambassador, config_for_app, stdout_of};
use common::smtp::Faults;
use serde_json::Value;
use std::path::{Path, PathBuf};

const BOARD: &str = "board@hospital.example.org";

/// Every leaf command of `ambassador --help`, and the test that runs it
/// (in this file, or `file.rs::test` for one in another tests/ file).
const COVERED: &[(&str, &str)] = &[
    (
        "config check",
        "config_check_prints_file_and_environment_values_with_secrets_redacted",
    ),
    ("db migrate", "a_rollout_runs_through_every_command"),
    ("db backup", "a_rollout_runs_through_every_command"),
    ("roster import", "a_rollout_runs_through_every_command"),
    ("roster list", "a_rollout_runs_through_every_command"),
    ("campaign apply", "a_rollout_runs_through_every_command"),
    ("campaign list", "a_rollout_runs_through_every_command"),
    ("campaign show", "a_rollout_runs_through_every_command"),
    ("campaign pause", "a_rollout_runs_through_every_command"),
    ("campaign resume", "a_rollout_runs_through_every_command"),
    ("campaign cancel", "a_rollout_runs_through_every_command"),
    ("campaign preview", "a_rollout_runs_through_every_command"),
    ("report", "a_rollout_runs_through_every_command"),
    ("report send-weekly", "a_rollout_runs_through_every_command"),
    (
        "report preview-weekly",
        "the_summary_and_a_digest_preview_as_eml_escaped_and_unsent",
    ),
    (
        "report preview-digest",
        "the_summary_and_a_digest_preview_as_eml_escaped_and_unsent",
    ),
    ("completions import", "a_rollout_runs_through_every_command"),
    ("completions add", "a_rollout_runs_through_every_command"),
    ("exempt", "a_rollout_runs_through_every_command"),
    (
        "campaign exemptions",
        "a_rollout_runs_through_every_command",
    ),
    // Runs the real `serve`; the rest of service.rs covers SIGHUP and backup while serving.
    (
        "serve",
        "service.rs::under_the_units_environment_it_notifies_ready_watchdog_and_stopping",
    ),
    ("demo", "demo_writes_every_message_it_reports"),
    ("admin add", ADMIN_COMMANDS),
    ("admin list", ADMIN_COMMANDS),
    ("admin disable", ADMIN_COMMANDS),
    ("admin enable", ADMIN_COMMANDS),
    ("admin role", ADMIN_COMMANDS),
    ("admin token", ADMIN_COMMANDS),
    (
        "bounces fetch",
        "bounces.rs::the_fetch_command_reads_the_mailbox_once_and_prints_what_it_did",
    ),
];

/// Where the `admin` commands run (with their audit entries).
const ADMIN_COMMANDS: &str =
    "audit_trail.rs::the_command_line_records_accounts_tokens_apply_cancel_and_exports_as_the_os_user";

/// The subcommands listed under "Commands:" in `ambassador ARGS --help`.
fn commands_in_help(args: &[&str]) -> Vec<String> {
    let out = assert_cmd::Command::cargo_bin("ambassador")
        .unwrap()
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_command_in_the_help_is_covered_by_a_test() {
    let mut leaves = Vec::new();
    for top in commands_in_help(&[]) {
        let subs = commands_in_help(&[&top]);
        if top == "report" {
            leaves.push(top.clone()); // report takes options as well as send-weekly
        }
        if subs.is_empty() {
            leaves.push(top);
        } else {
            leaves.extend(subs.into_iter().map(|s| format!("{top} {s}")));
        }
    }
    let mut covered: Vec<String> = COVERED.iter().map(|(c, _)| c.to_string()).collect();
    leaves.sort();
    covered.sort();
    assert_eq!(
        leaves, covered,
        "a command without a test, or a test of a command gone"
    );
    // Each named test exists, under a test attribute: here, or in the
    // tests/ file an entry names (`file.rs::test`).
    for (command, entry) in COVERED {
        let (file, test) = entry.split_once("::").unwrap_or(("cli.rs", entry));
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join(file);
        let source = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = source.lines().collect();
        let is_test = lines.windows(2).any(|pair| {
            pair[0].trim_start().starts_with("#[")
                && pair[0].contains("test")
                && pair[1].contains(&format!("fn {test}("))
        });
        assert!(
            is_test,
            "`{command}` names {test}, which is not a test in tests/{file}"
        );
    }
}

// --- a rollout, command by command ------------------------------------------

const CAMPAIGN: &str = r#"
slug = "cli"
name = "CLI rollout"
course_url = "https://train.example.org/course/1"
contact = "ambassador@hospital.example.org"
starts_at = "2020-01-06T14:00:00Z"
due = "14d"
send_window = "always"

[[steps]]
name = "announcement"
at = "0s"
template = "news_item"

[[steps]]
name = "reminder-1"
at = "7d"
template = "reminder"
"#;

const ROSTER: &str =
    "Employee ID,First Name,Last Name,Email,Department,Job Title,Location,Manager Email\n\
    E1,Ann,Lee,ann.lee@hospital.example.org,Procurement,Buyer,Main,mia.boss@hospital.example.org\n\
    E2,Bob,Ray,bob.ray@hospital.example.org,Procurement,Buyer,Main,mia.boss@hospital.example.org\n\
    E3,Cy,Oh,cy.oh@hospital.example.org,Supply Chain,Analyst,North,\n";

/// Runs `args`, asserts success, and returns stdout parsed as JSON.
fn json_of(config: &Path, args: &[&str]) -> Value {
    let text = stdout_of(config, args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}:\n{text}"))
}

/// Runs `args`, asserts success, and returns stderr.
fn stderr_of(config: &Path, args: &[&str]) -> String {
    let out = ambassador(config, args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    stderr
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `--format json` of `roster import` and `roster list`, as documented.
fn check_roster_json(config: &Path, roster: &str) {
    let doc = tables("roster import");
    let dry = json_of(
        config,
        &["roster", "import", roster, "--dry-run", "--format", "json"],
    );
    check("roster import", &dry, &doc[0]);
    check("roster import.counts", &dry["counts"], &doc[1]);
    check_each("roster import.changes", &dry["changes"], &doc[3]);
    check_each("roster import.columns", &dry["columns"], &doc[4]);
    assert_eq!(dry["columns"][0]["to"], "employee_id");
    assert_eq!(
        (dry["applied"].as_bool(), dry["dry_run"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(dry["counts"]["added"], 3);
    let imported = stdout_of(config, &["roster", "import", roster]);
    assert!(imported.contains("added 3"), "{imported}");

    let list = json_of(config, &["roster", "list", "--format", "json"]);
    check_each("roster list", &list, &tables("roster list")[0]);
    let emails: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["email"].as_str())
        .collect();
    assert_eq!(emails.len(), 3, "{emails:?}");
    let table = stdout_of(config, &["roster", "list"]);
    assert!(table.trim_end().ends_with("3 people"), "{table}");
    let csv = stdout_of(config, &["roster", "list", "--inactive", "--format", "csv"]);
    assert_eq!(csv.lines().count(), 4, "a header and three people:\n{csv}");
}

/// `campaign apply | list | show | preview`: apply's diff and dry run, and
/// `--format json` of apply and show, as documented.
fn check_campaign_commands(config: &Path, file: &str) {
    let doc = tables("campaign apply");
    let dry = json_of(
        config,
        &["campaign", "apply", file, "--dry-run", "--format", "json"],
    );
    check("campaign apply", &dry, &doc[0]);
    check("campaign apply.effect", &dry["effect"], &doc[2]);
    assert_eq!(
        (
            dry["outcome"].as_str(),
            dry["applied"].as_bool(),
            dry["audience"].as_u64()
        ),
        (Some("dry-run"), Some(false), Some(3))
    );
    let created = stdout_of(config, &["campaign", "apply", file]);
    assert_eq!(created, "audience: 3 people match\ncampaign cli: created\n");
    let again = stdout_of(config, &["campaign", "apply", file]);
    assert_eq!(
        again, "audience: 3 people match\ncampaign cli: unchanged\n",
        "apply is idempotent"
    );
    let edited = Path::new(file).with_file_name("cli-edited.toml");
    std::fs::write(&edited, CAMPAIGN.replace("at = \"7d\"", "at = \"5d\"")).unwrap();
    let edited = edited.to_str().unwrap();
    let diff = json_of(
        config,
        &["campaign", "apply", edited, "--dry-run", "--format", "json"],
    );
    check_each("campaign apply.changes", &diff["changes"], &doc[1]);
    assert_eq!(
        diff["changes"],
        serde_json::json!([{
            "key": "step \"reminder-1\"",
            "from": "7 days after enrolment, template reminder",
            "to": "5 days after enrolment, template reminder",
        }])
    );
    let said = stdout_of(config, &["campaign", "apply", edited, "--dry-run"]);
    assert!(
        said.starts_with("campaign cli: changes\n  step \"reminder-1\": 7 days after enrolment, template reminder -> 5 days after enrolment, template reminder\ntouches: ")
            && said.ends_with("campaign cli: dry run, nothing changed (apply without --dry-run to make these changes)\n"),
        "{said}"
    );
    let list = stdout_of(config, &["campaign", "list"]);
    assert!(
        list.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("cli ") && l.contains("active")),
        "{list}"
    );
    let show = stdout_of(config, &["campaign", "show", "cli"]);
    assert!(show.starts_with("cli — CLI rollout\n"), "{show}");
    for line in [
        "status:       active",
        "due:          14 days after enrolment",
        "matches:      3 people",
        "send window:  always",
        "  reminder-1     7 days after enrolment, template reminder",
    ] {
        assert!(show.lines().any(|l| l == line), "{line:?} in:\n{show}");
    }
    assert!(!show.contains('{') && !show.contains("7d"), "{show}");
    let shown = json_of(config, &["campaign", "show", "cli", "--format", "json"]);
    let doc = tables("campaign show");
    check("campaign show", &shown, &doc[0]);
    check_each("campaign show.steps", &shown["steps"], &doc[1]);
    check("campaign show.messages", &shown["messages"], &doc[2]);
    assert_eq!(
        (
            shown["audience_size"].as_u64(),
            shown["steps"][1]["at"].as_str()
        ),
        (Some(3), Some("7d"))
    );

    let sample = stdout_of(
        config,
        &["campaign", "preview", "cli", "--step", "announcement"],
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(sample.as_bytes())
        .unwrap();
    assert!(!parsed.subject().unwrap_or_default().is_empty(), "{sample}");
    let to_ann = stdout_of(
        config,
        &[
            "campaign",
            "preview",
            "cli",
            "--step",
            "reminder-1",
            "--to",
            "ann.lee@hospital.example.org",
        ],
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(to_ann.as_bytes())
        .unwrap();
    let to = parsed
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default();
    assert_eq!(to, "ann.lee@hospital.example.org", "{to_ann}");
    assert!(
        parsed.body_text(0).unwrap_or_default().contains("Ann"),
        "rendered for Ann: {to_ann}"
    );
}

/// `completions import`, dry run as JSON then for real.
fn check_completions(config: &Path, file: &str) {
    let doc = tables("completions import");
    let dry = json_of(
        config,
        &[
            "completions",
            "import",
            file,
            "--dry-run",
            "--format",
            "json",
        ],
    );
    check("completions import", &dry, &doc[0]);
    check_each("completions import.unmatched", &dry["unmatched"], &doc[1]);
    assert_eq!(
        (dry["applied"].as_bool(), dry["dry_run"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(
        (dry["newly_completed"].as_u64(), dry["campaign"].as_str()),
        (Some(1), Some("cli"))
    );
    assert_eq!(dry["unmatched"][0]["who"], "nobody@hospital.example.org");
    let done = stdout_of(
        config,
        &["completions", "import", file, "--campaign", "cli"],
    );
    assert!(!done.is_empty());
    let again = json_of(config, &["completions", "import", file, "--format", "json"]);
    assert_eq!(
        (
            again["newly_completed"].as_u64(),
            again["already_completed"].as_u64()
        ),
        (Some(0), Some(1))
    );
}

/// `report` in every format, `--out`, `--as-of` and `--evidence`.
fn check_reports(config: &Path, dir: &Path) {
    check_report_json(config);
    check_report_formats(config, dir);
    check_evidence(config);
}

/// `report --format json`, as documented, with this rollout's figures.
fn check_report_json(config: &Path) {
    let doc = tables("report");
    let json = json_of(config, &["report", "--campaign", "cli", "--format", "json"]);
    check("report", &json, &doc[0]);
    for (i, key) in ["population", "reach", "engagement", "outcome"]
        .iter()
        .enumerate()
    {
        check(&format!("report.{key}"), &json[key], &doc[i + 1]);
    }
    for by in ["department", "facility", "role", "manager"] {
        check_each(
            &format!("report.breakdowns.{by}"),
            &json["breakdowns"][by],
            &doc[5],
        );
    }
    check_each("report.weekly", &json["weekly"], &doc[6]);
    check("report.bounces", &json["bounces"], &doc[7]);
    check_each("report.bounces.people", &json["bounces"]["people"], &doc[8]);
    let campaign: Vec<&str> = json["campaign"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        campaign,
        ["audience_size", "name", "slug", "starts_at", "status"]
    );
    assert_eq!(
        json["population"],
        serde_json::json!({ "enrolled": 2, "exempted": 1, "left": 0 })
    );
    assert_eq!(
        (
            json["outcome"]["completed"].as_u64(),
            json["reach"]["messages_sent"].as_u64()
        ),
        (Some(1), Some(2))
    );
}

/// `report` as a table, CSV and HTML (`--out`), and `--as-of`.
fn check_report_formats(config: &Path, dir: &Path) {
    let table = stdout_of(config, &["report", "--campaign", "cli"]);
    assert!(table.contains("CLI rollout"), "{table}");
    let csv = stdout_of(config, &["report", "--format", "csv"]);
    assert!(
        csv.starts_with("section,group,metric,value\n") && csv.contains("outcome,,completed,1\n"),
        "{csv}"
    );
    let as_of = json_of(
        config,
        &["report", "--format", "json", "--as-of", "2020-01-01"],
    );
    assert_eq!(as_of["as_of"], "2020-01-01T23:59:59Z");
    assert_eq!(as_of["weekly"], serde_json::json!([]), "before the start");

    let html = dir.join("report.html");
    let said = stderr_of(
        config,
        &[
            "report",
            "--format",
            "html",
            "--out",
            html.to_str().unwrap(),
        ],
    );
    assert!(said.contains("report written to"), "{said}");
    let page = scraper::Html::parse_document(&std::fs::read_to_string(&html).unwrap());
    assert!(page.errors.is_empty(), "{:?}", page.errors);
    let title = scraper::Selector::parse("h1").unwrap();
    assert_eq!(
        page.select(&title)
            .next()
            .unwrap()
            .text()
            .collect::<String>(),
        "CLI rollout — rollout report"
    );
}

/// `report --evidence`: each message, how completion was recorded, exemptions.
fn check_evidence(config: &Path) {
    let evidence = stdout_of(config, &["report", "--campaign", "cli", "--evidence"]);
    let mut reader = csv::Reader::from_reader(evidence.as_bytes());
    assert_eq!(&reader.headers().unwrap()[0], "email");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let ann = rows
        .iter()
        .find(|r| &r[0] == "ann.lee@hospital.example.org")
        .unwrap();
    assert_eq!(
        (&ann[7], &ann[10], &ann[11]),
        ("report", "announcement", "sent")
    );
    let cy = rows
        .iter()
        .find(|r| &r[0] == "cy.oh@hospital.example.org")
        .unwrap();
    assert_eq!(&cy[8], "on leave");
}

/// Without a terminal, `campaign cancel` needs `--yes`, and without it
/// changes nothing.
fn check_cancel_needs_yes(config: &Path) {
    let out = ambassador(config, &["campaign", "cancel", "cli"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("needs confirmation; pass --yes"),
        "{stderr}"
    );
    let list = stdout_of(config, &["campaign", "list"]);
    assert!(list.contains(" active "), "still active:\n{list}");
}

/// `campaign pause | resume | cancel`, each seen in `campaign list`.
fn check_status_changes(config: &Path) {
    for (command, status) in [
        ("pause", "paused"),
        ("resume", "active"),
        ("cancel", "cancelled"),
    ] {
        if command == "cancel" {
            check_cancel_needs_yes(config);
        }
        let said = match command {
            "cancel" => stdout_of(config, &["campaign", "cancel", "cli", "--yes"]),
            _ => stdout_of(config, &["campaign", command, "cli"]),
        };
        assert_eq!(said, format!("campaign cli: {status}\n"));
        let list = stdout_of(config, &["campaign", "list"]);
        assert!(
            list.lines()
                .nth(1)
                .is_some_and(|l| l.split_whitespace().nth(1) == Some(status)),
            "{list}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_runs_through_every_command() {
    let t = TestApp::spawn_with(Faults::default(), |s| {
        s.report.recipients = vec![ambassador::domain::EmailAddress::parse(BOARD).unwrap()];
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_for_app(dir.path(), &t);
    let said = stderr_of(&config, &["db", "migrate"]);
    assert!(said.contains("database is up to date"), "{said}");

    let roster = write(dir.path(), "staff.csv", ROSTER);
    check_roster_json(&config, roster.to_str().unwrap());
    let campaign = write(dir.path(), "cli.toml", CAMPAIGN);
    check_campaign_commands(&config, campaign.to_str().unwrap());

    // Enrolment and the announcements: a planning tick three days ago.
    t.tick_at(Utc::now() - Duration::days(3)).await;
    assert_eq!(t.smtp.messages().len(), 3);
    let exempt = stdout_of(
        &config,
        &[
            "exempt",
            "cy.oh@hospital.example.org",
            "--campaign",
            "cli",
            "--reason",
            "on leave",
        ],
    );
    assert_eq!(
        exempt,
        "cy.oh@hospital.example.org is exempt from cli: on leave\n"
    );
    let exemptions = json_of(
        &config,
        &["campaign", "exemptions", "cli", "--format", "json"],
    );
    let doc = tables("campaign exemptions");
    check("campaign exemptions", &exemptions, &doc[0]);
    check_each(
        "campaign exemptions.exemptions",
        &exemptions["exemptions"],
        &doc[1],
    );
    check_each(
        "campaign exemptions.history",
        &exemptions["history"],
        &doc[2],
    );
    assert_eq!(
        exemptions["exemptions"][0]["email"],
        "cy.oh@hospital.example.org"
    );
    assert_eq!(exemptions["history"].as_array().map(Vec::len), Some(1));
    let yesterday = (Utc::now() - Duration::days(1)).format("%Y-%m-%d");
    let completions = write(
        dir.path(),
        "train.csv",
        &format!("Email,Status,Completion Date\nann.lee@hospital.example.org,Completed,{yesterday}\nnobody@hospital.example.org,Completed,{yesterday}\n"),
    );
    check_completions(&config, completions.to_str().unwrap());
    check_reports(&config, dir.path());
    check_completion_by_hand(&config);

    let weekly = stdout_of(&config, &["report", "send-weekly"]);
    assert_eq!(weekly, "cli: sent\n");
    let board = t
        .smtp
        .messages()
        .into_iter()
        .filter(|m| m.recipients == [BOARD])
        .count();
    assert_eq!(board, 1, "the summary reached report.recipients");
    check_status_changes(&config);
    check_backup(&config, dir.path(), &t.db.url);
}

/// `completions add`: Bob completed yesterday; a second time changes nothing;
/// tomorrow is refused.
fn check_completion_by_hand(config: &Path) {
    let yesterday = (Utc::now() - Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let add = |date: &str| {
        ambassador(
            config,
            &[
                "completions",
                "add",
                "bob.ray@hospital.example.org",
                "--date",
                date,
                "--campaign",
                "cli",
            ],
        )
        .output()
        .unwrap()
    };
    let first = add(&yesterday);
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success()
            && said.contains("bob.ray@hospital.example.org: completion of cli on ")
            && said.ends_with(" recorded\n"),
        "{said}"
    );
    let again = String::from_utf8_lossy(&add(&yesterday).stdout).into_owned();
    assert_eq!(
        again,
        "bob.ray@hospital.example.org: a completion of cli was already recorded; it stands\n"
    );
    let tomorrow = (Utc::now() + Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    let refused = add(&tomorrow);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is in the future"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// `db backup`: on SQLite a copy that `roster list` reads the same; on
/// PostgreSQL a refusal that points at pg_dump.
fn check_backup(config: &Path, dir: &Path, db_url: &str) {
    let copy = dir.join("backup.db");
    let out = ambassador(config, &["db", "backup", copy.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !db_url.starts_with("sqlite:") {
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("pg_dump"), "{stderr}");
        return;
    }
    assert!(
        out.status.success() && stderr.contains("backup written to"),
        "{stderr}"
    );
    let restored = write(
        dir,
        "restored.toml",
        &format!("[database]\nurl = \"sqlite://{}\"\n", copy.display()),
    );
    let before = stdout_of(config, &["roster", "list", "--format", "csv"]);
    assert_eq!(
        stdout_of(&restored, &["roster", "list", "--format", "csv"]),
        before
    );
    let again = ambassador(config, &["db", "backup", copy.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(1),
        "an existing file is never overwritten"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

// --- config check -------------------------------------------------------------

#[test]
fn config_check_prints_file_and_environment_values_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let password = write(dir.path(), "smtp-password", "pa55-from-file\n");
    let config = write(
        dir.path(),
        "site.toml",
        &format!(
            "[smtp]\nport = 2525\nusername = \"ambassador\"\npassword_file = \"{}\"\n[security]\nadmin_token = \"t0ken-in-config\"\n",
            password.display()
        ),
    );
    let out = ambassador(&config, &["config", "check"])
        .env("AMBASSADOR__SMTP__HOST", "relay.hospital.example.org")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    const SHARED: &str = "warning: security.admin_token / admin_password_hash is a shared admin credential, deprecated: give each person an account (`ambassador admin add EMAIL --role ROLE`) and a personal API token (`ambassador admin token create`), then remove it\n";
    assert_eq!(
        stderr,
        format!("warning: report.recipients is empty, so the weekly summary goes to nobody; list leadership's addresses there, e.g. recipients = [\"cno@hospital.org\"]\n{SHARED}configuration is valid\n")
    );
    let with_recipients = ambassador(&config, &["config", "check"])
        .env("AMBASSADOR__REPORT__RECIPIENTS", BOARD)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&with_recipients.stderr),
        format!("{SHARED}configuration is valid\n"),
        "no recipients warning once recipients are set; the shared token's stays"
    );
    let shown: toml::Value = toml::from_str(&stdout).unwrap_or_else(|e| panic!("{e}:\n{stdout}"));
    assert_eq!(
        shown["smtp"]["port"].as_integer(),
        Some(2525),
        "from the file"
    );
    assert_eq!(
        shown["smtp"]["host"].as_str(),
        Some("relay.hospital.example.org"),
        "from the environment"
    );
    assert_eq!(shown["smtp"]["password"].as_str(), Some("<redacted>"));
    assert_eq!(
        shown["security"]["admin_token"].as_str(),
        Some("<redacted>")
    );
    assert!(
        !stdout.contains("pa55-from-file") && !stdout.contains("t0ken-in-config"),
        "{stdout}"
    );
}

/// A typo in the file, and one in the environment: errors, never defaults.
#[test]
fn config_check_refuses_unknown_keys_in_the_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "site.toml", "[smtp]\nport = 2525\n");
    let typo = write(dir.path(), "typo.toml", "[smtp]\nhostname = \"relay\"\n");
    let from_file = ambassador(&typo, &["config", "check"]).output().unwrap();
    let from_env = ambassador(&config, &["config", "check"])
        .env("AMBASSADOR__DELIVERY__MAX_PER_SECOND_", "5")
        .output()
        .unwrap();
    for (out, key) in [(from_file, "hostname"), (from_env, "max_per_second_")] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(out.stdout.is_empty(), "nothing printed as if valid");
        assert!(
            stderr.starts_with("error: invalid configuration")
                && stderr.contains(&format!("unknown field `{key}`")),
            "{stderr}"
        );
    }
}

// --- common mistakes ----------------------------------------------------------

/// A SQLite deployment in `dir` with the campaign `cli` applied.
fn plain_deployment(dir: &Path) -> PathBuf {
    let config = write(
        dir,
        "ambassador.toml",
        &format!(
            "[database]\nurl = \"sqlite://{}\"\n[security]\ntoken_key_file = \"{}\"\n[smtp]\noutbox_dir = \"{}\"\n",
            dir.join("amb.db").display(),
            dir.join("token.key").display(),
            dir.join("outbox").display()
        ),
    );
    let campaign = write(dir, "cli.toml", CAMPAIGN);
    stdout_of(
        &config,
        &[
            "campaign",
            "apply",
            campaign.to_str().unwrap(),
            "--allow-empty",
        ],
    );
    config
}

/// One-off commands build only the parts they use: applying a campaign,
/// a report, the weekly summary and its preview make no tracking key (nor a worker or a
/// delivery pool, which would need it); a preview, whose links are signed,
/// is the one that reads (or makes) the key.
#[test]
fn one_off_commands_build_only_what_they_use() {
    let dir = tempfile::tempdir().unwrap();
    let config = plain_deployment(dir.path());
    let key = dir.path().join("token.key");
    assert!(!key.exists(), "campaign apply made a tracking key");
    stdout_of(&config, &["report", "--format", "json"]);
    let out = ambassador(&config, &["report", "send-weekly"])
        .env("AMBASSADOR__REPORT__RECIPIENTS", BOARD)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("cli: sent"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .count();
    assert_eq!(summary, 1, "the summary went through the report mailer");
    let eml = stdout_of(&config, &["report", "preview-weekly"]);
    assert!(eml.contains("Subject: "), "{eml}");
    assert!(!key.exists(), "a report made a tracking key");

    let preview = stdout_of(
        &config,
        &["campaign", "preview", "cli", "--step", "announcement"],
    );
    assert!(preview.contains("Subject: "), "{preview}");
    assert!(key.exists(), "a preview builds the composer, key included");
}

#[test]
fn common_mistakes_exit_1_with_a_message_that_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let config = plain_deployment(dir.path());
    let missing = dir.path().join("missing.csv");
    let missing = missing.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["roster", "import", missing], "cannot read"),
        (&["completions", "import", missing], "cannot read"),
        (&["campaign", "apply", missing], "cannot read"),
        (&["campaign", "show", "nope"], "no campaign with slug \"nope\"; `ambassador campaign list` shows them"),
        (&["campaign", "preview", "nope", "--step", "announcement"], "no campaign with slug \"nope\""),
        (&["report", "--campaign", "nope"], "no campaign with slug \"nope\""),
        (&["exempt", "a@hospital.example.org", "--campaign", "nope", "--reason", "x"], "no campaign with slug \"nope\""),
        (&["completions", "import", "cli.toml", "--campaign", "nope"], "no campaign with slug \"nope\""),
        (&["report", "--as-of", "2027-13-45"], "--as-of \"2027-13-45\": write a date like 2027-02-01 or an instant like 2027-02-01T17:00:00Z"),
        (&["report", "--as-of", "last week"], "--as-of \"last week\": write a date like"),
    ];
    for (args, expected) in cases {
        let out = ambassador(&config, args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed a result");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
        if expected == &"cannot read" {
            assert!(
                stderr.contains("missing.csv") && stderr.contains("No such file"),
                "{args:?}: {stderr}"
            );
        }
    }
    let no_config = dir.path().join("nowhere.toml");
    let out = ambassador(&no_config, &["roster", "list"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("nowhere.toml does not exist; pass an existing file to --config"),
        "{stderr}"
    );
}

// --- demo -----------------------------------------------------------------------

/// `messages sent by step:` lines of the demo's summary, summed.
fn messages_by_step(summary: &str) -> usize {
    summary
        .lines()
        .skip_while(|l| !l.starts_with("messages sent by step:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_whitespace()
                .last()
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum()
}

#[test]
fn demo_writes_every_message_it_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo-out");
    let run = assert_cmd::Command::cargo_bin("ambassador")
        .unwrap()
        .args(["demo", "--out", out.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let sent = messages_by_step(&summary);
    assert!(sent > 0, "{summary}");
    // The last simulated day is today (or yesterday, if midnight passed while it ran).
    let last_day = summary
        .lines()
        .filter_map(|l| chrono::NaiveDate::parse_from_str(l.get(..15)?, "%a %d %b %Y").ok())
        .next_back()
        .expect("the days of the demo");
    let today = Utc::now().date_naive();
    assert!(
        last_day == today || last_day == today.pred_opt().unwrap(),
        "the demo ends on {last_day}, not today ({today}):\n{summary}"
    );
    assert!(!summary.contains("1 people"), "{summary}");
    // A sample admin and viewer, whose printed passwords sign them in.
    let accounts: Vec<(String, String)> = summary
        .lines()
        .filter(|l| l.contains(" password "))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            (words[0].to_string(), words[2].to_string())
        })
        .collect();
    assert_eq!(accounts.len(), 2, "{summary}");
    let url = format!("sqlite://{}", out.join("demo.db").display());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stored = runtime.block_on(async {
        let store = ambassador::store::Store::open(&url, 1).await.unwrap();
        let mut stored = Vec::new();
        for (email, _) in &accounts {
            stored.push(
                ambassador::accounts::find_by_email(&store, email)
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        stored
    });
    let roles: Vec<String> = stored.iter().map(|a| a.role.to_string()).collect();
    assert_eq!(roles, ["admin", "viewer"]);
    for ((email, password), account) in accounts.iter().zip(&stored) {
        let phc = account.password_hash.as_deref().unwrap();
        assert!(
            ambassador::accounts::password::verify(phc, password),
            "{email}'s printed password"
        );
    }
    let emls = std::fs::read_dir(out.join("outbox")).unwrap().count();
    assert_eq!(
        emls,
        sent + 1,
        "each message and the weekly summary as .eml:\n{summary}"
    );
    assert!(std::fs::read_to_string(out.join("report.html"))
        .unwrap()
        .contains("<html"));
    // The demo's database, read back by the report command.
    let config = write(
        dir.path(),
        "demo.toml",
        &format!(
            "[database]\nurl = \"sqlite://{}\"\n",
            out.join("demo.db").display()
        ),
    );
    let totals = summary.lines().find(|l| l.ends_with(" completed")).unwrap();
    // The demo's timeline ends today: its figures are the report's as of now.
    let report = json_of(&config, &["report", "--format", "json"]);
    let expected = format!(
        "{} enrolled, {} completed",
        report["population"]["enrolled"], report["outcome"]["completed"]
    );
    assert_eq!(totals, expected);
}

// --- report previews ---------------------------------------------------------

const HOSTILE_ROSTER: &str =
    "Employee ID,First Name,Last Name,Email,Department,Job Title,Location,Manager Email\n\
    E1,<b>Ann</b>,Lee,ann.lee@hospital.example.org,<script>alert(1)</script> & Co,Buyer,Main,mia.boss@hospital.example.org\n\
    E2,Bob,Ray,bob.ray@hospital.example.org,<script>alert(1)</script> & Co,Buyer,Main,mia.boss@hospital.example.org\n";

#[tokio::test]
async fn the_summary_and_a_digest_preview_as_eml_escaped_and_unsent() {
    let t = TestApp::spawn_with(Faults::default(), |s| {
        s.report.recipients = vec![ambassador::domain::EmailAddress::parse(BOARD).unwrap()];
    })
    .await;
    t.import(HOSTILE_ROSTER).await;
    t.apply(CAMPAIGN).await;
    t.tick_at(Utc::now() - Duration::days(3)).await;
    let sent = t.smtp.messages().len();
    let dir = tempfile::tempdir().unwrap();
    let config = config_for_app(dir.path(), &t);
    // Departments of any size show, so the roster's department reaches the summary.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("min_group_size = 1\n");
    std::fs::write(&config, text).unwrap();

    let summary = dir.path().join("summary.eml");
    let said = stderr_of(
        &config,
        &[
            "report",
            "preview-weekly",
            "--campaign",
            "cli",
            "--out",
            summary.to_str().unwrap(),
        ],
    );
    assert!(said.contains("preview written to"), "{said}");
    let raw = std::fs::read(&summary).unwrap();
    let eml = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert_eq!(eml.subject(), Some("CLI rollout: 0 of 2 completed (0%)"));
    assert_eq!(eml.to().unwrap().first().unwrap().address(), Some(BOARD));
    let html = eml.body_html(0).unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co: 0% completed"),
        "{html}"
    );
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("src=\"cid:completion-chart\""), "{html}");
    let plain = eml.body_text(0).unwrap();
    assert!(
        plain.contains("- <script>alert(1)</script> & Co: 0%"),
        "{plain}"
    );

    let digest = stdout_of(
        &config,
        &[
            "report",
            "preview-digest",
            "--manager",
            "MIA.BOSS@hospital.example.org",
        ],
    );
    let eml = mail_parser::MessageParser::default()
        .parse(digest.as_bytes())
        .unwrap();
    assert_eq!(
        eml.to().unwrap().first().unwrap().address(),
        Some("mia.boss@hospital.example.org")
    );
    let plain = eml.body_text(0).unwrap();
    assert!(
        plain.contains("0 completed, 2 still to do, 0 overdue"),
        "{plain}"
    );
    assert!(
        plain.contains("- <b>Ann</b> Lee <ann.lee@hospital.example.org>: open"),
        "{plain}"
    );
    let html = eml.body_html(0).unwrap();
    assert!(
        html.contains("&lt;b&gt;Ann&lt;/b&gt; Lee") && !html.contains("<b>Ann"),
        "{html}"
    );

    let out = ambassador(
        &config,
        &[
            "report",
            "preview-digest",
            "--manager",
            "nobody@hospital.example.org",
        ],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("nobody in campaign cli names this address as their manager"),
        "{said}"
    );
    assert_eq!(t.smtp.messages().len(), sent, "a preview sends nothing");
}

// --- previews -------------------------------------------------------------------

/// A campaign with a fixed due date, far enough ahead that every step is
/// still to come whenever the test runs.
const DATED: &str = r#"
slug = "dated"
name = "Dated rollout"
course_url = "https://train.example.org/course/1"
contact = "ambassador@hospital.example.org"
starts_at = "2020-01-06T14:00:00Z"
due = "2099-12-14"
send_window = "always"

[audience]
include = { department = ["Procurement"] }

[[steps]]
name = "announcement"
at = "0s"
template = "news_item"

[[steps]]
name = "last-call"
at = "due-2d"
template = "reminder"

[[steps]]
name = "escalation"
at = "due+1d"
template = "escalation"
to = "manager"

[[steps]]
name = "thanks"
on = "completion"
template = "thanks"
"#;

/// The text part of `campaign preview ARGS`, which must succeed.
fn preview_text(config: &Path, args: &[&str]) -> String {
    let mut all = vec!["campaign", "preview", "dated"];
    all.extend_from_slice(args);
    let eml = stdout_of(config, &all);
    let parsed = mail_parser::MessageParser::default()
        .parse(eml.as_bytes())
        .unwrap();
    let subject = parsed.subject().unwrap_or_default().to_string();
    format!("{subject}\n{}", parsed.body_text(0).unwrap_or_default())
}

/// `campaign preview` fails with the reason on stderr, printing nothing.
fn preview_refused(config: &Path, args: &[&str]) -> String {
    let mut all = vec!["campaign", "preview", "dated"];
    all.extend_from_slice(args);
    let out = ambassador(config, &all).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{all:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{all:?} printed a message");
    stderr
}

#[tokio::test]
async fn a_preview_shows_each_step_as_of_its_send_time_with_the_real_due_date() {
    let t = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_for_app(dir.path(), &t);
    let campaign = write(dir.path(), "dated.toml", DATED);
    // Before the first roster import, as an admin previews a new campaign.
    stdout_of(
        &config,
        &[
            "campaign",
            "apply",
            campaign.to_str().unwrap(),
            "--allow-empty",
        ],
    );

    let announcement = preview_text(&config, &["--step", "announcement"]);
    assert!(announcement.contains("14 December 2099"), "{announcement}");
    let last_call = preview_text(&config, &["--step", "last-call"]);
    assert!(last_call.contains("14 December 2099"), "{last_call}");
    assert!(last_call.contains("You have 2 days left"), "{last_call}");
    let escalation = preview_text(&config, &["--step", "escalation"]);
    assert!(
        escalation.contains("14 December 2099 (1 day ago)"),
        "{escalation}"
    );
}

#[tokio::test]
async fn a_preview_to_a_person_is_what_they_get_or_says_why_they_get_nothing() {
    let t = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_for_app(dir.path(), &t);
    let boss = &email_of("Mia");
    let people = [
        person_line(1, "Ann", "Procurement", boss),
        person_line(2, "Bob", "Procurement", boss),
        person_line(3, "Cy", "Nursing", boss),
        person_line(4, "Dee", "Procurement", boss),
        person_line(5, "Eve", "Procurement", boss),
        person_line(6, "Mia", "Leadership", ""),
    ];
    let everyone = format!("{}\n{}\n", common::app::HEADER, people.join("\n"));
    t.import(&everyone).await;
    let without_dee: Vec<&String> = people.iter().filter(|p| !p.contains("dee.")).collect();
    let without_dee = without_dee.iter().map(|p| p.as_str()).collect::<Vec<_>>();
    let rest = format!("{}\n{}\n", common::app::HEADER, without_dee.join("\n"));
    t.import_with(&rest, ambassador::roster::ImportMode::Sync, true)
        .await;
    let campaign = write(dir.path(), "dated.toml", DATED);
    stdout_of(&config, &["campaign", "apply", campaign.to_str().unwrap()]);
    t.tick_at(Utc::now() - Duration::days(1)).await;
    let id = t.campaign_id("dated").await;
    let bob = t.staff_id(&email_of("Bob")).await;
    let done = Utc::now() - Duration::hours(2);
    t.store()
        .complete_enrolment(id, bob, ambassador::clock::to_millis(done), "test")
        .await
        .unwrap();
    let eve = ambassador::domain::EmailAddress::parse(&email_of("Eve")).unwrap();
    let row = ambassador::campaign::find(t.store(), "dated")
        .await
        .unwrap();
    ambassador::campaign::exempt(
        t.store(),
        &row,
        &eve,
        "on leave",
        0,
        &ambassador::store::exemption::Actor::cli("test"),
    )
    .await
    .unwrap();

    let ann = email_of("Ann");
    let last_call = preview_text(&config, &["--step", "last-call", "--to", &ann]);
    assert!(
        last_call.contains("Ann") && last_call.contains("You have 2 days left"),
        "{last_call}"
    );
    assert!(last_call.contains("14 December 2099"), "{last_call}");
    let digest = preview_text(&config, &["--step", "escalation", "--to", boss]);
    assert!(digest.contains("Ann Lee"), "{digest}");
    assert!(!digest.contains("Bob Lee"), "Bob completed: {digest}");
    assert!(digest.contains("(1 day ago)"), "{digest}");
    let thanks = preview_text(&config, &["--step", "thanks", "--to", &email_of("Bob")]);
    assert!(thanks.contains("Bob"), "{thanks}");

    let cases = [
        ("last-call", email_of("Bob"), "completed campaign dated on"),
        (
            "last-call",
            email_of("Cy"),
            "is not in the audience of campaign dated (department \"Nursing\"",
        ),
        ("last-call", email_of("Dee"), "is not active in the roster"),
        (
            "last-call",
            email_of("Eve"),
            "is exempt from campaign dated (on leave)",
        ),
        (
            "last-call",
            "nobody@hospital.example.org".into(),
            "nobody in the roster has the address",
        ),
        (
            "escalation",
            ann.clone(),
            "their own manager, mia.lee@hospital.example.org, gets the digest",
        ),
    ];
    for (step, to, expected) in cases {
        let said = preview_refused(&config, &["--step", step, "--to", &to]);
        assert!(
            said.starts_with("error: ") && said.contains(expected),
            "{step} to {to}: {said}"
        );
    }
}

/// A roster line for `first` Lee in `department`, reporting to `manager`.
fn person_line(id: u32, first: &str, department: &str, manager: &str) -> String {
    common::app::person(id, first, "Lee", department, "Buyer", manager)
}

fn email_of(first: &str) -> String {
    format!("{}.lee@hospital.example.org", first.to_lowercase())
}
