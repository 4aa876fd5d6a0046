//! CSV injection, end to end: roster values and exemption reasons that
//! start with a character a spreadsheet treats as the start of a formula go
//! through every CSV the binary writes (the report, the evidence export and
//! `roster list --format csv`), and no cell of them, once parsed as CSV,
//! starts with such a character.

mod common;

use common::app::{TestApp, CAMPAIGN};
use common::process::{config_for_app, stdout_of};

/// What a spreadsheet may evaluate at the start of a cell: the ASCII
/// triggers, tab, CR and LF, and the full-width forms of the signs (read
/// as ASCII where full-width input is folded, as East Asian settings can).
const TRIGGERS: [char; 11] = [
    '=', '+', '-', '@', '\t', '\r', '\n', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
];

/// One case: the trigger and the value that starts with it. The marker
/// (`9000 + index`) shows that the value reached the output.
fn cases() -> Vec<(char, String, String)> {
    TRIGGERS
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let marker = format!("{}+1", 9000 + i);
            (t, format!("{t}{marker}"), marker)
        })
        .collect()
}

/// The roster: one person per case, with the value as first and last name,
/// department, job title and location. A roster import refuses CR and LF
/// inside a field, so those people carry only the marker there (their
/// exemption reason carries the trigger). Beside each, a person `x{i}` to
/// exempt with the value as the reason (the report counts only enrolled
/// people in its breakdowns, so the exempted ones are others).
fn roster() -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "Email",
        "First Name",
        "Last Name",
        "Department",
        "Job Title",
        "Location",
    ])
    .unwrap();
    for (i, (t, value, marker)) in cases().into_iter().enumerate() {
        let value = if matches!(t, '\r' | '\n') {
            marker
        } else {
            value
        };
        let email = format!("p{i}@hospital.example.org");
        w.write_record([email.as_str(), &value, &value, &value, &value, &value])
            .unwrap();
        let exempted = format!("x{i}@hospital.example.org");
        w.write_record([exempted.as_str(), "X", "X", "Staff", "Buyer", "Main"])
            .unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

fn cells(text: &str) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    reader
        .records()
        .flat_map(|r| r.unwrap().iter().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// No cell starts with a trigger, and every marker of `markers` is in a cell.
fn assert_safe(output: &str, text: &str, markers: &[&str]) {
    let cells = cells(text);
    for cell in &cells {
        assert!(
            !cell.starts_with(TRIGGERS),
            "{output}: a spreadsheet would evaluate {cell:?}"
        );
    }
    for marker in markers {
        assert!(
            cells.iter().any(|c| c.contains(marker)),
            "{output}: the value with {marker} did not reach the output:\n{text}"
        );
    }
}

/// A day after the campaign's start: the report shows nothing before it.
const AFTER_LAUNCH: &str = "2027-01-12";

#[tokio::test(flavor = "multi_thread")]
async fn no_csv_output_has_a_cell_a_spreadsheet_would_evaluate() {
    let t = TestApp::spawn().await;
    t.import(&roster()).await;
    t.apply(&CAMPAIGN.replace(
        "include = { department = [\"Supply Chain\", \"Procurement\"] }",
        "",
    ))
    .await;
    t.tick_at(common::app::launch()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_for_app(dir.path(), &t);
    let cases = cases();
    for (i, (_, value, _)) in cases.iter().enumerate() {
        let email = format!("x{i}@hospital.example.org");
        let reason = format!("--reason={value}");
        stdout_of(&config, &["exempt", &email, "--campaign", "test", &reason]);
    }
    let roster_markers: Vec<&str> = cases
        .iter()
        .filter(|(t, _, _)| !matches!(t, '\r' | '\n'))
        .map(|(_, _, m)| m.as_str())
        .collect();
    let all_markers: Vec<&str> = cases.iter().map(|(_, _, m)| m.as_str()).collect();

    let report = stdout_of(
        &config,
        &[
            "report",
            "--campaign",
            "test",
            "--format",
            "csv",
            "--as-of",
            AFTER_LAUNCH,
        ],
    );
    assert_safe("report --format csv", &report, &roster_markers);
    let evidence = stdout_of(&config, &["report", "--campaign", "test", "--evidence"]);
    assert_safe("report --evidence", &evidence, &all_markers);
    let list = stdout_of(&config, &["roster", "list", "--format", "csv"]);
    assert_safe("roster list --format csv", &list, &roster_markers);
}
