//! One roster import, in named steps: check and decode the file, load the
//! stored roster while the first rows are read, decide each row, then refuse
//! (rolling back what was written) or commit.

use super::decode::{decode, DecodedText};
use super::parse::{ParseLimits, PersonRecord, RosterReader, Row, RowError};
use super::sync::{Decision, FieldChange, Planner};
use super::writer::{Batch, PendingUpdate, Writer};
use super::{
    Counts, ImportError, ImportOptions, ImportReport, Listing, PersonChange, RosterSettings,
};
use crate::clock::{from_millis, to_millis, Clock};
use crate::store::roster::{self as q, StaffChange, StoredPerson, SupersededImport};
use crate::store::Store;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// Rows handed to the writer at a time: large enough that a statement's
/// fixed cost vanishes, small enough that little is held in memory.
const BATCH_ROWS: usize = 3000;

/// The first batch is smaller, so the database starts working sooner: the
/// writer is otherwise idle while the first full batch is parsed.
const FIRST_BATCH_ROWS: usize = 500;

/// Rows read ahead while the stored roster loads: enough to cover the load
/// of 100,000 people, few enough (a few MB) to leave memory bounded.
const EARLY_ROWS: usize = 25_000;

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
    let (decoded, sha256) = check_and_decode(settings, bytes, options)?;
    let total = decoded.text.len() as u64;
    // Reading starts: a caller that maps the file may drop the pages the
    // checks above went through (see http::spool).
    progress(0, total);
    let mut reader = open_reader(&decoded, settings, options)?;
    let source = options.source.to_string();
    // Going back to an earlier file is allowed with --force: no need to look.
    let superseded = if options.force {
        None
    } else {
        store.superseded_import(&source, &sha256).await?
    };
    let (stored, early) = load_while_reading(store, &source, &mut reader).await?;
    let mut report = empty_report(&decoded, sha256, options, listing);
    report.columns = reader.mapping();
    let now = to_millis(clock.now());
    let mut run = Run::new(store, options, listing, &stored, report, now);
    let mut early = early.into_iter();
    while let Some(row) = early.next().or_else(|| reader.next_row()) {
        if reader.data_rows() % 1024 == 0 {
            progress(reader.position(), total);
        }
        run.take(row, reader.email_header());
        run.warn(reader.take_warnings());
        run.write_if_full().await?;
    }
    progress(total, total);
    let gone = run.list_deactivations();
    let deactivating = gone.len() as u64;
    if let Some(failure) = run.failure(deactivating, reader.data_rows(), superseded, settings) {
        return Err(run.abandon(failure).await);
    }
    if options.dry_run {
        return Ok(run.report);
    }
    run.commit(&gone).await
}

/// The size check, the file's hash and its text.
fn check_and_decode<'b>(
    settings: &RosterSettings,
    bytes: &'b [u8],
    options: &ImportOptions,
) -> Result<(DecodedText<'b>, String), ImportError> {
    if bytes.len() as u64 > settings.max_file_bytes {
        return Err(unreadable(options, format!(
            "the file is {} bytes, more than roster.max_file_bytes ({}); split it or raise the limit",
            bytes.len(),
            settings.max_file_bytes
        )));
    }
    let sha256 = hex::encode(Sha256::digest(bytes));
    let decoded = decode(bytes).map_err(|e| unreadable(options, e.to_string()))?;
    Ok((decoded, sha256))
}

/// A reader past the header row, its columns mapped.
fn open_reader<'t>(
    decoded: &'t DecodedText<'_>,
    settings: &RosterSettings,
    options: &ImportOptions,
) -> Result<RosterReader<'t>, ImportError> {
    let limits = ParseLimits {
        max_field_length: settings.max_field_length,
        max_columns: settings.max_columns,
    };
    RosterReader::open(&decoded.text, decoded.delimiter, &settings.columns, limits)
        .map_err(|e| unreadable(options, format!("{e} (read as {})", decoded.encoding)))
}

fn unreadable(options: &ImportOptions, reason: String) -> ImportError {
    ImportError::Unreadable {
        file: options.file_name.clone(),
        reason,
    }
}

/// The people of this source, and the addresses other sources own.
struct Stored {
    people: Vec<StoredPerson>,
    elsewhere: HashMap<String, String>,
}

/// Loads the stored roster in a task while the first rows are read, so
/// neither waits for the other; the rows read meanwhile are returned.
async fn load_while_reading(
    store: &Store,
    source: &str,
    reader: &mut RosterReader<'_>,
) -> Result<(Stored, Vec<Row>), ImportError> {
    let loading = tokio::spawn(stored_people(store.clone(), source.to_string()));
    let mut early = Vec::new();
    while !loading.is_finished() && early.len() < EARLY_ROWS {
        match reader.next_row() {
            Some(row) => early.push(row),
            None => break,
        }
    }
    let stored = loading
        .await
        .map_err(|e| anyhow::anyhow!("loading the stored roster stopped: {e}"))??;
    Ok((stored, early))
}

