//! Bounces: the message each one answers, what it did to the address, and
//! the people whose address is marked undeliverable. The mark lives on the
//! person as the address that bounced (`staff.bounced_email`): it holds
//! while their address is still that one, so an import that changes the
//! address clears it, and no reminder is claimed for a marked address.

use super::Store;

/// The outbox message a bounce answers, with its person.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BouncedMessage {
    pub outbox_id: i64,
    /// Where the message went.
    pub recipient: String,
    pub staff_id: Option<i64>,
    /// The person's address now (it may have changed since).
    pub staff_email: Option<String>,
}

/// Hard (5.x.x) or soft (4.x.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceKind {
    Hard,
    Soft,
}

impl BounceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BounceKind::Hard => "hard",
            BounceKind::Soft => "soft",
        }
    }
}

/// One bounce to record.
#[derive(Debug, Clone)]
pub struct NewBounce<'a> {
    pub received_at: i64,
    pub kind: BounceKind,
    /// The enhanced status code, e.g. "5.1.1".
    pub status: &'a str,
    pub diagnostic: &'a str,
    /// "verp" or "message_id".
    pub matched_by: &'a str,
}

/// What recording a bounce did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceEffect {
    /// The address is now marked undeliverable.
    Marked,
    /// Counted; the address is not (yet) marked.
    Counted,
    /// The same bounce of the same message was recorded before.
    Duplicate,
    /// The person's address changed since the message went out: the old
    /// address bounced, the current one is not marked.
    AddressChanged,
}

/// A person whose address is marked undeliverable, with their roster row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct BouncedPerson {
    pub email: String,
    pub employee_id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub department: String,
    pub role: String,
    pub facility: String,
    pub manager_email: Option<String>,
    /// When the address was marked (epoch ms).
    pub bounced_at: i64,
    /// The enhanced status code of the bounce that marked it.
    pub status: String,
    /// What the bouncing system said.
    pub diagnostic: String,
}

const BOUNCED_MESSAGE: &str = "SELECT o.id AS outbox_id, o.recipient, e.staff_id, s.email AS staff_email
     FROM outbox o LEFT JOIN enrolments e ON e.id = o.enrolment_id LEFT JOIN staff s ON s.id = e.staff_id";

impl Store {
    /// The message with this outbox id (a verified VERP token names it).
    pub async fn bounced_message(&self, outbox_id: i64) -> anyhow::Result<Option<BouncedMessage>> {
        Ok(on_pool!(self, |c| sqlx::query_as(&format!(
            "{BOUNCED_MESSAGE} WHERE o.id = $1"
        ))
        .bind(outbox_id)
        .fetch_optional(c)
        .await?))
    }

    /// The message with this Message-ID (`<...>` included), for a bounce
    /// without a VERP token.
    pub async fn bounced_message_by_id(
        &self,
        message_id: &str,
    ) -> anyhow::Result<Option<BouncedMessage>> {
        Ok(on_pool!(self, |c| sqlx::query_as(&format!(
            "{BOUNCED_MESSAGE} WHERE o.message_id = $1 ORDER BY o.id LIMIT 1"
        ))
        .bind(message_id)
        .fetch_optional(c)
        .await?))
    }

