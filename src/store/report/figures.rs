//! Every count of the rollout report, aggregated in the database, so that a
//! few thousand rows cross the driver instead of one or more per person.
//!
//! Four statements that share nothing, all bounded by the as-of instant:
//! - people: CTEs `facts` (one row per enrolment of the campaign enrolled
//!   by then, with whether they were exempted or left) and `counted` (the
//!   enrolled people of docs/metrics.md, with their overdue flag and week
//!   buckets); population, outcome and the weekly histograms;
//! - groups: the counted people's roster fields and flags, packed into one
//!   text value that Rust counts into the four breakdowns ([`breakdowns`]);
//!   the history's groups statement groups in SQL instead, the reference;
//! - messages: CTE `msg`, one row per counted enrolment with its messages
//!   sent and reminders by then, whether one was undeliverable, whether the
//!   person's address bounced and when the announcement went; reach and the
//!   middle of the days from announcement to completion;
//! - events: whether each counted enrolment opened and clicked by then, by
//!   anyone and by a person; engagement.
//!
//! The messages and events statements read the report facts that database
//! triggers keep on each enrolment (migration 0012: counts with the
//! instants that bound them, first instants of opens and clicks), so a
//! report reads one row per person, not every outbox row and event. The
//! statements over the whole history ([`CountsFrom::History`]) stay as the
//! reference the facts are checked against, as of any instant. Which steps
//! are the announcement and the reminders comes from the campaign file;
//! `report_steps` holds what the facts were counted with, and
//! [`Store::ensure_report_steps`] recounts when the file says otherwise.
//!
//! Every row is one section of the report: a `kind`, a group name (or, for
//! `groups`, the packed people), and up to six numbers `n0`..`n5` whose
//! meaning depends on `kind` (read back by [`ReportCounts::add_row`]).
//! Both SQLite (3.35 or later) and PostgreSQL (12 or later) compute a
//! `MATERIALIZED` CTE once.

use super::super::{Backend, Store, RECORD_SEPARATOR as RECORD, UNIT_SEPARATOR as UNIT};
use sqlx::Row;
use std::collections::HashMap;

/// One week in milliseconds: the bucket width of the weekly series.
const WEEK_MS: i64 = 7 * 86_400_000;

/// What the report asks for: one campaign as of one instant.
#[derive(Debug, Clone)]
pub struct ReportQuery<'a> {
    pub campaign_id: i64,
    /// The as-of instant (epoch ms): later events, messages and completions are ignored.
    pub as_of: i64,
    /// The campaign's start (epoch ms): week buckets count from here.
    pub start: i64,
    /// The step whose acceptance starts the days-to-complete clock.
    pub announcement: &'a str,
    /// The reminder steps (person steps after the announcement, thanks excluded).
    pub reminders: &'a [String],
}

/// Counts of one breakdown group (one department, facility, role or manager).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCounts {
    pub enrolled: i64,
    pub completed: i64,
    pub overdue: i64,
}

/// The raw counts behind every figure of docs/metrics.md; `report::build`
/// turns them into rates, medians, suppressed groups and weekly points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportCounts {
    pub enrolled: i64,
    pub exempted: i64,
    pub left: i64,
    pub completed: i64,
    pub completed_on_time: i64,
    pub overdue: i64,
    pub completed_last_7_days: i64,
    pub messages_sent: i64,
    pub people_reached: i64,
    pub people_undeliverable: i64,
    /// Enrolled people whose address is marked undeliverable by a bounce.
    pub people_bounced: i64,
    /// Reminder messages accepted for enrolled people.
    pub reminders_sent: i64,
    pub opened_human: i64,
    pub opened_all: i64,
    pub clicked_human: i64,
    pub clicked_all: i64,
    pub clicked_not_completed: i64,
    /// (dimension, group value as stored, counts); the value is empty for
    /// people without one. Unordered.
    pub groups: Vec<(String, String, GroupCounts)>,
    /// (week, completions in it): week 0 is at or before the start, week k
    /// the k-th week after it, (start + (k-1) weeks, start + k weeks].
    pub completed_by_week: Vec<(i64, i64)>,
    /// (week, people whose due instant, or enrolment if later, falls in it),
    /// counting only those due by the as-of instant; weeks as above.
    pub due_by_week: Vec<(i64, i64)>,
    /// The middle one or two (in no particular order) of the milliseconds
    /// from announcement to completion, and how many such values there are.
    pub middle_ms: Vec<i64>,
    pub days_counted: i64,
}

