//! Campaign settings in words, for `campaign show`, the diff `campaign
//! apply` prints and the admin page: "5 days", not "5days"; "Mon-Fri
//! 09:00-16:00 (America/New_York)", not JSON.

use super::audience::Audience;
use super::definition::{Due, Offset, Recipient, Step};
use super::window::SendWindow;
use crate::domain::HumanDuration;

/// "5 days", "36 hours", "1 day 12 hours", "30 seconds", "0 seconds".
pub fn duration(d: HumanDuration) -> String {
    if d.as_std().is_zero() {
        "0 seconds".into()
    } else {
        super::words::duration_in_words(d)
    }
}

/// "30 days after enrolment" or "on 2027-02-28".
pub fn due(d: Due) -> String {
    match d {
        Due::AfterEnrolment(p) => format!("{} after enrolment", duration(p)),
        Due::Date(date) => format!("on {}", date.format("%Y-%m-%d")),
    }
}

/// "at enrolment", "7 days after enrolment", "2 days before due", "on the due date".
pub fn offset(o: Offset) -> String {
    match o {
        Offset::AfterEnrolment(d) if d.as_std().is_zero() => "at enrolment".into(),
        Offset::AfterEnrolment(d) => format!("{} after enrolment", duration(d)),
        Offset::BeforeDue(d) => format!("{} before due", duration(d)),
        Offset::AfterDue(d) if d.as_std().is_zero() => "on the due date".into(),
        Offset::AfterDue(d) => format!("{} after due", duration(d)),
    }
}

/// When a step goes and to whom: "7 days after enrolment, template reminder".
pub fn step(s: &Step) -> String {
    let when = match s.at {
        Some(at) => offset(at),
        None => "on completion".into(),
    };
    let to = match s.to {
        Recipient::Person => "",
        Recipient::Manager => ", to managers",
    };
    format!("{when}, template {}{to}", s.template)
}

/// "always", or "Mon-Fri 09:00-16:00 (America/New_York), 2 holidays".
pub fn window(w: &SendWindow) -> String {
    match w {
        SendWindow::Always => "always".into(),
        SendWindow::Hours(w) => {
            let zone = w
                .spec
                .time_zone
                .clone()
                .unwrap_or_else(|| "the organisation's time zone".into());
            let holidays = match w.spec.holidays.len() {
                0 => String::new(),
                1 => format!(", holiday {}", w.spec.holidays[0]),
                n => format!(", {n} holidays"),
            };
            format!(
                "{} {} ({zone}; a person's own zone wins){holidays}",
                w.spec.days, w.spec.hours
            )
        }
    }
}

/// "everyone active", or "department is Supply Chain or Procurement; not role Contractor".
pub fn audience(a: &Audience) -> String {
    let mut parts: Vec<String> = a
        .include
        .iter()
        .map(|(field, rule)| format!("{field} {}", rule.describe()))
        .collect();
    parts.extend(
        a.exclude
            .iter()
            .map(|(field, rule)| format!("not {field} {}", rule.describe())),
    );
    if parts.is_empty() {
        return "everyone active in the roster".into();
    }
    let hierarchies = a
        .include
        .values()
        .chain(a.exclude.values())
        .any(|r| !r.last.is_empty());
    if hierarchies {
        let separator = a
            .separator
            .as_deref()
            .unwrap_or(super::audience::DEFAULT_SEPARATOR);
        parts.push(format!("hierarchy levels split at {separator:?}"));
    }
    parts.join("; ")
}

/// "none" or the number.
pub fn limit(per_hour: Option<u32>) -> String {
    match per_hour.filter(|n| *n > 0) {
        Some(n) => format!("{n} an hour"),
        None => "no limit".into(),
    }
}

/// "none" or "4 hours".
pub fn spread(s: Option<HumanDuration>) -> String {
    s.map(duration).unwrap_or_else(|| "none".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_words() {
        let d = |s: &str| duration(HumanDuration::parse(s).unwrap());
        assert_eq!(d("5d"), "5 days");
        assert_eq!(d("1d"), "1 day");
        assert_eq!(d("36h"), "1 day 12 hours");
        assert_eq!(d("30s"), "30 seconds");
    }
}
