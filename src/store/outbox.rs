//! The outbox: one row per message, claimed with a lease, marked with the
//! relay's reply. Claims skip rows other instances hold (`FOR UPDATE SKIP
//! LOCKED` on PostgreSQL; SQLite serialises writers) and take over rows whose
//! lease expired, so a killed process loses nothing.

use super::roster::placeholders;
use super::state::{CampaignStatus, OutboxStatus};
use super::Store;

/// A message to enqueue.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub dedupe_key: String,
    pub campaign_id: i64,
    pub enrolment_id: Option<i64>,
    pub step: String,
    pub recipient: String,
    pub message_id: String,
    pub scheduled_at: i64,
    pub not_before: i64,
    /// `skipped` for steps overtaken by a later one; otherwise `pending`.
    pub status: OutboxStatus,
}

/// A claimed message with what rendering needs about its recipient.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedMessage {
    pub id: i64,
    pub campaign_id: i64,
    pub enrolment_id: Option<i64>,
    pub step: String,
    pub recipient: String,
    pub message_id: String,
    pub attempts: i64,
    pub campaign_status: CampaignStatus,
    pub due_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub exempted_at: Option<i64>,
    pub left_at: Option<i64>,
    /// Whether the person is in the roster (`None` for manager digests).
    pub staff_active: Option<bool>,
    /// The person's current address (it may have changed since planning).
    pub staff_email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub department: Option<String>,
    pub role: Option<String>,
    pub facility: Option<String>,
    pub attributes: Option<String>,
    /// 1 when the person's current address is marked undeliverable (a bounce).
    pub address_bounced: i64,
}

/// How one attempt at a claimed message ended, for [`Store::record_marks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// The relay accepted it at `at`.
    Sent { id: i64, at: i64, reply: String },
    /// A temporary failure: pending again from `retry_at`.
    Retry {
        id: i64,
        at: i64,
        retry_at: i64,
        error: String,
    },
    /// A final outcome other than sent: failed, undeliverable or cancelled.
    Final {
        id: i64,
        at: i64,
        status: OutboxStatus,
        reply: String,
    },
}

