//! Hostile and broken input files against the real import paths (SQLite
//! file, the binary, the HTTP API): addresses the mailer cannot send,
//! invisible characters, files that mix encodings, and absurd shapes. Each is
//! refused with where the problem is, and nothing is written.

mod common;

use ambassador::completions::{self, CompletionError, CompletionOptions};
use ambassador::roster::ImportError;
use common::app::{launch, person, TestApp, CAMPAIGN, HEADER};
use common::*;
use reqwest::StatusCode;
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------- addresses

#[tokio::test]
async fn quoted_addresses_are_refused_for_the_person_and_the_manager() {
    let db = TestDb::with_january().await;
    let before = db.snapshot().await;
    // As a spreadsheet writes them: each cell quoted, inner quotes doubled.
    let cell = |raw: &str| format!("\"{}\"", raw.replace('"', "\"\""));
    let bytes = format!(
        "Email,First Name,Supervisor Email\n\
         {},John,grace.okafor@health.example.org\n\
         omar.haddad@health.example.org,Omar,{}\n\
         wei.chen@health.example.org,Wei,{}\n",
        cell("\"john doe\"@example.org"),
        cell("\"a\\\"b\"@example.org"),
        cell("\"boss\"@example.org"),
    );

    let err = db.import(bytes.as_bytes(), &options()).await.unwrap_err();

    let quoted = "has a quoted local part (\"...\"@); mail can only be sent to plain addresses like name@hospital.org";
    assert_eq!(
        rejected_lines(&err),
        [
            format!("line 2, column Email: email {quoted}"),
            format!("line 3, column Supervisor Email: manager email {quoted}"),
            format!("line 4, column Supervisor Email: manager email {quoted}"),
        ]
    );
    assert_eq!(db.snapshot().await, before);
}

// ---------------------------------------------------------------- invisible characters

#[tokio::test]
async fn bidi_and_zero_width_characters_are_refused_with_line_and_column() {
    let db = TestDb::with_january().await;
    let before = db.snapshot().await;
    let bytes = "Email,First Name,Last Name,Department,Supervisor Email,Cost Center\n\
        ann.lee@health.example.org,Ann\u{202E}gpj.exe,Lee,Pharmacy,,\n\
        om\u{200B}ar@health.example.org,Omar,Haddad,Pharmacy,,\n\
        wei.chen@health.example.org,Wei,Chen,Supply\u{FEFF}Chain,,\n\
        zoe.ng@health.example.org,Zoë,Ng,Pharmacy,boss\u{2066}@health.example.org,\n\
        li.wu@health.example.org,Li,W\u{200D}u,Pharmacy,,CC\u{2069}1\n";

    let err = db.import(bytes.as_bytes(), &options()).await.unwrap_err();

    let tail = "an invisible character that can make text look like something else; remove it from the cell in the export";
    assert_eq!(
        rejected_lines(&err),
        [
            format!("line 2, column First Name: contains U+202E (a bidirectional control) at character 4, {tail}"),
            format!("line 3, column Email: contains U+200B (a zero-width character) at character 3, {tail}"),
            format!("line 4, column Department: contains U+FEFF (a zero-width character) at character 7, {tail}"),
            format!("line 5, column Supervisor Email: contains U+2066 (a bidirectional control) at character 5, {tail}"),
            format!("line 6, column Last Name: contains U+200D (a zero-width character) at character 2, {tail}"),
            format!("line 6, column Cost Center: contains U+2069 (a bidirectional control) at character 3, {tail}"),
        ]
    );
    assert_eq!(db.snapshot().await, before);
}

// ---------------------------------------------------------------- encodings

/// A UTF-8 export ("Zoë" on line 3) with one Windows-1252 "é" on line 4.
fn mixed_encoding_file() -> Vec<u8> {
    let mut bytes = b"Email,First Name,Last Name\n\
        ann.lee@health.example.org,Ann,Lee\n\
        zoe.ng@health.example.org,Zo\xC3\xAB,Ng\n"
        .to_vec();
    bytes.extend(b"jose.diaz@health.example.org,Jos\xE9,D\xEDaz\n");
    bytes
}

