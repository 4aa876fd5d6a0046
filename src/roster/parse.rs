//! From decoded CSV text to validated person records. Every problem in the
//! file is collected (line, column, reason), not only the first, so an admin
//! fixes the export once.

use super::fields::{check_header_shape, map_headers, Column, Field, HeaderError};
use super::zones;
use crate::domain::{disguise_problem, EmailAddress, EmailError};
use crate::store::roster::StoredPerson;
use std::borrow::Cow;
use std::collections::hash_map::{Entry, RandomState};
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// One valid roster row. The text fields live in one allocation: a large
/// import creates and frees a record per row, on two threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRecord {
    pub line: u64,
    pub email: EmailAddress,
    /// The employee id, then [`StoredPerson::FIELDS`], joined by
    /// [`StoredPerson::SEPARATOR`] (a missing value is empty).
    joined: Box<str>,
    /// Where each part of `joined` starts.
    starts: [u32; PARTS],
}

/// The employee id and the eight fields of [`StoredPerson::FIELDS`].
const PARTS: usize = 1 + StoredPerson::FIELDS.len();

impl PersonRecord {
    fn part(&self, index: usize) -> &str {
        let start = self.starts[index] as usize;
        let end = match self.starts.get(index + 1) {
            Some(&next) => next as usize - StoredPerson::SEPARATOR.len(),
            None => self.joined.len(),
        };
        &self.joined[start..end]
    }

    fn optional(&self, index: usize) -> Option<&str> {
        Some(self.part(index)).filter(|v| !v.is_empty())
    }

    pub fn employee_id(&self) -> Option<&str> {
        self.optional(0)
    }
    pub fn first_name(&self) -> &str {
        self.part(1)
    }
    pub fn last_name(&self) -> &str {
        self.part(2)
    }
    pub fn department(&self) -> &str {
        self.part(3)
    }
    pub fn role(&self) -> &str {
        self.part(4)
    }
    pub fn facility(&self) -> &str {
        self.part(5)
    }
    /// Validated and lower-cased, like `email`.
    pub fn manager_email(&self) -> Option<&str> {
        self.optional(6)
    }
    pub fn time_zone(&self) -> Option<&str> {
        self.optional(7)
    }
    /// Extra columns as stored: a JSON object with sorted keys, so equal
    /// attributes compare equal as text.
    pub fn attributes(&self) -> &str {
        self.part(8)
    }

    /// The fields after the employee id, in [`StoredPerson::fields`] form:
    /// an unchanged person is one string comparison.
    pub fn compared_fields(&self) -> &str {
        &self.joined[self.starts[1] as usize..]
    }

    fn new(line: u64, email: EmailAddress, parts: [&str; PARTS]) -> Self {
        let mut joined = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        let mut starts = [0u32; PARTS];
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                joined.push_str(StoredPerson::SEPARATOR);
            }
            // Fields are bounded by roster.max_field_length, the file by
            // roster.max_file_bytes: far below 4 GiB.
            starts[i] = u32::try_from(joined.len()).unwrap_or(u32::MAX);
            joined.push_str(part);
        }
        Self {
            line,
            email,
            joined: joined.into_boxed_str(),
            starts,
        }
    }
}

/// A rejected row, or a problem with the file as a whole (line of the header).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    pub line: u64,
    pub column: String,
    pub reason: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.column.is_empty() {
            write!(f, "line {}: {}", self.line, self.reason)
        } else {
            write!(
                f,
                "line {}, column {}: {}",
                self.line, self.column, self.reason
            )
        }
    }
}

/// Why the header row cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderRowError {
    #[error("the file has no header row; the first line must name the columns (e.g. Email,First Name,Department)")]
    Missing,
    #[error("line {line} (the header row) cannot be read as CSV ({reason})")]
    Unreadable { line: u64, reason: String },
    #[error("line {line} (the header row): {error}")]
    Columns { line: u64, error: HeaderError },
}

/// Limits applied to every field.
#[derive(Debug, Clone)]
pub struct ParseLimits {
    /// roster.max_field_length: the longest value, in characters.
    pub max_field_length: usize,
    /// roster.max_columns: the most columns a file may have.
    pub max_columns: usize,
}

/// One data row of the file, read and validated.
#[derive(Debug)]
pub enum Row {
    Valid(PersonRecord),
    Invalid {
        errors: Vec<RowError>,
        /// Identities (employee id, lower-cased email) the row names: a sync
        /// must not deactivate someone only because their row was invalid.
        identities: Vec<String>,
    },
}

