//! The import's writer: the transaction of one roster import, owned by a
//! task that writes each batch while the reader parses the next one.

use super::parse::PersonRecord;
use super::ImportReport;
use crate::store::roster::{self as q, ImportRecord, NewStaff, StaffChange};
use crate::store::{Store, Tx};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// An update on its way to the database.
pub(super) struct PendingUpdate {
    pub staff_id: i64,
    pub record: PersonRecord,
    pub reactivate: bool,
    /// The changed fields as JSON, for the history.
    pub detail: String,
}

/// Rows the writer applies together.
#[derive(Default)]
pub(super) struct Batch {
    pub inserts: Vec<PersonRecord>,
    pub updates: Vec<PendingUpdate>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.inserts.len() + self.updates.len()
    }

    pub fn is_empty(&self) -> bool {
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
pub(super) struct Writer {
    pub import_id: i64,
    batches: mpsc::Sender<BoundBatch>,
    task: JoinHandle<anyhow::Result<Tx>>,
}

impl Writer {
    /// Opens the transaction and records the import (its counts come last).
    pub async fn start(store: &Store, report: &ImportReport, now: i64) -> anyhow::Result<Self> {
        let mut tx = store.begin_bulk_write().await?;
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
            batches,
            task,
        })
    }

    /// Hands a batch to the writer, starting it on first use.
    pub async fn send(
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
            store.backend(),
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
    pub async fn finish(self) -> anyhow::Result<Tx> {
        drop(self.batches);
        self.task
            .await
            .map_err(|e| anyhow::anyhow!("the roster writer stopped: {e}"))?
    }

    /// Rolls everything back.
    pub async fn abandon(self) {
        let Ok(tx) = self.finish().await else {
            return; // the failed writer's transaction was dropped: rolled back
        };
        if let Err(e) = tx.rollback().await {
            tracing::warn!(error = %e, "rolling back a refused roster import failed");
        }
    }
}

async fn write_batch(
    tx: &mut Tx,
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
