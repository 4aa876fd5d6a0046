//! Queries behind tracking events and completions.

use super::Store;

/// What an event needs to know about the message it belongs to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TrackedMessage {
    pub outbox_id: i64,
    pub campaign_id: i64,
    pub enrolment_id: Option<i64>,
    pub accepted_at: Option<i64>,
    pub staff_id: Option<i64>,
}

/// Counts of events by kind and class, for metrics.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventCount {
    pub kind: String,
    pub ua_class: String,
    pub n: i64,
}

impl Store {
    pub async fn tracked_message(&self, outbox_id: i64) -> anyhow::Result<Option<TrackedMessage>> {
        Ok(on_pool!(self, |c| sqlx::query_as(
            "SELECT o.id AS outbox_id, o.campaign_id, o.enrolment_id, o.accepted_at, e.staff_id
             FROM outbox o LEFT JOIN enrolments e ON e.id = o.enrolment_id WHERE o.id = $1",
        )
        .bind(outbox_id)
        .fetch_optional(c)
        .await?))
    }

    pub async fn insert_event(
        &self,
        at: i64,
        kind: &str,
        m: &TrackedMessage,
        link: Option<&str>,
        ua_class: &str,
        machine: bool,
    ) -> anyhow::Result<()> {
        on_pool!(self, |c| {
            sqlx::query(
            "INSERT INTO events (at, kind, outbox_id, enrolment_id, campaign_id, link, ua_class, machine)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(at)
        .bind(kind)
        .bind(m.outbox_id)
        .bind(m.enrolment_id)
        .bind(m.campaign_id)
        .bind(link)
        .bind(ua_class)
        .bind(i64::from(machine))
        .execute(c)
        .await?.rows_affected()
        });
        Ok(())
    }

    pub async fn event_counts(&self) -> anyhow::Result<Vec<EventCount>> {
        Ok(on_pool!(self, |c| sqlx::query_as(
            "SELECT kind, ua_class, COUNT(*) AS n FROM events GROUP BY kind, ua_class",
        )
        .fetch_all(c)
        .await?))
    }

    /// Whether a completion report with this fingerprint was already imported for the campaign.
    pub async fn completion_import_seen(
        &self,
        campaign_id: i64,
        sha256: &str,
    ) -> anyhow::Result<bool> {
        let n: i64 = on_pool!(self, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM completion_imports WHERE campaign_id = $1 AND sha256 = $2",
        )
        .bind(campaign_id)
        .bind(sha256)
        .fetch_one(c)
        .await?);
        Ok(n > 0)
    }

    pub async fn record_completion_import(
        &self,
        at: i64,
        campaign_id: i64,
        file_name: &str,
        sha256: &str,
        counts: [i64; 3],
    ) -> anyhow::Result<i64> {
        Ok(on_pool!(self, |c| {
            sqlx::query_scalar(
            "INSERT INTO completion_imports (imported_at, campaign_id, file_name, sha256, matched, newly_completed, unmatched)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(at)
        .bind(campaign_id)
        .bind(file_name)
        .bind(sha256)
        .bind(counts[0])
        .bind(counts[1])
        .bind(counts[2])
        .fetch_one(c)
        .await?
        }))
    }

    /// Every person ever imported, for matching completion reports.
    pub async fn all_staff(&self) -> anyhow::Result<Vec<super::roster::StaffRow>> {
        let sql = format!("SELECT {} FROM staff", super::roster::STAFF_COLUMNS);
        Ok(on_pool!(self, |c| sqlx::query_as(&sql)
            .fetch_all(c)
            .await?))
    }
}

impl Store {
    /// `None`: not enrolled; `Some(None)`: enrolled, not completed; `Some(Some(t))`: completed at t.
    pub async fn completion_state(
        &self,
        campaign_id: i64,
        staff_id: i64,
    ) -> anyhow::Result<Option<Option<i64>>> {
        let row: Option<(Option<i64>,)> = on_pool!(self, |c| sqlx::query_as(
            "SELECT completed_at FROM enrolments WHERE campaign_id = $1 AND staff_id = $2",
        )
        .bind(campaign_id)
        .bind(staff_id)
        .fetch_optional(c)
        .await?);
        Ok(row.map(|(c,)| c))
    }
}

impl Store {
    /// Messages the relay accepted in [from, to): (outbox id, campaign id), oldest first.
    pub async fn accepted_between(&self, from: i64, to: i64) -> anyhow::Result<Vec<(i64, i64)>> {
        Ok(on_pool!(self, |c| {
            sqlx::query_as("SELECT id, campaign_id FROM outbox WHERE status = 'sent' AND accepted_at >= $1 AND accepted_at < $2 ORDER BY id")
            .bind(from)
            .bind(to)
            .fetch_all(c)
            .await?
        }))
    }
}
