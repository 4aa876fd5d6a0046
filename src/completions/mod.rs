//! Completions from the system of record: completion reports exported from
//! the learning network, matched to the roster by employee id, then email,
//! then exact name. Unmatched rows are listed with the reason and never
//! guessed; re-importing the same report changes nothing.

mod parse;

pub use parse::{
    parse as parse_report, parse_date, CompletionRow, ParsedReport, ReportHeaderError,
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
    pub malformed: Vec<RowError>,
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
    let unreadable = |reason: String| CompletionError::Unreadable {
        file: options.file_name.clone(),
        reason,
    };
    let campaign = resolve_campaign(store, options.campaign.as_deref()).await?;
    let decoded = decode(bytes).map_err(|e| unreadable(e.to_string()))?;
    let now = clock.now();
    let parsed = parse::parse(&decoded.text, decoded.delimiter, mappings, org_tz, now)
        .map_err(|e| unreadable(format!("{e} (read as {})", decoded.encoding)))?;
    let mut report = CompletionReport {
        dry_run: options.dry_run,
        campaign: campaign.slug.clone(),
        file: options.file_name.clone(),
        sha256: hex::encode(Sha256::digest(bytes)),
        encoding: decoded.encoding.to_string(),
        rows: parsed.rows.len() as u64,
        not_completed: parsed.not_completed,
        malformed: parsed.errors,
        ..CompletionReport::default()
    };
    if !report.malformed.is_empty() {
        return Err(CompletionError::Malformed(Box::new(report)));
    }
    let staff = store.all_staff().await?;
    let matcher = Matcher::new(&staff);
    let mut earliest: HashMap<i64, chrono::DateTime<chrono::Utc>> = HashMap::new();
    for row in &parsed.rows {
        match matcher.find(row) {
            Ok(person) => match earliest.get_mut(&person.id) {
                Some(at) => {
                    report.duplicates += 1;
                    *at = (*at).min(row.completed_at);
                }
                None => {
                    earliest.insert(person.id, row.completed_at);
                }
            },
            Err(reason) => report.unmatched.push(Unmatched {
                line: row.line,
                who: describe(row),
                reason,
            }),
        }
    }
    let completions: Vec<Completion> = earliest
        .into_iter()
        .map(|(staff_id, at)| Completion { staff_id, at })
        .collect();
    let outcome = record(store, campaign.id, &completions, "report", options.dry_run).await?;
    report.matched = outcome.recorded + outcome.already;
    report.newly_completed = outcome.recorded;
    report.already_completed = outcome.already;
    for staff_id in outcome.not_enrolled {
        let email = staff
            .iter()
            .find(|s| s.id == staff_id)
            .map(|s| s.email.clone())
            .unwrap_or_default();
        let line = parsed
            .rows
            .iter()
            .find(|r| matcher.find(r).map(|p| p.id) == Ok(staff_id))
            .map_or(0, |r| r.line);
        report.unmatched.push(Unmatched {
            line,
            who: email,
            reason: format!("not enrolled in campaign {}", campaign.slug),
        });
    }
    report.unmatched.sort_by_key(|u| u.line);
    if !options.dry_run {
        let counts = [
            report.matched as i64,
            report.newly_completed as i64,
            report.unmatched.len() as i64,
        ];
        store
            .record_completion_import(
                to_millis(now),
                campaign.id,
                &report.file,
                &report.sha256,
                counts,
            )
            .await?;
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

    fn find(&self, row: &parse::CompletionRow) -> Result<&'a StaffRow, String> {
        if let Some(id) = &row.employee_id {
            match self.by_id.get(id.as_str()).map(Vec::as_slice) {
                Some([one]) => return Ok(one),
                Some(_) => {
                    return Err(format!(
                        "employee id {id:?} belongs to several people (different roster sources)"
                    ))
                }
                None if row.email.is_none() => {
                    return Err(format!("no one in the roster has employee id {id:?}"))
                }
                None => {}
            }
        }
        if let Some(email) = &row.email {
            return self
                .by_email
                .get(email.as_str())
                .copied()
                .ok_or_else(|| format!("no one in the roster has the address {email}"));
        }
        let key = name_key(&row.first_name, &row.last_name);
        match self.by_name.get(&key).map(Vec::as_slice) {
            Some([one]) => Ok(one),
            Some(many) => Err(format!(
                "{} people are called {} {}; the report needs an email or employee id column",
                many.len(),
                row.first_name,
                row.last_name
            )),
            None => Err(format!(
                "no one in the roster is called {} {}",
                row.first_name, row.last_name
            )),
        }
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
