//! The campaign page's overview: the due rule, the audience and how many it
//! matches, the send window and limits, each step's time with its sent and
//! pending messages, the people still to complete (with their managers) and
//! who is exempted. Everything here is read-only.

use super::{AppState, UiError};
use crate::campaign::words::{due_in_words, duration_in_words, offset_in_words};
use crate::campaign::{Campaign, SendWindow, Step};
use crate::clock::{from_millis, to_millis};
use crate::delivery::context::{full_name, human_date};
use crate::store::campaign::CampaignRow;
use crate::store::OutboxStatus;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// People still to complete shown on the page; the rest are a count (the
/// report has them all).
const OPEN_SHOWN: i64 = 100;

/// The overview's data for the page template.
pub async fn overview(
    state: &AppState,
    row: &CampaignRow,
    campaign: &Campaign,
    now: DateTime<Utc>,
) -> Result<Value, UiError> {
    let store = &state.app.store;
    let tz = state.app.settings.organisation.time_zone.0;
    let matching = store
        .enrolment_candidates(row.id)
        .await?
        .iter()
        .filter(|p| campaign.audience.matches(p))
        .count() as i64;
    let enrolled = store.enrolled_count(row.id).await?;
    let counts = store.step_counts(row.id).await?;
    let (open, open_total) = store.open_people(row.id, OPEN_SHOWN).await?;
    let exempted = store.exempted_people(row.id).await?;
    let start = campaign.starts_at.with_timezone(&Utc);
    let start_due = campaign.due.resolve(start, tz);
    let when = |at: DateTime<Utc>| {
        at.with_timezone(&tz)
            .format("%A, %-d %B %Y %H:%M %Z")
            .to_string()
    };
    let steps: Vec<Value> = campaign
        .steps
        .iter()
        .map(|s| step_row(s, &counts, start, start_due, &when))
        .collect();
    let now_ms = to_millis(now);
    Ok(json!({
        "starts": when(start),
        "due_rule": due_in_words(campaign.due, tz),
        "audience": audience_lines(campaign),
        "audience_count": enrolled + matching,
        "enrolled": enrolled,
        "window": window_text(&campaign.send_window, tz),
        "limits": limits_text(campaign),
        "steps": steps,
        "open": open.iter().map(|p| json!({
            "name": full_name(&p.first_name, &p.last_name),
            "email": p.email,
            "department": p.department,
            "manager": p.manager_email,
            "due": human_date(from_millis(p.due_at), tz),
            "overdue": p.due_at < now_ms,
        })).collect::<Vec<_>>(),
        "open_total": open_total,
        "open_more": (open_total - open.len() as i64).max(0),
        "exempted": exempted.iter().map(|p| json!({
            "name": full_name(&p.first_name, &p.last_name),
            "email": p.email,
            "reason": p.exempt_reason,
            "since": human_date(from_millis(p.exempted_at), tz),
        })).collect::<Vec<_>>(),
    }))
}

/// One step: when it goes out (its rule, and the date for people enrolled
/// at the start), and its messages by status.
fn step_row(
    step: &Step,
    counts: &[(String, OutboxStatus, i64)],
    start: DateTime<Utc>,
    start_due: DateTime<Utc>,
    when: &dyn Fn(DateTime<Utc>) -> String,
) -> Value {
    use OutboxStatus::*;
    let count = |wanted: &[OutboxStatus]| -> i64 {
        counts
            .iter()
            .filter(|(s, status, _)| *s == step.name && wanted.contains(status))
            .map(|(_, _, n)| n)
            .sum()
    };
    let (rule, first) = match step.at {
        Some(at) => (
            offset_in_words(at),
            Some(when(at.resolve(start, start_due))),
        ),
        None => ("when the person completes the course".to_string(), None),
    };
    json!({
        "name": step.name,
        "rule": rule,
        "first": first,
        "sent": count(&[Sent]),
        "pending": count(&[Pending, Sending]),
        "other": count(&[Failed, Undeliverable, Cancelled, Skipped]),
    })
}

/// The audience as lines such as "include department: Supply Chain, Procurement",
/// read from its stored form so every field it names is shown.
fn audience_lines(campaign: &Campaign) -> Vec<String> {
    let value = serde_json::to_value(&campaign.audience).unwrap_or(Value::Null);
    let mut lines = Vec::new();
    for (kind, word) in [("include", "only"), ("exclude", "not")] {
        let fields: BTreeMap<String, Value> = value
            .get(kind)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        for (field, values) in fields {
            let listed: Vec<String> = match values {
                Value::Array(items) => items.iter().map(plain).collect(),
                other => vec![plain(&other)],
            };
            lines.push(format!("{word} {field}: {}", listed.join(", ")));
        }
    }
    if lines.is_empty() {
        lines.push("everyone active in the roster".into());
    }
    lines
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn window_text(window: &SendWindow, tz: chrono_tz::Tz) -> String {
    match window {
        SendWindow::Always => "any time".into(),
        SendWindow::Hours(w) => {
            let zone = w.spec.time_zone.clone().unwrap_or_else(|| tz.to_string());
            let holidays = match w.spec.holidays.len() {
                0 => String::new(),
                1 => ", except 1 holiday".into(),
                n => format!(", except {n} holidays"),
            };
            format!(
                "{} {}, in each person's own time zone (else {zone}){holidays}",
                w.spec.days, w.spec.hours
            )
        }
    }
}

fn limits_text(campaign: &Campaign) -> String {
    let per_hour = match campaign.max_per_hour.filter(|n| *n > 0) {
        Some(n) => format!("at most {n} messages an hour"),
        None => "no hourly limit".into(),
    };
    match campaign.spread {
        Some(d) if !d.as_std().is_zero() => {
            format!("{per_hour}; spread over {}", duration_in_words(d))
        }
        _ => per_hour,
    }
}
