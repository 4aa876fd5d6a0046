//! Campaigns: the file that defines a rollout, who it enrols, and the planner
//! that turns enrolments into outbox messages.
//!
//! Invariants: applying a file twice changes nothing; every message has a
//! deterministic dedupe key (campaign, enrolment or manager, step, cycle), so
//! planning may run any number of times on any number of instances.

mod audience;
mod definition;
pub mod describe;
mod diff;
mod edit;
mod exempt;
mod feasibility;
mod placement;
pub mod planner;
mod window;
pub mod words;

pub use audience::{Audience, AudienceField, AudienceRule};
pub use definition::{Campaign, DefinitionError, Due, Offset, Recipient, Step, Trigger};
pub use diff::Change;
pub use edit::Effect;
pub use exempt::{
    exempt, exemption_listing, unexempt, valid_reason, ExemptError, ExemptionListing,
};
pub use window::{SendWindow, Window, WindowSpec};

use crate::clock::{to_millis, Clock};
use crate::problem::Problem;
use crate::store::campaign::CampaignRow;
use crate::store::Store;

/// What `campaign apply` did, or with `dry_run` would do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApplyOutcome {
    pub slug: String,
    pub created: bool,
    pub changed: bool,
    /// False for a dry run: nothing was written.
    pub applied: bool,
    /// Active people the audience matches.
    pub audience: u64,
    /// Keys that differ from the stored campaign (empty when created).
    pub changes: Vec<Change>,
    /// Enrolments and messages the change touches.
    pub effect: Effect,
}

/// How to apply a campaign file.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// Work out and report the change; write nothing.
    pub dry_run: bool,
    /// Accept an audience that matches nobody (e.g. before the first roster import).
    pub allow_empty: bool,
    /// The organisation's time zone: fixed due dates end at midnight there.
    pub org_tz: chrono_tz::Tz,
}

/// Campaign lifecycle states (the store's type, under the name campaign code uses).
pub use crate::store::CampaignStatus as Status;

