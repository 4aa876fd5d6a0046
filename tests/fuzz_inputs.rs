//! Fuzzing on stable Rust: proptest feeds the parsers of every file an admin
//! hands over (rosters, completion reports, campaign files) arbitrary bytes
//! and structure-aware hostile inputs. Each target checks that nothing
//! panics, that a refusal says where (line, and column or key where one
//! applies), and that what is accepted is clean.
//!
//! `cargo test` runs a quick round per target. `AMBASSADOR_FUZZ_SECONDS=60`
//! (set by `.ci/run`) shares that many seconds among the targets, each running
//! fresh random rounds until its share is spent.

use ambassador::campaign::Campaign;
use ambassador::completions::{parse_report, ReportHeaderError};
use ambassador::domain::{find_disguise, EmailAddress};
use ambassador::roster::{decode, DecodeError, HeaderRowError, ParseLimits, RosterReader, Row};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Cases in one round: a quick `cargo test`, a useful unit of a longer pass.
const CASES: u32 = 128;

/// How many targets share the time budget.
const TARGETS: u32 = 6;

const LIMITS: ParseLimits = ParseLimits {
    max_field_length: 256,
    max_columns: 200,
};

/// Runs rounds of `check` on `strategy` until this target's share of
/// AMBASSADOR_FUZZ_SECONDS is spent (one round when it is unset).
fn fuzz<S>(target: &str, strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let seconds: f64 = match std::env::var("AMBASSADOR_FUZZ_SECONDS") {
        Ok(raw) => raw
            .parse()
            .unwrap_or_else(|_| panic!("AMBASSADOR_FUZZ_SECONDS={raw:?} is not a number")),
        Err(_) => 0.0,
    };
    let share = Duration::from_secs_f64(seconds / f64::from(TARGETS));
    let start = Instant::now();
    let mut rounds = 0u32;
    loop {
        // A new runner draws a new random seed: each round explores afresh.
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        });
        if let Err(failure) = runner.run(&strategy, &check) {
            panic!("{target}: {failure}");
        }
        rounds += 1;
        if start.elapsed() >= share {
            break;
        }
    }
    eprintln!(
        "fuzz {target}: {} cases in {:.1}s",
        rounds * CASES,
        start.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------- generators

/// Cells an HR export or an attacker might put in a roster or report.
fn hostile_cell() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z]{1,6}(\\.[a-z]{1,4})?@[a-z]{1,5}\\.(org|com)",
        2 => "[A-Za-zéüñØ' -]{0,12}",
        1 => Just(String::new()),
        1 => Just("\"john doe\"@example.org".to_string()),
        1 => Just("\"a\\\"b\"@example.org".to_string()),
        1 => Just("ann\u{202E}gro.x@x.org".to_string()),
        1 => Just("Ann\u{202E}gpj.exe".to_string()),
        1 => "[a-z]{1,3}[\u{200B}-\u{200D}\u{2060}\u{FEFF}\u{202A}-\u{202E}\u{2066}-\u{2069}][a-z]{0,3}",
        1 => Just("=HYPERLINK(\"http://x\",\"y\")".to_string()),
        1 => "[a-z,;\t\"\r\n\u{0}\u{85}\u{2028}]{1,6}",
        1 => "\\PC{0,8}",
        1 => "x{250,262}",
        1 => Just("America/Chicago".to_string()),
        1 => Just("Mars/Olympus_Mons".to_string()),
        1 => "(0[1-9]|1[0-2])/[0-3][0-9]/20[0-3][0-9]",
        1 => Just("2027-01-20T15:45:00Z".to_string()),
        1 => prop_oneof![Just("Completed"), Just("In Progress"), Just("passed")].prop_map(String::from),
    ]
}

