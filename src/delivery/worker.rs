//! The outbox worker: claim due messages with a lease, compose, send, record
//! the relay's answer. Temporary failures retry with exponential backoff and
//! jitter; 5xx marks the address undeliverable. A panic while composing one
//! message fails that message only. On shutdown, in-flight sends finish,
//! claimed messages not started are given back, and the last log line says,
//! from the database, whether any message is still claimed.

use super::compose::Composer;
use super::mailer::{Mailer, SendOutcome};
use super::marks::Marks;
use super::owner::Owner;
use crate::campaign::{definition_of, Campaign, Trigger};
use crate::clock::{to_millis, SharedClock};
use crate::config::Delivery as DeliverySettings;
use crate::heartbeat::Heartbeat;
use crate::store::outbox::{ClaimedMessage, Mark};
use crate::store::Backend;
use crate::store::{OutboxStatus, Store};
use crate::telemetry::scrub;
use rand::Rng;
use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

type Limiter = governor::DefaultDirectRateLimiter;

/// Claims that fail this many times in a row (about a second apart) end
/// [`Worker::run`] with the error: the database is gone or unusable, and a
/// restart by the service manager is more useful than a daemon that is up
/// and sends nothing.
pub const CLAIM_ATTEMPTS: u32 = 5;

/// How many sent messages may wait for their mark per send slot
/// (`delivery.concurrency`) before the worker starts no new send.
pub const AWAITING_MARKS_PER_SLOT: usize = 4;

/// How long an idle worker waits before it looks for due messages again
/// (planning wakes it sooner); it beats its heartbeat at least this often.
pub const IDLE_POLL: Duration = Duration::from_secs(1);

/// Outcomes of one delivery pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryReport {
    pub sent: u64,
    pub retried: u64,
    pub undeliverable: u64,
    pub failed: u64,
    pub cancelled: u64,
}

/// One instance's delivery engine.
pub struct Worker {
    store: Store,
    clock: SharedClock,
    composer: Composer,
    mailer: Mailer,
    settings: DeliverySettings,
    /// Unique per process: whose lease a row is under.
    id: String,
    limiter: Option<Limiter>,
    marks: Marks,
    /// Woken when planning enqueued something.
    pub outbox_changed: Arc<Notify>,
    /// Beaten on every turn of [`Worker::run`]'s loop; the watchdog reads it.
    heartbeat: Heartbeat,
    /// Where send latency goes (`ambassador_send_seconds`), when metrics are on.
    metrics: Option<crate::metrics::Metrics>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

type ClaimResult = anyhow::Result<Vec<(ClaimedMessage, Arc<Campaign>)>>;

/// Claimed messages waiting for a send slot, each with the instant by
/// which it must start, and what the last claims said about the outbox.
#[derive(Default)]
struct Claimed {
    ready: VecDeque<(ClaimedMessage, Arc<Campaign>, std::time::Instant)>,
    /// The last claim found fewer than asked: top up only once `ready` runs dry.
    dry: bool,
    failures: u32,
    /// After a failed claim, the next waits until then (claims fail about
    /// [`IDLE_POLL`] apart before the worker gives up).
    retry_at: Option<std::time::Instant>,
}

impl Claimed {
    fn wants_more(&self, concurrency: usize) -> bool {
        let backing_off = self
            .retry_at
            .is_some_and(|at| std::time::Instant::now() < at);
        !backing_off && (self.ready.is_empty() || (!self.dry && self.ready.len() < concurrency))
    }

