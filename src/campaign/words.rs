//! A campaign's timings as an admin reads them: "2 days before the due
//! date", "14 days after each person's enrolment", not "due-2d".

use super::definition::{Due, Offset};
use crate::domain::HumanDuration;

/// A duration as people say it: "14 days", "1 day 12 hours", "90 minutes".
pub fn duration_in_words(d: HumanDuration) -> String {
    let secs = d.as_std().as_secs();
    let parts = [
        (secs / 86_400, "day"),
        (secs % 86_400 / 3_600, "hour"),
        (secs % 3_600 / 60, "minute"),
        (secs % 60, "second"),
    ];
    let words: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    if words.is_empty() {
        "no time".into()
    } else {
        words.join(" ")
    }
}

/// When a step goes out, relative to enrolment or the due date.
pub fn offset_in_words(at: Offset) -> String {
    match at {
        Offset::AfterEnrolment(d) if d.as_std().is_zero() => "at enrolment".into(),
        Offset::AfterEnrolment(d) => format!("{} after enrolment", duration_in_words(d)),
        Offset::BeforeDue(d) => format!("{} before the due date", duration_in_words(d)),
        Offset::AfterDue(d) if d.as_std().is_zero() => "on the due date".into(),
        Offset::AfterDue(d) => format!("{} after the due date", duration_in_words(d)),
    }
}

/// The due rule: a period after enrolment, or the fixed date's end of day.
pub fn due_in_words(due: Due, tz: chrono_tz::Tz) -> String {
    match due {
        Due::AfterEnrolment(d) => {
            format!("{} after each person's enrolment", duration_in_words(d))
        }
        Due::Date(date) => format!(
            "{} (the end of the day, {tz})",
            date.format("%A, %-d %B %Y")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_read_as_words() {
        let d = |s: &str| duration_in_words(HumanDuration::parse(s).unwrap());
        assert_eq!(d("14d"), "14 days");
        assert_eq!(d("36h"), "1 day 12 hours");
        let at = |s: &str| offset_in_words(Offset::parse(s).unwrap());
        assert_eq!(at("0s"), "at enrolment");
        assert_eq!(at("due-2d"), "2 days before the due date");
        assert_eq!(at("due+1d"), "1 day after the due date");
        assert_eq!(
            due_in_words(Due::parse("2099-12-14").unwrap(), chrono_tz::UTC),
            "Monday, 14 December 2099 (the end of the day, UTC)"
        );
    }
}

/// "1 person", "2 people", "0 people": a count of people in a sentence.
pub fn people_count(n: u64) -> String {
    match n {
        1 => "1 person".into(),
        n => format!("{n} people"),
    }
}

#[cfg(test)]
mod people_tests {
    use super::people_count;

    #[test]
    fn one_person_is_singular() {
        assert_eq!(people_count(1), "1 person");
        assert_eq!(people_count(0), "0 people");
        assert_eq!(people_count(2), "2 people");
    }
}
