//! Group commit of tracking hits. The routes queue each hit to one writer
//! task, which records everything queued since its last commit with one
//! lookup and one insert (one commit), then answers each hit: a 200 or a
//! redirect means the event is committed, and a burst of hits costs one
//! commit, not one each (SQLite commits one writer at a time). While a batch
//! commits the next one gathers, so there is no timer and no added delay
//! when hits come one at a time.
//!
//! The writer ends when every [`Recorder`] is gone (the HTTP server has
//! drained), after committing what was queued; it fails when its commits
//! have failed for [`GIVE_UP`], so a database that stays unusable restarts
//! the daemon as a failing delivery worker does.

use super::{LinkKind, UaClass};
use crate::store::events::{NewEvent, TrackedMessage};
use crate::store::Store;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Most hits one commit takes.
pub const MAX_BATCH: usize = 1024;

/// Hits queued at most; beyond this the routes wait for room, so a flood
/// slows down instead of growing memory.
const QUEUE: usize = 4 * MAX_BATCH;

/// How long commits may fail in a row before the writer gives up.
pub const GIVE_UP: Duration = Duration::from_secs(5);

/// A hit as the writer takes it: what its event needs, the request already
/// reduced to its class ([`super::classify_agent`]).
#[derive(Debug, Clone, Copy)]
pub struct Queued {
    pub outbox_id: i64,
    pub kind: LinkKind,
    /// Epoch milliseconds.
    pub at: i64,
    /// The class the request alone gives; the writer adds the delivery time.
    pub class: UaClass,
}

/// The event's class, or `None` when the hit's message does not exist.
type Outcome = anyhow::Result<Option<UaClass>>;

struct Pending {
    hit: Queued,
    reply: oneshot::Sender<Outcome>,
}

/// Queues hits to the writer; cheap to clone. The routes hold one.
#[derive(Debug, Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.hit.fmt(f)
    }
}

/// The task that commits queued hits; run it with [`Writer::run`].
pub struct Writer {
    store: Store,
    queue: mpsc::Receiver<Pending>,
}

/// A recorder and the writer it queues to.
pub fn writer(store: Store) -> (Recorder, Writer) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (Recorder { queue: tx }, Writer { store, queue: rx })
}

impl Recorder {
    /// Records `hit` and returns once its event is committed: its class, or
    /// `None` when no such message exists (then nothing is recorded).
    pub async fn record(&self, hit: Queued) -> Outcome {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { hit, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> anyhow::Error {
    anyhow::anyhow!("the tracking writer has stopped; the hit was not recorded")
}

impl Writer {
    /// Commits queued hits until every [`Recorder`] is dropped and the
    /// queue is empty.
    pub async fn run(mut self) -> anyhow::Result<()> {
        let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
        let mut failing_since: Option<Instant> = None;
        while self.queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let hits: Vec<Queued> = batch.iter().map(|p| p.hit).collect();
            match record_batch(&self.store, &hits).await {
                Ok(outcomes) => {
                    failing_since = None;
                    for (pending, outcome) in batch.drain(..).zip(outcomes) {
                        // The client may have gone; its event stays recorded.
                        let _ = pending.reply.send(Ok(outcome));
                    }
                }
                Err(e) => {
                    let error = format!("{e:#}");
                    tracing::error!(hits = batch.len(), error = %crate::telemetry::scrub(&error), "cannot record tracking hits");
                    for pending in batch.drain(..) {
                        let _ = pending.reply.send(Err(anyhow::anyhow!(
                            "cannot record the tracking hit: {error}"
                        )));
                    }
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= GIVE_UP {
                        return Err(e.context(format!(
                            "recording tracking hits has failed for {} s",
                            GIVE_UP.as_secs()
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Records `hits` with one lookup of their messages and one insert; per
/// hit, in order, its class, or `None` when its message does not exist.
pub async fn record_batch(store: &Store, hits: &[Queued]) -> anyhow::Result<Vec<Option<UaClass>>> {
    let mut ids: Vec<i64> = hits.iter().map(|h| h.outbox_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let messages: HashMap<i64, TrackedMessage> = store
        .tracked_messages(&ids)
        .await?
        .into_iter()
        .map(|m| (m.outbox_id, m))
        .collect();
    let mut events = Vec::with_capacity(hits.len());
    let outcomes = hits
        .iter()
        .map(|hit| {
            let message = messages.get(&hit.outbox_id)?;
            let (row, class) = event(hit, message)?;
            events.push(row);
            Some(class)
        })
        .collect();
    store.insert_events(&events).await?;
    Ok(outcomes)
}

/// The row a hit on `message` makes, and its class; none for a return
/// path, which is no link.
fn event(hit: &Queued, message: &TrackedMessage) -> Option<(NewEvent, UaClass)> {
    let seconds_after_delivery = message.accepted_at.map(|t| (hit.at - t) / 1000);
    let class = hit.class.given_delivery(seconds_after_delivery);
    let (kind, link) = match hit.kind {
        LinkKind::Open => ("open", None),
        LinkKind::Course => ("click", Some("course")),
        LinkKind::Video => ("click", Some("video")),
        LinkKind::Complete => ("completion", None),
        LinkKind::Bounce => return None,
    };
    let row = NewEvent {
        at: hit.at,
        kind,
        outbox_id: message.outbox_id,
        enrolment_id: message.enrolment_id,
        campaign_id: message.campaign_id,
        link,
        ua_class: class.as_str(),
        machine: class.is_machine(),
    };
    Some((row, class))
}
