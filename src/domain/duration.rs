//! Durations as people write them in config and campaign files: `7d`, `36h`,
//! `30s`, `1h 30m`. Parsed by `humantime`, so the grammar is documented there.

use std::fmt;
use std::time::Duration;

/// A non-negative duration written in human units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(Duration);

impl HumanDuration {
    pub fn parse(raw: &str) -> Result<Self, String> {
        humantime::parse_duration(raw.trim())
            .map(Self)
            .map_err(|e| {
                format!("`{raw}` is not a duration ({e}); write e.g. \"30s\", \"36h\" or \"7d\"")
            })
    }

    pub fn as_std(self) -> Duration {
        self.0
    }

    pub fn as_chrono(self) -> chrono::Duration {
        chrono::Duration::from_std(self.0).unwrap_or(chrono::Duration::MAX)
    }

    pub fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
}

/// As people write it in the files: "7d", "36h" as "1d 12h", "30s", "250ms".
/// Parsing it back gives the same duration.
impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut secs = self.0.as_secs();
        let millis = self.0.subsec_millis();
        if secs == 0 && millis == 0 {
            return f.write_str("0s");
        }
        let mut parts = Vec::new();
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if secs >= size {
                parts.push(format!("{}{unit}", secs / size));
                secs %= size;
            }
        }
        if millis > 0 {
            parts.push(format!("{millis}ms"));
        }
        f.write_str(&parts.join(" "))
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_human_units() {
        assert_eq!(
            HumanDuration::parse("7d").unwrap().as_std(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(
            HumanDuration::parse("36h").unwrap().as_std(),
            Duration::from_secs(36 * 3600)
        );
        assert_eq!(
            HumanDuration::parse(" 30s ").unwrap().as_std(),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn displays_as_written_and_parses_back() {
        for (written, shown) in [
            ("7d", "7d"),
            ("36h", "1d 12h"),
            ("30s", "30s"),
            ("0s", "0s"),
            ("1500ms", "1s 500ms"),
        ] {
            let d = HumanDuration::parse(written).unwrap();
            assert_eq!(d.to_string(), shown);
            assert_eq!(HumanDuration::parse(shown).unwrap(), d);
        }
    }

    #[test]
    fn rejects_nonsense_with_an_example() {
        let err = HumanDuration::parse("seven days").unwrap_err();
        assert!(err.contains("7d"), "{err}");
    }
}
