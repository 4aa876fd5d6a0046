//! The admin page's sessions, in the database so that every instance sees
//! the same ones and a restart keeps them. The table holds the SHA-256 of a
//! session id, never the id the browser holds.

use super::Store;

/// One stored session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    /// `None`: signed in with the configured shared credential.
    pub account_id: Option<i64>,
    pub csrf: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// The absolute limit (epoch ms).
    pub expires_at: i64,
}

/// How long sessions last, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Without a request for this long, a session ends.
    pub idle_ms: i64,
    /// After this long from sign-in, a session ends whatever happens.
    pub absolute_ms: i64,
}

/// Last-seen times are written at most this often, not on every request.
const TOUCH_EVERY_MS: i64 = 60_000;

impl Store {
    pub async fn insert_session(
        &self,
        id_sha256: &str,
        account_id: Option<i64>,
        csrf: &str,
        now: i64,
        limits: SessionLimits,
    ) -> anyhow::Result<()> {
        on_pool!(self, |c| {
            sqlx::query(
            "INSERT INTO admin_sessions (id_sha256, account_id, csrf, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(id_sha256)
        .bind(account_id)
        .bind(csrf)
        .bind(now)
        .bind(now + limits.absolute_ms)
        .execute(c).await?.rows_affected()
        });
        Ok(())
    }

    /// The live session with this digest at `now`, its last-seen time moved
    /// on; an expired one is deleted and not returned.
    pub async fn live_session(
        &self,
        id_sha256: &str,
        now: i64,
        limits: SessionLimits,
    ) -> anyhow::Result<Option<SessionRow>> {
        let row: Option<SessionRow> = on_pool!(self, |c| sqlx::query_as(
            "SELECT account_id, csrf, created_at, last_seen_at, expires_at
             FROM admin_sessions WHERE id_sha256 = $1",
        )
        .bind(id_sha256)
        .fetch_optional(c)
        .await?);
        let Some(row) = row else { return Ok(None) };
        if row.expires_at <= now || row.last_seen_at + limits.idle_ms <= now {
            self.delete_session(id_sha256).await?;
            return Ok(None);
        }
        if now - row.last_seen_at >= TOUCH_EVERY_MS {
            on_pool!(self, |c| sqlx::query(
                "UPDATE admin_sessions SET last_seen_at = $1 WHERE id_sha256 = $2"
            )
            .bind(now)
            .bind(id_sha256)
            .execute(c)
            .await?
            .rows_affected());
        }
        Ok(Some(row))
    }

    /// Signs a session out, for every instance at once.
    pub async fn delete_session(&self, id_sha256: &str) -> anyhow::Result<()> {
        on_pool!(self, |c| sqlx::query(
            "DELETE FROM admin_sessions WHERE id_sha256 = $1"
        )
        .bind(id_sha256)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Deletes every session past either limit at `now`; returns how many.
    pub async fn purge_sessions(&self, now: i64, limits: SessionLimits) -> anyhow::Result<u64> {
        Ok(on_pool!(self, |c| sqlx::query(
            "DELETE FROM admin_sessions WHERE expires_at <= $1 OR last_seen_at <= $2"
        )
        .bind(now)
        .bind(now - limits.idle_ms)
        .execute(c)
        .await?
        .rows_affected()))
    }

    /// How many sessions are stored (live or not yet purged).
    pub async fn session_count(&self) -> anyhow::Result<i64> {
        Ok(on_pool!(self, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM admin_sessions"
        )
        .fetch_one(c)
        .await?))
    }
}
