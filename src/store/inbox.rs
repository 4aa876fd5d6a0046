//! Files taken from the drop folder: the claim that lets one instance of
//! several import a file, its outcome, and the list the admin page shows.

use super::{InboxOutcome, Store};

/// One file as the drop folder saw it, for the claim.
#[derive(Debug, Clone)]
pub struct InboxClaim<'a> {
    /// Content hash, name, size and modification time: what every instance
    /// watching the folder computes alike for this one drop.
    pub key: &'a str,
    pub sha256: &'a str,
    pub file_name: &'a str,
    pub holder: &'a str,
    pub now: i64,
    /// A claim still `importing` from before this instant was left by an
    /// instance that stopped mid-way: it may be taken over.
    pub stale_before: i64,
}

/// How a claimed file ended.
#[derive(Debug, Clone)]
pub struct InboxFinish<'a> {
    pub key: &'a str,
    pub holder: &'a str,
    pub kind: &'a str,
    pub outcome: InboxOutcome,
    pub summary: &'a str,
    pub moved_to: &'a str,
    pub now: i64,
}

/// One row of the drop folder's history.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct InboxFileRow {
    pub file_name: String,
    pub sha256: String,
    pub kind: String,
    pub claimed_by: String,
    pub claimed_at: i64,
    pub finished_at: Option<i64>,
    #[sqlx(try_from = "String")]
    pub outcome: InboxOutcome,
    pub summary: String,
    pub moved_to: String,
}

/// A file with the same content imported earlier.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EarlierImport {
    pub file_name: String,
    pub finished_at: Option<i64>,
}

impl Store {
    /// Claims a file for this instance; false when another instance holds
    /// it (or has finished it). The insert is atomic on both backends; a
    /// stale `importing` claim is taken over by one conditional update.
    pub async fn claim_inbox_file(&self, claim: &InboxClaim<'_>) -> anyhow::Result<bool> {
        let inserted = on_pool!(self, |c| {
            sqlx::query(
            "INSERT INTO inbox_files (claim_key, sha256, file_name, claimed_by, claimed_at, outcome)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (claim_key) DO NOTHING",
        )
        .bind(claim.key)
        .bind(claim.sha256)
        .bind(claim.file_name)
        .bind(claim.holder)
        .bind(claim.now)
        .bind(InboxOutcome::Importing.as_str())
        .execute(c).await?.rows_affected()
        });
        if inserted == 1 {
            return Ok(true);
        }
        let taken = on_pool!(self, |c| sqlx::query(
            "UPDATE inbox_files SET claimed_by = $1, claimed_at = $2
             WHERE claim_key = $3 AND outcome = $4 AND claimed_at < $5",
        )
        .bind(claim.holder)
        .bind(claim.now)
        .bind(claim.key)
        .bind(InboxOutcome::Importing.as_str())
        .bind(claim.stale_before)
        .execute(c)
        .await?
        .rows_affected());
        Ok(taken == 1)
    }

    /// The earliest file of this content imported from the drop folder.
    pub async fn inbox_imported(&self, sha256: &str) -> anyhow::Result<Option<EarlierImport>> {
        Ok(on_pool!(self, |c| sqlx::query_as(
            "SELECT file_name, finished_at FROM inbox_files WHERE sha256 = $1 AND outcome = $2
             ORDER BY finished_at LIMIT 1",
        )
        .bind(sha256)
        .bind(InboxOutcome::Imported.as_str())
        .fetch_optional(c)
        .await?))
    }

    /// Records how a claimed file ended.
    pub async fn finish_inbox_file(&self, done: &InboxFinish<'_>) -> anyhow::Result<()> {
        on_pool!(self, |c| {
            sqlx::query(
            "UPDATE inbox_files SET kind = $1, outcome = $2, summary = $3, moved_to = $4, finished_at = $5
             WHERE claim_key = $6 AND claimed_by = $7",
        )
        .bind(done.kind)
        .bind(done.outcome.as_str())
        .bind(done.summary)
        .bind(done.moved_to)
        .bind(done.now)
        .bind(done.key)
        .bind(done.holder)
        .execute(c).await?.rows_affected()
        });
        Ok(())
    }

    /// Gives a claim up (the database failed mid-way): the file stays in the
    /// folder and the next scan tries it again.
    pub async fn release_inbox_file(&self, key: &str, holder: &str) -> anyhow::Result<()> {
        on_pool!(self, |c| sqlx::query(
            "DELETE FROM inbox_files WHERE claim_key = $1 AND claimed_by = $2 AND outcome = $3",
        )
        .bind(key)
        .bind(holder)
        .bind(InboxOutcome::Importing.as_str())
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// The latest files, newest first.
    pub async fn recent_inbox_files(&self, limit: i64) -> anyhow::Result<Vec<InboxFileRow>> {
        Ok(on_pool!(self, |c| {
            sqlx::query_as(
            "SELECT file_name, sha256, kind, claimed_by, claimed_at, finished_at, outcome, summary, moved_to
             FROM inbox_files ORDER BY claimed_at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(c).await?
        }))
    }
}
