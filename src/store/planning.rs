//! The planning tick's reads and writes. Each enrolment carries `next_at`
//! (migration 0013): when its next step or its manager's next digest falls
//! due, or a value <= 0 that triggers set when something about it changed
//! (a completion, an exemption, a departure or return, a new due date, the
//! person's record, the campaign file). A tick reads one range of the
//! `enrolments_next` index, so a tick with nothing due reads no enrolment.

use super::edit::EnrolmentState;
use super::Store;

/// An enrolment the tick must look at, with the `next_at` it was read with.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueEnrolment {
    #[sqlx(flatten)]
    pub state: EnrolmentState,
    pub next_at: i64,
}

/// A new `next_at` for an enrolment, written only if it still holds `read`
/// (a change committed meanwhile lowered it, and wins).
#[derive(Debug, Clone, Copy)]
pub struct NextAt {
    pub enrolment_id: i64,
    pub read: i64,
    pub next_at: Option<i64>,
}

/// The roster's mark: how many imports, and the newest person's id.
const ROSTER_MARK: &str =
    "(SELECT COUNT(*) FROM roster_imports), (SELECT COALESCE(MAX(id), 0) FROM staff)";

impl Store {
    /// (the roster the campaign's tick last looked at for people to enrol,
    /// the roster now): equal when no import, new person or removed
    /// enrolment can have brought anyone new.
    pub async fn roster_marks(&self, campaign_id: i64) -> anyhow::Result<(String, String)> {
        let sql = format!("SELECT roster_seen, {ROSTER_MARK} FROM campaigns WHERE id = $1");
        let (seen, imports, top): (String, i64, i64) = on_pool!(self, |c| {
            sqlx::query_as(&sql).bind(campaign_id).fetch_one(c).await?
        });
        Ok((seen, format!("{imports}:{top}")))
    }

    /// The roster now, as [`Store::roster_marks`] marks it: it changes with
    /// every import and every new person, and only then.
    pub async fn roster_mark(&self) -> anyhow::Result<String> {
        let sql = format!("SELECT {ROSTER_MARK}");
        let (imports, top): (i64, i64) =
            on_pool!(self, |c| sqlx::query_as(&sql).fetch_one(c).await?);
        Ok(format!("{imports}:{top}"))
    }

    /// An audience's counts remembered at `mark` by [`Store::remember_audience`].
    pub fn remembered_audience(&self, audience: &str, mark: &str) -> Option<(u64, u64)> {
        let audiences = self.audiences.lock().unwrap_or_else(|e| e.into_inner());
        audiences
            .get(audience)
            .filter(|(at, _)| at == mark)
            .map(|(_, counts)| *counts)
    }

    /// Keeps an audience's counts until the roster changes: counting reads
    /// every active person, and the dashboard's report needs it on every visit.
    pub fn remember_audience(&self, audience: String, mark: String, counts: (u64, u64)) {
        let mut audiences = self.audiences.lock().unwrap_or_else(|e| e.into_inner());
        audiences.insert(audience, (mark, counts));
    }

