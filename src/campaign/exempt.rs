//! Exempting a person from a campaign. Only someone the campaign is about
//! can be exempted: an enrolled person, or an active one its audience
//! matches who is not enrolled yet. Anyone else is refused and nothing is
//! written, so `population.exempted` counts only the campaign's own people.

use super::definition_of;
use crate::domain::EmailAddress;
use crate::problem::{kind_of, Kind};
use crate::store::campaign::CampaignRow;
use crate::store::Store;

/// Why an exemption was refused; callers answer each one differently.
#[derive(Debug, thiserror::Error)]
pub enum ExemptError {
    #[error("nobody in the roster has the address {0}; `ambassador roster list` shows who is")]
    UnknownPerson(EmailAddress),
    #[error("{email} is not in the audience of campaign {campaign} (department {department:?}, role {role:?}, facility {facility:?}), so there is nothing to exempt them from; nothing changed")]
    OutsideAudience {
        email: EmailAddress,
        campaign: String,
        department: String,
        role: String,
        facility: String,
    },
    #[error("{email} is no longer active in the roster and was never enrolled in campaign {campaign}; nothing changed")]
    Inactive {
        email: EmailAddress,
        campaign: String,
    },
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl ExemptError {
    /// Every refusal is about the person named (`email`); a store failure is ours.
    pub fn kind(&self) -> Kind {
        match self {
            ExemptError::UnknownPerson(_)
            | ExemptError::OutsideAudience { .. }
            | ExemptError::Inactive { .. } => Kind::Invalid,
            ExemptError::Store(e) => kind_of(e),
        }
    }
}

/// Exempts `email` from the campaign `row`, enrolling them first when the
/// audience matches but the planner has not enrolled them yet.
pub async fn exempt(
    store: &Store,
    row: &CampaignRow,
    email: &EmailAddress,
    reason: &str,
    now: i64,
) -> Result<(), ExemptError> {
    let target = store
        .exemption_target(row.id, email.as_str())
        .await?
        .ok_or_else(|| ExemptError::UnknownPerson(email.clone()))?;
    if !target.enrolled {
        if !target.active {
            return Err(ExemptError::Inactive {
                email: email.clone(),
                campaign: row.slug.clone(),
            });
        }
        if !definition_of(row)?.audience.matches(&target.person) {
            return Err(ExemptError::OutsideAudience {
                email: email.clone(),
                campaign: row.slug.clone(),
                department: target.person.department,
                role: target.person.role,
                facility: target.person.facility,
            });
        }
    }
    store.exempt(row.id, email.as_str(), reason, now).await?;
    Ok(())
}
