//! Exemptions: the enrolment keeps the current state (`exempted_at`,
//! `exempt_reason`), `exemption_changes` every exemption and removal with
//! who, when and why. Both are written in one transaction, and each write
//! checks the state it expects, so two admins at once cannot both succeed.

use super::campaign::{Candidate, CANDIDATE_COLUMNS};
use super::state::{ExemptionAction, ExemptionChannel};
use super::Store;

/// Who changes an exemption: the OS user on the command line, "admin" on the
/// web page and the API (they have one shared credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub channel: ExemptionChannel,
}

impl Actor {
    /// The admin behind the API's bearer token.
    pub fn api() -> Self {
        Actor {
            name: "admin".into(),
            channel: ExemptionChannel::Api,
        }
    }

    /// The admin signed in to the web page.
    pub fn page() -> Self {
        Actor {
            name: "admin".into(),
            channel: ExemptionChannel::Page,
        }
    }

    /// A command-line user.
    pub fn cli(user: impl Into<String>) -> Self {
        Actor {
            name: user.into(),
            channel: ExemptionChannel::Cli,
        }
    }
}

/// A person an exemption is asked for, and where they stand in the campaign.
#[derive(Debug, Clone)]
pub struct ExemptionTarget {
    pub person: Candidate,
    pub active: bool,
    /// `None` when not enrolled in the campaign.
    pub enrolment: Option<EnrolmentState>,
}

/// The parts of an enrolment an exemption depends on.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EnrolmentState {
    pub id: i64,
    pub enrolled_at: i64,
    pub completed_at: Option<i64>,
    pub exempted_at: Option<i64>,
    pub exempt_reason: Option<String>,
}

/// One current exemption, for `campaign exemptions`, the API and the page.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ExemptionView {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub department: String,
    #[serde(serialize_with = "instant")]
    pub exempted_at: i64,
    pub reason: String,
    /// Who made it and how; "unknown" for exemptions older than the history.
    #[sqlx(rename = "actor")]
    pub by: String,
    pub channel: ExemptionChannel,
}

/// One exemption or removal, as the history keeps it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ExemptionChange {
    pub email: String,
    pub action: ExemptionAction,
    #[serde(serialize_with = "instant")]
    pub at: i64,
    #[sqlx(rename = "actor")]
    pub by: String,
    pub channel: ExemptionChannel,
    pub reason: String,
}

/// Why a write found the enrolment not as it was read (another change won).
#[derive(Debug, thiserror::Error)]
#[error("the enrolment changed meanwhile; look again and retry")]
pub struct Raced;

impl Store {
    /// The person with this address as an exemption needs them.
    pub async fn exemption_target(
        &self,
        campaign_id: i64,
        email: &str,
    ) -> anyhow::Result<Option<ExemptionTarget>> {
        #[derive(sqlx::FromRow)]
        struct Person {
            #[sqlx(flatten)]
            candidate: Candidate,
            active: bool,
        }
        let sql = format!(
            "SELECT {CANDIDATE_COLUMNS}, (s.active = 1) AS active FROM staff s WHERE s.email = $1"
        );
        let person: Option<Person> = on_pool!(self, |c| sqlx::query_as(&sql)
            .bind(email)
            .fetch_optional(c)
            .await?);
        let Some(Person { candidate, active }) = person else {
            return Ok(None);
        };
        let id = candidate.id;
        let enrolment: Option<EnrolmentState> = on_pool!(self, |c| sqlx::query_as(
            "SELECT id, enrolled_at, completed_at, exempted_at, exempt_reason FROM enrolments
             WHERE campaign_id = $1 AND staff_id = $2",
        )
        .bind(campaign_id)
        .bind(id)
        .fetch_optional(c)
        .await?);
        Ok(Some(ExemptionTarget {
            person: candidate,
            active,
            enrolment,
        }))
    }