async fn stored_people(store: Store, source: String) -> anyhow::Result<Stored> {
    let people = store.stored_people(&source).await?;
    let elsewhere = store
        .emails_outside_source(&source)
        .await?
        .into_iter()
        .collect();
    Ok(Stored { people, elsewhere })
}

/// The report before any row was read.
fn empty_report(
    decoded: &DecodedText<'_>,
    sha256: String,
    options: &ImportOptions,
    listing: Listing,
) -> ImportReport {
    ImportReport {
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
        columns: Vec::new(),
        rejected: Vec::new(),
        warnings: Vec::new(),
        refused: None,
        changes: Vec::new(),
        listed_at_most: listing.at_most(),
    }
}

/// How a failed import ends: its report wrapped as the error.
type Failure = fn(Box<ImportReport>) -> ImportError;

/// An import under way: the decisions so far, the batch being filled and
/// the writer that holds the transaction (once the first batch was sent).
struct Run<'a> {
    store: &'a Store,
    options: &'a ImportOptions,
    listing: Listing,
    planner: Planner<'a>,
    report: ImportReport,
    /// Updates and reactivations, listed after the adds.
    updated_changes: Vec<PersonChange>,
    /// Identities named by rejected rows: never deactivated.
    spared: HashSet<String>,
    writer: Option<Writer>,
    batch: Batch,
    now: i64,
}

impl<'a> Run<'a> {
    fn new(
        store: &'a Store,
        options: &'a ImportOptions,
        listing: Listing,
        stored: &'a Stored,
        report: ImportReport,
        now: i64,
    ) -> Self {
        Self {
            store,
            options,
            listing,
            planner: Planner::new(&stored.people, &stored.elsewhere, options.mode),
            report,
            updated_changes: Vec::new(),
            spared: HashSet::new(),
            writer: None,
            batch: Batch::default(),
            now,
        }
    }

    /// Counts and lists one row, and queues what it writes.
    fn take(&mut self, row: Row, email_header: &str) {
        match row {
            Row::Valid(record) => {
                let decision = self.planner.decide(&record);
                self.decided(record, decision, email_header);
            }
            Row::Invalid { errors, identities } => {
                self.report.counts.rejected += 1;
                let room = self
                    .listing
                    .at_most()
                    .map_or(usize::MAX, |n| n.saturating_sub(self.report.rejected.len()));
                self.report.rejected.extend(errors.into_iter().take(room));
                self.spared.extend(identities);
            }
        }
    }

    fn decided(&mut self, record: PersonRecord, decision: Decision, email_header: &str) {
        match decision {
            Decision::Conflict(reason) => {
                self.report.counts.rejected += 1;
                if self.listing.has_room(self.report.rejected.len()) {
                    self.report.rejected.push(RowError {
                        line: record.line,
                        column: email_header.to_string(),
                        reason,
                    });
                }
            }
            Decision::Unchanged => self.report.counts.unchanged += 1,
            Decision::Insert => {
                self.report.counts.added += 1;
                if self.listing.has_room(self.report.changes.len()) {
                    self.report.changes.push(change("add", &record, Vec::new()));
                }
                self.batch.inserts.push(record);
            }
            Decision::Update {
                staff_id,
                changes,
                reactivate,
            } => self.update(record, staff_id, changes, reactivate),
        }
    }

    fn update(
        &mut self,
        record: PersonRecord,
        staff_id: i64,
        changes: Vec<FieldChange>,
        reactivate: bool,
    ) {
        let counts = &mut self.report.counts;
        if reactivate {
            counts.reactivated += 1;
        } else {
            counts.updated += 1;
        }
        let detail = serde_json::to_string(&changes).unwrap_or_default();
        if self.listing.has_room(self.updated_changes.len()) {
            let action = if reactivate { "reactivate" } else { "update" };
            self.updated_changes.push(change(action, &record, changes));
        }
        self.batch.updates.push(PendingUpdate {
            staff_id,
            record,
            reactivate,
            detail,
        });
    }

    /// Keeps warnings, as many as the listing allows.
    fn warn(&mut self, warnings: Vec<RowError>) {
        for warning in warnings {
            if self.listing.has_room(self.report.warnings.len()) {
                self.report.warnings.push(warning);
            }
        }
    }