/// What [`apply`] needs from the email templates: that every step of a
/// campaign renders. `delivery::Templates` implements it; the trait lives
/// here so that `campaign` needs nothing from `delivery`.
pub trait StepTemplates: Send + Sync {
    fn check_steps(
        &self,
        campaign: &Campaign,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

impl<T: StepTemplates + ?Sized> StepTemplates for std::sync::Arc<T> {
    fn check_steps(
        &self,
        campaign: &Campaign,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        (**self).check_steps(campaign)
    }
}

/// Parses, checks every step's template against strict rendering, and
/// stores the campaign. A changed file takes effect on the rollout under way
/// (see `edit`): due dates, pending messages and the audience follow it;
/// nothing sent is resent. An audience of nobody is refused unless allowed.
#[tracing::instrument(skip_all, fields(file = %file_name))]
pub async fn apply(
    store: &Store,
    clock: &dyn Clock,
    templates: &dyn StepTemplates,
    text: &str,
    file_name: &str,
    options: &ApplyOptions,
) -> anyhow::Result<ApplyOutcome> {
    let campaign = Campaign::from_toml(text, file_name)?;
    templates
        .check_steps(&campaign)
        .map_err(|e| anyhow::anyhow!("{file_name}: {e}"))?;
    let definition = serde_json::to_string(&campaign)?;
    let now = clock.now();
    let count = count_audience(store, &campaign).await?;
    let (audience, active) = (count.matched, count.active);
    if let Some(missing) = count.unknown_attributes.first() {
        let known = match count.attributes.is_empty() {
            true => "none".to_string(),
            false => count.attributes.join(", "),
        };
        return Err(Problem::invalid(
            "audience",
            format!(
                "{file_name}: [audience] names {missing:?}, which is neither a roster field ({}) nor an attribute anyone active in the roster has (attributes: {known}); correct the name",
                audience::ROSTER_FIELDS.join(", ")
            ),
        )
        .into());
    }
    let mut outcome = ApplyOutcome {
        slug: campaign.slug.clone(),
        created: true,
        changed: true,
        applied: !options.dry_run,
        audience,
        changes: Vec::new(),
        effect: Effect::default(),
    };
    let mut writes = crate::store::edit::EditWrites::default();
    if let Some(existing) = store.campaign_by_slug(&campaign.slug).await? {
        if existing.status == Status::Cancelled {
            anyhow::bail!(
                "{file_name}: campaign {:?} was cancelled; give the new rollout another slug",
                campaign.slug
            );
        }
        outcome.created = false;
        // Compared as parsed, so a change in how a value is written down
        // (e.g. "7days" stored by an older version, "7d" now) is no change.
        let old = definition_of(&existing)?;
        if old == campaign {
            outcome.changed = false;
            outcome.applied = false;
            return Ok(outcome);
        }
        outcome.changes = diff::changes(&old, &campaign);
        let planned = edit::plan(store, existing.id, &old, &campaign, options.org_tz, now).await?;
        outcome.effect = planned.effect;
        writes = planned.writes;
    }
    if audience == 0 && !options.allow_empty {
        let reason = match active {
            0 => format!("{file_name}: nobody is active in the roster yet, so the campaign would reach nobody; import the roster first, or pass --allow-empty to apply it before the import"),
            _ => format!(
                "{file_name}: the audience ({}) matches none of the {active} active people in the roster; correct [audience], or pass --allow-empty",
                describe::audience(&campaign.audience)
            ),
        };
        return Err(Problem::invalid("audience", reason).into());
    }
    if options.dry_run {
        return Ok(outcome);
    }
    let row = crate::store::edit::CampaignWrite {
        slug: &campaign.slug,
        name: &campaign.name,
        definition: &definition,
        starts_at: to_millis(campaign.starts_at.into()),
    };
    store
        .write_campaign_edit(&row, &writes, to_millis(now))
        .await?;
    Ok(outcome)
}

/// How many active people the campaign's audience matches, and how many
/// are active in all.
pub async fn audience_size(store: &Store, campaign: &Campaign) -> anyhow::Result<(u64, u64)> {
    // Counting reads every active person (most of a report's time at
    // 100,000 people), so the counts are kept until the roster changes. A
    // mark read before counting can only make the next call count again.
    let audience = format!("{:?}", campaign.audience);
    let mark = store.roster_mark().await?;
    if let Some(counts) = store.remembered_audience(&audience, &mark) {
        return Ok(counts);
    }
    let count = count_audience(store, campaign).await?;
    let counts = (count.matched, count.active);
    store.remember_audience(audience, mark, counts);
    Ok(counts)
}

/// An audience against the active roster.
struct AudienceCount {
    matched: u64,
    active: u64,
    /// Attribute names anyone active has, sorted.
    attributes: Vec<String>,
    /// Attributes the audience names that nobody active has (a typo, or a
    /// column the export lacks), when anyone is active at all.
    unknown_attributes: Vec<String>,
}

async fn count_audience(store: &Store, campaign: &Campaign) -> anyhow::Result<AudienceCount> {
    let people = store.active_people().await?;
    let matched = people
        .iter()
        .filter(|p| campaign.audience.matches(p))
        .count() as u64;
    // The attribute names are only needed to check an audience that names
    // attributes; the report and the dashboard count without parsing them.
    let named = campaign.audience.attributes();
    let mut attributes = std::collections::BTreeSet::new();
    if !named.is_empty() {
        for person in &people {
            if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&person.attributes) {
                attributes.extend(map.keys().cloned());
            }
        }
    }
    let unknown_attributes = match people.is_empty() {
        true => Vec::new(),
        false => named
            .into_iter()
            .filter(|a| !attributes.contains(*a))
            .map(str::to_string)
            .collect(),
    };
    Ok(AudienceCount {
        matched,
        active: people.len() as u64,
        attributes: attributes.into_iter().collect(),
        unknown_attributes,
    })
}

/// The stored definition of a campaign row.
pub fn definition_of(row: &CampaignRow) -> anyhow::Result<Campaign> {
    serde_json::from_str(&row.definition).map_err(|e| {
        anyhow::anyhow!(
            "campaign {:?} has an unreadable stored definition ({e}); apply its file again",
            row.slug
        )
    })
}

/// Looks a campaign up by slug, with an error that says how to list them.
pub async fn find(store: &Store, slug: &str) -> anyhow::Result<CampaignRow> {
    store.campaign_by_slug(slug).await?.ok_or_else(|| {
        Problem::NotFound(format!(
            "no campaign with slug {slug:?}; `ambassador campaign list` shows them"
        ))
        .into()
    })
}

/// Pauses, resumes or cancels. Cancelling also cancels every pending message.
pub async fn set_status(
    store: &Store,
    clock: &dyn Clock,
    slug: &str,
    status: Status,
) -> anyhow::Result<()> {
    let row = find(store, slug).await?;
    if row.status == Status::Cancelled && status != Status::Cancelled {
        return Err(Problem::Conflict(format!(
            "campaign {slug:?} was cancelled and cannot be resumed"
        ))
        .into());
    }
    let now = to_millis(clock.now());
    store.set_campaign_status(slug, status, now).await?;
    if status == Status::Cancelled {
        store
            .cancel_pending(row.id, now, "campaign cancelled")
            .await?;
    }
    Ok(())
}
