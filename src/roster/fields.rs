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

    /// Header spellings seen in real HR exports (Workday, UKG, Oracle HCM,
    /// SAP SuccessFactors, ADP and plain spreadsheets), already normalised,
    /// the most specific first: when two columns of one file claim a field,
    /// the one whose spelling comes first here wins (legal over preferred
    /// name, work over any email).
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::Email => &[
                "primaryworkemail",
                "workemailprimary",
                "emailprimarywork",
                "workemail",
                "workemailaddress",
                "businessemail",
                "businessemailaddress",
                "corporateemail",
                "officeemail",
                "email",
                "emailaddress",
                "primaryemail",
                "emailid",
                "mail",
            ],
            Field::EmployeeId => &[
                "employeeid",
                "workerid",
                "employeenumber",
                "employeeno",
                "empid",
                "empno",
                "staffid",
                "staffnumber",
                "personnumber",
                "personnelnumber",
                "personidexternal",
                "associateid",
                "employeecode",
                "badgeid",
                "id",
            ],
            Field::FirstName => &[
                "legalfirstname",
                "firstnamelegal",
                "firstname",
                "givenname",
                "forename",
                "first",
                "preferredfirstname",
                "firstnamepreferred",
                "preferredname",
            ],
            Field::LastName => &[
                "legallastname",
                "lastnamelegal",
                "lastname",
                "surname",
                "familyname",
                "last",
                "preferredlastname",
                "lastnamepreferred",
            ],
            Field::Department => &[
                "department",
                "departmentname",
                "dept",
                "costcenterhierarchy",
                "costcentername",
                "supervisoryorganization",
                "organizationunit",
                "orgunit",
                "division",
                "businessunit",
                "unit",
                "team",
            ],
            Field::Role => &[
                "jobtitle",
                "businesstitle",
                "positiontitle",
                "title",
                "role",
                "jobprofile",
                "jobprofilename",
                "position",
                "positionname",
                "jobname",
                "jobrole",
                "job",
            ],
            Field::Facility => &[
                "facility",
                "facilityname",
                "worklocation",
                "primaryworklocation",
                "location",
                "locationname",
                "site",
                "worksite",
                "campus",
                "hospital",
            ],
            Field::ManagerEmail => &[
                "manageremail",
                "managersemail",
                "managerworkemail",
                "managersworkemail",
                "managerprimaryworkemail",
                "manageremailaddress",
                "supervisoremail",
                "supervisorsemail",
                "supervisoremailaddress",
                "reportstoemail",
                "linemanageremail",
            ],
            Field::TimeZone => &[
                "timezone",
                "tz",
                "timezonename",
                "worktimezone",
                "defaulttimezone",
                "usertimezone",
                "locationtimezone",
            ],
        }
    }

    /// The field a header names by a built-in alias, and how specific that
    /// alias is (0 is the most specific).
    fn by_alias(key: &str) -> Option<(Field, usize)> {
        Field::ALL.into_iter().find_map(|f| {
            f.aliases()
                .iter()
                .position(|a| *a == key)
                .map(|rank| (f, rank))
        })
    }
}

/// Where `[roster] columns` sends a header: a field, an attribute, or nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    Field(Field),
    /// `attributes.NAME`: kept with the person under this key.
    Attribute(String),
    /// `ignore` (or `""`): the column is not read at all.
    Ignore,
}

impl Mapping {
    /// Parses a `[roster] columns` value; the error says what is allowed.
    pub fn parse(target: &str) -> Result<Self, String> {
        let target = target.trim();
        if target.is_empty() || target.eq_ignore_ascii_case("ignore") {
            return Ok(Mapping::Ignore);
        }
        if let Some(name) = target.strip_prefix("attributes.") {
            let key = attribute_key(name);
            if key.is_empty() {
                return Err(format!(
                    "{target:?} names no attribute; write e.g. \"attributes.cost_center\""
                ));
            }
            return Ok(Mapping::Attribute(key));
        }
        Field::from_name(target).map(Mapping::Field).ok_or_else(|| {
            format!(
                "{target:?} is not a roster field; use one of: {}, \"attributes.NAME\" or \"ignore\"",
                Field::NAMES.join(", ")
            )
        })
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
    /// A column with an empty header: ignored (its cells are still checked).
    Ignored,
    /// Mapped to `ignore` in config: its cells are not read at all.
    Dropped,
}

impl Column {
    /// Where the column goes, as `[roster] columns` would say it.
    pub fn target(&self) -> String {
        match self {
            Column::Known(field) => field.name().to_string(),
            Column::Attribute(key) => format!("attributes.{key}"),
            Column::Ignored | Column::Dropped => "ignore".into(),
        }
    }
}

/// The columns of a header row, and why a column did not get the field its
/// name suggests (another column claimed it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedHeaders {
    pub columns: Vec<Column>,
    /// (0-based column, note), in column order.
    pub notes: Vec<(usize, String)>,
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

/// Which column claims a field, and how strongly: a config mapping beats
/// any alias, a more specific alias a less specific one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Claim {
    Configured,
    Alias(usize),
}

