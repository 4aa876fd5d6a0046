//! Time zones as HR systems write them, turned into IANA names: the IANA
//! name itself ("America/Chicago"), a Windows id ("Central Standard Time")
//! or display label ("(UTC-06:00) Central Time (US & Canada)"), or a Workday
//! label ("GMT-06:00 Central Time (Chicago)").

use super::windows_zones::WINDOWS_ZONES;
use chrono_tz::Tz;

/// The IANA zone a cell names, or `None` when it names none we know.
pub fn resolve(raw: &str) -> Option<Tz> {
    let text = raw.trim();
    if let Ok(tz) = text.parse::<Tz>() {
        return Some(tz);
    }
    windows(text).or_else(|| labelled(text))
}

/// A Windows id or display label, as in the CLDR table (any case).
fn windows(text: &str) -> Option<Tz> {
    WINDOWS_ZONES
        .iter()
        .find(|(id, _, label)| id.eq_ignore_ascii_case(text) || label.eq_ignore_ascii_case(text))
        .and_then(|(_, iana, _)| iana.parse().ok())
}

/// "GMT-06:00 Central Time (Chicago)", "(GMT-05:00) Eastern Time" or
/// "UTC-08:00 Pacific Time": the city in brackets names the zone; without
/// one, the name must be a Windows label's with the same offset.
fn labelled(text: &str) -> Option<Tz> {
    let (offset, name) = split_offset(text)?;
    if let Some(city) = bracketed_tail(name) {
        if let Some(tz) = by_city(city) {
            return Some(tz);
        }
    }
    let bare = without_bracketed_tail(name);
    WINDOWS_ZONES
        .iter()
        .find(|(_, _, label)| {
            split_offset(label).is_some_and(|(o, n)| {
                o == offset
                    && (n.eq_ignore_ascii_case(name)
                        || without_bracketed_tail(n).eq_ignore_ascii_case(bare))
            })
        })
        .and_then(|(_, iana, _)| iana.parse().ok())
}

/// The offset ("-06:00") and the rest of "GMT-06:00 Name" or "(UTC-06:00) Name".
fn split_offset(text: &str) -> Option<(&str, &str)> {
    let text = text.trim().trim_start_matches('(');
    let rest = text
        .strip_prefix("GMT")
        .or_else(|| text.strip_prefix("UTC"))?;
    let end = rest.find([')', ' ']).unwrap_or(rest.len());
    let offset = &rest[..end];
    let name = rest[end..].trim_start_matches(')').trim();
    Some((offset, name))
}

/// "Chicago" in "Central Time (Chicago)".
fn bracketed_tail(name: &str) -> Option<&str> {
    let inner = name.strip_suffix(')')?;
    let open = inner.rfind('(')?;
    Some(inner[open + 1..].trim())
}

fn without_bracketed_tail(name: &str) -> &str {
    match (name.ends_with(')'), name.rfind('(')) {
        (true, Some(open)) => name[..open].trim(),
        _ => name,
    }
}

/// The zone whose last part is the city ("New York": America/New_York).
fn by_city(city: &str) -> Option<Tz> {
    let wanted = city.replace(' ', "_");
    chrono_tz::TZ_VARIANTS.iter().copied().find(|tz| {
        let name = tz.name();
        name.contains('/')
            && name
                .rsplit('/')
                .next()
                .is_some_and(|last| last.eq_ignore_ascii_case(&wanted))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_zone_in_the_windows_table_is_a_known_iana_zone() {
        for (id, iana, _) in WINDOWS_ZONES {
            assert!(iana.parse::<Tz>().is_ok(), "{id}: {iana}");
        }
    }

    #[test]
    fn hr_labels_map_to_iana_names() {
        for (raw, want) in [
            ("America/Chicago", "America/Chicago"),
            ("Central Standard Time", "America/Chicago"),
            ("eastern standard time", "America/New_York"),
            (
                "(UTC-08:00) Pacific Time (US & Canada)",
                "America/Los_Angeles",
            ),
            ("GMT-06:00 Central Time (Chicago)", "America/Chicago"),
            ("GMT-05:00 Eastern Time (New York)", "America/New_York"),
            ("GMT-07:00 Mountain Time (Phoenix)", "America/Phoenix"),
            ("GMT-05:00 Eastern Time", "America/New_York"),
            ("(GMT-10:00) Hawaii", "Pacific/Honolulu"),
        ] {
            assert_eq!(resolve(raw).map(|tz| tz.name()), Some(want), "{raw}");
        }
    }

    #[test]
    fn unknown_labels_resolve_to_nothing() {
        for raw in [
            "Central",
            "GMT-06:00 Somewhere Time",
            "Mars/Olympus",
            "GMT+25:00 Nowhere",
        ] {
            assert_eq!(resolve(raw), None, "{raw}");
        }
    }
}
