//! A syntactically valid, deliverable email address, stored lower-cased so
//! that `Ann@X.org` and `ann@x.org` are one person.
//!
//! One rule for what import accepts and what sending delivers: an address is
//! accepted only if lettre, the mail library, accepts it *and* it has a plain
//! (unquoted) local part. lettre accepts `"john doe"@x.org` on its own but
//! cannot read it back from the `To:` header it writes, so such a message
//! has no recipient; refusing it at import is the honest choice.

use super::text::{find_disguise, Disguise};
use std::fmt;

/// Why a string is not an address we can send to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("is empty")]
    Empty,
    #[error("is not a valid email address ({0})")]
    Syntax(String),
    #[error("has no domain with a dot (e.g. name@hospital.org)")]
    NoDottedDomain,
    #[error("contains the control character U+{0:04X}; remove it")]
    Control(u32),
    #[error("{0}; such characters disguise an address, remove it")]
    Disguised(Disguise),
    #[error("has a quoted local part (\"...\"@); mail can only be sent to plain addresses like name@hospital.org")]
    Quoted,
}

/// An email address that both an RFC 5322 parser and our SMTP library accept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses and normalises (trims, lower-cases) an address.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if let Some(c) = trimmed.chars().find(|c| c.is_control()) {
            return Err(EmailError::Control(c as u32));
        }
        if let Some(disguise) = find_disguise(trimmed) {
            return Err(EmailError::Disguised(disguise));
        }
        let options = email_address::Options::default()
            .without_display_text()
            .without_domain_literal();
        let parsed = email_address::EmailAddress::parse_with_options(trimmed, options)
            .map_err(|e| EmailError::Syntax(e.to_string()))?;
        if parsed.local_part().starts_with('"') {
            return Err(EmailError::Quoted);
        }
        let domain = parsed.domain();
        if !domain.contains('.') || domain.ends_with('.') {
            return Err(EmailError::NoDottedDomain);
        }
        // The address must also be one lettre will put on the wire.
        let normalised = trimmed.to_lowercase();
        normalised
            .parse::<lettre::Address>()
            .map_err(|e| EmailError::Syntax(e.to_string()))?;
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for EmailAddress {
    type Err = EmailError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for EmailAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(|e| serde::de::Error::custom(format!("`{raw}` {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let a = EmailAddress::parse("  Ann.Lee@Health.Example.ORG ").unwrap();
        assert_eq!(a.as_str(), "ann.lee@health.example.org");
        assert_eq!(a.domain(), "health.example.org");
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.org",
            "ann@@x.org",
            "ann lee@x.org",
            "ann@localhost",
            "a\r\nBcc: x@y.org",
        ] {
            assert!(
                EmailAddress::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn refuses_quoted_local_parts_the_mailer_cannot_send() {
        for quoted in [
            "\"john doe\"@example.org",
            "\"a\\\"b\"@example.org",
            "\"ann\"@x.org",
        ] {
            assert_eq!(
                EmailAddress::parse(quoted),
                Err(EmailError::Quoted),
                "{quoted}"
            );
        }
    }

    #[test]
    fn refuses_invisible_and_control_characters() {
        for (raw, character) in [
            ("ann\u{202E}gro.x@x.org", '\u{202E}'),
            ("an\u{200B}n@x.org", '\u{200B}'),
            ("ann@x\u{2066}.org", '\u{2066}'),
            ("\u{FEFF}ann@x.org", '\u{FEFF}'),
        ] {
            match EmailAddress::parse(raw) {
                Err(EmailError::Disguised(d)) => assert_eq!(d.character, character, "{raw:?}"),
                other => panic!("{raw:?} gave {other:?}"),
            }
        }
        assert_eq!(
            EmailAddress::parse("ann\u{85}@x.org"),
            Err(EmailError::Control(0x85))
        );
    }

    /// What the mailer does with a recipient: a `To:` mailbox, and the
    /// envelope lettre derives from the headers.
    fn envelope_recipients(address: &EmailAddress) -> Result<Vec<String>, String> {
        let to: lettre::Address = address.as_str().parse().map_err(|e| format!("{e}"))?;
        let message = lettre::Message::builder()
            .from("Ambassador <a@example.org>".parse().unwrap())
            .to(lettre::message::Mailbox::new(Some("Ann".into()), to))
            .subject("s")
            .body(String::from("b"))
            .map_err(|e| e.to_string())?;
        Ok(message
            .envelope()
            .to()
            .iter()
            .map(|a| a.to_string())
            .collect())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 512, failure_persistence: None, ..Default::default()
        })]
        /// One rule: every address import accepts is one the mailer sends to.
        #[test]
        fn every_accepted_address_reaches_the_envelope(
            local in "[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~ \"\\(),:;<>\\[\\]éü\u{202E}\u{200B}-]{1,12}",
            quote in proptest::bool::ANY,
            domain in "[a-z0-9-]{1,6}(\\.[a-zé]{1,4}){0,2}",
        ) {
            let raw = if quote { format!("\"{local}\"@{domain}") } else { format!("{local}@{domain}") };
            if let Ok(address) = EmailAddress::parse(&raw) {
                proptest::prop_assert_eq!(
                    envelope_recipients(&address),
                    Ok(vec![address.as_str().to_string()]),
                    "accepted {:?}", raw
                );
            }
        }
    }
}