/// Header names: known aliases, odd ones, hostile ones, absurdly long ones.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop_oneof![
            Just("Email"), Just("Work Email"), Just("Employee ID"), Just("First Name"),
            Just("Last Name"), Just("Department"), Just("Supervisor Email"), Just("Time Zone"),
            Just("Completion Date"), Just("Status"), Just("Cost Center"), Just(""),
        ].prop_map(String::from),
        1 => "[A-Za-z #\u{202E}\u{200B}\"]{0,10}",
        1 => "H{255,258}",
    ]
}

/// A CSV-ish file: a header, rows of hostile cells, any delimiter and line
/// ending, sometimes a very wide header.
fn csv_text() -> impl Strategy<Value = String> {
    let header = prop_oneof![
        8 => proptest::collection::vec(header_name(), 1..8),
        1 => (195usize..206).prop_map(|n| {
            std::iter::once("Email".to_string())
                .chain((1..n).map(|i| format!("C{i}")))
                .collect()
        }),
    ];
    let rows = proptest::collection::vec(proptest::collection::vec(hostile_cell(), 0..8), 0..8);
    let layout = (
        prop_oneof![Just(","), Just(";"), Just("\t")],
        prop_oneof![Just("\n"), Just("\r\n"), Just("\r"), Just("\n\n")],
        any::<bool>(),
    );
    (header, rows, layout).prop_map(|(header, rows, (delimiter, newline, quote))| {
        let cell = |c: &String| {
            if quote {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        };
        let mut lines = vec![header.iter().map(cell).collect::<Vec<_>>().join(delimiter)];
        lines.extend(
            rows.iter()
                .map(|r| r.iter().map(cell).collect::<Vec<_>>().join(delimiter)),
        );
        lines.join(newline)
    })
}

/// The text as bytes in one of the encodings exports come in, sometimes with
/// one stray byte spliced in.
fn encoded(text: impl Strategy<Value = String>) -> impl Strategy<Value = Vec<u8>> {
    let encoding = 0u8..5;
    let stray = proptest::option::of((any::<prop::sample::Index>(), any::<u8>()));
    (text, encoding, stray).prop_map(|(text, encoding, stray)| {
        let mut bytes = match encoding {
            0 => text.into_bytes(),
            1 => [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(),
            2 => encoding_rs::WINDOWS_1252.encode(&text).0.into_owned(),
            3 => std::iter::once(0xFEFFu16)
                .chain(text.encode_utf16())
                .flat_map(u16::to_le_bytes)
                .collect(),
            _ => std::iter::once(0xFEFFu16)
                .chain(text.encode_utf16())
                .flat_map(u16::to_be_bytes)
                .collect(),
        };
        if let Some((at, byte)) = stray {
            let at = at.index(bytes.len() + 1);
            bytes.insert(at, byte);
        }
        bytes
    })
}

fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..2048)
}

// ---------------------------------------------------------------- checks

/// Lines a text has, however they end: an upper bound for any line number.
fn line_bound(bytes: &[u8]) -> u64 {
    1 + bytes.iter().filter(|b| matches!(b, b'\n' | b'\r')).count() as u64
}

/// A decoding refusal locates itself; the text of an accepted file is clean.
fn check_decode(bytes: &[u8]) -> Result<Option<(String, u8)>, TestCaseError> {
    match decode(bytes) {
        Ok(decoded) => Ok(Some((decoded.text.into_owned(), decoded.delimiter))),
        Err(DecodeError::InvalidUtf8 { line, offset, .. }) => {
            prop_assert!(offset < bytes.len(), "offset {} past the end", offset);
            let newlines = bytes[..offset].iter().filter(|&&b| b == b'\n').count() as u64;
            prop_assert_eq!(line, 1 + newlines, "line of byte offset {}", offset);
            let rest = std::str::from_utf8(&bytes[offset..]);
            prop_assert_eq!(
                rest.err().map(|e| e.valid_up_to()),
                Some(0),
                "offset {} does not start an invalid sequence",
                offset
            );
            Ok(None)
        }
        Err(DecodeError::InvalidUtf16 { line, offset, .. }) => {
            prop_assert!(line >= 1 && offset <= bytes.len());
            Ok(None)
        }
        Err(DecodeError::NotText { offset }) => {
            prop_assert!(offset <= bytes.len() * 3);
            Ok(None)
        }
        Err(DecodeError::KnownBinary(_) | DecodeError::Empty) => Ok(None),
    }
}

