//! The audit trail: every state-changing action, who did it (an account,
//! the OS user on the command line, the daemon itself), when, from which
//! address, on what, and how it ended. Entries are only ever appended; the
//! retention purge is the one delete, and it leaves an entry of its own.
//!
//! The edges (command line, API, admin page, reload, scheduled jobs) record
//! what they did; domain code does not know about the trail.

use crate::clock::from_millis;
use crate::store::audit::{EntryFilter, EntryRow, NewEntry};
use crate::store::{ActorKind, AuditOutcome, Store};
use serde::Serialize;

pub use crate::store::audit::EntryFilter as Filter;

/// The most entries one listing or export returns.
pub const MAX_ENTRIES: i64 = 10_000;

/// What was done. The text is what the trail keeps and filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    SignIn,
    SignOut,
    RosterImport,
    CompletionsImport,
    CompletionAdd,
    Exempt,
    Unexempt,
    CampaignApply,
    CampaignPause,
    CampaignResume,
    CampaignCancel,
    AccountAdd,
    AccountDisable,
    AccountEnable,
    AccountRole,
    TokenCreate,
    TokenRevoke,
    ConfigReload,
    ReportExport,
    AuditExport,
    AuditPurge,
}

impl Action {
    pub const ALL: &'static [Action] = &[
        Action::SignIn,
        Action::SignOut,
        Action::RosterImport,
        Action::CompletionsImport,
        Action::CompletionAdd,
        Action::Exempt,
        Action::Unexempt,
        Action::CampaignApply,
        Action::CampaignPause,
        Action::CampaignResume,
        Action::CampaignCancel,
        Action::AccountAdd,
        Action::AccountDisable,
        Action::AccountEnable,
        Action::AccountRole,
        Action::TokenCreate,
        Action::TokenRevoke,
        Action::ConfigReload,
        Action::ReportExport,
        Action::AuditExport,
        Action::AuditPurge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::SignIn => "sign_in",
            Action::SignOut => "sign_out",
            Action::RosterImport => "roster.import",
            Action::CompletionsImport => "completions.import",
            Action::CompletionAdd => "completions.add",
            Action::Exempt => "exemption.add",
            Action::Unexempt => "exemption.undo",
            Action::CampaignApply => "campaign.apply",
            Action::CampaignPause => "campaign.pause",
            Action::CampaignResume => "campaign.resume",
            Action::CampaignCancel => "campaign.cancel",
            Action::AccountAdd => "account.add",
            Action::AccountDisable => "account.disable",
            Action::AccountEnable => "account.enable",
            Action::AccountRole => "account.role",
            Action::TokenCreate => "token.create",
            Action::TokenRevoke => "token.revoke",
            Action::ConfigReload => "config.reload",
            Action::ReportExport => "report.export",
            Action::AuditExport => "audit.export",
            Action::AuditPurge => "audit.purge",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who acted, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub kind: ActorKind,
    /// The client address; empty on the command line and for the daemon.
    pub address: String,
}

impl Actor {
    /// A signed-in account or the holder of a token (the shared credential
    /// is named as such).
    pub fn principal(principal: &crate::accounts::Principal, address: impl ToString) -> Self {
        let kind = match principal {
            crate::accounts::Principal::Account(_) => ActorKind::Account,
            crate::accounts::Principal::Shared => ActorKind::Shared,
        };
        Actor {
            name: principal.name().to_string(),
            kind,
            address: address.to_string(),
        }
    }

    /// Someone not (yet) known: a failed sign-in names what was tried.
    pub fn anonymous(tried: &str, address: impl ToString) -> Self {
        Actor {
            name: tried.to_string(),
            kind: ActorKind::Anonymous,
            address: address.to_string(),
        }
    }

    /// The OS user who ran a command.
    pub fn cli(user: impl Into<String>) -> Self {
        Actor {
            name: user.into(),
            kind: ActorKind::Cli,
            address: String::new(),
        }
    }

    /// The daemon itself: a reload, a scheduled purge.
    pub fn system() -> Self {
        Actor {
            name: "system".into(),
            kind: ActorKind::System,
            address: String::new(),
        }
    }
}

/// Appends one entry. A failure to write it is logged, not raised: the
/// action it describes has happened (or failed) already.
pub async fn record(
    store: &Store,
    now: i64,
    actor: &Actor,
    action: Action,
    target: &str,
    outcome: AuditOutcome,
    detail: serde_json::Value,
) {
    let entry = NewEntry {
        at: now,
        actor: actor.name.clone(),
        actor_kind: actor.kind,
        address: actor.address.clone(),
        action: action.as_str().to_string(),
        target: target.to_string(),
        outcome,
        detail: match detail {
            serde_json::Value::Null => serde_json::json!({}),
            other => other,
        },
    };
    if let Err(e) = store.insert_audit(&entry).await {
        tracing::error!(error = %format!("{e:#}"), action = action.as_str(), "cannot write the audit entry");
    }
}

/// `Success` when `result` is Ok, else `Failure` with the error in the detail.
pub fn outcome_of<T, E: std::fmt::Display>(
    result: &Result<T, E>,
    mut detail: serde_json::Value,
) -> (AuditOutcome, serde_json::Value) {
    match result {
        Ok(_) => (AuditOutcome::Success, detail),
        Err(e) => {
            if let serde_json::Value::Object(map) = &mut detail {
                map.insert("error".into(), serde_json::Value::String(format!("{e:#}")));
            }
            (AuditOutcome::Failure, detail)
        }
    }
}