    /// Records a bounce of `message` and marks the person's address when it
    /// is hard, or when it is the `soft_limit`-th soft bounce to that
    /// address, in one transaction.
    pub async fn record_bounce(
        &self,
        message: &BouncedMessage,
        bounce: &NewBounce<'_>,
        soft_limit: u32,
    ) -> anyhow::Result<BounceEffect> {
        let mut tx = self.begin().await?;
        let inserted = on_tx!(tx, |c| {
            sqlx::query(
            "INSERT INTO bounces (received_at, outbox_id, staff_id, address, kind, status, diagnostic, matched_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (outbox_id, kind) DO NOTHING",
        )
        .bind(bounce.received_at)
        .bind(message.outbox_id)
        .bind(message.staff_id)
        .bind(message.recipient.as_str())
        .bind(bounce.kind.as_str())
        .bind(bounce.status)
        .bind(bounce.diagnostic)
        .bind(bounce.matched_by)
        .execute(&mut *c)
        .await?
        .rows_affected()
        });
        if inserted == 0 {
            tx.commit().await?;
            return Ok(BounceEffect::Duplicate);
        }
        let Some(staff_id) = message.staff_id else {
            tx.commit().await?;
            return Ok(BounceEffect::Counted);
        };
        let same_address = message
            .staff_email
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case(&message.recipient));
        if !same_address {
            tx.commit().await?;
            return Ok(BounceEffect::AddressChanged);
        }
        let mark = match bounce.kind {
            BounceKind::Hard => true,
            BounceKind::Soft => {
                let soft: i64 = on_tx!(tx, |c| {
                    sqlx::query_scalar(
                    "SELECT COUNT(*) FROM bounces b JOIN staff s ON s.id = b.staff_id
                     WHERE b.staff_id = $1 AND b.kind = 'soft' AND LOWER(b.address) = LOWER(s.email)",
                )
                .bind(staff_id)
                .fetch_one(&mut *c)
                .await?
                });
                soft >= i64::from(soft_limit)
            }
        };
        if !mark {
            tx.commit().await?;
            return Ok(BounceEffect::Counted);
        }
        on_tx!(tx, |c| sqlx::query(
            "UPDATE staff SET bounced_email = email, bounced_at = $1
             WHERE id = $2 AND (bounced_email IS NULL OR bounced_email <> email)",
        )
        .bind(bounce.received_at)
        .bind(staff_id)
        .execute(&mut *c)
        .await?
        .rows_affected());
        on_tx!(tx, |c| sqlx::query(
            "UPDATE bounces SET marked = 1 WHERE outbox_id = $1 AND kind = $2"
        )
        .bind(message.outbox_id)
        .bind(bounce.kind.as_str())
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit().await?;
        Ok(BounceEffect::Marked)
    }

    /// Whether this person's current address is marked undeliverable.
    pub async fn address_bounced(&self, email: &str) -> anyhow::Result<bool> {
        let n: i64 = on_pool!(self, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM staff WHERE email = $1 AND bounced_email = email",
        )
        .bind(email)
        .fetch_one(c)
        .await?);
        Ok(n > 0)
    }

    /// Active people whose current address is marked undeliverable, with the
    /// bounce that marked it; only those enrolled in `campaign_id` when given.
    /// Ordered by address.
    pub async fn bounced_people(
        &self,
        campaign_id: Option<i64>,
    ) -> anyhow::Result<Vec<BouncedPerson>> {
        Ok(on_pool!(self, |c| {
            sqlx::query_as(
            "SELECT s.email, s.employee_id, s.first_name, s.last_name, s.department, s.role, s.facility,
                    s.manager_email, s.bounced_at,
                    COALESCE((SELECT b.status FROM bounces b WHERE b.staff_id = s.id AND b.marked = 1
                              ORDER BY b.received_at DESC, b.id DESC LIMIT 1), '') AS status,
                    COALESCE((SELECT b.diagnostic FROM bounces b WHERE b.staff_id = s.id AND b.marked = 1
                              ORDER BY b.received_at DESC, b.id DESC LIMIT 1), '') AS diagnostic
             FROM staff s
             WHERE s.active = 1 AND s.bounced_email = s.email AND s.bounced_at IS NOT NULL
               AND ($1 = 0 OR EXISTS (SELECT 1 FROM enrolments e WHERE e.campaign_id = $1 AND e.staff_id = s.id
                                     AND e.exempted_at IS NULL AND e.left_at IS NULL))
             ORDER BY s.email",
        )
        .bind(campaign_id.unwrap_or(0))
        .fetch_all(c).await?
        }))
    }
}