impl ReportCounts {
    /// Reads one row of the statement into the counts.
    fn add_row(&mut self, kind: &str, group: String, n: [i64; 6]) -> anyhow::Result<()> {
        match kind {
            "population" => [self.enrolled, self.exempted, self.left] = [n[0], n[1], n[2]],
            "outcome" => {
                [
                    self.completed,
                    self.completed_on_time,
                    self.overdue,
                    self.completed_last_7_days,
                ] = [n[0], n[1], n[2], n[3]]
            }
            "reach" => {
                [
                    self.messages_sent,
                    self.people_reached,
                    self.people_undeliverable,
                    self.reminders_sent,
                    self.people_bounced,
                ] = [n[0], n[1], n[2], n[3], n[4]]
            }
            "engagement" => {
                [
                    self.opened_human,
                    self.opened_all,
                    self.clicked_human,
                    self.clicked_all,
                    self.clicked_not_completed,
                ] = [n[0], n[1], n[2], n[3], n[4]]
            }
            "groups" => self.groups.extend(breakdowns(&group)?),
            "department" | "facility" | "role" | "manager" => {
                let counts = GroupCounts {
                    enrolled: n[0],
                    completed: n[1],
                    overdue: n[2],
                };
                self.groups.push((kind.to_string(), group, counts));
            }
            "completed_weeks" => self.completed_by_week = week_counts(&group)?,
            "due_weeks" => self.due_by_week = week_counts(&group)?,
            "median" => {
                self.middle_ms.push(n[0]);
                self.days_counted = n[1];
            }
            "days" => {
                let mut days = unpack_integers(&group, "day to complete")?;
                self.days_counted = days.len() as i64;
                self.middle_ms = middle_of(&mut days);
            }
            other => anyhow::bail!("unexpected report row kind {other:?}"),
        }
        Ok(())
    }
}

/// The people counted as enrolled (docs/metrics.md, Population), on a row
/// of `enrolments` named `e`: not exempted, and not gone before completing.
/// Uses $1 (campaign id) and $2 (as-of) like every statement.
const COUNTED: &str = "e.campaign_id = $1 AND e.enrolled_at <= $2
    AND (e.exempted_at IS NULL OR e.exempted_at > $2)
    AND (e.left_at IS NULL OR e.left_at > $2 OR e.completed_at <= $2)";

/// Whether the enrolment `e` is overdue as of $2 (docs/metrics.md): not
/// completed by then, and due before it. One definition for the people
/// and groups statements.
const OVERDUE: &str = "(e.completed_at IS NULL OR e.completed_at > $2) AND e.due_at < $2";

/// Whether the person of the enrolment `e` has an address that bounced by
/// $2. A set probed per enrolment: the few bounced people are read once
/// through the partial index `staff_bounced` (migration 0019), rather than
/// one lookup of `staff` per enrolment.
const BOUNCED: &str = "e.staff_id IN (SELECT s.id FROM staff s
    WHERE s.bounced_at <= $2 AND s.bounced_email = s.email)";

