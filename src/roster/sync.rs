//! Compares roster rows with what the database holds for their source and
//! decides, person by person, what an import would do. Pure: no I/O, so the
//! dry run and the real run share every decision.

use super::parse::PersonRecord;
use crate::store::roster::StoredPerson;
use std::collections::{HashMap, HashSet};

/// Whether absent people are deactivated.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum ImportMode {
    /// The file is the whole truth for its source: absent people are deactivated.
    Sync,
    /// Only add and update; nobody is deactivated.
    Add,
}

impl ImportMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportMode::Sync => "sync",
            ImportMode::Add => "add",
        }
    }
}

/// The upload form's and the API's `mode`, parsed once where it arrives.
impl std::str::FromStr for ImportMode {
    type Err = crate::store::StateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sync" => Ok(ImportMode::Sync),
            "add" => Ok(ImportMode::Add),
            _ => Err(crate::store::StateError {
                what: "import mode",
                value: s.to_string(),
                expected: "sync, add",
            }),
        }
    }
}

/// One field that an update changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub from: String,
    pub to: String,
}

/// What an import does with one valid row.
#[derive(Debug)]
pub enum Decision {
    Insert,
    Update {
        staff_id: i64,
        changes: Vec<FieldChange>,
        reactivate: bool,
    },
    Unchanged,
    /// The database refuses the row (an address owned by someone else).
    Conflict(String),
}

/// Matches rows to the people already imported from the same source
/// (employee id first, then email), one row at a time.
pub struct Planner<'e> {
    existing: &'e [StoredPerson],
    by_id: HashMap<&'e str, usize>,
    by_email: HashMap<&'e str, usize>,
    emails_elsewhere: &'e HashMap<String, String>,
    matched: Vec<bool>,
    mode: ImportMode,
}

impl<'e> Planner<'e> {
    pub fn new(
        existing: &'e [StoredPerson],
        emails_elsewhere: &'e HashMap<String, String>,
        mode: ImportMode,
    ) -> Self {
        Self {
            by_id: existing
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.employee_id.as_deref().map(|id| (id, i)))
                .collect(),
            by_email: existing
                .iter()
                .enumerate()
                .map(|(i, s)| (&*s.email, i))
                .collect(),
            matched: vec![false; existing.len()],
            existing,
            emails_elsewhere,
            mode,
        }
    }

    /// Active people before the import: the base of the mass-deactivation check.
    pub fn active_before(&self) -> u64 {
        self.existing.iter().filter(|s| s.active).count() as u64
    }

    pub fn decide(&mut self, record: &PersonRecord) -> Decision {
        let email = record.email.as_str();
        if let Some(owner) = self.emails_elsewhere.get(email) {
            return Decision::Conflict(format!("{email} already belongs to a person imported from source {owner:?}; remove them there first or import this file with --source {owner}"));
        }
        let existing = self.existing;
        let holder = self.by_email.get(email).copied();
        let found = match record.employee_id() {
            Some(id) => self
                .by_id
                .get(id)
                .copied()
                .or_else(|| holder.filter(|&i| existing[i].employee_id.is_none())),
            None => holder,
        };
        let Some(index) = found else {
            return match holder {
                Some(holder) => {
                    let other = existing[holder].employee_id.as_deref().unwrap_or("?");
                    Decision::Conflict(format!("{email} belongs to employee id {other:?} in the roster; if the address was reassigned, import once without this row so that person is deactivated, then again with it"))
                }
                None => Decision::Insert,
            };
        };
        if let Some(holder) = holder.filter(|&h| h != index) {
            return Decision::Conflict(format!(
                "{email} already belongs to another person in the roster (employee id {:?})",
                existing[holder].employee_id.as_deref().unwrap_or("")
            ));
        }
        self.matched[index] = true;
        let current = &existing[index];
        let changes = diff(current, record);
        let reactivate = !current.active;
        if changes.is_empty() && !reactivate {
            Decision::Unchanged
        } else {
            Decision::Update {
                staff_id: current.id,
                changes,
                reactivate,
            }
        }
    }

    /// In sync mode, the active people no row matched, except those named by
    /// a rejected row (`spared`: employee ids and lower-cased emails).
    pub fn deactivations(&self, spared: &HashSet<String>) -> Vec<(i64, String)> {
        if self.mode != ImportMode::Sync {
            return Vec::new();
        }
        self.existing
            .iter()
            .zip(&self.matched)
            .filter(|(s, matched)| !**matched && s.active)
            .filter(|(s, _)| {
                !spared.contains(&*s.email)
                    && !s
                        .employee_id
                        .as_deref()
                        .is_some_and(|id| spared.contains(id))
            })
            .map(|(s, _)| (s.id, s.email.to_string()))
            .collect()
    }
}

/// Fields whose stored value differs from the file's.
fn diff(current: &StoredPerson, record: &PersonRecord) -> Vec<FieldChange> {
    let identity = [
        (
            "employee_id",
            current.employee_id.as_deref().unwrap_or(""),
            record.employee_id().unwrap_or(""),
        ),
        ("email", &*current.email, record.email.as_str()),
    ];
    let same_fields = *current.fields == *record.compared_fields();
    let stored = current.fields.split(StoredPerson::SEPARATOR);
    let incoming = record.compared_fields().split(StoredPerson::SEPARATOR);
    let others = StoredPerson::FIELDS
        .iter()
        .zip(stored.chain(std::iter::repeat("")))
        .zip(incoming)
        .map(|((&field, from), to)| (field, from, to))
        .filter(|_| !same_fields);
    identity
        .into_iter()
        .chain(others)
        .filter(|(_, from, to)| from != to)
        .map(|(field, from, to)| FieldChange {
            field,
            from: from.to_string(),
            to: to.to_string(),
        })
        .collect()
}
