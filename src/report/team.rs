//! The optional manager digest: each manager's team status (who completed,
//! who is still open, who is overdue) on `report.manager_digest_cron`. One
//! per manager per campaign per week, claimed like the weekly summary, so
//! several instances send it once.

use super::jobs::ReportJobs;
use super::plot::escape;
use crate::clock::{from_millis, to_millis};
use crate::delivery::header_safe;
use crate::store::campaign::{CampaignRow, EnrolmentView};
use crate::store::report::ReportKind;
use chrono::{DateTime, Datelike, Utc};
use lettre::message::{header::ContentType, MultiPart, SinglePart};
use lettre::Message;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Sends this week's team digests; returns (manager, outcome) pairs.
pub async fn send_team_digests(jobs: &ReportJobs) -> anyhow::Result<Vec<(String, String)>> {
    let now = jobs.clock.now();
    let week = now.with_timezone(&jobs.settings.time_zone).iso_week();
    let mut outcomes = Vec::new();
    for row in jobs.store.campaigns().await? {
        if row.status != "active" || now < from_millis(row.starts_at) {
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
pub(super) async fn teams(
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
            if e.status != "left" && e.status != "exempted" {
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
) -> anyhow::Result<String> {
    // Not the key: a manager's address may hold characters a file name must not.
    let stem = format!("team-{}-{}", row.slug, uuid::Uuid::new_v4().simple());
    let message = compose(jobs, &row.name, manager, team);
    super::resend::send_claimed(jobs, key, &stem, message, "digest").await
}

fn compose(
    jobs: &ReportJobs,
    campaign: &str,
    manager: &str,
    team: &[EnrolmentView],
) -> anyhow::Result<Message> {
    let count = |s: &str| team.iter().filter(|e| e.status == s).count();
    let (done, open, overdue) = (count("completed"), count("open"), count("overdue"));
    let subject = format!(
        "Your team and {campaign}: {done} of {} completed",
        team.len()
    );
    let mut text = format!("Your team's progress on {campaign}: {done} completed, {open} still to do, {overdue} overdue.\n\n");
    let mut html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Team status</title></head><body style=\"font-family:Arial,Helvetica,sans-serif;color:#1a1a1a\"><p>Your team's progress on <strong>{}</strong>: {done} completed, {open} still to do, {overdue} overdue.</p><table role=\"presentation\" cellpadding=\"6\" style=\"border-collapse:collapse\">",
        escape(campaign)
    );
    for e in team {
        let name = format!("{} {}", e.first_name, e.last_name)
            .trim()
            .to_string();
        let due = from_millis(e.due_at).format("%-d %B %Y");
        let _ = writeln!(text, "- {name} <{}>: {} (due {due})", e.email, e.status);
        let _ = write!(html, "<tr><td style=\"border-bottom:1px solid #ddd\">{}</td><td style=\"border-bottom:1px solid #ddd\">{}</td><td style=\"border-bottom:1px solid #ddd\">due {due}</td></tr>", escape(&name), escape(&e.status));
    }
    html.push_str("</table></body></html>");
    let from = jobs.sender.from().clone();
    Ok(Message::builder()
        .from(from)
        .to(manager.parse()?)
        .subject(header_safe(&subject))
        .date(jobs.clock.now().into())
        .message_id(Some(format!(
            "<team.{}@{}>",
            uuid::Uuid::new_v4().simple(),
            jobs.sender.domain()
        )))
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                ),
        )?)
}
