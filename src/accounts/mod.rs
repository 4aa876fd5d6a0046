//! Named admin accounts, their roles, personal API tokens and admin page
//! sessions. Every person who runs the rollout signs in as themselves, with
//! the least privilege they need: a viewer sees dashboards and reports, a
//! coordinator runs rosters, completions, exemptions and campaigns, an admin
//! does everything, accounts included.
//!
//! Sign-in methods (a local Argon2 password, single sign-on) find or create
//! an [`Account`], then [`session::start`] a session whose cookie value they
//! hand to the browser.

pub mod password;
pub mod session;
pub mod token;

pub use crate::store::accounts::{Account, TokenRow};
pub use crate::store::Role;

use crate::domain::EmailAddress;
use crate::problem::Problem;
use crate::store::accounts::NewAccount;
use crate::store::Store;

/// The account with this email (any case), disabled or not.
pub async fn find_by_email(store: &Store, email: &str) -> anyhow::Result<Option<Account>> {
    store.account_by_email(email).await
}

/// Creates an account. `password_hash` is an Argon2 PHC string (see
/// [`password::hash`]) for break-glass sign-in, or `None` (single sign-on
/// only); `created_by` names who made it (an account's email, an OS user,
/// "sign-in" for an account made just in time). An existing email is a
/// conflict and changes nothing.
pub async fn create(
    store: &Store,
    email: &EmailAddress,
    role: Role,
    password_hash: Option<&str>,
    created_by: &str,
    now: i64,
) -> anyhow::Result<Account> {
    if let Some(phc) = password_hash {
        password::check_phc(phc)?;
    }
    store
        .insert_account(
            &NewAccount {
                email: email.as_str(),
                role,
                password_hash,
                created_by,
            },
            now,
        )
        .await
}

/// The account with this email, or a not-found problem naming it.
pub async fn require(store: &Store, email: &str) -> anyhow::Result<Account> {
    find_by_email(store, email).await?.ok_or_else(|| {
        Problem::NotFound(format!(
            "no account for {}; `ambassador admin list` shows them",
            email.trim()
        ))
        .into()
    })
}

/// Who is signed in or presenting a token: a named account, or the
/// configured shared credential (deprecated), which acts as an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Account(Account),
    Shared,
}

impl Principal {
    pub fn role(&self) -> Role {
        match self {
            Principal::Account(a) => a.role,
            Principal::Shared => Role::Admin,
        }
    }

    /// The name audit entries and the page show.
    pub fn name(&self) -> &str {
        match self {
            Principal::Account(a) => &a.email,
            Principal::Shared => SHARED_NAME,
        }
    }

    pub fn account_id(&self) -> Option<i64> {
        match self {
            Principal::Account(a) => Some(a.id),
            Principal::Shared => None,
        }
    }
}

/// How the shared credential is named in the audit trail and on the page.
pub const SHARED_NAME: &str = "shared admin credential";

/// Every account, by email.
pub async fn list(store: &Store) -> anyhow::Result<Vec<Account>> {
    store.accounts().await
}
