//! Queries behind campaigns, enrolments and exemptions.

use super::roster::placeholders;
use super::state::{CampaignStatus, EnrolmentStatus};
use super::Store;

/// A campaign as stored; `definition` is the parsed file as JSON.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CampaignRow {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub definition: String,
    pub status: CampaignStatus,
    pub starts_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What the planner needs to know about one enrolment.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlanningRow {
    pub enrolment_id: i64,
    pub staff_id: i64,
    pub enrolled_at: i64,
    pub due_at: i64,
    pub completed_at: Option<i64>,
    pub time_zone: Option<String>,
    pub manager_email: Option<String>,
    pub email: String,
}

/// Who could be enrolled: every roster field, since an audience may filter
/// on any of them or on an attribute.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct Candidate {
    pub id: i64,
    pub email: String,
    pub employee_id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub department: String,
    pub role: String,
    pub facility: String,
    pub manager_email: Option<String>,
    pub time_zone: Option<String>,
    /// JSON object of the export's other columns.
    pub attributes: String,
}

/// The [`Candidate`] columns of `staff s`.
pub(crate) const CANDIDATE_COLUMNS: &str = "s.id, s.email, s.employee_id, s.first_name, s.last_name, s.department, s.role, s.facility, s.manager_email, s.time_zone, s.attributes";

const CAMPAIGN_COLUMNS: &str =
    "id, slug, name, definition, status, starts_at, created_at, updated_at";

impl Store {
    /// Inserts or updates a campaign by slug; returns (id, created).
    pub async fn upsert_campaign(
        &self,
        slug: &str,
        name: &str,
        definition: &str,
        starts_at: i64,
        now: i64,
    ) -> anyhow::Result<(i64, bool)> {
        let campaign = super::edit::CampaignWrite {
            slug,
            name,
            definition,
            starts_at,
        };
        let mut tx = self.begin().await?;
        let result = super::edit::upsert_campaign(&mut tx, &campaign, now).await?;
        tx.commit().await?;
        Ok(result)
    }

    pub async fn campaign_by_slug(&self, slug: &str) -> anyhow::Result<Option<CampaignRow>> {
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE slug = $1");
        Ok(on_pool!(self, |c| sqlx::query_as(&sql)
            .bind(slug)
            .fetch_optional(c)
            .await?))
    }

    pub async fn campaign_by_id(&self, id: i64) -> anyhow::Result<Option<CampaignRow>> {
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1");
        Ok(on_pool!(self, |c| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(c)
            .await?))
    }

    pub async fn campaigns(&self) -> anyhow::Result<Vec<CampaignRow>> {
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns ORDER BY starts_at, slug");
        Ok(on_pool!(self, |c| sqlx::query_as(&sql)
            .fetch_all(c)
            .await?))
    }

    /// Sets the status; returns false when no campaign has this slug.
    pub async fn set_campaign_status(
        &self,
        slug: &str,
        status: CampaignStatus,
        now: i64,
    ) -> anyhow::Result<bool> {
        let done = on_pool!(self, |c| sqlx::query(
            "UPDATE campaigns SET status = $1, updated_at = $2 WHERE slug = $3"
        )
        .bind(status.as_str())
        .bind(now)
        .bind(slug)
        .execute(c)
        .await?
        .rows_affected());
        Ok(done > 0)
    }

    /// Active people not yet enrolled in the campaign.
    pub async fn enrolment_candidates(&self, campaign_id: i64) -> anyhow::Result<Vec<Candidate>> {
        let sql = format!(
            "SELECT {CANDIDATE_COLUMNS} FROM staff s
             WHERE s.active = 1 AND NOT EXISTS
               (SELECT 1 FROM enrolments e WHERE e.campaign_id = $1 AND e.staff_id = s.id)"
        );
        Ok(on_pool!(self, |c| sqlx::query_as(&sql)
            .bind(campaign_id)
            .fetch_all(c)
            .await?))
    }

    /// Enrols people; (staff id, enrolled at, due at). Existing enrolments are kept.
    pub async fn insert_enrolments(
        &self,
        campaign_id: i64,
        rows: &[(i64, i64, i64)],
    ) -> anyhow::Result<u64> {
        let mut tx = self.begin().await?;
        let added = insert_enrolments(&mut tx, self.numbered(), campaign_id, rows).await?;
        tx.commit().await?;
        Ok(added)
    }

