//! What a message in the bounce mailbox says: a delivery status
//! notification (RFC 3464 `multipart/report`, its `message/delivery-status`
//! part and the returned `message/rfc822` or `text/rfc822-headers` part,
//! where the original Message-ID sits), a non-standard bounce in the
//! styles of Exchange and Postfix (status and Message-ID in the text), an
//! auto-reply, or something else. The whole message is read, never only
//! its headers.

use mail_parser::{MessageParser, MimeHeaders, PartType};

/// What one mailbox message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// A bounce: how it went, and what identifies the original message.
    Bounce(Bounce),
    /// An out-of-office or other automatic reply: left alone.
    AutoReply,
    /// Neither: nothing ambassador can use.
    Other,
}

/// A failed (or delayed) delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    /// The enhanced status code (RFC 3463), e.g. "5.1.1"; "5.0.0" or
    /// "4.0.0" when only a basic SMTP code or the action was given.
    pub status: String,
    /// `failed` or `delayed` (RFC 3464's Action); a delay is no bounce yet.
    pub action: Action,
    /// The recipient the report names, when it names one.
    pub recipient: Option<String>,
    /// What the remote system said (Diagnostic-Code or the bounce's text), one line.
    pub diagnostic: String,
    /// Tokens found in VERP addresses (`local+TOKEN@domain`) the bounce was
    /// sent to; verified by the caller.
    pub verp_tokens: Vec<String>,
    /// The original message's Message-ID, `<...>` included.
    pub original_message_id: Option<String>,
}

/// What the reporting system did with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
}

impl Bounce {
    /// 5.x.x: the address is undeliverable.
    pub fn is_hard(&self) -> bool {
        self.action == Action::Failed && self.status.starts_with('5')
    }

    /// 4.x.x that the reporting system gave up on.
    pub fn is_soft(&self) -> bool {
        self.action == Action::Failed && self.status.starts_with('4')
    }
}

/// The headers a bounce's VERP address can be found in, as the mailbox
/// server delivered it.
const ADDRESS_HEADERS: [&str; 6] = [
    "To",
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "Return-Path",
];

/// Subjects of automatic replies, lower case (English, German, French,
/// Spanish, Dutch as Exchange and common clients write them).
const AUTO_REPLY_SUBJECTS: [&str; 10] = [
    "out of office",
    "out of the office",
    "automatic reply",
    "auto reply",
    "autoreply",
    "auto-reply",
    "abwesenheitsnotiz",
    "réponse automatique",
    "respuesta automática",
    "afwezig",
];

/// Subjects of non-standard bounces (no `message/delivery-status` part).
const BOUNCE_SUBJECTS: [&str; 9] = [
    "undelivered mail returned to sender",
    "undeliverable:",
    "undeliverable mail",
    "delivery status notification (failure)",
    "mail delivery failed",
    "failure notice",
    "returned mail:",
    "delivery has failed",
    "mail delivery system",
];

/// Reads one raw message (RFC 5322 bytes as the mailbox holds them).
pub fn classify(raw: &[u8]) -> Classified {
    // mail-parser 0.9 indexes a message's first part unchecked (found by
    // tests/bounces.rs's proptest): a message without parts is nothing here.
    let Some(message) = MessageParser::default()
        .parse(raw)
        .filter(|m| !m.parts.is_empty())
    else {
        return Classified::Other;
    };
    let verp_tokens = verp_tokens(&message);
    if let Some(mut bounce) = standard_report(&message) {
        bounce.verp_tokens = verp_tokens;
        return Classified::Bounce(bounce);
    }
    let subject = message.subject().unwrap_or("").to_lowercase();
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or("")
        .to_lowercase();
    let from_mailer = from.starts_with("mailer-daemon@")
        || from.starts_with("postmaster@")
        || from.starts_with("microsoftexchange")
        || from == "mailer-daemon";
    if from_mailer || BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s)) {
        if let Some(mut bounce) = text_bounce(&message) {
            bounce.verp_tokens = verp_tokens;
            return Classified::Bounce(bounce);
        }
    }
    if is_auto_reply(&message, &subject) {
        return Classified::AutoReply;
    }
    Classified::Other
}

/// Auto-Submitted other than "no" (RFC 3834), the headers Exchange and
/// vacation programs add, or an out-of-office subject.
fn is_auto_reply(message: &mail_parser::Message<'_>, subject: &str) -> bool {
    let header = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };
    if header("Auto-Submitted").is_some_and(|v| !v.is_empty() && v != "no") {
        return true;
    }
    if header("X-Autoreply").is_some()
        || header("X-Autorespond").is_some()
        || header("Precedence").is_some_and(|v| v == "auto_reply")
    {
        return true;
    }
    AUTO_REPLY_SUBJECTS.iter().any(|s| subject.contains(s))
}

