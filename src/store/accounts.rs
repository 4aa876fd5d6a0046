//! Admin accounts and their personal API tokens. Emails are kept lower case;
//! tokens only as their SHA-256 (hex), so the table holds nothing usable.

use super::state::Role;
use super::Store;
use crate::problem::Problem;

/// One named admin account.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Account {
    pub id: i64,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    /// Argon2 PHC string: the break-glass local password, when set.
    #[serde(skip)]
    pub password_hash: Option<String>,
    /// When the account was disabled (epoch ms); disabled accounts sign in nowhere.
    #[serde(serialize_with = "optional_instant")]
    pub disabled_at: Option<i64>,
    #[serde(serialize_with = "super::exemption::instant")]
    pub created_at: i64,
    /// Who created it: an account's email, an OS user, "sign-in" (just in time).
    pub created_by: String,
}

impl Account {
    pub fn disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
}

const ACCOUNT_COLUMNS: &str = "id, email, role, password_hash, disabled_at, created_at, created_by";

/// One personal API token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct TokenRow {
    pub id: i64,
    pub account_id: i64,
    /// The owner's email.
    pub email: String,
    pub name: String,
    #[serde(serialize_with = "super::exemption::instant")]
    pub created_at: i64,
    #[serde(serialize_with = "super::exemption::instant")]
    pub expires_at: i64,
    #[serde(serialize_with = "optional_instant")]
    pub revoked_at: Option<i64>,
    #[serde(serialize_with = "optional_instant")]
    pub last_used_at: Option<i64>,
}

/// An optional epoch-ms instant as RFC 3339, or null.
fn optional_instant<S: serde::Serializer>(millis: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&millis.map(crate::clock::from_millis), s)
}

const TOKEN_COLUMNS: &str =
    "t.id, t.account_id, a.email, t.name, t.created_at, t.expires_at, t.revoked_at, t.last_used_at";

/// A new account, as given to [`Store::insert_account`].
#[derive(Debug, Clone)]
pub struct NewAccount<'a> {
    pub email: &'a str,
    pub role: Role,
    pub password_hash: Option<&'a str>,
    pub created_by: &'a str,
}

