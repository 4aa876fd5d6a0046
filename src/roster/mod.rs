//! Staff rosters: reading HR exports as they really come (encodings,
//! delimiters, aliased headers), validating every row, and syncing the result
//! into `staff` all-or-nothing.
//!
//! Invariants: an import either writes everything it reports or nothing; a
//! person is never deleted, only deactivated; a sync that would deactivate an
//! implausible share of the roster, or an export without data rows, is refused
//! unless forced.

mod decode;
mod fields;
mod parse;
mod sync;

pub use decode::{decode, DecodeError};
pub use fields::{attribute_key, normalise_header, Field};
pub use parse::{PersonRecord, RowError};
pub use sync::{FieldChange, ImportMode};

use crate::clock::{to_millis, Clock};
use crate::config::Roster as RosterSettings;
use crate::store::roster::{self as q, ImportRecord, NewStaff, StaffChange};
use crate::store::Store;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

/// How to run one import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Which system the file comes from; a sync only touches this source.
    pub source: String,
    pub mode: ImportMode,
    pub dry_run: bool,
    pub skip_invalid: bool,
    pub force: bool,
    /// Shown in reports and recorded with the import.
    pub file_name: String,
}

/// Counts of what an import did (or, for a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deactivated: u64,
    pub reactivated: u64,
    pub rejected: u64,
}

/// One person's change, for dry-run output and the JSON report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PersonChange {
    pub action: &'static str,
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

/// The result of an import, written or not. `--format json` prints this.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportReport {
    /// True when the database was changed.
    pub applied: bool,
    pub dry_run: bool,
    pub import_id: Option<i64>,
    pub source: String,
    pub mode: ImportMode,
    pub file: String,
    pub sha256: String,
    pub encoding: String,
    pub delimiter: String,
    pub counts: Counts,
    /// Every rejected row: line, column and reason.
    pub rejected: Vec<RowError>,
    /// Why nothing was written, when the import was refused as a whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    pub changes: Vec<PersonChange>,
}

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("{}: {} row(s) rejected; nothing was imported. Fix the rows listed, or pass --skip-invalid to import the valid rows only", .0.file, .0.counts.rejected)]
    Rejected(Box<ImportReport>),
    #[error("{}: {}", .0.file, .0.refused.as_deref().unwrap_or("refused"))]
    Refused(Box<ImportReport>),
    #[error(transparent)]
    Database(#[from] anyhow::Error),
}

impl ImportError {
    /// The report behind a row-level failure, for printing.
    pub fn report(&self) -> Option<&ImportReport> {
        match self {
            ImportError::Rejected(r) | ImportError::Refused(r) => Some(r),
            _ => None,
        }
    }
}

