//! Admin page sessions in the database: every instance accepts the same
//! cookie, a restart keeps it, and signing out ends it everywhere. The
//! browser holds a random id; the table holds its SHA-256, so reading the
//! database gives no usable cookie.

use super::{Account, Principal};
use crate::store::sessions::SessionLimits;
use crate::store::Store;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A session just started: the cookie value and the session's CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The session cookie's value (256 random bits, hex).
    pub id: String,
    pub csrf: String,
}

/// A live session and who it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub id: String,
    pub csrf: String,
    pub principal: Principal,
}

/// Idle and absolute limits from `security.session_idle_timeout` and
/// `security.session_lifetime`.
pub fn limits(security: &crate::config::Security) -> SessionLimits {
    SessionLimits {
        idle_ms: millis(security.session_idle_timeout),
        absolute_ms: millis(security.session_lifetime),
    }
}

fn millis(d: crate::domain::HumanDuration) -> i64 {
    i64::try_from(d.as_std().as_millis()).unwrap_or(i64::MAX / 4)
}

/// Starts a session for `account_id` (`None`: the shared credential). The
/// id is always fresh, never one the browser offered.
pub async fn start(
    store: &Store,
    account_id: Option<i64>,
    now: i64,
    limits: SessionLimits,
) -> anyhow::Result<Started> {
    let started = Started {
        id: random_token(),
        csrf: random_token(),
    };
    store
        .insert_session(&digest(&started.id), account_id, &started.csrf, now, limits)
        .await?;
    Ok(started)
}

/// The live session with this cookie value; `None` when unknown, expired,
/// or its account is disabled.
pub async fn find(
    store: &Store,
    id: &str,
    now: i64,
    limits: SessionLimits,
) -> anyhow::Result<Option<Live>> {
    let Some(row) = store.live_session(&digest(id), now, limits).await? else {
        return Ok(None);
    };
    let principal = match row.account_id {
        None => Principal::Shared,
        Some(account_id) => match store.account_by_id(account_id).await? {
            Some(
                account @ Account {
                    disabled_at: None, ..
                },
            ) => Principal::Account(account),
            _ => return Ok(None),
        },
    };
    Ok(Some(Live {
        id: id.to_string(),
        csrf: row.csrf,
        principal,
    }))
}

/// Signs out: the session ends on every instance.
pub async fn end(store: &Store, id: &str) -> anyhow::Result<()> {
    store.delete_session(&digest(id)).await
}

/// SHA-256 of a session id or token, hex: what the database keeps.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// 256 random bits, hex: session ids, CSRF tokens, upload ids.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}