/// Every roster refusal has a line (and a column, unless the whole row is
/// at fault); every accepted person is clean.
fn check_roster(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Some((text, delimiter)) = check_decode(bytes)? else {
        return Ok(());
    };
    let bound = line_bound(text.as_bytes());
    let mut reader = match RosterReader::open(&text, delimiter, &BTreeMap::new(), LIMITS.clone()) {
        Ok(reader) => reader,
        Err(HeaderRowError::Missing) => return Ok(()),
        Err(HeaderRowError::Unreadable { line, .. } | HeaderRowError::Columns { line, .. }) => {
            prop_assert!((1..=bound).contains(&line), "header line {}", line);
            return Ok(());
        }
    };
    let headers = reader.headers().to_vec();
    while let Some(row) = reader.next_row() {
        match row {
            Row::Invalid { errors, .. } => {
                prop_assert!(!errors.is_empty());
                for e in errors {
                    prop_assert!((1..=bound).contains(&e.line), "{}", e);
                    let whole_row =
                        e.reason.starts_with("expected ") || e.reason.starts_with("cannot be read");
                    let named = headers.contains(&e.column) && !e.column.is_empty()
                        || e.column.parse::<usize>().is_ok_and(|n| {
                            n.checked_sub(1)
                                .and_then(|i| headers.get(i))
                                .is_some_and(String::is_empty)
                        });
                    prop_assert!(whole_row || named, "{}", e);
                }
            }
            Row::Valid(person) => {
                prop_assert!((1..=bound).contains(&person.line));
                prop_assert_eq!(
                    EmailAddress::parse(person.email.as_str()),
                    Ok(person.email.clone())
                );
                for value in [
                    person.first_name(),
                    person.last_name(),
                    person.department(),
                    person.attributes(),
                ] {
                    prop_assert!(find_disguise(value).is_none(), "accepted {:?}", value);
                    prop_assert!(
                        !value.chars().any(|c| c.is_control() && c != '\t'),
                        "accepted {:?}",
                        value
                    );
                }
                if let Some(manager) = person.manager_email() {
                    prop_assert!(
                        EmailAddress::parse(manager).is_ok(),
                        "accepted manager {:?}",
                        manager
                    );
                }
            }
        }
    }
    Ok(())
}