/// Where the stray byte of [`mixed_encoding_file`] is.
const MIXED_ERROR: &str = "line 4, byte offset 128: not valid UTF-8 (0xE9), though other characters in the file are UTF-8, so no other encoding was guessed. Fix or retype the character on that line and save the file as \"CSV UTF-8\"";

#[tokio::test]
async fn a_utf8_file_with_one_bad_byte_is_refused_with_line_and_offset() {
    let db = TestDb::with_january().await;
    let before = db.snapshot().await;

    let err = db
        .import(&mixed_encoding_file(), &options())
        .await
        .unwrap_err();

    assert_eq!(err.to_string(), format!("roster.csv: {MIXED_ERROR}"));
    assert_eq!(db.snapshot().await, before);
}

#[test]
fn cli_refuses_the_mixed_file_and_names_the_encoding_of_files_it_reads() {
    let cli = Cli::new();
    let mixed = cli.dir.path().join("mixed.csv");
    std::fs::write(&mixed, mixed_encoding_file()).unwrap();
    let out = cli
        .roster(&["import", mixed.to_str().unwrap()])
        .assert()
        .failure();
    assert_eq!(
        String::from_utf8(out.get_output().stderr.clone()).unwrap(),
        format!("error: {}: {MIXED_ERROR}\n", mixed.display())
    );

    // All Windows-1252: no valid multi-byte UTF-8 anywhere, so read as such.
    let legacy = cli.dir.path().join("legacy.csv");
    std::fs::write(
        &legacy,
        b"Email;First Name\njose.diaz@health.example.org;Jos\xE9\n",
    )
    .unwrap();
    let human = cli
        .roster(&["import", legacy.to_str().unwrap(), "--dry-run"])
        .assert()
        .success();
    let stdout = String::from_utf8(human.get_output().stdout.clone()).unwrap();
    assert!(
        stdout.starts_with(&format!("{} (windows-1252, ", legacy.display())),
        "{stdout}"
    );
    let json = cli
        .roster(&["import", legacy.to_str().unwrap(), "--format", "json"])
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&json.get_output().stdout).unwrap();
    assert_eq!(report["encoding"], "windows-1252");
    let people = cli.roster(&["list", "--format", "json"]).assert().success();
    let people: serde_json::Value = serde_json::from_slice(&people.get_output().stdout).unwrap();
    assert_eq!(people[0]["first_name"], "José");
}

const TOKEN: &str = "correct horse battery staple";

