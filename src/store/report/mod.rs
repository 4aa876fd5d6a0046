//! Report queries: every count of the rollout report in three aggregate
//! statements ([`figures`]), the per-person evidence export, and the claims
//! that make the weekly summary go out once.

mod figures;

pub use figures::{report_params, report_sql, GroupCounts, Param, ReportCounts, ReportQuery};

use super::Store;

/// One line of the per-person evidence export: a person and one message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EvidenceRow {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub department: String,
    pub enrolled_at: i64,
    pub due_at: i64,
    pub completed_at: Option<i64>,
    pub completion_source: Option<String>,
    pub exempt_reason: Option<String>,
    pub left_at: Option<i64>,
    pub step: Option<String>,
    pub status: Option<String>,
    pub attempts: Option<i64>,
    pub accepted_at: Option<i64>,
    pub smtp_reply: Option<String>,
    pub message_id: Option<String>,
}

impl Store {
    pub async fn evidence(&self, campaign_id: i64) -> anyhow::Result<Vec<EvidenceRow>> {
        Ok(sqlx::query_as(
            "SELECT s.email, s.first_name, s.last_name, s.department, e.enrolled_at, e.due_at, e.completed_at,
                    e.completion_source, e.exempt_reason, e.left_at,
                    o.step, o.status, o.attempts, o.accepted_at, o.smtp_reply, o.message_id
             FROM enrolments e JOIN staff s ON s.id = e.staff_id
             LEFT JOIN outbox o ON o.enrolment_id = e.id
             WHERE e.campaign_id = $1
             ORDER BY s.last_name, s.first_name, s.email, o.scheduled_at, o.id",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?)
    }
}

impl Store {
    /// Claims a weekly report key; false when another instance (or an earlier run) has it.
    pub async fn claim_weekly(
        &self,
        key: &str,
        campaign_id: i64,
        holder: &str,
        now: i64,
        recipients: &str,
    ) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "INSERT INTO weekly_reports (report_key, campaign_id, claimed_by, claimed_at, recipients) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (report_key) DO NOTHING",
        )
        .bind(key)
        .bind(campaign_id)
        .bind(holder)
        .bind(now)
        .bind(recipients)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn finish_weekly(&self, key: &str, now: i64, outcome: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE weekly_reports SET sent_at = $1, outcome = $2 WHERE report_key = $3")
            .bind(now)
            .bind(outcome)
            .bind(key)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
impl Store {
    /// What is scheduled next for a campaign: pending messages and the earliest `not_before`.
    pub async fn next_scheduled(&self, campaign_id: i64) -> anyhow::Result<(i64, Option<i64>)> {
        Ok(sqlx::query_as(
            "SELECT COUNT(*), MIN(not_before) FROM outbox WHERE campaign_id = $1 AND status = 'pending'",
        )
        .bind(campaign_id)
        .fetch_one(self.pool())
        .await?)
    }
}
