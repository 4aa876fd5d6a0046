//! Which column of an HR export means what. Headers are compared after
//! dropping case, spaces and punctuation, so "Work E-mail" and "work_email"
//! are the same header; common aliases are built in, the rest is config.

use crate::domain::find_disguise;
use std::collections::BTreeMap;

/// A roster field ambassador understands. Other columns become attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Email,
    EmployeeId,
    FirstName,
    LastName,
    Department,
    Role,
    Facility,
    ManagerEmail,
    TimeZone,
}

impl Field {
    pub const ALL: [Field; 9] = [
        Field::Email,
        Field::EmployeeId,
        Field::FirstName,
        Field::LastName,
        Field::Department,
        Field::Role,
        Field::Facility,
        Field::ManagerEmail,
        Field::TimeZone,
    ];

    /// The names used in config (`[roster] columns`) and in messages.
    pub const NAMES: [&'static str; 9] = [
        "email",
        "employee_id",
        "first_name",
        "last_name",
        "department",
        "role",
        "facility",
        "manager_email",
        "time_zone",
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<Self> {
        let key = normalise_header(name);
        Self::ALL
            .into_iter()
            .find(|f| normalise_header(f.name()) == key)
    }

    /// Header spellings seen in real HR exports, already normalised.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::Email => &[
                "email",
                "emailaddress",
                "workemail",
                "workemailaddress",
                "businessemail",
                "primaryemail",
                "mail",
                "emailid",
                "officeemail",
                "corporateemail",
            ],
            Field::EmployeeId => &[
                "employeeid",
                "employeenumber",
                "employeeno",
                "empid",
                "empno",
                "staffid",
                "staffnumber",
                "personnelnumber",
                "workerid",
                "badgeid",
                "id",
            ],
            Field::FirstName => &[
                "firstname",
                "givenname",
                "forename",
                "preferredname",
                "preferredfirstname",
                "legalfirstname",
                "first",
            ],
            Field::LastName => &["lastname", "surname", "familyname", "legallastname", "last"],
            Field::Department => &[
                "department",
                "dept",
                "departmentname",
                "costcentername",
                "division",
                "businessunit",
                "unit",
                "team",
            ],
            Field::Role => &[
                "role",
                "jobtitle",
                "title",
                "position",
                "positiontitle",
                "job",
                "jobname",
                "jobrole",
            ],
            Field::Facility => &[
                "facility",
                "location",
                "site",
                "worklocation",
                "facilityname",
                "campus",
                "hospital",
                "locationname",
            ],
            Field::ManagerEmail => &[
                "manageremail",
                "supervisoremail",
                "manageremailaddress",
                "supervisoremailaddress",
                "reportstoemail",
                "linemanageremail",
            ],
            Field::TimeZone => &["timezone", "tz", "timezonename"],
        }
    }
}

/// Lower-cases and keeps only letters and digits.
pub fn normalise_header(header: &str) -> String {
    header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A snake_case key for an extra column, usable in templates
/// (`{{attributes.cost_center}}` for "Cost Center").
pub fn attribute_key(header: &str) -> String {
    let mut key = String::with_capacity(header.len());
    for c in header.trim().chars() {
        if c.is_alphanumeric() {
            key.extend(c.to_lowercase());
        } else if !key.ends_with('_') && !key.is_empty() {
            key.push('_');
        }
    }
    while key.ends_with('_') {
        key.pop();
    }
    key
}

/// What each column of a file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    Known(Field),
    /// An extra column kept as an attribute under this key.
    Attribute(String),
    /// A column with an empty header: ignored.
    Ignored,
}

/// The longest header name accepted, in characters: a header becomes an
/// attribute key stored with every person.
pub const MAX_HEADER_CHARS: usize = 256;

/// Why a header row cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("column {column} has a header of {length} characters (it starts {start:?}), more than the {MAX_HEADER_CHARS} allowed; is the first line really the header row?")]
    TooLong {
        column: usize,
        start: String,
        length: usize,
    },
    #[error("the file has {found} columns, more than {limit} ({max}); column {first_extra} ({header:?}) and later are too many. Remove the columns ambassador does not need")]
    TooManyColumns {
        found: usize,
        /// What sets the limit, e.g. the config key.
        limit: &'static str,
        max: usize,
        first_extra: usize,
        header: String,
    },
    #[error("column {column} ({start:?}): {problem}; remove it from the header")]
    Disguised {
        column: usize,
        start: String,
        problem: String,
    },
    #[error("no email column: none of the headers ({found}) is an email header; name it \"Email\" or map it in config with [roster] columns = {{ \"Your Header\" = \"email\" }}")]
    NoEmail { found: String },
    #[error("columns {first} and {second} both map to the field {field}; remove one or map one of them to another field in [roster] columns")]
    Duplicate {
        field: &'static str,
        first: usize,
        second: usize,
    },
}