/// VERP tokens: the part after '+' of addresses in the delivery headers,
/// when it is 50 hex digits (what `TokenKey::sign_bounce` makes).
fn verp_tokens(message: &mail_parser::Message<'_>) -> Vec<String> {
    let mut tokens = Vec::new();
    for (name, value) in message.headers_raw() {
        if !ADDRESS_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            continue;
        }
        for word in value.split(|c: char| c.is_whitespace() || "<>,;\"".contains(c)) {
            let Some((local, _domain)) = word.split_once('@') else {
                continue;
            };
            let Some((_, token)) = local.rsplit_once('+') else {
                continue;
            };
            if token.len() == 50
                && token.bytes().all(|b| b.is_ascii_hexdigit())
                && !tokens
                    .iter()
                    .any(|t: &String| t.eq_ignore_ascii_case(token))
            {
                tokens.push(token.to_ascii_lowercase());
            }
        }
    }
    tokens
}

/// An RFC 3464 report: a `message/delivery-status` part (or RFC 6533's
/// `message/global-delivery-status`) anywhere in the message.
fn standard_report(message: &mail_parser::Message<'_>) -> Option<Bounce> {
    let status_part = message.parts.iter().find(|p| {
        p.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("message")
                && ct.subtype().is_some_and(|s| {
                    s.eq_ignore_ascii_case("delivery-status")
                        || s.eq_ignore_ascii_case("global-delivery-status")
                })
        })
    })?;
    let text = String::from_utf8_lossy(status_part.contents()).into_owned();
    let fields = recipient_fields(&text);
    // The worst recipient decides: a failure over a delay, permanent over temporary.
    let rank = |f: &RecipientFields| {
        let failed = f.action.as_deref() == Some("failed");
        let delayed = f.action.as_deref() == Some("delayed");
        let permanent = f.status.as_deref().is_some_and(|s| s.starts_with('5'));
        (failed as u8 * 4) + (delayed as u8 * 2) + permanent as u8
    };
    let worst = fields.into_iter().max_by_key(rank)?;
    let action = match worst.action.as_deref() {
        Some("failed") => Action::Failed,
        Some("delayed") => Action::Delayed,
        // delivered, relayed, expanded: nothing went wrong.
        _ => return None,
    };
    let diagnostic = worst.diagnostic.clone().unwrap_or_default();
    let status = worst
        .status
        .as_deref()
        .and_then(enhanced_code)
        .or_else(|| enhanced_code(&diagnostic))
        .or_else(|| basic_code(&diagnostic))
        .unwrap_or_else(|| match action {
            Action::Failed => "5.0.0".to_string(),
            Action::Delayed => "4.0.0".to_string(),
        });
    Some(Bounce {
        status,
        action,
        recipient: worst.recipient,
        diagnostic: one_line(&diagnostic),
        verp_tokens: Vec::new(),
        original_message_id: original_message_id(message),
    })
}

/// The per-recipient fields of a delivery-status body.
#[derive(Debug, Default)]
struct RecipientFields {
    recipient: Option<String>,
    action: Option<String>,
    status: Option<String>,
    diagnostic: Option<String>,
}

/// Splits a delivery-status body into its field groups (blank-line
/// separated, folded lines joined) and keeps those that name a recipient.
fn recipient_fields(text: &str) -> Vec<RecipientFields> {
    let mut groups = Vec::new();
    let mut current = RecipientFields::default();
    let mut has_recipient = false;
    let mut last: Option<String> = None;
    let finish =
        |current: &mut RecipientFields, has: &mut bool, groups: &mut Vec<RecipientFields>| {
            if *has {
                groups.push(std::mem::take(current));
            } else {
                *current = RecipientFields::default();
            }
            *has = false;
        };
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            finish(&mut current, &mut has_recipient, &mut groups);
            last = None;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if last.as_deref() == Some("diagnostic-code") {
                if let Some(d) = current.diagnostic.as_mut() {
                    d.push(' ');
                    d.push_str(line.trim());
                }
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        match name.as_str() {
            "final-recipient" | "original-recipient" => {
                has_recipient = true;
                if name == "final-recipient" || current.recipient.is_none() {
                    current.recipient = Some(after_type(value).to_string());
                }
            }
            "action" => current.action = Some(value.to_ascii_lowercase()),
            "status" => current.status = Some(value.to_string()),
            "diagnostic-code" => current.diagnostic = Some(after_type(value).to_string()),
            _ => {}
        }
        last = Some(name);
    }
    groups
}

/// `rfc822; ann@example.org` → `ann@example.org`.
fn after_type(value: &str) -> &str {
    value.split_once(';').map_or(value, |(_, v)| v).trim()
}

