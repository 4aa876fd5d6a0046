//! The rollout report: every figure defined in docs/metrics.md, as of one
//! instant, from the counts the database aggregates (`Store::report_counts`).
//! This struct is the stable JSON schema of `report --format json` and
//! GET /api/reports/{slug}.

use crate::campaign::{definition_of, Recipient, Trigger};
use crate::clock::to_millis;
use crate::store::campaign::CampaignRow;
use crate::store::report::{CountsFrom, GroupCounts, ReportCounts, ReportQuery};
use crate::store::Store;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

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
    /// Bounced addresses: how many, and whose.
    pub bounces: Bounces,
}

#[derive(Debug, Clone, Serialize)]
pub struct CampaignInfo {
    pub slug: String,
    pub name: String,
    pub status: crate::store::CampaignStatus,
    pub starts_at: DateTime<Utc>,
    /// Active people in the roster the audience matches now; 0 is a warning
    /// (nobody will be enrolled).
    pub audience_size: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Population {
    /// Targeted people still expected to complete: not exempted, not gone.
    pub enrolled: u64,
    pub exempted: u64,
    /// Deactivated by a roster sync, or out of the audience, before completing.
    pub left: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Reach {
    /// Messages to enrolled people accepted by the relay.
    pub messages_sent: u64,
    /// Enrolled people with at least one message accepted, and whose
    /// address has not bounced.
    pub people_reached: u64,
    /// Enrolled people with a message refused permanently (5xx).
    pub people_undeliverable: u64,
}

/// Bounces read from the bounce mailbox.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Bounces {
    /// Enrolled people whose address is marked undeliverable by a bounce
    /// (as of the report's instant): no reminder goes to them, and they
    /// are not counted as reached.
    pub people_bounced: u64,
    /// "Address bounced": those people now, with their roster row, so the
    /// admin can fix the HR record. Ordered by address.
    pub people: Vec<BouncedPerson>,
}

/// A person whose address bounced, with their roster row.
#[derive(Debug, Clone, Serialize)]
pub struct BouncedPerson {
    pub email: String,
    pub employee_id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub department: String,
    pub role: String,
    pub facility: String,
    pub manager_email: Option<String>,
    /// When the address was marked undeliverable.
    pub bounced_at: DateTime<Utc>,
    /// The enhanced status code of the bounce, e.g. "5.1.1".
    pub status: String,
    /// What the bouncing system said.
    pub diagnostic: String,
}

impl From<crate::store::bounces::BouncedPerson> for BouncedPerson {
    fn from(p: crate::store::bounces::BouncedPerson) -> Self {
        Self {
            email: p.email,
            employee_id: p.employee_id,
            first_name: p.first_name,
            last_name: p.last_name,
            department: p.department,
            role: p.role,
            facility: p.facility,
            manager_email: p.manager_email,
            bounced_at: crate::clock::from_millis(p.bounced_at),
            status: p.status,
            diagnostic: p.diagnostic,
        }
    }
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
    /// Median days to completion: from the announcement's acceptance, or
    /// from enrolment for someone who completed without one. Set whenever
    /// anyone completed.
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
pub async fn build(
    store: &Store,
    row: &CampaignRow,
    as_of: DateTime<Utc>,
    min_group_size: u32,
) -> anyhow::Result<Report> {
    build_from(store, row, as_of, min_group_size, CountsFrom::Facts).await
}

/// [`build`] with its counts from the report facts or from the whole
/// history: the two must give the same report (examples/bench_report.rs
/// and tests/report_facts.rs compare them).
#[tracing::instrument(skip_all, fields(campaign = %row.slug))]
pub async fn build_from(
    store: &Store,
    row: &CampaignRow,
    as_of: DateTime<Utc>,
    min_group_size: u32,
    from: CountsFrom,
) -> anyhow::Result<Report> {
    let campaign = definition_of(row)?;
    let (audience_size, _) = crate::campaign::audience_size(store, &campaign).await?;
    let person_steps: Vec<&str> = campaign
        .steps
        .iter()
        .filter(|s| s.to == Recipient::Person && s.on != Some(Trigger::Completion))
        .map(|s| s.name.as_str())
        .collect();
    let reminders: Vec<String> = person_steps.iter().skip(1).map(|s| s.to_string()).collect();
    let start = campaign.starts_at.with_timezone(&Utc);
    let c = store
        .report_counts_from(
            &ReportQuery {
                campaign_id: row.id,
                as_of: to_millis(as_of),
                start: to_millis(start),
                announcement: person_steps.first().copied().unwrap_or(""),
                reminders: &reminders,
            },
            from,
        )
        .await?;
    let completed = count(c.completed);
    let enrolled = count(c.enrolled);
    Ok(Report {
        campaign: CampaignInfo {
            slug: row.slug.clone(),
            name: row.name.clone(),
            status: row.status,
            starts_at: start,
            audience_size,
        },
        as_of,
        population: Population {
            enrolled,
            exempted: count(c.exempted),
            left: count(c.left),
        },
        reach: Reach {
            messages_sent: count(c.messages_sent),
            people_reached: count(c.people_reached),
            people_undeliverable: count(c.people_undeliverable),
        },
        engagement: Engagement {
            opened_human: count(c.opened_human),
            opened_all: count(c.opened_all),
            clicked_human: count(c.clicked_human),
            clicked_all: count(c.clicked_all),
        },
        outcome: Outcome {
            completed,
            completion_rate: ratio(completed, enrolled),
            completed_on_time: count(c.completed_on_time),
            overdue: count(c.overdue),
            median_days_to_complete: median_days(&c),
            reminders_per_completion: (completed > 0)
                .then(|| round2(count(c.reminders_sent) as f64 / completed as f64)),
            clicked_not_completed: count(c.clicked_not_completed),
        },
        breakdowns: breakdowns(&c, min_group_size),
        weekly: weekly(&c, start, as_of),
        completed_last_7_days: count(c.completed_last_7_days),
        min_group_size,
        bounces: Bounces {
            people_bounced: count(c.people_bounced),
            people: store
                .bounced_people(Some(row.id))
                .await?
                .into_iter()
                .map(BouncedPerson::from)
                .collect(),
        },
    })
}

/// A count from the database (never negative) as the report's type.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The median of the days from announcement to completion, from the middle
/// value(s) the database picked: the lower middle and the one after it.
fn median_days(c: &ReportCounts) -> Option<f64> {
    let mut middle: Vec<f64> = c
        .middle_ms
        .iter()
        .map(|ms| *ms as f64 / 86_400_000.0)
        .collect();
    middle.sort_by(f64::total_cmp);
    let m = match middle.as_slice() {
        [] => return None,
        [lower, upper] if c.days_counted % 2 == 0 => (lower + upper) / 2.0,
        [lower, ..] => *lower,
    };
    Some((m * 10.0).round() / 10.0)
}

/// The four breakdowns, each group named "(none)" when the roster field is
/// empty, small groups suppressed.
fn breakdowns(c: &ReportCounts, min: u32) -> BTreeMap<String, Vec<Group>> {
    let mut dimensions: BTreeMap<String, BTreeMap<&str, GroupCounts>> =
        ["department", "facility", "role", "manager"]
            .into_iter()
            .map(|d| (d.to_string(), BTreeMap::new()))
            .collect();
    for (dimension, value, n) in &c.groups {
        let name = if value.is_empty() { "(none)" } else { value };
        if let Some(groups) = dimensions.get_mut(dimension) {
            let g = groups.entry(name).or_default();
            g.enrolled += n.enrolled;
            g.completed += n.completed;
            g.overdue += n.overdue;
        }
    }
    dimensions
        .into_iter()
        .map(|(dimension, groups)| {
            let groups = groups
                .into_iter()
                .map(|(name, n)| group(name, n, min))
                .collect();
            (dimension, groups)
        })
        .collect()
}

fn group(name: &str, n: GroupCounts, min: u32) -> Group {
    let (enrolled, completed, overdue) = (count(n.enrolled), count(n.completed), count(n.overdue));
    let suppressed = enrolled < u64::from(min);
    Group {
        group: name.to_string(),
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
}

/// One point per week from the start to `as_of` (the last point is `as_of`
/// itself), at most 520. Point k counts the buckets up to week k: a point
/// before `as_of` ends exactly at week k's end, and the last point's
/// instant is at or after every completion and every counted due instant.
fn weekly(c: &ReportCounts, start: DateTime<Utc>, as_of: DateTime<Utc>) -> Vec<WeekPoint> {
    let up_to = |buckets: &[(i64, i64)], week: i64| -> u64 {
        buckets
            .iter()
            .filter(|(w, _)| *w <= week)
            .map(|(_, n)| count(*n))
            .sum()
    };
    let mut points = Vec::new();
    let mut end = start + Duration::days(7);
    loop {
        let week = points.len() as i64 + 1;
        points.push(WeekPoint {
            week_ending: end.min(as_of),
            completed: up_to(&c.completed_by_week, week),
            target: up_to(&c.due_by_week, week),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(middle_ms: Vec<i64>, days_counted: i64) -> ReportCounts {
        ReportCounts {
            middle_ms,
            days_counted,
            ..ReportCounts::default()
        }
    }

    #[test]
    fn the_median_is_the_middle_value_or_the_mean_of_the_two() {
        const DAY: i64 = 86_400_000;
        assert_eq!(median_days(&counts(vec![], 0)), None);
        assert_eq!(median_days(&counts(vec![3 * DAY], 1)), Some(3.0));
        // Odd count: the lower middle and the one after it come back, in any order.
        assert_eq!(median_days(&counts(vec![9 * DAY, 2 * DAY], 5)), Some(2.0));
        // Even count: the mean of the two middle values, to one decimal.
        assert_eq!(median_days(&counts(vec![4 * DAY, DAY], 4)), Some(2.5));
        assert_eq!(
            median_days(&counts(vec![DAY, DAY + DAY / 10], 2)),
            Some(1.1)
        );
    }

    #[test]
    fn weekly_points_add_up_the_buckets_and_end_at_the_as_of_instant() {
        let start = DateTime::parse_from_rfc3339("2027-01-11T14:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = ReportCounts {
            completed_by_week: vec![(1, 2), (3, 1), (0, 1)],
            due_by_week: vec![(2, 5), (3, 4)],
            ..ReportCounts::default()
        };
        let as_of = start + Duration::days(17);
        let points = weekly(&c, start, as_of);
        let got: Vec<_> = points
            .iter()
            .map(|p| (p.week_ending, p.completed, p.target))
            .collect();
        assert_eq!(
            got,
            vec![
                (start + Duration::days(7), 3, 0),
                (start + Duration::days(14), 3, 5),
                (as_of, 4, 9),
            ]
        );
        assert!(weekly(&c, start, start - Duration::days(1)).is_empty());
        assert_eq!(weekly(&c, start, start + Duration::weeks(900)).len(), 520);
    }
}
