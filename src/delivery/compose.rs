//! Turns an outbox row into the exact message to send: looks up what the
//! template needs, renders, and builds MIME. `campaign preview` uses the same
//! path, so a preview is byte for byte what would be sent (but for Date).

use super::context::{
    days_until, full_name, human_date, CampaignView, Manager, MessageContext, Organisation,
    OverduePerson, Person, StepView,
};
use super::message::{build, Headers};
use super::preview::Preview;
use super::templates::Templates;
use crate::campaign::{Campaign, Recipient};
use crate::clock::{from_millis, to_millis};
use crate::config::Settings;
use crate::problem::Problem;
use crate::store::outbox::ClaimedMessage;
use crate::store::Store;
use chrono::{DateTime, Utc};
use lettre::address::Envelope;
use lettre::message::dkim::{DkimCanonicalization, DkimCanonicalizationType, DkimConfig};
use lettre::message::header::HeaderName;
use lettre::message::Mailbox;
use lettre::Message;
use std::sync::{Arc, RwLock};

/// The DKIM configuration from `smtp.dkim_selector`, `dkim_domain` and
/// `dkim_key_file` (an RSA key in PKCS#1 PEM), or `None` when DKIM is off.
fn dkim_config(smtp: &crate::config::Smtp) -> anyhow::Result<Option<DkimConfig>> {
    let Some(key) = crate::config::dkim_signing_key(smtp)? else {
        return Ok(None);
    };
    Ok(Some(DkimConfig::new(
        smtp.dkim_selector.clone(),
        smtp.dkim_domain.clone(),
        key,
        SIGNED_HEADERS
            .iter()
            .map(|name| HeaderName::new_from_ascii_str(name))
            .collect(),
        // lettre's default, "simple" headers, signs the DKIM-Signature
        // header folded differently from how it is sent, so no verifier
        // accepts it (dkimpy, tests/dkim.rs). "relaxed" is immune to folding,
        // also a relay's.
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    )))
}

/// The headers the DKIM signature covers: who, what and when. Not
/// Content-Type: lettre writes it with the body, after signing, so a
/// signature listing it fails (the body hash covers the parts anyway).
const SIGNED_HEADERS: [&str; 7] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
];

/// Shared, swappable templates: a reload replaces the Arc, in-flight renders keep theirs.
pub type SharedTemplates = Arc<RwLock<Arc<Templates>>>;

/// Everything needed to compose messages, built once from settings.
#[derive(Debug, Clone)]
pub struct Composer {
    store: Store,
    templates: SharedTemplates,
    organisation: String,
    org_tz: chrono_tz::Tz,
    reply_to: String,
    tracker: crate::tracking::Tracker,
    /// From, Message-ID domain and DKIM signing, shared with the report jobs.
    sender: Sender,
    /// `bounces.return_path` split at its '@': the VERP envelope sender is
    /// `local+TOKEN@domain`. `None`: the envelope sender is `smtp.from`.
    return_path: Option<(String, String)>,
}

/// Who the project's email comes from: the `smtp.from` mailbox, the domain
/// generated Message-IDs end in, and DKIM signing when `smtp.dkim_*` are set.
/// Staff steps and the report jobs sign with the same one.
#[derive(Clone)]
pub struct Sender {
    from: Mailbox,
    domain: String,
    /// Shared because keys are large.
    dkim: Option<Arc<DkimConfig>>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("from", &self.from)
            .field("dkim", &self.dkim.is_some())
            .finish()
    }
}

impl Sender {
    /// Reads `smtp.from` and the DKIM key; an error names the key to fix.
    pub fn from_settings(smtp: &crate::config::Smtp) -> anyhow::Result<Self> {
        let from: Mailbox = smtp.from.parse().map_err(|e| anyhow::anyhow!("smtp.from = {:?} is not a valid sender ({e}); write e.g. \"SOAR Ambassador <ambassador@hospital.org>\"", smtp.from))?;
        Ok(Self {
            domain: from.email.domain().to_string(),
            from,
            dkim: dkim_config(smtp)?.map(Arc::new),
        })
    }

    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// The domain generated Message-IDs end in.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Signs with DKIM when it is configured; otherwise leaves the message as is.
    pub fn sign(&self, message: &mut lettre::Message) {
        if let Some(dkim) = &self.dkim {
            message.sign(dkim);
        }
    }
}