/// A bounce without a delivery-status part: the status, address and
/// Message-ID read from its text (Exchange's "Remote Server returned '550
/// 5.1.1 …'", Postfix's "<ann@example.org>: … said: 550 5.1.1 …") and from
/// a returned message, attached or quoted.
fn text_bounce(message: &mail_parser::Message<'_>) -> Option<Bounce> {
    let mut text = String::new();
    for part in &message.parts {
        if let PartType::Text(t) | PartType::Html(t) = &part.body {
            text.push_str(t);
            text.push('\n');
        }
    }
    let status = enhanced_code(&text).or_else(|| basic_code(&text))?;
    let diagnostic = text
        .lines()
        .find(|l| l.contains(&status))
        .map(one_line)
        .unwrap_or_default();
    let recipient = text.lines().find_map(|l| {
        let l = l.trim();
        let inner = l.strip_prefix('<')?.split_once('>')?.0;
        inner.contains('@').then(|| inner.to_string())
    });
    let original_message_id = original_message_id(message).or_else(|| message_id_in_text(&text));
    Some(Bounce {
        action: Action::Failed,
        status,
        recipient,
        diagnostic,
        verp_tokens: Vec::new(),
        original_message_id,
    })
}

/// The Message-ID of the returned message: a `message/rfc822` part, or
/// the headers of a `text/rfc822-headers` part.
fn original_message_id(message: &mail_parser::Message<'_>) -> Option<String> {
    for part in message.parts.iter().skip(1) {
        if let PartType::Message(inner) = &part.body {
            if let Some(id) = (!inner.parts.is_empty())
                .then(|| inner.message_id())
                .flatten()
            {
                return Some(bracket(id));
            }
        }
        let headers_part = part.content_type().is_some_and(|ct| {
            ct.subtype().is_some_and(|s| {
                s.eq_ignore_ascii_case("rfc822-headers") || s.eq_ignore_ascii_case("global-headers")
            })
        });
        if headers_part {
            if let Some(id) = message_id_in_text(&String::from_utf8_lossy(part.contents())) {
                return Some(id);
            }
        }
    }
    None
}

/// A `Message-ID:` header line in text (a quoted or returned header block).
fn message_id_in_text(text: &str) -> Option<String> {
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start_matches(['>', ' ']);
        let Some((name, value)) = trimmed.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("message-id") {
            continue;
        }
        let mut value = value.trim().to_string();
        if value.is_empty() {
            // Folded onto the next line.
            value = lines
                .peek()
                .map(|l| l.trim().to_string())
                .unwrap_or_default();
        }
        let inner = value
            .trim()
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap_or("")
            .trim();
        if inner.contains('@') {
            return Some(bracket(inner));
        }
    }
    None
}

fn bracket(id: &str) -> String {
    format!(
        "<{}>",
        id.trim().trim_start_matches('<').trim_end_matches('>')
    )
}

/// The first enhanced status code (class 4 or 5) in text: `5.1.1`.
fn enhanced_code(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if !(b == b'4' || b == b'5')
            || (i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.'))
        {
            continue;
        }
        let rest = &text[i..];
        let mut parts = rest.splitn(3, '.');
        let (Some(class), Some(subject), Some(tail)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let detail: String = tail.chars().take_while(|c| c.is_ascii_digit()).collect();
        let after = tail[detail.len()..].chars().next();
        if class.len() == 1
            && (1..=3).contains(&subject.len())
            && subject.bytes().all(|c| c.is_ascii_digit())
            && (1..=3).contains(&detail.len())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
        {
            return Some(format!("{class}.{subject}.{detail}"));
        }
    }
    None
}

/// A basic SMTP reply code (4xx, 5xx) in text, as an enhanced class code.
fn basic_code(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 3 && (w.starts_with('4') || w.starts_with('5')))
        .map(|w| format!("{}.0.0", &w[..1]))
}

/// Text on one line, at most 300 characters (what the report shows).
fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_codes_are_found_and_lookalikes_are_not() {
        assert_eq!(
            enhanced_code("said: 550 5.1.1 <a@b>").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            enhanced_code("x4.2.2 mailbox full 4.2.2").as_deref(),
            Some("4.2.2")
        );
        assert_eq!(enhanced_code("version 15.20.1234.5 from 10.5.1.1"), None);
        assert_eq!(
            basic_code("host said: 552 too big").as_deref(),
            Some("5.0.0")
        );
    }

    #[test]
    fn folded_message_ids_in_returned_headers_are_read() {
        let text = "From: a@b\nMessage-ID:\n <abc@example.org>\nSubject: x\n";
        assert_eq!(
            message_id_in_text(text).as_deref(),
            Some("<abc@example.org>")
        );
    }
}
