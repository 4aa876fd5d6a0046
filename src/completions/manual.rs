//! One completion recorded by hand (CLI, API, admin page): for the learner
//! whose report row matched nobody, or who completed elsewhere.

use super::{completion_time, record, Completion};
use crate::clock::Clock;
use crate::domain::EmailAddress;
use crate::problem::{kind_of, Kind};
use crate::store::campaign::CampaignRow;
use crate::store::Store;
use chrono::{DateTime, Utc};

/// What recording one completion by hand did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ManualCompletion {
    pub email: String,
    pub campaign: String,
    /// The completion time as recorded (a bare date: noon in the
    /// organisation's time zone, or now if that is later today).
    pub completed_at: DateTime<Utc>,
    /// False when the person's completion was already recorded: the first
    /// one stands.
    pub recorded: bool,
}

/// Why a completion could not be recorded; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ManualError {
    /// Not a date, or one in the future.
    #[error("{0}")]
    BadDate(String),
    #[error("no one in the roster has the address {0}; check it with ambassador roster list")]
    UnknownPerson(String),
    #[error("{email} is not enrolled in campaign {campaign}")]
    NotEnrolled { email: String, campaign: String },
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl ManualError {
    /// Every refusal is about the values given (`email`, `date`); a store
    /// failure is ours.
    pub fn kind(&self) -> Kind {
        match self {
            ManualError::BadDate(_)
            | ManualError::UnknownPerson(_)
            | ManualError::NotEnrolled { .. } => Kind::Invalid,
            ManualError::Store(e) => kind_of(e),
        }
    }
}

/// Records that `email` completed `campaign` on `date` (a date, or a date
/// and time, as in completion reports).
pub async fn add(
    store: &Store,
    clock: &dyn Clock,
    org_tz: chrono_tz::Tz,
    campaign: &CampaignRow,
    email: &EmailAddress,
    date: &str,
) -> Result<ManualCompletion, ManualError> {
    let at = completion_time(date, org_tz, clock.now()).map_err(ManualError::BadDate)?;
    let person = store
        .staff_by_email(email.as_str())
        .await?
        .ok_or_else(|| ManualError::UnknownPerson(email.to_string()))?;
    let completion = Completion {
        staff_id: person.id,
        at,
    };
    let outcome = record(store, campaign.id, &[completion], "manual", false).await?;
    if !outcome.not_enrolled.is_empty() {
        return Err(ManualError::NotEnrolled {
            email: email.to_string(),
            campaign: campaign.slug.clone(),
        });
    }
    tracing::info!(campaign = %campaign.slug, recorded = outcome.recorded > 0, "completion recorded by hand");
    Ok(ManualCompletion {
        email: email.to_string(),
        campaign: campaign.slug.clone(),
        completed_at: at,
        recorded: outcome.recorded > 0,
    })
}
