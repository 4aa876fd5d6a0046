//! One complete file: claimed, told apart (roster export or completion
//! report), imported through the same code as the command line, moved to
//! `processed/` or `rejected/` with its `.txt` report, recorded, and the
//! admins told.

use super::notice::{self, Notice};
use super::Inbox;
use crate::audit::{self, Action, Actor};
use crate::clock::to_millis;
use crate::completions::{self, CompletionError, CompletionOptions};
use crate::problem::{kind_of, Kind as ProblemKind};
use crate::roster::{self, ImportError, ImportOptions};
use crate::store::inbox::{InboxClaim, InboxFinish};
use crate::store::{ActorKind, AuditOutcome, InboxOutcome};
use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// What a dropped file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Roster,
    Completions,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Roster => "roster",
            Kind::Completions => "completions",
        }
    }

    /// In sentences: "a roster export".
    pub fn described(self) -> &'static str {
        match self {
            Kind::Roster => "a roster export",
            Kind::Completions => "a completion report",
        }
    }
}

/// How one file ended, in words for its `.txt`, the admin page and the email.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub outcome: InboxOutcome,
    /// One line: what happened.
    pub summary: String,
    /// Every detail: counts, each error with its line, warnings.
    pub details: Vec<String>,
    /// What the admin should do next, when anything.
    pub advice: Option<String>,
    /// What the audit trail keeps of it (as for the same import from the
    /// command line: file, SHA-256, counts).
    pub audit: serde_json::Value,
}

impl Outcome {
    fn rejected(
        summary: String,
        details: Vec<String>,
        advice: String,
        audit: serde_json::Value,
    ) -> Self {
        Self {
            outcome: InboxOutcome::Rejected,
            summary,
            details,
            advice: Some(advice),
            audit,
        }
    }
}

/// Who the audit trail names for the drop folder's imports.
fn actor() -> Actor {
    Actor {
        name: "inbox".into(),
        kind: ActorKind::System,
        address: String::new(),
    }
}

/// A file's identity for the claim: every instance computes the same key
/// for one drop (content, size, modification time, inode, name), and a new
/// drop of the same file gets a new one.
fn claim_key(sha256: &str, meta: &std::fs::Metadata, name: &str) -> String {
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{sha256}:{}:{modified}:{}:{name}", meta.len(), inode(meta))
}

/// The file's inode: a new upload of the same bytes within the same tick of
/// the file system's clock is still a new file.
#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

impl Inbox {
    /// Takes one complete file; a failure is logged, and the file stays for
    /// the next listing.
    pub(super) async fn take(&self, path: &Path) {
        if let Err(e) = self.take_file(path).await {
            tracing::warn!(file = ?path.file_name().unwrap_or_default(), error = %crate::telemetry::scrub(&format!("{e:#}")), "drop folder: the file stays and is tried again at the next listing");
        }
    }