    /// Queues what a claim returned; an error once claims failed
    /// [`CLAIM_ATTEMPTS`] times in a row.
    fn take(
        &mut self,
        joined: Result<ClaimResult, tokio::task::JoinError>,
        asked: usize,
        settings: &DeliverySettings,
    ) -> anyhow::Result<()> {
        match joined.map_err(anyhow::Error::from).and_then(|r| r) {
            Ok(batch) => {
                self.failures = 0;
                self.retry_at = None;
                self.dry = batch.len() < asked;
                // Start a claimed message only well inside its lease: once the
                // lease may have expired, another instance may be sending it.
                let start_by = std::time::Instant::now() + settings.lease.as_std().mul_f64(0.5);
                self.ready
                    .extend(batch.into_iter().map(|(m, c)| (m, c, start_by)));
                Ok(())
            }
            Err(e) => {
                self.failures += 1;
                if self.failures >= CLAIM_ATTEMPTS {
                    return Err(e.context(format!(
                        "cannot claim messages, {CLAIM_ATTEMPTS} times in a row"
                    )));
                }
                tracing::error!(error = %scrub(&format!("{e:#}")), "cannot claim messages; retrying shortly");
                self.dry = true;
                self.retry_at = Some(std::time::Instant::now() + IDLE_POLL);
                Ok(())
            }
        }
    }
}

enum Outcome {
    Sent,
    Retried,
    Undeliverable,
    Failed,
    Cancelled,
}

impl Worker {
    pub fn new(
        store: Store,
        clock: SharedClock,
        composer: Composer,
        mailer: Mailer,
        settings: DeliverySettings,
        id: String,
    ) -> Self {
        // No burst: `Quota::per_second(n)` alone lets n go at once, so the
        // first second of a backlog carried twice the limit.
        let limiter = NonZeroU32::new(settings.max_per_second).map(|rate| {
            let quota = governor::Quota::per_second(rate).allow_burst(NonZeroU32::MIN);
            governor::RateLimiter::direct(quota)
        });
        Self {
            store,
            clock,
            composer,
            mailer,
            settings,
            id,
            limiter,
            marks: Marks::default(),
            outbox_changed: Arc::new(Notify::new()),
            heartbeat: Heartbeat::default(),
            metrics: None,
        }
    }

    /// Records each send's latency in these metrics.
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The loop's progress mark, for the watchdog.
    pub fn heartbeat(&self) -> Heartbeat {
        self.heartbeat.clone()
    }

    /// Sends everything due now, `concurrency` at a time, and returns when
    /// nothing due is left. Tests and the demo drive delivery with this.
    pub async fn deliver_due(self: &Arc<Self>) -> anyhow::Result<DeliveryReport> {
        let mut report = DeliveryReport::default();
        loop {
            let batch = self.claim(self.settings.concurrency * 4).await?;
            if batch.is_empty() {
                return Ok(report);
            }
            let slots = Arc::new(Semaphore::new(self.settings.concurrency));
            let mut tasks = tokio::task::JoinSet::new();
            for (message, campaign) in batch {
                let slot = slots.clone().acquire_owned().await?;
                let worker = self.clone();
                tasks.spawn(async move { worker.deliver_guarded(message, campaign, slot).await });
            }
            while let Some(done) = tasks.join_next().await {
                match done? {
                    Outcome::Sent => report.sent += 1,
                    Outcome::Retried => report.retried += 1,
                    Outcome::Undeliverable => report.undeliverable += 1,
                    Outcome::Failed => report.failed += 1,
                    Outcome::Cancelled => report.cancelled += 1,
                }
            }
        }
    }

