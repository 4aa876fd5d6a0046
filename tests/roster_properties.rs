//! Property tests: whatever bytes an admin uploads, roster decoding and the
//! full import never panic, and either refuse with nothing written or report
//! counts that match what the database now holds. Sequences of exports of
//! one source, with people leaving, coming back and moving, report exactly
//! the adds, updates, deactivations and reactivations a model predicts.

mod common;

use ambassador::roster::{decode, Counts, ImportError, ImportMode};
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
                    source: format!("case-{}", case.get()).parse().unwrap(),
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
            .filter(|p| p.source == options.source.as_str())
            .count();
        prop_assert_eq!(stored as u64, c.added);
    }
    Ok(())
}

// ------------------------------------------------- re-imports of one source

/// People a sequence of exports draws from.
const PEOPLE: usize = 6;

/// One export of the sequence: for each person, absent or present with one
/// of three departments; then sync or add, --force, --dry-run.
#[derive(Debug, Clone)]
struct Export {
    rows: Vec<Option<u8>>,
    add: bool,
    force: bool,
    dry_run: bool,
}

fn exports() -> impl Strategy<Value = Vec<Export>> {
    let rows = proptest::collection::vec(proptest::option::weighted(0.75, 0u8..3), PEOPLE);
    let export = (
        rows,
        any::<bool>(),
        any::<bool>(),
        proptest::bool::weighted(0.2),
    )
        .prop_map(|(rows, add, force, dry_run)| Export {
            rows,
            add,
            force,
            dry_run,
        });
    proptest::collection::vec(export, 2..7)
}

/// What the roster of the source holds for one person, by the model.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Held {
    Never,
    Active(u8),
    Inactive(u8),
}

/// The counts an export must report against `held`, and whether the
/// import must be refused (an empty export, or a sync deactivating more
/// than roster.max_deactivate_share of the active people, without --force;
/// a file going back to an earlier import is the caller's check).
fn expected(held: &[Held], export: &Export, max_share: f64) -> (Counts, bool) {
    let mut c = Counts::default();
    for (now, before) in export.rows.iter().zip(held) {
        match (now, before) {
            (Some(_), Held::Never) => c.added += 1,
            (Some(v), Held::Active(w)) if v == w => c.unchanged += 1,
            (Some(_), Held::Active(_)) => c.updated += 1,
            (Some(_), Held::Inactive(_)) => c.reactivated += 1,
            (None, Held::Active(_)) if !export.add => c.deactivated += 1,
            (None, _) => {}
        }
    }
    let rows = export.rows.iter().flatten().count();
    let active = held.iter().filter(|h| matches!(h, Held::Active(_))).count();
    let share = c.deactivated as f64 / active.max(1) as f64;
    let refused = !export.force && (rows == 0 || (active > 0 && share > max_share));
    (c, refused)
}

fn export_csv(case: u32, export: &Export) -> String {
    let mut text = String::from("Email,First Name,Department\n");
    for (i, row) in export.rows.iter().enumerate() {
        if let Some(v) = row {
            text.push_str(&format!(
                "p{i}.c{case}@hospital.example.org,P{i},Dept {v}\n"
            ));
        }
    }
    text
}

/// The model after an applied export.
fn apply(held: &mut [Held], export: &Export) {
    for (h, row) in held.iter_mut().zip(&export.rows) {
        *h = match (row, *h) {
            (Some(v), _) => Held::Active(*v),
            (None, Held::Active(w)) if !export.add => Held::Inactive(w),
            (None, other) => other,
        };
    }
}

#[test]
fn reimports_of_one_source_count_updates_deactivations_and_reactivations() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = runtime.block_on(TestDb::new());
    let case = std::cell::Cell::new(0u32);
    // Each case is a sequence of up to six imports: fewer cases, as many imports.
    let mut runner = TestRunner::new(Config {
        cases: CASES / 4,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&exports(), |sequence| {
            case.set(case.get() + 1);
            runtime.block_on(check_sequence(&db, case.get(), &sequence))
        })
        .unwrap();
}

async fn check_sequence(db: &TestDb, case: u32, sequence: &[Export]) -> Result<(), TestCaseError> {
    let mut held = vec![Held::Never; PEOPLE];
    // The files applied so far, in order: a file applied before a later
    // one is refused without --force (it would undo that later import).
    let mut applied: Vec<String> = Vec::new();
    for (step, export) in sequence.iter().enumerate() {
        let csv = export_csv(case, export);
        let going_back = !export.force
            && applied
                .iter()
                .rposition(|earlier| *earlier == csv)
                .is_some_and(|at| at + 1 < applied.len());
        let options = ImportOptions {
            source: format!("reimport-{case}").parse().unwrap(),
            mode: if export.add {
                ImportMode::Add
            } else {
                ImportMode::Sync
            },
            dry_run: export.dry_run,
            force: export.force,
            ..options()
        };
        let (counts, refused) = expected(&held, export, db.settings.max_deactivate_share);
        let refused = refused || going_back;
        let before = db.snapshot().await;
        let result = db.import(csv.as_bytes(), &options).await;
        let report = match result {
            Err(ImportError::Refused(report)) => {
                prop_assert!(
                    refused,
                    "step {}: refused unexpectedly: {:?}",
                    step,
                    report.refused
                );
                *report
            }
            Err(e) => return Err(TestCaseError::fail(format!("step {step}: {e:#}"))),
            Ok(report) => {
                prop_assert!(!refused, "step {}: applied, but should be refused", step);
                report
            }
        };
        prop_assert_eq!(&report.counts, &counts, "step {}", step);
        if refused || export.dry_run {
            prop_assert_eq!(
                &db.snapshot().await,
                &before,
                "step {}: a refused import or a dry run wrote something",
                step
            );
            continue;
        }
        apply(&mut held, export);
        applied.push(csv);
        prop_assert_eq!(stored(db, case).await, held.clone(), "step {}", step);
    }
    Ok(())
}

/// What the database holds for the people of `case`, as the model says it.
async fn stored(db: &TestDb, case: u32) -> Vec<Held> {
    let people = db.all_staff().await;
    (0..PEOPLE)
        .map(|i| {
            let email = format!("p{i}.c{case}@hospital.example.org");
            match people.iter().find(|p| p.email == email) {
                None => Held::Never,
                Some(p) => {
                    let v = p.department.trim_start_matches("Dept ").parse().unwrap();
                    if p.active == 1 {
                        Held::Active(v)
                    } else {
                        Held::Inactive(v)
                    }
                }
            }
        })
        .collect()
}
