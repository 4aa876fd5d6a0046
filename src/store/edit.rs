//! Queries behind applying a changed campaign to a running rollout: the
//! state an edit is measured against, and its writes, all in one
//! transaction so an edit is applied whole or not at all.

use super::campaign::{Candidate, CANDIDATE_COLUMNS};
use super::Store;
use super::Tx;

/// One enrolment with the person's audience fields.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EnrolmentState {
    pub enrolment_id: i64,
    #[sqlx(flatten)]
    pub person: Candidate,
    /// Whether the person is in the roster.
    pub active: bool,
    pub enrolled_at: i64,
    pub due_at: i64,
    pub completed_at: Option<i64>,
    pub exempted_at: Option<i64>,
    pub left_at: Option<i64>,
}

impl EnrolmentState {
    /// Still to complete: not completed, exempted or gone.
    pub fn is_open(&self) -> bool {
        self.completed_at.is_none() && self.exempted_at.is_none() && self.left_at.is_none()
    }
}

/// A message not yet claimed by a worker (status `pending`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingMessage {
    pub id: i64,
    pub enrolment_id: Option<i64>,
    pub step: String,
    pub dedupe_key: String,
    pub recipient: String,
    pub scheduled_at: i64,
    pub not_before: i64,
    pub attempts: i64,
    pub time_zone: Option<String>,
}

/// The campaign row an edit writes.
#[derive(Debug, Clone)]
pub struct CampaignWrite<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub definition: &'a str,
    pub starts_at: i64,
}

/// Everything an edit changes besides the campaign row.
#[derive(Debug, Clone, Default)]
pub struct EditWrites {
    /// (enrolment id, new due at)
    pub due_dates: Vec<(i64, i64)>,
    /// Enrolments whose person left the audience.
    pub leave: Vec<i64>,
    /// Enrolments whose person is back in the audience.
    pub restore: Vec<i64>,
    /// Pending messages nobody should receive any more, with the reason.
    pub cancel: Vec<(i64, &'static str)>,
    /// Pending messages moved: (id, scheduled at, not before).
    pub moves: Vec<(i64, i64, i64)>,
    /// New enrolments: (staff id, enrolled at, due at).
    pub enrol: Vec<(i64, i64, i64)>,
}

impl Store {
    /// Every enrolment of a campaign with the person's fields.
    pub async fn enrolment_states(&self, campaign_id: i64) -> anyhow::Result<Vec<EnrolmentState>> {
        self.enrolment_states_where(campaign_id, "").await
    }

    async fn enrolment_states_where(
        &self,
        campaign_id: i64,
        and: &str,
    ) -> anyhow::Result<Vec<EnrolmentState>> {
        let sql = format!(
            "SELECT e.id AS enrolment_id, {CANDIDATE_COLUMNS}, (s.active = 1) AS active, e.enrolled_at, e.due_at,
                    e.completed_at, e.exempted_at, e.left_at
             FROM enrolments e JOIN staff s ON s.id = e.staff_id WHERE e.campaign_id = $1{and}"
        );
        Ok(on_pool!(self, |c| sqlx::query_as(&sql)
            .bind(campaign_id)
            .fetch_all(c)
            .await?))
    }

    /// Everyone active in the roster, with the fields audiences look at.
    pub async fn active_people(&self) -> anyhow::Result<Vec<Candidate>> {
        let sql = format!("SELECT {CANDIDATE_COLUMNS} FROM staff s WHERE s.active = 1");
        Ok(on_pool!(self, |c| sqlx::query_as(&sql)
            .fetch_all(c)
            .await?))
    }

    /// A campaign's messages waiting in the outbox, not claimed.
    pub async fn pending_messages(&self, campaign_id: i64) -> anyhow::Result<Vec<PendingMessage>> {
        Ok(on_pool!(self, |c| sqlx::query_as(
            "SELECT o.id, o.enrolment_id, o.step, o.dedupe_key, o.recipient, o.scheduled_at,
                    o.not_before, o.attempts, s.time_zone
             FROM outbox o LEFT JOIN enrolments e ON e.id = o.enrolment_id
             LEFT JOIN staff s ON s.id = e.staff_id
             WHERE o.campaign_id = $1 AND o.status = 'pending'",
        )
        .bind(campaign_id)
        .fetch_all(c)
        .await?))
    }