/// Reads a roster one row at a time, so a large file is never held as
/// records all at once: the import plans and writes each batch as it goes.
pub struct RosterReader<'t> {
    text: &'t str,
    reader: csv::Reader<&'t [u8]>,
    record: csv::StringRecord,
    headers: Vec<String>,
    columns: Vec<Column>,
    /// Why a column did not get the field its name suggests.
    notes: Vec<(usize, String)>,
    email_header: String,
    limits: ParseLimits,
    seen: Seen,
    data_rows: u64,
    /// Problems that did not reject a row (an unknown time zone), not yet taken.
    warnings: Vec<RowError>,
}

/// Where one column of the file went, for the import report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ColumnMapping {
    /// The header as written (its number when the header is empty).
    pub column: String,
    /// A field name, `attributes.NAME`, or `ignore`.
    pub to: String,
    /// Why the column did not get the field its name suggests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl<'t> RosterReader<'t> {
    /// Reads and maps the header row (the first row that is not blank).
    pub fn open(
        text: &'t str,
        delimiter: u8,
        mappings: &BTreeMap<String, String>,
        limits: ParseLimits,
    ) -> Result<Self, HeaderRowError> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut header = csv::StringRecord::new();
        loop {
            match reader.read_record(&mut header) {
                Ok(true) if header.iter().all(|f| f.trim().is_empty()) => continue,
                Ok(true) => break,
                Ok(false) => return Err(HeaderRowError::Missing),
                Err(e) => {
                    let error = csv_error(&e);
                    return Err(HeaderRowError::Unreadable {
                        line: error.line,
                        reason: e.to_string(),
                    });
                }
            }
        }
        let columns_error = |error| HeaderRowError::Columns {
            line: line_of(text, &header),
            error,
        };
        let raw: Vec<&str> = header.iter().collect();
        check_header_shape(&raw, (limits.max_columns, "roster.max_columns"))
            .map_err(columns_error)?;
        let headers: Vec<String> = raw.iter().map(|h| h.trim().to_string()).collect();
        let mapped = map_headers(&headers, mappings).map_err(columns_error)?;
        let columns = mapped.columns;
        let email_header = columns
            .iter()
            .position(|c| *c == Column::Known(Field::Email))
            .map(|i| headers[i].clone())
            .unwrap_or_default();
        Ok(Self {
            text,
            reader,
            record: csv::StringRecord::new(),
            headers,
            columns,
            notes: mapped.notes,
            email_header,
            limits,
            seen: Seen::default(),
            data_rows: 0,
            warnings: Vec::new(),
        })
    }

    /// Each column and where it went.
    pub fn mapping(&self) -> Vec<ColumnMapping> {
        self.columns
            .iter()
            .enumerate()
            .map(|(index, column)| ColumnMapping {
                column: column_label(&self.headers, index).into_owned(),
                to: column.target(),
                note: self
                    .notes
                    .iter()
                    .find(|(i, _)| *i == index)
                    .map(|(_, note)| note.clone()),
            })
            .collect()
    }

    /// Warnings of the rows read since the last call.
    pub fn take_warnings(&mut self) -> Vec<RowError> {
        std::mem::take(&mut self.warnings)
    }

    /// The header row as written (trimmed).
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The email column's header as written in the file, for messages.
    pub fn email_header(&self) -> &str {
        &self.email_header
    }

    /// Lines of data seen so far, valid or not (blank rows excluded).
    pub fn data_rows(&self) -> u64 {
        self.data_rows
    }

    /// How far into the text the reader is, in bytes.
    pub fn position(&self) -> u64 {
        self.reader.position().byte()
    }

    /// The next data row, or `None` at the end of the file.
    pub fn next_row(&mut self) -> Option<Row> {
        loop {
            match self.reader.read_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    return Some(Row::Invalid {
                        errors: vec![csv_error(&e)],
                        identities: vec![],
                    })
                }
            }
            if self.record.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            self.data_rows += 1;
            let row = RowValidator {
                line: line_of(self.text, &self.record),
                headers: &self.headers,
                limits: &self.limits,
            };
            return Some(
                match row.read(
                    &self.record,
                    &self.columns,
                    &mut self.seen,
                    &mut self.warnings,
                ) {
                    Ok(person) => Row::Valid(person),
                    Err(errors) => Row::Invalid {
                        errors,
                        identities: identities(&self.record, &self.columns),
                    },
                },
            );
        }
    }
}

