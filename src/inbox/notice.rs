//! What a dropped file's outcome says: the `.txt` beside it, and the email
//! to the admins (`inbox.notify`) sent through the reports' mailer.

use super::take::{Kind, Outcome};
use super::Inbox;
use crate::delivery::{header_safe, SendOutcome};
use crate::store::InboxOutcome;
use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::Message;

/// Errors listed in an email at most; the `.txt` has every one.
pub const MAX_MAILED_LINES: usize = 200;

/// A time as people here read it: "Mon 11 Jan 2027, 09:00 EST".
pub fn when(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz)
        .format("%a %-d %b %Y, %H:%M %Z")
        .to_string()
}

/// The `.txt` beside a processed or rejected file.
pub fn report_text(name: &str, kind: Kind, outcome: &Outcome, at: DateTime<Utc>) -> String {
    let mut text = format!(
        "File: {name}\nRead as: {}\nTaken: {}\nOutcome: {}\n{}\n",
        kind.described(),
        at.format("%Y-%m-%d %H:%M:%S UTC"),
        outcome.outcome,
        outcome.summary
    );
    if !outcome.details.is_empty() {
        text.push('\n');
        for line in &outcome.details {
            text.push_str(line);
            text.push('\n');
        }
    }
    if let Some(advice) = &outcome.advice {
        text.push_str(&format!("\nWhat to do: {advice}\n"));
    }
    text
}

/// One file's outcome, for the email.
pub struct Notice<'a> {
    pub file: &'a str,
    pub kind: Kind,
    pub outcome: &'a Outcome,
    pub moved_to: &'a str,
    pub at: DateTime<Utc>,
    pub tz: chrono_tz::Tz,
}

impl Notice<'_> {
    fn subject(&self) -> String {
        let what = match self.outcome.outcome {
            InboxOutcome::Rejected => "was rejected: nothing was imported",
            InboxOutcome::Duplicate => "was a duplicate: not imported again",
            _ => "was imported",
        };
        header_safe(&format!("Drop folder: {:?} {what}", self.file))
    }

    fn body(&self) -> String {
        let mut text = format!(
            "The file {:?} arrived in the drop folder and was read as {} ({}).\n\n{}\n",
            self.file,
            self.kind.described(),
            when(self.at, self.tz),
            self.outcome.summary
        );
        if !self.outcome.details.is_empty() {
            text.push('\n');
            for line in &self.outcome.details {
                text.push_str("  ");
                text.push_str(line);
                text.push('\n');
            }
            if self.outcome.details.len() >= MAX_MAILED_LINES {
                text.push_str("  (the list stops here; the .txt beside the file has every line)\n");
            }
        }
        if let Some(advice) = &self.outcome.advice {
            text.push_str(&format!("\nWhat to do: {advice}\n"));
        }
        if !self.moved_to.is_empty() {
            text.push_str(&format!(
                "\nThe file and this report are in the drop folder, at {} and {}.txt.\n",
                self.moved_to, self.moved_to
            ));
        }
        text
    }
}

impl Inbox {
    /// Emails `inbox.notify`; a failure is logged (the outcome is already
    /// recorded, on the admin page and in the `.txt`).
    pub(super) async fn tell_admins(&self, notice: &Notice<'_>) {
        if self.settings.notify.is_empty() {
            return;
        }
        let sent = match self.message(notice) {
            Ok(mut message) => {
                self.sender.sign(&mut message);
                let raw = message.formatted();
                let stem = format!("inbox-{}", uuid::Uuid::new_v4().simple());
                self.mailer.send(message.envelope(), &raw, &stem).await
            }
            Err(e) => SendOutcome::Permanent(format!("cannot compose the notice: {e:#}")),
        };
        match sent {
            SendOutcome::Accepted(_) => {
                tracing::info!(file = ?notice.file, "drop folder: admins told")
            }
            SendOutcome::Transient(e) | SendOutcome::Permanent(e) => {
                tracing::warn!(file = ?notice.file, error = %crate::telemetry::scrub(&e), "drop folder: cannot email inbox.notify")
            }
        }
    }

    fn message(&self, notice: &Notice<'_>) -> anyhow::Result<Message> {
        let mut builder = Message::builder()
            .from(self.sender.from().clone())
            .subject(notice.subject())
            .date(notice.at.into())
            .message_id(Some(format!(
                "<inbox.{}@{}>",
                uuid::Uuid::new_v4().simple(),
                self.sender.domain()
            )));
        for to in &self.settings.notify {
            builder = builder.to(Mailbox::new(None, to.to_string().parse()?));
        }
        Ok(builder
            .header(ContentType::TEXT_PLAIN)
            .body(notice.body())?)
    }
}
