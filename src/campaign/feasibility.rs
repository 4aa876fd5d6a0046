//! Whether every date, window and step of a campaign can happen. A file that
//! names a due date before the start, a send window that never opens before
//! the due date, or a step that can never be sent is refused at apply, with
//! the key, instead of running a rollout whose messages silently never go.

use super::definition::{Campaign, Due, Offset, Recipient};
use super::window::SendWindow;
use chrono::{DateTime, Duration, FixedOffset, NaiveDate};

impl Campaign {
    /// The checks above; the message names the key and what to write.
    pub(super) fn check_feasible(&self) -> Result<(), String> {
        self.check_due()?;
        self.check_window_opens()?;
        for step in &self.steps {
            let Some(at) = step.at else { continue };
            match step.to {
                Recipient::Manager => self.check_manager_step(&step.name, at)?,
                Recipient::Person => self.check_person_step(&step.name, at)?,
            }
        }
        Ok(())
    }

    fn start_date(&self) -> NaiveDate {
        self.starts_at.date_naive()
    }

    fn check_due(&self) -> Result<(), String> {
        match self.due {
            Due::Date(date) if date < self.start_date() => Err(format!(
                "due = \"{date}\" is before starts_at = \"{}\"; move the due date after the start (or write a period such as due = \"30d\")",
                self.starts_at.to_rfc3339()
            )),
            Due::AfterEnrolment(d) if d.as_std().is_zero() => Err(
                "due = \"0s\" makes everyone overdue the moment they are enrolled; write e.g. due = \"30d\"".into(),
            ),
            _ => Ok(()),
        }
    }

    /// A window must have an open day (not a holiday) between the start and
    /// the due date (or within a year for a period after enrolment).
    fn check_window_opens(&self) -> Result<(), String> {
        let SendWindow::Hours(window) = &self.send_window else {
            return Ok(());
        };
        let last = match self.due {
            Due::Date(date) => date,
            Due::AfterEnrolment(_) => self.start_date() + Duration::days(366),
        };
        if window.opens_on_a_day_between(self.start_date(), last) {
            return Ok(());
        }
        let until = match self.due {
            Due::Date(date) => format!("the due date {date}"),
            Due::AfterEnrolment(_) => "a year later".into(),
        };
        Err(format!(
            "send_window never opens between starts_at ({}) and {until}: days = {:?} are all holidays or none; widen days or remove holidays",
            self.start_date(),
            window.spec.days
        ))
    }

    /// A person step timed before enrolment always falls due together with
    /// the announcement, and the planner sends only one of those: it would
    /// never be sent.
    fn check_person_step(&self, name: &str, at: Offset) -> Result<(), String> {
        let Offset::BeforeDue(before) = at else {
            return Ok(());
        };
        let never = match self.due {
            Due::AfterEnrolment(period) => before > period,
            Due::Date(date) => end_of(date) - before.as_chrono() < self.starts_at,
        };
        if !never {
            return Ok(());
        }
        Err(format!(
            "step {name:?}: at = \"{at}\" is before anyone is enrolled (due = \"{}\", starts_at = \"{}\"), so it always coincides with the first step and is never sent; use an offset inside the due period",
            self.due,
            self.starts_at.to_rfc3339()
        ))
    }

    /// A manager digest lists overdue people only: timed at or before the
    /// due date it has nobody to list and is never sent.
    fn check_manager_step(&self, name: &str, at: Offset) -> Result<(), String> {
        let never = match (at, self.due) {
            (Offset::BeforeDue(_), _) => true,
            (Offset::AfterDue(after), _) => after.as_std().is_zero(),
            (Offset::AfterEnrolment(after), Due::AfterEnrolment(period)) => after <= period,
            (Offset::AfterEnrolment(_), Due::Date(_)) => false,
        };
        if !never {
            return Ok(());
        }
        Err(format!(
            "step {name:?} goes to managers, whose digest lists overdue people only; at = \"{at}\" is not after the due date, so it would never be sent; write e.g. at = \"due+1d\""
        ))
    }
}

/// The last second of a due date in UTC: close enough for "before anyone
/// is enrolled" (the organisation's zone moves it by hours, not days).
fn end_of(date: NaiveDate) -> DateTime<FixedOffset> {
    date.and_hms_opt(23, 59, 59)
        .unwrap_or_default()
        .and_utc()
        .fixed_offset()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../config/campaigns/soar.toml");

    fn refused(from: &str, to: &str) -> String {
        let text = SHIPPED.replacen(from, to, 1);
        assert_ne!(text, SHIPPED, "{from:?} is in the shipped campaign");
        Campaign::from_toml(&text, "soar.toml")
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn impossible_campaigns_are_refused_naming_the_key() {
        for (from, to, expected) in [
            (
                "due = \"30d\"",
                "due = \"2027-01-04\"",
                "due = \"2027-01-04\" is before starts_at",
            ),
            ("due = \"30d\"", "due = \"0s\"", "due = \"0s\""),
            (
                "at = \"due-2d\"",
                "at = \"due-40d\"",
                "step \"last-call\": at = \"due-40d\" is before anyone is enrolled",
            ),
            (
                "at = \"due+1d\"",
                "at = \"due-1d\"",
                "step \"escalation\" goes to managers",
            ),
            (
                "at = \"due+1d\"",
                "at = \"20d\"",
                "step \"escalation\" goes to managers",
            ),
        ] {
            let err = refused(from, to);
            assert!(err.contains(expected), "{to}: {err}");
        }
    }

    #[test]
    fn a_window_shut_until_the_due_date_is_refused() {
        let text = SHIPPED
            .replacen("due = \"30d\"", "due = \"2027-01-12\"", 1)
            .replacen(
                "holidays = [\"2027-01-18\", \"2027-02-15\"]",
                "holidays = [\"2027-01-11\", \"2027-01-12\"]",
                1,
            );
        let err = Campaign::from_toml(&text, "soar.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("send_window never opens between starts_at (2027-01-11) and the due date 2027-01-12"),
            "{err}"
        );
    }

    #[test]
    fn the_shipped_campaign_is_feasible() {
        assert!(Campaign::from_toml(SHIPPED, "soar.toml").is_ok());
    }
}