/// The people statement: population, outcome and the weekly histograms,
/// from `enrolments` alone. The histograms come back packed: each counted
/// person's week, comma-separated, counted by [`week_counts`]. SQLite has
/// no hash aggregate: grouping the weeks in SQL sorted ~95,000
/// people twice in temporary b-trees, three quarters of the statement
/// (docs/benchmarks.md, "Report: the weeks packed"). Parameters: $1
/// campaign id, $2 as-of, $3 the campaign's start (epoch ms).
fn people_sql(backend: Backend) -> String {
    // A week bucket: 0 at or before the start, else the number of whole or
    // part weeks after it (ceiling division of a positive BIGINT; both
    // backends divide integers the same way).
    let week = |x: &str| format!("({x} - $3 + {}) / {WEEK_MS}", WEEK_MS - 1);
    let aggregate = backend.text_aggregate();
    let done_week = format!(
        "CAST(CASE WHEN completed_at <= $3 THEN 0 ELSE {} END AS TEXT)",
        week("completed_at")
    );
    let due_week = format!(
        "CAST(CASE WHEN due_at > $2 THEN NULL WHEN due_at <= $3 AND enrolled_at <= $3 THEN 0 ELSE {} END AS TEXT)",
        week("(CASE WHEN due_at > enrolled_at THEN due_at ELSE enrolled_at END)")
    );
    format!(
        "WITH population AS MATERIALIZED (
  SELECT COUNT(*) AS total,
         COUNT(CASE WHEN e.exempted_at <= $2 THEN 1 END) AS exempted,
         COUNT(CASE WHEN e.left_at <= $2 AND (e.exempted_at IS NULL OR e.exempted_at > $2)
                         AND (e.completed_at IS NULL OR e.completed_at > $2) THEN 1 END) AS gone
  FROM enrolments e
  WHERE e.campaign_id = $1 AND e.enrolled_at <= $2
),
counted AS (
  SELECT e.enrolled_at, e.due_at,
         CASE WHEN e.completed_at <= $2 THEN e.completed_at END AS completed_at,
         CASE WHEN {OVERDUE} THEN 1 ELSE 0 END AS overdue
  FROM enrolments e
  WHERE {COUNTED}
),
outcome AS MATERIALIZED (
  SELECT COUNT(completed_at) AS completed,
         COUNT(CASE WHEN completed_at <= due_at THEN 1 END) AS on_time,
         CAST(COALESCE(SUM(overdue), 0) AS BIGINT) AS overdue,
         COUNT(CASE WHEN completed_at > $2 - {WEEK_MS} THEN 1 END) AS recent,
         COALESCE({aggregate}({done_week}, ','), '') AS done_weeks,
         COALESCE({aggregate}({due_week}, ','), '') AS due_weeks
  FROM counted
)
SELECT 'population' AS kind, '' AS grp, total - exempted - gone AS n0, exempted AS n1, gone AS n2,
       0 AS n3, 0 AS n4, 0 AS n5
FROM population
UNION ALL
SELECT 'outcome', '', completed, on_time, overdue, recent, 0, 0 FROM outcome
UNION ALL
SELECT 'completed_weeks', done_weeks, 0, 0, 0, 0, 0, 0 FROM outcome
UNION ALL
SELECT 'due_weeks', due_weeks, 0, 0, 0, 0, 0, 0 FROM outcome",
    )
}

/// (week, how many) from weeks packed comma-separated by [`people_sql`].
fn week_counts(packed: &str) -> anyhow::Result<Vec<(i64, i64)>> {
    let mut counts = std::collections::BTreeMap::<i64, i64>::new();
    for week in unpack_integers(packed, "week")? {
        *counts.entry(week).or_default() += 1;
    }
    Ok(counts.into_iter().collect())
}

/// The integers a statement packed comma-separated (weeks, days to
/// complete); `what` names one in the error.
fn unpack_integers(packed: &str, what: &str) -> anyhow::Result<Vec<i64>> {
    packed
        .split(',')
        .filter(|n| !n.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("a {what} came back malformed: {e}"))
}

/// The four breakdowns, in the order the groups statement packs a
/// person's values.
const DIMENSIONS: [&str; 4] = ["department", "facility", "role", "manager"];

/// The counted people with their roster fields and two flags, on both
/// statements that give the breakdowns. Parameters: $1 campaign id, $2 as-of.
fn counted_with_fields() -> String {
    format!(
        "SELECT s.department, s.facility, s.role, COALESCE(s.manager_email, '') AS manager,
         CASE WHEN e.completed_at <= $2 THEN 1 ELSE 0 END AS done,
         CASE WHEN {OVERDUE} THEN 1 ELSE 0 END AS overdue
  FROM enrolments e JOIN staff s ON s.id = e.staff_id
  WHERE {COUNTED}"
    )
}

/// The groups statement: every counted person's four roster fields and
/// flags, packed by the database into one text value, counted into the four
/// breakdowns by [`breakdowns`]. SQLite has no hash aggregate: grouping in
/// SQL sorted the ~95,000 people four times in temporary b-trees, 4× the
/// time of this one pass (docs/benchmarks.md, "Report: the breakdowns
/// packed"). Values are joined by [`UNIT`], people by [`RECORD`]. The
/// flags are `done + 2 × overdue`. Parameters: $1 campaign id, $2 as-of, $3
/// and $4 the two separators.
fn groups_sql(backend: Backend) -> String {
    let aggregate = backend.text_aggregate();
    let counted = counted_with_fields();
    format!(
        "SELECT 'groups' AS kind,
       COALESCE({aggregate}(department || $3 || facility || $3 || role || $3 || manager || $3
                            || CAST(done + 2 * overdue AS TEXT), $4), '') AS grp,
       0 AS n0, 0 AS n1, 0 AS n2, 0 AS n3, 0 AS n4, 0 AS n5
FROM ({counted}) counted"
    )
}

