//! The dashboard: for each campaign, the funnel, the completion curve, the
//! department table and what is scheduled next. Every figure comes from
//! `report::build`, the same numbers as the CLI and API report.

use super::session::SignedIn;
use super::{AppState, UiError};
use crate::clock::from_millis;
use crate::report::{self, chart, Report};
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(show))
}

async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<SignedIn>,
) -> Result<Html<String>, UiError> {
    let app = &state.app;
    let now = app.clock.now();
    let tz = app.settings.organisation.time_zone.0;
    let mut campaigns = Vec::new();
    for row in app.store.campaigns().await? {
        let report =
            report::build(&app.store, &row, now, app.settings.report.min_group_size).await?;
        let (pending, earliest) = app.store.next_scheduled(row.id).await?;
        let next = json!({
            "pending": pending,
            "earliest": earliest.map(|t| when(from_millis(t), tz)),
            "paused": row.status == crate::store::CampaignStatus::Paused,
        });
        campaigns.push(campaign_view(&report, next, tz));
    }
    let inbox = inbox_view(app, tz).await?;
    let data = json!({ "campaigns": campaigns, "as_of": when(now, tz), "inbox": inbox });
    state
        .ui
        .view
        .page("dashboard", "Dashboard", "dashboard", Some(&session), &data)
}

/// Files the drop folder took lately, newest first: shown while the folder
/// is on, or while it has a history.
async fn inbox_view(app: &crate::http::Parts, tz: chrono_tz::Tz) -> Result<Value, UiError> {
    use crate::store::InboxOutcome;
    let files: Vec<Value> = app
        .store
        .recent_inbox_files(INBOX_ROWS)
        .await?
        .into_iter()
        .map(|f| {
            let status_class = match f.outcome {
                InboxOutcome::Imported => "active",
                InboxOutcome::Rejected => "cancelled",
                InboxOutcome::Importing | InboxOutcome::Duplicate => "paused",
            };
            json!({
                "file_name": f.file_name,
                "kind": f.kind,
                "taken": when(from_millis(f.claimed_at), tz),
                "outcome": f.outcome,
                "status_class": status_class,
                "summary": f.summary,
                "moved_to": f.moved_to,
            })
        })
        .collect();
    let enabled = app.settings.inbox.enabled();
    Ok(json!({ "shown": enabled || !files.is_empty(), "enabled": enabled, "files": files }))
}

/// Rows of the drop folder's table on the dashboard.
const INBOX_ROWS: i64 = 20;

/// A time as people here read it: "Mon 11 Jan 2027, 09:00 EST".
pub fn when(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz)
        .format("%a %-d %b %Y, %H:%M %Z")
        .to_string()
}

fn campaign_view(r: &Report, next: Value, tz: chrono_tz::Tz) -> Value {
    let enrolled = r.population.enrolled;
    let share = |n: u64| match enrolled {
        0 => String::new(),
        _ => format!("{:.0}%", 100.0 * n as f64 / enrolled as f64),
    };
    let funnel: Vec<Value> = [
        ("enrolled", "Enrolled", enrolled, String::new()),
        ("reached", "Reached (email accepted)", r.reach.people_reached, share(r.reach.people_reached)),
        ("opened", "Opened", r.engagement.opened_human, share(r.engagement.opened_human)),
        ("clicked", "Clicked the course link", r.engagement.clicked_human, share(r.engagement.clicked_human)),
        ("completed", "Completed", r.outcome.completed, share(r.outcome.completed)),
        ("overdue", "Overdue", r.outcome.overdue, share(r.outcome.overdue)),
    ]
    .into_iter()
    .map(|(key, label, value, share)| json!({ "key": key, "label": label, "value": value, "share": share }))
    .collect();
    let departments = r.breakdowns.get("department").cloned().unwrap_or_default();
    let weeks: Vec<Value> = r
        .weekly
        .iter()
        .map(|w| json!({ "week": w.week_ending.format("%-d %b %Y").to_string(), "completed": w.completed, "target": w.target }))
        .collect();
    json!({
        "slug": r.campaign.slug,
        "name": r.campaign.name,
        "status": r.campaign.status,
        "cancelled": r.campaign.status == crate::campaign::Status::Cancelled,
        "audience_size": r.campaign.audience_size,
        "nobody_matches": r.campaign.audience_size == 0,
        "funnel": funnel,
        "opened_all": r.engagement.opened_all,
        "clicked_all": r.engagement.clicked_all,
        "chart": chart::completion_svg(
            &r.weekly,
            &format!("Completion curve: {}", r.campaign.name),
            &format!("chart-{}", r.campaign.slug),
        ),
        "weeks": weeks,
        "departments": departments.iter().map(group_view).collect::<Vec<_>>(),
        "min_group_size": r.min_group_size,
        "next": next,
        "bounced_count": r.bounces.people_bounced,
        "bounced": r.bounces.people.iter().map(|b| json!({
            "email": b.email,
            "name": crate::delivery::context::full_name(&b.first_name, &b.last_name),
            "employee_id": b.employee_id,
            "department": b.department,
            "role": b.role,
            "facility": b.facility,
            "manager": b.manager_email,
            "at": when(b.bounced_at, tz),
            "status": b.status,
            "diagnostic": b.diagnostic,
        })).collect::<Vec<_>>(),
    })
}

fn group_view(g: &report::Group) -> Value {
    json!({
        "group": g.group,
        "suppressed": g.suppressed,
        "enrolled": g.enrolled_shown,
        "completed": g.completed,
        "overdue": g.overdue,
        "rate": g.completion_rate.map(|r| format!("{:.0}%", r * 100.0)),
    })
}
