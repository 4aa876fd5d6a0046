//! Reading a completion report exported from the learning network (TRAIN
//! group reports, or any LMS): which columns say who and when, and the date
//! formats such exports use. US month-first order is assumed for slashed
//! dates, as TRAIN writes them.

use crate::domain::{disguise_problem, EmailAddress};
use crate::roster::{check_header_shape, column_label, line_of, normalise_header, RowError};
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
    match mapped.as_deref() {
        Some("" | "ignore") => None,
        Some(name) => named(name),
        None => named(&key),
    }
}

/// The column a normalised header or mapping names, by its common spellings
/// (TRAIN and other learning platforms' exports).
fn named(name: &str) -> Option<Col> {
    Some(match name {
        "email"
        | "emailaddress"
        | "useremail"
        | "learneremail"
        | "workemail"
        | "mail"
        | "useremailaddress"
        | "learneremailaddress" => Col::Email,
        "employeeid" | "employeenumber" | "empid" | "staffid" | "workerid" => Col::EmployeeId,
        "firstname" | "givenname" | "learnerfirstname" | "userfirstname" => Col::FirstName,
        "lastname" | "surname" | "familyname" | "learnerlastname" | "userlastname" => Col::LastName,
        "completedat"
        | "completiondate"
        | "datecompleted"
        | "completedon"
        | "completeddate"
        | "completiondatetime"
        | "datetimecompleted"
        | "enddate"
        | "completed"
        | "coursecompletiondate" => Col::CompletedAt,
        "status" | "registrationstatus" | "completionstatus" | "coursestatus"
        | "progressstatus" | "progress" | "enrollmentstatus" | "learnerstatus" => Col::Status,
        _ => return None,
    })
}

/// What a `[completions] columns` value may be: one of the columns a report
/// is read by, or `ignore`. The error says what is allowed.
pub fn check_mapping(target: &str) -> Result<(), String> {
    let key = normalise_header(target);
    if key.is_empty() || key == "ignore" || named(&key).is_some() {
        return Ok(());
    }
    Err(format!(
        "{target:?} is not a completion report column; use one of: email, employee_id, first_name, last_name, completed_at, status, or \"ignore\""
    ))
}

/// Whether a header row reads as a completion report's rather than a
/// roster's: it has a completion date column that says so ("Completion
/// Date", "Date Completed", or one mapped in `[completions] columns`). An
/// "End Date" alone is not enough: rosters carry contract end dates.
pub fn is_report_header(header: &[&str], mappings: &BTreeMap<String, String>) -> bool {
    header.iter().any(|h| {
        let key = normalise_header(h);
        let mapped = mappings.iter().any(|(m, to)| {
            normalise_header(m) == key && named(&normalise_header(to)) == Some(Col::CompletedAt)
        });
        mapped || (key.contains("complet") && column_of(h, mappings) == Some(Col::CompletedAt))
    })
}

/// The parsed rows, rows that are not completions, and malformed rows.
#[derive(Debug, Default)]
pub struct ParsedReport {
    pub rows: Vec<CompletionRow>,
    pub not_completed: u64,
    pub errors: Vec<RowError>,
}

/// The most columns a completion report may have: learning networks export
/// a few dozen, and every header is echoed in some messages.
const MAX_COLUMNS: usize = 500;

/// Why a report's header row cannot be used; the whole file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportHeaderError {
    #[error("the file is empty; export the report again with its header row")]
    Empty,
    #[error("line {line} (the header row) cannot be read as CSV ({reason})")]
    Unreadable { line: u64, reason: String },
    #[error("line {line} (the header row): {reason}")]
    Columns { line: u64, reason: String },
}

/// Parses decoded text; `now` bounds dates (a completion cannot be in the future).
pub fn parse(
    text: &str,
    delimiter: u8,
    mappings: &BTreeMap<String, String>,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Result<ParsedReport, ReportHeaderError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = read_header(&mut reader)?;
    let columns =
        header_columns(&header, mappings).map_err(|reason| ReportHeaderError::Columns {
            line: line_of(text, &header),
            reason,
        })?;
    let names: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    let rows = ReportRows {
        text,
        headers: &names,
        columns: &columns,
        tz,
        now,
    };
    let mut report = ParsedReport::default();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => rows.read(&record, &mut report),
            Ok(false) => return Ok(report),
            Err(e) => report.errors.push(RowError {
                line: e.position().map_or(0, |p| p.line()),
                column: String::new(),
                reason: format!("cannot be read as CSV ({e})"),
            }),
        }
    }
}