/// The history's groups statement: the four breakdowns grouped in SQL, the
/// reference [`groups_sql`]'s counting is checked against. Parameters: $1
/// campaign id, $2 as-of.
fn history_groups_sql() -> String {
    let breakdowns = DIMENSIONS.map(|dimension| {
        format!(
            "SELECT '{dimension}' AS kind, {dimension} AS grp, COUNT(*) AS n0, CAST(SUM(done) AS BIGINT) AS n1,
       CAST(SUM(overdue) AS BIGINT) AS n2, 0 AS n3, 0 AS n4, 0 AS n5
FROM counted GROUP BY {dimension}"
        )
    });
    format!(
        "WITH counted AS MATERIALIZED ({counted})\n{breakdowns}",
        counted = counted_with_fields(),
        breakdowns = breakdowns.join("\nUNION ALL\n"),
    )
}

/// The four breakdowns of the groups statement's packed people.
fn breakdowns(packed: &str) -> anyhow::Result<Vec<(String, String, GroupCounts)>> {
    let mut tallies: [HashMap<&str, GroupCounts>; 4] = Default::default();
    for person in packed.split(RECORD).filter(|p| !p.is_empty()) {
        let mut parts = person.split(UNIT);
        let mut values = [""; 4];
        for value in &mut values {
            *value = parts.next().unwrap_or_default();
        }
        let flags: i64 = match (parts.next().map(str::parse), parts.next()) {
            (Some(Ok(flags @ 0..=3)), None) => flags,
            _ => anyhow::bail!("a counted person came back malformed: {person:?}"),
        };
        for (tally, value) in tallies.iter_mut().zip(values) {
            let counts = tally.entry(value).or_default();
            counts.enrolled += 1;
            counts.completed += flags & 1;
            counts.overdue += flags >> 1;
        }
    }
    Ok(DIMENSIONS
        .into_iter()
        .zip(tallies)
        .flat_map(|(dimension, tally)| {
            tally
                .into_iter()
                .map(move |(value, counts)| (dimension.to_string(), value.to_string(), counts))
        })
        .collect())
}

/// The history's messages statement: the outbox per counted enrolment.
/// Parameters: $1 campaign id, $2 as-of, $3 the announcement step, $4.. the
/// `reminders` reminder steps.
fn history_messages_sql(reminders: usize) -> String {
    let reminder_list = step_list(4, reminders);
    format!(
        "WITH msg AS MATERIALIZED (
  SELECT m.sent, m.reminders, m.undeliverable, m.announced_at, e.enrolled_at,
         CASE WHEN e.completed_at <= $2 THEN e.completed_at END AS completed_at,
         CASE WHEN {BOUNCED} THEN 1 ELSE 0 END AS bounced
  FROM enrolments e
  LEFT JOIN (SELECT enrolment_id,
               MIN(CASE WHEN step = $3 AND status = 'sent' AND accepted_at <= $2 THEN accepted_at END) AS announced_at,
               COUNT(CASE WHEN status = 'sent' AND accepted_at <= $2 THEN 1 END) AS sent,
               COUNT(CASE WHEN status = 'sent' AND accepted_at <= $2 AND step IN ({reminder_list}) THEN 1 END) AS reminders,
               COUNT(CASE WHEN status = 'undeliverable' AND updated_at <= $2 THEN 1 END) AS undeliverable
        FROM outbox WHERE campaign_id = $1 AND enrolment_id IS NOT NULL
        GROUP BY enrolment_id) m ON m.enrolment_id = e.id
  WHERE {COUNTED}
),
{done}",
        done = days_sorted(),
    )
}

