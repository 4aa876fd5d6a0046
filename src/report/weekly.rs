//! The weekly summary email to leadership: headline numbers and their change
//! since last week, the completion chart as an inline image with a text
//! alternative, the departments furthest behind, and what is scheduled next.
//! Sent once per campaign per week however many instances run, because the
//! send is claimed with a unique key first.

use super::jobs::ReportJobs;
use super::model::{self, Report};
use super::plot::{completion_png, escape};
use crate::clock::{from_millis, to_millis};
use crate::store::campaign::CampaignRow;
use crate::store::report::ReportKind;
use chrono::{DateTime, Datelike, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart, SinglePart};
use lettre::Message;
use std::fmt::Write as _;

/// What a weekly run did for one campaign.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WeeklyOutcome {
    pub campaign: String,
    pub key: String,
    /// sent | already-sent | no-recipients | failed: REASON
    pub outcome: String,
}

/// Sends this week's summary of every campaign that is not cancelled.
/// `manual` sends even when this week's summary already went out.
pub async fn send_weekly(jobs: &ReportJobs, manual: bool) -> anyhow::Result<Vec<WeeklyOutcome>> {
    let now = jobs.clock.now();
    let mut outcomes = Vec::new();
    for row in jobs.store.campaigns().await? {
        if row.status == "cancelled" || now < from_millis(row.starts_at) {
            continue;
        }
        outcomes.push(send_one(jobs, &row, now, manual).await?);
    }
    Ok(outcomes)
}

async fn send_one(
    jobs: &ReportJobs,
    row: &CampaignRow,
    now: DateTime<Utc>,
    manual: bool,
) -> anyhow::Result<WeeklyOutcome> {
    let week = now.with_timezone(&jobs.settings.time_zone).iso_week();
    let mut key = format!("{}:{}-W{:02}", row.slug, week.year(), week.week());
    if manual {
        key.push_str(&format!(":manual:{}", to_millis(now)));
    }
    let outcome = |o: &str| WeeklyOutcome {
        campaign: row.slug.clone(),
        key: key.clone(),
        outcome: o.to_string(),
    };
    let recipients = jobs.settings.recipients.clone();
    if recipients.is_empty() {
        tracing::warn!("report.recipients is empty; the weekly summary has nobody to go to");
        return Ok(outcome("no-recipients"));
    }
    let kind = if manual {
        ReportKind::Manual
    } else {
        ReportKind::Weekly
    };
    if !jobs
        .store
        .claim_weekly(
            &key,
            kind,
            row.id,
            &jobs.instance,
            to_millis(now),
            &recipients,
        )
        .await?
    {
        return Ok(outcome("already-sent"));
    }
    let result = deliver(jobs, row, now, &key, &recipients).await?;
    Ok(outcome(&result))
}

/// Composes and sends the summary under a claim this instance holds, then
/// records the outcome. A summary that cannot be composed is recorded as
/// failed too, so the retry pass (`report::resend`) takes it up again.
pub(super) async fn deliver(
    jobs: &ReportJobs,
    row: &CampaignRow,
    now: DateTime<Utc>,
    key: &str,
    recipients: &[String],
) -> anyhow::Result<String> {
    let stem = format!("weekly-{}", key.replace(':', "-"));
    let message = compose(jobs, row, now, recipients).await;
    let result = super::resend::send_claimed(jobs, key, &stem, message, "summary").await?;
    tracing::info!(campaign = %row.slug, outcome = %crate::telemetry::scrub(&result), "weekly summary");
    Ok(result)
}

/// The summary message for one campaign.
pub async fn compose(
    jobs: &ReportJobs,
    row: &CampaignRow,
    now: DateTime<Utc>,
    recipients: &[String],
) -> anyhow::Result<Message> {
    let min = jobs.settings.min_group_size;
    let report = model::build(&jobs.store, row, now, min).await?;
    let before = model::week_before(&jobs.store, row, now, min).await?;
    let (pending, next_at) = jobs.store.next_scheduled(row.id).await?;
    let summary = Summary {
        report: &report,
        before: &before,
        pending,
        next_at: next_at.map(from_millis),
        org: &jobs.settings.organisation,
    };
    let from = jobs.sender.from().clone();
    let mut builder = Message::builder()
        .from(from)
        .subject(crate::delivery::header_safe(&format!(
            "{}: {} of {} completed ({:.0}%)",
            report.campaign.name,
            report.outcome.completed,
            report.population.enrolled,
            report.outcome.completion_rate * 100.0
        )))
        .date(now.into())
        .message_id(Some(format!(
            "<weekly.{}@{}>",
            uuid::Uuid::new_v4().simple(),
            jobs.sender.domain()
        )));
    for r in recipients {
        builder = builder.to(r.parse()?);
    }
    let png = completion_png(&report.weekly);
    let html = SinglePart::builder()
        .header(ContentType::TEXT_HTML)
        .body(summary.html());
    let chart = Attachment::new_inline("completion-chart".to_string())
        .body(png, ContentType::parse("image/png")?);
    Ok(builder.multipart(
        MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(summary.text()),
            )
            .multipart(MultiPart::related().singlepart(html).singlepart(chart)),
    )?)
}