    async fn take_file(&self, path: &Path) -> anyhow::Result<()> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Gone: another instance took it first.
        let Some((meta, bytes)) = read_whole(path)? else {
            return Ok(());
        };
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let key = claim_key(&sha256, &meta, &name);
        let now = self.clock.now();
        let claim = InboxClaim {
            key: &key,
            sha256: &sha256,
            file_name: &name,
            holder: &self.instance,
            now: to_millis(now),
            stale_before: to_millis(now - self.lease),
        };
        if !self.store.claim_inbox_file(&claim).await? {
            tracing::debug!(file = ?name, "drop folder: another instance has this file");
            return Ok(());
        }
        let kind = self.kind_of(&name, &bytes);
        let outcome = match self.import(kind, &name, &sha256, &bytes).await {
            Ok(outcome) => outcome,
            Err(e) => {
                // Ours to fix (the database): nothing was written; give the
                // claim up so that the next listing tries again.
                self.store.release_inbox_file(&key, &self.instance).await?;
                return Err(e);
            }
        };
        let placed = file_away(path, &name, &outcome, kind, now);
        let (moved_to, mut outcome) = match placed {
            Ok(moved_to) => (moved_to, outcome),
            Err(e) => {
                let mut outcome = outcome;
                outcome.summary = format!(
                    "{} (it could not be moved out of the folder: {e})",
                    outcome.summary
                );
                (String::new(), outcome)
            }
        };
        self.store
            .finish_inbox_file(&InboxFinish {
                key: &key,
                holder: &self.instance,
                kind: kind.as_str(),
                outcome: outcome.outcome,
                summary: &outcome.summary,
                moved_to: &moved_to,
                now: to_millis(self.clock.now()),
            })
            .await?;
        self.audit(kind, &name, &outcome, &moved_to).await;
        tracing::info!(file = ?name, kind = kind.as_str(), outcome = %outcome.outcome, moved_to = ?moved_to, "drop folder: {}", crate::telemetry::scrub(&outcome.summary));
        if outcome.outcome == InboxOutcome::Rejected || self.settings.notify_success {
            outcome.details.truncate(notice::MAX_MAILED_LINES);
            self.tell_admins(&Notice {
                file: &name,
                kind,
                outcome: &outcome,
                moved_to: &moved_to,
                at: now,
                tz: self.org_tz,
            })
            .await;
        }
        Ok(())
    }

    /// An entry in the audit trail, actor "inbox": the import's own detail
    /// (as the command line records it), what the folder did with the file,
    /// and, when nothing was imported, why.
    async fn audit(&self, kind: Kind, name: &str, outcome: &Outcome, moved_to: &str) {
        let action = match kind {
            Kind::Roster => Action::RosterImport,
            Kind::Completions => Action::CompletionsImport,
        };
        let mut detail = outcome.audit.clone();
        if let serde_json::Value::Object(map) = &mut detail {
            map.insert(
                "inbox".into(),
                json!({ "outcome": outcome.outcome, "moved_to": moved_to }),
            );
        }
        let result = match outcome.outcome {
            InboxOutcome::Imported => Ok(()),
            _ => Err(&outcome.summary),
        };
        let (audited, detail): (AuditOutcome, _) = audit::outcome_of(&result, detail);
        let now = to_millis(self.clock.now());
        audit::record(&self.store, now, &actor(), action, name, audited, detail).await;
    }

    /// By name first (`inbox.roster_pattern`, `inbox.completions_pattern`),
    /// then by header: a completion date column makes a completion report.
    fn kind_of(&self, name: &str, bytes: &[u8]) -> Kind {
        let options = glob::MatchOptions {
            case_sensitive: false,
            ..glob::MatchOptions::default()
        };
        let matches = |pattern: &str| {
            !pattern.is_empty()
                && glob::Pattern::new(pattern).is_ok_and(|p| p.matches_with(name, options))
        };
        if matches(&self.settings.roster_pattern) {
            return Kind::Roster;
        }
        if matches(&self.settings.completions_pattern) {
            return Kind::Completions;
        }
        let Ok(decoded) = roster::decode(bytes) else {
            return Kind::Roster;
        };
        let header = csv::ReaderBuilder::new()
            .delimiter(decoded.delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(decoded.text.as_bytes())
            .records()
            .next()
            .and_then(Result::ok);
        match header {
            Some(h)
                if completions::is_report_header(
                    &h.iter().collect::<Vec<_>>(),
                    &self.completion_columns,
                ) =>
            {
                Kind::Completions
            }
            _ => Kind::Roster,
        }
    }

    /// The import itself; `Err` only for what is ours to fix (the database).
    async fn import(
        &self,
        kind: Kind,
        name: &str,
        sha256: &str,
        bytes: &[u8],
    ) -> anyhow::Result<Outcome> {
        if let Some(earlier) = self.store.inbox_imported(sha256).await? {
            let when = earlier
                .finished_at
                .map(|t| notice::when(crate::clock::from_millis(t), self.org_tz))
                .unwrap_or_default();
            return Ok(Outcome {
                outcome: InboxOutcome::Duplicate,
                summary: format!(
                    "not imported again: the same content (SHA-256 {sha256}) as {:?}, imported {when}",
                    earlier.file_name
                ),
                details: Vec::new(),
                advice: None,
                audit: json!({ "file": name, "sha256": sha256, "duplicate_of": earlier.file_name }),
            });
        }
        match kind {
            Kind::Roster => self.import_roster(name, bytes).await,
            Kind::Completions => self.import_completions(name, bytes).await,
        }
    }

    async fn import_roster(&self, name: &str, bytes: &[u8]) -> anyhow::Result<Outcome> {
        // As `roster import FILE --source S --mode M`: never --force,
        // never --skip-invalid.
        let options = ImportOptions {
            source: self.settings.roster_source.clone(),
            mode: self.settings.roster_mode,
            dry_run: false,
            skip_invalid: false,
            force: false,
            file_name: name.to_string(),
        };
        let result = roster::import(
            &self.store,
            self.clock.as_ref(),
            &self.roster,
            bytes,
            &options,
            &mut |_, _| {},
        )
        .await;
        Ok(match result {
            Ok(report) => {
                let c = &report.counts;
                let mut details = vec![format!(
                    "added {}, updated {}, unchanged {}, deactivated {}, reactivated {} (source {:?}, mode {}, {})",
                    c.added, c.updated, c.unchanged, c.deactivated, c.reactivated, report.source, report.mode.as_str(), report.encoding
                )];
                details.extend(report.warnings.iter().map(|w| format!("warning: {w}")));
                Outcome {
                    outcome: InboxOutcome::Imported,
                    summary: format!(
                        "roster imported: {} added, {} updated, {} deactivated, {} reactivated",
                        c.added, c.updated, c.deactivated, c.reactivated
                    ),
                    details,
                    advice: None,
                    audit: audit::roster_detail(&report),
                }
            }
            Err(ImportError::Unreadable { reason, .. }) => Outcome::rejected(
                "rejected: the file cannot be read as a roster; nothing was imported".into(),
                vec![reason],
                "Export the roster again (CSV with a header row) and drop the new file into the folder.".into(),
                bare(name, bytes),
            ),
            Err(ImportError::Rejected(report)) => Outcome::rejected(
                format!(
                    "rejected: {} row(s) cannot be imported; nothing was imported",
                    report.counts.rejected
                ),
                report.rejected.iter().map(ToString::to_string).collect(),
                "Correct the rows listed (in the HR system, or in the file) and drop the corrected export into the folder again: a file is imported whole or not at all.".into(),
                audit::roster_detail(&report),
            ),
            Err(ImportError::Refused(report)) => Outcome::rejected(
                "refused: nothing was imported".into(),
                report.refused.iter().cloned().collect(),
                format!(
                    "Files from the drop folder are never forced. Check the export with HR; if the change is real, import the file by hand from rejected/: ambassador roster import FILE --source {} --mode {} --force",
                    report.source, report.mode.as_str()
                ),
                audit::roster_detail(&report),
            ),
            Err(ImportError::Database(e)) => return Err(e),
        })
    }

    async fn import_completions(&self, name: &str, bytes: &[u8]) -> anyhow::Result<Outcome> {
        let campaign = (!self.settings.campaign.is_empty()).then(|| self.settings.campaign.clone());
        let options = CompletionOptions {
            campaign,
            dry_run: false,
            file_name: name.to_string(),
        };
        let result = completions::import(
            &self.store,
            self.clock.as_ref(),
            self.org_tz,
            &self.completion_columns,
            bytes,
            &options,
        )
        .await;
        Ok(match result {
            Ok(report) => {
                let mut details = vec![format!(
                    "campaign {}: rows {}, matched {}, newly completed {}, already completed {}, not completed {}, duplicates {}, unmatched {}",
                    report.campaign, report.rows, report.matched, report.newly_completed, report.already_completed, report.not_completed, report.duplicates, report.unmatched.len()
                )];
                details.extend(report.matched_by_name.iter().map(|m| {
                    format!("line {}: matched by name (check): {} -> {}", m.line, m.who, m.email)
                }));
                details.extend(
                    report
                        .unmatched
                        .iter()
                        .map(|u| format!("line {}: unmatched: {} ({})", u.line, u.who, u.reason)),
                );
                let advice = (!report.unmatched.is_empty()).then(|| {
                    "Rows that match nobody were not credited: record those by hand with `ambassador completions add EMAIL --date YYYY-MM-DD`, or correct the roster.".to_string()
                });
                Outcome {
                    outcome: InboxOutcome::Imported,
                    summary: format!(
                        "completion report imported for {}: {} newly completed, {} unmatched",
                        report.campaign,
                        report.newly_completed,
                        report.unmatched.len()
                    ),
                    details,
                    advice,
                    audit: audit::completions_detail(&report),
                }
            }
            Err(CompletionError::Unreadable { reason, .. }) => Outcome::rejected(
                "rejected: the file cannot be read as a completion report; nothing was recorded".into(),
                vec![reason],
                "Export the report again (CSV with a header row naming the learner and the completion date) and drop the new file into the folder.".into(),
                bare(name, bytes),
            ),
            Err(CompletionError::Malformed(report)) => Outcome::rejected(
                format!(
                    "rejected: {} malformed row(s); nothing was recorded",
                    report.malformed.len()
                ),
                report.malformed.iter().map(ToString::to_string).collect(),
                "Correct the rows listed and drop the corrected report into the folder again: a report is recorded whole or not at all.".into(),
                audit::completions_detail(&report),
            ),
            Err(CompletionError::Other(e)) if kind_of(&e) == ProblemKind::Invalid => Outcome::rejected(
                "rejected: no campaign to credit; nothing was recorded".into(),
                vec![format!("{e:#}").replace("--campaign SLUG", "inbox.campaign")],
                "Set inbox.campaign to the campaign's slug and drop the file into the folder again.".into(),
                bare(name, bytes),
            ),
            Err(CompletionError::Other(e)) => return Err(e),
        })
    }
}

