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
mod settings;
mod sync;

pub use decode::{decode, DecodeError};
pub use fields::{
    attribute_key, check_header_shape, normalise_header, Field, HeaderError, MAX_HEADER_CHARS,
};
pub use parse::{
    column_label, line_of, HeaderRowError, ParseLimits, PersonRecord, RosterReader, Row, RowError,
};
pub use settings::RosterSettings;
pub use sync::{FieldChange, ImportMode};

use crate::clock::{to_millis, Clock};
use crate::problem::{kind_of, Kind};
use crate::store::roster::{self as q, ImportRecord, NewStaff, StaffChange, StoredPerson};
use crate::store::Store;
use sha2::{Digest, Sha256};
use sqlx::{Any, Transaction};
use std::collections::{HashMap, HashSet};
use sync::{Decision, Planner};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How to run one import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Which system the file comes from; a sync only touches this source.
    pub source: crate::store::RosterSource,
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
    /// Set when `rejected` and `changes` list at most this many entries of
    /// each kind (adds, updates, deactivations); `counts` has the totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listed_at_most: Option<usize>,
}

/// How much of an import a report lists: the CLI shows every row; the HTTP
/// side, which holds the whole answer in memory, the first few.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Every,
    First(usize),
}

impl Listing {
    fn has_room(self, listed: usize) -> bool {
        match self {
            Listing::Every => true,
            Listing::First(n) => listed < n,
        }
    }

    fn at_most(self) -> Option<usize> {
        match self {
            Listing::Every => None,
            Listing::First(n) => Some(n),
        }
    }
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
    /// A file that cannot be read, rejected rows and a refused sync are the
    /// caller's to fix; a database failure is ours.
    pub fn kind(&self) -> Kind {
        match self {
            ImportError::Unreadable { .. } | ImportError::Rejected(_) | ImportError::Refused(_) => {
                Kind::Invalid
            }
            ImportError::Database(e) => kind_of(e),
        }
    }

    /// The report behind a row-level failure, for printing.
    pub fn report(&self) -> Option<&ImportReport> {
        match self {
            ImportError::Rejected(r) | ImportError::Refused(r) => Some(r),
            _ => None,
        }
    }
}

/// Rows handed to the writer at a time: large enough that a statement's
/// fixed cost vanishes, small enough that little is held in memory.
const BATCH_ROWS: usize = 3000;

/// The first batch is smaller, so the database starts working sooner: the
/// writer is otherwise idle while the first full batch is parsed.
const FIRST_BATCH_ROWS: usize = 500;

/// Rows read ahead while the stored roster loads: enough to cover the load
/// of 100,000 people, few enough (a few MB) to leave memory bounded.
const EARLY_ROWS: usize = 25_000;

/// The source's people and the addresses other sources own.
async fn stored_people(
    store: Store,
    source: String,
) -> anyhow::Result<(Vec<StoredPerson>, HashMap<String, String>)> {
    let existing = store.stored_people(&source).await?;
    let elsewhere = store
        .emails_outside_source(&source)
        .await?
        .into_iter()
        .collect();
    Ok((existing, elsewhere))
}

