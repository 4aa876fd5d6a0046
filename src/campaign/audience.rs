//! Who a campaign enrols: `include` and `exclude` name any roster field
//! (department, role, facility, email, ...) or attribute (an export's other
//! columns, e.g. `worker_type`), each with the values that match, compared
//! trimmed and ignoring case.
//!
//! A rule is a value or a list of values (exact match, as campaign files
//! have always written it), or a table of `exact`, `prefix` and `last`:
//! `last` matches the last level of a hierarchy such as
//! "Mercy Valley Health > Operations > Supply Chain", split at `separator`.

use crate::store::campaign::Candidate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The hierarchy separator when the file names none.
pub const DEFAULT_SEPARATOR: &str = " > ";

/// Roster fields an audience can name directly; any other name is an attribute.
pub const ROSTER_FIELDS: [&str; 9] = [
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

/// Who is enrolled: a person matching every `include` rule (if any) and no
/// `exclude` rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    #[serde(default)]
    pub include: BTreeMap<AudienceField, AudienceRule>,
    #[serde(default)]
    pub exclude: BTreeMap<AudienceField, AudienceRule>,
    /// Between the levels of a hierarchy value, for `last` rules (" > " when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
}

/// A roster field or attribute name: `department`, `worker_type`, or
/// `attributes.worker_type` (the same attribute, spelled out).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AudienceField(String);

/// The values one field matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudienceRule {
    /// The whole value equals one of these.
    pub exact: Vec<String>,
    /// The value starts with one of these.
    pub prefix: Vec<String>,
    /// The value's last level (after the last separator) equals one of these.
    pub last: Vec<String>,
}

impl AudienceField {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.strip_prefix("attributes.").unwrap_or(raw);
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            let suggestion: String = name
                .trim()
                .to_lowercase()
                .chars()
                .map(|c| if c.is_alphanumeric() { c } else { '_' })
                .collect();
            return Err(format!(
                "audience: {raw:?} is not a field name; write a roster field ({}) or an attribute as the roster list shows it, e.g. {suggestion:?}",
                ROSTER_FIELDS.join(", ")
            ));
        }
        Ok(Self(raw.to_string()))
    }

    /// The attribute this names, or `None` for a roster field.
    pub fn attribute(&self) -> Option<&str> {
        match self.0.strip_prefix("attributes.") {
            Some(name) => Some(name),
            None if ROSTER_FIELDS.contains(&self.0.as_str()) => None,
            None => Some(&self.0),
        }
    }

    fn value_of(&self, person: &Candidate) -> Option<String> {
        if let Some(name) = self.attribute() {
            let attributes: serde_json::Value = serde_json::from_str(&person.attributes).ok()?;
            return match attributes.get(name)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            };
        }
        Some(match self.0.as_str() {
            "email" => person.email.clone(),
            "employee_id" => person.employee_id.clone()?,
            "first_name" => person.first_name.clone(),
            "last_name" => person.last_name.clone(),
            "department" => person.department.clone(),
            "role" => person.role.clone(),
            "facility" => person.facility.clone(),
            "manager_email" => person.manager_email.clone()?,
            "time_zone" => person.time_zone.clone()?,
            _ => return None,
        })
    }
}

impl std::fmt::Display for AudienceField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AudienceField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

impl AudienceRule {
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefix.is_empty() && self.last.is_empty()
    }

    fn matches(&self, value: &str, separator: &str) -> bool {
        let value = fold(value);
        let separator = separator.trim().to_lowercase();
        let last = match separator.is_empty() {
            true => value.as_str(),
            false => value.rsplit(separator.as_str()).next().unwrap_or("").trim(),
        };
        self.exact.iter().any(|x| fold(x) == value)
            || self.prefix.iter().any(|p| value.starts_with(&fold(p)))
            || self.last.iter().any(|l| fold(l) == last)
    }

    /// "is Supply Chain or Procurement", "starts with Mercy > Ops", ...
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (how, values) in [
            ("is", &self.exact),
            ("starts with", &self.prefix),
            ("ends in", &self.last),
        ] {
            if !values.is_empty() {
                parts.push(format!("{how} {}", values.join(" or ")));
            }
        }
        parts.join(", or ")
    }
}