/// Marks split by kind: one statement per kind and batch.
#[derive(Default)]
struct MarkColumns<'a> {
    sent: (Vec<i64>, Vec<i64>, Vec<&'a str>),
    retry: (Vec<i64>, Vec<i64>, Vec<i64>, Vec<&'a str>),
    last: (Vec<i64>, Vec<i64>, Vec<&'a str>, Vec<&'a str>),
}

impl<'a> MarkColumns<'a> {
    fn of(marks: &'a [Mark]) -> Self {
        let mut c = Self::default();
        for mark in marks {
            match mark {
                Mark::Sent { id, at, reply } => {
                    c.sent.0.push(*id);
                    c.sent.1.push(*at);
                    c.sent.2.push(reply);
                }
                Mark::Retry {
                    id,
                    at,
                    retry_at,
                    error,
                } => {
                    c.retry.0.push(*id);
                    c.retry.1.push(*at);
                    c.retry.2.push(*retry_at);
                    c.retry.3.push(error);
                }
                Mark::Final {
                    id,
                    at,
                    status,
                    reply,
                } => {
                    c.last.0.push(*id);
                    c.last.1.push(*at);
                    c.last.2.push(status.as_str());
                    c.last.3.push(reply);
                }
            }
        }
        c
    }

    fn kinds(&self) -> usize {
        [self.sent.0.len(), self.retry.0.len(), self.last.0.len()]
            .iter()
            .filter(|n| **n > 0)
            .count()
    }

    /// On PostgreSQL each kind is one `UPDATE ... FROM unnest(...)`, whatever the count.
    async fn write_postgres(&self, c: &mut sqlx::PgConnection, worker: &str) -> anyhow::Result<()> {
        if !self.sent.0.is_empty() {
            sqlx::query(
                "UPDATE outbox SET status = 'sent', accepted_at = m.at, smtp_reply = m.reply, lease_until = NULL, last_error = NULL, updated_at = m.at
                 FROM unnest($1::int8[], $2::int8[], $3::text[]) AS m(id, at, reply)
                 WHERE outbox.id = m.id AND outbox.leased_by = $4",
            )
            .bind(&self.sent.0)
            .bind(&self.sent.1)
            .bind(&self.sent.2)
            .bind(worker)
            .execute(&mut *c)
            .await?;
        }
        if !self.retry.0.is_empty() {
            sqlx::query(
                "UPDATE outbox SET status = 'pending', not_before = m.retry_at, last_error = m.error, lease_until = NULL, updated_at = m.at
                 FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::text[]) AS m(id, at, retry_at, error)
                 WHERE outbox.id = m.id AND outbox.leased_by = $5",
            )
            .bind(&self.retry.0)
            .bind(&self.retry.1)
            .bind(&self.retry.2)
            .bind(&self.retry.3)
            .bind(worker)
            .execute(&mut *c)
            .await?;
        }
        if !self.last.0.is_empty() {
            sqlx::query(
                "UPDATE outbox SET status = m.status, smtp_reply = m.reply, last_error = m.reply, lease_until = NULL, updated_at = m.at
                 FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[]) AS m(id, at, status, reply)
                 WHERE outbox.id = m.id AND outbox.leased_by = $5",
            )
            .bind(&self.last.0)
            .bind(&self.last.1)
            .bind(&self.last.2)
            .bind(&self.last.3)
            .bind(worker)
            .execute(&mut *c)
            .await?;
        }
        Ok(())
    }

    /// On SQLite each kind is one `UPDATE ... FROM (VALUES ...)` per few
    /// hundred marks (anonymous `?`, as in `enqueue`).
    async fn write_sqlite(
        &self,
        c: &mut sqlx::SqliteConnection,
        worker: &str,
    ) -> anyhow::Result<()> {
        const SENT: &str = "status = 'sent', accepted_at = m.column2, smtp_reply = m.column3, lease_until = NULL, last_error = NULL, updated_at = m.column2";
        const RETRY: &str = "status = 'pending', not_before = m.column3, last_error = m.column4, lease_until = NULL, updated_at = m.column2";
        const LAST: &str = "status = m.column3, smtp_reply = m.column4, last_error = m.column4, lease_until = NULL, updated_at = m.column2";
        // One statement per 200 marks of a kind (at most 800 values).
        macro_rules! update_in_chunks {
            ($set:expr, $columns:expr, $ids:expr, |$q:ident, $i:ident| $bind:expr) => {
                for start in (0..$ids.len()).step_by(200) {
                    let end = (start + 200).min($ids.len());
                    let text = format!(
                        "UPDATE outbox SET {} FROM (VALUES {}) AS m WHERE outbox.id = m.column1 AND outbox.leased_by = ?",
                        $set,
                        placeholders(end - start, $columns, false)
                    );
                    let mut $q = sqlx::query(&text);
                    for $i in start..end {
                        $q = $bind;
                    }
                    $q.bind(worker).execute(&mut *c).await?;
                }
            };
        }
        let (ids, at, replies) = &self.sent;
        update_in_chunks!(SENT, 3, ids, |q, i| q
            .bind(ids[i])
            .bind(at[i])
            .bind(replies[i]));
        let (ids, at, retry_at, errors) = &self.retry;
        update_in_chunks!(RETRY, 4, ids, |q, i| q
            .bind(ids[i])
            .bind(at[i])
            .bind(retry_at[i])
            .bind(errors[i]));
        let (ids, at, statuses, replies) = &self.last;
        update_in_chunks!(LAST, 4, ids, |q, i| q
            .bind(ids[i])
            .bind(at[i])
            .bind(statuses[i])
            .bind(replies[i]));
        Ok(())
    }
}

/// Counts of outbox rows by status, for reports and metrics.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OutboxCounts {
    pub pending: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
    pub undeliverable: i64,
    pub cancelled: i64,
    pub skipped: i64,
}