/// The app with its HTTP API on a loopback port.
async fn api() -> (TestApp, String, tokio_util::sync::DropGuard) {
    let t = TestApp::spawn_with(Default::default(), |s| {
        s.security.admin_token = ambassador::config::Secret::new(TOKEN)
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    t.app.spawn_http(listener, stop.clone());
    (t, base, stop.drop_guard())
}

#[tokio::test]
async fn the_api_refuses_the_mixed_file_with_line_and_offset() {
    let (t, base, _stop) = api().await;
    for dry_run in [true, false] {
        let response = reqwest::Client::new()
            .post(format!("{base}/api/roster?dry_run={dry_run}"))
            .bearer_auth(TOKEN)
            .header("content-type", "text/csv")
            .body(mixed_encoding_file())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: serde_json::Value = response.json().await.unwrap();
        let error = body["error"].as_str().unwrap();
        assert!(error.ends_with(MIXED_ERROR), "{error}");
    }
    assert!(t.store().list_staff(true).await.unwrap().is_empty());
}

// ---------------------------------------------------------------- shape

#[tokio::test]
async fn a_header_name_over_256_characters_is_refused_naming_the_column() {
    let db = TestDb::with_january().await;
    let before = db.snapshot().await;
    let bytes = format!(
        "Email,First Name,{}\nann.lee@health.example.org,Ann,x\n",
        "Cost Center ".repeat(200)
    );

    let err = db.import(bytes.as_bytes(), &options()).await.unwrap_err();

    assert_eq!(
        err.to_string(),
        "roster.csv: line 1 (the header row): column 3 has a header of 2400 characters (it starts \"Cost Center Cost Center Cost Center Cost\"), more than the 256 allowed; is the first line really the header row? (read as UTF-8)"
    );
    assert_eq!(db.snapshot().await, before);
}

/// A header of `columns` columns (Email first) and one row.
fn wide_file(columns: usize) -> String {
    let headers: Vec<String> = std::iter::once("Email".to_string())
        .chain((2..=columns).map(|i| format!("Extra {i}")))
        .collect();
    let values: Vec<&str> = std::iter::once("ann.lee@health.example.org")
        .chain((2..=columns).map(|_| "v"))
        .collect();
    format!("{}\n{}\n", headers.join(","), values.join(","))
}

#[tokio::test]
async fn more_columns_than_roster_max_columns_are_refused_naming_the_first_extra() {
    let db = TestDb::new().await;
    assert_eq!(db.settings.max_columns, 200, "the documented default");

    let err = db
        .import(wide_file(201).as_bytes(), &options())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "roster.csv: line 1 (the header row): the file has 201 columns, more than roster.max_columns (200); column 201 (\"Extra 201\") and later are too many. Remove the columns ambassador does not need (read as UTF-8)"
    );
    assert_eq!(db.import_count().await, 0);

    let report = db
        .import(wide_file(200).as_bytes(), &options())
        .await
        .unwrap();
    assert_eq!(report.counts.added, 1);

    let mut narrow = db.settings.clone();
    narrow.max_columns = 3;
    let err = db
        .import_with(&narrow, wide_file(4).as_bytes(), &options())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("more than roster.max_columns (3); column 4 (\"Extra 4\")"),
        "{err}"
    );
}

#[tokio::test]
async fn an_attribute_value_over_max_field_length_is_rejected_naming_line_and_column() {
    let db = TestDb::new().await;
    let mut settings = db.settings.clone();
    settings.max_field_length = 30;
    let bytes = format!(
        "Email,Cost Center\nann.lee@health.example.org,CC-{}\n",
        "9".repeat(29)
    );

    let err = db
        .import_with(&settings, bytes.as_bytes(), &options())
        .await
        .unwrap_err();

    assert_eq!(
        rejected_lines(&err),
        ["line 2, column Cost Center: is 32 characters long, more than the 30 allowed (roster.max_field_length)"]
    );
    assert_eq!(db.import_count().await, 0);
}

// ---------------------------------------------------------------- completion reports

/// The test campaign with one enrolled person, Ann.
async fn campaign_with_ann() -> TestApp {
    let t = TestApp::spawn().await;
    t.apply(CAMPAIGN).await;
    t.import(&format!(
        "{HEADER}\n{}\n",
        person(1, "Ann", "Lee", "Procurement", "Buyer", "")
    ))
    .await;
    t.tick_at(launch()).await;
    t.clock.set(launch() + chrono::Duration::days(14));
    t
}

async fn import_completions(
    t: &TestApp,
    bytes: &[u8],
) -> Result<completions::CompletionReport, CompletionError> {
    completions::import(
        t.store(),
        &t.clock,
        chrono_tz::America::Chicago,
        &BTreeMap::new(),
        bytes,
        &CompletionOptions {
            campaign: Some("test".into()),
            dry_run: false,
            file_name: "train.csv".into(),
        },
    )
    .await
}

#[tokio::test]
async fn completion_reports_refuse_unsendable_addresses_and_invisible_characters() {
    let t = campaign_with_ann().await;
    let bytes = "First Name,Last Name,Email,Completion Date\n\
        Ann,Lee,\"\"\"ann lee\"\"@hospital.example.org\",01/20/2027\n\
        A\u{202E}nn,Lee,,01/20/2027\n\
        Bo,Ng,bo\u{200B}@hospital.example.org,01/20/2027\n";

    let Err(CompletionError::Malformed(report)) = import_completions(&t, bytes.as_bytes()).await
    else {
        panic!("the report must be refused");
    };

    let found: Vec<String> = report.malformed.iter().map(|e| e.to_string()).collect();
    let tail = "an invisible character that can make text look like something else; remove it from the cell in the export";
    assert_eq!(
        found,
        [
            "line 2, column Email: email has a quoted local part (\"...\"@); mail can only be sent to plain addresses like name@hospital.org".to_string(),
            format!("line 3, column First Name: contains U+202E (a bidirectional control) at character 2, {tail}"),
            format!("line 4, column Email: contains U+200B (a zero-width character) at character 3, {tail}"),
        ]
    );
    let imports: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM completion_imports")
        .fetch_one(t.store().pool())
        .await
        .unwrap();
    assert_eq!(imports, 0);
}

