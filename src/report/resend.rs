//! The retry pass for scheduled summaries and digests. Each is claimed with a
//! unique key before it is sent, so several instances send it once; but a
//! claim whose instance died before sending, or whose send the relay refused,
//! would leave that week without it. Every planning tick takes such claims
//! over once they are a lease old, and sends them again.

use super::jobs::ReportJobs;
use super::{team, weekly};
use crate::clock::to_millis;
use crate::delivery::SendOutcome;
use crate::store::campaign::{CampaignRow, EnrolmentView};
use crate::store::report::{ReportKind, RetryWindow};
use crate::store::{CampaignStatus, ReportOutcome};
use chrono::Duration;
use lettre::Message;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

/// How often one summary or digest is tried in all, first send included.
pub const MAX_ATTEMPTS: i64 = 10;

/// Sends again every unsent claim this instance can take over; returns
/// (report key, outcome) pairs.
pub async fn resend_unsent(jobs: &ReportJobs) -> anyhow::Result<Vec<(String, ReportOutcome)>> {
    let now = jobs.clock.now();
    let window = RetryWindow {
        stale_before: to_millis(now - jobs.settings.lease),
        since: to_millis(now - Duration::days(1)),
        max_attempts: MAX_ATTEMPTS,
    };
    let mut outcomes = Vec::new();
    // When the relay was down, every manager's digest of a campaign is
    // unsent at once: read each campaign, and its teams, once per pass.
    let mut campaigns: HashMap<i64, Option<CampaignRow>> = HashMap::new();
    let mut teams: HashMap<i64, BTreeMap<String, Vec<EnrolmentView>>> = HashMap::new();
    for claim in jobs.store.unsent_reports(window).await? {
        let row = match campaigns.entry(claim.campaign_id) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => slot.insert(jobs.store.campaign_by_id(claim.campaign_id).await?),
        };
        let Some(row) = row.as_ref() else {
            continue;
        };
        let team = claim.kind == ReportKind::Team;
        // As the scheduled jobs do: no summary for a cancelled campaign, no
        // team digest unless it is active.
        let wanted = if team {
            row.status == CampaignStatus::Active
        } else {
            row.status != CampaignStatus::Cancelled
        };
        if !wanted
            || !jobs
                .store
                .reclaim_report(&claim.report_key, &jobs.instance, to_millis(now), window)
                .await?
        {
            continue;
        }
        let outcome = if team {
            let by_manager = match teams.entry(row.id) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(slot) => slot.insert(team::teams(jobs, row, now).await?),
            };
            let manager = claim.recipients.first().map(String::as_str).unwrap_or("");
            let people = by_manager
                .get(manager)
                .map(Vec::as_slice)
                .unwrap_or_default();
            team::deliver(jobs, row, manager, people, &claim.report_key).await?
        } else {
            weekly::deliver(jobs, row, now, &claim.report_key, &claim.recipients).await?
        };
        tracing::info!(
            campaign = %row.slug,
            outcome = %crate::telemetry::scrub(&outcome.to_string()),
            "unsent {} report sent again",
            claim.kind
        );
        outcomes.push((claim.report_key, outcome));
    }
    Ok(outcomes)
}

/// Sends a message under a claim this instance holds and records the
/// outcome; a message that could not be composed is recorded as failed, so
/// that a later tick tries again. `what` names it in that failure.
pub(super) async fn send_claimed(
    jobs: &ReportJobs,
    key: &str,
    file_stem: &str,
    message: anyhow::Result<Message>,
    what: &str,
) -> anyhow::Result<ReportOutcome> {
    let outcome = match message {
        Ok(mut message) => {
            jobs.sender.sign(&mut message);
            let raw = message.formatted();
            match jobs.mailer.send(message.envelope(), &raw, file_stem).await {
                SendOutcome::Accepted(_) => ReportOutcome::Sent,
                SendOutcome::Transient(e) | SendOutcome::Permanent(e) => ReportOutcome::Failed(e),
            }
        }
        Err(e) => ReportOutcome::Failed(format!("cannot compose the {what}: {e:#}")),
    };
    jobs.store
        .finish_weekly(key, &jobs.instance, to_millis(jobs.clock.now()), &outcome)
        .await?;
    Ok(outcome)
}
