//! Report queries: every count of the rollout report in four aggregate
//! statements ([`figures`]), the per-person evidence export, and the claims
//! that make the weekly summary go out once.

mod figures;

pub use figures::{
    report_params, report_sql, CountsFrom, GroupCounts, Param, ReportCounts, ReportQuery,
};

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
        Ok(on_pool!(self, |c| {
            sqlx::query_as(
            "SELECT s.email, s.first_name, s.last_name, s.department, e.enrolled_at, e.due_at, e.completed_at,
                    e.completion_source, e.exempt_reason, e.left_at,
                    o.step, o.status, o.attempts, o.accepted_at, o.smtp_reply, o.message_id
             FROM enrolments e JOIN staff s ON s.id = e.staff_id
             LEFT JOIN outbox o ON o.enrolment_id = e.id
             WHERE e.campaign_id = $1
             ORDER BY s.last_name, s.first_name, s.email, o.scheduled_at, o.id",
        )
        .bind(campaign_id)
        .fetch_all(c)
        .await?
        }))
    }
}

pub use super::state::ReportKind;
use super::state::ReportOutcome;

/// A claimed report that was not sent: its sender died, or the relay refused it.
#[derive(Debug, Clone)]
pub struct UnsentReport {
    pub report_key: String,
    pub campaign_id: i64,
    pub kind: ReportKind,
    /// The addresses it goes to: the summary's recipients, or the one manager.
    pub recipients: Vec<String>,
}

/// An unsent claim as stored: recipients as a JSON array (migration 0008).
#[derive(sqlx::FromRow)]
struct UnsentRow {
    report_key: String,
    campaign_id: i64,
    kind: ReportKind,
    recipients: String,
}

impl UnsentRow {
    /// `None` (and a warning) for recipients that are not a JSON array of
    /// strings: that claim is left alone, the others are still retried.
    fn decode(self) -> Option<UnsentReport> {
        match serde_json::from_str::<Vec<String>>(&self.recipients) {
            Ok(recipients) => Some(UnsentReport {
                report_key: self.report_key,
                campaign_id: self.campaign_id,
                kind: self.kind,
                recipients,
            }),
            Err(e) => {
                tracing::warn!(report_key = %self.report_key, error = %e, "unreadable recipients in weekly_reports; not retried");
                None
            }
        }
    }
}

/// Which unsent claims may be taken again: claimed before `stale_before` (one
/// lease ago, so their sender is taken for dead), but not before `since`
/// (a day-old summary is news no longer), with attempts left.
#[derive(Debug, Clone, Copy)]
pub struct RetryWindow {
    pub stale_before: i64,
    pub since: i64,
    pub max_attempts: i64,
}

const UNSENT: &str = "kind <> 'manual' AND (outcome IS NULL OR outcome <> 'sent')
     AND claimed_at < $1 AND claimed_at >= $2 AND attempts < $3";

impl Store {
    /// Claims a report key for `recipients`; false when another instance (or
    /// an earlier run) has it.
    pub async fn claim_weekly(
        &self,
        key: &str,
        kind: ReportKind,
        campaign_id: i64,
        holder: &str,
        now: i64,
        recipients: &[String],
    ) -> anyhow::Result<bool> {
        let recipients = serde_json::to_string(recipients)?;
        let done = on_pool!(self, |c| {
            sqlx::query(
            "INSERT INTO weekly_reports (report_key, kind, campaign_id, claimed_by, claimed_at, recipients) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (report_key) DO NOTHING",
        )
        .bind(key)
        .bind(kind.as_str())
        .bind(campaign_id)
        .bind(holder)
        .bind(now)
        .bind(recipients.as_str())
        .execute(c)
        .await?.rows_affected()
        });
        Ok(done == 1)
    }

    /// Claims that were taken and not sent, oldest first.
    pub async fn unsent_reports(&self, window: RetryWindow) -> anyhow::Result<Vec<UnsentReport>> {
        let sql = format!(
            "SELECT report_key, campaign_id, kind, recipients FROM weekly_reports WHERE {UNSENT} ORDER BY claimed_at, report_key"
        );
        let rows: Vec<UnsentRow> = on_pool!(self, |c| sqlx::query_as(&sql)
            .bind(window.stale_before)
            .bind(window.since)
            .bind(window.max_attempts)
            .fetch_all(c)
            .await?);
        Ok(rows.into_iter().filter_map(UnsentRow::decode).collect())
    }

    /// Takes over an unsent claim; false when it was sent meanwhile or
    /// another instance took it first (the update is atomic on both backends).
    pub async fn reclaim_report(
        &self,
        key: &str,
        holder: &str,
        now: i64,
        window: RetryWindow,
    ) -> anyhow::Result<bool> {
        let sql = format!(
            "UPDATE weekly_reports SET claimed_by = $4, claimed_at = $5, attempts = attempts + 1, sent_at = NULL, outcome = NULL
             WHERE report_key = $6 AND {UNSENT}"
        );
        let done = on_pool!(self, |c| sqlx::query(&sql)
            .bind(window.stale_before)
            .bind(window.since)
            .bind(window.max_attempts)
            .bind(holder)
            .bind(now)
            .bind(key)
            .execute(c)
            .await?
            .rows_affected());
        Ok(done == 1)
    }

    /// Who holds scheduled report claims that were not sent.
    pub async fn report_claim_holders(&self) -> anyhow::Result<Vec<String>> {
        Ok(on_pool!(self, |c| {
            sqlx::query_scalar(
            "SELECT DISTINCT claimed_by FROM weekly_reports WHERE kind <> 'manual' AND (outcome IS NULL OR outcome <> 'sent')",
        )
        .fetch_all(c)
        .await?
        }))
    }

    /// Ages `holder`'s unsent scheduled claims by `lease` milliseconds, so
    /// the next retry pass takes them over at once: for a holder known to
    /// be dead. Returns how many.
    pub async fn age_report_claims(&self, holder: &str, lease: i64) -> anyhow::Result<u64> {
        Ok(on_pool!(self, |c| sqlx::query(
            "UPDATE weekly_reports SET claimed_at = claimed_at - $1
             WHERE claimed_by = $2 AND kind <> 'manual' AND (outcome IS NULL OR outcome <> 'sent')",
        )
        .bind(lease)
        .bind(holder)
        .execute(c)
        .await?
        .rows_affected()))
    }

    /// Records how a claimed send ended, unless the claim has since passed to
    /// another instance (this one outlived its lease).
    pub async fn finish_weekly(
        &self,
        key: &str,
        holder: &str,
        now: i64,
        outcome: &ReportOutcome,
    ) -> anyhow::Result<()> {
        on_pool!(self, |c| {
            sqlx::query(
            "UPDATE weekly_reports SET sent_at = $1, outcome = $2 WHERE report_key = $3 AND claimed_by = $4",
        )
        .bind(now)
        .bind(outcome.to_string())
        .bind(key)
        .bind(holder)
        .execute(c)
        .await?.rows_affected()
        });
        Ok(())
    }
}
impl Store {
    /// What is scheduled next for a campaign: pending messages and the earliest `not_before`.
    pub async fn next_scheduled(&self, campaign_id: i64) -> anyhow::Result<(i64, Option<i64>)> {
        Ok(on_pool!(self, |c| {
            sqlx::query_as(
            "SELECT COUNT(*), MIN(not_before) FROM outbox WHERE campaign_id = $1 AND status = 'pending'",
        )
        .bind(campaign_id)
        .fetch_one(c)
        .await?
        }))
    }
}
