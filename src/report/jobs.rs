//! What the report jobs (weekly summary, team digests, their retry pass)
//! are given: exactly the parts they use, built by the composition root
//! (`app`), so that `report` depends on no part it does not call.

use crate::clock::SharedClock;
use crate::delivery::{Mailer, Sender, SharedTemplates, Templates};
use crate::store::Store;
use std::sync::Arc;

/// The context of every report job.
#[derive(Debug, Clone)]
pub struct ReportJobs {
    pub store: Store,
    pub clock: SharedClock,
    /// The reports' own small mailer, so they never wait behind a campaign.
    pub mailer: Arc<Mailer>,
    /// From address, Message-ID domain and DKIM signing.
    pub sender: Sender,
    /// The running email templates (`weekly_summary`, `team_digest`);
    /// shared with the composer, so a reload reaches the next report.
    pub templates: SharedTemplates,
    /// This instance, as it holds claims (`weekly_reports.claimed_by`); the
    /// same id as the delivery worker's, so a restart takes back both.
    pub instance: Arc<str>,
    pub settings: ReportSettings,
}

impl ReportJobs {
    /// The templates as loaded now (a reload replaces them as a whole).
    pub fn templates(&self) -> Arc<Templates> {
        self.templates
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The settings the report jobs read.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// `organisation.name`, shown in the summary.
    pub organisation: String,
    /// `organisation.time_zone`: which ISO week a summary belongs to.
    pub time_zone: chrono_tz::Tz,
    /// `report.recipients`.
    pub recipients: Vec<String>,
    /// `report.min_group_size`: smaller groups are not shown.
    pub min_group_size: u32,
    /// `delivery.lease`: how old an unsent claim must be to be taken over.
    pub lease: chrono::Duration,
}

impl ReportSettings {
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self {
            organisation: settings.organisation.name.clone(),
            time_zone: settings.organisation.time_zone.0,
            recipients: settings
                .report
                .recipients
                .iter()
                .map(|r| r.to_string())
                .collect(),
            min_group_size: settings.report.min_group_size,
            lease: settings.delivery.lease.as_chrono(),
        }
    }
}
