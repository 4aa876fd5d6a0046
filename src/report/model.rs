//! The rollout report: every figure defined in docs/metrics.md, computed from
//! per-enrolment facts as of one instant. This struct is the stable JSON
//! schema of `report --format json` and GET /api/reports/{slug}.

use crate::campaign::{definition_of, Recipient, Trigger};
use crate::clock::to_millis;
use crate::store::campaign::CampaignRow;
use crate::store::report::{EnrolmentFacts, MessageFacts};
use crate::store::Store;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub campaign: CampaignInfo,
    pub as_of: DateTime<Utc>,
    pub population: Population,
    pub reach: Reach,
    pub engagement: Engagement,
    pub outcome: Outcome,
    /// department, facility, role, manager
    pub breakdowns: BTreeMap<String, Vec<Group>>,
    pub weekly: Vec<WeekPoint>,
    /// Completions in the 7 days before `as_of`.
    pub completed_last_7_days: u64,
    pub min_group_size: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct CampaignInfo {
    pub slug: String,
    pub name: String,
    pub status: String,
    pub starts_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Population {
    /// Targeted people still expected to complete: not exempted, not gone.
    pub enrolled: u64,
    pub exempted: u64,
    /// Deactivated by a roster sync before completing.
    pub left: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Reach {
    /// Messages to enrolled people accepted by the relay.
    pub messages_sent: u64,
    /// Enrolled people with at least one message accepted.
    pub people_reached: u64,
    /// Enrolled people with a message refused permanently (5xx).
    pub people_undeliverable: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Engagement {
    /// Unique enrolled people with an open by a person (a lower bound: images may be blocked).
    pub opened_human: u64,
    /// Unique enrolled people with any open, proxies and scanners included.
    pub opened_all: u64,
    pub clicked_human: u64,
    pub clicked_all: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub completed: u64,
    /// completed / enrolled, 0.0 to 1.0.
    pub completion_rate: f64,
    pub completed_on_time: u64,
    /// Not completed, due date passed.
    pub overdue: u64,
    /// Median days from the announcement's acceptance to completion.
    pub median_days_to_complete: Option<f64>,
    /// Reminder messages accepted per completion.
    pub reminders_per_completion: Option<f64>,
    /// Clicked (as a person) but not completed.
    pub clicked_not_completed: u64,
}

/// One group of a breakdown; counts are absent when the group is suppressed.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub group: String,
    pub suppressed: bool,
    /// `"<N"` when suppressed, else the count as text.
    pub enrolled_shown: String,
    pub enrolled: Option<u64>,
    pub completed: Option<u64>,
    pub overdue: Option<u64>,
    pub completion_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WeekPoint {
    pub week_ending: DateTime<Utc>,
    /// Cumulative completions by the end of the week.
    pub completed: u64,
    /// People whose due date had passed by then: who should have completed.
    pub target: u64,
}

/// Builds the report for one campaign as of `as_of`.
#[tracing::instrument(skip_all, fields(campaign = %row.slug))]
pub async fn build(
    store: &Store,
    row: &CampaignRow,
    as_of: DateTime<Utc>,
    min_group_size: u32,
) -> anyhow::Result<Report> {
    let campaign = definition_of(row)?;
    let now = to_millis(as_of);
    let person_steps: Vec<&str> = campaign
        .steps
        .iter()
        .filter(|s| s.to == Recipient::Person && s.on != Some(Trigger::Completion))
        .map(|s| s.name.as_str())
        .collect();
    let announcement = person_steps.first().copied().unwrap_or("");
    let reminders: Vec<String> = person_steps.iter().skip(1).map(|s| s.to_string()).collect();
    let facts = store.enrolment_facts(row.id, now).await?;
    let messages: HashMap<i64, MessageFacts> = store
        .message_facts(row.id, now, announcement, &reminders)
        .await?
        .into_iter()
        .map(|m| (m.enrolment_id, m))
        .collect();
    let mut events: HashMap<i64, EventFlags> = HashMap::new();
    for e in store.event_facts(row.id, now).await? {
        let flags = EventFlags {
            opened_human: e.opened_human > 0,
            opened_machine: e.opened_machine > 0,
            clicked_human: e.clicked_human > 0,
            clicked_machine: e.clicked_machine > 0,
        };
        events.insert(e.enrolment_id, flags);
    }
    let counted: Vec<&EnrolmentFacts> = facts.iter().filter(|f| counts_as_enrolled(f)).collect();
    let population = Population {
        enrolled: counted.len() as u64,
        exempted: facts.iter().filter(|f| f.exempted_at.is_some()).count() as u64,
        left: facts
            .iter()
            .filter(|f| f.left_at.is_some() && f.exempted_at.is_none() && f.completed_at.is_none())
            .count() as u64,
    };
    let none = MessageFacts::default();
    let msg = |f: &EnrolmentFacts| messages.get(&f.id).unwrap_or(&none);
    let flags = |f: &EnrolmentFacts| events.get(&f.id).copied().unwrap_or_default();
    let reach = Reach {
        messages_sent: counted.iter().map(|f| msg(f).sent as u64).sum(),
        people_reached: counted.iter().filter(|f| msg(f).sent > 0).count() as u64,
        people_undeliverable: counted.iter().filter(|f| msg(f).undeliverable > 0).count() as u64,
    };
    let engagement = Engagement {
        opened_human: counted.iter().filter(|f| flags(f).opened_human).count() as u64,
        opened_all: counted
            .iter()
            .filter(|f| flags(f).opened_human || flags(f).opened_machine)
            .count() as u64,
        clicked_human: counted.iter().filter(|f| flags(f).clicked_human).count() as u64,
        clicked_all: counted
            .iter()
            .filter(|f| flags(f).clicked_human || flags(f).clicked_machine)
            .count() as u64,
    };
    let completed: Vec<&&EnrolmentFacts> = counted
        .iter()
        .filter(|f| f.completed_at.is_some())
        .collect();
    let mut days: Vec<f64> = completed
        .iter()
        .filter_map(|f| Some((f.completed_at? - msg(f).announced_at?) as f64 / 86_400_000.0))
        .filter(|d| *d >= 0.0)
        .collect();
    let reminders_sent: u64 = counted.iter().map(|f| msg(f).reminders as u64).sum();
    let outcome = Outcome {
        completed: completed.len() as u64,
        completion_rate: ratio(completed.len() as u64, counted.len() as u64),
        completed_on_time: completed
            .iter()
            .filter(|f| f.completed_at.is_some_and(|c| c <= f.due_at))
            .count() as u64,
        overdue: counted
            .iter()
            .filter(|f| f.completed_at.is_none() && f.due_at < now)
            .count() as u64,
        median_days_to_complete: median(&mut days),
        reminders_per_completion: (!completed.is_empty())
            .then(|| round2(reminders_sent as f64 / completed.len() as f64)),
        clicked_not_completed: counted
            .iter()
            .filter(|f| flags(f).clicked_human && f.completed_at.is_none())
            .count() as u64,
    };
    let mut breakdowns = BTreeMap::new();
    for (name, key) in [
        ("department", 0usize),
        ("facility", 1),
        ("role", 2),
        ("manager", 3),
    ] {
        breakdowns.insert(
            name.to_string(),
            breakdown(&counted, key, now, min_group_size),
        );
    }
    let start = campaign.starts_at.with_timezone(&Utc);
    Ok(Report {
        campaign: CampaignInfo {
            slug: row.slug.clone(),
            name: row.name.clone(),
            status: row.status.clone(),
            starts_at: start,
        },
        as_of,
        completed_last_7_days: completed
            .iter()
            .filter(|f| f.completed_at.is_some_and(|c| c > now - 7 * 86_400_000))
            .count() as u64,
        weekly: weekly(&counted, start, as_of),
        population,
        reach,
        engagement,
        outcome,
        breakdowns,
        min_group_size,
    })
}

#[derive(Debug, Clone, Copy, Default)]
struct EventFlags {
    opened_human: bool,
    opened_machine: bool,
    clicked_human: bool,
    clicked_machine: bool,
}

/// Exempted people and people who left before completing are out of the denominator.
fn counts_as_enrolled(f: &EnrolmentFacts) -> bool {
    f.exempted_at.is_none() && (f.left_at.is_none() || f.completed_at.is_some())
}

fn breakdown(counted: &[&EnrolmentFacts], key: usize, now: i64, min: u32) -> Vec<Group> {
    let mut groups: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    for f in counted {
        let name = [
            f.department.as_str(),
            f.facility.as_str(),
            f.role.as_str(),
            f.manager.as_str(),
        ][key];
        let g = groups
            .entry(if name.is_empty() { "(none)" } else { name })
            .or_default();
        g.0 += 1;
        g.1 += u64::from(f.completed_at.is_some());
        g.2 += u64::from(f.completed_at.is_none() && f.due_at < now);
    }
    groups
        .into_iter()
        .map(|(group, (enrolled, completed, overdue))| {
            let suppressed = enrolled < u64::from(min);
            Group {
                group: group.to_string(),
                suppressed,
                enrolled_shown: if suppressed {
                    format!("<{min}")
                } else {
                    enrolled.to_string()
                },
                enrolled: (!suppressed).then_some(enrolled),
                completed: (!suppressed).then_some(completed),
                overdue: (!suppressed).then_some(overdue),
                completion_rate: (!suppressed).then(|| ratio(completed, enrolled)),
            }
        })
        .collect()
}

/// One point per week from the start to `as_of` (the last point is `as_of` itself).
fn weekly(
    counted: &[&EnrolmentFacts],
    start: DateTime<Utc>,
    as_of: DateTime<Utc>,
) -> Vec<WeekPoint> {
    let mut points = Vec::new();
    let mut end = start + Duration::days(7);
    loop {
        let at = end.min(as_of);
        let t = to_millis(at);
        points.push(WeekPoint {
            week_ending: at,
            completed: counted
                .iter()
                .filter(|f| f.completed_at.is_some_and(|c| c <= t))
                .count() as u64,
            target: counted
                .iter()
                .filter(|f| f.due_at <= t && f.enrolled_at <= t)
                .count() as u64,
        });
        if end >= as_of || points.len() >= 520 {
            break;
        }
        end += Duration::days(7);
    }
    if as_of < start {
        points.clear();
    }
    points
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        round4(part as f64 / whole as f64)
    }
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    let m = if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    };
    Some((m * 10.0).round() / 10.0)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The previous week's report, for "change since last week".
pub async fn week_before(
    store: &Store,
    row: &CampaignRow,
    as_of: DateTime<Utc>,
    min_group_size: u32,
) -> anyhow::Result<Report> {
    build(store, row, as_of - Duration::days(7), min_group_size).await
}