    /// Exempts a person, enrolling them first (enrolled and due now) when
    /// they are not enrolled yet; cancels their pending messages and records
    /// the change. Refuses (`Raced`) when they completed or were exempted
    /// since `campaign::exempt` looked: nothing is written then.
    pub async fn exempt(
        &self,
        campaign_id: i64,
        staff_id: i64,
        reason: &str,
        now: i64,
        actor: &Actor,
    ) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        on_tx!(tx, |c| {
            sqlx::query(
            "INSERT INTO enrolments (campaign_id, staff_id, enrolled_at, due_at) VALUES ($1, $2, $3, $3)
             ON CONFLICT (campaign_id, staff_id) DO NOTHING",
        )
        .bind(campaign_id)
        .bind(staff_id)
        .bind(now)
        .execute(&mut *c)
        .await?.rows_affected()
        });
        let done = on_tx!(tx, |c| {
            sqlx::query(
            "UPDATE enrolments SET exempted_at = $1, exempt_reason = $2
             WHERE campaign_id = $3 AND staff_id = $4 AND exempted_at IS NULL AND completed_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(campaign_id)
        .bind(staff_id)
        .execute(&mut *c)
        .await?.rows_affected()
        });
        if done != 1 {
            return Err(Raced.into()); // the transaction rolls back on drop
        }
        on_tx!(tx, |c| {
            sqlx::query(
            "UPDATE outbox SET status = 'cancelled', last_error = 'exempted', updated_at = $1
             WHERE status = 'pending' AND enrolment_id = (SELECT id FROM enrolments WHERE campaign_id = $2 AND staff_id = $3)",
        )
        .bind(now)
        .bind(campaign_id)
        .bind(staff_id)
        .execute(&mut *c)
        .await?.rows_affected()
        });
        record(
            &mut tx,
            campaign_id,
            staff_id,
            ExemptionAction::Exempted,
            now,
            actor,
            reason,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a person's exemption and records the removal. The messages
    /// the exemption cancelled (never sent) are dropped so that planning
    /// places the person's steps again, as for a late joiner; an enrolment
    /// the exemption itself created is dropped, so planning enrols the
    /// person with the campaign's own due date. `Raced` when the person is
    /// not exempted (any more).
    pub async fn unexempt(
        &self,
        campaign_id: i64,
        staff_id: i64,
        reason: &str,
        now: i64,
        actor: &Actor,
    ) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        let enrolment: Option<(i64, i64, i64)> = on_tx!(tx, |c| sqlx::query_as(
            "SELECT id, enrolled_at, exempted_at FROM enrolments
             WHERE campaign_id = $1 AND staff_id = $2 AND exempted_at IS NOT NULL",
        )
        .bind(campaign_id)
        .bind(staff_id)
        .fetch_optional(&mut *c)
        .await?);
        let Some((enrolment_id, enrolled_at, exempted_at)) = enrolment else {
            return Err(Raced.into());
        };
        on_tx!(tx, |c| {
            sqlx::query(
            "DELETE FROM outbox WHERE enrolment_id = $1 AND status = 'cancelled' AND last_error = 'exempted'
             AND accepted_at IS NULL AND NOT EXISTS (SELECT 1 FROM events ev WHERE ev.outbox_id = outbox.id)",
        )
        .bind(enrolment_id)
        .execute(&mut *c)
        .await?.rows_affected()
        });
        let dropped = enrolled_at == exempted_at
            && on_tx!(tx, |c| sqlx::query(
                "DELETE FROM enrolments WHERE id = $1 AND completed_at IS NULL
                 AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.enrolment_id = $1)
                 AND NOT EXISTS (SELECT 1 FROM events ev WHERE ev.enrolment_id = $1)",
            )
            .bind(enrolment_id)
            .execute(&mut *c)
            .await?
            .rows_affected())
                == 1;
        if !dropped {
            on_tx!(tx, |c| sqlx::query(
                "UPDATE enrolments SET exempted_at = NULL, exempt_reason = NULL WHERE id = $1",
            )
            .bind(enrolment_id)
            .execute(&mut *c)
            .await?
            .rows_affected());
        }
        record(
            &mut tx,
            campaign_id,
            staff_id,
            ExemptionAction::Removed,
            now,
            actor,
            reason,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The campaign's current exemptions, each with its latest history entry.
    pub async fn exemptions(&self, campaign_id: i64) -> anyhow::Result<Vec<ExemptionView>> {
        Ok(on_pool!(self, |c| {
            sqlx::query_as(
            "SELECT s.email, s.first_name, s.last_name, s.department, e.exempted_at,
                    COALESCE(e.exempt_reason, '') AS reason,
                    COALESCE(h.actor, 'unknown') AS actor, COALESCE(h.channel, 'unknown') AS channel
             FROM enrolments e JOIN staff s ON s.id = e.staff_id
             LEFT JOIN exemption_changes h ON h.id =
               (SELECT MAX(x.id) FROM exemption_changes x
                WHERE x.campaign_id = e.campaign_id AND x.staff_id = e.staff_id AND x.action = 'exempted')
             WHERE e.campaign_id = $1 AND e.exempted_at IS NOT NULL
             ORDER BY s.last_name, s.first_name, s.email",
        )
        .bind(campaign_id)
        .fetch_all(c)
        .await?
        }))
    }

    /// Every exemption and removal in the campaign, oldest first.
    pub async fn exemption_history(
        &self,
        campaign_id: i64,
    ) -> anyhow::Result<Vec<ExemptionChange>> {
        Ok(on_pool!(self, |c| sqlx::query_as(
            "SELECT s.email, h.action, h.at, h.actor, h.channel, h.reason
             FROM exemption_changes h JOIN staff s ON s.id = h.staff_id
             WHERE h.campaign_id = $1 ORDER BY h.at, h.id",
        )
        .bind(campaign_id)
        .fetch_all(c)
        .await?))
    }
}

async fn record(
    tx: &mut super::Tx,
    campaign_id: i64,
    staff_id: i64,
    action: ExemptionAction,
    at: i64,
    actor: &Actor,
    reason: &str,
) -> anyhow::Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO exemption_changes (campaign_id, staff_id, action, at, actor, channel, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(campaign_id)
    .bind(staff_id)
    .bind(action.as_str())
    .bind(at)
    .bind(actor.name.as_str())
    .bind(actor.channel.as_str())
    .bind(reason)
    .execute(&mut *c)
    .await?
    .rows_affected());
    Ok(())
}

/// Instants as RFC 3339 in JSON, as the rest of the API writes them.
fn instant<S: serde::Serializer>(millis: &i64, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&crate::clock::from_millis(*millis), s)
}