struct Summary<'a> {
    report: &'a Report,
    before: &'a Report,
    pending: i64,
    next_at: Option<DateTime<Utc>>,
    org: &'a str,
}

impl Summary<'_> {
    fn headline(&self) -> Vec<(String, String, String)> {
        let (r, b) = (self.report, self.before);
        let delta = |now: u64, then: u64| format!("{:+}", now as i64 - then as i64);
        vec![
            (
                "Enrolled".into(),
                r.population.enrolled.to_string(),
                delta(r.population.enrolled, b.population.enrolled),
            ),
            (
                "Completed".into(),
                r.outcome.completed.to_string(),
                delta(r.outcome.completed, b.outcome.completed),
            ),
            (
                "Completion rate".into(),
                format!("{:.1}%", r.outcome.completion_rate * 100.0),
                format!(
                    "{:+.1} pts",
                    (r.outcome.completion_rate - b.outcome.completion_rate) * 100.0
                ),
            ),
            (
                "Overdue".into(),
                r.outcome.overdue.to_string(),
                delta(r.outcome.overdue, b.outcome.overdue),
            ),
            (
                "Clicked the course link (people)".into(),
                r.engagement.clicked_human.to_string(),
                delta(r.engagement.clicked_human, b.engagement.clicked_human),
            ),
        ]
    }

    /// Departments with the lowest completion rate (suppressed groups excluded).
    fn behind(&self) -> Vec<(String, f64)> {
        let mut groups: Vec<(String, f64)> = self
            .report
            .breakdowns
            .get("department")
            .into_iter()
            .flatten()
            .filter_map(|g| Some((g.group.clone(), g.completion_rate?)))
            .collect();
        groups.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        groups.truncate(3);
        groups
    }

    fn alt(&self) -> String {
        match self.report.weekly.last() {
            Some(w) => format!(
                "Completion chart: {} people completed of a target of {} so far.",
                w.completed, w.target
            ),
            None => "Completion chart: no data yet.".into(),
        }
    }

    fn next(&self) -> String {
        match self.next_at {
            Some(at) if self.pending > 0 => format!(
                "{} messages are scheduled; the next goes out {}.",
                self.pending,
                at.format("%A %-d %B at %H:%M UTC")
            ),
            _ => "No messages are scheduled right now.".into(),
        }
    }

    fn text(&self) -> String {
        let mut t = format!(
            "{} — weekly rollout summary for {}\n\n",
            self.org, self.report.campaign.name
        );
        for (label, value, change) in self.headline() {
            let _ = writeln!(t, "{label}: {value} ({change} since last week)");
        }
        let _ = writeln!(t, "\n{}\n\nDepartments furthest behind:", self.alt());
        for (group, rate) in self.behind() {
            let _ = writeln!(t, "- {group}: {:.0}%", rate * 100.0);
        }
        let _ = writeln!(t, "\nWhat happens next: {}", self.next());
        t
    }

    fn html(&self) -> String {
        let mut h = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Weekly rollout summary</title></head><body style=\"margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;color:#1a1a1a\">\
             <table role=\"presentation\" width=\"100%\" style=\"max-width:600px\"><tr><td><h1 style=\"font-size:20px;color:#1f4e79\">{} — weekly rollout summary</h1><p>{}</p>\
             <table role=\"presentation\" cellpadding=\"6\" style=\"border-collapse:collapse\">",
            escape(self.org),
            escape(&self.report.campaign.name)
        );
        for (label, value, change) in self.headline() {
            let _ = write!(h, "<tr><td style=\"border-bottom:1px solid #ddd\">{}</td><td style=\"border-bottom:1px solid #ddd;font-weight:bold\">{}</td><td style=\"border-bottom:1px solid #ddd;color:#555\">{} since last week</td></tr>", escape(&label), escape(&value), escape(&change));
        }
        let _ = write!(h, "</table><p><img src=\"cid:completion-chart\" width=\"600\" height=\"240\" alt=\"{}\" style=\"display:block;max-width:100%;height:auto;border:0\"></p><p style=\"color:#555;font-size:13px\">Blue: completed. Grey: people whose due date has passed.</p><h2 style=\"font-size:16px\">Departments furthest behind</h2><ul>", escape(&self.alt()));
        for (group, rate) in self.behind() {
            let _ = write!(h, "<li>{}: {:.0}%</li>", escape(&group), rate * 100.0);
        }
        let _ = write!(h, "</ul><h2 style=\"font-size:16px\">What happens next</h2><p>{}</p></td></tr></table></body></html>", escape(&self.next()));
        h
    }
}