/// Reads, validates and (unless dry-run) applies one roster file.
#[tracing::instrument(skip_all, fields(source = %options.source, file = %options.file_name))]
pub async fn import(
    store: &Store,
    clock: &dyn Clock,
    settings: &RosterSettings,
    bytes: &[u8],
    options: &ImportOptions,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<ImportReport, ImportError> {
    let unreadable = |reason: String| ImportError::Unreadable {
        file: options.file_name.clone(),
        reason,
    };
    if bytes.len() as u64 > settings.max_file_bytes {
        return Err(unreadable(format!(
            "the file is {} bytes, more than roster.max_file_bytes ({}); split it or raise the limit",
            bytes.len(),
            settings.max_file_bytes
        )));
    }
    let sha256 = hex::encode(Sha256::digest(bytes));
    let decoded = decode(bytes).map_err(|e| unreadable(e.to_string()))?;
    let total = decoded.text.len() as u64;
    let limits = parse::ParseLimits {
        max_field_length: settings.max_field_length,
    };
    let parsed = parse::parse(
        &decoded.text,
        decoded.delimiter,
        &settings.columns,
        &limits,
        &mut |done| progress(done, total),
    )
    .map_err(|e| unreadable(e.to_string()))?;
    if parsed.headers.is_empty() {
        return Err(unreadable("the file has no header row; the first line must name the columns (e.g. Email,First Name,Department)".into()));
    }

    let existing = store.staff_of_source(&options.source).await?;
    let elsewhere: HashMap<String, String> = store
        .emails_outside_source(&options.source)
        .await?
        .into_iter()
        .collect();
    let plan = sync::plan(
        &parsed.records,
        &existing,
        &elsewhere,
        &parsed.rejected_identities,
        options.mode,
    );

    let mut rejected = parsed.errors.clone();
    // The plan does not know the file's headers: name the column as the file does.
    rejected.extend(plan.conflicts.iter().map(|e| RowError {
        column: parsed.email_header.clone(),
        ..e.clone()
    }));
    rejected.sort_by_key(|e| e.line);
    let counts = Counts {
        added: plan.inserts.len() as u64,
        updated: plan.updated(),
        unchanged: plan.unchanged,
        deactivated: plan.deactivations.len() as u64,
        reactivated: plan.reactivated(),
        rejected: (parsed.data_rows - parsed.records.len() as u64) + plan.conflicts.len() as u64,
    };
    let mut report = ImportReport {
        applied: false,
        dry_run: options.dry_run,
        import_id: None,
        source: options.source.clone(),
        mode: options.mode,
        file: options.file_name.clone(),
        sha256,
        encoding: decoded.encoding.to_string(),
        delimiter: match decoded.delimiter {
            b'\t' => "tab".into(),
            d => (d as char).to_string(),
        },
        counts,
        rejected,
        refused: None,
        changes: describe(&plan),
    };
    // File-level problems (unreadable CSV) are rejections without a row count.
    if report.counts.rejected == 0 && !report.rejected.is_empty() {
        report.counts.rejected = report.rejected.len() as u64;
    }
    if report.counts.rejected > 0 && !options.skip_invalid {
        return Err(ImportError::Rejected(Box::new(report)));
    }
    if let Some(reason) = refusal(&plan, &parsed, options, settings) {
        report.refused = Some(reason);
        return Err(ImportError::Refused(Box::new(report)));
    }
    if options.dry_run {
        return Ok(report);
    }
    report.import_id = Some(apply(store, clock, &plan, &report).await?);
    report.applied = true;
    tracing::info!(counts = ?report.counts, "roster imported");
    Ok(report)
}

/// A sync that looks like a truncated export is refused unless forced.
fn refusal(
    plan: &sync::SyncPlan<'_>,
    parsed: &parse::ParsedRoster,
    options: &ImportOptions,
    settings: &RosterSettings,
) -> Option<String> {
    if options.force {
        return None;
    }
    if parsed.data_rows == 0 {
        return Some("the export has a header but no data rows; nothing was changed. If the roster really is empty, pass --force".into());
    }
    let deactivating = plan.deactivations.len() as f64;
    let active = plan.active_before as f64;
    if active > 0.0 && deactivating / active > settings.max_deactivate_share {
        return Some(format!(
            "this sync would deactivate {} of {} active people ({:.0}%), more than roster.max_deactivate_share ({:.0}%); is the export truncated? Nothing was changed. Check the file, or pass --force if the change is real",
            plan.deactivations.len(),
            plan.active_before,
            100.0 * deactivating / active,
            100.0 * settings.max_deactivate_share
        ));
    }
    None
}

/// Writes the plan in one transaction.
async fn apply(
    store: &Store,
    clock: &dyn Clock,
    plan: &sync::SyncPlan<'_>,
    report: &ImportReport,
) -> anyhow::Result<i64> {
    let now = to_millis(clock.now());
    let c = &report.counts;
    let mut tx = store.begin().await?;
    let import_id = q::insert_import(
        &mut tx,
        &ImportRecord {
            imported_at: now,
            source: &report.source,
            file_name: &report.file,
            sha256: &report.sha256,
            mode: report.mode.as_str(),
            counts: [
                c.added,
                c.updated,
                c.unchanged,
                c.deactivated,
                c.reactivated,
                c.rejected,
            ]
            .map(|n| n as i64),
        },
    )
    .await?;
    // Built a batch at a time: 100k rows of owned NewStaff would hold ~20 MB.
    for chunk in plan.inserts.chunks(1000) {
        let inserts: Vec<NewStaff<'_>> = chunk.iter().map(|r| new_staff(r)).collect();
        q::insert_staff(&mut tx, &report.source, import_id, now, &inserts).await?;
    }
    let mut history = Vec::with_capacity(plan.updates.len() + plan.deactivations.len());
    for update in &plan.updates {
        q::update_staff(&mut tx, update.staff_id, now, &new_staff(update.record)).await?;
        history.push(StaffChange {
            staff_id: update.staff_id,
            change: if update.reactivate {
                "reactivated"
            } else {
                "updated"
            },
            detail: serde_json::to_string(&update.changes).unwrap_or_default(),
        });
    }
    let gone: Vec<i64> = plan.deactivations.iter().map(|(id, _)| *id).collect();
    q::deactivate_staff(&mut tx, &gone, now).await?;
    history.extend(gone.iter().map(|&staff_id| StaffChange {
        staff_id,
        change: "deactivated",
        detail: "{}".into(),
    }));
    q::insert_changes(&mut tx, import_id, &history).await?;
    tx.commit().await?;
    Ok(import_id)
}

fn new_staff(r: &PersonRecord) -> NewStaff<'_> {
    NewStaff {
        employee_id: r.employee_id.as_deref(),
        email: r.email.as_str(),
        first_name: &r.first_name,
        last_name: &r.last_name,
        department: &r.department,
        role: &r.role,
        facility: &r.facility,
        manager_email: r.manager_email.as_ref().map(|m| m.as_str()),
        time_zone: r.time_zone.as_deref(),
        attributes: attributes_json(&r.attributes),
    }
}

fn describe(plan: &sync::SyncPlan<'_>) -> Vec<PersonChange> {
    let added = plan.inserts.iter().map(|r| PersonChange {
        action: "add",
        email: r.email.to_string(),
        line: Some(r.line),
        fields: vec![],
    });
    let updated = plan.updates.iter().map(|u| PersonChange {
        action: if u.reactivate { "reactivate" } else { "update" },
        email: u.record.email.to_string(),
        line: Some(u.record.line),
        fields: u.changes.clone(),
    });
    let gone = plan.deactivations.iter().map(|(_, email)| PersonChange {
        action: "deactivate",
        email: email.clone(),
        line: None,
        fields: vec![],
    });
    added.chain(updated).chain(gone).collect()
}

/// Attributes as stored: a JSON object with sorted keys, so equal maps compare equal as text.
pub(crate) fn attributes_json(attributes: &BTreeMap<String, String>) -> String {
    serde_json::to_string(attributes).unwrap_or_else(|_| "{}".into())
}