/// First line each email / employee id was seen on, for duplicate checks,
/// and the manager addresses already checked.
///
/// Emails and ids are remembered by a 128-bit keyed hash, not as strings:
/// 200,000 small strings took 50 ms just to free at the end of a 100k-row
/// import. Two independently keyed SipHashes make a false "duplicate"
/// about as likely as guessing a 128-bit key.
#[derive(Default)]
struct Seen {
    keys: (RandomState, RandomState),
    emails: HashMap<u128, u64>,
    employee_ids: HashMap<u128, u64>,
    /// A few hundred managers appear on thousands of rows: each address is
    /// parsed once. Bounded, in case every row names a different one.
    managers: HashMap<String, Result<EmailAddress, EmailError>>,
}

impl Seen {
    const MANAGERS_KEPT: usize = 20_000;

    /// A manager's address, checked and normalised.
    fn manager<'m>(
        managers: &'m mut HashMap<String, Result<EmailAddress, EmailError>>,
        raw: &str,
    ) -> Result<Cow<'m, str>, EmailError> {
        if !managers.contains_key(raw) && managers.len() < Self::MANAGERS_KEPT {
            managers.insert(raw.to_string(), EmailAddress::parse(raw));
        }
        match managers.get(raw) {
            Some(Ok(known)) => Ok(Cow::Borrowed(known.as_str())),
            Some(Err(e)) => Err(e.clone()),
            None => EmailAddress::parse(raw).map(|m| Cow::Owned(m.to_string())),
        }
    }

    fn key(keys: &(RandomState, RandomState), value: &str) -> u128 {
        (u128::from(keys.0.hash_one(value)) << 64) | u128::from(keys.1.hash_one(value))
    }

    /// Records `value` on `line`; the line it was first seen on when it is a duplicate.
    fn first_sighting(
        keys: &(RandomState, RandomState),
        map: &mut HashMap<u128, u64>,
        value: &str,
        line: u64,
    ) -> Option<u64> {
        match map.entry(Self::key(keys, value)) {
            Entry::Occupied(first) => Some(*first.get()),
            Entry::Vacant(slot) => {
                slot.insert(line);
                None
            }
        }
    }
}

struct RowValidator<'a> {
    line: u64,
    headers: &'a [String],
    limits: &'a ParseLimits,
}