/// One entry as listed and exported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: String,
    pub actor_kind: ActorKind,
    pub address: String,
    pub action: String,
    pub target: String,
    pub outcome: AuditOutcome,
    pub detail: serde_json::Value,
}

impl From<EntryRow> for Entry {
    fn from(row: EntryRow) -> Self {
        Entry {
            id: row.id,
            at: from_millis(row.at),
            actor: row.actor,
            actor_kind: row.actor_kind,
            address: row.address,
            action: row.action,
            target: row.target,
            outcome: row.outcome,
            detail: serde_json::from_str(&row.detail).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Entries matching `filter`, newest first, at most [`MAX_ENTRIES`].
pub async fn entries(store: &Store, filter: &EntryFilter) -> anyhow::Result<Vec<Entry>> {
    let mut filter = filter.clone();
    filter.limit = if filter.limit <= 0 {
        MAX_ENTRIES
    } else {
        filter.limit.min(MAX_ENTRIES)
    };
    Ok(store
        .audit_entries(&filter)
        .await?
        .into_iter()
        .map(Entry::from)
        .collect())
}

/// The entries as CSV, every cell spreadsheet-safe (a value starting with
/// `=`, `+`, `-`, `@` cannot run as a formula).
pub fn to_csv(entries: &[Entry]) -> anyhow::Result<Vec<u8>> {
    use crate::report::spreadsheet_cell as cell;
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "id",
        "at",
        "actor",
        "actor_kind",
        "address",
        "action",
        "target",
        "outcome",
        "detail",
    ])?;
    for e in entries {
        out.write_record([
            e.id.to_string().as_str(),
            &e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            &cell(&e.actor),
            e.actor_kind.as_str(),
            &cell(&e.address),
            &cell(&e.action),
            &cell(&e.target),
            e.outcome.as_str(),
            &cell(&e.detail.to_string()),
        ])?;
    }
    Ok(out.into_inner()?)
}

/// Deletes entries older than `retention_ms` before `now`, then records
/// the purge itself (by the daemon). Returns how many went.
pub async fn purge(store: &Store, now: i64, retention_ms: i64) -> anyhow::Result<u64> {
    let before = now.saturating_sub(retention_ms);
    let result = store.purge_audit(before).await;
    let detail = serde_json::json!({
        "before": from_millis(before).to_rfc3339(),
        "deleted": result.as_ref().ok(),
    });
    let (outcome, detail) = outcome_of(&result, detail);
    record(
        store,
        now,
        &Actor::system(),
        Action::AuditPurge,
        "audit_log",
        outcome,
        detail,
    )
    .await;
    result
}

/// The filters as people give them (page form, API query, command line):
/// a person, an action (or a prefix such as "campaign."), and dates
/// YYYY-MM-DD, both inclusive, read in `tz`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, Serialize)]
pub struct Query {
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
}

impl Query {
    /// The store's filter; a date that is not YYYY-MM-DD is refused, naming the field.
    pub fn filter(&self, tz: chrono_tz::Tz) -> anyhow::Result<EntryFilter> {
        let day = |field: &str, raw: &str| -> anyhow::Result<Option<i64>> {
            let raw = raw.trim();
            if raw.is_empty() {
                return Ok(None);
            }
            let date = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
                crate::problem::Problem::invalid(
                    field,
                    format!(
                        "{field} must be a date written YYYY-MM-DD, e.g. 2027-03-01 (got {raw:?})"
                    ),
                )
            })?;
            let start = date
                .and_hms_opt(0, 0, 0)
                .and_then(|t| t.and_local_timezone(tz).earliest())
                .map(|t| crate::clock::to_millis(t.with_timezone(&chrono::Utc)));
            Ok(start)
        };
        let action = self.action.trim();
        if !action.is_empty()
            && !action.ends_with('.')
            && !Action::ALL.iter().any(|a| a.as_str() == action)
        {
            let known: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
            return Err(crate::problem::Problem::invalid(
                "action",
                format!(
                    "unknown action {action:?}; use one of {}, or a prefix such as \"campaign.\"",
                    known.join(", ")
                ),
            )
            .into());
        }
        let from = day("from", &self.from)?;
        // "to" is inclusive: entries before the start of the next day.
        let until = day("to", &self.to)?.map(|start| start + 86_400_000);
        Ok(EntryFilter {
            actor: self.actor.trim().to_string(),
            action: action.to_string(),
            from,
            until,
            limit: MAX_ENTRIES,
        })
    }
}

/// What the trail keeps of a roster import: the file, its SHA-256, how it
/// was imported and the counts (and why it was refused, if it was).
pub fn roster_detail(report: &crate::roster::ImportReport) -> serde_json::Value {
    serde_json::json!({
        "file": report.file,
        "sha256": report.sha256,
        "mode": report.mode,
        "source": report.source,
        "counts": report.counts,
        "refused": report.refused,
    })
}

/// What the trail keeps of a completion import.
pub fn completions_detail(report: &crate::completions::CompletionReport) -> serde_json::Value {
    serde_json::json!({
        "file": report.file,
        "sha256": report.sha256,
        "campaign": report.campaign,
        "rows": report.rows,
        "matched": report.matched,
        "newly_completed": report.newly_completed,
        "already_completed": report.already_completed,
        "unmatched": report.unmatched.len(),
        "malformed": report.malformed.len(),
    })
}

/// SHA-256 of a file's bytes, hex: the trail names a file by its contents.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}
