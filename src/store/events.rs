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

/// One tracking event to insert (the `events` row, but its id).
#[derive(Debug, Clone, Copy)]
pub struct NewEvent {
    /// Epoch milliseconds.
    pub at: i64,
    /// open | click | completion
    pub kind: &'static str,
    pub outbox_id: i64,
    pub enrolment_id: Option<i64>,
    pub campaign_id: i64,
    /// course | video, for clicks.
    pub link: Option<&'static str>,
    /// human | proxy | scanner
    pub ua_class: &'static str,
    pub machine: bool,
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

    /// [`Store::tracked_message`] for many messages in one query (the
    /// tracking writer's batch); ids with no message are left out.
    pub async fn tracked_messages(&self, ids: &[i64]) -> anyhow::Result<Vec<TrackedMessage>> {
        const SELECT: &str =
            "SELECT o.id AS outbox_id, o.campaign_id, o.enrolment_id, o.accepted_at, e.staff_id
             FROM outbox o LEFT JOIN enrolments e ON e.id = o.enrolment_id";
        // One statement whatever the count: an array on PostgreSQL, one
        // JSON array on SQLite (which has no array type).
        Ok(match self.native() {
            super::Pool::Sqlite(c) => {
                let sql = format!("{SELECT} WHERE o.id IN (SELECT value FROM json_each($1))");
                sqlx::query_as(&sql)
                    .bind(serde_json::to_string(ids)?)
                    .fetch_all(c)
                    .await?
            }
            super::Pool::Postgres(c) => {
                let sql = format!("{SELECT} WHERE o.id = ANY($1)");
                sqlx::query_as(&sql).bind(ids).fetch_all(c).await?
            }
        })
    }

    /// Inserts `events` in one statement, so a batch is one commit: as one
    /// array per column on PostgreSQL (`unnest`), as one JSON array of rows
    /// on SQLite.
    pub async fn insert_events(&self, events: &[NewEvent]) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        match self.native() {
            super::Pool::Sqlite(c) => {
                let rows: Vec<_> = events
                    .iter()
                    .map(|e| {
                        (
                            e.at,
                            e.kind,
                            e.outbox_id,
                            e.enrolment_id,
                            e.campaign_id,
                            e.link,
                            e.ua_class,
                            i64::from(e.machine),
                        )
                    })
                    .collect();
                sqlx::query(
                    "INSERT INTO events (at, kind, outbox_id, enrolment_id, campaign_id, link, ua_class, machine)
                     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7
                     FROM json_each($1) ORDER BY key",
                )
                .bind(serde_json::to_string(&rows)?)
                .execute(c)
                .await?;
            }
            super::Pool::Postgres(c) => {
                let column = |f: fn(&NewEvent) -> i64| events.iter().map(f).collect::<Vec<_>>();
                sqlx::query(
                    "INSERT INTO events (at, kind, outbox_id, enrolment_id, campaign_id, link, ua_class, machine)
                     SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::bigint[])",
                )
                .bind(column(|e| e.at))
                .bind(events.iter().map(|e| e.kind).collect::<Vec<_>>())
                .bind(column(|e| e.outbox_id))
                .bind(events.iter().map(|e| e.enrolment_id).collect::<Vec<_>>())
                .bind(column(|e| e.campaign_id))
                .bind(events.iter().map(|e| e.link).collect::<Vec<_>>())
                .bind(events.iter().map(|e| e.ua_class).collect::<Vec<_>>())
                .bind(column(|e| i64::from(e.machine)))
                .execute(c)
                .await?;
            }
        }
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