impl RowValidator<'_> {
    fn read(
        &self,
        record: &csv::StringRecord,
        columns: &[Column],
        seen: &mut Seen,
        warnings: &mut Vec<RowError>,
    ) -> Result<PersonRecord, Vec<RowError>> {
        let mut errors = Vec::new();
        if record.len() != columns.len() {
            errors.push(self.error(
                "",
                format!(
                    "expected {} fields like the header, found {}; check for an unquoted delimiter or a missing value",
                    columns.len(),
                    record.len()
                ),
            ));
            return Err(errors);
        }
        let mut known: [Option<&str>; Field::ALL.len()] = [None; Field::ALL.len()];
        let mut attributes: BTreeMap<&str, &str> = BTreeMap::new();
        for (index, (raw, column)) in record.iter().zip(columns).enumerate() {
            if *column == Column::Dropped {
                continue;
            }
            if let Some(problem) = self.field_problem(raw) {
                errors.push(self.error(&column_label(self.headers, index), problem));
                continue;
            }
            let value = raw.trim();
            match column {
                Column::Known(field) => known[*field as usize] = Some(value),
                Column::Attribute(key) if !value.is_empty() => {
                    attributes.insert(key, value);
                }
                _ => {}
            }
        }
        let get = |field: Field| known[field as usize];
        let header_of = |field: Field| {
            columns
                .iter()
                .position(|c| *c == Column::Known(field))
                .map_or(field.name(), |i| self.headers[i].as_str())
        };
        let email = match get(Field::Email).map(EmailAddress::parse) {
            Some(Ok(email)) => Some(email),
            Some(Err(e)) => {
                errors.push(self.error(header_of(Field::Email), format!("email {e}")));
                None
            }
            None => None, // the field itself was rejected above
        };
        let manager_email = match get(Field::ManagerEmail).filter(|v| !v.is_empty()) {
            Some(raw) => match Seen::manager(&mut seen.managers, raw) {
                Ok(m) => Some(m),
                Err(e) => {
                    errors.push(
                        self.error(header_of(Field::ManagerEmail), format!("manager email {e}")),
                    );
                    None
                }
            },
            None => None,
        };
        let time_zone = self.time_zone(get(Field::TimeZone), header_of(Field::TimeZone), warnings);
        let employee_id = get(Field::EmployeeId).unwrap_or("");
        if let Some(email) = &email {
            if let Some(first) =
                Seen::first_sighting(&seen.keys, &mut seen.emails, email.as_str(), self.line)
            {
                errors.push(self.error(
                    header_of(Field::Email),
                    format!(
                        "{email} already appears on line {first}; each person must appear once"
                    ),
                ));
            }
        }
        if !employee_id.is_empty() {
            if let Some(first) =
                Seen::first_sighting(&seen.keys, &mut seen.employee_ids, employee_id, self.line)
            {
                errors.push(self.error(
                    header_of(Field::EmployeeId),
                    format!("employee id {employee_id:?} already appears on line {first}"),
                ));
            }
        }
        let text = |field: Field| get(field).unwrap_or("");
        match email {
            Some(email) if errors.is_empty() => {
                let attributes = serde_json::to_string(&attributes).unwrap_or_else(|_| "{}".into());
                let manager = manager_email.as_deref().unwrap_or("");
                Ok(PersonRecord::new(
                    self.line,
                    email,
                    [
                        employee_id,
                        text(Field::FirstName),
                        text(Field::LastName),
                        text(Field::Department),
                        text(Field::Role),
                        text(Field::Facility),
                        manager,
                        time_zone,
                        &attributes,
                    ],
                ))
            }
            _ => Err(errors),
        }
    }

    /// The IANA name of the row's time zone (empty when it has none). A
    /// zone that cannot be recognised is a warning, not a rejection: the
    /// person then has no zone of their own and the campaign's or the
    /// organisation's applies.
    fn time_zone(
        &self,
        raw: Option<&str>,
        header: &str,
        warnings: &mut Vec<RowError>,
    ) -> &'static str {
        let raw = raw.unwrap_or("");
        if raw.is_empty() {
            return "";
        }
        match zones::resolve(raw) {
            Some(tz) => tz.name(),
            None => {
                warnings.push(self.error(header, format!(
                    "{raw:?} is not a time zone ambassador knows (IANA like America/Chicago, Windows like \"Central Standard Time\", or Workday like \"GMT-06:00 Central Time (Chicago)\"); the person gets none of their own, so the campaign's or the organisation's time zone applies"
                )));
                ""
            }
        }
    }

    fn field_problem(&self, raw: &str) -> Option<String> {
        if let Some(c) = raw.chars().find(|c| c.is_control() && *c != '\t') {
            let name = match c {
                '\r' => "a carriage return (CR)".to_string(),
                '\n' => "a line break (LF)".to_string(),
                '\0' => "a NUL byte".to_string(),
                other => format!("the control character U+{:04X}", other as u32),
            };
            return Some(format!(
                "contains {name}; remove it from the cell in the export"
            ));
        }
        if let Some(problem) = disguise_problem(raw) {
            return Some(problem);
        }
        // A string has at most as many characters as bytes: count only long ones.
        if raw.len() <= self.limits.max_field_length {
            return None;
        }
        let length = raw.chars().count();
        (length > self.limits.max_field_length).then(|| {
            format!(
                "is {length} characters long, more than the {} allowed (roster.max_field_length)",
                self.limits.max_field_length
            )
        })
    }

    fn error(&self, column: &str, reason: String) -> RowError {
        RowError {
            line: self.line,
            column: column.to_string(),
            reason,
        }
    }
}

/// How a message names a column: its header, or its number when the header
/// is empty (such a column is ignored, but its cells are still checked).
pub fn column_label(headers: &[String], index: usize) -> Cow<'_, str> {
    match headers.get(index).map(String::as_str) {
        Some(header) if !header.is_empty() => Cow::Borrowed(header),
        _ => Cow::Owned((index + 1).to_string()),
    }
}

fn identities(record: &csv::StringRecord, columns: &[Column]) -> Vec<String> {
    record
        .iter()
        .zip(columns)
        .filter_map(|(value, column)| match column {
            Column::Known(Field::Email) => Some(value.trim().to_lowercase()),
            Column::Known(Field::EmployeeId) => Some(value.trim().to_string()),
            _ => None,
        })
        .filter(|v| !v.is_empty())
        .collect()
}

