//! Personal API tokens: each belongs to an account and carries its role,
//! expires, and can be revoked. Shown once when made; kept only as SHA-256.

use super::session::{digest, random_token};
use super::{Account, TokenRow};
use crate::problem::Problem;
use crate::store::Store;

/// Every token starts with this, so a leaked one is recognisable in a scan.
pub const PREFIX: &str = "amb_";

/// A token just made: its id and the secret, to show once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub id: i64,
    pub secret: String,
    pub expires_at: i64,
}

/// Makes a token for `account`, valid for `ttl_ms` from `now`.
pub async fn create(
    store: &Store,
    account: &Account,
    name: &str,
    ttl_ms: i64,
    now: i64,
) -> anyhow::Result<Created> {
    if account.disabled() {
        return Err(Problem::Conflict(format!(
            "the account {} is disabled; it gets no tokens",
            account.email
        ))
        .into());
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Problem::invalid(
            "name",
            "a token's name is one line of at most 100 characters, e.g. \"hr-sync\"",
        )
        .into());
    }
    if ttl_ms <= 0 {
        return Err(Problem::invalid("expires", "a token must live longer than zero").into());
    }
    let secret = format!("{PREFIX}{}", random_token());
    let expires_at = now.saturating_add(ttl_ms);
    let id = store
        .insert_token(account.id, name, &digest(&secret), now, expires_at)
        .await?;
    Ok(Created {
        id,
        secret,
        expires_at,
    })
}

/// The account behind a presented token, when the token is live.
pub async fn authenticate(
    store: &Store,
    presented: &str,
    now: i64,
) -> anyhow::Result<Option<(TokenRow, Account)>> {
    store.live_token(&digest(presented.trim()), now).await
}

/// Revokes a token by id; a token already revoked is a conflict.
pub async fn revoke(store: &Store, id: i64, now: i64) -> anyhow::Result<TokenRow> {
    let token = store.token_by_id(id).await?.ok_or_else(|| {
        Problem::NotFound(format!(
            "no token with id {id}; `ambassador admin token list` shows them"
        ))
    })?;
    if !store.revoke_token(id, now).await? {
        return Err(Problem::Conflict(format!("token {id} is revoked already")).into());
    }
    Ok(token)
}
