//! Completions from the system of record: completion reports exported from
//! the learning network, matched to the roster by email, then employee id,
//! then a unique exact name (listed for review: learners often register
//! with a personal address). Unmatched rows are listed with the reason and
//! never guessed; re-importing the same report changes nothing.

mod manual;
mod parse;

pub use manual::{add as add_one, ManualCompletion, ManualError};

pub use parse::{
    check_mapping, completion_time, is_report_header, parse as parse_report, parse_date,
    CompletionRow, ParsedReport, ReportHeaderError,
};

use crate::campaign;
use crate::clock::{to_millis, Clock};
use crate::problem::{kind_of, Kind, Problem};
use crate::roster::{decode, RowError};
use crate::store::roster::StaffRow;
use crate::store::Store;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

/// How to run one completion import.
#[derive(Debug, Clone)]
pub struct CompletionOptions {
    /// Which campaign; may be omitted when exactly one campaign is active.
    pub campaign: Option<String>,
    pub dry_run: bool,
    pub file_name: String,
}

/// A row that names nobody we can credit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unmatched {
    pub line: u64,
    pub who: String,
    pub reason: String,
}

/// The result of a completion import. `--format json` prints this.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CompletionReport {
    pub applied: bool,
    pub dry_run: bool,
    pub campaign: String,
    pub file: String,
    pub sha256: String,
    /// How the file was read: "UTF-8", "UTF-16LE", "UTF-16BE" or "windows-1252".
    pub encoding: String,
    /// Rows that name a person and a completion.
    pub rows: u64,
    pub matched: u64,
    /// Completions recorded by this import (0 on a re-import).
    pub newly_completed: u64,
    pub already_completed: u64,
    /// Rows whose status is not completed (in progress, registered).
    pub not_completed: u64,
    /// Further rows for a person already matched in this file.
    pub duplicates: u64,
    pub unmatched: Vec<Unmatched>,
    /// Rows credited by a unique exact name because neither their address
    /// nor their employee id is in the roster: check these by hand.
    pub matched_by_name: Vec<NameMatch>,
    pub malformed: Vec<RowError>,
}

/// A row credited to the one person in the roster with its exact name.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NameMatch {
    pub line: u64,
    /// Who the row names: its address (or employee id), and the name.
    pub who: String,
    /// The roster address of the person credited.
    pub email: String,
}

/// Why a completion import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum CompletionError {
    #[error("{file}: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("{}: {} malformed row(s); nothing was recorded. Fix the rows listed and import again", .0.file, .0.malformed.len())]
    Malformed(Box<CompletionReport>),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl CompletionError {
    /// Unreadable and malformed files are the caller's; otherwise the kind
    /// the failure carries (an unknown campaign is invalid, a database error ours).
    pub fn kind(&self) -> Kind {
        match self {
            CompletionError::Unreadable { .. } | CompletionError::Malformed(_) => Kind::Invalid,
            CompletionError::Other(e) => kind_of(e),
        }
    }
}