/// The line a record starts on. The csv crate reports the position where it
/// began looking for the record, so blank lines skipped before it would make
/// every later row's line number point one line too early (an admin told
/// "line 6" would look at the blank line); count them here.
pub fn line_of(text: &str, record: &csv::StringRecord) -> u64 {
    let Some(position) = record.position() else {
        return 0;
    };
    let start = usize::try_from(position.byte())
        .unwrap_or(usize::MAX)
        .min(text.len());
    let skipped = text.as_bytes()[start..]
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .filter(|b| **b == b'\n')
        .count();
    position.line() + skipped as u64
}

fn csv_error(e: &csv::Error) -> RowError {
    RowError {
        line: e.position().map_or(0, |p| p.line()),
        column: String::new(),
        reason: format!("cannot be read as CSV ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_lines(text: &str) -> Vec<u64> {
        let limits = ParseLimits {
            max_field_length: 256,
            max_columns: 200,
        };
        let mut reader = RosterReader::open(text, b',', &BTreeMap::new(), limits).unwrap();
        let mut lines = Vec::new();
        while let Some(row) = reader.next_row() {
            if let Row::Invalid { errors, .. } = row {
                lines.extend(errors.iter().map(|e| e.line));
            }
        }
        lines
    }

    fn rows(text: &str) -> Vec<Row> {
        let limits = ParseLimits {
            max_field_length: 256,
            max_columns: 200,
        };
        let mut reader = RosterReader::open(text, b',', &BTreeMap::new(), limits).unwrap();
        std::iter::from_fn(|| reader.next_row()).collect()
    }

    #[test]
    fn a_repeated_manager_is_checked_on_every_row() {
        // Manager addresses are parsed once and remembered: the verdict,
        // good or bad, must still reach every row that names them.
        let rows = rows(
            "Email,Manager Email\na@x.org,Boss@X.org\nb@x.org,boss@x.org\n\
             c@x.org,not an address\nd@x.org,not an address\n",
        );
        let managers: Vec<Option<String>> = rows
            .iter()
            .map(|r| match r {
                Row::Valid(p) => p.manager_email().map(String::from),
                Row::Invalid { errors, .. } => Some(format!("line {}", errors[0].line)),
            })
            .collect();
        assert_eq!(
            managers,
            [
                Some("boss@x.org".to_string()),
                Some("boss@x.org".to_string()),
                Some("line 4".to_string()),
                Some("line 5".to_string())
            ]
        );
    }

    #[test]
    fn a_record_gives_back_each_field() {
        let rows = rows(
            "Employee ID,Email,First Name,Last Name,Department,Job Title,Location,Supervisor Email,Time Zone,Cost Center\n\
             E1,Ann@X.org,Ann,Lee,Pharmacy,Buyer,North,m@x.org,America/Chicago,CC-1\n\
             ,bo@x.org,,,,,,,,\n",
        );
        let [Row::Valid(ann), Row::Valid(bo)] = &rows[..] else {
            panic!("both rows are valid: {rows:?}");
        };
        assert_eq!(
            (
                ann.employee_id(),
                ann.email.as_str(),
                ann.first_name(),
                ann.last_name(),
                ann.department(),
                ann.role(),
                ann.facility(),
                ann.manager_email(),
                ann.time_zone(),
                ann.attributes()
            ),
            (
                Some("E1"),
                "ann@x.org",
                "Ann",
                "Lee",
                "Pharmacy",
                "Buyer",
                "North",
                Some("m@x.org"),
                Some("America/Chicago"),
                r#"{"cost_center":"CC-1"}"#
            )
        );
        assert_eq!(
            (
                bo.employee_id(),
                bo.first_name(),
                bo.manager_email(),
                bo.time_zone(),
                bo.attributes()
            ),
            (None, "", None, None, "{}")
        );
    }

    #[test]
    fn line_numbers_count_blank_lines_before_a_row() {
        assert_eq!(error_lines("Email\n\na@x.org\n\n\nbad\nbad2\n"), [6, 7]);
    }

    #[test]
    fn line_numbers_are_right_with_crlf_and_blank_lines() {
        assert_eq!(
            error_lines("Email\r\nbad\r\n\r\nbad2\r\nok@x.org\r\nbad3\r\n"),
            [2, 4, 6]
        );
    }

    #[test]
    fn line_numbers_follow_a_quoted_line_break() {
        assert_eq!(
            error_lines("Email,Name\nbad,\"two\nlines\"\nbad2,x\n"),
            [2, 2, 4]
        );
    }
}
