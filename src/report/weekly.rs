//! The weekly summary email to leadership: headline numbers and their change
//! since last week, the completion chart as an inline image with a text
//! alternative, the departments furthest behind, and what is scheduled next.
//! Sent once per campaign per week however many instances run, because the
//! send is claimed with a unique key first.

use super::email::{self, Envelope};
use super::jobs::ReportJobs;
use super::model::{self, Report};
use super::plot::{completion_png, CHART_HEIGHT, CHART_WIDTH};
use crate::clock::{from_millis, to_millis};
use crate::store::campaign::CampaignRow;
use crate::store::report::ReportKind;
use crate::store::{CampaignStatus, ReportOutcome};
use chrono::{DateTime, Datelike, Utc};
use lettre::message::Mailbox;
use lettre::Message;
use serde_json::{json, Value};

/// What a weekly run did for one campaign.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WeeklyOutcome {
    pub campaign: String,
    pub key: String,
    /// Printed and serialised as sent | already-sent | no-recipients | failed: REASON
    pub outcome: ReportOutcome,
}

/// Sends this week's summary of every campaign that is not cancelled.
/// `manual` sends even when this week's summary already went out.
pub async fn send_weekly(jobs: &ReportJobs, manual: bool) -> anyhow::Result<Vec<WeeklyOutcome>> {
    let now = jobs.clock.now();
    let mut outcomes = Vec::new();
    for row in jobs.store.campaigns().await? {
        if row.status == CampaignStatus::Cancelled || now < from_millis(row.starts_at) {
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
    let outcome = |o: ReportOutcome| WeeklyOutcome {
        campaign: row.slug.clone(),
        key: key.clone(),
        outcome: o,
    };
    let recipients = jobs.settings.recipients.clone();
    if recipients.is_empty() {
        tracing::warn!("report.recipients is empty; the weekly summary has nobody to go to");
        return Ok(outcome(ReportOutcome::NoRecipients));
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
        return Ok(outcome(ReportOutcome::AlreadySent));
    }
    let result = deliver(jobs, row, now, &key, &recipients).await?;
    Ok(outcome(result))
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
) -> anyhow::Result<ReportOutcome> {
    let stem = format!("weekly-{}", key.replace(':', "-"));
    let message = compose(jobs, row, now, recipients).await;
    let result = super::resend::send_claimed(jobs, key, &stem, message, "summary").await?;
    tracing::info!(campaign = %row.slug, outcome = %crate::telemetry::scrub(&result.to_string()), "weekly summary");
    Ok(result)
}

/// The summary message for one campaign, rendered with the running
/// `weekly_summary` template.
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
    };
    let contact = crate::campaign::definition_of(row)
        .map(|c| c.contact.to_string())
        .unwrap_or_else(|_| jobs.sender.from().email.to_string());
    let context = email::merge(
        email::common(&jobs.settings.organisation, &row.name, &row.slug, &contact),
        summary.view(&jobs.settings.time_zone),
    );
    let rendered = jobs.templates().render_data(email::WEEKLY, &context)?;
    let to = recipients
        .iter()
        .map(|r| {
            Ok(Mailbox::new(
                Some(recipient_name(&jobs.settings.organisation)),
                r.parse()?,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let envelope = Envelope {
        from: jobs.sender.from(),
        to,
        now,
        kind: "weekly",
        domain: jobs.sender.domain(),
    };
    email::message(&envelope, rendered, Some(completion_png(&report.weekly)))
}

/// The display name on the summary's To: a bare address reads as bulk mail.
fn recipient_name(org: &str) -> String {
    format!("{org} rollout report")
}

struct Summary<'a> {
    report: &'a Report,
    before: &'a Report,
    pending: i64,
    next_at: Option<DateTime<Utc>>,
}

impl Summary<'_> {
    /// (label, what it counts, value, change since last week).
    fn headline(&self) -> Vec<[String; 4]> {
        let (r, b) = (self.report, self.before);
        let delta = |now: u64, then: u64| format!("{:+}", now as i64 - then as i64);
        let row = |label: &str, meaning: &str, value: String, change: String| {
            [label.to_string(), meaning.to_string(), value, change]
        };
        vec![
            row(
                "Enrolled",
                "people expected to take the course, leavers and exemptions not counted",
                r.population.enrolled.to_string(),
                delta(r.population.enrolled, b.population.enrolled),
            ),
            row(
                "Completed",
                "people whose completion has been recorded",
                r.outcome.completed.to_string(),
                delta(r.outcome.completed, b.outcome.completed),
            ),
            row(
                "Completion rate",
                "completed as a share of enrolled",
                super::render::pct(r.outcome.completion_rate),
                format!(
                    "{:+.1} pts",
                    (r.outcome.completion_rate - b.outcome.completion_rate) * 100.0
                ),
            ),
            row(
                "Overdue",
                "people past their due date who have not completed",
                r.outcome.overdue.to_string(),
                delta(r.outcome.overdue, b.outcome.overdue),
            ),
            row(
                "Clicked the course link (people)",
                "people who followed the link themselves, mail scanners not counted",
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
                "Completion chart: {} completed of a target of {} so far.",
                crate::campaign::words::people_count(w.completed),
                w.target
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

    /// The template's figures. Values are data: the HTML template escapes
    /// each one (department names come from the roster).
    fn view(&self, tz: &chrono_tz::Tz) -> Value {
        let (r, e) = (self.report, &self.report.engagement);
        let headline: Vec<Value> = self
            .headline()
            .into_iter()
            .map(|[label, meaning, value, change]| {
                json!({ "label": label, "meaning": meaning, "value": value, "change": change })
            })
            .collect();
        let weeks: Vec<Value> = r
            .weekly
            .iter()
            .map(|w| json!({ "week_ending": w.week_ending.format("%-d %B %Y").to_string(), "completed": w.completed, "target": w.target }))
            .collect();
        let behind: Vec<Value> = self
            .behind()
            .into_iter()
            .map(|(group, rate)| json!({ "group": group, "rate": format!("{:.0}%", rate * 100.0) }))
            .collect();
        json!({
            "as_of": r.as_of.with_timezone(tz).format("%A %-d %B %Y").to_string(),
            "figures": {
                "completed": r.outcome.completed,
                "enrolled": r.population.enrolled,
                "overdue": r.outcome.overdue,
                "completion_percent": format!("{:.0}%", r.outcome.completion_rate * 100.0),
            },
            "headline": headline,
            "chart": {
                "alt": self.alt(),
                "description": super::chart::describe(&r.weekly),
                "width": CHART_WIDTH,
                "height": CHART_HEIGHT,
            },
            "weeks": weeks,
            "behind": behind,
            "reach": {
                "messages_sent": r.reach.messages_sent,
                "people_reached": r.reach.people_reached,
                "people_undeliverable": r.reach.people_undeliverable,
                "people_bounced": r.bounces.people_bounced,
                "opened": e.opened_human,
                "clicked": e.clicked_human,
            },
            "next": self.next(),
        })
    }
}