/// One completion to record, from any source (report, API, self-attestation).
#[derive(Debug, Clone)]
pub struct Completion {
    pub staff_id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Reads a completion report and records the completions it proves.
#[tracing::instrument(skip_all, fields(file = %options.file_name))]
pub async fn import(
    store: &Store,
    clock: &dyn Clock,
    org_tz: chrono_tz::Tz,
    mappings: &BTreeMap<String, String>,
    bytes: &[u8],
    options: &CompletionOptions,
) -> Result<CompletionReport, CompletionError> {
    let campaign = resolve_campaign(store, options.campaign.as_deref()).await?;
    let now = clock.now();
    let (parsed, mut report) = read_report(bytes, mappings, org_tz, now, options)?;
    report.campaign = campaign.slug.clone();
    if !report.malformed.is_empty() {
        return Err(CompletionError::Malformed(Box::new(report)));
    }
    let staff = store.all_staff().await?;
    let matcher = Matcher::new(&staff);
    let (completions, credits) = match_rows(&matcher, &parsed.rows, &mut report);
    let outcome = record(store, campaign.id, &completions, "report", options.dry_run).await?;
    report.matched = outcome.recorded + outcome.already;
    report.newly_completed = outcome.recorded;
    report.already_completed = outcome.already;
    list_not_enrolled(&mut report, &outcome.not_enrolled, &credits);
    report.unmatched.sort_by_key(|u| u.line);
    if !options.dry_run {
        remember_import(store, now, campaign.id, &report).await?;
        report.applied = true;
    }
    tracing::info!(
        matched = report.matched,
        new = report.newly_completed,
        unmatched = report.unmatched.len(),
        "completion report imported"
    );
    Ok(report)
}

/// Decodes and parses the file; the report so far (counts of rows, the
/// malformed ones) comes with the rows.
fn read_report(
    bytes: &[u8],
    mappings: &BTreeMap<String, String>,
    org_tz: chrono_tz::Tz,
    now: chrono::DateTime<chrono::Utc>,
    options: &CompletionOptions,
) -> Result<(ParsedReport, CompletionReport), CompletionError> {
    let unreadable = |reason: String| CompletionError::Unreadable {
        file: options.file_name.clone(),
        reason,
    };
    let decoded = decode(bytes).map_err(|e| unreadable(e.to_string()))?;
    let mut parsed = parse::parse(&decoded.text, decoded.delimiter, mappings, org_tz, now)
        .map_err(|e| unreadable(format!("{e} (read as {})", decoded.encoding)))?;
    let report = CompletionReport {
        dry_run: options.dry_run,
        file: options.file_name.clone(),
        sha256: hex::encode(Sha256::digest(bytes)),
        encoding: decoded.encoding.to_string(),
        rows: parsed.rows.len() as u64,
        not_completed: parsed.not_completed,
        malformed: std::mem::take(&mut parsed.errors),
        ..CompletionReport::default()
    };
    Ok((parsed, report))
}

/// Each person's earliest completion in the file, and the first line that
/// credits them; rows that name nobody go to `report.unmatched`.
fn match_rows<'a>(
    matcher: &Matcher<'a>,
    rows: &[CompletionRow],
    report: &mut CompletionReport,
) -> (Vec<Completion>, HashMap<i64, Credit<'a>>) {
    let mut credits: HashMap<i64, Credit<'a>> = HashMap::new();
    for row in rows {
        match matcher.find(row) {
            Ok((person, by_name)) => match credits.get_mut(&person.id) {
                Some(credit) => {
                    report.duplicates += 1;
                    credit.at = credit.at.min(row.completed_at);
                }
                None => {
                    credits.insert(
                        person.id,
                        Credit {
                            at: row.completed_at,
                            line: row.line,
                            email: &person.email,
                        },
                    );
                    if by_name {
                        report.matched_by_name.push(NameMatch {
                            line: row.line,
                            who: describe_with_name(row),
                            email: person.email.clone(),
                        });
                    }
                }
            },
            Err(reason) => report.unmatched.push(Unmatched {
                line: row.line,
                who: describe(row),
                reason,
            }),
        }
    }
    let completions = credits
        .iter()
        .map(|(staff_id, credit)| Completion {
            staff_id: *staff_id,
            at: credit.at,
        })
        .collect();
    (completions, credits)
}

/// One person the file credits: their earliest completion in it, the
/// first line that credits them, and their roster address.
struct Credit<'a> {
    at: chrono::DateTime<chrono::Utc>,
    line: u64,
    email: &'a str,
}

/// People the file credits who are in the roster but not in the campaign.
fn list_not_enrolled(
    report: &mut CompletionReport,
    not_enrolled: &[i64],
    credits: &HashMap<i64, Credit<'_>>,
) {
    for staff_id in not_enrolled {
        let credit = credits.get(staff_id);
        report.unmatched.push(Unmatched {
            line: credit.map_or(0, |c| c.line),
            who: credit.map(|c| c.email.to_string()).unwrap_or_default(),
            reason: format!("not enrolled in campaign {}", report.campaign),
        });
    }
}

/// Records the import itself, for the history.
async fn remember_import(
    store: &Store,
    now: chrono::DateTime<chrono::Utc>,
    campaign_id: i64,
    report: &CompletionReport,
) -> anyhow::Result<()> {
    let counts = [
        report.matched as i64,
        report.newly_completed as i64,
        report.unmatched.len() as i64,
    ];
    store
        .record_completion_import(
            to_millis(now),
            campaign_id,
            &report.file,
            &report.sha256,
            counts,
        )
        .await?;
    Ok(())
}

/// What recording a batch of completions did.
#[derive(Debug, Default)]
pub struct Recorded {
    pub recorded: u64,
    pub already: u64,
    pub not_enrolled: Vec<i64>,
}

/// Records completions (first completion wins; later ones change nothing).
/// Reminders stop at once: the worker re-checks completion before sending,
/// and the planner queues the thank-you step on its next tick.
pub async fn record(
    store: &Store,
    campaign_id: i64,
    completions: &[Completion],
    source: &str,
    dry_run: bool,
) -> anyhow::Result<Recorded> {
    let mut out = Recorded::default();
    for c in completions {
        match store.completion_state(campaign_id, c.staff_id).await? {
            None => out.not_enrolled.push(c.staff_id),
            Some(Some(_)) => out.already += 1,
            Some(None) if dry_run => out.recorded += 1,
            Some(None) => {
                if store
                    .complete_enrolment(campaign_id, c.staff_id, to_millis(c.at), source)
                    .await?
                {
                    out.recorded += 1;
                } else {
                    out.already += 1;
                }
            }
        }
    }
    Ok(out)
}

