//! The states the database keeps as text, as types. Each is parsed once where
//! a row is read (the types decode and bind natively on both backends), so code above the
//! store matches variants, never string literals; an unknown value is an
//! error naming it and the values expected, not a silent default.

use std::fmt;
use std::str::FromStr;

/// A stored or given state that is not one of the known values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateError {
    /// What was being read, e.g. "campaign status".
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?} (expected one of: {})",
            self.what, self.value, self.expected
        )
    }
}

impl std::error::Error for StateError {}

/// Defines a closed set of text states with `as_str`, `FromStr`,
/// `TryFrom<String>`, `Display`, serialisation as the stored text, and sqlx
/// `Type`/`Encode`/`Decode` as that text on every backend.
macro_rules! text_state {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text the database keeps.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = StateError;
            fn from_str(s: &str) -> Result<Self, StateError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(StateError {
                        what: $what,
                        value: s.to_string(),
                        expected: concat!($($text, ", "),+).trim_end_matches(", "),
                    }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = StateError;
            fn try_from(s: String) -> Result<Self, StateError> {
                s.parse()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str()) // honours widths: `{:<10}` in tables
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            &'q str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&'q str as sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(<&'r str as sqlx::Decode<'r, DB>>::decode(value)?.parse()?)
            }
        }
    };
}

text_state!(
    /// Campaign lifecycle (`campaigns.status`).
    CampaignStatus, "campaign status", {
        Active => "active",
        Paused => "paused",
        Cancelled => "cancelled",
    }
);

text_state!(
    /// Where one message is (`outbox.status`).
    OutboxStatus, "outbox status", {
        Pending => "pending",
        Sending => "sending",
        Sent => "sent",
        Failed => "failed",
        Undeliverable => "undeliverable",
        Cancelled => "cancelled",
        /// A step overtaken by a later one when the person enrolled late.
        Skipped => "skipped",
    }
);

text_state!(
    /// Where one person stands in a campaign, derived by the query that lists
    /// enrolments (completion first, then exemption, leaving, due date).
    EnrolmentStatus, "enrolment status", {
        Open => "open",
        Overdue => "overdue",
        Completed => "completed",
        Exempted => "exempted",
        Left => "left",
    }
);

text_state!(
    /// Which message a report claim is for (`weekly_reports.kind`). Scheduled
    /// kinds are sent again when their sender died or the relay refused them;
    /// manual sends are not, since `report send-weekly` prints its outcome to
    /// the admin who ran it.
    ReportKind, "report kind", {
        /// The weekly summary to `report.recipients`.
        Weekly => "weekly",
        /// One manager's team digest.
        Team => "team",
        /// A summary sent by hand.
        Manual => "manual",
    }
);

text_state!(
    /// One entry of the exemption history (`exemption_changes.action`).
    ExemptionAction, "exemption action", {
        Exempted => "exempted",
        /// The exemption was undone.
        Removed => "removed",
    }
);

text_state!(
    /// Where an exemption change was made (`exemption_changes.channel`).
    ExemptionChannel, "exemption channel", {
        Cli => "cli",
        Api => "api",
        Page => "page",
        /// Exemptions made before the history was kept.
        Unknown => "unknown",
    }
);

/// What happened to one weekly summary or team digest
/// (`weekly_reports.outcome`, and what `report send-weekly` prints).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReportOutcome {
    Sent,
    /// Another instance or an earlier run holds this week's claim.
    AlreadySent,
    /// `report.recipients` is empty.
    NoRecipients,
    /// Not sent: the relay's refusal or why the message could not be composed.
    Failed(String),
}

impl ReportOutcome {
    /// Whether an admin who asked for the send should hear that it did not go.
    pub fn is_problem(&self) -> bool {
        matches!(self, ReportOutcome::Failed(_) | ReportOutcome::NoRecipients)
    }
}

impl fmt::Display for ReportOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportOutcome::Sent => f.write_str("sent"),
            ReportOutcome::AlreadySent => f.write_str("already-sent"),
            ReportOutcome::NoRecipients => f.write_str("no-recipients"),
            ReportOutcome::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

impl FromStr for ReportOutcome {
    type Err = StateError;
    fn from_str(s: &str) -> Result<Self, StateError> {
        match s {
            "sent" => Ok(ReportOutcome::Sent),
            "already-sent" => Ok(ReportOutcome::AlreadySent),
            "no-recipients" => Ok(ReportOutcome::NoRecipients),
            _ => match s.strip_prefix("failed: ") {
                Some(why) => Ok(ReportOutcome::Failed(why.to_string())),
                None => Err(StateError {
                    what: "report outcome",
                    value: s.to_string(),
                    expected: "sent, already-sent, no-recipients, failed: REASON",
                }),
            },
        }
    }
}

impl serde::Serialize for ReportOutcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Which system a roster file comes from (`staff.source`): a sync only
/// deactivates people of its own source. Sources are named by the admin
/// (`--source vendor-portal`), so this is an open set with one default.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct RosterSource(String);

impl RosterSource {
    /// The HR system's export, the source when none is named.
    pub const HR: &'static str = "hr";

    pub fn hr() -> Self {
        RosterSource(Self::HR.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RosterSource {
    fn default() -> Self {
        Self::hr()
    }
}

impl fmt::Display for RosterSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl FromStr for RosterSource {
    type Err = StateError;
    /// A source name: 1 to 64 letters, digits, `-`, `_` or `.`.
    fn from_str(s: &str) -> Result<Self, StateError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(RosterSource(s.to_string()))
        } else {
            Err(StateError {
                what: "roster source",
                value: s.to_string(),
                expected: "a name of 1 to 64 letters, digits, '-', '_' or '.', such as hr",
            })
        }
    }
}

impl TryFrom<String> for RosterSource {
    type Error = StateError;
    fn try_from(s: String) -> Result<Self, StateError> {
        s.parse()
    }
}

impl<'de> serde::Deserialize<'de> for RosterSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_name_bad_values() {
        for s in OutboxStatus::ALL {
            assert_eq!(s.as_str().parse::<OutboxStatus>(), Ok(*s));
        }
        let e = "actve".parse::<CampaignStatus>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown campaign status \"actve\" (expected one of: active, paused, cancelled)"
        );
        assert_eq!(
            "failed: 550 no".parse::<ReportOutcome>(),
            Ok(ReportOutcome::Failed("550 no".into()))
        );
        assert!("fail".parse::<ReportOutcome>().is_err());
        assert_eq!(format!("{:<8}|", CampaignStatus::Active), "active  |");
        assert!("hr; drop".parse::<RosterSource>().is_err());
        assert_eq!(RosterSource::default().as_str(), "hr");
    }
}
