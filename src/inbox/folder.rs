//! Which files in the folder are complete: renamed in (read at once), or
//! written in place and unchanged (size and modification time) for the
//! settle time. Partial uploads by convention (`.part`, `.tmp`) and hidden
//! files are never looked at, nor is anything below the folder.

use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{Event, RecursiveMode, Watcher};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Starts change notifications for `dir` (not its subfolders), sent to
/// `events`. None, with a warning, where the platform refuses (inotify
/// watches exhausted, a network file system): the listing still runs.
pub fn watch(
    dir: &Path,
    events: tokio::sync::mpsc::UnboundedSender<Event>,
) -> Option<notify::RecommendedWatcher> {
    let started = notify::recommended_watcher(move |event: notify::Result<Event>| {
        if let Ok(event) = event {
            let _ = events.send(event);
        }
    })
    .and_then(|mut watcher| {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
        Ok(watcher)
    });
    match started {
        Ok(watcher) => Some(watcher),
        Err(e) => {
            tracing::warn!(error = %e, "no change notifications for the drop folder; it is listed every inbox.scan_every instead");
            None
        }
    }
}

/// Whether a name may be a dropped file: not hidden, not a partial upload.
pub fn is_candidate(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !(name.is_empty()
        || name.starts_with('.')
        || lower.ends_with(".part")
        || lower.ends_with(".tmp"))
}

/// A file's size and modification time, as last looked at, and since when
/// they have stayed so.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Look {
    size: u64,
    modified: Option<SystemTime>,
}

#[derive(Debug)]
struct Settling {
    look: Look,
    since: Instant,
}

/// The files of the folder on their way to being read.
#[derive(Debug)]
pub struct Folder {
    dir: PathBuf,
    settle: Duration,
    settling: HashMap<PathBuf, Settling>,
    /// Renamed in: complete already.
    ready: BTreeSet<PathBuf>,
}

impl Folder {
    pub fn new(dir: PathBuf, settle: Duration) -> Self {
        Self {
            dir,
            settle,
            settling: HashMap::new(),
            ready: BTreeSet::new(),
        }
    }

    /// A change notification: a file renamed into the folder is ready; one
    /// created or written waits to settle; one removed or renamed away is forgotten.
    pub fn note(&mut self, event: &Event) {
        match event.kind {
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                for path in &event.paths {
                    self.renamed_in(path);
                }
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                if let [from, to] = event.paths.as_slice() {
                    self.forget(from);
                    self.renamed_in(to);
                }
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => {
                for path in &event.paths {
                    self.forget(path);
                }
            }
            EventKind::Access(_) => {}
            _ => {
                for path in &event.paths {
                    if self.is_ours(path) && !self.ready.contains(path) {
                        self.look_at(path);
                    }
                }
            }
        }
    }

    /// Lists the folder: every file not yet known starts to settle.
    pub fn list(&mut self) -> std::io::Result<()> {
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if self.is_ours(&path)
                && !self.ready.contains(&path)
                && !self.settling.contains_key(&path)
            {
                self.look_at(&path);
            }
        }
        Ok(())
    }

    /// Looks again at every settling file: one unchanged for the settle
    /// time becomes ready; one gone is forgotten.
    pub fn settle(&mut self) {
        let paths: Vec<PathBuf> = self.settling.keys().cloned().collect();
        for path in paths {
            self.look_at(&path);
            if let Some(s) = self.settling.get(&path) {
                if s.since.elapsed() >= self.settle {
                    self.settling.remove(&path);
                    self.ready.insert(path);
                }
            }
        }
    }

    /// The files complete now, each handed out once.
    pub fn take_ready(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.ready).into_iter().collect()
    }

    fn renamed_in(&mut self, path: &Path) {
        if self.is_ours(path) && regular_file(path).is_some() {
            self.settling.remove(path);
            self.ready.insert(path.to_path_buf());
        }
    }

    fn forget(&mut self, path: &Path) {
        self.settling.remove(path);
        self.ready.remove(path);
    }

    /// Records what a file looks like now; a change restarts its settling.
    fn look_at(&mut self, path: &Path) {
        let Some(look) = regular_file(path) else {
            self.settling.remove(path);
            return;
        };
        let unchanged = self.settling.get(path).is_some_and(|s| s.look == look);
        if !unchanged {
            self.settling.insert(
                path.to_path_buf(),
                Settling {
                    look,
                    since: Instant::now(),
                },
            );
        }
    }

    /// A file directly in the folder whose name may be a dropped file.
    fn is_ours(&self, path: &Path) -> bool {
        path.parent() == Some(self.dir.as_path())
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_candidate)
    }
}

/// Size and modification time of a regular file (not a folder, not a link
/// to elsewhere); None when it is none or is gone.
fn regular_file(path: &Path) -> Option<Look> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    meta.is_file().then(|| Look {
        size: meta.len(),
        modified: meta.modified().ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_uploads_and_hidden_files_are_not_candidates() {
        for name in [".roster.csv", "roster.csv.part", "roster.csv.TMP", ""] {
            assert!(!is_candidate(name), "{name}");
        }
        for name in ["roster.csv", "completions 2027-01.csv", "part.csv"] {
            assert!(is_candidate(name), "{name}");
        }
    }
}