/// The first row that is not blank.
fn read_header(reader: &mut csv::Reader<&[u8]>) -> Result<csv::StringRecord, ReportHeaderError> {
    let mut header = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut header) {
            Ok(true) if header.iter().all(|f| f.trim().is_empty()) => continue,
            Ok(true) => return Ok(header),
            Ok(false) => return Err(ReportHeaderError::Empty),
            Err(e) => {
                return Err(ReportHeaderError::Unreadable {
                    line: e.position().map_or(1, |p| p.line()),
                    reason: e.to_string(),
                })
            }
        }
    }
}

/// What each header means; an error when the learner or the date is missing.
fn header_columns(
    header: &csv::StringRecord,
    mappings: &BTreeMap<String, String>,
) -> Result<Vec<Option<Col>>, String> {
    let names: Vec<&str> = header.iter().collect();
    check_header_shape(&names, (MAX_COLUMNS, "a completion report may have"))
        .map_err(|e| e.to_string())?;
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
    Ok(columns)
}

/// Reads the data rows of one report.
struct ReportRows<'a> {
    text: &'a str,
    headers: &'a [String],
    columns: &'a [Option<Col>],
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
}

impl ReportRows<'_> {
    /// Adds one data row to the report: a completion, a row that is not
    /// one, or an error with its line and column.
    fn read(&self, record: &csv::StringRecord, report: &mut ParsedReport) {
        if record.iter().all(|f| f.trim().is_empty()) {
            return;
        }
        let line = line_of(self.text, record);
        let error = |column: &str, reason: String| RowError {
            line,
            column: column.to_string(),
            reason,
        };
        if record.len() != self.columns.len() {
            let reason = format!(
                "expected {} fields like the header, found {}",
                self.columns.len(),
                record.len()
            );
            report.errors.push(error("", reason));
            return;
        }
        let mut values: BTreeMap<Col, (&str, &str)> = BTreeMap::new();
        for (index, (raw, column)) in record.iter().zip(self.columns).enumerate() {
            if let Some(problem) = cell_problem(raw) {
                report
                    .errors
                    .push(error(&column_label(self.headers, index), problem));
                return;
            }
            let header = self.headers[index].as_str();
            if let Some(c) = column {
                values.entry(*c).or_insert((raw.trim(), header));
            }
        }
        match self.completion(line, &values) {
            Ok(Some(row)) => report.rows.push(row),
            Ok(None) => report.not_completed += 1,
            Err((column, reason)) => report.errors.push(error(column, reason)),
        }
    }

    /// The completion a row records; `None` when its status or date says
    /// it is not one; the column and reason when a value is wrong.
    fn completion<'v>(
        &self,
        line: u64,
        values: &BTreeMap<Col, (&'v str, &'v str)>,
    ) -> Result<Option<CompletionRow>, (&'v str, String)> {
        if !status_is_completed(values) {
            return Ok(None);
        }
        let Some(completed_at) = self.completed_at(values)? else {
            return Ok(None);
        };
        let text = |c: Col| {
            values
                .get(&c)
                .map(|(v, _)| *v)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Ok(Some(CompletionRow {
            line,
            employee_id: text(Col::EmployeeId),
            email: email_of(values)?,
            first_name: text(Col::FirstName).unwrap_or_default(),
            last_name: text(Col::LastName).unwrap_or_default(),
            completed_at,
        }))
    }

    /// The completion time; `None` when the cell is empty.
    fn completed_at<'v>(
        &self,
        values: &BTreeMap<Col, (&'v str, &'v str)>,
    ) -> Result<Option<DateTime<Utc>>, (&'v str, String)> {
        let (raw_date, date_header) = values.get(&Col::CompletedAt).copied().unwrap_or_default();
        if raw_date.trim().is_empty() {
            return Ok(None);
        }
        completion_time(raw_date, self.tz, self.now)
            .map(Some)
            .map_err(|reason| (date_header, reason))
    }
}

