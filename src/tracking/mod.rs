//! Tracking: signed links in messages, and the opens, clicks and completions
//! they record. Machine events (image proxies, link scanners) are recorded
//! and flagged, never dropped; reports show human and raw figures.
//!
//! Invariants: a forged or altered token records nothing; a click only ever
//! redirects to a URL the campaign itself defines (no open redirect); no IP
//! address is stored.

mod classify;
mod token;
mod writer;

pub use classify::{classify, classify_agent, UaClass};
pub use token::{load_or_create_key, Claims, LinkKind, TokenKey};
pub use writer::{record_batch, writer, Queued, Recorder, Writer, GIVE_UP};

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

/// Records a hit against its message on its own (the routes go through the
/// [`Writer`] instead); returns the class it was given, or `None` when no
/// such message exists (then nothing is recorded).
pub async fn record(store: &Store, hit: &Hit<'_>) -> anyhow::Result<Option<UaClass>> {
    let outcomes = record_batch(store, &[hit.queued()]).await?;
    Ok(outcomes.into_iter().next().flatten())
}

impl Hit<'_> {
    /// The hit as the writer takes it.
    pub fn queued(&self) -> Queued {
        Queued {
            outbox_id: self.claims.outbox_id,
            kind: self.claims.kind,
            at: to_millis(self.at),
            class: classify_agent(self.user_agent, self.head_request),
        }
    }
}
