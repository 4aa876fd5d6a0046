//! Roster import against a real SQLite file: messy HR exports, monthly syncs,
//! the safety refusals, every kind of bad file, and the command line.

mod common;

use ambassador::roster::{ImportError, ImportMode, RowError};
use ambassador::store::roster::changes_of;
use common::*;

// ---------------------------------------------------------------- reading exports

#[tokio::test]
async fn bom_crlf_export_with_aliased_reordered_headers_maps_every_field() {
    let db = TestDb::new().await;
    let bytes = fixture("hr_export_2027_01.csv");
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBFEmployee ID,") && bytes.windows(2).any(|w| w == b"\r\n")
    );

    let report = db.import(&bytes, &options()).await.unwrap();

    assert_eq!(report.counts, counts(10, 0, 0, 0, 0, 0));
    assert_eq!(
        (report.encoding.as_str(), report.delimiter.as_str()),
        ("UTF-8", ",")
    );
    let erik = db.person("erik.lindqvist@health.example.org").await;
    assert_eq!(erik.employee_id.as_deref(), Some("10002"));
    assert_eq!(
        (erik.first_name.as_str(), erik.last_name.as_str()),
        ("Erik", "Lindqvist")
    );
    assert_eq!(erik.role, "Senior Buyer");
    assert_eq!(erik.department, "Procurement");
    assert_eq!(erik.facility, "Main Campus");
    assert_eq!(
        erik.manager_email.as_deref(),
        Some("grace.okafor@health.example.org")
    );
    assert_eq!(erik.source, "hr");
    assert_eq!(erik.active, 1);
    let robert = db.person("robert.smith@health.example.org").await;
    assert_eq!(robert.last_name, "Smith, Jr.");
}

#[tokio::test]
async fn email_addresses_are_stored_lower_cased() {
    let db = TestDb::new().await;

    db.import(&fixture("hr_export_2027_01.csv"), &options())
        .await
        .unwrap();

    let grace = db.person("grace.okafor@health.example.org").await;
    assert_eq!(grace.employee_id.as_deref(), Some("10001"));
    assert_eq!(grace.manager_email, None);
}

