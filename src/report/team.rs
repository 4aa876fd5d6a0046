//! The optional manager digest: each manager's team status (who completed,
//! who is still open, who is overdue) on `report.manager_digest_cron`. One
//! per manager per campaign per week, claimed like the weekly summary, so
//! several instances send it once.

use super::email::{self, Envelope};
use super::jobs::ReportJobs;
use crate::clock::{from_millis, to_millis};
use crate::store::campaign::{CampaignRow, EnrolmentView};
use crate::store::report::ReportKind;
use crate::store::{CampaignStatus, EnrolmentStatus, ReportOutcome};
use chrono::{DateTime, Datelike, Utc};
use lettre::message::Mailbox;
use lettre::Message;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Sends this week's team digests; returns (manager, outcome) pairs.
pub async fn send_team_digests(jobs: &ReportJobs) -> anyhow::Result<Vec<(String, ReportOutcome)>> {
    let now = jobs.clock.now();
    let week = now.with_timezone(&jobs.settings.time_zone).iso_week();
    let mut outcomes = Vec::new();
    for row in jobs.store.campaigns().await? {
        if row.status != CampaignStatus::Active || now < from_millis(row.starts_at) {
            continue;
        }
        for (manager, team) in teams(jobs, &row, now).await? {
            let key = format!(
                "team:{}:{}:{}-W{:02}",
                row.slug,
                manager,
                week.year(),
                week.week()
            );
            if !jobs
                .store
                .claim_weekly(
                    &key,
                    ReportKind::Team,
                    row.id,
                    &jobs.instance,
                    to_millis(now),
                    std::slice::from_ref(&manager),
                )
                .await?
            {
                continue;
            }
            let outcome = deliver(jobs, &row, &manager, &team, &key).await?;
            outcomes.push((manager, outcome));
        }
    }
    Ok(outcomes)
}

/// Each manager's people still in the campaign, by manager address.
pub async fn teams(
    jobs: &ReportJobs,
    row: &CampaignRow,
    now: DateTime<Utc>,
) -> anyhow::Result<BTreeMap<String, Vec<EnrolmentView>>> {
    let mut teams: BTreeMap<String, Vec<EnrolmentView>> = BTreeMap::new();
    for e in jobs
        .store
        .enrolment_list(Some(&row.slug), None, to_millis(now))
        .await?
    {
        if let Some(manager) = e.manager_email.clone().filter(|m| !m.is_empty()) {
            if !matches!(e.status, EnrolmentStatus::Left | EnrolmentStatus::Exempted) {
                teams.entry(manager).or_default().push(e);
            }
        }
    }
    Ok(teams)
}

/// Composes and sends one digest under a claim this instance holds, then
/// records the outcome; a failure is recorded for the retry pass.
pub(super) async fn deliver(
    jobs: &ReportJobs,
    row: &CampaignRow,
    manager: &str,
    team: &[EnrolmentView],
    key: &str,
) -> anyhow::Result<ReportOutcome> {
    // Not the key: a manager's address may hold characters a file name must not.
    let stem = format!("team-{}-{}", row.slug, uuid::Uuid::new_v4().simple());
    let message = compose(jobs, row, manager, team);
    super::resend::send_claimed(jobs, key, &stem, message, "digest").await
}

/// One manager's digest, rendered with the running `team_digest` template.
pub fn compose(
    jobs: &ReportJobs,
    row: &CampaignRow,
    manager: &str,
    team: &[EnrolmentView],
) -> anyhow::Result<Message> {
    let contact = crate::campaign::definition_of(row)
        .map(|c| c.contact.to_string())
        .unwrap_or_default();
    let context = email::merge(
        email::common(&jobs.settings.organisation, &row.name, &row.slug, &contact),
        view(manager, team),
    );
    let rendered = jobs.templates().render_data(email::TEAM, &context)?;
    let envelope = Envelope {
        from: jobs.sender.from(),
        to: vec![Mailbox::new(
            Some(manager_name(&jobs.settings.organisation)),
            manager.parse()?,
        )],
        now: jobs.clock.now(),
        kind: "team",
        domain: jobs.sender.domain(),
    };
    email::message(&envelope, rendered, None)
}

/// The display name on the digest's To: a bare address reads as bulk mail,
/// and the roster names a manager by address only.
fn manager_name(org: &str) -> String {
    format!("{org} team manager")
}

/// The template's figures: counts by status and one row per person.
fn view(manager: &str, team: &[EnrolmentView]) -> Value {
    let count = |s: EnrolmentStatus| team.iter().filter(|e| e.status == s).count();
    let people: Vec<Value> = team
        .iter()
        .map(|e| {
            json!({
                "full_name": crate::delivery::context::full_name(&e.first_name, &e.last_name),
                "email": e.email,
                "status": e.status,
                "due_date": from_millis(e.due_at).format("%-d %B %Y").to_string(),
            })
        })
        .collect();
    json!({
        "manager": { "email": manager },
        "counts": {
            "completed": count(EnrolmentStatus::Completed),
            "open": count(EnrolmentStatus::Open),
            "overdue": count(EnrolmentStatus::Overdue),
            "total": team.len(),
        },
        "team": people,
    })
}