/// The history's events statement: opens and clicks of counted enrolments.
/// Parameters: $1 campaign id, $2 as-of.
fn history_events_sql() -> String {
    format!(
        "SELECT 'engagement' AS kind, '' AS grp, COUNT(CASE WHEN v.kind = 'open' AND v.machine = 0 THEN 1 END) AS n0,
       COUNT(CASE WHEN v.kind = 'open' THEN 1 END) AS n1, COUNT(CASE WHEN v.kind = 'click' AND v.machine = 0 THEN 1 END) AS n2,
       COUNT(CASE WHEN v.kind = 'click' THEN 1 END) AS n3,
       COUNT(CASE WHEN v.kind = 'click' AND v.machine = 0 AND (e.completed_at IS NULL OR e.completed_at > $2) THEN 1 END) AS n4,
       0 AS n5
FROM (SELECT enrolment_id, kind, MIN(machine) AS machine
      FROM events WHERE campaign_id = $1 AND enrolment_id IS NOT NULL AND at <= $2
      GROUP BY enrolment_id, kind) v
CROSS JOIN enrolments e
WHERE e.id = v.enrolment_id AND {COUNTED}"
    )
}

/// The list `$first, $first+1, ...` of `n` step parameters, or `''` (no step) when empty.
fn step_list(first: usize, n: usize) -> String {
    if n == 0 {
        "''".to_string()
    } else {
        (0..n)
            .map(|i| format!("${}", i + first))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The messages statement on the report facts (migration 0012): one row
/// per counted enrolment. A person whose accepted messages all fall on one
/// side of the as-of instant is counted from the facts alone; only someone
/// with messages accepted both before and after it (a report as of the
/// past) has their few outbox rows counted. Parameters: $1 campaign id, $2
/// as-of, $3.. the `reminders` reminder steps.
fn messages_sql(backend: Backend, reminders: usize) -> String {
    let reminder_list = step_list(3, reminders);
    let sent_by = |and: &str| {
        format!(
            "(SELECT COUNT(*) FROM outbox o WHERE o.campaign_id = $1 AND o.enrolment_id = e.id
                AND o.status = 'sent' AND o.accepted_at <= $2{and})"
        )
    };
    format!(
        "WITH msg AS MATERIALIZED (
  SELECT CASE WHEN e.last_sent_at <= $2 THEN e.sent_count WHEN e.first_sent_at <= $2 THEN {sent} ELSE 0 END AS sent,
         CASE WHEN e.last_sent_at <= $2 THEN e.reminders_sent WHEN e.first_sent_at <= $2 THEN {reminders_sent} ELSE 0 END AS reminders,
         CASE WHEN e.undeliverable_at <= $2 THEN 1 ELSE 0 END AS undeliverable,
         CASE WHEN e.announced_at <= $2 THEN e.announced_at END AS announced_at, e.enrolled_at,
         CASE WHEN e.completed_at <= $2 THEN e.completed_at END AS completed_at,
         CASE WHEN {BOUNCED} THEN 1 ELSE 0 END AS bounced
  FROM enrolments e
  WHERE {COUNTED}
)
{days}",
        days = days_packed(backend),
        sent = sent_by(""),
        reminders_sent = sent_by(&format!(" AND o.step IN ({reminder_list})")),
    )
}

/// Milliseconds from a `msg` row's announcement (or enrolment, when none
/// was accepted before it) to its completion.
const DAYS_TO_COMPLETE: &str =
    "CASE WHEN announced_at <= completed_at THEN completed_at - announced_at
              WHEN enrolled_at <= completed_at THEN completed_at - enrolled_at
              ELSE 0 END";

/// Reach, from `msg`.
const REACH: &str = "SELECT 'reach' AS kind, '' AS grp, CAST(COALESCE(SUM(sent), 0) AS BIGINT) AS n0, COUNT(CASE WHEN sent > 0 AND bounced = 0 THEN 1 END) AS n1,
       COUNT(CASE WHEN undeliverable > 0 THEN 1 END) AS n2, CAST(COALESCE(SUM(reminders), 0) AS BIGINT) AS n3,
       COUNT(CASE WHEN bounced = 1 THEN 1 END) AS n4, 0 AS n5
FROM msg";

/// The history's messages statement's end: reach, and the middle one or
/// two of the days to complete, picked by sorting in SQL (the reference
/// for the facts' [`days_packed`]).
fn days_sorted() -> String {
    format!(
        "done AS MATERIALIZED (
  SELECT {DAYS_TO_COMPLETE} AS d
  FROM msg WHERE completed_at IS NOT NULL
)
{REACH}
UNION ALL
SELECT 'median', '', d, n, 0, 0, 0, 0
FROM (SELECT d, (SELECT COUNT(*) FROM done) AS n
      FROM done
      ORDER BY d LIMIT 2
      OFFSET (SELECT (COUNT(*) - 1) / 2 FROM done)) middle"
    )
}