    /// Records a completion; returns false when already completed or not enrolled.
    pub async fn complete_enrolment(
        &self,
        campaign_id: i64,
        staff_id: i64,
        at: i64,
        source: &str,
    ) -> anyhow::Result<bool> {
        let done = on_pool!(self, |c| sqlx::query(
            "UPDATE enrolments SET completed_at = $1, completion_source = $2
             WHERE campaign_id = $3 AND staff_id = $4 AND completed_at IS NULL",
        )
        .bind(at)
        .bind(source)
        .bind(campaign_id)
        .bind(staff_id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(done > 0)
    }
}

/// One overdue person in a manager's digest.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OverdueRow {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub department: String,
    pub role: String,
    pub due_at: i64,
}

impl Store {
    /// A manager's people who are past due in a campaign, not completed, exempted or gone.
    pub async fn overdue_reports(
        &self,
        campaign_id: i64,
        manager_email: &str,
        now: i64,
    ) -> anyhow::Result<Vec<OverdueRow>> {
        Ok(on_pool!(self, |c| sqlx::query_as(
            "SELECT s.first_name, s.last_name, s.email, s.department, s.role, e.due_at
             FROM enrolments e JOIN staff s ON s.id = e.staff_id
             WHERE e.campaign_id = $1 AND s.manager_email = $2 AND s.active = 1 AND e.due_at < $3
               AND e.completed_at IS NULL AND e.exempted_at IS NULL AND e.left_at IS NULL
             ORDER BY s.last_name, s.first_name",
        )
        .bind(campaign_id)
        .bind(manager_email)
        .bind(now)
        .fetch_all(c)
        .await?))
    }

    /// A person by address, active or not.
    pub async fn staff_by_email(
        &self,
        email: &str,
    ) -> anyhow::Result<Option<super::roster::StaffRow>> {
        let sql = format!(
            "SELECT {} FROM staff WHERE email = $1",
            super::roster::STAFF_COLUMNS
        );
        Ok(on_pool!(self, |c| sqlx::query_as(&sql)
            .bind(email)
            .fetch_optional(c)
            .await?))
    }

    /// The enrolment of a person in a campaign: (id, due_at).
    pub async fn enrolment_of(
        &self,
        campaign_id: i64,
        staff_id: i64,
    ) -> anyhow::Result<Option<(i64, i64)>> {
        Ok(on_pool!(self, |c| sqlx::query_as(
            "SELECT id, due_at FROM enrolments WHERE campaign_id = $1 AND staff_id = $2",
        )
        .bind(campaign_id)
        .bind(staff_id)
        .fetch_optional(c)
        .await?))
    }
}

/// One enrolment as the admin API lists it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct EnrolmentView {
    pub campaign: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub department: String,
    pub role: String,
    pub facility: String,
    pub manager_email: Option<String>,
    pub enrolled_at: i64,
    pub due_at: i64,
    pub completed_at: Option<i64>,
    pub completion_source: Option<String>,
    pub exempt_reason: Option<String>,
    pub status: EnrolmentStatus,
}

impl Store {
    /// Enrolments, optionally of one campaign and one department, with a derived status.
    pub async fn enrolment_list(
        &self,
        campaign: Option<&str>,
        department: Option<&str>,
        now: i64,
    ) -> anyhow::Result<Vec<EnrolmentView>> {
        Ok(on_pool!(self, |c| {
            sqlx::query_as(
            "SELECT c.slug AS campaign, s.email, s.first_name, s.last_name, s.department, s.role, s.facility, s.manager_email,
                    e.enrolled_at, e.due_at, e.completed_at, e.completion_source, e.exempt_reason,
                    CASE WHEN e.completed_at IS NOT NULL THEN 'completed'
                         WHEN e.exempted_at IS NOT NULL THEN 'exempted'
                         WHEN e.left_at IS NOT NULL THEN 'left'
                         WHEN e.due_at < $1 THEN 'overdue'
                         ELSE 'open' END AS status
             FROM enrolments e JOIN staff s ON s.id = e.staff_id JOIN campaigns c ON c.id = e.campaign_id
             WHERE ($2 = '' OR c.slug = $2) AND ($3 = '' OR s.department = $3)
             ORDER BY c.slug, s.last_name, s.first_name",
        )
        .bind(now)
        .bind(campaign.unwrap_or(""))
        .bind(department.unwrap_or(""))
        .fetch_all(c)
        .await?
        }))
    }
}

/// Enrolls people inside a transaction; (staff id, enrolled at, due at).
/// Existing enrolments are kept. Returns how many were new.
pub(super) async fn insert_enrolments(
    tx: &mut super::Tx,
    numbered: bool,
    campaign_id: i64,
    rows: &[(i64, i64, i64)],
) -> anyhow::Result<u64> {
    let mut added = 0;
    for batch in rows.chunks(500) {
        let sql = format!(
            "INSERT INTO enrolments (campaign_id, staff_id, enrolled_at, due_at) VALUES {} ON CONFLICT (campaign_id, staff_id) DO NOTHING",
            placeholders(batch.len(), 4, numbered)
        );
        added += on_tx!(tx, |c| {
            let mut q = sqlx::query(&sql);
            for (staff_id, enrolled_at, due_at) in batch {
                q = q
                    .bind(campaign_id)
                    .bind(*staff_id)
                    .bind(*enrolled_at)
                    .bind(*due_at);
            }
            q.execute(&mut *c).await?.rows_affected()
        });
    }
    Ok(added)
}