    /// The daemon's loop: keep `concurrency` sends in flight, each in its
    /// own task, and wait for work or shutdown when idle. Messages are claimed
    /// ahead in batches (below `2 × concurrency` ready, up to `4 ×`), not one
    /// per freed slot: a claim is a write transaction plus two lookups, and
    /// claiming per message made claims the bottleneck. The claim runs beside
    /// the sends, and a sent message waits for its mark without holding a
    /// slot: on PostgreSQL both waits are network round trips, and holding the
    /// slot through them halved throughput (docs/benchmarks.md). On shutdown,
    /// claimed messages not yet started are released at once, not left to
    /// their lease, and every started message is marked before it returns.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) -> anyhow::Result<()> {
        if let Err(e) = self.take_back_orphans().await {
            tracing::error!(error = %scrub(&format!("{e:#}")), "cannot take back messages a dead process left claimed; their lease will expire");
        }
        let concurrency = self.settings.concurrency;
        let slots = Arc::new(Semaphore::new(concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        let mut queue = Claimed::default();
        // The claim in flight, and how many it asked for: claims run beside
        // the sends, so a claim's round trips do not leave slots idle.
        let mut claiming: Option<(tokio::task::JoinHandle<ClaimResult>, usize)> = None;
        let mut fatal = None;
        while !stop.is_cancelled() {
            self.heartbeat.beat();
            while tasks.try_join_next().is_some() {}
            if claiming.as_ref().is_some_and(|(c, _)| c.is_finished()) {
                if let Some((handle, asked)) = claiming.take() {
                    if let Err(e) = queue.take(handle.await, asked, &self.settings) {
                        fatal = Some(e);
                        break;
                    }
                }
            }
            if claiming.is_none() && queue.wants_more(2 * concurrency) {
                let asked = 4 * concurrency - queue.ready.len();
                let worker = self.clone();
                claiming = Some((
                    tokio::spawn(async move { worker.claim(asked).await }),
                    asked,
                ));
            }
            let Some((message, campaign, start_by)) = queue.ready.pop_front() else {
                // Nothing to start: wait for the claim in flight, or for work.
                let joined = match claiming.as_mut() {
                    Some((handle, _)) => tokio::select! {
                        joined = handle => Some(joined),
                        _ = stop.cancelled() => break,
                    },
                    None => {
                        tokio::select! {
                            _ = self.outbox_changed.notified() => {}
                            _ = tokio::time::sleep(IDLE_POLL) => {}
                            _ = stop.cancelled() => break,
                        }
                        None
                    }
                };
                if let (Some(joined), Some((_, asked))) = (joined, claiming.take()) {
                    if let Err(e) = queue.take(joined, asked, &self.settings) {
                        fatal = Some(e);
                        break;
                    }
                }
                continue;
            };
            // Sent messages wait for their mark without a slot; this bounds
            // how many may wait at once (the database is slow or gone).
            while tasks.len() >= AWAITING_MARKS_PER_SLOT * concurrency {
                tasks.join_next().await;
            }
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => slot?,
                _ = stop.cancelled() => {
                    queue.ready.push_front((message, campaign, start_by));
                    break;
                }
            };
            if std::time::Instant::now() > start_by {
                tracing::debug!(
                    outbox_id = message.id,
                    "claim too old to start; leaving it to its lease"
                );
                continue;
            }
            let worker = self.clone();
            tasks.spawn(async move {
                worker.deliver_guarded(message, campaign, slot).await;
            });
        }
        // A claim still in flight holds leases too: give its messages back with the rest.
        if let Some((handle, asked)) = claiming.take() {
            if let Err(e) = queue.take(handle.await, asked, &self.settings) {
                tracing::error!(error = %scrub(&format!("{e:#}")), "cannot claim messages");
            }
        }
        let ready = queue.ready;
        let unsent: Vec<i64> = ready.iter().map(|(m, _, _)| m.id).collect();
        if let Err(e) = self
            .store
            .release(&unsent, &self.id, to_millis(self.clock.now()))
            .await
        {
            tracing::error!(error = %scrub(&format!("{e:#}")), "cannot release unsent messages; their lease will expire");
        }
        // Drain: every claimed message is being sent; let each finish.
        while tasks.join_next().await.is_some() {}
        self.report_left_claimed().await;
        fatal.map_or(Ok(()), Err)
    }

    /// Takes back at once what processes of this host that died (a crash,
    /// SIGKILL) held, instead of waiting `delivery.lease`: their outbox
    /// leases end, and their unsent report claims age by a lease so the next
    /// planning tick's retry pass sends them.
    async fn take_back_orphans(&self) -> anyhow::Result<()> {
        let Some(me) = Owner::parse(&self.id) else {
            return Ok(());
        };
        let mut holders = self.store.claim_holders().await?;
        holders.extend(self.store.report_claim_holders().await?);
        holders.sort();
        holders.dedup();
        let now = to_millis(self.clock.now());
        let lease = self.settings.lease.as_chrono().num_milliseconds();
        for holder in holders {
            if !Owner::parse(&holder).is_some_and(|o| me.outlived(&o)) {
                continue;
            }
            let messages = self.store.expire_leases(&holder, now).await?;
            let reports = self.store.age_report_claims(&holder, lease).await?;
            tracing::info!(
                messages,
                reports,
                holder = %holder,
                "took back messages a dead process on this host left claimed"
            );
        }
        Ok(())
    }