    /// Records which roster the campaign's tick looked at for people to enrol.
    pub async fn set_roster_seen(&self, campaign_id: i64, mark: &str) -> anyhow::Result<()> {
        on_pool!(self, |c| sqlx::query(
            "UPDATE campaigns SET roster_seen = $1 WHERE id = $2"
        )
        .bind(mark)
        .bind(campaign_id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Enrolments of the campaign whose `next_at` has passed, with the
    /// person's fields: one index range.
    pub async fn due_enrolments(
        &self,
        campaign_id: i64,
        now: i64,
    ) -> anyhow::Result<Vec<DueEnrolment>> {
        let sql = format!(
            "SELECT e.id AS enrolment_id, {}, (s.active = 1) AS active, e.enrolled_at, e.due_at,
                    e.completed_at, e.exempted_at, e.left_at, e.next_at
             FROM enrolments e JOIN staff s ON s.id = e.staff_id
             WHERE e.campaign_id = $1 AND e.next_at IS NOT NULL AND e.next_at <= $2",
            super::campaign::CANDIDATE_COLUMNS
        );
        Ok(on_pool!(self, |c| sqlx::query_as(&sql)
            .bind(campaign_id)
            .bind(now)
            .fetch_all(c)
            .await?))
    }

    /// (enrolment id, step) of the messages already in the outbox for the
    /// enrolments [`Store::due_enrolments`] reads.
    pub async fn due_enqueued_steps(
        &self,
        campaign_id: i64,
        now: i64,
    ) -> anyhow::Result<Vec<(i64, String)>> {
        Ok(on_pool!(self, |c| sqlx::query_as(
            "SELECT o.enrolment_id, o.step FROM enrolments e JOIN outbox o ON o.enrolment_id = e.id
             WHERE e.campaign_id = $1 AND e.next_at IS NOT NULL AND e.next_at <= $2",
        )
        .bind(campaign_id)
        .bind(now)
        .fetch_all(c)
        .await?))
    }

    /// Cancels the pending messages of these enrolments (of `steps` only,
    /// when given), saying why. Returns how many.
    pub async fn cancel_pending_of(
        &self,
        enrolments: &[i64],
        steps: Option<&[String]>,
        reason: &str,
        now: i64,
    ) -> anyhow::Result<u64> {
        if enrolments.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin().await?;
        let mut cancelled = 0;
        for id in enrolments {
            let pending: Vec<(i64, String)> = on_tx!(tx, |c| sqlx::query_as(
                "SELECT id, step FROM outbox WHERE enrolment_id = $1 AND status = 'pending'",
            )
            .bind(*id)
            .fetch_all(&mut *c)
            .await?);
            for (message, step) in pending {
                if steps.is_some_and(|steps| !steps.contains(&step)) {
                    continue;
                }
                cancelled += on_tx!(tx, |c| sqlx::query(
                    "UPDATE outbox SET status = 'cancelled', last_error = $1, updated_at = $2
                     WHERE id = $3 AND status = 'pending'",
                )
                .bind(reason)
                .bind(now)
                .bind(message)
                .execute(&mut *c)
                .await?
                .rows_affected());
            }
        }
        tx.commit().await?;
        Ok(cancelled)
    }

    /// Writes the tick's new `next_at` values, each only where the row
    /// still holds the value the tick read.
    ///
    /// On PostgreSQL one short statement per 1,000 rows, in id order, each
    /// committed alone: a transaction over a whole campaign held its row
    /// locks for seconds, so the sent marks' fact triggers and the other
    /// instances' ticks queued behind it.
    pub async fn set_next_at(&self, updates: &[NextAt]) -> anyhow::Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        if let super::Pool::Postgres(pool) = self.native() {
            let mut sorted: Vec<&NextAt> = updates.iter().collect();
            sorted.sort_by_key(|u| u.enrolment_id);
            for chunk in sorted.chunks(1000) {
                let ids: Vec<i64> = chunk.iter().map(|u| u.enrolment_id).collect();
                let next: Vec<Option<i64>> = chunk.iter().map(|u| u.next_at).collect();
                let read: Vec<i64> = chunk.iter().map(|u| u.read).collect();
                sqlx::query(
                    "UPDATE enrolments SET next_at = u.next_at
                     FROM unnest($1::int8[], $2::int8[], $3::int8[]) AS u(id, next_at, read)
                     WHERE enrolments.id = u.id AND enrolments.next_at = u.read",
                )
                .bind(&ids)
                .bind(&next)
                .bind(&read)
                .execute(pool)
                .await?;
            }
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for u in updates {
            on_tx!(tx, |c| sqlx::query(
                "UPDATE enrolments SET next_at = $1 WHERE id = $2 AND next_at = $3"
            )
            .bind(u.next_at)
            .bind(u.enrolment_id)
            .bind(u.read)
            .execute(&mut *c)
            .await?
            .rows_affected());
        }
        tx.commit().await?;
        Ok(())
    }
}