/// Completion reports: the same guarantees as rosters.
fn check_completions(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Some((text, delimiter)) = check_decode(bytes)? else {
        return Ok(());
    };
    let bound = line_bound(text.as_bytes());
    let now = chrono::DateTime::parse_from_rfc3339("2027-03-01T12:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let tz = chrono_tz::America::Chicago;
    let report = match parse_report(&text, delimiter, &BTreeMap::new(), tz, now) {
        Ok(report) => report,
        Err(ReportHeaderError::Empty) => return Ok(()),
        Err(
            ReportHeaderError::Unreadable { line, .. } | ReportHeaderError::Columns { line, .. },
        ) => {
            prop_assert!((1..=bound).contains(&line), "header line {}", line);
            return Ok(());
        }
    };
    for e in &report.errors {
        prop_assert!((1..=bound).contains(&e.line), "{}", e);
        let whole_row = e.reason.starts_with("expected ") || e.reason.starts_with("cannot be read");
        prop_assert!(whole_row || !e.column.is_empty(), "{}", e);
    }
    for row in &report.rows {
        prop_assert!((1..=bound).contains(&row.line));
        if let Some(email) = &row.email {
            prop_assert!(EmailAddress::parse(email).is_ok(), "accepted {:?}", email);
        }
        for name in [&row.first_name, &row.last_name] {
            prop_assert!(find_disguise(name).is_none(), "accepted {:?}", name);
        }
    }
    Ok(())
}

/// Keys a campaign error may name instead of a line.
const CAMPAIGN_KEYS: [&str; 13] = [
    "slug",
    "name",
    "course_url",
    "video_url",
    "contact",
    "starts_at",
    "due",
    "audience",
    "send_window",
    "spread",
    "steps",
    "step ",
    "max_per_hour",
];

/// A campaign file either parses into one whose every date can be computed,
/// or is refused naming a line or a key.
fn check_campaign(text: &str) -> Result<(), TestCaseError> {
    match Campaign::from_toml(text, "fuzz.toml") {
        Ok(campaign) => {
            let enrolled = chrono::DateTime::parse_from_rfc3339("2027-01-11T14:00:00Z")
                .unwrap()
                .with_timezone(&chrono::Utc);
            let due = campaign.due.resolve(enrolled, chrono_tz::America::Chicago);
            for step in &campaign.steps {
                if let Some(at) = step.at {
                    at.resolve(enrolled, due);
                }
            }
        }
        Err(e) => {
            let message = e.to_string();
            let located =
                message.contains("line ") || CAMPAIGN_KEYS.iter().any(|key| message.contains(key));
            prop_assert!(located, "no line or key in: {}", message);
        }
    }
    Ok(())
}

/// TOML-ish campaign files: the shipped campaign with lines dropped,
/// repeated, or given hostile values.
fn campaign_text() -> impl Strategy<Value = String> {
    let shipped: Vec<String> = include_str!("../config/campaigns/soar.toml")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(String::from)
        .collect();
    let value = prop_oneof![
        Just("\"\"".to_string()),
        Just("\"99999999999d\"".to_string()),
        Just("\"due-99999999y\"".to_string()),
        Just("\"due+5000000y\"".to_string()),
        Just("\"9999-12-31\"".to_string()),
        Just("\"+262143-01-01\"".to_string()),
        Just("\"javascript:alert(1)\"".to_string()),
        Just("\"\\\"john doe\\\"@example.org\"".to_string()),
        Just("\"a\u{202E}b@x.org\"".to_string()),
        Just("\"manager\"".to_string()),
        Just("\"completion\"".to_string()),
        Just("-1".to_string()),
        Just("4294967296".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        "\"\\PC{0,12}\"",
        "[0-9]{1,6}(s|m|h|d|w|y)",
    ];
    let edits = proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4, value), 0..6);
    (Just(shipped), edits).prop_map(|(mut lines, edits)| {
        for (index, action, value) in edits {
            if lines.is_empty() {
                break;
            }
            let i = index.index(lines.len());
            match action {
                0 => {
                    lines.remove(i);
                }
                1 => {
                    let copy = lines[i].clone();
                    lines.insert(i, copy);
                }
                _ => {
                    if let Some((key, _)) = lines[i].split_once(" = ") {
                        lines[i] = format!("{key} = {value}");
                    }
                }
            }
        }
        lines.join("\n")
    })
}

// ---------------------------------------------------------------- targets

#[test]
fn roster_parsing_of_arbitrary_bytes() {
    fuzz("roster bytes", arbitrary_bytes(), |bytes| {
        check_roster(&bytes)
    });
}

#[test]
fn roster_parsing_of_hostile_csv() {
    fuzz("roster csv", encoded(csv_text()), |bytes| {
        check_roster(&bytes)
    });
}

#[test]
fn completion_parsing_of_arbitrary_bytes() {
    fuzz("completions bytes", arbitrary_bytes(), |bytes| {
        check_completions(&bytes)
    });
}

#[test]
fn completion_parsing_of_hostile_csv() {
    fuzz("completions csv", encoded(csv_text()), |bytes| {
        check_completions(&bytes)
    });
}

#[test]
fn campaign_files_of_arbitrary_text() {
    fuzz("campaign text", "\\PC{0,400}", |text| check_campaign(&text));
}

#[test]
fn campaign_files_with_hostile_values() {
    fuzz("campaign toml", campaign_text(), |text| {
        check_campaign(&text)
    });
}