/// The facts' messages statement's end: reach, and every counted
/// completion's days to complete, packed comma-separated into one value;
/// [`ReportCounts::add_row`] picks the middle ones. Sorting ~57,000 values
/// in a temporary b-tree for two of them was a third of the statement on
/// SQLite (docs/benchmarks.md, "Report: the breakdowns packed").
fn days_packed(backend: Backend) -> String {
    let aggregate = backend.text_aggregate();
    format!(
        "{REACH}
UNION ALL
SELECT 'days', COALESCE({aggregate}(CAST({DAYS_TO_COMPLETE} AS TEXT), ','), ''), 0, 0, 0, 0, 0, 0
FROM msg WHERE completed_at IS NOT NULL"
    )
}

/// The middle one or two of `values` as `ORDER BY d LIMIT 2 OFFSET (n - 1) / 2`
/// gives them: the lower middle and the value after it, if any.
fn middle_of(values: &mut [i64]) -> Vec<i64> {
    if values.is_empty() {
        return Vec::new();
    }
    let (_, lower, above) = values.select_nth_unstable((values.len() - 1) / 2);
    std::iter::once(*lower)
        .chain(above.iter().min().copied())
        .collect()
}

/// The events statement on the report facts: the first open and click of
/// each counted enrolment, by anyone and by a person. Parameters: $1
/// campaign id, $2 as-of.
fn events_sql() -> String {
    format!(
        "SELECT 'engagement' AS kind, '' AS grp, COUNT(CASE WHEN e.opened_human_at <= $2 THEN 1 END) AS n0,
       COUNT(CASE WHEN e.opened_at <= $2 THEN 1 END) AS n1, COUNT(CASE WHEN e.clicked_human_at <= $2 THEN 1 END) AS n2,
       COUNT(CASE WHEN e.clicked_at <= $2 THEN 1 END) AS n3,
       COUNT(CASE WHEN e.clicked_human_at <= $2 AND (e.completed_at IS NULL OR e.completed_at > $2) THEN 1 END) AS n4,
       0 AS n5
FROM enrolments e
WHERE {COUNTED}"
    )
}

/// Where the report's counts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountsFrom {
    /// The per-enrolment facts the triggers keep: one row per person.
    Facts,
    /// The whole history (every outbox row and event): the reference the
    /// facts are checked against (tests, examples/bench_report.rs).
    History,
}

/// The report's four statements, named, for `EXPLAIN` in
/// examples/bench_report.rs; [`report_params`] gives each one's parameters.
pub fn report_sql(
    backend: Backend,
    from: CountsFrom,
    reminders: usize,
) -> [(&'static str, String); 4] {
    match from {
        CountsFrom::Facts => [
            ("people", people_sql(backend)),
            ("groups", groups_sql(backend)),
            ("messages", messages_sql(backend, reminders)),
            ("events", events_sql()),
        ],
        CountsFrom::History => [
            ("people", people_sql(backend)),
            ("groups", history_groups_sql()),
            ("messages", history_messages_sql(reminders)),
            ("events", history_events_sql()),
        ],
    }
}

/// A parameter of a report statement.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    Int(i64),
    Text(&'a str),
}

/// The parameters of the statement `name` of [`report_sql`], in order.
pub fn report_params<'a>(from: CountsFrom, name: &str, q: &ReportQuery<'a>) -> Vec<Param<'a>> {
    let mut params = vec![Param::Int(q.campaign_id), Param::Int(q.as_of)];
    match name {
        "people" => params.push(Param::Int(q.start)),
        "groups" if from == CountsFrom::Facts => {
            params.extend([UNIT, RECORD].map(Param::Text));
        }
        "messages" => {
            if from == CountsFrom::History {
                params.push(Param::Text(q.announcement));
            }
            params.extend(q.reminders.iter().map(|r| Param::Text(r.as_str())));
        }
        _ => {}
    }
    params
}

impl Store {
    /// Every count of one campaign's report as of `q.as_of`, from the
    /// report facts (one row per person).
    pub async fn report_counts(&self, q: &ReportQuery<'_>) -> anyhow::Result<ReportCounts> {
        self.report_counts_from(q, CountsFrom::Facts).await
    }