impl Store {
    /// Adds messages; a dedupe key already present is left alone. Returns how many were new.
    pub async fn enqueue(&self, messages: &[NewMessage], now: i64) -> anyhow::Result<u64> {
        let mut added = 0;
        let mut tx = self.begin().await?;
        // 500 rows a statement, with anonymous `?` parameters on SQLite (see
        // `Store::numbered`: numbered ones made this quadratic).
        for batch in messages.chunks(500) {
            let sql = format!(
                "INSERT INTO outbox (dedupe_key, campaign_id, enrolment_id, step, recipient, message_id, scheduled_at, not_before, status, created_at, updated_at)
                 VALUES {} ON CONFLICT (dedupe_key) DO NOTHING",
                placeholders(batch.len(), 11, self.numbered())
            );
            added += on_tx!(tx, |c| {
                let mut q = sqlx::query(&sql);
                for m in batch {
                    q = q
                        .bind(m.dedupe_key.as_str())
                        .bind(m.campaign_id)
                        .bind(m.enrolment_id)
                        .bind(m.step.as_str())
                        .bind(m.recipient.as_str())
                        .bind(m.message_id.as_str())
                        .bind(m.scheduled_at)
                        .bind(m.not_before)
                        .bind(m.status.as_str())
                        .bind(now)
                        .bind(now);
                }
                q.execute(&mut *c).await?.rows_affected()
            });
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Claims up to `limit` due messages of active campaigns for `worker`
    /// until `lease_until`, cancelling in the same transaction any whose
    /// person completed, left or was exempted since it was planned.
    pub async fn claim_due(
        &self,
        now: i64,
        lease_until: i64,
        worker: &str,
        limit: i64,
        thanks_steps: &[String],
    ) -> anyhow::Result<Vec<ClaimedMessage>> {
        // Two ranges of the (status, not_before) index, each already in
        // claim order, so a claim reads about `limit` index entries however
        // long the outbox is: expired leases (a crashed worker's messages)
        // first, then what fell due. One statement for both (on PostgreSQL
        // the lookup of what rendering needs is part of it too).
        let due = |lock: &str| {
            format!(
                "SELECT id FROM (SELECT o.id FROM outbox o
                   WHERE o.status = 'sending' AND o.lease_until < $3 AND o.campaign_id IN (SELECT id FROM campaigns WHERE status = 'active')
                   ORDER BY o.not_before, o.id LIMIT $4 {lock}) AS expired
                 UNION ALL
                 SELECT id FROM (SELECT o.id FROM outbox o
                   WHERE o.status = 'pending' AND o.not_before <= $3 AND o.campaign_id IN (SELECT id FROM campaigns WHERE status = 'active')
                   ORDER BY o.not_before, o.id LIMIT $4 {lock}) AS fell_due
                 LIMIT $4"
            )
        };
        const SET: &str = "status = 'sending', lease_until = $1, leased_by = $2, attempts = attempts + 1, updated_at = $3";
        const COLUMNS: &str = "o.id, o.campaign_id, o.enrolment_id, o.step, o.recipient, o.message_id, o.attempts,
                    c.status AS campaign_status, e.due_at, e.completed_at, e.exempted_at, e.left_at,
                    (s.active = 1) AS staff_active, s.email AS staff_email, s.first_name, s.last_name, s.department, s.role, s.facility, s.attributes,
                    CAST(CASE WHEN s.bounced_email = s.email THEN 1 ELSE 0 END AS BIGINT) AS address_bounced";
        const JOINS: &str = "JOIN campaigns c ON c.id = o.campaign_id
             LEFT JOIN enrolments e ON e.id = o.enrolment_id
             LEFT JOIN staff s ON s.id = e.staff_id";
        let mut tx = self.begin().await?;
        let claimed = match tx.conn() {
            super::Conn::Postgres(c) => {
                let sql = format!(
                    "WITH claimed AS (
                       UPDATE outbox SET {SET} WHERE id IN ({}) RETURNING *)
                     SELECT {COLUMNS} FROM claimed o {JOINS} ORDER BY o.not_before, o.id",
                    due("FOR UPDATE OF o SKIP LOCKED")
                );
                sqlx::query_as::<_, ClaimedMessage>(&sql)
                    .bind(lease_until)
                    .bind(worker)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(&mut *c)
                    .await?
            }
            super::Conn::Sqlite(c) => {
                // SQLite has no UPDATE inside WITH; the lookup is a second
                // statement in the same transaction (in process: no round trip).
                let claim = format!(
                    "UPDATE outbox SET {SET} WHERE id IN ({}) RETURNING id",
                    due("")
                );
                let ids: Vec<i64> = sqlx::query_scalar(&claim)
                    .bind(lease_until)
                    .bind(worker)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(&mut *c)
                    .await?;
                if ids.is_empty() {
                    Vec::new()
                } else {
                    let sql = format!(
                        "SELECT {COLUMNS} FROM outbox o {JOINS} WHERE o.id IN {} ORDER BY o.not_before, o.id",
                        placeholders(1, ids.len(), false)
                    );
                    let mut q = sqlx::query_as::<_, ClaimedMessage>(&sql);
                    for id in &ids {
                        q = q.bind(*id);
                    }
                    q.fetch_all(&mut *c).await?
                }
            }
        };
        if claimed.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let (eligible, stale): (Vec<_>, Vec<_>) = claimed
            .into_iter()
            .partition(|m| still_wanted(m, thanks_steps));
        for m in &stale {
            on_tx!(tx, |c| {
                sqlx::query("UPDATE outbox SET status = 'cancelled', last_error = $1, lease_until = NULL, updated_at = $2 WHERE id = $3")
                .bind(why_unwanted(m))
                .bind(now)
                .bind(m.id)
                .execute(&mut *c)
                .await?.rows_affected()
            });
        }
        tx.commit().await?;
        Ok(eligible)
    }

