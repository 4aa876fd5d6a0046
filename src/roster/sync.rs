//! Compares a parsed roster with what the database holds for its source and
//! decides, person by person, what an import would do. Pure: no I/O, so the
//! dry run and the real run share every decision.

use super::parse::{PersonRecord, RowError};
use crate::store::roster::StaffRow;
use std::collections::{HashMap, HashSet};

/// Whether absent people are deactivated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
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

/// One field that an update changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub from: String,
    pub to: String,
}

/// An existing person the file changes or brings back.
#[derive(Debug, Clone)]
pub struct Update<'a> {
    pub staff_id: i64,
    pub record: &'a PersonRecord,
    pub changes: Vec<FieldChange>,
    pub reactivate: bool,
}

/// Everything an import would do.
#[derive(Debug, Default)]
pub struct SyncPlan<'a> {
    pub inserts: Vec<&'a PersonRecord>,
    pub updates: Vec<Update<'a>>,
    pub deactivations: Vec<(i64, String)>,
    pub unchanged: u64,
    /// Rows the database refuses (an address owned by someone else).
    pub conflicts: Vec<RowError>,
    pub active_before: u64,
}

impl SyncPlan<'_> {
    pub fn updated(&self) -> u64 {
        self.updates.iter().filter(|u| !u.reactivate).count() as u64
    }
    pub fn reactivated(&self) -> u64 {
        self.updates.iter().filter(|u| u.reactivate).count() as u64
    }
}

/// Matches records to existing people (employee id first, then email).
pub fn plan<'a>(
    records: &'a [PersonRecord],
    existing: &[StaffRow],
    emails_elsewhere: &HashMap<String, String>,
    rejected_identities: &[String],
    mode: ImportMode,
) -> SyncPlan<'a> {
    let by_id: HashMap<&str, usize> = existing
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.employee_id.as_deref().map(|id| (id, i)))
        .collect();
    let by_email: HashMap<&str, usize> = existing
        .iter()
        .enumerate()
        .map(|(i, s)| (s.email.as_str(), i))
        .collect();
    let mut matched = vec![false; existing.len()];
    let mut plan = SyncPlan {
        active_before: existing.iter().filter(|s| s.active == 1).count() as u64,
        ..SyncPlan::default()
    };
    for record in records {
        let email = record.email.as_str();
        if let Some(owner) = emails_elsewhere.get(email) {
            plan.conflicts.push(conflict(record, format!("{email} already belongs to a person imported from source {owner:?}; remove them there first or import this file with --source {owner}")));
            continue;
        }
        let found = match &record.employee_id {
            Some(id) => by_id.get(id.as_str()).copied().or_else(|| {
                by_email
                    .get(email)
                    .copied()
                    .filter(|&i| existing[i].employee_id.is_none())
            }),
            None => by_email.get(email).copied(),
        };
        let Some(index) = found else {
            if let Some(&holder) = by_email.get(email) {
                let other = existing[holder].employee_id.as_deref().unwrap_or("?");
                plan.conflicts.push(conflict(record, format!("{email} belongs to employee id {other:?} in the roster; if the address was reassigned, import once without this row so that person is deactivated, then again with it")));
            } else {
                plan.inserts.push(record);
            }
            continue;
        };
        let current = &existing[index];
        if let Some(&holder) = by_email.get(email) {
            if holder != index {
                plan.conflicts.push(conflict(record, format!("{email} already belongs to another person in the roster (employee id {:?})", existing[holder].employee_id.as_deref().unwrap_or(""))));
                continue;
            }
        }
        matched[index] = true;
        let changes = diff(current, record);
        let reactivate = current.active != 1;
        if changes.is_empty() && !reactivate {
            plan.unchanged += 1;
        } else {
            plan.updates.push(Update {
                staff_id: current.id,
                record,
                changes,
                reactivate,
            });
        }
    }
    if mode == ImportMode::Sync {
        let spared: HashSet<&str> = rejected_identities.iter().map(String::as_str).collect();
        for (staff, _) in existing
            .iter()
            .zip(&matched)
            .filter(|(s, m)| !**m && s.active == 1)
        {
            let named = spared.contains(staff.email.as_str())
                || staff
                    .employee_id
                    .as_deref()
                    .is_some_and(|id| spared.contains(id));
            if !named {
                plan.deactivations.push((staff.id, staff.email.clone()));
            }
        }
    }
    plan
}

fn conflict(record: &PersonRecord, reason: String) -> RowError {
    RowError {
        line: record.line,
        column: "email".into(),
        reason,
    }
}

/// Fields whose stored value differs from the file's.
fn diff(current: &StaffRow, record: &PersonRecord) -> Vec<FieldChange> {
    let attributes = super::attributes_json(&record.attributes);
    let pairs: [(&'static str, &str, &str); 10] = [
        (
            "employee_id",
            current.employee_id.as_deref().unwrap_or(""),
            record.employee_id.as_deref().unwrap_or(""),
        ),
        ("email", &current.email, record.email.as_str()),
        ("first_name", &current.first_name, &record.first_name),
        ("last_name", &current.last_name, &record.last_name),
        ("department", &current.department, &record.department),
        ("role", &current.role, &record.role),
        ("facility", &current.facility, &record.facility),
        (
            "manager_email",
            current.manager_email.as_deref().unwrap_or(""),
            record.manager_email.as_ref().map_or("", |m| m.as_str()),
        ),
        (
            "time_zone",
            current.time_zone.as_deref().unwrap_or(""),
            record.time_zone.as_deref().unwrap_or(""),
        ),
        ("attributes", &current.attributes, &attributes),
    ];
    pairs
        .into_iter()
        .filter(|(_, from, to)| from != to)
        .map(|(field, from, to)| FieldChange {
            field,
            from: from.to_string(),
            to: to.to_string(),
        })
        .collect()
}