/// When a completion happened, from a date or time as exports and admins
/// write it. A time after now is refused (a bare date after today); today's
/// bare date counts from now at the latest, so a report never leaves it out
/// as not yet happened.
pub fn completion_time(
    raw: &str,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, String> {
    let future = || {
        let local_now = now.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z");
        Err(format!(
            "{:?} is in the future (it is now {local_now}); a completion cannot be: check the date and the export's time zone",
            shown(raw)
        ))
    };
    let today = now.with_timezone(&tz).date_naive();
    match parse_date_kind(raw, tz) {
        Some((d, true)) if d.with_timezone(&tz).date_naive() > today => future(),
        Some((d, true)) => Ok(d.min(now)),
        Some((d, false)) if d > now => future(),
        Some((d, false)) => Ok(d),
        None => Err(format!(
            "{:?} is not a date; use e.g. 2027-01-20 or 01/20/2027",
            shown(raw)
        )),
    }
}

/// Whether the row's status (if the report has one) says completed.
fn status_is_completed(values: &BTreeMap<Col, (&str, &str)>) -> bool {
    let Some((status, _)) = values.get(&Col::Status) else {
        return true;
    };
    let s = status.to_ascii_lowercase();
    ["completed", "complete", "passed", "finished", "attended"].contains(&s.as_str())
}

/// The row's address, checked; `None` when it has none.
fn email_of<'v>(
    values: &BTreeMap<Col, (&'v str, &'v str)>,
) -> Result<Option<String>, (&'v str, String)> {
    match values.get(&Col::Email).filter(|(v, _)| !v.is_empty()) {
        Some((raw, header)) => match EmailAddress::parse(raw) {
            Ok(email) => Ok(Some(email.to_string())),
            Err(e) => Err((header, format!("email {e}"))),
        },
        None => Ok(None),
    }
}

/// Why a cell cannot be taken as it is: control or disguising characters.
fn cell_problem(raw: &str) -> Option<String> {
    if raw.chars().any(|c| c.is_control() && c != '\t') {
        return Some(
            "contains a control character (line break or NUL); fix the cell in the export".into(),
        );
    }
    disguise_problem(raw)
}

/// A value as echoed in a message: at most 64 characters of it.
fn shown(raw: &str) -> String {
    match raw.char_indices().nth(64) {
        Some((end, _)) => format!("{}...", &raw[..end]),
        None => raw.to_string(),
    }
}

/// Dates as learning platforms export them; a bare date is taken at noon
/// in the organisation's time zone, so it never slips to the day before.
pub fn parse_date(raw: &str, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    parse_date_kind(raw, tz).map(|(d, _)| d)
}

/// [`parse_date`], and whether the value was a bare date (no time of day).
fn parse_date_kind(raw: &str, tz: chrono_tz::Tz) -> Option<(DateTime<Utc>, bool)> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some((d.with_timezone(&Utc), false));
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
            let local = tz.from_local_datetime(&dt).earliest()?;
            return Some((local.with_timezone(&Utc), false));
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
            let noon = tz
                .from_local_datetime(&d.and_hms_opt(12, 0, 0)?)
                .earliest()?;
            return Some((noon.with_timezone(&Utc), true));
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

    #[test]
    fn a_report_wider_than_the_limit_is_refused_naming_the_first_extra_column() {
        let header: Vec<String> = std::iter::once("Email".to_string())
            .chain((2..=MAX_COLUMNS + 1).map(|i| format!("C{i}")))
            .collect();
        let text = format!("\n{}\n", header.join(","));
        let now = Utc.with_ymd_and_hms(2027, 1, 20, 17, 0, 0).unwrap();
        let err = parse(&text, b',', &BTreeMap::new(), chrono_tz::UTC, now).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2 (the header row): the file has 501 columns, more than a completion report may have (500); column 501 (\"C501\") and later are too many. Remove the columns ambassador does not need"
        );
    }
}