    /// Records how attempts ended, only where `worker` still holds the
    /// lease. SQLite commits one writer at a time and PostgreSQL costs a round
    /// trip a statement, so one statement per kind of outcome, all in one
    /// transaction, instead of one per message (docs/benchmarks.md).
    pub async fn record_marks(&self, worker: &str, marks: &[Mark]) -> anyhow::Result<()> {
        if marks.is_empty() {
            return Ok(());
        }
        let columns = MarkColumns::of(marks);
        match self.native() {
            super::Pool::Postgres(pool) if columns.kinds() == 1 => {
                columns
                    .write_postgres(&mut *pool.acquire().await?, worker)
                    .await?;
            }
            super::Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                columns.write_postgres(&mut tx, worker).await?;
                tx.commit().await?;
            }
            super::Pool::Sqlite(pool) => {
                let mut tx = pool.begin_with(super::SQLITE_BEGIN).await?;
                columns.write_sqlite(&mut tx, worker).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Gives claimed but unsent messages back (on shutdown), undoing the
    /// attempt: one statement for all of them (500 a statement on SQLite).
    pub async fn release(&self, ids: &[i64], worker: &str, now: i64) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        match self.native() {
            super::Pool::Postgres(pool) => {
                sqlx::query(
                    "UPDATE outbox SET status = 'pending', lease_until = NULL, attempts = attempts - 1, updated_at = $1
                     WHERE id = ANY($2) AND leased_by = $3 AND status = 'sending'",
                )
                .bind(now)
                .bind(ids)
                .bind(worker)
                .execute(pool)
                .await?;
            }
            super::Pool::Sqlite(pool) => {
                for batch in ids.chunks(500) {
                    let sql = format!(
                        "UPDATE outbox SET status = 'pending', lease_until = NULL, attempts = attempts - 1, updated_at = ?
                         WHERE leased_by = ? AND status = 'sending' AND id IN {}",
                        placeholders(1, batch.len(), false)
                    );
                    let mut q = sqlx::query(&sql).bind(now).bind(worker);
                    for id in batch {
                        q = q.bind(*id);
                    }
                    q.execute(pool).await?;
                }
            }
        }
        Ok(())
    }

    /// Whose leases hold messages in flight: the distinct claim holders.
    pub async fn claim_holders(&self) -> anyhow::Result<Vec<String>> {
        Ok(on_pool!(self, |c| {
            sqlx::query_scalar(
            "SELECT DISTINCT leased_by FROM outbox WHERE status = 'sending' AND leased_by IS NOT NULL",
        )
        .fetch_all(c)
        .await?
        }))
    }

    /// Ends the leases `holder` holds, so the next claim takes its messages
    /// at once: for a holder known to be dead. Returns how many.
    pub async fn expire_leases(&self, holder: &str, now: i64) -> anyhow::Result<u64> {
        Ok(on_pool!(self, |c| {
            sqlx::query(
            "UPDATE outbox SET lease_until = $1, updated_at = $2 WHERE status = 'sending' AND leased_by = $3",
        )
        .bind(now - 1)
        .bind(now)
        .bind(holder)
        .execute(c)
        .await?
        .rows_affected()
        }))
    }

    /// How many messages `worker` holds claimed (status `sending`).
    pub async fn claimed_by(&self, worker: &str) -> anyhow::Result<i64> {
        Ok(on_pool!(self, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE status = 'sending' AND leased_by = $1",
        )
        .bind(worker)
        .fetch_one(c)
        .await?))
    }

