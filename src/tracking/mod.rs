//! Tracking: signed links in messages, and the opens, clicks and completions
//! they record. Machine events (image proxies, link scanners) are recorded
//! and flagged, never dropped; reports show human and raw figures.
//!
//! Invariants: a forged or altered token records nothing; a click only ever
//! redirects to a URL the campaign itself defines (no open redirect); no IP
//! address is stored.

mod classify;
mod token;

pub use classify::{classify, UaClass};
pub use token::{load_or_create_key, Claims, LinkKind, TokenKey};

use crate::campaign::Campaign;
use crate::clock::to_millis;
use crate::store::Store;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Links as they appear in the message (tracked where tracking is on); the
/// templates see them as `links`. Defined here, beside what signs them,
/// so `tracking` needs nothing from `delivery`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Links {
    pub course: String,
    pub video: String,
    pub complete: String,
}

/// Builds tracked links for messages.
#[derive(Debug, Clone)]
pub struct Tracker {
    key: TokenKey,
    public_url: String,
}

impl Tracker {
    pub fn new(key: TokenKey, public_url: &str) -> Self {
        Self {
            key,
            public_url: public_url.trim_end_matches('/').to_string(),
        }
    }

    pub fn key(&self) -> &TokenKey {
        &self.key
    }

    fn url(&self, prefix: &str, outbox_id: i64, kind: LinkKind, suffix: &str) -> String {
        format!(
            "{}/t/{prefix}/{}{suffix}",
            self.public_url,
            self.key.sign(Claims { outbox_id, kind })
        )
    }

    /// The links of one message.
    pub fn links(&self, campaign: &Campaign, outbox_id: i64) -> Links {
        Links {
            course: self.url("c", outbox_id, LinkKind::Course, ""),
            video: if campaign.video_url.is_some() {
                self.url("c", outbox_id, LinkKind::Video, "")
            } else {
                String::new()
            },
            complete: if campaign.completion_link {
                self.url("done", outbox_id, LinkKind::Complete, "")
            } else {
                String::new()
            },
        }
    }

    /// The open-tracking image of one message.
    pub fn pixel(&self, outbox_id: i64) -> String {
        self.url("o", outbox_id, LinkKind::Open, ".gif")
    }
}

/// The campaign URL a click token leads to; `None` for any other kind.
pub fn destination(campaign: &Campaign, kind: LinkKind) -> Option<&str> {
    match kind {
        LinkKind::Course => Some(&campaign.course_url),
        LinkKind::Video => campaign.video_url.as_deref(),
        _ => None,
    }
}

/// One observed open or click.
#[derive(Debug, Clone)]
pub struct Hit<'a> {
    pub claims: Claims,
    pub at: DateTime<Utc>,
    pub user_agent: &'a str,
    pub head_request: bool,
}

/// How many seconds after delivery a hit is presumed to be a scanner.
pub const SCANNER_WINDOW_SECS: i64 = 10;

/// Records a hit against its message; returns the class it was given, or
/// `None` when no such message exists (then nothing is recorded).
pub async fn record(store: &Store, hit: &Hit<'_>) -> anyhow::Result<Option<UaClass>> {
    let Some(message) = store.tracked_message(hit.claims.outbox_id).await? else {
        return Ok(None);
    };
    let seconds_after_delivery = message.accepted_at.map(|t| (to_millis(hit.at) - t) / 1000);
    let class = classify(hit.user_agent, hit.head_request, seconds_after_delivery);
    let (kind, link) = match hit.claims.kind {
        LinkKind::Open => ("open", None),
        LinkKind::Course => ("click", Some("course")),
        LinkKind::Video => ("click", Some("video")),
        LinkKind::Complete => ("completion", None),
        // A return path is no link: nothing to record.
        LinkKind::Bounce => return Ok(None),
    };
    store
        .insert_event(
            to_millis(hit.at),
            kind,
            &message,
            link,
            class.as_str(),
            class.is_machine(),
        )
        .await?;
    Ok(Some(class))
}