impl Composer {
    pub fn new(
        store: Store,
        templates: SharedTemplates,
        settings: &Settings,
        tracker: crate::tracking::Tracker,
    ) -> anyhow::Result<Self> {
        let sender = Sender::from_settings(&settings.smtp)?;
        Ok(Self {
            store,
            templates,
            organisation: settings.organisation.name.clone(),
            org_tz: settings.organisation.time_zone.0,
            reply_to: settings.smtp.reply_to.clone(),
            tracker,
            sender,
            return_path: settings
                .bounces
                .return_path
                .trim()
                .split_once('@')
                .map(|(local, domain)| (local.to_string(), domain.to_string())),
        })
    }

    /// The envelope of one outbox message: its recipients, and as sender the
    /// VERP return path `local+TOKEN@domain` when `bounces.return_path` is
    /// set, so the bounce names the message (see `bounces`).
    pub fn envelope(&self, outbox_id: i64, message: &Message) -> Envelope {
        let envelope = message.envelope();
        let Some((local, domain)) = &self.return_path else {
            return envelope.clone();
        };
        let token = self.tracker.key().sign_bounce(outbox_id);
        let sender = format!("{local}+{token}@{domain}").parse().ok();
        Envelope::new(sender, envelope.to().to_vec()).unwrap_or_else(|_| envelope.clone())
    }

    /// Who messages come from, for the report jobs.
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// The domain generated Message-IDs end in.
    pub fn domain(&self) -> &str {
        self.sender.domain()
    }

