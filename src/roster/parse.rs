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
    pub attributes: BTreeMap<String, String>,
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

/// What a file holds after parsing.
#[derive(Debug, Default)]
pub struct ParsedRoster {
    pub headers: Vec<String>,
    pub records: Vec<PersonRecord>,
    pub errors: Vec<RowError>,
    /// Identities (employee ids, lower-cased emails) named by rejected rows:
    /// a sync must not deactivate someone only because their row was invalid.
    pub rejected_identities: Vec<String>,
    /// Lines of data seen, valid or not (blank rows excluded).
    pub data_rows: u64,
    /// The email column's header as written in the file, for messages.
    pub email_header: String,
}

/// A header row that cannot be used, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} (the header row): {error}")]
pub struct HeaderRowError {
    pub line: u64,
    pub error: HeaderError,
}

/// Limits applied to every field.
#[derive(Debug, Clone)]
pub struct ParseLimits {
    pub max_field_length: usize,
}

/// Parses the whole text. `progress` is told how many bytes were read.
pub fn parse(
    text: &str,
    delimiter: u8,
    mappings: &BTreeMap<String, String>,
    limits: &ParseLimits,
    progress: &mut dyn FnMut(u64),
) -> Result<ParsedRoster, HeaderRowError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    // Sized once from the line count: growing by doubling would briefly hold
    // two copies of the largest vector, the peak of a big import.
    let lines = text.as_bytes().iter().filter(|&&b| b == b'\n').count();
    let mut parsed = ParsedRoster {
        records: Vec::with_capacity(lines),
        ..ParsedRoster::default()
    };
    let header = loop {
        match records.next() {
            Some(Ok(r)) if r.iter().all(|f| f.trim().is_empty()) => continue,
            Some(Ok(r)) => break r,
            Some(Err(e)) => {
                parsed.errors.push(csv_error(&e));
                return Ok(parsed);
            }
            None => return Ok(parsed),
        }
    };
    parsed.headers = header.iter().map(|h| h.trim().to_string()).collect();
    let columns = map_headers(&parsed.headers, mappings).map_err(|error| HeaderRowError {
        line: line_of(text, &header),
        error,
    })?;
    if let Some(index) = columns
        .iter()
        .position(|c| *c == Column::Known(Field::Email))
    {
        parsed.email_header = parsed.headers[index].clone();
    }
    let mut seen = Seen::default();
    for (count, result) in records.enumerate() {
        let record = match result {
            Ok(r) => r,
            Err(e) => {
                parsed.errors.push(csv_error(&e));
                continue;
            }
        };
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        parsed.data_rows += 1;
        let line = line_of(text, &record);
        if count % 1024 == 0 {
            progress(record.position().map_or(0, |p| p.byte()));
        }
        let row = RowReader {
            line,
            headers: &parsed.headers,
            limits,
        };
        match row.read(&record, &columns, &mut seen) {
            Ok(person) => parsed.records.push(person),
            Err(errors) => {
                parsed.errors.extend(errors);
                parsed
                    .rejected_identities
                    .extend(identities(&record, &columns));
            }
        }
    }
    progress(text.len() as u64);
    Ok(parsed)
}

/// First line each email / employee id was seen on, for duplicate checks.
#[derive(Default)]
struct Seen {
    emails: HashMap<String, u64>,
    employee_ids: HashMap<String, u64>,
}

struct RowReader<'a> {
    line: u64,
    headers: &'a [String],
    limits: &'a ParseLimits,
}

impl RowReader<'_> {
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
        let mut known: BTreeMap<Field, &str> = BTreeMap::new();
        let mut attributes = BTreeMap::new();
        for (index, (raw, column)) in record.iter().zip(columns).enumerate() {
            if let Some(problem) = self.field_problem(raw) {
                errors.push(self.error(&self.headers[index], problem));
                continue;
            }
            let value = raw.trim();
            match column {
                Column::Known(field) => {
                    known.insert(*field, value);
                }
                Column::Attribute(key) if !value.is_empty() => {
                    attributes.insert(key.clone(), value.to_string());
                }
                _ => {}
            }
        }
        let header_of = |field: Field| {
            columns
                .iter()
                .position(|c| *c == Column::Known(field))
                .map_or(field.name(), |i| self.headers[i].as_str())
        };
        let text = |field: Field| known.get(&field).copied().unwrap_or("").to_string();
        let email = match known.get(&Field::Email).map(|v| EmailAddress::parse(v)) {
            Some(Ok(email)) => Some(email),
            Some(Err(e)) => {
                errors.push(self.error(header_of(Field::Email), format!("email {e}")));
                None
            }
            None => None, // the field itself was rejected above
        };
        let manager_email = match known.get(&Field::ManagerEmail).filter(|v| !v.is_empty()) {
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
        let time_zone = match known.get(&Field::TimeZone).filter(|v| !v.is_empty()) {
            Some(raw) if raw.parse::<chrono_tz::Tz>().is_err() => {
                errors.push(self.error(
                    header_of(Field::TimeZone),
                    format!("{raw:?} is not an IANA time zone; write e.g. America/Chicago or leave it empty"),
                ));
                None
            }
            other => other.map(|s| s.to_string()),
        };
        let employee_id = known
            .get(&Field::EmployeeId)
            .filter(|v| !v.is_empty())
            .map(|v| v.to_string());
        if let Some(email) = &email {
            if let Some(first) = seen.emails.insert(email.as_str().to_string(), self.line) {
                seen.emails.insert(email.as_str().to_string(), first);
                errors.push(self.error(
                    header_of(Field::Email),
                    format!(
                        "{email} already appears on line {first}; each person must appear once"
                    ),
                ));
            }
        }
        if let Some(id) = &employee_id {
            if let Some(first) = seen.employee_ids.insert(id.clone(), self.line) {
                seen.employee_ids.insert(id.clone(), first);
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
                attributes,
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
        let parsed = parse(text, b',', &BTreeMap::new(), &limits, &mut |_| {}).unwrap();
        parsed.errors.iter().map(|e| e.line).collect()
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