    /// Sends the batch to the writer once it is full, unless nothing will
    /// be committed anyway.
    async fn write_if_full(&mut self) -> Result<(), ImportError> {
        let batch_rows = if self.writer.is_none() {
            FIRST_BATCH_ROWS
        } else {
            BATCH_ROWS
        };
        if self.batch.len() < batch_rows {
            return Ok(());
        }
        let full = std::mem::take(&mut self.batch);
        // Once a row is rejected an all-or-nothing import will not
        // commit: keep reading to report every problem, stop writing.
        let may_commit = self.report.counts.rejected == 0 || self.options.skip_invalid;
        if !self.options.dry_run && may_commit {
            Writer::send(&mut self.writer, self.store, &self.report, self.now, full).await?;
        }
        Ok(())
    }

    /// The people a sync deactivates, counted and listed after the updates.
    fn list_deactivations(&mut self) -> Vec<(i64, String)> {
        let gone = self.planner.deactivations(&self.spared);
        self.report.counts.deactivated = gone.len() as u64;
        self.report.changes.append(&mut self.updated_changes);
        let room = self.listing.at_most().unwrap_or(usize::MAX);
        self.report
            .changes
            .extend(gone.iter().take(room).map(|(_, email)| PersonChange {
                action: "deactivate",
                email: email.clone(),
                line: None,
                fields: vec![],
            }));
        self.report.rejected.sort_by_key(|e| e.line);
        gone
    }

    /// Why the import must write nothing, if it must.
    fn failure(
        &mut self,
        deactivating: u64,
        data_rows: u64,
        superseded: Option<SupersededImport>,
        settings: &RosterSettings,
    ) -> Option<Failure> {
        if self.report.counts.rejected > 0 && !self.options.skip_invalid {
            return Some(ImportError::Rejected);
        }
        let active_before = self.planner.active_before();
        let reason = superseded
            .filter(|_| !self.options.force)
            .map(|earlier| going_back(&earlier))
            .or_else(|| {
                refusal(
                    deactivating,
                    active_before,
                    data_rows,
                    self.options,
                    settings,
                )
            })?;
        self.report.refused = Some(reason);
        Some(ImportError::Refused)
    }

    /// Rolls back whatever the writer wrote.
    async fn abandon(self, failure: Failure) -> ImportError {
        if let Some(writer) = self.writer {
            writer.abandon().await;
        }
        failure(Box::new(self.report))
    }

    /// Writes the last batch, the deactivations and the counts, and commits.
    async fn commit(mut self, gone: &[(i64, String)]) -> Result<ImportReport, ImportError> {
        let (store, now) = (self.store, self.now);
        if !self.batch.is_empty() {
            let last = std::mem::take(&mut self.batch);
            Writer::send(&mut self.writer, store, &self.report, now, last).await?;
        }
        let writer = match self.writer {
            Some(writer) => writer,
            None => Writer::start(store, &self.report, now).await?,
        };
        let import_id = writer.import_id;
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
        q::set_import_counts(&mut tx, import_id, counted(&self.report.counts)).await?;
        tx.commit().await.map_err(anyhow::Error::from)?;
        self.report.import_id = Some(import_id);
        self.report.applied = true;
        let c = &self.report.counts;
        tracing::info!(
            added = c.added,
            updated = c.updated,
            unchanged = c.unchanged,
            deactivated = c.deactivated,
            reactivated = c.reactivated,
            rejected = c.rejected,
            "roster imported: {} added, {} updated, {} deactivated, {} reactivated, {} rejected",
            c.added,
            c.updated,
            c.deactivated,
            c.reactivated,
            c.rejected
        );
        Ok(self.report)
    }
}

fn change(action: &'static str, record: &PersonRecord, fields: Vec<FieldChange>) -> PersonChange {
    PersonChange {
        action,
        email: record.email.to_string(),
        line: Some(record.line),
        fields,
    }
}

/// The counts in the order `roster_imports` stores them.
fn counted(c: &Counts) -> [i64; 6] {
    [
        c.added,
        c.updated,
        c.unchanged,
        c.deactivated,
        c.reactivated,
        c.rejected,
    ]
    .map(|n| n as i64)
}

/// Why a file already imported before a later import is refused: it would
/// undo the later import (last month's export, uploaded again by mistake).
fn going_back(earlier: &SupersededImport) -> String {
    let day = |ms: i64| from_millis(ms).format("%Y-%m-%d %H:%M UTC").to_string();
    format!(
        "this file has the same content as {:?}, imported on {}; {:?} was imported after it, on {}, so importing this file again would undo that. Nothing was changed. Import the newest export, or pass --force to go back to this one",
        earlier.file_name,
        day(earlier.imported_at),
        earlier.later_file,
        day(earlier.later_at)
    )
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