#[tokio::test]
async fn completion_reports_name_their_encoding_and_refuse_mixed_files() {
    let t = campaign_with_ann().await;
    let mixed = b"Email,First Name,Completion Date\nzoe@x.org,Zo\xC3\xAB,01/20/2027\nann@x.org,Jos\xE9,01/20/2027\n";
    let Err(CompletionError::Unreadable { reason, .. }) = import_completions(&t, mixed).await
    else {
        panic!("a mixed file must be refused");
    };
    assert!(
        reason.starts_with("line 3, byte offset 72: not valid UTF-8 (0xE9)"),
        "{reason}"
    );

    let legacy =
        b"Email,First Name,Completion Date\nann.lee@hospital.example.org,Ann\xA0,01/20/2027\n";
    let report = import_completions(&t, legacy).await.unwrap();
    assert_eq!(
        (report.encoding.as_str(), report.matched),
        ("windows-1252", 1)
    );
}

fn rejected_lines(err: &ImportError) -> Vec<String> {
    err.report()
        .expect("a row-level failure")
        .rejected
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[tokio::test]
async fn a_cell_under_an_empty_header_is_located_by_column_number() {
    let db = TestDb::new().await;
    let bytes = "Email,,First Name\nann.lee@health.example.org,\"x\ny\",Ann\n";

    let err = db.import(bytes.as_bytes(), &options()).await.unwrap_err();

    assert_eq!(
        rejected_lines(&err),
        ["line 2, column 2: contains a line break (LF); remove it from the cell in the export"]
    );
}

#[test]
fn cli_completion_import_names_the_encoding_and_refuses_the_mixed_file() {
    let cli = Cli::new();
    let run = |args: &[&str]| {
        let mut cmd = assert_cmd::Command::cargo_bin("ambassador").unwrap();
        cmd.current_dir(cli.dir.path())
            .env(
                "AMBASSADOR__DATABASE__URL",
                format!("sqlite://{}", cli.dir.path().join("cli.db").display()),
            )
            .env_remove("RUST_LOG")
            .args(args);
        cmd
    };
    let campaign = concat!(env!("CARGO_MANIFEST_DIR"), "/config/campaigns/soar.toml");
    run(&["campaign", "apply", campaign, "--allow-empty"])
        .assert()
        .success();
    let legacy = cli.dir.path().join("train.csv");
    std::fs::write(
        &legacy,
        b"Email,First Name,Completion Date\nann@x.org,Jos\xE9,2025-06-02\n",
    )
    .unwrap();
    let legacy = legacy.to_str().unwrap();

    let human = run(&["completions", "import", legacy, "--dry-run"])
        .assert()
        .success();
    let stdout = String::from_utf8(human.get_output().stdout.clone()).unwrap();
    assert!(
        stdout.starts_with(&format!("{legacy} (windows-1252) for campaign soar-2027")),
        "{stdout}"
    );
    let json = run(&[
        "completions",
        "import",
        legacy,
        "--dry-run",
        "--format",
        "json",
    ])
    .assert()
    .success();
    let report: serde_json::Value = serde_json::from_slice(&json.get_output().stdout).unwrap();
    assert_eq!(report["encoding"], "windows-1252");

    let mixed = cli.dir.path().join("mixed.csv");
    std::fs::write(&mixed, mixed_encoding_file()).unwrap();
    let refused = run(&["completions", "import", mixed.to_str().unwrap()])
        .assert()
        .failure();
    let stderr = String::from_utf8(refused.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains(MIXED_ERROR), "{stderr}");
}
