//! Where a campaign stands, for its admin page: messages by step and
//! status, and the people still to complete (with their managers).

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

/// Enrolments that still count: the person is active and has not left.
const OPEN: &str = "e.campaign_id = $1 AND s.active = 1 AND e.left_at IS NULL";

impl Store {
    /// (step, status, messages) of one campaign's outbox.
    pub async fn step_counts(
        &self,
        campaign_id: i64,
    ) -> anyhow::Result<Vec<(String, OutboxStatus, i64)>> {
        Ok(on_pool!(self, |c| {
            sqlx::query_as(
            "SELECT step, status, COUNT(*) FROM outbox WHERE campaign_id = $1 GROUP BY step, status",
        )
        .bind(campaign_id)
        .fetch_all(c)
        .await?
        }))
    }

    /// People enrolled and still in the roster (completed and exempted included).
    pub async fn enrolled_count(&self, campaign_id: i64) -> anyhow::Result<i64> {
        let sql = format!(
            "SELECT COUNT(*) FROM enrolments e JOIN staff s ON s.id = e.staff_id WHERE {OPEN}"
        );
        Ok(on_pool!(self, |c| sqlx::query_scalar(&sql)
            .bind(campaign_id)
            .fetch_one(c)
            .await?))
    }

    /// The first `limit` people still to complete, soonest due first, and
    /// how many there are in all.
    pub async fn open_people(
        &self,
        campaign_id: i64,
        limit: i64,
    ) -> anyhow::Result<(Vec<OpenPerson>, i64)> {
        let open = format!("{OPEN} AND e.completed_at IS NULL AND e.exempted_at IS NULL");
        let people = on_pool!(self, |c| sqlx::query_as(&format!(
            "SELECT s.first_name, s.last_name, s.email, s.department, s.manager_email, e.due_at
             FROM enrolments e JOIN staff s ON s.id = e.staff_id WHERE {open}
             ORDER BY e.due_at, s.last_name, s.first_name, s.email LIMIT $2"
        ))
        .bind(campaign_id)
        .bind(limit)
        .fetch_all(c)
        .await?);
        let total = on_pool!(self, |c| sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM enrolments e JOIN staff s ON s.id = e.staff_id WHERE {open}"
        ))
        .bind(campaign_id)
        .fetch_one(c)
        .await?);
        Ok((people, total))
    }
}