    /// Says, from the database, whether this worker stopped with messages
    /// still claimed (a release or a mark that failed, a claim too old to
    /// start): those wait for their lease to expire before anyone sends them.
    async fn report_left_claimed(&self) {
        match self.store.claimed_by(&self.id).await {
            Ok(0) => tracing::info!("delivery stopped; no message left claimed"),
            Ok(n) => tracing::warn!(
                claimed = n,
                "delivery stopped; {n} message(s) left claimed until their lease expires"
            ),
            Err(e) => tracing::warn!(
                error = %scrub(&format!("{e:#}")),
                "delivery stopped; cannot check whether any message is left claimed"
            ),
        }
    }

    async fn claim(&self, limit: usize) -> anyhow::Result<Vec<(ClaimedMessage, Arc<Campaign>)>> {
        let now = self.clock.now();
        let lease_until = now + self.settings.lease.as_chrono();
        // One read and one parse of the campaigns serve the claim's thanks
        // steps and the definitions its messages render with: on PostgreSQL
        // each lookup is a round trip, and a claim runs every few dozen
        // messages.
        let mut campaigns: HashMap<i64, Arc<Campaign>> = self
            .store
            .campaigns()
            .await?
            .iter()
            .filter_map(|row| Some((row.id, Arc::new(definition_of(row).ok()?))))
            .collect();
        let thanks = thanks_steps(campaigns.values());
        // SQLite has one write lock: the claim queues behind the marks in
        // process instead of sleeping in the busy handler. PostgreSQL takes
        // concurrent writers and the claim skips locked rows, so there a
        // claim does not wait for a mark's commit (docs/benchmarks.md).
        let turn = match self.store.backend() {
            Backend::Sqlite => Some(self.marks.writer_turn().await),
            Backend::Postgres => None,
        };
        let claimed = self
            .store
            .claim_due(
                to_millis(now),
                to_millis(lease_until),
                &self.id,
                limit as i64,
                &thanks,
            )
            .await?;
        drop(turn);
        let mut out = Vec::with_capacity(claimed.len());
        for m in claimed {
            let campaign = match campaigns.get(&m.campaign_id) {
                Some(c) => c.clone(),
                None => {
                    // Created since the read above, or not readable there:
                    // looked up alone, so a broken definition is this
                    // claim's error, as before.
                    let row = self
                        .store
                        .campaign_by_id(m.campaign_id)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("campaign {} vanished", m.campaign_id))?;
                    let c = Arc::new(definition_of(&row)?);
                    campaigns.insert(m.campaign_id, c.clone());
                    c
                }
            };
            out.push((m, campaign));
        }
        Ok(out)
    }

    /// Delivers one message; a panic inside becomes a failed message, not a dead worker.
    /// `slot` is one of `delivery.concurrency` sends in flight: it is given
    /// back once the relay has answered, so the next message goes out while
    /// this one waits for its mark's group commit.
    async fn deliver_guarded(
        self: Arc<Self>,
        message: ClaimedMessage,
        campaign: Arc<Campaign>,
        slot: OwnedSemaphorePermit,
    ) -> Outcome {
        let id = message.id;
        let worker = self.clone();
        match tokio::spawn(async move { worker.deliver_one(&message, &campaign, slot).await }).await
        {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => {
                tracing::error!(outbox_id = id, error = %scrub(&format!("{e:#}")), "cannot deliver message");
                self.finish(id, OutboxStatus::Failed, &format!("{e:#}"))
                    .await
            }
            Err(join) => {
                tracing::error!(
                    outbox_id = id,
                    panic = join.is_panic(),
                    "message composition crashed; marked failed"
                );
                self.finish(
                    id,
                    OutboxStatus::Failed,
                    "internal error while composing this message (see logs)",
                )
                .await
            }
        }
    }

