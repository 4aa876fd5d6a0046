//! Which SMTP failures the test server injects, and the bookkeeping that
//! decides, deterministically, when each one fires.
//!
//! Invariants: a per-message fault (451, drop before reply) fires at most
//! once per Message-ID, on the n-th, 2n-th, … distinct Message-ID to reach
//! the end of DATA. So for `m` distinct messages exactly `m / n` of each fire,
//! whatever order concurrent clients arrive in.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// Failures to inject. `Faults::default()` injects none.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Lower-cased recipient addresses answered `550` at RCPT.
    reject_rcpt_550: HashSet<String>,
    temp_fail_451_every_nth: Option<usize>,
    drop_before_reply_every_nth: Option<usize>,
    drop_after_mail_every_nth: Option<usize>,
    hold_data: Option<DataHold>,
}

impl Faults {
    /// Answer `550 5.1.1 mailbox unavailable` when `address` (compared
    /// ASCII-case-insensitively) is given at RCPT.
    pub fn reject_rcpt_550(mut self, address: &str) -> Self {
        self.reject_rcpt_550.insert(address.to_ascii_lowercase());
        self
    }

    /// Answer `451 4.3.0` after DATA, once, for every n-th distinct
    /// Message-ID; the retry with the same Message-ID is accepted.
    pub fn temp_fail_451_every_nth(mut self, n: usize) -> Self {
        self.temp_fail_451_every_nth = Some(positive(n));
        self
    }

    /// For every n-th distinct Message-ID, once: store the message, then
    /// close the connection instead of replying 250, as a server that
    /// crashes after committing would. The client's retry is a duplicate.
    pub fn drop_before_reply_every_nth(mut self, n: usize) -> Self {
        self.drop_before_reply_every_nth = Some(positive(n));
        self
    }

    /// Close the connection, without replying, after every n-th MAIL FROM
    /// the server receives. The Message-ID is not known yet at MAIL FROM,
    /// so a retry counts as a new transaction: with `n >= 2` a client that
    /// retries at once is not dropped twice in a row, with `n == 1` it
    /// never gets through.
    pub fn drop_after_mail_every_nth(mut self, n: usize) -> Self {
        self.drop_after_mail_every_nth = Some(positive(n));
        self
    }

    /// Keep every transaction open after its data arrived, without the final
    /// reply, until the test calls [`DataHold::release`]: a message in flight.
    pub fn hold_data(mut self, hold: &DataHold) -> Self {
        self.hold_data = Some(hold.clone());
        self
    }
}

/// The test's handle on [`Faults::hold_data`]: learn when transactions are
/// being held, and let them (and every later one) through.
#[derive(Clone, Debug)]
pub struct DataHold {
    /// How many transactions have reached the hold so far.
    held: Arc<watch::Sender<usize>>,
    released: Arc<watch::Sender<bool>>,
}

impl Default for DataHold {
    fn default() -> Self {
        Self {
            held: Arc::new(watch::Sender::new(0)),
            released: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl DataHold {
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits until `n` transactions have reached the hold. Panics after `timeout`.
    pub async fn wait_held(&self, n: usize, timeout: Duration) {
        let mut held = self.held.subscribe();
        if tokio::time::timeout(timeout, held.wait_for(|h| *h >= n))
            .await
            .is_err()
        {
            panic!(
                "timed out after {timeout:?} waiting for {n} held transactions; got {}",
                *held.borrow()
            );
        }
    }

    /// Lets every held transaction be answered, and no later one be held.
    pub fn release(&self) {
        self.released.send_replace(true);
    }

    /// Called by the session with the data read: returns once released.
    pub(super) async fn pass(&self) {
        let mut released = self.released.subscribe();
        self.held.send_modify(|h| *h += 1);
        let _ = released.wait_for(|r| *r).await;
    }
}

fn positive(n: usize) -> usize {
    assert!(n > 0, "`every_nth` must be at least 1");
    n
}

/// How many times each fault fired so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub rejected_rcpt_550: usize,
    pub temp_failed_451: usize,
    pub dropped_before_reply: usize,
    pub dropped_after_mail: usize,
}

/// What the server does with a message whose data has been read in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataOutcome {
    Accept,
    TempFail,
    StoreThenDrop,
}

/// History of one distinct message, keyed by its Message-ID.
#[derive(Debug)]
struct MessageHistory {
    /// 1-based rank among distinct messages, in order of first arrival.
    ordinal: usize,
    temp_failed: bool,
    dropped: bool,
}

/// The fault configuration plus what has happened so far.
#[derive(Debug, Default)]
pub struct FaultBook {
    faults: Faults,
    counts: FaultCounts,
    mail_commands: usize,
    messages: HashMap<String, MessageHistory>,
}

impl FaultBook {
    pub fn new(faults: Faults) -> Self {
        Self {
            faults,
            ..Self::default()
        }
    }

    pub fn counts(&self) -> FaultCounts {
        self.counts
    }

    /// The hold on final replies, if the test asked for one.
    pub fn data_hold(&self) -> Option<DataHold> {
        self.faults.hold_data.clone()
    }

    /// Whether to hang up instead of answering this MAIL FROM.
    pub fn on_mail(&mut self) -> bool {
        self.mail_commands += 1;
        let drop = fires(self.faults.drop_after_mail_every_nth, self.mail_commands);
        self.counts.dropped_after_mail += usize::from(drop);
        drop
    }

    /// Whether to answer this RCPT TO with 550.
    pub fn on_rcpt(&mut self, address: &str) -> bool {
        let reject = self
            .faults
            .reject_rcpt_550
            .contains(&address.to_ascii_lowercase());
        self.counts.rejected_rcpt_550 += usize::from(reject);
        reject
    }

    /// Decides the fate of a complete message. The 451 is tried before the
    /// drop so that a message due both gets each once, in that order.
    pub fn on_data(&mut self, message_key: &str) -> DataOutcome {
        let next_ordinal = self.messages.len() + 1;
        let history = self
            .messages
            .entry(message_key.to_owned())
            .or_insert(MessageHistory {
                ordinal: next_ordinal,
                temp_failed: false,
                dropped: false,
            });
        if !history.temp_failed && fires(self.faults.temp_fail_451_every_nth, history.ordinal) {
            history.temp_failed = true;
            self.counts.temp_failed_451 += 1;
            return DataOutcome::TempFail;
        }
        if !history.dropped && fires(self.faults.drop_before_reply_every_nth, history.ordinal) {
            history.dropped = true;
            self.counts.dropped_before_reply += 1;
            return DataOutcome::StoreThenDrop;
        }
        DataOutcome::Accept
    }
}

fn fires(every_nth: Option<usize>, ordinal: usize) -> bool {
    every_nth.is_some_and(|n| ordinal % n == 0)
}
