//! A syntactically valid, deliverable email address, stored lower-cased so
//! that `Ann@X.org` and `ann@x.org` are one person.

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
        let options = email_address::Options::default()
            .without_display_text()
            .without_domain_literal();
        let parsed = email_address::EmailAddress::parse_with_options(trimmed, options)
            .map_err(|e| EmailError::Syntax(e.to_string()))?;
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
}
