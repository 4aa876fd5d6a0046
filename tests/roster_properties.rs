//! Property tests: whatever bytes an admin uploads, roster decoding and the
//! full import never panic, and either refuse with nothing written or report
//! counts that match what the database now holds.

mod common;

use ambassador::roster::{decode, ImportError, ImportMode};
use common::{options, ImportOptions, TestDb};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Few enough cases that the suite stays quick, enough to shake out panics.
const CASES: u32 = 256;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn decode_never_panics_and_picks_a_known_delimiter() {
    runner()
        .run(&proptest::collection::vec(any::<u8>(), 0..2048), |bytes| {
            if let Ok(decoded) = decode(&bytes) {
                prop_assert!([b',', b';', b'\t'].contains(&decoded.delimiter));
                prop_assert!(!decoded.text.trim().is_empty());
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn import_of_arbitrary_bytes_is_refused_cleanly_or_consistent() {
    check_imports(proptest::collection::vec(any::<u8>(), 0..1024).boxed());
}

#[test]
fn import_of_almost_csv_is_refused_cleanly_or_consistent() {
    check_imports(almost_csv().prop_map(String::into_bytes).boxed());
}

/// A plausible header followed by rows of plausible and hostile cells,
/// joined by a delimiter that may or may not match the header's.
fn almost_csv() -> impl Strategy<Value = String> {
    let header = prop_oneof![
        Just("Email,Employee ID,First Name,Department,Time Zone".to_string()),
        Just("\u{feff}Work Email;Job Title;Location;Supervisor Email".to_string()),
        Just("Employee ID\tE-mail\tCost Center".to_string()),
        Just("Name,Dept".to_string()),
        "[A-Za-z ,;\t\"]{0,30}",
    ];
    let cell = prop_oneof![
        4 => "[a-z]{1,4}@[a-z]{1,3}\\.org",
        2 => "[A-Z]?[0-9]{1,3}",
        2 => "[A-Za-zéüñ ]{0,8}",
        1 => Just(String::new()),
        1 => Just("America/Chicago".to_string()),
        1 => "\"[a-z,;\r\n\0\"]{0,6}\"?",
        1 => "[\u{0}-\u{7f}]{0,5}",
        1 => "x{250,260}",
    ];
    let row = proptest::collection::vec(cell, 0..6);
    let separators = (
        prop_oneof![Just(","), Just(";"), Just("\t")],
        prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
    );
    (header, proptest::collection::vec(row, 0..8), separators).prop_map(
        |(header, rows, (delimiter, newline))| {
            let mut text = header;
            for row in rows {
                text.push_str(newline);
                text.push_str(&row.join(delimiter));
            }
            text
        },
    )
}

/// Imports each generated file under a source of its own, in a mode chosen by
/// proptest, and checks the outcome against the database.
fn check_imports(files: BoxedStrategy<Vec<u8>>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = runtime.block_on(TestDb::new());
    let case = std::cell::Cell::new(0u32);
    let flags = (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>());
    runner()
        .run(
            &(files, flags),
            |(bytes, (add, dry_run, skip_invalid, force))| {
                case.set(case.get() + 1);
                let options = ImportOptions {
                    source: format!("case-{}", case.get()),
                    mode: if add {
                        ImportMode::Add
                    } else {
                        ImportMode::Sync
                    },
                    dry_run,
                    skip_invalid,
                    force,
                    ..options()
                };
                runtime.block_on(check_one(&db, &bytes, &options))
            },
        )
        .unwrap();
}

async fn check_one(
    db: &TestDb,
    bytes: &[u8],
    options: &ImportOptions,
) -> Result<(), TestCaseError> {
    let before = db.snapshot().await;
    let result = db.import(bytes, options).await;
    let after = db.snapshot().await;
    let report = match result {
        Err(ImportError::Database(e)) => {
            return Err(TestCaseError::fail(format!("database error: {e:#}")))
        }
        Err(e) => {
            prop_assert_eq!(after, before, "a refused import wrote something: {}", e);
            if let Some(report) = e.report() {
                prop_assert!(!report.applied);
            }
            return Ok(());
        }
        Ok(report) => report,
    };
    let c = &report.counts;
    // A fresh source: nothing to update, keep or deactivate.
    prop_assert_eq!(
        (c.updated, c.unchanged, c.deactivated, c.reactivated),
        (0, 0, 0, 0)
    );
    prop_assert_eq!(c.rejected > 0, !report.rejected.is_empty());
    prop_assert!(c.rejected <= report.rejected.len() as u64);
    prop_assert!(options.skip_invalid || c.rejected == 0);
    prop_assert_eq!(report.changes.len() as u64, c.added);
    if options.dry_run {
        prop_assert!(!report.applied && report.import_id.is_none());
        prop_assert_eq!(after, before);
    } else {
        prop_assert!(report.applied && report.import_id.is_some());
        prop_assert_eq!(after.imports, before.imports + 1);
        let stored = db
            .all_staff()
            .await
            .into_iter()
            .filter(|p| p.source == options.source)
            .count();
        prop_assert_eq!(stored as u64, c.added);
    }
    Ok(())
}