    pub fn templates(&self) -> Arc<Templates> {
        self.templates
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The message for a claimed row; `None` when there is nothing to say
    /// (a manager whose people all completed since the digest was planned).
    pub async fn compose(
        &self,
        m: &ClaimedMessage,
        campaign: &Campaign,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<Message>> {
        let step = campaign.step(&m.step).ok_or_else(|| {
            anyhow::anyhow!(
                "campaign {} has no step {:?} any more",
                campaign.slug,
                m.step
            )
        })?;
        let context = if step.to == Recipient::Manager {
            match self.digest_context(m, campaign, now).await? {
                Some(c) => c,
                None => return Ok(None),
            }
        } else {
            let email = m.staff_email.as_deref().unwrap_or(&m.recipient);
            let mut person = Person::new(
                m.first_name.as_deref().unwrap_or(""),
                m.last_name.as_deref().unwrap_or(""),
                email,
            );
            person.department = m.department.clone().unwrap_or_default();
            person.role = m.role.clone().unwrap_or_default();
            person.facility = m.facility.clone().unwrap_or_default();
            person.attributes = m
                .attributes
                .as_deref()
                .and_then(|a| serde_json::from_str(a).ok())
                .unwrap_or_default();
            self.context(
                campaign,
                person,
                m.id,
                &m.step,
                m.due_at.map(from_millis),
                now,
            )
        };
        self.finish(&context, campaign, &step.template, &m.message_id, now)
            .map(Some)
    }

    /// What `campaign preview` prints: one step's complete message for one
    /// person (or a sample person), dated and worded as of its send time;
    /// an error saying why when the person gets nothing from the step.
    pub async fn preview(
        &self,
        campaign_id: i64,
        campaign: &Campaign,
        step_name: &str,
        to: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Message> {
        let preview = self
            .preview_step(campaign_id, campaign, step_name, to, now)
            .await?
            .map_err(|nothing| Problem::invalid("to", format!("{nothing}; nothing to preview")))?;
        self.preview_message(&preview, campaign)
    }

    /// The complete message (MIME, signed) of a [`Preview`].
    pub fn preview_message(
        &self,
        preview: &Preview,
        campaign: &Campaign,
    ) -> anyhow::Result<Message> {
        let message_id = format!(
            "<preview.{}@{}>",
            uuid::Uuid::new_v4().simple(),
            self.sender.domain()
        );
        self.finish(
            &preview.context,
            campaign,
            &preview.template,
            &message_id,
            preview.at,
        )
    }

    /// The subject, HTML and text of a [`Preview`] (the admin page shows
    /// these): the same context and templates as the message, so the same text.
    pub fn preview_parts(&self, preview: &Preview) -> anyhow::Result<super::RenderedEmail> {
        Ok(self
            .templates()
            .render(&preview.template, &preview.context)?)
    }

    /// The store, for [`Composer::preview_step`].
    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    /// The organisation's time zone: due dates end there.
    pub(super) fn org_tz(&self) -> chrono_tz::Tz {
        self.org_tz
    }

    pub(super) fn context(
        &self,
        campaign: &Campaign,
        person: Person,
        outbox_id: i64,
        step: &str,
        due: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> MessageContext {
        MessageContext {
            organisation: Organisation {
                name: self.organisation.clone(),
            },
            campaign: CampaignView::new(campaign, due, now, self.org_tz),
            links: self.tracker.links(campaign, outbox_id),
            pixel_url: self.tracker.pixel(outbox_id),
            person,
            step: StepView {
                name: step.to_string(),
            },
            manager: Manager::default(),
            overdue: Vec::new(),
            overdue_count: 0,
        }
    }

    pub(super) async fn digest_context(
        &self,
        m: &ClaimedMessage,
        campaign: &Campaign,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<MessageContext>> {
        let overdue = self
            .store
            .overdue_reports(m.campaign_id, &m.recipient, to_millis(now))
            .await?;
        if overdue.is_empty() {
            return Ok(None);
        }
        let manager = self.store.staff_by_email(&m.recipient).await?;
        let person = match &manager {
            Some(s) => Person::new(&s.first_name, &s.last_name, &s.email),
            None => Person::new("", "", &m.recipient),
        };
        let mut context = self.context(campaign, person.clone(), m.id, &m.step, None, now);
        context.manager = Manager {
            full_name: person.full_name.clone(),
            email: m.recipient.clone(),
        };
        context.overdue = overdue
            .iter()
            .map(|o| OverduePerson {
                full_name: full_name(&o.first_name, &o.last_name),
                email: o.email.clone(),
                department: o.department.clone(),
                role: o.role.clone(),
                due_date: human_date(from_millis(o.due_at), self.org_tz),
                days_overdue: -days_until(from_millis(o.due_at), now),
            })
            .collect();
        context.overdue_count = context.overdue.len();
        Ok(Some(context))
    }

    fn finish(
        &self,
        context: &MessageContext,
        campaign: &Campaign,
        template: &str,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Message> {
        let parts = self.templates().render_encoded(template, context)?;
        let reply_to = if self.reply_to.is_empty() {
            campaign.contact.to_string()
        } else {
            self.reply_to.clone()
        };
        let list_id = format!("<{}.{}>", campaign.slug, self.sender.domain());
        let headers = Headers {
            from: self.sender.from(),
            reply_to: Some(&reply_to),
            to_name: &context.person.full_name,
            to_email: &context.person.email,
            message_id,
            date: now,
            campaign: &campaign.slug,
            step: &context.step.name,
            list_id: &list_id,
        };
        let mut message = build(parts, &headers).map_err(|e| anyhow::anyhow!(e))?;
        self.sender.sign(&mut message);
        Ok(message)
    }
}

impl ClaimedMessage {
    pub(super) fn digest_preview(campaign_id: i64, step: &str, manager: &str) -> Self {
        ClaimedMessage {
            id: 0,
            campaign_id,
            enrolment_id: None,
            step: step.to_string(),
            recipient: manager.to_string(),
            message_id: String::new(),
            attempts: 0,
            campaign_status: crate::store::CampaignStatus::Active,
            due_at: None,
            completed_at: None,
            exempted_at: None,
            left_at: None,
            staff_active: None,
            staff_email: None,
            first_name: None,
            last_name: None,
            department: None,
            role: None,
            facility: None,
            attributes: None,
            address_bounced: 0,
        }
    }
}