    /// [`Store::report_counts`] from the facts or from the whole history.
    /// The four statements share nothing, so they run side by side, each on
    /// its own connection (on PostgreSQL its own backend and core).
    #[tracing::instrument(skip_all, fields(campaign = q.campaign_id))]
    pub async fn report_counts_from(
        &self,
        q: &ReportQuery<'_>,
        from: CountsFrom,
    ) -> anyhow::Result<ReportCounts> {
        if from == CountsFrom::Facts {
            self.ensure_report_steps(q).await?;
        }
        let statements = report_sql(self.backend(), from, q.reminders.len());
        let rows = futures::future::try_join_all(
            statements
                .iter()
                .map(|(name, sql)| self.report_rows(sql, report_params(from, name, q))),
        )
        .await?;
        let mut counts = ReportCounts::default();
        for row in rows.into_iter().flatten() {
            counts.add_row(&row.kind, row.group, row.n)?;
        }
        Ok(counts)
    }

    /// Runs one statement of [`report_sql`] as `report_counts` does;
    /// public for examples/bench_report.rs.
    pub async fn report_rows(
        &self,
        sql: &str,
        params: Vec<Param<'_>>,
    ) -> anyhow::Result<Vec<ReportRow>> {
        on_pool!(self, |c| {
            let mut query = sqlx::query(sql);
            for p in params {
                query = match p {
                    Param::Int(i) => query.bind(i),
                    Param::Text(t) => query.bind(t),
                };
            }
            let rows = query.fetch_all(c).await?;
            rows.iter()
                .map(|row| {
                    // A literal or an INTEGER expression is INT4 on
                    // PostgreSQL; counts are INT8.
                    let mut n = [0i64; 6];
                    for (i, v) in n.iter_mut().enumerate() {
                        *v = match row.try_get::<i64, _>(i + 2) {
                            Ok(v) => v,
                            Err(_) => row.try_get::<i32, _>(i + 2)?.into(),
                        };
                    }
                    Ok(ReportRow {
                        kind: row.try_get("kind")?,
                        group: row.try_get("grp")?,
                        n,
                    })
                })
                .collect()
        })
    }
}

