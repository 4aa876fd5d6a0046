//! Reading a completion report exported from the learning network (TRAIN
//! group reports, or any LMS): which columns say who and when, and the date
//! formats such exports use. US month-first order is assumed for slashed
//! dates, as TRAIN writes them.

use crate::roster::{normalise_header, RowError};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use std::collections::BTreeMap;

/// A completion row that names a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionRow {
    pub line: u64,
    pub employee_id: Option<String>,
    pub email: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub completed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Col {
    Email,
    EmployeeId,
    FirstName,
    LastName,
    CompletedAt,
    Status,
}

fn column_of(header: &str, mappings: &BTreeMap<String, String>) -> Option<Col> {
    let key = normalise_header(header);
    let mapped = mappings
        .iter()
        .find(|(h, _)| normalise_header(h) == key)
        .map(|(_, f)| normalise_header(f));
    let name = mapped.as_deref().unwrap_or(&key);
    Some(match name {
        "email" | "emailaddress" | "useremail" | "learneremail" | "workemail" | "mail" => {
            Col::Email
        }
        "employeeid" | "employeenumber" | "empid" | "staffid" => Col::EmployeeId,
        "firstname" | "givenname" | "learnerfirstname" => Col::FirstName,
        "lastname" | "surname" | "familyname" | "learnerlastname" => Col::LastName,
        "completedat" | "completiondate" | "datecompleted" | "completedon" | "completeddate"
        | "completiondatetime" | "datetimecompleted" | "enddate" | "completed" => Col::CompletedAt,
        "status" | "registrationstatus" | "completionstatus" | "coursestatus" => Col::Status,
        _ => return None,
    })
}

/// The parsed rows, rows that are not completions, and malformed rows.
#[derive(Debug, Default)]
pub struct ParsedReport {
    pub rows: Vec<CompletionRow>,
    pub not_completed: u64,
    pub errors: Vec<RowError>,
}

/// Parses decoded text; `now` bounds dates (a completion cannot be in the future).
pub fn parse(
    text: &str,
    delimiter: u8,
    mappings: &BTreeMap<String, String>,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Result<ParsedReport, String> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(format!("the header row cannot be read ({e})")),
        None => {
            return Err("the file is empty; export the report again with its header row".into())
        }
    };
    let columns: Vec<Option<Col>> = header.iter().map(|h| column_of(h, mappings)).collect();
    let has = |c: Col| columns.contains(&Some(c));
    if !(has(Col::Email) || has(Col::EmployeeId) || (has(Col::FirstName) && has(Col::LastName))) {
        return Err(format!(
            "no column names the learner: expected Email, Employee ID, or First Name and Last Name among {}; map yours in config with [completions] columns",
            header.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(", ")
        ));
    }
    if !has(Col::CompletedAt) {
        return Err("no completion date column (e.g. \"Completion Date\", \"Date Completed\"); map yours in config with [completions] columns".into());
    }
    let mut report = ParsedReport::default();
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                report.errors.push(RowError {
                    line: e.position().map_or(0, |p| p.line()),
                    column: String::new(),
                    reason: format!("cannot be read as CSV ({e})"),
                });
                continue;
            }
        };
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let line = record.position().map_or(0, |p| p.line());
        let error = |column: &str, reason: String| RowError {
            line,
            column: column.to_string(),
            reason,
        };
        if record.len() != columns.len() {
            report.errors.push(error(
                "",
                format!(
                    "expected {} fields like the header, found {}",
                    columns.len(),
                    record.len()
                ),
            ));
            continue;
        }
        if let Some((i, _)) = record
            .iter()
            .enumerate()
            .find(|(_, f)| f.chars().any(|c| c.is_control() && c != '\t'))
        {
            report.errors.push(error(
                &header[i],
                "contains a control character (line break or NUL); fix the cell in the export"
                    .into(),
            ));
            continue;
        }
        let mut values: BTreeMap<Col, &str> = BTreeMap::new();
        for (value, column) in record.iter().zip(&columns) {
            if let Some(c) = column {
                values.entry(*c).or_insert(value.trim());
            }
        }
        if let Some(status) = values.get(&Col::Status) {
            let s = status.to_ascii_lowercase();
            if !["completed", "complete", "passed", "finished", "attended"].contains(&s.as_str()) {
                report.not_completed += 1;
                continue;
            }
        }
        let raw_date = values.get(&Col::CompletedAt).copied().unwrap_or("");
        let completed_at = match parse_date(raw_date, tz) {
            Some(d) if d <= now + chrono::Duration::days(1) => d,
            Some(_) => {
                report.errors.push(error(
                    "completion date",
                    format!("{raw_date:?} is in the future"),
                ));
                continue;
            }
            None if raw_date.is_empty() => {
                report.not_completed += 1;
                continue;
            }
            None => {
                report.errors.push(error(
                    "completion date",
                    format!("{raw_date:?} is not a date; use e.g. 2027-01-20 or 01/20/2027"),
                ));
                continue;
            }
        };
        let text = |c: Col| {
            values
                .get(&c)
                .copied()
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        report.rows.push(CompletionRow {
            line,
            employee_id: text(Col::EmployeeId),
            email: text(Col::Email).map(|e| e.to_lowercase()),
            first_name: text(Col::FirstName).unwrap_or_default(),
            last_name: text(Col::LastName).unwrap_or_default(),
            completed_at,
        });
    }
    Ok(report)
}

/// Dates as learning platforms export them; a bare date is taken at noon
/// in the organisation's time zone, so it never slips to the day before.
pub fn parse_date(raw: &str, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    const DATETIMES: [&str; 6] = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%m/%d/%Y %I:%M:%S %p",
        "%m/%d/%Y %I:%M %p",
        "%m/%d/%Y %H:%M:%S",
        "%m/%d/%Y %H:%M",
    ];
    for f in DATETIMES {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, f) {
            return tz
                .from_local_datetime(&dt)
                .earliest()
                .map(|d| d.with_timezone(&Utc));
        }
    }
    const DATES: [&str; 6] = [
        "%Y-%m-%d",
        "%m/%d/%Y",
        "%m/%d/%y",
        "%d %b %Y",
        "%b %d, %Y",
        "%B %d, %Y",
    ];
    for f in DATES {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            let noon = d.and_hms_opt(12, 0, 0)?;
            return tz
                .from_local_datetime(&noon)
                .earliest()
                .map(|d| d.with_timezone(&Utc));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_export_dates_parse() {
        let tz = chrono_tz::America::New_York;
        let noon = Utc.with_ymd_and_hms(2027, 1, 20, 17, 0, 0).unwrap();
        for raw in [
            "2027-01-20",
            "01/20/2027",
            "1/20/2027",
            "20 Jan 2027",
            "Jan 20, 2027",
            "January 20, 2027",
        ] {
            assert_eq!(parse_date(raw, tz), Some(noon), "{raw}");
        }
        assert_eq!(
            parse_date("1/20/2027 3:45 PM", tz),
            Some(Utc.with_ymd_and_hms(2027, 1, 20, 20, 45, 0).unwrap())
        );
        assert_eq!(
            parse_date("2027-01-20T15:45:00Z", tz),
            Some(Utc.with_ymd_and_hms(2027, 1, 20, 15, 45, 0).unwrap())
        );
        assert_eq!(parse_date("next week", tz), None);
    }
}
