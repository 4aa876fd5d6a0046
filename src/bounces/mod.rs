//! Bounces come back: the bounce mailbox is read over IMAP on a schedule,
//! each message classified (`parse`), matched to the message it answers
//! by its VERP token, else by the original Message-ID, and recorded. A
//! hard bounce (5.x.x), or `bounces.soft_limit` soft ones (4.x.x), mark
//! the address undeliverable: no further message is claimed for it.
//!
//! Nothing is deleted: matched bounces move to `bounces.processed_folder`,
//! everything unmatched (bounces of unknown messages, other mail) to
//! `bounces.unmatched_folder`, and auto-replies stay where they are,
//! flagged so they are read once.

pub mod imap;
pub mod parse;

use crate::clock::{to_millis, SharedClock};
use crate::config::Bounces as BounceSettings;
use crate::store::bounces::{BounceEffect, BounceKind, BouncedMessage, NewBounce};
use crate::store::Store;
use crate::tracking::TokenKey;
use parse::{Bounce, Classified};

/// Messages read in one run at most; the rest wait for the next run.
pub const PER_RUN: usize = 500;

/// What happened to one mailbox message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// A hard bounce, or the soft bounce that reached the limit: marked.
    Marked,
    /// A soft bounce (or a hard one for an address changed since), counted.
    Counted,
    /// A delay warning or a bounce seen before: nothing to record.
    Ignored,
    /// An automatic reply: left in the folder.
    AutoReply,
    /// Matches no message of ours: moved to the unmatched folder.
    Unmatched,
}

/// The outcome of one run over the mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MailboxRun {
    pub marked: u64,
    pub counted: u64,
    pub ignored: u64,
    pub auto_replies: u64,
    pub unmatched: u64,
    /// Messages left in place after an error; the next run tries again.
    pub errors: u64,
}

impl MailboxRun {
    fn add(&mut self, d: Disposition) {
        *match d {
            Disposition::Marked => &mut self.marked,
            Disposition::Counted => &mut self.counted,
            Disposition::Ignored => &mut self.ignored,
            Disposition::AutoReply => &mut self.auto_replies,
            Disposition::Unmatched => &mut self.unmatched,
        } += 1;
    }
}

/// Reads the bounce mailbox: what the scheduled job and
/// `ambassador bounces fetch` run.
#[derive(Clone)]
pub struct BounceJob {
    store: Store,
    clock: SharedClock,
    key: TokenKey,
    settings: BounceSettings,
}

impl std::fmt::Debug for BounceJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BounceJob")
            .field("imap_host", &self.settings.imap_host)
            .finish_non_exhaustive()
    }
}

impl BounceJob {
    /// `settings` must have had its secrets loaded (the mailbox password).
    pub fn new(store: Store, clock: SharedClock, key: TokenKey, settings: BounceSettings) -> Self {
        Self {
            store,
            clock,
            key,
            settings,
        }
    }

    /// How often the schedule runs [`BounceJob::run`].
    pub fn every(&self) -> std::time::Duration {
        self.settings.every.as_std()
    }

    /// One pass over the mailbox: every message not yet left alone, up to
    /// [`PER_RUN`]. A message whose handling fails stays where it is for
    /// the next run; a connection that fails ends the run with the error.
    pub async fn run(&self) -> anyhow::Result<MailboxRun> {
        let mut mailbox = imap::Mailbox::open(&self.settings).await?;
        let mut run = MailboxRun::default();
        let result = async {
            for uid in mailbox.waiting(PER_RUN).await? {
                let Some(raw) = mailbox.read(uid).await? else {
                    continue;
                };
                match self.handle(&raw).await {
                    Ok(d) => {
                        match d {
                            Disposition::AutoReply => mailbox.leave_alone(uid).await?,
                            Disposition::Unmatched => {
                                mailbox.move_to(uid, &self.settings.unmatched_folder).await?
                            }
                            _ => mailbox.move_to(uid, &self.settings.processed_folder).await?,
                        }
                        run.add(d);
                    }
                    Err(e) => {
                        run.errors += 1;
                        tracing::error!(uid, error = %crate::telemetry::scrub(&format!("{e:#}")), "cannot record a bounce; it stays in the mailbox for the next run");
                    }
                }
            }
            anyhow::Ok(())
        }
        .await;
        mailbox.close().await;
        result?;
        Ok(run)
    }

    /// Classifies, matches and records one message; says where it goes.
    pub async fn handle(&self, raw: &[u8]) -> anyhow::Result<Disposition> {
        // A parser bug must cost one message, not the job: treated as
        // unmatched, it is moved aside for a person to look at.
        let classified =
            std::panic::catch_unwind(|| parse::classify(raw)).unwrap_or(Classified::Other);
        let bounce = match classified {
            Classified::AutoReply => return Ok(Disposition::AutoReply),
            Classified::Other => return Ok(Disposition::Unmatched),
            Classified::Bounce(b) => b,
        };
        let Some((message, matched_by)) = self.find(&bounce).await? else {
            return Ok(Disposition::Unmatched);
        };
        let kind = if bounce.is_hard() {
            BounceKind::Hard
        } else if bounce.is_soft() {
            BounceKind::Soft
        } else {
            return Ok(Disposition::Ignored);
        };
        let effect = self
            .store
            .record_bounce(
                &message,
                &NewBounce {
                    received_at: to_millis(self.clock.now()),
                    kind,
                    status: &bounce.status,
                    diagnostic: &bounce.diagnostic,
                    matched_by,
                },
                self.settings.soft_limit,
            )
            .await?;
        tracing::info!(
            outbox_id = message.outbox_id,
            status = %bounce.status,
            kind = kind.as_str(),
            matched_by,
            effect = ?effect,
            "bounce recorded"
        );
        Ok(match effect {
            BounceEffect::Marked => Disposition::Marked,
            BounceEffect::Counted | BounceEffect::AddressChanged => Disposition::Counted,
            BounceEffect::Duplicate => Disposition::Ignored,
        })
    }

    /// The message a bounce answers: by a genuine VERP token, else by the
    /// returned Message-ID.
    async fn find(
        &self,
        bounce: &Bounce,
    ) -> anyhow::Result<Option<(BouncedMessage, &'static str)>> {
        for token in &bounce.verp_tokens {
            if let Some(id) = self.key.verify_bounce(token) {
                if let Some(m) = self.store.bounced_message(id).await? {
                    return Ok(Some((m, "verp")));
                }
            }
        }
        if let Some(id) = &bounce.original_message_id {
            if let Some(m) = self.store.bounced_message_by_id(id).await? {
                return Ok(Some((m, "message_id")));
            }
        }
        Ok(None)
    }
}