impl Store {
    /// Makes `report_steps` say what the campaign file says the
    /// announcement and the reminders are, recounting the facts that depend
    /// on it (`reminders_sent`, `announced_at`) when it did not: after the
    /// migration, and after an edit that renames, adds or reorders steps.
    /// Writes nothing when they agree, as they do on every later report.
    pub async fn ensure_report_steps(&self, q: &ReportQuery<'_>) -> anyhow::Result<()> {
        let mut wanted: Vec<(String, String)> = q
            .reminders
            .iter()
            .map(|r| (r.clone(), "reminder".to_string()))
            .collect();
        if !q.announcement.is_empty() {
            wanted.push((q.announcement.to_string(), "announcement".to_string()));
        }
        wanted.sort();
        wanted.dedup_by(|a, b| a.0 == b.0);
        let mut stored: Vec<(String, String)> = on_pool!(self, |c| {
            sqlx::query_as("SELECT step, role FROM report_steps WHERE campaign_id = $1")
                .bind(q.campaign_id)
                .fetch_all(c)
                .await?
        });
        stored.sort();
        if stored == wanted {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        if self.backend() == super::super::Backend::Postgres {
            // Marks committed while recounting would be lost to the recount.
            on_tx!(tx, |c| sqlx::query("LOCK TABLE outbox IN SHARE MODE")
                .execute(&mut *c)
                .await?
                .rows_affected());
        }
        on_tx!(tx, |c| sqlx::query(
            "DELETE FROM report_steps WHERE campaign_id = $1"
        )
        .bind(q.campaign_id)
        .execute(&mut *c)
        .await?
        .rows_affected());
        for (step, role) in &wanted {
            on_tx!(tx, |c| sqlx::query(
                "INSERT INTO report_steps (campaign_id, step, role) VALUES ($1, $2, $3)
                 ON CONFLICT (campaign_id, step) DO UPDATE SET role = EXCLUDED.role",
            )
            .bind(q.campaign_id)
            .bind(step.as_str())
            .bind(role.as_str())
            .execute(&mut *c)
            .await?
            .rows_affected());
        }
        on_tx!(tx, |c| sqlx::query(
            "UPDATE enrolments SET
               reminders_sent = (SELECT COUNT(*) FROM outbox o JOIN report_steps r
                   ON r.campaign_id = o.campaign_id AND r.step = o.step AND r.role = 'reminder'
                   WHERE o.campaign_id = enrolments.campaign_id AND o.enrolment_id = enrolments.id
                     AND o.status = 'sent' AND o.accepted_at IS NOT NULL),
               announced_at = (SELECT MIN(o.accepted_at) FROM outbox o JOIN report_steps r
                   ON r.campaign_id = o.campaign_id AND r.step = o.step AND r.role = 'announcement'
                   WHERE o.campaign_id = enrolments.campaign_id AND o.enrolment_id = enrolments.id
                     AND o.status = 'sent')
             WHERE campaign_id = $1",
        )
        .bind(q.campaign_id)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit().await?;
        tracing::info!(
            campaign = q.campaign_id,
            "report facts recounted for the campaign's announcement and reminders"
        );
        Ok(())
    }
}

/// One row of a [`report_sql`] statement: a section `kind`, a group name
/// and the section's numbers.
#[derive(Debug, Clone)]
pub struct ReportRow {
    pub kind: String,
    pub group: String,
    pub n: [i64; 6],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(enrolled: i64, completed: i64, overdue: i64) -> GroupCounts {
        GroupCounts {
            enrolled,
            completed,
            overdue,
        }
    }

    #[test]
    fn packed_people_are_counted_into_each_breakdown() {
        let packed = [
            "Nursing\u{1f}Main\u{1f}Buyer\u{1f}boss@x.org\u{1f}1",
            "Nursing\u{1f}North\u{1f}Buyer\u{1f}\u{1f}2",
            "Pharmacy\u{1f}Main\u{1f}\u{1f}boss@x.org\u{1f}0",
        ]
        .join(RECORD);
        let mut groups = breakdowns(&packed).unwrap();
        groups.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let expected = [
            ("department", "Nursing", counts(2, 1, 1)),
            ("department", "Pharmacy", counts(1, 0, 0)),
            ("facility", "Main", counts(2, 1, 0)),
            ("facility", "North", counts(1, 0, 1)),
            ("manager", "", counts(1, 0, 1)),
            ("manager", "boss@x.org", counts(2, 1, 0)),
            ("role", "", counts(1, 0, 0)),
            ("role", "Buyer", counts(2, 1, 1)),
        ]
        .map(|(d, v, c)| (d.to_string(), v.to_string(), c));
        assert_eq!(groups, expected);
    }

    #[test]
    fn packed_weeks_are_counted_per_week_and_garbage_is_an_error() {
        assert_eq!(
            week_counts("3,0,3,12,3").unwrap(),
            [(0, 1), (3, 3), (12, 1)]
        );
        assert_eq!(week_counts("").unwrap(), []);
        let error = week_counts("1,x").unwrap_err().to_string();
        assert!(error.contains("week came back malformed"), "{error}");
    }

    /// The same values `ORDER BY d LIMIT 2 OFFSET (n - 1) / 2` picks.
    #[test]
    fn the_middle_values_are_the_lower_middle_and_the_one_after_it() {
        for (values, middle) in [
            (vec![], vec![]),
            (vec![7], vec![7]),
            (vec![9, 3], vec![3, 9]),
            (vec![5, 1, 9], vec![5, 9]),
            (vec![8, 2, 6, 4], vec![4, 6]),
            (vec![3, 3, 1, 3, 2], vec![3, 3]),
        ] {
            let mut shuffled = values.clone();
            assert_eq!(middle_of(&mut shuffled), middle, "{values:?}");
        }
    }

    #[test]
    fn no_people_make_no_groups_and_a_malformed_person_is_an_error() {
        assert!(breakdowns("").unwrap().is_empty());
        for bad in [
            "Nursing\u{1f}Main\u{1f}Buyer\u{1f}boss@x.org",
            "Nursing\u{1f}Main\u{1f}Buyer\u{1f}boss@x.org\u{1f}4",
            "Nursing\u{1f}Main\u{1f}Buyer\u{1f}boss@x.org\u{1f}1\u{1f}1",
        ] {
            let error = breakdowns(bad).unwrap_err().to_string();
            assert!(error.contains("malformed"), "{bad:?}: {error}");
        }
    }
}
