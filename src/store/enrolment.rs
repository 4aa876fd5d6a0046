//! One person's standing in one campaign, as previews need it: their
//! enrolment (or why there is none), what was planned for them, and a
//! manager's people still to complete.

use super::Store;

/// A person's enrolment in a campaign, with every way it can have ended.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EnrolmentDetail {
    pub id: i64,
    pub enrolled_at: i64,
    pub due_at: i64,
    pub completed_at: Option<i64>,
    pub exempted_at: Option<i64>,
    pub exempt_reason: Option<String>,
    pub left_at: Option<i64>,
}

/// One step's message to one enrolment, as the planner placed it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlannedStep {
    pub status: super::OutboxStatus,
    /// When it may go out: inside the window, after spread and limits.
    pub not_before: i64,
    /// When the relay accepted it, once sent.
    pub accepted_at: Option<i64>,
    pub last_error: Option<String>,
}

/// A manager's person still to complete: when they were enrolled and are due.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenReport {
    pub enrolled_at: i64,
    pub due_at: i64,
}

impl Store {
    /// The enrolment of `staff_id` in the campaign, whatever its state.
    pub async fn enrolment_detail(
        &self,
        campaign_id: i64,
        staff_id: i64,
    ) -> anyhow::Result<Option<EnrolmentDetail>> {
        Ok(on_pool!(self, |c| sqlx::query_as(
            "SELECT id, enrolled_at, due_at, completed_at, exempted_at, exempt_reason, left_at
             FROM enrolments WHERE campaign_id = $1 AND staff_id = $2",
        )
        .bind(campaign_id)
        .bind(staff_id)
        .fetch_optional(c)
        .await?))
    }

    /// The message of `step` planned for one enrolment, if the planner has placed it.
    pub async fn planned_step(
        &self,
        enrolment_id: i64,
        step: &str,
    ) -> anyhow::Result<Option<PlannedStep>> {
        Ok(on_pool!(self, |c| sqlx::query_as(
            "SELECT status, not_before, accepted_at, last_error FROM outbox
             WHERE enrolment_id = $1 AND step = $2",
        )
        .bind(enrolment_id)
        .bind(step)
        .fetch_optional(c)
        .await?))
    }

    /// A manager's active people enrolled in the campaign and still to
    /// complete (not exempted, not gone): whom a digest can list.
    pub async fn open_reports(
        &self,
        campaign_id: i64,
        manager_email: &str,
    ) -> anyhow::Result<Vec<OpenReport>> {
        Ok(on_pool!(self, |c| sqlx::query_as(
            "SELECT e.enrolled_at, e.due_at
             FROM enrolments e JOIN staff s ON s.id = e.staff_id
             WHERE e.campaign_id = $1 AND s.manager_email = $2 AND s.active = 1
               AND e.completed_at IS NULL AND e.exempted_at IS NULL AND e.left_at IS NULL",
        )
        .bind(campaign_id)
        .bind(manager_email)
        .fetch_all(c)
        .await?))
    }

    /// A manager's active people not (yet) enrolled in the campaign: whom
    /// the planner may enrol, and a digest would then list.
    pub async fn reports_not_enrolled(
        &self,
        campaign_id: i64,
        manager_email: &str,
    ) -> anyhow::Result<Vec<super::roster::StaffRow>> {
        let sql = format!(
            "SELECT {} FROM staff s WHERE s.manager_email = $2 AND s.active = 1 AND NOT EXISTS
               (SELECT 1 FROM enrolments e WHERE e.campaign_id = $1 AND e.staff_id = s.id)
             ORDER BY s.last_name, s.first_name, s.email",
            super::roster::STAFF_COLUMNS
        );
        Ok(on_pool!(self, |c| sqlx::query_as(&sql)
            .bind(campaign_id)
            .bind(manager_email)
            .fetch_all(c)
            .await?))
    }
}