/// Maps each header to a column, using config mappings before aliases.
///
/// When several columns claim one field, the strongest claim wins and the
/// others are kept as attributes, with a note; two equally strong claims
/// (the same alias twice, or two config mappings) are refused.
pub fn map_headers(
    headers: &[String],
    config: &BTreeMap<String, String>,
) -> Result<MappedHeaders, HeaderError> {
    let configured: BTreeMap<String, Mapping> = config
        .iter()
        .filter_map(|(h, m)| Mapping::parse(m).ok().map(|m| (normalise_header(h), m)))
        .collect();
    let mut columns = Vec::with_capacity(headers.len());
    let mut claims: BTreeMap<Field, Vec<(Claim, usize)>> = BTreeMap::new();
    for (index, header) in headers.iter().enumerate() {
        let key = normalise_header(header);
        let (column, claim) = match configured.get(&key) {
            Some(Mapping::Field(f)) => (Column::Known(*f), Some(Claim::Configured)),
            Some(Mapping::Attribute(name)) => (Column::Attribute(name.clone()), None),
            Some(Mapping::Ignore) => (Column::Dropped, None),
            None => match Field::by_alias(&key) {
                Some((f, rank)) => (Column::Known(f), Some(Claim::Alias(rank))),
                None if key.is_empty() => (Column::Ignored, None),
                None => (Column::Attribute(attribute_key(header)), None),
            },
        };
        if let (Column::Known(field), Some(claim)) = (&column, claim) {
            claims.entry(*field).or_default().push((claim, index));
        }
        columns.push(column);
    }
    let mut notes = Vec::new();
    for (field, mut claimants) in claims {
        claimants.sort();
        let (best, chosen) = claimants[0];
        if let Some(&(_, second)) = claimants.get(1).filter(|(c, _)| *c == best) {
            return Err(HeaderError::Duplicate {
                field: field.name(),
                first: chosen.min(second) + 1,
                second: chosen.max(second) + 1,
            });
        }
        for &(_, index) in &claimants[1..] {
            let key = attribute_key(&headers[index]);
            notes.push((
                index,
                format!(
                    "also looks like {}; {:?} is used for it, this column is kept as attributes.{key}",
                    field.name(),
                    headers[chosen]
                ),
            ));
            columns[index] = Column::Attribute(key);
        }
    }
    notes.sort();
    if !columns.contains(&Column::Known(Field::Email)) {
        return Err(HeaderError::NoEmail {
            found: headers
                .iter()
                .map(|h| format!("{h:?}"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(MappedHeaders { columns, notes })
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
        .unwrap()
        .columns;
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
        let cols = map_headers(&h(&["Correo", "Cost Center #"]), &config)
            .unwrap()
            .columns;
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
    fn two_columns_with_the_same_alias_are_refused() {
        let err = map_headers(&h(&["Email", "E-mail"]), &BTreeMap::new()).unwrap_err();
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

    #[test]
    fn the_more_specific_column_wins_and_the_other_is_kept_with_a_note() {
        let mapped = map_headers(
            &h(&["Preferred Name", "Legal First Name", "Email", "Work Email"]),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(
            mapped.columns,
            vec![
                Column::Attribute("preferred_name".into()),
                Column::Known(Field::FirstName),
                Column::Attribute("email".into()),
                Column::Known(Field::Email),
            ]
        );
        assert_eq!(
            mapped.notes,
            vec![
                (0, "also looks like first_name; \"Legal First Name\" is used for it, this column is kept as attributes.preferred_name".to_string()),
                (2, "also looks like email; \"Work Email\" is used for it, this column is kept as attributes.email".to_string()),
            ]
        );
    }

    #[test]
    fn config_maps_to_attributes_or_ignores_and_beats_aliases() {
        let config = BTreeMap::from([
            ("Preferred Name".to_string(), "first_name".to_string()),
            (
                "Department".to_string(),
                "attributes.home_department".to_string(),
            ),
            ("SSN".to_string(), "ignore".to_string()),
        ]);
        let mapped = map_headers(
            &h(&[
                "Email",
                "Legal First Name",
                "Preferred Name",
                "Department",
                "SSN",
            ]),
            &config,
        )
        .unwrap();
        assert_eq!(
            mapped.columns,
            vec![
                Column::Known(Field::Email),
                Column::Attribute("legal_first_name".into()),
                Column::Known(Field::FirstName),
                Column::Attribute("home_department".into()),
                Column::Dropped,
            ]
        );
    }

    #[test]
    fn mapping_targets_parse_or_say_what_is_allowed() {
        assert_eq!(Mapping::parse("ignore"), Ok(Mapping::Ignore));
        assert_eq!(Mapping::parse(""), Ok(Mapping::Ignore));
        assert_eq!(
            Mapping::parse("attributes.Cost Center"),
            Ok(Mapping::Attribute("cost_center".into()))
        );
        assert_eq!(
            Mapping::parse("Time Zone"),
            Ok(Mapping::Field(Field::TimeZone))
        );
        let err = Mapping::parse("attributes.").unwrap_err();
        assert!(err.contains("names no attribute"), "{err}");
        let err = Mapping::parse("nickname").unwrap_err();
        assert!(
            err.contains("attributes.NAME") && err.contains("first_name"),
            "{err}"
        );
    }

    #[test]
    fn workday_headers_map_to_fields() {
        let cols = map_headers(
            &h(&[
                "Worker ID",
                "Primary Work Email",
                "Manager's Email",
                "Business Title",
                "Cost Center Hierarchy",
                "Legal Last Name",
            ]),
            &BTreeMap::new(),
        )
        .unwrap()
        .columns;
        assert_eq!(
            cols,
            vec![
                Column::Known(Field::EmployeeId),
                Column::Known(Field::Email),
                Column::Known(Field::ManagerEmail),
                Column::Known(Field::Role),
                Column::Known(Field::Department),
                Column::Known(Field::LastName),
            ]
        );
    }
}
