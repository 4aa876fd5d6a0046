//! From rendered parts to a MIME message. Every header value that could come
//! from a roster passes through [`header_safe`] first: lettre 0.11's
//! `Mailbox::new` panics on CR, LF or NUL in a display name, and no roster
//! value may ever add a header.

use super::templates::EncodedEmail;
use chrono::{DateTime, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;

/// Everything about a message except its body.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    pub from: &'a Mailbox,
    pub reply_to: Option<&'a str>,
    pub to_name: &'a str,
    pub to_email: &'a str,
    pub message_id: &'a str,
    pub date: DateTime<Utc>,
    pub campaign: &'a str,
    pub step: &'a str,
    /// `<campaign.organisation-domain>`, so mail rules can file the rollout.
    pub list_id: &'a str,
}

/// Builds the multipart/alternative message (text first, HTML preferred).
pub fn build(parts: EncodedEmail, h: &Headers<'_>) -> Result<Message, String> {
    let to_address = h
        .to_email
        .parse()
        .map_err(|e| format!("recipient {:?}: {e}", h.to_email))?;
    let name = header_safe(h.to_name);
    let to = Mailbox::new((!name.is_empty()).then_some(name), to_address);
    let mut builder = Message::builder()
        .from(h.from.clone())
        .to(to)
        .subject(header_safe(&parts.subject))
        .message_id(Some(header_safe(h.message_id)))
        .date(h.date.into())
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Id"),
            header_safe(h.list_id),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Ambassador-Campaign"),
            header_safe(h.campaign),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Ambassador-Step"),
            header_safe(h.step),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ));
    if let Some(reply_to) = h.reply_to.filter(|r| !r.is_empty()) {
        let mailbox: Mailbox = reply_to
            .parse()
            .map_err(|e| format!("reply-to {reply_to:?}: {e}"))?;
        builder = builder.reply_to(mailbox);
    }
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(parts.text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(parts.html),
                ),
        )
        .map_err(|e| format!("cannot build the message: {e}"))
}

/// A header value on one line: control characters become spaces, runs of
/// white space collapse, and the length is capped.
pub fn header_safe(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut line = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 200 {
        line = line.chars().take(200).collect();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> EncodedEmail {
        crate::delivery::RenderedEmail {
            subject: "Hi".into(),
            html: "<p>Hi</p>".into(),
            text: "Hi".into(),
        }
        .into()
    }

    #[test]
    fn a_display_name_cannot_inject_headers() {
        let from: Mailbox = "Ambassador <a@example.org>".parse().unwrap();
        let h = Headers {
            from: &from,
            reply_to: None,
            to_name: "Ann\r\nBcc: evil@example.org\0",
            to_email: "ann@example.org",
            message_id: "<1@example.org>",
            date: Utc::now(),
            campaign: "soar",
            step: "announcement",
            list_id: "<soar.example.org>",
        };
        let raw = String::from_utf8(build(parts(), &h).unwrap().formatted()).unwrap();
        assert!(!raw.lines().any(|l| l.starts_with("Bcc:")), "{raw}");
        assert!(raw.contains("X-Ambassador-Step: announcement"));
    }
}
