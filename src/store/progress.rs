//! Where a campaign stands, for its admin page: messages by step and
//! status, the people still to complete (with their managers), and who is
//! exempted.

use super::{OutboxStatus, Store};

/// One enrolled person still to complete.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenPerson {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub department: String,
    pub manager_email: Option<String>,
    pub due_at: i64,
}

/// One exempted person, with why and when.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExemptedPerson {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub exempt_reason: Option<String>,
    pub exempted_at: i64,
}

/// Enrolments that still count: the person is active and has not left.
const OPEN: &str = "e.campaign_id = $1 AND s.active = 1 AND e.left_at IS NULL";

impl Store {
    /// (step, status, messages) of one campaign's outbox.
    pub async fn step_counts(
        &self,
        campaign_id: i64,
    ) -> anyhow::Result<Vec<(String, OutboxStatus, i64)>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT step, status, COUNT(*) FROM outbox WHERE campaign_id = $1 GROUP BY step, status",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(step, status, n)| Ok((step, status.parse()?, n)))
            .collect()
    }

    /// People enrolled and still in the roster (completed and exempted included).
    pub async fn enrolled_count(&self, campaign_id: i64) -> anyhow::Result<i64> {
        let sql = format!(
            "SELECT COUNT(*) FROM enrolments e JOIN staff s ON s.id = e.staff_id WHERE {OPEN}"
        );
        Ok(sqlx::query_scalar(&sql)
            .bind(campaign_id)
            .fetch_one(self.pool())
            .await?)
    }

    /// The first `limit` people still to complete, soonest due first, and
    /// how many there are in all.
    pub async fn open_people(
        &self,
        campaign_id: i64,
        limit: i64,
    ) -> anyhow::Result<(Vec<OpenPerson>, i64)> {
        let open = format!("{OPEN} AND e.completed_at IS NULL AND e.exempted_at IS NULL");
        let people = sqlx::query_as(&format!(
            "SELECT s.first_name, s.last_name, s.email, s.department, s.manager_email, e.due_at
             FROM enrolments e JOIN staff s ON s.id = e.staff_id WHERE {open}
             ORDER BY e.due_at, s.last_name, s.first_name, s.email LIMIT $2"
        ))
        .bind(campaign_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let total = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM enrolments e JOIN staff s ON s.id = e.staff_id WHERE {open}"
        ))
        .bind(campaign_id)
        .fetch_one(self.pool())
        .await?;
        Ok((people, total))
    }

    /// Everyone exempted from the campaign, most recent first.
    pub async fn exempted_people(&self, campaign_id: i64) -> anyhow::Result<Vec<ExemptedPerson>> {
        Ok(sqlx::query_as(
            "SELECT s.first_name, s.last_name, s.email, e.exempt_reason, e.exempted_at
             FROM enrolments e JOIN staff s ON s.id = e.staff_id
             WHERE e.campaign_id = $1 AND e.exempted_at IS NOT NULL
             ORDER BY e.exempted_at DESC, s.email",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?)
    }
}
