//! From decoded CSV text to validated person records. Every problem in the
//! file is collected (line, column, reason), not only the first, so an admin
//! fixes the export once.

use super::fields::{map_headers, Column, Field, HeaderError};
use crate::domain::EmailAddress;
use std::collections::{BTreeMap, HashMap};

/// One valid roster row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRecord {
    pub line: u64,
    pub employee_id: Option<String>,
    pub email: EmailAddress,
    pub first_name: String,
    pub last_name: String,
    pub department: String,
    pub role: String,
    pub facility: String,
    pub manager_email: Option<EmailAddress>,
    pub time_zone: Option<String>,
    /// Extra columns as stored: a JSON object with sorted keys, so equal
    /// attributes compare equal as text.
    pub attributes: String,
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
    pub max_field_length: usize,
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
    email_header: String,
    limits: ParseLimits,
    seen: Seen,
    data_rows: u64,
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
        let headers: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
        let columns = map_headers(&headers, mappings).map_err(|error| HeaderRowError::Columns {
            line: line_of(text, &header),
            error,
        })?;
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
            email_header,
            limits,
            seen: Seen::default(),
            data_rows: 0,
        })
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
                match row.read(&self.record, &self.columns, &mut self.seen) {
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

/// First line each email / employee id was seen on, for duplicate checks.
#[derive(Default)]
struct Seen {
    emails: HashMap<String, u64>,
    employee_ids: HashMap<String, u64>,
}

impl Seen {
    /// Records `key` on `line`; the line it was first seen on when it is a duplicate.
    fn first_sighting(map: &mut HashMap<String, u64>, key: &str, line: u64) -> Option<u64> {
        match map.get(key) {
            Some(&first) => Some(first),
            None => {
                map.insert(key.to_string(), line);
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
            if let Some(problem) = self.field_problem(raw) {
                errors.push(self.error(&self.headers[index], problem));
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
        let text = |field: Field| get(field).unwrap_or("").to_string();
        let email = match get(Field::Email).map(EmailAddress::parse) {
            Some(Ok(email)) => Some(email),
            Some(Err(e)) => {
                errors.push(self.error(header_of(Field::Email), format!("email {e}")));
                None
            }
            None => None, // the field itself was rejected above
        };
        let manager_email = match get(Field::ManagerEmail).filter(|v| !v.is_empty()) {
            Some(raw) => match EmailAddress::parse(raw) {
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
        let time_zone = match get(Field::TimeZone).filter(|v| !v.is_empty()) {
            Some(raw) if raw.parse::<chrono_tz::Tz>().is_err() => {
                errors.push(self.error(
                    header_of(Field::TimeZone),
                    format!("{raw:?} is not an IANA time zone; write e.g. America/Chicago or leave it empty"),
                ));
                None
            }
            other => other.map(|s| s.to_string()),
        };
        let employee_id = get(Field::EmployeeId)
            .filter(|v| !v.is_empty())
            .map(|v| v.to_string());
        if let Some(email) = &email {
            if let Some(first) = Seen::first_sighting(&mut seen.emails, email.as_str(), self.line) {
                errors.push(self.error(
                    header_of(Field::Email),
                    format!(
                        "{email} already appears on line {first}; each person must appear once"
                    ),
                ));
            }
        }
        if let Some(id) = &employee_id {
            if let Some(first) = Seen::first_sighting(&mut seen.employee_ids, id, self.line) {
                errors.push(self.error(
                    header_of(Field::EmployeeId),
                    format!("employee id {id:?} already appears on line {first}"),
                ));
            }
        }
        match email {
            Some(email) if errors.is_empty() => Ok(PersonRecord {
                line: self.line,
                employee_id,
                email,
                first_name: text(Field::FirstName),
                last_name: text(Field::LastName),
                department: text(Field::Department),
                role: text(Field::Role),
                facility: text(Field::Facility),
                manager_email,
                time_zone,
                attributes: serde_json::to_string(&attributes).unwrap_or_else(|_| "{}".into()),
            }),
            _ => Err(errors),
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
fn line_of(text: &str, record: &csv::StringRecord) -> u64 {
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