    async fn deliver_one(
        &self,
        m: &ClaimedMessage,
        campaign: &Campaign,
        slot: OwnedSemaphorePermit,
    ) -> anyhow::Result<Outcome> {
        let now = self.clock.now();
        let Some(message) = self.composer.compose(m, campaign, now).await? else {
            return Ok(self
                .finish(m.id, OutboxStatus::Cancelled, "nobody left to report")
                .await);
        };
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        let raw = message.formatted();
        let stem = format!("{:08}-{}", m.id, m.step);
        let started = std::time::Instant::now();
        let envelope = self.composer.envelope(m.id, &message);
        let outcome = self.mailer.send(&envelope, &raw, &stem).await;
        drop(slot);
        let now = to_millis(self.clock.now());
        tracing::debug!(outbox_id = m.id, step = %m.step, elapsed_ms = started.elapsed().as_millis() as u64, ?outcome, "send attempt");
        if let Some(metrics) = &self.metrics {
            let label = match &outcome {
                SendOutcome::Accepted(_) => "accepted",
                SendOutcome::Transient(_) => "transient",
                SendOutcome::Permanent(_) => "permanent",
            };
            metrics
                .send_seconds
                .with_label_values(&[label])
                .observe(started.elapsed().as_secs_f64());
        }
        Ok(match outcome {
            SendOutcome::Accepted(reply) => {
                self.mark(Mark::Sent {
                    id: m.id,
                    at: now,
                    reply,
                })
                .await?;
                Outcome::Sent
            }
            SendOutcome::Permanent(reply) => {
                tracing::debug!(outbox_id = m.id, reply = %reply, "relay reply in full");
                tracing::warn!(outbox_id = m.id, reply = %scrub(&reply), "relay refused the address permanently");
                self.mark(Mark::Final {
                    id: m.id,
                    at: now,
                    status: OutboxStatus::Undeliverable,
                    reply,
                })
                .await?;
                Outcome::Undeliverable
            }
            SendOutcome::Transient(error)
                if m.attempts >= i64::from(self.settings.max_attempts) =>
            {
                tracing::warn!(outbox_id = m.id, attempts = m.attempts, error = %scrub(&error), "giving up after the last attempt");
                self.mark(Mark::Final {
                    id: m.id,
                    at: now,
                    status: OutboxStatus::Failed,
                    reply: error,
                })
                .await?;
                Outcome::Failed
            }
            SendOutcome::Transient(error) => {
                let retry_at = now + self.backoff(m.attempts).as_millis() as i64;
                tracing::info!(outbox_id = m.id, attempts = m.attempts, error = %scrub(&error), "temporary failure; will retry");
                self.mark(Mark::Retry {
                    id: m.id,
                    at: now,
                    retry_at,
                    error,
                })
                .await?;
                Outcome::Retried
            }
        })
    }

    async fn finish(&self, id: i64, status: OutboxStatus, why: &str) -> Outcome {
        let now = to_millis(self.clock.now());
        let mark = Mark::Final {
            id,
            at: now,
            status,
            reply: why.to_string(),
        };
        if let Err(e) = self.mark(mark).await {
            tracing::error!(outbox_id = id, error = %scrub(&format!("{e:#}")), "cannot record the outcome; the lease will expire and the message be retried");
        }
        if status == OutboxStatus::Cancelled {
            Outcome::Cancelled
        } else {
            Outcome::Failed
        }
    }

    /// Records how an attempt ended, in the next group commit.
    async fn mark(&self, mark: Mark) -> anyhow::Result<()> {
        self.marks.record(&self.store, &self.id, mark).await
    }

    /// retry_base × 2^(attempt-1), capped at a day, with ±25% jitter so a
    /// relay outage does not end in a thundering herd.
    fn backoff(&self, attempts: i64) -> Duration {
        let base = self.settings.retry_base.as_std().as_secs_f64();
        let exp = base * 2f64.powi((attempts.clamp(1, 20) - 1) as i32);
        let capped = exp.min(86_400.0);
        let jitter = rand::thread_rng().gen_range(0.75..1.25);
        Duration::from_secs_f64(capped * jitter)
    }
}

/// Names of completion-triggered steps across campaigns: those go to people who completed.
fn thanks_steps<'a>(campaigns: impl Iterator<Item = &'a Arc<Campaign>>) -> Vec<String> {
    campaigns
        .flat_map(|c| &c.steps)
        .filter(|s| s.on == Some(Trigger::Completion))
        .map(|s| s.name.clone())
        .collect()
}
