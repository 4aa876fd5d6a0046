//! Campaigns: the file that defines a rollout, who it enrols, and the planner
//! that turns enrolments into outbox messages.
//!
//! Invariants: applying a file twice changes nothing; every message has a
//! deterministic dedupe key (campaign, enrolment or manager, step, cycle), so
//! planning may run any number of times on any number of instances.

mod audience;
mod definition;
mod exempt;
mod placement;
pub mod planner;
mod window;
pub mod words;

pub use definition::{
    Audience, AudienceField, Campaign, DefinitionError, Due, Offset, Recipient, Step, Trigger,
};
pub use exempt::{exempt, ExemptError};
pub use window::{SendWindow, Window, WindowSpec};

use crate::clock::{to_millis, Clock};
use crate::problem::Problem;
use crate::store::campaign::CampaignRow;
use crate::store::Store;

/// What `campaign apply` did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApplyOutcome {
    pub slug: String,
    pub created: bool,
    pub changed: bool,
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

/// Parses, checks every step's template against strict rendering, and stores
/// the campaign. A changed file updates the campaign; nothing sent is resent.
#[tracing::instrument(skip_all, fields(file = %file_name))]
pub async fn apply(
    store: &Store,
    clock: &dyn Clock,
    templates: &dyn StepTemplates,
    text: &str,
    file_name: &str,
) -> anyhow::Result<ApplyOutcome> {
    let campaign = Campaign::from_toml(text, file_name)?;
    templates
        .check_steps(&campaign)
        .map_err(|e| anyhow::anyhow!("{file_name}: {e}"))?;
    let definition = serde_json::to_string(&campaign)?;
    if let Some(existing) = store.campaign_by_slug(&campaign.slug).await? {
        if existing.status == Status::Cancelled {
            anyhow::bail!(
                "{file_name}: campaign {:?} was cancelled; give the new rollout another slug",
                campaign.slug
            );
        }
        if existing.definition == definition {
            return Ok(ApplyOutcome {
                slug: campaign.slug,
                created: false,
                changed: false,
            });
        }
    }
    let (_, created) = store
        .upsert_campaign(
            &campaign.slug,
            &campaign.name,
            &definition,
            to_millis(campaign.starts_at.into()),
            to_millis(clock.now()),
        )
        .await?;
    Ok(ApplyOutcome {
        slug: campaign.slug,
        created,
        changed: true,
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
