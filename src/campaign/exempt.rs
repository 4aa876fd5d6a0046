//! Exempting a person from a campaign, and undoing it. Only someone the
//! campaign is about can be exempted: an enrolled person, or an active one
//! its audience matches who is not enrolled yet. A person who completed
//! keeps their completion (it is refused), a second exemption does not
//! replace the first, and a cancelled campaign changes no more. Anything
//! refused writes nothing, so `population.exempted` and `outcome.completed`
//! count only what happened. Every change is kept with who, when and why.

use super::{definition_of, Status};
use crate::clock::from_millis;
use crate::domain::EmailAddress;
use crate::problem::{kind_of, Kind};
use crate::store::campaign::CampaignRow;
use crate::store::exemption::{Actor, ExemptionChange, ExemptionTarget, ExemptionView, Raced};
use crate::store::Store;

/// Why an exemption (or its undoing) was refused; callers answer each one differently.
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
    #[error("{email} completed campaign {campaign} on {on}; a completion stands and is not exempted; nothing changed")]
    Completed {
        email: EmailAddress,
        campaign: String,
        on: String,
    },
    #[error("{email} is already exempted from campaign {campaign} since {since} ({reason:?}); undo it first (`ambassador exempt --undo`) to give another reason; nothing changed")]
    AlreadyExempted {
        email: EmailAddress,
        campaign: String,
        since: String,
        reason: String,
    },
    #[error("{email} is not exempted from campaign {campaign}; nothing to undo")]
    NotExempted {
        email: EmailAddress,
        campaign: String,
    },
    #[error("campaign {0} was cancelled; its exemptions no longer change")]
    Cancelled(String),
    #[error("the exemption of {0} changed meanwhile; look at it again (`ambassador campaign exemptions`) and retry; nothing changed")]
    Conflict(EmailAddress),
    #[error(transparent)]
    Store(anyhow::Error),
}

impl From<anyhow::Error> for ExemptError {
    fn from(e: anyhow::Error) -> Self {
        ExemptError::Store(e)
    }
}

impl ExemptError {
    /// Every refusal is about the person named (`email`); a store failure is ours.
    pub fn kind(&self) -> Kind {
        match self {
            ExemptError::UnknownPerson(_)
            | ExemptError::OutsideAudience { .. }
            | ExemptError::Inactive { .. } => Kind::Invalid,
            // The person's or the campaign's state forbids the change.
            ExemptError::Completed { .. }
            | ExemptError::AlreadyExempted { .. }
            | ExemptError::NotExempted { .. }
            | ExemptError::Cancelled(_)
            | ExemptError::Conflict(_) => Kind::Conflict,
            ExemptError::Store(e) => kind_of(e),
        }
    }
}
/// An exemption's (or undo's) reason as every edge accepts it: one line
/// of text, at most 500 characters once trimmed. Each edge says so in its
/// own words.
pub fn valid_reason(reason: &str) -> bool {
    let reason = reason.trim();
    !reason.is_empty() && reason.chars().count() <= 500 && !reason.chars().any(char::is_control)
}

/// Exempts `email` from the campaign `row`, enrolling them first when the
/// audience matches but the planner has not enrolled them yet.
pub async fn exempt(
    store: &Store,
    row: &CampaignRow,
    email: &EmailAddress,
    reason: &str,
    now: i64,
    actor: &Actor,
) -> Result<(), ExemptError> {
    let target = target(store, row, email).await?;
    match &target.enrolment {
        Some(e) if e.completed_at.is_some() => {
            return Err(ExemptError::Completed {
                email: email.clone(),
                campaign: row.slug.clone(),
                on: day(e.completed_at.unwrap_or_default()),
            })
        }
        Some(e) if e.exempted_at.is_some() => {
            return Err(ExemptError::AlreadyExempted {
                email: email.clone(),
                campaign: row.slug.clone(),
                since: day(e.exempted_at.unwrap_or_default()),
                reason: e.exempt_reason.clone().unwrap_or_default(),
            })
        }
        Some(_) => {}
        None if !target.active => {
            return Err(ExemptError::Inactive {
                email: email.clone(),
                campaign: row.slug.clone(),
            })
        }
        None => {
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
    }
    store
        .exempt(row.id, target.person.id, reason, now, actor)
        .await
        .map_err(|e| raced(e, email))
}

/// Undoes the exemption of `email` from `row`: planning messages them again
/// from its next tick. `reason` is kept in the history.
pub async fn unexempt(
    store: &Store,
    row: &CampaignRow,
    email: &EmailAddress,
    reason: &str,
    now: i64,
    actor: &Actor,
) -> Result<(), ExemptError> {
    let target = target(store, row, email).await?;
    if target
        .enrolment
        .as_ref()
        .is_none_or(|e| e.exempted_at.is_none())
    {
        return Err(ExemptError::NotExempted {
            email: email.clone(),
            campaign: row.slug.clone(),
        });
    }
    store
        .unexempt(row.id, target.person.id, reason, now, actor)
        .await
        .map_err(|e| raced(e, email))
}

/// A campaign's exemptions now and every change that led to them: what
/// `campaign exemptions --format json` prints and the API answers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExemptionListing {
    pub campaign: String,
    pub exemptions: Vec<ExemptionView>,
    pub history: Vec<ExemptionChange>,
}

/// The exemptions of `row`, with their history.
pub async fn exemption_listing(
    store: &Store,
    row: &CampaignRow,
) -> anyhow::Result<ExemptionListing> {
    Ok(ExemptionListing {
        campaign: row.slug.clone(),
        exemptions: store.exemptions(row.id).await?,
        history: store.exemption_history(row.id).await?,
    })
}

/// The person, refusing unknown people and cancelled campaigns.
async fn target(
    store: &Store,
    row: &CampaignRow,
    email: &EmailAddress,
) -> Result<ExemptionTarget, ExemptError> {
    if row.status == Status::Cancelled {
        return Err(ExemptError::Cancelled(row.slug.clone()));
    }
    store
        .exemption_target(row.id, email.as_str())
        .await?
        .ok_or_else(|| ExemptError::UnknownPerson(email.clone()))
}

fn raced(e: anyhow::Error, email: &EmailAddress) -> ExemptError {
    if e.is::<Raced>() {
        ExemptError::Conflict(email.clone())
    } else {
        ExemptError::Store(e)
    }
}

fn day(millis: i64) -> String {
    from_millis(millis).format("%Y-%m-%d").to_string()
}