impl<'de> Deserialize<'de> for AudienceRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            #[serde(default)]
            exact: Vec<String>,
            #[serde(default)]
            prefix: Vec<String>,
            #[serde(default)]
            last: Vec<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            List(Vec<String>),
            Table(Table),
        }
        let hint = "write a value, a list of values, or a table { exact = [...], prefix = [...], last = [...] }";
        match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom(format!("an audience rule: {hint}")))?
        {
            Raw::One(value) => Ok(Self {
                exact: vec![value],
                ..Self::default()
            }),
            Raw::List(exact) => Ok(Self {
                exact,
                ..Self::default()
            }),
            Raw::Table(t) => Ok(Self {
                exact: t.exact,
                prefix: t.prefix,
                last: t.last,
            }),
        }
    }
}

/// A list when the rule is exact values only (the form campaign files have
/// always had), else a table.
impl Serialize for AudienceRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if self.prefix.is_empty() && self.last.is_empty() {
            return self.exact.serialize(s);
        }
        let mut map = s.serialize_map(None)?;
        for (key, values) in [
            ("exact", &self.exact),
            ("prefix", &self.prefix),
            ("last", &self.last),
        ] {
            if !values.is_empty() {
                map.serialize_entry(key, values)?;
            }
        }
        map.end()
    }
}

impl Audience {
    /// True when the person matches every `include` field (if any) and no `exclude` rule.
    pub fn matches(&self, person: &Candidate) -> bool {
        let separator = self.separator.as_deref().unwrap_or(DEFAULT_SEPARATOR);
        let listed = |field: &AudienceField, rule: &AudienceRule| {
            field
                .value_of(person)
                .is_some_and(|v| rule.matches(&v, separator))
        };
        self.include.iter().all(|(f, r)| listed(f, r))
            && !self.exclude.iter().any(|(f, r)| listed(f, r))
    }

    /// The attribute names the rules use (not roster fields).
    pub fn attributes(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .include
            .keys()
            .chain(self.exclude.keys())
            .filter_map(AudienceField::attribute)
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(department: &str, role: &str, attributes: &str) -> Candidate {
        Candidate {
            id: 1,
            department: department.into(),
            role: role.into(),
            facility: "Main".into(),
            attributes: attributes.into(),
            ..Candidate::default()
        }
    }

    fn audience(toml_text: &str) -> Audience {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn include_and_exclude_combine() {
        let a = audience(
            "include = { department = [\"Supply Chain\"] }\nexclude = { role = [\"Contractor\"] }",
        );
        assert!(a.matches(&person("supply chain", "Buyer", "{}")));
        assert!(!a.matches(&person("Supply Chain", "Contractor", "{}")));
        assert!(!a.matches(&person("Nursing", "Buyer", "{}")));
    }

    #[test]
    fn an_empty_audience_is_everyone() {
        assert!(Audience::default().matches(&person("Nursing", "RN", "{}")));
    }

    #[test]
    fn any_attribute_excludes_as_a_single_value_or_spelled_out() {
        for text in [
            "exclude = { worker_type = \"Contingent\" }",
            "exclude = { \"attributes.worker_type\" = [\"contingent\"] }",
        ] {
            let a = audience(text);
            assert!(!a.matches(&person("Ops", "Buyer", r#"{"worker_type":"Contingent"}"#)));
            assert!(a.matches(&person("Ops", "Buyer", r#"{"worker_type":"Employee"}"#)));
            assert!(
                a.matches(&person("Ops", "Buyer", "{}")),
                "no value: not excluded"
            );
        }
    }

    #[test]
    fn prefix_and_last_level_of_a_hierarchy() {
        let a = audience(
            "include = { cost_center_hierarchy = { last = [\"Supply Chain\"], prefix = [\"Mercy Valley Health > Finance\"] } }",
        );
        let at = |h: &str| person("", "", &format!(r#"{{"cost_center_hierarchy":"{h}"}}"#));
        assert!(a.matches(&at("Mercy Valley Health > Operations > Supply Chain")));
        assert!(a.matches(&at("Mercy Valley Health > Finance > Payroll")));
        assert!(!a.matches(&at("Mercy Valley Health > Supply Chain > Analytics")));
        let slash =
            audience("separator = \"/\"\ninclude = { department = { last = [\"Supply Chain\"] } }");
        assert!(slash.matches(&person("Health/Ops/Supply Chain", "", "{}")));
    }

    #[test]
    fn stored_definitions_keep_their_form() {
        let a = audience("include = { department = [\"Procurement\"] }");
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"include":{"department":["Procurement"]},"exclude":{}}"#
        );
        let back: Audience = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn field_names_that_cannot_be_a_column_are_refused() {
        let err = toml::from_str::<Audience>("include = { \"Worker Type\" = \"Employee\" }")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"worker_type\""), "{err}");
    }
}