    /// Cancels every pending message of a campaign.
    pub async fn cancel_pending(
        &self,
        campaign_id: i64,
        now: i64,
        reason: &str,
    ) -> anyhow::Result<u64> {
        Ok(on_pool!(self, |c| {
            sqlx::query("UPDATE outbox SET status = 'cancelled', last_error = $1, updated_at = $2 WHERE campaign_id = $3 AND status = 'pending'")
            .bind(reason)
            .bind(now)
            .bind(campaign_id)
            .execute(c)
            .await?
            .rows_affected()
        }))
    }

    /// The earliest `not_before` of pending messages of active campaigns.
    pub async fn next_due(&self) -> anyhow::Result<Option<i64>> {
        Ok(on_pool!(self, |c| sqlx::query_scalar(
            "SELECT MIN(o.not_before) FROM outbox o JOIN campaigns c ON c.id = o.campaign_id
             WHERE o.status = 'pending' AND c.status = 'active'",
        )
        .fetch_one(c)
        .await?))
    }

    /// How many messages of a campaign are placed in each clock hour (UTC,
    /// hours since the epoch) from `from_hour` on: everything that holds or
    /// held a place, i.e. all but skipped and cancelled messages. One row per
    /// hour, however many messages (`max_per_hour` placement).
    pub async fn placed_per_hour(
        &self,
        campaign_id: i64,
        from_hour: i64,
    ) -> anyhow::Result<Vec<(i64, i64)>> {
        self.messages_per_hour(campaign_id, from_hour, "'skipped', 'cancelled'")
            .await
    }

    /// Messages of a campaign per clock hour from `from_hour` on, but for
    /// those whose status is in `excluded` (a constant SQL list).
    pub(super) async fn messages_per_hour(
        &self,
        campaign_id: i64,
        from_hour: i64,
        excluded: &'static str,
    ) -> anyhow::Result<Vec<(i64, i64)>> {
        let sql = format!(
            "SELECT not_before / 3600000 AS hour, COUNT(*) FROM outbox
             WHERE campaign_id = $1 AND not_before >= $2 AND status NOT IN ({excluded})
             GROUP BY not_before / 3600000"
        );
        Ok(on_pool!(self, |c| sqlx::query_as(&sql)
            .bind(campaign_id)
            .bind(from_hour * 3_600_000)
            .fetch_all(c)
            .await?))
    }

    pub async fn outbox_counts(&self, campaign_id: Option<i64>) -> anyhow::Result<OutboxCounts> {
        let rows: Vec<(OutboxStatus, i64)> = on_pool!(self, |c| {
            sqlx::query_as(
            "SELECT status, COUNT(*) FROM outbox WHERE ($1 = 0 OR campaign_id = $1) GROUP BY status",
        )
        .bind(campaign_id.unwrap_or(0))
        .fetch_all(c)
        .await?
        });
        let mut c = OutboxCounts::default();
        for (status, n) in rows {
            let slot = match status {
                OutboxStatus::Pending => &mut c.pending,
                OutboxStatus::Sending => &mut c.sending,
                OutboxStatus::Sent => &mut c.sent,
                OutboxStatus::Failed => &mut c.failed,
                OutboxStatus::Undeliverable => &mut c.undeliverable,
                OutboxStatus::Cancelled => &mut c.cancelled,
                OutboxStatus::Skipped => &mut c.skipped,
            };
            *slot = n;
        }
        Ok(c)
    }
}

/// Whether a claimed message should still go out.
fn still_wanted(m: &ClaimedMessage, thanks_steps: &[String]) -> bool {
    if m.enrolment_id.is_none() {
        return true; // manager digests are checked when rendered
    }
    let thanks = thanks_steps.contains(&m.step);
    m.staff_active == Some(true)
        && m.exempted_at.is_none()
        && m.left_at.is_none()
        && m.address_bounced == 0
        && (thanks || m.completed_at.is_none())
}

fn why_unwanted(m: &ClaimedMessage) -> &'static str {
    if m.completed_at.is_some() {
        "completed before sending"
    } else if m.exempted_at.is_some() {
        "exempted"
    } else if m.address_bounced != 0 {
        "address bounced"
    } else {
        "left the roster"
    }
}

impl Store {
    /// Messages accepted by the relay, per step, in campaign order of first send.
    pub async fn messages_by_step(&self) -> anyhow::Result<Vec<(String, i64)>> {
        Ok(on_pool!(self, |c| {
            sqlx::query_as("SELECT step, COUNT(*) FROM outbox WHERE status = 'sent' GROUP BY step ORDER BY MIN(accepted_at)")
            .fetch_all(c)
            .await?
        }))
    }
}
