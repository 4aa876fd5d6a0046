//! The audit trail's table. Only two statements touch it: an insert per
//! entry and the retention purge; no code path updates an entry (and the
//! table's trigger refuses one).

use super::state::{ActorKind, AuditOutcome};
use super::Store;

/// One entry to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub at: i64,
    pub actor: String,
    pub actor_kind: ActorKind,
    pub address: String,
    pub action: String,
    pub target: String,
    pub outcome: AuditOutcome,
    /// A JSON object.
    pub detail: serde_json::Value,
}

/// One recorded entry.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EntryRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    #[sqlx(try_from = "String")]
    pub actor_kind: ActorKind,
    pub address: String,
    pub action: String,
    pub target: String,
    #[sqlx(try_from = "String")]
    pub outcome: AuditOutcome,
    /// JSON text.
    pub detail: String,
}

/// Which entries to list; empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryFilter {
    /// The actor, exactly (case ignored).
    pub actor: String,
    /// The action, or every action under a prefix ending in '.' ("campaign.").
    pub action: String,
    /// From this instant (epoch ms), inclusive.
    pub from: Option<i64>,
    /// Before this instant (epoch ms).
    pub until: Option<i64>,
    pub limit: i64,
}

impl Store {
    pub async fn insert_audit(&self, entry: &NewEntry) -> anyhow::Result<()> {
        on_pool!(self, |c| {
            sqlx::query(
            "INSERT INTO audit_log (at, actor, actor_kind, address, action, target, outcome, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(entry.at)
        .bind(&entry.actor)
        .bind(entry.actor_kind.as_str())
        .bind(&entry.address)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(entry.outcome.as_str())
        .bind(entry.detail.to_string())
        .execute(c).await?.rows_affected()
        });
        Ok(())
    }

    /// Entries matching `filter`, newest first.
    pub async fn audit_entries(&self, filter: &EntryFilter) -> anyhow::Result<Vec<EntryRow>> {
        let (action, prefix) = match filter.action.strip_suffix('.') {
            Some(p) => (String::new(), format!("{p}.")),
            None => (filter.action.clone(), String::new()),
        };
        // The prefix is compared with SUBSTR, not LIKE: an action holds no
        // wildcard to escape, and a filter never matches more than it says.
        Ok(on_pool!(self, |c| sqlx::query_as(
            "SELECT id, at, actor, actor_kind, address, action, target, outcome, detail
             FROM audit_log
             WHERE ($1 = '' OR LOWER(actor) = $1)
               AND ($2 = '' OR action = $2)
               AND ($3 = '' OR SUBSTR(action, 1, CAST($4 AS INTEGER)) = $3)
               AND at >= $5 AND at < $6
             ORDER BY at DESC, id DESC LIMIT $7",
        )
        .bind(filter.actor.trim().to_lowercase())
        .bind(action)
        .bind(&prefix)
        .bind(prefix.chars().count() as i64)
        .bind(filter.from.unwrap_or(i64::MIN))
        .bind(filter.until.unwrap_or(i64::MAX))
        .bind(filter.limit)
        .fetch_all(c)
        .await?))
    }

    /// Deletes entries older than `before` (epoch ms): the retention purge,
    /// the one delete on this table. Returns how many went.
    pub async fn purge_audit(&self, before: i64) -> anyhow::Result<u64> {
        Ok(on_pool!(self, |c| sqlx::query(
            "DELETE FROM audit_log WHERE at < $1"
        )
        .bind(before)
        .execute(c)
        .await?
        .rows_affected()))
    }
}