/// What the trail keeps of a file that could not be read: its name and content hash.
fn bare(name: &str, bytes: &[u8]) -> serde_json::Value {
    json!({ "file": name, "sha256": audit::sha256_hex(bytes) })
}

/// The file's size, modification time and bytes; None when it is gone.
fn read_whole(path: &Path) -> anyhow::Result<Option<(std::fs::Metadata, Vec<u8>)>> {
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() as u64 == meta.len() => Ok(Some((meta, bytes))),
        // Still being written after all: the next listing sees it settle.
        Ok(_) => Ok(None),
        Err(e) if gone(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Moves the file to `processed/` or `rejected/` under a dated name, with
/// its report as NAME.txt beside it; returns where it went (relative to the
/// folder).
fn file_away(
    path: &Path,
    name: &str,
    outcome: &Outcome,
    kind: Kind,
    now: DateTime<Utc>,
) -> std::io::Result<String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let sub = match outcome.outcome {
        InboxOutcome::Rejected => "rejected",
        _ => "processed",
    };
    let stamp = now.format("%Y%m%dT%H%M%SZ");
    let target = free_name(&dir.join(sub), &format!("{stamp}-{name}"));
    std::fs::rename(path, &target)?;
    let report = notice::report_text(name, kind, outcome, now);
    let mut txt = target.clone().into_os_string();
    txt.push(".txt");
    std::fs::write(PathBuf::from(txt), report)?;
    let shown = target.strip_prefix(dir).unwrap_or(&target);
    Ok(shown.display().to_string())
}

/// `dir/name`, or `dir/name-2` (before the extension) and so on when taken.
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    (2..)
        .map(|n| dir.join(format!("{stem}-{n}{ext}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}