#[tokio::test]
async fn extra_column_is_kept_as_an_attribute() {
    let db = TestDb::new().await;

    db.import(&fixture("hr_export_2027_01.csv"), &options())
        .await
        .unwrap();

    let layla = db.person("layla.haddad@health.example.org").await;
    assert_eq!(layla.attributes, r#"{"cost_center":"CC-2040"}"#);
}

#[tokio::test]
async fn backslashes_and_quotes_in_values_are_stored_as_written() {
    // PostgreSQL loads new people through COPY, whose text format gives a
    // backslash meaning (and reads `\N` as NULL): every value must arrive as the export wrote it,
    // and read back equal, or the next import would "update" everyone.
    let csv = "Email,First Name,Last Name,Cost Center\n\
               a.b@health.example.org,O\\Brien,\\N,\"C:\\HR\\\"\"x\"\"\\N\"\n";
    let db = TestDb::new().await;
    db.import(csv.as_bytes(), &options()).await.unwrap();

    let person = db.person("a.b@health.example.org").await;
    assert_eq!(person.first_name, "O\\Brien");
    assert_eq!(person.last_name, "\\N", "not NULL");
    assert_eq!(person.attributes, r#"{"cost_center":"C:\\HR\\\"x\"\\N"}"#);
    let again = db.import(csv.as_bytes(), &options()).await.unwrap();
    assert_eq!(again.counts, counts(0, 0, 1, 0, 0, 0));
}

#[tokio::test]
async fn windows_1252_semicolon_export_lands_in_utf8() {
    let db = TestDb::new().await;
    let text = "Matricule;Nom;Prénom;E-mail;Service\r\n\
                20001;Pérez;José;jose.perez@health.example.org;Achats\r\n\
                20002;Müller;Jürgen;juergen.mueller@health.example.org;Logistique\r\n\
                20003;Núñez;Begoña;begona.nunez@health.example.org;Pharmacie\r\n";
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
    assert!(!unmappable && std::str::from_utf8(&bytes).is_err());
    let mut settings = db.settings.clone();
    for (header, field) in [
        ("Matricule", "employee_id"),
        ("Nom", "last_name"),
        ("Prénom", "first_name"),
        ("Service", "department"),
    ] {
        settings.columns.insert(header.into(), field.into());
    }

    let report = db.import_with(&settings, &bytes, &options()).await.unwrap();

    assert_eq!(
        (report.encoding.as_str(), report.delimiter.as_str()),
        ("windows-1252", ";")
    );
    assert_eq!(report.counts, counts(3, 0, 0, 0, 0, 0));
    let names: Vec<(String, String)> = db
        .all_staff()
        .await
        .into_iter()
        .map(|p| (p.first_name, p.last_name))
        .collect();
    assert_eq!(
        names,
        [("Jürgen", "Müller"), ("Begoña", "Núñez"), ("José", "Pérez")]
            .map(|(f, l)| (f.to_string(), l.to_string()))
    );
    assert_eq!(
        db.person("juergen.mueller@health.example.org")
            .await
            .department,
        "Logistique"
    );
}

#[tokio::test]
async fn utf16_tab_separated_export_is_read() {
    let db = TestDb::new().await;
    let mut bytes = vec![0xFF, 0xFE];
    for unit in "Email\tFirst Name\tLast Name\r\nzoe.lefevre@health.example.org\tZoë\tLefèvre\r\n"
        .encode_utf16()
    {
        bytes.extend(unit.to_le_bytes());
    }

    let report = db.import(&bytes, &options()).await.unwrap();

    assert_eq!(
        (report.encoding.as_str(), report.delimiter.as_str()),
        ("UTF-16LE", "tab")
    );
    assert_eq!(
        db.person("zoe.lefevre@health.example.org").await.first_name,
        "Zoë"
    );
}

// ---------------------------------------------------------------- HR system exports

#[tokio::test]
async fn workday_export_maps_every_column_and_prefers_legal_names() {
    let db = TestDb::new().await;
    let bytes = fixture("workday_export.csv");
    assert!(bytes.starts_with("\u{feff}Worker ID;Legal First Name;".as_bytes()));

    let report = db.import(&bytes, &options()).await.unwrap();

    assert_eq!(report.counts, counts(24, 0, 0, 0, 0, 0));
    assert_eq!(report.delimiter, ";");
    let mapping: Vec<(&str, &str)> = report
        .columns
        .iter()
        .map(|c| (c.column.as_str(), c.to.as_str()))
        .collect();
    assert_eq!(
        mapping,
        [
            ("Worker ID", "employee_id"),
            ("Legal First Name", "first_name"),
            ("Legal Last Name", "last_name"),
            ("Preferred Name", "attributes.preferred_name"),
            ("Primary Work Email", "email"),
            ("Manager's Email", "manager_email"),
            ("Business Title", "role"),
            ("Cost Center Hierarchy", "department"),
            ("Location", "facility"),
            ("Time Zone", "time_zone"),
            ("Worker Type", "attributes.worker_type"),
        ]
    );
    let note = report.columns[3].note.as_deref().unwrap_or_default();
    assert!(note.contains("\"Legal First Name\" is used"), "{note}");
    assert_eq!(report.warnings, []);
    let dan = db.person("daniel.hernandez@mercyvalley.example.org").await;
    assert_eq!(
        (
            dan.employee_id.as_deref(),
            dan.first_name.as_str(),
            dan.role.as_str(),
            dan.department.as_str(),
            dan.manager_email.as_deref(),
        ),
        (
            Some("W1002"),
            "Daniel",
            "Director of Procurement",
            "Mercy Valley Health > Operations > Procurement",
            Some("margaret.okonkwo@mercyvalley.example.org"),
        )
    );
    assert_eq!(
        dan.attributes,
        r#"{"preferred_name":"Dan","worker_type":"Employee"}"#
    );
}

#[tokio::test]
async fn hr_time_zone_labels_are_stored_as_iana_names() {
    let db = TestDb::new().await;

    db.import(&fixture("workday_export.csv"), &options())
        .await
        .unwrap();

    let mut zones = Vec::new();
    for (email, label) in [
        ("margaret.okonkwo", "GMT-06:00 Central Time (Chicago)"),
        ("priya.raman", "Central Standard Time"),
        ("carlos.mendoza", "GMT-05:00 Eastern Time (New York)"),
        ("samuel.adeyemi", "Eastern Standard Time"),
        ("sofia.rossi", "GMT-07:00 Mountain Time (Denver)"),
        ("david.kim", "(UTC-06:00) Central Time (US & Canada)"),
        ("noor.haddad", ""),
    ] {
        let person = db.person(&format!("{email}@mercyvalley.example.org")).await;
        zones.push((label, person.time_zone));
    }
    let zone = |z: &str| Some(z.to_string());
    assert_eq!(
        zones,
        [
            ("GMT-06:00 Central Time (Chicago)", zone("America/Chicago")),
            ("Central Standard Time", zone("America/Chicago")),
            (
                "GMT-05:00 Eastern Time (New York)",
                zone("America/New_York")
            ),
            ("Eastern Standard Time", zone("America/New_York")),
            ("GMT-07:00 Mountain Time (Denver)", zone("America/Denver")),
            (
                "(UTC-06:00) Central Time (US & Canada)",
                zone("America/Chicago")
            ),
            ("", None),
        ]
    );
}

#[tokio::test]
async fn an_unknown_time_zone_warns_with_its_line_and_imports_the_person_without_one() {
    let db = TestDb::new().await;
    let csv =
        "Email,Time Zone\nann@x.org,GMT-06:00 Central Time (Chicago)\nbo@x.org,Lunar Base Time\n";

    let report = db.import(csv.as_bytes(), &options()).await.unwrap();

    assert_eq!(report.counts, counts(2, 0, 0, 0, 0, 0));
    assert_eq!(lines_and_columns(&report.warnings), [(3, "Time Zone")]);
    assert!(
        report.warnings[0]
            .reason
            .starts_with("\"Lunar Base Time\" is not a time zone ambassador knows"),
        "{}",
        report.warnings[0].reason
    );
    assert_eq!(db.person("bo@x.org").await.time_zone, None);
    assert_eq!(
        db.person("ann@x.org").await.time_zone.as_deref(),
        Some("America/Chicago")
    );
}

#[tokio::test]
async fn config_maps_a_column_to_a_field_an_attribute_or_nowhere() {
    let db = TestDb::new().await;
    let mut settings = db.settings.clone();
    settings.columns = [
        ("Preferred Name", "first_name"),
        ("Cost Center Hierarchy", "attributes.cost_center"),
        ("Worker Type", "ignore"),
        ("Business Title", ""),
    ]
    .into_iter()
    .map(|(h, f)| (h.to_string(), f.to_string()))
    .collect();

    let report = db
        .import_with(&settings, &fixture("workday_export.csv"), &options())
        .await
        .unwrap();

    let to = |column: &str| {
        report
            .columns
            .iter()
            .find(|c| c.column == column)
            .map(|c| c.to.clone())
    };
    assert_eq!(to("Preferred Name").as_deref(), Some("first_name"));
    assert_eq!(
        to("Legal First Name").as_deref(),
        Some("attributes.legal_first_name")
    );
    assert_eq!(to("Worker Type").as_deref(), Some("ignore"));
    let dan = db.person("daniel.hernandez@mercyvalley.example.org").await;
    assert_eq!(
        (
            dan.first_name.as_str(),
            dan.role.as_str(),
            dan.department.as_str()
        ),
        ("Dan", "", "")
    );
    assert_eq!(
        dan.attributes,
        r#"{"cost_center":"Mercy Valley Health > Operations > Procurement","legal_first_name":"Daniel"}"#
    );
}

#[tokio::test]
async fn a_file_imported_before_a_later_import_is_refused_naming_the_earlier_date() {
    let db = TestDb::new().await;
    let january = fixture("hr_export_2027_01.csv");
    let mut jan_options = options();
    jan_options.file_name = "january.csv".into();
    db.import(&january, &jan_options).await.unwrap();
    db.clock.advance(chrono::Duration::days(31));
    let mut feb_options = options();
    feb_options.file_name = "february.csv".into();
    db.import(&fixture("hr_export_2027_02.csv"), &feb_options)
        .await
        .unwrap();
    db.clock.advance(chrono::Duration::days(3));
    let before = db.snapshot().await;

    let err = db.import(&january, &options()).await.unwrap_err();

    let refused = err
        .report()
        .and_then(|r| r.refused.clone())
        .unwrap_or_default();
    assert!(matches!(err, ImportError::Refused(_)), "{err}");
    assert_eq!(
        refused,
        "this file has the same content as \"january.csv\", imported on 2027-01-04 09:00 UTC; \"february.csv\" was imported after it, on 2027-02-04 09:00 UTC, so importing this file again would undo that. Nothing was changed. Import the newest export, or pass --force to go back to this one"
    );
    assert_eq!(db.snapshot().await, before);
    let mut dry = options();
    dry.dry_run = true;
    assert!(matches!(
        db.import(&january, &dry).await,
        Err(ImportError::Refused(_))
    ));
}

#[tokio::test]
async fn an_earlier_file_is_imported_again_with_force_and_the_latest_file_without() {
    let db = TestDb::new().await;
    let january = fixture("hr_export_2027_01.csv");
    db.import(&january, &options()).await.unwrap();
    db.import(&fixture("hr_export_2027_02.csv"), &options())
        .await
        .unwrap();
    let mut forced = options();
    forced.force = true;

    let report = db.import(&january, &forced).await.unwrap();

    assert!(report.applied);
    let again = db.import(&january, &options()).await.unwrap();
    assert_eq!(
        again.counts.unchanged, 10,
        "the latest import may be repeated"
    );
}

// ---------------------------------------------------------------- monthly sync

#[tokio::test]
async fn second_month_sync_counts_joiners_leavers_and_moves() {
    let db = TestDb::new().await;
    db.import(&fixture("hr_export_2027_01.csv"), &options())
        .await
        .unwrap();

    let report = db
        .import(&fixture("hr_export_2027_02.csv"), &options())
        .await
        .unwrap();

    assert_eq!(report.counts, counts(2, 2, 7, 1, 0, 0));
    assert!(report.applied);
    assert_eq!(db.active_emails().await.len(), 11);
}

#[tokio::test]
async fn sync_deactivates_people_missing_from_the_export() {
    let db = TestDb::new().await;
    db.import(&fixture("hr_export_2027_01.csv"), &options())
        .await
        .unwrap();
    db.clock.advance(chrono::Duration::days(31));

    db.import(&fixture("hr_export_2027_02.csv"), &options())
        .await
        .unwrap();

    let layla = db.person("layla.haddad@health.example.org").await;
    assert_eq!(layla.active, 0, "a leaver is deactivated");
    assert_eq!(
        layla.deactivated_at,
        Some(ambassador::clock::to_millis(db.clock_now()))
    );
    assert_eq!(
        layla.department, "Nursing",
        "the leaver's row is kept as it was"
    );
    assert_eq!(db.all_staff().await.len(), 12, "nobody is deleted");
}

#[tokio::test]
async fn sync_updates_a_department_move_in_place() {
    let db = TestDb::new().await;
    db.import(&fixture("hr_export_2027_01.csv"), &options())
        .await
        .unwrap();
    let before = db.person("sofia.ramirez@health.example.org").await;

    db.import(&fixture("hr_export_2027_02.csv"), &options())
        .await
        .unwrap();

    let after = db.person("sofia.ramirez@health.example.org").await;
    assert_eq!(
        (after.id, after.department.as_str()),
        (before.id, "Supply Chain")
    );
}

#[tokio::test]
async fn returning_person_is_reactivated() {
    let db = TestDb::new().await;
    db.import(&fixture("hr_export_2027_01.csv"), &options())
        .await
        .unwrap();
    db.import(&fixture("hr_export_2027_02.csv"), &options())
        .await
        .unwrap();
    let gone = db.person("layla.haddad@health.example.org").await;

    let report = db
        .import(&fixture("hr_export_2027_03.csv"), &options())
        .await
        .unwrap();

    assert_eq!(report.counts, counts(0, 0, 11, 0, 1, 0));
    let back = db.person("layla.haddad@health.example.org").await;
    assert_eq!(
        (back.id, back.active, back.deactivated_at),
        (gone.id, 1, None)
    );
}

#[tokio::test]
async fn history_records_moves_deactivations_and_reactivations() {
    let db = TestDb::new().await;
    db.import(&fixture("hr_export_2027_01.csv"), &options())
        .await
        .unwrap();
    let feb = db
        .import(&fixture("hr_export_2027_02.csv"), &options())
        .await
        .unwrap()
        .import_id
        .unwrap();
    let mar = db
        .import(&fixture("hr_export_2027_03.csv"), &options())
        .await
        .unwrap()
        .import_id
        .unwrap();

    let petra = db.person("petra.novak@health.example.org").await;
    let layla = db.person("layla.haddad@health.example.org").await;
    let grace = db.person("grace.okafor@health.example.org").await;

    assert_eq!(
        changes_of(&db.store, petra.id).await.unwrap(),
        [(
            feb,
            "updated".to_string(),
            r#"[{"field":"department","from":"Pharmacy","to":"Procurement"}]"#.to_string()
        )]
    );
    assert_eq!(
        changes_of(&db.store, layla.id).await.unwrap(),
        [
            (feb, "deactivated".to_string(), "{}".to_string()),
            (mar, "reactivated".to_string(), "[]".to_string())
        ]
    );
    assert_eq!(
        changes_of(&db.store, grace.id).await.unwrap(),
        [],
        "an unchanged person has no history"
    );
}

#[tokio::test]
async fn reimporting_the_same_export_changes_nothing() {
    let db = TestDb::new().await;
    db.import(&fixture("hr_export_2027_01.csv"), &options())
        .await
        .unwrap();
    let staff_before = db.all_staff_json().await;

    let report = db
        .import(&fixture("hr_export_2027_01.csv"), &options())
        .await
        .unwrap();

    assert_eq!(report.counts, counts(0, 0, 10, 0, 0, 0));
    assert_eq!(db.all_staff_json().await, staff_before);
    assert_eq!(db.import_count().await, 2, "the import itself is recorded");
}

#[tokio::test]
async fn add_mode_deactivates_nobody() {
    let db = TestDb::new().await;
    db.import(&fixture("hr_export_2027_01.csv"), &options())
        .await
        .unwrap();

    let report = db
        .import(
            &fixture("hr_export_2027_02.csv"),
            &ImportOptions {
                mode: ImportMode::Add,
                ..options()
            },
        )
        .await
        .unwrap();

    assert_eq!(report.counts, counts(2, 2, 7, 0, 0, 0));
    assert_eq!(db.person("layla.haddad@health.example.org").await.active, 1);
    assert_eq!(db.active_emails().await.len(), 12);
}

#[tokio::test]
async fn dry_run_reports_the_changes_and_writes_nothing() {
    let db = TestDb::new().await;
    db.import(&fixture("hr_export_2027_01.csv"), &options())
        .await
        .unwrap();
    let before = db.snapshot().await;

    let report = db
        .import(
            &fixture("hr_export_2027_02.csv"),
            &ImportOptions {
                dry_run: true,
                ..options()
            },
        )
        .await
        .unwrap();

    assert_eq!(report.counts, counts(2, 2, 7, 1, 0, 0));
    assert_eq!((report.applied, report.import_id), (false, None));
    let actions: Vec<(&str, &str)> = report
        .changes
        .iter()
        .map(|c| (c.action, c.email.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("add", "mateo.silva@health.example.org"),
            ("add", "priya.natarajan@health.example.org"),
            ("update", "sofia.ramirez@health.example.org"),
            ("update", "petra.novak@health.example.org"),
            ("deactivate", "layla.haddad@health.example.org"),
        ]
    );
    assert_eq!(db.snapshot().await, before);
}

#[tokio::test]
async fn skip_invalid_imports_valid_rows_and_reports_the_rest() {
    let db = TestDb::new().await;

    let report = db
        .import(
            &fixture("bad_email.csv"),
            &ImportOptions {
                skip_invalid: true,
                ..options()
            },
        )
        .await
        .unwrap();

    assert_eq!(report.counts, counts(1, 0, 0, 0, 0, 3));
    assert_eq!(
        lines_and_columns(&report.rejected),
        [(3, "Email"), (4, "Email"), (5, "Email")]
    );
    assert_eq!(
        db.active_emails().await,
        ["grace.okafor@health.example.org"]
    );
}

#[tokio::test]
async fn skip_invalid_sync_does_not_deactivate_a_person_whose_row_was_rejected() {
    let db = TestDb::new().await;
    db.import(&fixture("hr_export_2027_01.csv"), &options())
        .await
        .unwrap();
    let text = String::from_utf8(fixture("hr_export_2027_01.csv")).unwrap();
    let broken = text.replace(
        ",Registered Nurse,Nursing,Eastside Hospital,,",
        ",Registered Nurse,Nursing,Eastside Hospital,not-an-address,",
    );

    let report = db
        .import(
            broken.as_bytes(),
            &ImportOptions {
                skip_invalid: true,
                ..options()
            },
        )
        .await
        .unwrap();

    assert_eq!(report.counts, counts(0, 0, 9, 0, 0, 1));
    assert_eq!(db.person("layla.haddad@health.example.org").await.active, 1);
}

// ------------------------------------------------- large files, streamed

/// A generated export of `people` rows; `department` names everyone's department.
fn generated(people: usize, department: &str) -> String {
    let mut csv = String::from("Employee ID,Email,First Name,Department\n");
    for i in 0..people {
        csv.push_str(&format!(
            "E{i:05},person.{i}@health.example.org,Person {i},{department}\n"
        ));
    }
    csv
}

#[tokio::test]
async fn a_bad_row_after_thousands_of_written_rows_still_writes_nothing() {
    // Rows are written in batches (3,000 rows) while the file is read: a
    // rejected row near the end must roll back the batches already written.
    let db = TestDb::with_january().await;
    let before = db.snapshot().await;
    let mut csv = generated(7000, "Supply Chain");
    csv.push_str("E99999,not-an-address,Late,Supply Chain\n");

    let err = db.import(csv.as_bytes(), &options()).await.unwrap_err();

    assert_eq!(
        rejected_lines(&err),
        ["line 7002, column Email: email is not a valid email address (Missing separator character '@'.)"]
    );
    assert_eq!(err.report().unwrap().counts.added, 7000);
    assert_eq!(db.snapshot().await, before);
}

#[tokio::test]
async fn a_refused_sync_rolls_back_updates_already_written() {
    let db = TestDb::new().await;
    db.import(generated(10_000, "Supply Chain").as_bytes(), &options())
        .await
        .unwrap();
    let before = db.snapshot().await;
    // 7,000 people move (written in batches), 3,000 are missing: refused.
    let moved = generated(7000, "Procurement");

    let err = db.import(moved.as_bytes(), &options()).await.unwrap_err();

    assert!(matches!(err, ImportError::Refused(_)), "{err}");
    assert_eq!(err.report().unwrap().counts, counts(0, 7000, 0, 3000, 0, 0));
    assert_eq!(db.snapshot().await, before);
}

// Multi-threaded, so the stored roster finishes loading while the file is
// being read: some rows are read ahead, the rest after the load.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_sync_counts_and_records_every_change() {
    let db = TestDb::new().await;
    db.import(generated(7000, "Supply Chain").as_bytes(), &options())
        .await
        .unwrap();
    // Everyone but the last 500 moves (more than two batches); 500 leave; 100 join.
    let mut csv = generated(6500, "Procurement");
    for i in 0..100 {
        csv.push_str(&format!(
            "N{i:05},joiner.{i}@health.example.org,Joiner {i},Pharmacy\n"
        ));
    }

    let report = db.import(csv.as_bytes(), &options()).await.unwrap();

    assert_eq!(report.counts, counts(100, 6500, 0, 500, 0, 0));
    let changes_written: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM roster_changes WHERE import_id = $1")
            .bind(report.import_id.unwrap())
            .fetch_one(db.store.pool())
            .await
            .unwrap();
    assert_eq!(changes_written, 7000);
    let recorded: (i64, i64, i64) =
        sqlx::query_as("SELECT added, updated, deactivated FROM roster_imports WHERE id = $1")
            .bind(report.import_id.unwrap())
            .fetch_one(db.store.pool())
            .await
            .unwrap();
    assert_eq!(recorded, (100, 6500, 500));
    assert_eq!(
        db.person("person.7@health.example.org").await.department,
        "Procurement"
    );
    assert_eq!(db.person("person.6700@health.example.org").await.active, 0);
    assert_eq!(
        db.person("joiner.99@health.example.org").await.department,
        "Pharmacy"
    );
}

#[tokio::test]
async fn a_large_roster_with_and_without_employee_ids_reads_back_exactly() {
    // Stored people are read back packed a thousand to a row: an empty
    // employee id, empty optional fields and the packing's edges must all
    // come back as they went in, or an unchanged re-import would update.
    let mut csv = String::from("Employee ID,Email,First Name,Manager Email,Time Zone\n");
    for i in 0..2500 {
        let id = if i % 2 == 0 {
            format!("E{i:05}")
        } else {
            String::new()
        };
        let manager = if i % 3 == 0 {
            "boss@health.example.org"
        } else {
            ""
        };
        let zone = if i % 5 == 0 { "Europe/Paris" } else { "" };
        csv.push_str(&format!(
            "{id},person.{i}@health.example.org,Person {i},{manager},{zone}\n"
        ));
    }
    let db = TestDb::new().await;
    db.import(csv.as_bytes(), &options()).await.unwrap();

    let again = db.import(csv.as_bytes(), &options()).await.unwrap();
    assert_eq!(again.counts, counts(0, 0, 2500, 0, 0, 0));

    let moved = csv
        .replace(
            ",person.1@health.example.org,Person 1,",
            ",person.1@health.example.org,Persona 1,",
        )
        .replace("E01000,person.1000@", "E01000,renamed.1000@")
        .replace("\n,person.3@", "\nE90003,person.3@");
    let report = db.import(moved.as_bytes(), &options()).await.unwrap();
    assert_eq!(report.counts, counts(0, 3, 2497, 0, 0, 0));
    assert_eq!(
        db.person("person.3@health.example.org")
            .await
            .employee_id
            .as_deref(),
        Some("E90003"),
        "a person stored without an id takes the one the export now gives"
    );
    assert_eq!(
        db.person("person.1@health.example.org").await.first_name,
        "Persona 1"
    );
    assert_eq!(db.person("renamed.1000@health.example.org").await.active, 1);
}

// ---------------------------------------------------------------- refusals

#[tokio::test]
async fn sync_deactivating_more_than_a_fifth_is_refused() {
    let db = TestDb::new().await;
    db.import(&fixture("hr_export_2027_01.csv"), &options())
        .await
        .unwrap();
    let before = db.snapshot().await;

    let err = db
        .import(&first_lines("hr_export_2027_01.csv", 8), &options())
        .await
        .unwrap_err();

    assert!(matches!(err, ImportError::Refused(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "roster.csv: this sync would deactivate 3 of 10 active people (30%), more than roster.max_deactivate_share (20%); is the export truncated? Nothing was changed. Check the file, or pass --force if the change is real"
    );
    assert_eq!(err.report().unwrap().counts, counts(0, 0, 7, 3, 0, 0));
    assert_eq!(db.snapshot().await, before);
}

#[tokio::test]
async fn sync_deactivating_more_than_a_fifth_is_applied_with_force() {
    let db = TestDb::new().await;
    db.import(&fixture("hr_export_2027_01.csv"), &options())
        .await
        .unwrap();

    let report = db
        .import(
            &first_lines("hr_export_2027_01.csv", 8),
            &ImportOptions {
                force: true,
                ..options()
            },
        )
        .await
        .unwrap();

    assert_eq!(report.counts, counts(0, 0, 7, 3, 0, 0));
    assert_eq!(db.active_emails().await.len(), 7);
}

#[tokio::test]
async fn header_only_export_is_refused() {
    let db = TestDb::new().await;
    db.import(&fixture("hr_export_2027_01.csv"), &options())
        .await
        .unwrap();
    let before = db.snapshot().await;

    let err = db
        .import(&first_lines("hr_export_2027_01.csv", 1), &options())
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        "roster.csv: the export has a header but no data rows; nothing was changed. If the roster really is empty, pass --force"
    );
    assert_eq!(db.snapshot().await, before);
}

#[tokio::test]
async fn header_only_export_with_force_deactivates_everyone() {
    let db = TestDb::new().await;
    db.import(&fixture("hr_export_2027_01.csv"), &options())
        .await
        .unwrap();

    let report = db
        .import(
            &first_lines("hr_export_2027_01.csv", 1),
            &ImportOptions {
                force: true,
                ..options()
            },
        )
        .await
        .unwrap();

    assert_eq!(report.counts, counts(0, 0, 0, 10, 0, 0));
    assert_eq!(db.active_emails().await.len(), 0);
    assert_eq!(db.all_staff().await.len(), 10);
}

#[tokio::test]
async fn an_address_owned_by_another_source_is_rejected() {
    let db = TestDb::new().await;
    db.import(&fixture("hr_export_2027_01.csv"), &options())
        .await
        .unwrap();
    let before = db.snapshot().await;
    let contractors = b"Work Email,First Name\nerik.lindqvist@health.example.org,Erik\nvendor.rep@supplier.example.com,Vera\n";

    let err = db
        .import(
            contractors,
            &ImportOptions {
                source: "vendor-portal".parse().unwrap(),
                mode: ImportMode::Add,
                ..options()
            },
        )
        .await
        .unwrap_err();

    assert_eq!(
        rejected_lines(&err),
        ["line 2, column Work Email: erik.lindqvist@health.example.org already belongs to a person imported from source \"hr\"; remove them there first or import this file with --source hr"]
    );
    assert_eq!(db.snapshot().await, before);
}

// ---------------------------------------------------------------- bad files

#[tokio::test]
async fn bad_email_syntax_is_rejected_with_line_and_column() {
    let db = TestDb::with_january().await;
    let before = db.snapshot().await;

    let err = db
        .import(&fixture("bad_email.csv"), &options())
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        "roster.csv: 3 row(s) rejected; nothing was imported. Fix the rows listed, or pass --skip-invalid to import the valid rows only"
    );
    let lines = rejected_lines(&err);
    assert_eq!(
        lines[0],
        "line 3, column Email: email has no domain with a dot (e.g. name@hospital.org)"
    );
    assert!(
        lines[1].starts_with("line 4, column Email: email is not a valid email address ("),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("line 5, column Email: email is not a valid email address ("),
        "{}",
        lines[2]
    );
    assert_eq!(lines.len(), 3);
    assert_eq!(db.snapshot().await, before);
}

#[tokio::test]
async fn duplicate_email_differing_only_in_case_is_rejected() {
    let db = TestDb::with_january().await;
    let before = db.snapshot().await;

    let err = db
        .import(&fixture("duplicate_email.csv"), &options())
        .await
        .unwrap_err();

    assert_eq!(
        rejected_lines(&err),
        ["line 4, column Email: grace.okafor@health.example.org already appears on line 2; each person must appear once"]
    );
    assert_eq!(db.snapshot().await, before);
}

#[tokio::test]
async fn duplicate_employee_id_is_rejected() {
    let db = TestDb::with_january().await;
    let before = db.snapshot().await;

    let err = db
        .import(&fixture("duplicate_employee_id.csv"), &options())
        .await
        .unwrap_err();

    assert_eq!(
        rejected_lines(&err),
        ["line 4, column Employee ID: employee id \"10003\" already appears on line 2"]
    );
    assert_eq!(db.snapshot().await, before);
}

#[tokio::test]
async fn missing_email_value_is_rejected() {
    let db = TestDb::with_january().await;
    let before = db.snapshot().await;

    let err = db
        .import(&fixture("missing_email_value.csv"), &options())
        .await
        .unwrap_err();

    assert_eq!(
        rejected_lines(&err),
        [
            "line 3, column Email: email is empty",
            "line 4, column Email: email is empty"
        ]
    );
    assert_eq!(db.snapshot().await, before);
}

#[tokio::test]
async fn missing_email_column_is_refused_naming_the_headers() {
    let db = TestDb::with_january().await;
    let before = db.snapshot().await;

    let err = db
        .import(&fixture("missing_email_column.csv"), &options())
        .await
        .unwrap_err();

    assert!(matches!(err, ImportError::Unreadable { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "roster.csv: line 1 (the header row): no email column: none of the headers (\"Employee ID\", \"First Name\", \"Last Name\", \"Department\", \"Personal Phone\") is an email header; name it \"Email\" or map it in config with [roster] columns = { \"Your Header\" = \"email\" } (read as UTF-8)"
    );
    assert_eq!(db.snapshot().await, before);
}

#[tokio::test]
async fn wrong_field_count_is_rejected() {
    let db = TestDb::with_january().await;
    let before = db.snapshot().await;

    let err = db
        .import(&fixture("wrong_field_count.csv"), &options())
        .await
        .unwrap_err();

    assert_eq!(rejected_lines(&err), [
        "line 3: expected 5 fields like the header, found 6; check for an unquoted delimiter or a missing value",
        "line 4: expected 5 fields like the header, found 4; check for an unquoted delimiter or a missing value",
        "line 6: expected 5 fields like the header, found 6; check for an unquoted delimiter or a missing value",
    ]);
    assert_eq!(db.snapshot().await, before);
}

#[tokio::test]
async fn cr_lf_or_nul_inside_a_quoted_field_is_rejected() {
    let db = TestDb::with_january().await;
    let before = db.snapshot().await;
    let bytes = b"Email,Employee ID,First Name,Last Name,Department\n\
        grace.okafor@health.example.org,10001,Grace,Okafor,Supply Chain\n\
        erik.lindqvist@health.example.org,10002,\"Erik\rJohan\",Lindqvist,Procurement\n\
        sofia.ramirez@health.example.org,10003,Sofia,\"Ramirez\nGarcia\",Procurement\n\
        wei.chen@health.example.org,10004,Wei,Chen,\"Supply\0Chain\"\n";

    let err = db.import(bytes, &options()).await.unwrap_err();

    assert_eq!(rejected_lines(&err), [
        "line 3, column First Name: contains a carriage return (CR); remove it from the cell in the export",
        "line 4, column Last Name: contains a line break (LF); remove it from the cell in the export",
        "line 6, column Department: contains a NUL byte; remove it from the cell in the export",
    ]);
    assert_eq!(db.snapshot().await, before);
}

#[tokio::test]
async fn absurdly_long_field_is_rejected() {
    let db = TestDb::with_january().await;
    let before = db.snapshot().await;
    let bytes = format!(
        "Email,First Name,Department\ngrace.okafor@health.example.org,Grace,{}\n",
        "Supply Chain ".repeat(1000)
    );

    let err = db.import(bytes.as_bytes(), &options()).await.unwrap_err();

    assert_eq!(
        rejected_lines(&err),
        ["line 2, column Department: is 13000 characters long, more than the 256 allowed (roster.max_field_length)"]
    );
    assert_eq!(db.snapshot().await, before);
}

#[tokio::test]
async fn every_error_in_the_file_is_reported_in_one_run() {
    let db = TestDb::with_january().await;
    let before = db.snapshot().await;

    let err = db
        .import(&fixture("many_errors.csv"), &options())
        .await
        .unwrap_err();

    let report = err.report().unwrap();
    assert_eq!(report.counts.rejected, 5);
    assert_eq!(
        lines_and_columns(&report.rejected),
        [
            (3, "Email"),
            (5, "Email"),
            (7, "Email"),
            (8, ""),
            (9, "Employee ID"),
        ]
    );
    // An unknown time zone warns instead of rejecting its row.
    assert_eq!(lines_and_columns(&report.warnings), [(4, "Time Zone")]);
    assert_eq!(db.snapshot().await, before);
}

#[tokio::test]
async fn binary_file_is_refused() {
    let db = TestDb::with_january().await;
    let before = db.snapshot().await;
    // The first page of a SQLite database: someone uploaded ambassador.db.
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend((0..4080u32).map(|i| (i % 5) as u8));

    let err = db.import(&bytes, &options()).await.unwrap_err();

    assert_eq!(
        err.to_string(),
        "roster.csv: this is not a text file (byte 15 is a binary control byte); export the roster as CSV"
    );
    assert_eq!(db.snapshot().await, before);
}

#[tokio::test]
async fn xlsx_workbook_is_refused() {
    let db = TestDb::with_january().await;
    let before = db.snapshot().await;

    let err = db.import(&xlsx_bytes(), &options()).await.unwrap_err();

    assert_eq!(
        err.to_string(),
        "roster.csv: this is a zip archive (an Excel .xlsx workbook?), not a CSV file; open it in the spreadsheet program and save it as \"CSV UTF-8\""
    );
    assert_eq!(db.snapshot().await, before);
}

#[tokio::test]
async fn email_with_crlf_header_injection_is_rejected() {
    let db = TestDb::new().await;
    let bytes = b"Email,First Name,Supervisor Email\n\
        \"ann.lee@health.example.org\r\nBcc: everyone@health.example.org\",Ann,grace.okafor@health.example.org\n\
        omar.haddad@health.example.org,Omar,\"grace.okafor@health.example.org\nBcc: everyone@health.example.org\"\n\
        wei.chen@health.example.org,Wei,\n";

    let report = db
        .import(
            bytes,
            &ImportOptions {
                skip_invalid: true,
                ..options()
            },
        )
        .await
        .unwrap();

    assert_eq!(report.counts, counts(1, 0, 0, 0, 0, 2));
    assert_eq!(
        lines_and_columns(&report.rejected),
        [(2, "Email"), (4, "Supervisor Email")]
    );
    assert_eq!(db.active_emails().await, ["wei.chen@health.example.org"]);
}

// ---------------------------------------------------------------- command line

#[test]
fn cli_import_prints_the_counts_and_exits_zero() {
    let cli = Cli::new();

    let out = cli
        .roster(&["import", &fixture_path("hr_export_2027_01.csv")])
        .assert()
        .success();

    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(stdout.contains("(UTF-8, sha256 "), "{stdout}");
    assert!(
        stdout.contains("delimiter \",\", source \"hr\", mode sync): imported\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "  added 10  updated 0  unchanged 0  deactivated 0  reactivated 0  rejected 0\n"
        ),
        "{stdout}"
    );
}

#[test]
fn cli_rejected_file_exits_non_zero_listing_every_row() {
    let cli = Cli::new();
    let file = fixture_path("bad_email.csv");

    let out = cli.roster(&["import", &file]).assert().failure();

    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert_eq!(
        stderr,
        format!("error: {file}: 3 row(s) rejected; nothing was imported. Fix the rows listed, or pass --skip-invalid to import the valid rows only\n")
    );
    assert!(stdout.contains("  rejected: line 3, column Email: email has no domain with a dot (e.g. name@hospital.org)\n"), "{stdout}");
    assert!(
        stdout.contains("  rejected: line 4, column Email: "),
        "{stdout}"
    );
    assert!(
        stdout.contains("  rejected: line 5, column Email: "),
        "{stdout}"
    );
    assert!(stdout.contains(": nothing written\n"), "{stdout}");
}

#[test]
fn cli_xlsx_exits_non_zero_saying_it_is_a_workbook() {
    let cli = Cli::new();
    let file = cli.dir.path().join("staff.xlsx");
    std::fs::write(&file, xlsx_bytes()).unwrap();

    let out = cli
        .roster(&["import", file.to_str().unwrap()])
        .assert()
        .failure();

    assert_eq!(
        String::from_utf8(out.get_output().stderr.clone()).unwrap(),
        format!("error: {}: this is a zip archive (an Excel .xlsx workbook?), not a CSV file; open it in the spreadsheet program and save it as \"CSV UTF-8\"\n", file.display())
    );
    assert!(out.get_output().stdout.is_empty());
}

#[test]
fn cli_refused_sync_says_how_to_force_it() {
    let cli = Cli::new();
    cli.roster(&["import", &fixture_path("hr_export_2027_01.csv")])
        .assert()
        .success();
    let truncated = cli.dir.path().join("truncated.csv");
    std::fs::write(&truncated, first_lines("hr_export_2027_01.csv", 8)).unwrap();

    let out = cli
        .roster(&["import", truncated.to_str().unwrap()])
        .assert()
        .failure();

    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("this sync would deactivate 3 of 10 active people (30%)"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("pass --force if the change is real\n"),
        "{stderr}"
    );
    cli.roster(&["import", truncated.to_str().unwrap(), "--force"])
        .assert()
        .success();
}

#[test]
fn cli_dry_run_json_reports_and_list_shows_nothing() {
    let cli = Cli::new();

    let out = cli
        .roster(&[
            "import",
            &fixture_path("hr_export_2027_01.csv"),
            "--dry-run",
            "--format",
            "json",
        ])
        .assert()
        .success();

    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(json["applied"], false);
    assert_eq!(json["counts"]["added"], 10);
    let list = cli
        .roster(&["list", "--inactive", "--format", "csv"])
        .assert()
        .success();
    assert_eq!(
        String::from_utf8(list.get_output().stdout.clone()).unwrap(),
        "email,employee_id,first_name,last_name,department,role,facility,manager_email,active,source\n"
    );
}

#[test]
fn cli_dry_run_prints_where_each_column_went() {
    let cli = Cli::new();

    let out = cli
        .roster(&["import", &fixture_path("workday_export.csv"), "--dry-run"])
        .assert()
        .success();

    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        stdout.contains("  columns: \"Worker ID\" -> employee_id, \"Legal First Name\" -> first_name, \"Legal Last Name\" -> last_name, \"Primary Work Email\" -> email, \"Manager's Email\" -> manager_email, \"Business Title\" -> role, \"Cost Center Hierarchy\" -> department, \"Location\" -> facility, \"Time Zone\" -> time_zone\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  kept as attributes: \"Preferred Name\" (preferred_name), \"Worker Type\" (worker_type)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  note: column \"Preferred Name\" also looks like first_name;"),
        "{stdout}"
    );
}

// ---------------------------------------------------------------- helpers local to this file

fn rejected_lines(err: &ImportError) -> Vec<String> {
    err.report()
        .expect("a row-level failure")
        .rejected
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn lines_and_columns(rejected: &[RowError]) -> Vec<(u64, &str)> {
    rejected
        .iter()
        .map(|e| (e.line, e.column.as_str()))
        .collect()
}