/// The named campaign, or the only active one.
pub async fn resolve_campaign(
    store: &Store,
    slug: Option<&str>,
) -> anyhow::Result<crate::store::campaign::CampaignRow> {
    // Which campaign is the caller's choice (`campaign`), so every refusal
    // below is an invalid value of it, not a missing resource.
    if let Some(slug) = slug {
        return campaign::find(store, slug)
            .await
            .map_err(|e| match kind_of(&e) {
                Kind::NotFound => Problem::invalid("campaign", e.to_string()).into(),
                _ => e,
            });
    }
    let active: Vec<_> = store
        .campaigns()
        .await?
        .into_iter()
        .filter(|c| c.status != crate::store::CampaignStatus::Cancelled)
        .collect();
    match active.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Problem::invalid(
            "campaign",
            "there is no campaign yet; apply one first (ambassador campaign apply FILE)",
        )
        .into()),
        many => Err(Problem::invalid(
            "campaign",
            format!(
                "several campaigns exist ({}); say which with --campaign SLUG",
                many.iter()
                    .map(|c| c.slug.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .into()),
    }
}

/// Who a row names, with the name when it has one.
fn describe_with_name(row: &parse::CompletionRow) -> String {
    let name = format!("{} {}", row.first_name, row.last_name);
    let (who, name) = (describe(row), name.trim());
    if who == name {
        who
    } else {
        format!("{who} ({name})")
    }
}

fn describe(row: &parse::CompletionRow) -> String {
    row.email
        .clone()
        .or_else(|| row.employee_id.clone())
        .unwrap_or_else(|| {
            format!("{} {}", row.first_name, row.last_name)
                .trim()
                .to_string()
        })
}

/// Finds the one person a row names, or says why it cannot.
struct Matcher<'a> {
    by_id: HashMap<&'a str, Vec<&'a StaffRow>>,
    by_email: HashMap<&'a str, &'a StaffRow>,
    by_name: HashMap<String, Vec<&'a StaffRow>>,
}

impl<'a> Matcher<'a> {
    fn new(staff: &'a [StaffRow]) -> Self {
        let mut by_id: HashMap<&str, Vec<&StaffRow>> = HashMap::new();
        let mut by_name: HashMap<String, Vec<&StaffRow>> = HashMap::new();
        for s in staff {
            if let Some(id) = s.employee_id.as_deref() {
                by_id.entry(id).or_default().push(s);
            }
            by_name
                .entry(name_key(&s.first_name, &s.last_name))
                .or_default()
                .push(s);
        }
        Self {
            by_id,
            by_email: staff.iter().map(|s| (s.email.as_str(), s)).collect(),
            by_name,
        }
    }

    /// The one person a row names, and whether only by name: by email,
    /// then employee id, then a unique exact first and last name.
    fn find(&self, row: &parse::CompletionRow) -> Result<(&'a StaffRow, bool), String> {
        let mut tried = Vec::new();
        if let Some(email) = &row.email {
            if let Some(person) = self.by_email.get(email.as_str()) {
                return Ok((person, false));
            }
            tried.push(format!("the address {email}"));
        }
        if let Some(id) = &row.employee_id {
            match self.by_id.get(id.as_str()).map(Vec::as_slice) {
                Some([one]) => return Ok((one, false)),
                Some(_) => {
                    return Err(format!(
                        "employee id {id:?} belongs to several people (different roster sources)"
                    ))
                }
                None => tried.push(format!("employee id {id:?}")),
            }
        }
        let (first, last) = (row.first_name.trim(), row.last_name.trim());
        if !first.is_empty() && !last.is_empty() {
            match self.by_name.get(&name_key(first, last)).map(Vec::as_slice) {
                Some([one]) => return Ok((one, true)),
                Some(many) => {
                    return Err(format!(
                        "{} people are called {first} {last}, so the name cannot say which; record the completion by hand (ambassador completions add EMAIL --date YYYY-MM-DD)",
                        many.len()
                    ))
                }
                None => tried.push(format!("the name {first} {last}")),
            }
        }
        if tried.is_empty() {
            return Err(
                "the row names nobody: no email, employee id or first and last name".into(),
            );
        }
        Err(format!("no one in the roster has {}", tried.join(", nor ")))
    }
}

/// Exact name match, ignoring only case and surrounding space.
fn name_key(first: &str, last: &str) -> String {
    format!(
        "{}\u{1f}{}",
        first.trim().to_lowercase(),
        last.trim().to_lowercase()
    )
}