    /// Like `placed_per_hour`, without pending messages: the places an edit
    /// cannot move (sent, in flight, failed).
    pub async fn held_per_hour(
        &self,
        campaign_id: i64,
        from_hour: i64,
    ) -> anyhow::Result<Vec<(i64, i64)>> {
        self.messages_per_hour(campaign_id, from_hour, "'skipped', 'cancelled', 'pending'")
            .await
    }

    /// Writes a campaign and what its edit changes, in one transaction.
    /// Messages claimed meanwhile (no longer `pending`) are left alone.
    /// Returns (campaign id, created).
    pub async fn write_campaign_edit(
        &self,
        campaign: &CampaignWrite<'_>,
        writes: &EditWrites,
        now: i64,
    ) -> anyhow::Result<(i64, bool)> {
        let mut tx = self.begin().await?;
        let (id, created) = upsert_campaign(&mut tx, campaign, now).await?;
        for (enrolment, due_at) in &writes.due_dates {
            on_tx!(tx, |c| sqlx::query(
                "UPDATE enrolments SET due_at = $1 WHERE id = $2 AND completed_at IS NULL"
            )
            .bind(*due_at)
            .bind(*enrolment)
            .execute(&mut *c)
            .await?
            .rows_affected());
        }
        set_left(&mut tx, &writes.leave, Some(now)).await?;
        set_left(&mut tx, &writes.restore, None).await?;
        for (message, reason) in &writes.cancel {
            on_tx!(tx, |c| {
                sqlx::query("UPDATE outbox SET status = 'cancelled', last_error = $1, updated_at = $2 WHERE id = $3 AND status = 'pending'")
                .bind(*reason)
                .bind(now)
                .bind(*message)
                .execute(&mut *c)
                .await?.rows_affected()
            });
        }
        for (message, scheduled_at, not_before) in &writes.moves {
            on_tx!(tx, |c| {
                sqlx::query("UPDATE outbox SET scheduled_at = $1, not_before = $2, updated_at = $3 WHERE id = $4 AND status = 'pending'")
                .bind(*scheduled_at)
                .bind(*not_before)
                .bind(now)
                .bind(*message)
                .execute(&mut *c)
                .await?.rows_affected()
            });
        }
        super::campaign::insert_enrolments(&mut tx, self.numbered(), id, &writes.enrol).await?;
        tx.commit().await?;
        Ok((id, created))
    }

    /// Marks enrolments as out of the audience (`left_at`), or back in.
    pub async fn set_enrolments_left(
        &self,
        ids: &[i64],
        left_at: Option<i64>,
    ) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        set_left(&mut tx, ids, left_at).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn set_left(tx: &mut Tx, ids: &[i64], left_at: Option<i64>) -> anyhow::Result<()> {
    for id in ids {
        on_tx!(tx, |c| sqlx::query(
            "UPDATE enrolments SET left_at = $1 WHERE id = $2 AND completed_at IS NULL"
        )
        .bind(left_at)
        .bind(*id)
        .execute(&mut *c)
        .await?
        .rows_affected());
    }
    Ok(())
}

/// Inserts or updates a campaign by slug; returns (id, created).
pub(super) async fn upsert_campaign(
    tx: &mut Tx,
    c: &CampaignWrite<'_>,
    now: i64,
) -> anyhow::Result<(i64, bool)> {
    let existing: Option<i64> = on_tx!(tx, |conn| sqlx::query_scalar(
        "SELECT id FROM campaigns WHERE slug = $1"
    )
    .bind(c.slug)
    .fetch_optional(&mut *conn)
    .await?);
    if let Some(id) = existing {
        on_tx!(tx, |conn| {
            sqlx::query("UPDATE campaigns SET name = $1, definition = $2, starts_at = $3, updated_at = $4 WHERE id = $5")
            .bind(c.name)
            .bind(c.definition)
            .bind(c.starts_at)
            .bind(now)
            .bind(id)
            .execute(&mut *conn)
            .await?.rows_affected()
        });
        return Ok((id, false));
    }
    let id: i64 = on_tx!(tx, |conn| {
        sqlx::query_scalar(
        "INSERT INTO campaigns (slug, name, definition, status, starts_at, created_at, updated_at)
         VALUES ($1, $2, $3, 'active', $4, $5, $5) RETURNING id",
    )
    .bind(c.slug)
    .bind(c.name)
    .bind(c.definition)
    .bind(c.starts_at)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?
    });
    Ok((id, true))
}
