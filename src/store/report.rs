//! The per-enrolment facts every report figure is computed from. Three
//! grouped queries (enrolments, messages, events), joined in memory by
//! enrolment id, each bounded by the report's as-of instant.

use super::Store;

/// One enrolment with what happened to it, as of some instant.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EnrolmentFacts {
    pub id: i64,
    pub department: String,
    pub facility: String,
    pub role: String,
    pub manager: String,
    pub enrolled_at: i64,
    pub due_at: i64,
    pub completed_at: Option<i64>,
    pub exempted_at: Option<i64>,
    pub left_at: Option<i64>,
}

/// Messages of one enrolment.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct MessageFacts {
    pub enrolment_id: i64,
    pub announced_at: Option<i64>,
    pub sent: i64,
    pub reminders: i64,
    pub undeliverable: i64,
}

/// Events of one enrolment: how many opens and clicks, by people and by machines.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventFacts {
    pub enrolment_id: i64,
    pub opened_human: i64,
    pub opened_machine: i64,
    pub clicked_human: i64,
    pub clicked_machine: i64,
}

/// Enrolments with their person's groups: $1 campaign, $2 as-of.
const ENROLMENT_FACTS: &str =
    "SELECT e.id, s.department, s.facility, s.role, COALESCE(s.manager_email, '') AS manager, e.enrolled_at, e.due_at,
            CASE WHEN e.completed_at <= $2 THEN e.completed_at END AS completed_at,
            CASE WHEN e.exempted_at <= $2 THEN e.exempted_at END AS exempted_at,
            CASE WHEN e.left_at <= $2 THEN e.left_at END AS left_at
     FROM enrolments e JOIN staff s ON s.id = e.staff_id
     WHERE e.campaign_id = $1 AND e.enrolled_at <= $2";

/// Opens and clicks per enrolment, one row each: $1 campaign, $2 as-of.
/// One row per person rather than per (kind, class) keeps the rows the
/// driver hands over to about a third (docs/benchmarks.md, Report).
const EVENT_FACTS: &str = "SELECT enrolment_id,
            SUM(CASE WHEN kind = 'open' AND machine = 0 THEN 1 ELSE 0 END) AS opened_human,
            SUM(CASE WHEN kind = 'open' AND machine <> 0 THEN 1 ELSE 0 END) AS opened_machine,
            SUM(CASE WHEN kind = 'click' AND machine = 0 THEN 1 ELSE 0 END) AS clicked_human,
            SUM(CASE WHEN kind = 'click' AND machine <> 0 THEN 1 ELSE 0 END) AS clicked_machine
     FROM events
     WHERE campaign_id = $1 AND at <= $2 AND enrolment_id IS NOT NULL
     GROUP BY enrolment_id";

/// Messages per enrolment: $1 campaign, $2 as-of, $3 the announcement step,
/// $4 onwards the `reminders` reminder steps.
fn message_facts_sql(reminders: usize) -> String {
    let list = if reminders == 0 {
        "''".to_string()
    } else {
        (0..reminders)
            .map(|i| format!("${}", i + 4))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "SELECT enrolment_id,
                MIN(CASE WHEN step = $3 THEN accepted_at END) AS announced_at,
                SUM(CASE WHEN accepted_at IS NOT NULL THEN 1 ELSE 0 END) AS sent,
                SUM(CASE WHEN accepted_at IS NOT NULL AND step IN ({list}) THEN 1 ELSE 0 END) AS reminders,
                SUM(CASE WHEN status = 'undeliverable' AND updated_at <= $2 THEN 1 ELSE 0 END) AS undeliverable
         FROM (SELECT enrolment_id, step, status, updated_at, CASE WHEN status = 'sent' AND accepted_at <= $2 THEN accepted_at END AS accepted_at
               FROM outbox WHERE campaign_id = $1 AND enrolment_id IS NOT NULL) o
         GROUP BY enrolment_id"
    )
}

/// The SQL of the three fact queries (enrolments, messages, events), named,
/// for `EXPLAIN` in examples/bench_report.rs. Parameters: $1 campaign id,
/// $2 as-of; messages also take $3 the announcement and $4.. the reminders.
pub fn fact_queries(reminders: usize) -> [(&'static str, String); 3] {
    [
        ("enrolment_facts", ENROLMENT_FACTS.to_string()),
        ("message_facts", message_facts_sql(reminders)),
        ("event_facts", EVENT_FACTS.to_string()),
    ]
}

impl Store {
    pub async fn enrolment_facts(
        &self,
        campaign_id: i64,
        as_of: i64,
    ) -> anyhow::Result<Vec<EnrolmentFacts>> {
        Ok(sqlx::query_as(ENROLMENT_FACTS)
            .bind(campaign_id)
            .bind(as_of)
            .fetch_all(self.pool())
            .await?)
    }

    /// `announcement` is the step whose acceptance starts the clock; `reminders` the reminder steps.
    pub async fn message_facts(
        &self,
        campaign_id: i64,
        as_of: i64,
        announcement: &str,
        reminders: &[String],
    ) -> anyhow::Result<Vec<MessageFacts>> {
        let sql = message_facts_sql(reminders.len());
        let mut q = sqlx::query_as(&sql)
            .bind(campaign_id)
            .bind(as_of)
            .bind(announcement);
        for r in reminders {
            q = q.bind(r.as_str());
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    pub async fn event_facts(
        &self,
        campaign_id: i64,
        as_of: i64,
    ) -> anyhow::Result<Vec<EventFacts>> {
        Ok(sqlx::query_as(EVENT_FACTS)
            .bind(campaign_id)
            .bind(as_of)
            .fetch_all(self.pool())
            .await?)
    }
}

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