/// Checks the header row's shape before it is used: how many columns, how
/// long each name, and no invisible characters in a name.
pub fn check_header_shape<S: AsRef<str>>(
    headers: &[S],
    (max_columns, limit): (usize, &'static str),
) -> Result<(), HeaderError> {
    let start = |h: &str| h.chars().take(40).collect::<String>();
    if headers.len() > max_columns {
        return Err(HeaderError::TooManyColumns {
            found: headers.len(),
            limit,
            max: max_columns,
            first_extra: max_columns + 1,
            header: start(headers[max_columns].as_ref()),
        });
    }
    for (index, header) in headers.iter().map(AsRef::as_ref).enumerate() {
        // A string has at most as many characters as bytes: count only long ones.
        if header.len() > MAX_HEADER_CHARS && header.chars().count() > MAX_HEADER_CHARS {
            return Err(HeaderError::TooLong {
                column: index + 1,
                start: start(header),
                length: header.chars().count(),
            });
        }
        if let Some(disguise) = find_disguise(header) {
            return Err(HeaderError::Disguised {
                column: index + 1,
                start: start(header),
                problem: disguise.to_string(),
            });
        }
    }
    Ok(())
}

/// Maps each header to a column, using config mappings before aliases.
pub fn map_headers(
    headers: &[String],
    config: &BTreeMap<String, String>,
) -> Result<Vec<Column>, HeaderError> {
    let configured: BTreeMap<String, Field> = config
        .iter()
        .filter_map(|(h, f)| Field::from_name(f).map(|f| (normalise_header(h), f)))
        .collect();
    let mut columns = Vec::with_capacity(headers.len());
    let mut seen: BTreeMap<Field, usize> = BTreeMap::new();
    for (index, header) in headers.iter().enumerate() {
        let key = normalise_header(header);
        let field = configured.get(&key).copied().or_else(|| {
            Field::ALL
                .into_iter()
                .find(|f| f.aliases().contains(&key.as_str()))
        });
        let column = match field {
            Some(field) => {
                if let Some(first) = seen.insert(field, index + 1) {
                    return Err(HeaderError::Duplicate {
                        field: field.name(),
                        first,
                        second: index + 1,
                    });
                }
                Column::Known(field)
            }
            None if key.is_empty() => Column::Ignored,
            None => Column::Attribute(attribute_key(header)),
        };
        columns.push(column);
    }
    if !seen.contains_key(&Field::Email) {
        return Err(HeaderError::NoEmail {
            found: headers
                .iter()
                .map(|h| format!("{h:?}"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn aliases_match_ignoring_case_space_and_punctuation() {
        let cols = map_headers(
            &h(&[
                "Work E-mail",
                "Employee ID",
                "Job Title",
                "Location",
                "Supervisor Email",
            ]),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(
            cols,
            vec![
                Column::Known(Field::Email),
                Column::Known(Field::EmployeeId),
                Column::Known(Field::Role),
                Column::Known(Field::Facility),
                Column::Known(Field::ManagerEmail),
            ]
        );
    }

    #[test]
    fn config_mapping_wins_and_extras_become_attributes() {
        let config = BTreeMap::from([("Correo".to_string(), "email".to_string())]);
        let cols = map_headers(&h(&["Correo", "Cost Center #"]), &config).unwrap();
        assert_eq!(
            cols,
            vec![
                Column::Known(Field::Email),
                Column::Attribute("cost_center".into())
            ]
        );
    }

    #[test]
    fn missing_email_column_says_how_to_map_it() {
        let err = map_headers(&h(&["Name", "Dept"]), &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("[roster] columns"), "{err}");
    }

    #[test]
    fn two_email_columns_are_refused() {
        let err = map_headers(&h(&["Email", "Work Email"]), &BTreeMap::new()).unwrap_err();
        assert_eq!(
            err,
            HeaderError::Duplicate {
                field: "email",
                first: 1,
                second: 2
            }
        );
    }

    #[test]
    fn a_header_with_an_invisible_character_is_refused_naming_the_column() {
        let err = check_header_shape(
            &["Email", "Cost\u{202E}Center"],
            (200, "roster.max_columns"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "column 2 (\"Cost\\u{202e}Center\"): contains U+202E (a bidirectional control) at character 5; remove it from the header"
        );
    }
}