impl Store {
    /// The account with this email (any case), disabled or not.
    pub async fn account_by_email(&self, email: &str) -> anyhow::Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = $1");
        Ok(on_pool!(self, |c| sqlx::query_as(&sql)
            .bind(email.trim().to_lowercase())
            .fetch_optional(c)
            .await?))
    }

    pub async fn account_by_id(&self, id: i64) -> anyhow::Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1");
        Ok(on_pool!(self, |c| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(c)
            .await?))
    }

    /// Every account, by email.
    pub async fn accounts(&self) -> anyhow::Result<Vec<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY email");
        Ok(on_pool!(self, |c| sqlx::query_as(&sql)
            .fetch_all(c)
            .await?))
    }

    /// Adds an account; one that exists already is a conflict, left unchanged.
    pub async fn insert_account(&self, new: &NewAccount<'_>, now: i64) -> anyhow::Result<Account> {
        let email = new.email.trim().to_lowercase();
        let sql = format!(
            "INSERT INTO accounts (email, role, password_hash, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING RETURNING {ACCOUNT_COLUMNS}"
        );
        let inserted: Option<Account> = on_pool!(self, |c| sqlx::query_as(&sql)
            .bind(&email)
            .bind(new.role.as_str())
            .bind(new.password_hash)
            .bind(now)
            .bind(new.created_by)
            .fetch_optional(c)
            .await?);
        inserted.ok_or_else(|| {
            Problem::Conflict(format!(
                "an account for {email} exists already; see `ambassador admin list`"
            ))
            .into()
        })
    }

    /// Disables an account, ends its sessions and revokes its tokens, in one
    /// transaction. False when it was disabled already.
    pub async fn disable_account(&self, id: i64, now: i64) -> anyhow::Result<bool> {
        let mut tx = self.begin().await?;
        let changed = on_tx!(tx, |c| sqlx::query(
            "UPDATE accounts SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *c)
        .await?
        .rows_affected());
        on_tx!(tx, |c| sqlx::query(
            "DELETE FROM admin_sessions WHERE account_id = $1"
        )
        .bind(id)
        .execute(&mut *c)
        .await?
        .rows_affected());
        on_tx!(tx, |c| sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit().await?;
        Ok(changed == 1)
    }

    /// Enables a disabled account again (its tokens stay revoked).
    pub async fn enable_account(&self, id: i64) -> anyhow::Result<bool> {
        let changed = on_pool!(self, |c| sqlx::query(
            "UPDATE accounts SET disabled_at = NULL WHERE id = $1 AND disabled_at IS NOT NULL",
        )
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(changed == 1)
    }

    /// Changes an account's role; its sessions and tokens carry the new one
    /// from their next request.
    pub async fn set_account_role(&self, id: i64, role: Role) -> anyhow::Result<bool> {
        let changed = on_pool!(self, |c| sqlx::query(
            "UPDATE accounts SET role = $1 WHERE id = $2 AND role <> $1"
        )
        .bind(role.as_str())
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(changed == 1)
    }

    /// Sets (or with `None` removes) the break-glass password.
    pub async fn set_password_hash(&self, id: i64, hash: Option<&str>) -> anyhow::Result<()> {
        on_pool!(self, |c| sqlx::query(
            "UPDATE accounts SET password_hash = $1 WHERE id = $2"
        )
        .bind(hash)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Keeps a new token's digest; returns its id.
    pub async fn insert_token(
        &self,
        account_id: i64,
        name: &str,
        sha256_hex: &str,
        now: i64,
        expires_at: i64,
    ) -> anyhow::Result<i64> {
        let id: i64 = on_pool!(self, |c| sqlx::query_scalar(
            "INSERT INTO api_tokens (account_id, name, token_sha256, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(account_id)
        .bind(name)
        .bind(sha256_hex)
        .bind(now)
        .bind(expires_at)
        .fetch_one(c)
        .await?);
        Ok(id)
    }

    /// The live token with this digest and its account: not revoked, not
    /// expired at `now`, its account not disabled. Marks it used.
    pub async fn live_token(
        &self,
        sha256_hex: &str,
        now: i64,
    ) -> anyhow::Result<Option<(TokenRow, Account)>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN accounts a ON a.id = t.account_id
             WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL AND t.expires_at > $2
               AND a.disabled_at IS NULL"
        );
        let token: Option<TokenRow> = on_pool!(self, |c| sqlx::query_as(&sql)
            .bind(sha256_hex)
            .bind(now)
            .fetch_optional(c)
            .await?);
        let Some(token) = token else { return Ok(None) };
        // At most one write a minute per token, not one per request.
        on_pool!(self, |c| sqlx::query(
            "UPDATE api_tokens SET last_used_at = $1
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(now)
        .bind(token.id)
        .bind(now - 60_000)
        .execute(c)
        .await?
        .rows_affected());
        let account = self.account_by_id(token.account_id).await?;
        Ok(account.map(|a| (token, a)))
    }

    /// Tokens, newest first; of one account when `account_id` is given.
    pub async fn tokens(&self, account_id: Option<i64>) -> anyhow::Result<Vec<TokenRow>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN accounts a ON a.id = t.account_id
             WHERE ($1 = 0 OR t.account_id = $1) ORDER BY t.id DESC"
        );
        Ok(on_pool!(self, |c| sqlx::query_as(&sql)
            .bind(account_id.unwrap_or(0))
            .fetch_all(c)
            .await?))
    }

    pub async fn token_by_id(&self, id: i64) -> anyhow::Result<Option<TokenRow>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN accounts a ON a.id = t.account_id WHERE t.id = $1"
        );
        Ok(on_pool!(self, |c| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(c)
            .await?))
    }

    /// Revokes a token; false when it was revoked already.
    pub async fn revoke_token(&self, id: i64, now: i64) -> anyhow::Result<bool> {
        let changed = on_pool!(self, |c| sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
        Ok(changed == 1)
    }
}
