//! Group commit of how attempts ended. Each sender still waits until its own
//! row is marked (so a finished task means a recorded outcome, as before;
//! its send slot is already free for the next message), but concurrent
//! senders share one transaction: whoever takes the writer
//! turn commits every mark queued so far, sent, retried or final alike.
//! SQLite takes one writer at a time, and one commit per message capped
//! delivery at the commit rate.

use crate::store::outbox::Mark;
use crate::store::Store;
use std::sync::Mutex;
use tokio::sync::oneshot;

type Waiter = oneshot::Sender<Result<(), String>>;

/// Marks waiting for the next commit.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    queued: Mutex<Vec<(Mark, Waiter)>>,
    /// Held while one caller commits everything queued; FIFO, so every
    /// caller's mark is committed by the time its turn comes (or by it).
    writer: tokio::sync::Mutex<()>,
}

impl Marks {
    /// Records how an attempt ended; returns once it is committed.
    pub async fn record(&self, store: &Store, worker: &str, mark: Mark) -> anyhow::Result<()> {
        let (done, committed) = oneshot::channel();
        self.lock().push((mark, done));
        {
            let _turn = self.writer.lock().await;
            let batch = std::mem::take(&mut *self.lock());
            if !batch.is_empty() {
                let (marks, waiters): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                let result = store
                    .record_marks(worker, &marks)
                    .await
                    .map_err(|e| format!("{e:#}"));
                for waiter in waiters {
                    let _ = waiter.send(result.clone());
                }
            }
        }
        match committed.await {
            Ok(result) => result.map_err(anyhow::Error::msg),
            Err(_) => anyhow::bail!("the batch holding this mark was abandoned"),
        }
    }

    /// The writer turn, for the worker's other write on SQLite (claims).
    /// SQLite has one write lock per database; a connection that finds it
    /// taken sleeps in the busy handler (1 ms, 2 ms, 5 ms, ...) instead of
    /// queueing, so the worker's own writers queue here, in order, without
    /// sleeping.
    pub async fn writer_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writer.lock().await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Mark, Waiter)>> {
        self.queued.lock().unwrap_or_else(|e| e.into_inner())
    }
}