/// Reads, validates and (unless dry-run) applies one roster file.
///
/// Rows stream from the reader through the planner to a writer task that
/// inserts them inside one transaction while the next rows are parsed; the
/// transaction commits only when the whole file was read, every row was
/// valid (or `skip_invalid`) and the sync is not refused. Otherwise it rolls
/// back and nothing was written.
pub async fn import(
    store: &Store,
    clock: &dyn Clock,
    settings: &RosterSettings,
    bytes: &[u8],
    options: &ImportOptions,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<ImportReport, ImportError> {
    import_listing(
        store,
        clock,
        settings,
        bytes,
        options,
        Listing::Every,
        progress,
    )
    .await
}

/// [`import`], with a report that lists only what `listing` allows.
#[tracing::instrument(skip_all, fields(source = %options.source, file = %options.file_name))]
pub async fn import_listing(
    store: &Store,
    clock: &dyn Clock,
    settings: &RosterSettings,
    bytes: &[u8],
    options: &ImportOptions,
    listing: Listing,
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
    // Reading starts: a caller that maps the file may drop the pages the
    // checks above went through (see http::spool).
    progress(0, total);
    let limits = ParseLimits {
        max_field_length: settings.max_field_length,
        max_columns: settings.max_columns,
    };
    let mut reader =
        RosterReader::open(&decoded.text, decoded.delimiter, &settings.columns, limits)
            .map_err(|e| unreadable(format!("{e} (read as {})", decoded.encoding)))?;

    // The people already stored load while the first rows are read.
    let loading = tokio::spawn(stored_people(store.clone(), options.source.to_string()));
    let mut early = Vec::new();
    while !loading.is_finished() && early.len() < EARLY_ROWS {
        match reader.next_row() {
            Some(row) => early.push(row),
            None => break,
        }
    }
    let (existing, elsewhere) = loading
        .await
        .map_err(|e| anyhow::anyhow!("loading the stored roster stopped: {e}"))??;
    let mut early = early.into_iter();
    let mut planner = Planner::new(&existing, &elsewhere, options.mode);
    let now = to_millis(clock.now());
    let mut report = ImportReport {
        applied: false,
        dry_run: options.dry_run,
        import_id: None,
        source: options.source.to_string(),
        mode: options.mode,
        file: options.file_name.clone(),
        sha256,
        encoding: decoded.encoding.to_string(),
        delimiter: match decoded.delimiter {
            b'\t' => "tab".into(),
            d => (d as char).to_string(),
        },
        counts: Counts::default(),
        rejected: Vec::new(),
        refused: None,
        changes: Vec::new(),
        listed_at_most: listing.at_most(),
    };
    let mut updated_changes = Vec::new();
    let mut spared: HashSet<String> = HashSet::new();
    let mut writer: Option<Writer> = None;
    let mut batch = Batch::default();
    while let Some(row) = early.next().or_else(|| reader.next_row()) {
        if reader.data_rows() % 1024 == 0 {
            progress(reader.position(), total);
        }
        let record = match row {
            Row::Valid(record) => record,
            Row::Invalid { errors, identities } => {
                report.counts.rejected += 1;
                let room = listing
                    .at_most()
                    .map_or(usize::MAX, |n| n.saturating_sub(report.rejected.len()));
                report.rejected.extend(errors.into_iter().take(room));
                spared.extend(identities);
                continue;
            }
        };
        match planner.decide(&record) {
            Decision::Conflict(reason) => {
                report.counts.rejected += 1;
                if listing.has_room(report.rejected.len()) {
                    report.rejected.push(RowError {
                        line: record.line,
                        column: reader.email_header().to_string(),
                        reason,
                    });
                }
            }
            Decision::Unchanged => report.counts.unchanged += 1,
            Decision::Insert => {
                report.counts.added += 1;
                if listing.has_room(report.changes.len()) {
                    report.changes.push(PersonChange {
                        action: "add",
                        email: record.email.to_string(),
                        line: Some(record.line),
                        fields: vec![],
                    });
                }
                batch.inserts.push(record);
            }
            Decision::Update {
                staff_id,
                changes,
                reactivate,
            } => {
                if reactivate {
                    report.counts.reactivated += 1;
                } else {
                    report.counts.updated += 1;
                }
                let detail = serde_json::to_string(&changes).unwrap_or_default();
                if listing.has_room(updated_changes.len()) {
                    updated_changes.push(PersonChange {
                        action: if reactivate { "reactivate" } else { "update" },
                        email: record.email.to_string(),
                        line: Some(record.line),
                        fields: changes,
                    });
                }
                batch.updates.push(PendingUpdate {
                    staff_id,
                    record,
                    reactivate,
                    detail,
                });
            }
        }
        let batch_rows = if writer.is_none() {
            FIRST_BATCH_ROWS
        } else {
            BATCH_ROWS
        };
        if batch.len() >= batch_rows {
            let full = std::mem::take(&mut batch);
            // Once a row is rejected an all-or-nothing import will not
            // commit: keep reading to report every problem, stop writing.
            let may_commit = report.counts.rejected == 0 || options.skip_invalid;
            if !options.dry_run && may_commit {
                Writer::send(&mut writer, store, &report, now, full).await?;
            }
        }
    }
    progress(total, total);

    let gone = planner.deactivations(&spared);
    report.counts.deactivated = gone.len() as u64;
    report.changes.append(&mut updated_changes);
    let room = listing.at_most().unwrap_or(usize::MAX);
    report
        .changes
        .extend(gone.iter().take(room).map(|(_, email)| PersonChange {
            action: "deactivate",
            email: email.clone(),
            line: None,
            fields: vec![],
        }));
    report.rejected.sort_by_key(|e| e.line);
    let failure: Option<fn(Box<ImportReport>) -> ImportError> =
        if report.counts.rejected > 0 && !options.skip_invalid {
            Some(ImportError::Rejected)
        } else if let Some(reason) = refusal(
            gone.len() as u64,
            planner.active_before(),
            reader.data_rows(),
            options,
            settings,
        ) {
            report.refused = Some(reason);
            Some(ImportError::Refused)
        } else {
            None
        };
    if let Some(failure) = failure {
        if let Some(writer) = writer {
            writer.abandon().await;
        }
        return Err(failure(Box::new(report)));
    }
    if options.dry_run {
        return Ok(report);
    }
    if !batch.is_empty() {
        Writer::send(&mut writer, store, &report, now, batch).await?;
    }
    let writer = match writer {
        Some(writer) => writer,
        None => Writer::start(store, &report, now).await?,
    };
    let (import_id, restore) = (writer.import_id, writer.restore);
    let mut tx = writer.finish().await?;
    let ids: Vec<i64> = gone.iter().map(|(id, _)| *id).collect();
    q::deactivate_staff(&mut tx, &ids, now).await?;
    let history: Vec<StaffChange> = ids
        .iter()
        .map(|&staff_id| StaffChange {
            staff_id,
            change: "deactivated",
            detail: "{}".into(),
        })
        .collect();
    q::insert_changes(&mut tx, import_id, &history).await?;
    let c = &report.counts;
    let counts = [
        c.added,
        c.updated,
        c.unchanged,
        c.deactivated,
        c.reactivated,
        c.rejected,
    ]
    .map(|n| n as i64);
    q::set_import_counts(&mut tx, import_id, counts).await?;
    q::restore_after_bulk_write(&mut tx, restore).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    report.import_id = Some(import_id);
    report.applied = true;
    tracing::info!(counts = ?report.counts, "roster imported");
    Ok(report)
}

/// A sync that looks like a truncated export is refused unless forced.
fn refusal(
    deactivating: u64,
    active_before: u64,
    data_rows: u64,
    options: &ImportOptions,
    settings: &RosterSettings,
) -> Option<String> {
    if options.force {
        return None;
    }
    if data_rows == 0 {
        return Some("the export has a header but no data rows; nothing was changed. If the roster really is empty, pass --force".into());
    }
    let share = deactivating as f64 / active_before.max(1) as f64;
    if active_before > 0 && share > settings.max_deactivate_share {
        return Some(format!(
            "this sync would deactivate {deactivating} of {active_before} active people ({:.0}%), more than roster.max_deactivate_share ({:.0}%); is the export truncated? Nothing was changed. Check the file, or pass --force if the change is real",
            100.0 * share,
            100.0 * settings.max_deactivate_share
        ));
    }
    None
}

/// An update on its way to the database.
struct PendingUpdate {
    staff_id: i64,
    record: PersonRecord,
    reactivate: bool,
    /// The changed fields as JSON, for the history.
    detail: String,
}

/// Rows the writer applies together.
#[derive(Default)]
struct Batch {
    inserts: Vec<PersonRecord>,
    updates: Vec<PendingUpdate>,
}

impl Batch {
    fn len(&self) -> usize {
        self.inserts.len() + self.updates.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A batch as the writer takes it: the new people already bound.
struct BoundBatch {
    inserts: q::BoundStaffInsert,
    updates: Vec<PendingUpdate>,
}

/// The import's transaction, owned by a task that writes each batch while
/// the caller parses the next one (on SQLite the statements run on the
/// driver's own thread, so reading and writing use both cores).
struct Writer {
    import_id: i64,
    /// The connection settings to put back before the transaction ends.
    restore: q::BulkWriteRestore,
    batches: mpsc::Sender<BoundBatch>,
    task: JoinHandle<anyhow::Result<Transaction<'static, Any>>>,
}

impl Writer {
    /// Opens the transaction and records the import (its counts come last).
    async fn start(store: &Store, report: &ImportReport, now: i64) -> anyhow::Result<Self> {
        let mut tx = store.begin().await?;
        let restore = q::tune_for_bulk_write(&mut tx).await?;
        let import_id = q::insert_import(
            &mut tx,
            &ImportRecord {
                imported_at: now,
                source: &report.source,
                file_name: &report.file,
                sha256: &report.sha256,
                mode: report.mode.as_str(),
            },
        )
        .await?;
        let (batches, mut incoming) = mpsc::channel::<BoundBatch>(2);
        let task = tokio::spawn(async move {
            while let Some(batch) = incoming.recv().await {
                write_batch(&mut tx, import_id, now, batch).await?;
            }
            Ok(tx)
        });
        Ok(Self {
            import_id,
            restore,
            batches,
            task,
        })
    }

    /// Hands a batch to the writer, starting it on first use.
    async fn send(
        writer: &mut Option<Writer>,
        store: &Store,
        report: &ImportReport,
        now: i64,
        batch: Batch,
    ) -> anyhow::Result<()> {
        let active = match writer {
            Some(active) => active,
            None => writer.insert(Writer::start(store, report, now).await?),
        };
        let people: Vec<NewStaff<'_>> = batch.inserts.iter().map(new_staff).collect();
        let inserts = q::BoundStaffInsert::bind(
            store.numbered(),
            &report.source,
            active.import_id,
            now,
            &people,
        )?;
        let bound = BoundBatch {
            inserts,
            updates: batch.updates,
        };
        // A closed channel means the writer failed; `finish` reports why.
        let _ = active.batches.send(bound).await;
        Ok(())
    }

    /// Waits for every batch to be written; the transaction is still open.
    async fn finish(self) -> anyhow::Result<Transaction<'static, Any>> {
        drop(self.batches);
        self.task
            .await
            .map_err(|e| anyhow::anyhow!("the roster writer stopped: {e}"))?
    }

    /// Rolls everything back.
    async fn abandon(self) {
        let restore = self.restore;
        let Ok(mut tx) = self.finish().await else {
            return; // the failed writer's transaction was dropped: rolled back
        };
        let undone = async {
            q::restore_after_bulk_write(&mut tx, restore).await?;
            tx.rollback().await?;
            anyhow::Ok(())
        };
        if let Err(e) = undone.await {
            tracing::warn!(error = %e, "rolling back a refused roster import failed");
        }
    }
}

async fn write_batch(
    tx: &mut Transaction<'static, Any>,
    import_id: i64,
    now: i64,
    batch: BoundBatch,
) -> anyhow::Result<()> {
    batch.inserts.execute(tx).await?;
    let mut history = Vec::with_capacity(batch.updates.len());
    for update in &batch.updates {
        q::update_staff(tx, update.staff_id, now, &new_staff(&update.record)).await?;
        history.push(StaffChange {
            staff_id: update.staff_id,
            change: if update.reactivate {
                "reactivated"
            } else {
                "updated"
            },
            detail: update.detail.clone(),
        });
    }
    q::insert_changes(tx, import_id, &history).await
}

fn new_staff(r: &PersonRecord) -> NewStaff<'_> {
    NewStaff {
        employee_id: r.employee_id(),
        email: r.email.as_str(),
        first_name: r.first_name(),
        last_name: r.last_name(),
        department: r.department(),
        role: r.role(),
        facility: r.facility(),
        manager_email: r.manager_email(),
        time_zone: r.time_zone(),
        attributes: r.attributes(),
    }
}
