//! The drop folder (`inbox.dir`): roster exports and completion reports
//! that arrive by themselves (an HR system's nightly SFTP drop, a scheduled
//! download) are imported exactly as the command line imports them, then
//! moved to `processed/` or `rejected/` with a `.txt` report beside them.
//!
//! Watched with change notifications, and listed every `inbox.scan_every`
//! for file systems that send none. A file is read only when complete:
//! renamed into the folder, or unchanged for `inbox.settle`. Several
//! instances may watch one folder: each file is claimed in the database
//! first (`inbox_files`), so exactly one imports it.

mod folder;
mod notice;
mod take;

pub use take::{Kind, Outcome};

use crate::clock::SharedClock;
use crate::delivery::{Mailer, Sender};
use crate::roster::RosterSettings;
use crate::store::Store;
use folder::Folder;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Listing the folder failing this many times in a row ends the task, so
/// the service manager restarts ambassador (as the delivery worker does
/// when the database stays unusable).
const SCAN_ATTEMPTS: u32 = 5;

/// The shortest pause between two looks at files waiting to settle.
const MIN_TICK: Duration = Duration::from_millis(50);

/// What the drop folder uses, handed over by the composition root.
#[derive(Debug, Clone)]
pub struct Inbox {
    pub settings: crate::config::Inbox,
    /// `[roster]`: the same limits as `roster import`.
    pub roster: RosterSettings,
    /// `[completions] columns`, as `completions import` reads them.
    pub completion_columns: BTreeMap<String, String>,
    pub org_tz: chrono_tz::Tz,
    pub store: Store,
    pub clock: SharedClock,
    /// The reports' mailer, which the notices to admins go through.
    pub mailer: Arc<Mailer>,
    pub sender: Sender,
    /// This process, as it holds claims.
    pub instance: Arc<str>,
    /// How old a claim left `importing` must be before another instance
    /// takes the file over (`delivery.lease`).
    pub lease: chrono::Duration,
    /// Looks at the folder so far; tests wait on it instead of sleeping.
    looks: Arc<watch::Sender<u64>>,
}

impl Inbox {
    /// The drop folder's parts; `run` watches it.
    pub fn new(
        settings: &crate::config::Settings,
        store: Store,
        clock: SharedClock,
        mailer: Arc<Mailer>,
        sender: Sender,
        instance: Arc<str>,
    ) -> Self {
        Self {
            settings: settings.inbox.clone(),
            roster: settings.roster.clone(),
            completion_columns: settings.completions.columns.clone(),
            org_tz: settings.organisation.time_zone.0,
            store,
            clock,
            mailer,
            sender,
            instance,
            lease: settings.delivery.lease.as_chrono(),
            looks: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Counts the looks at the folder (a listing or a check of files
    /// settling) finished so far, each after the files it found ready were
    /// taken.
    pub fn looks(&self) -> watch::Receiver<u64> {
        self.looks.subscribe()
    }

    /// Watches the folder until `stop`, importing each file as it becomes
    /// complete. Ends with an error when the folder cannot be used (missing,
    /// not writable) or stays unreadable, so that `serve` exits and is
    /// restarted; a file that fails on a database error stays and is tried
    /// again at the next listing.
    pub async fn run(self, stop: CancellationToken) -> anyhow::Result<()> {
        self.settings.check_dir()?;
        let dir = std::fs::canonicalize(&self.settings.dir)?;
        let (events, mut changes) = tokio::sync::mpsc::unbounded_channel();
        let _watcher = folder::watch(&dir, events);
        let settle = self.settings.settle.as_std();
        let scan_every = self.settings.scan_every.as_std();
        let mut folder = Folder::new(dir.clone(), settle);
        let mut ticks = tokio::time::interval((settle / 4).min(scan_every).max(MIN_TICK));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut listed: Option<tokio::time::Instant> = None;
        let mut failures = 0;
        tracing::info!(dir = %dir.display(), "watching the drop folder");
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok(()),
                Some(event) = changes.recv() => folder.note(&event),
                _ = ticks.tick() => {
                    if listed.is_none_or(|at| at.elapsed() >= scan_every) {
                        listed = Some(tokio::time::Instant::now());
                        match folder.list() {
                            Ok(()) => failures = 0,
                            Err(e) => {
                                failures += 1;
                                tracing::warn!(error = %e, "cannot list the drop folder");
                                if failures >= SCAN_ATTEMPTS {
                                    anyhow::bail!("cannot list the drop folder {} ({failures} times in a row): {e}", dir.display());
                                }
                            }
                        }
                    }
                    folder.settle();
                    for path in folder.take_ready() {
                        self.take(&path).await;
                    }
                    self.looks.send_modify(|n| *n += 1);
                    continue;
                }
            }
            for path in folder.take_ready() {
                self.take(&path).await;
            }
        }
    }
}
