//! When messages may go out: days of the week, hours of the day and holidays,
//! in the recipient's own time zone where the roster gives one.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use serde::{Deserialize, Serialize};

/// `send_window = "always"`, or days/hours/holidays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SendWindow {
    #[default]
    Always,
    Hours(Window),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// "Mon-Fri", "Mon,Wed,Fri" or "Mon-Sun".
    #[serde(default = "default_days")]
    pub days: String,
    /// "09:00-16:00", local time.
    #[serde(default = "default_hours")]
    pub hours: String,
    /// IANA zone; absent: the organisation's. A person's own zone wins.
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
}

fn default_days() -> String {
    "Mon-Fri".into()
}
fn default_hours() -> String {
    "09:00-17:00".into()
}

/// A parsed window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub spec: WindowSpec,
    days: [bool; 7],
    opens: NaiveTime,
    closes: NaiveTime,
    time_zone: Option<chrono_tz::Tz>,
}

impl Window {
    pub fn from_spec(spec: WindowSpec) -> Result<Self, String> {
        let days = parse_days(&spec.days)?;
        let (opens, closes) = parse_hours(&spec.hours)?;
        let time_zone = match &spec.time_zone {
            Some(name) => Some(name.parse::<chrono_tz::Tz>().map_err(|_| {
                format!("send_window.time_zone = {name:?} is not an IANA time zone; write e.g. \"America/New_York\"")
            })?),
            None => None,
        };
        Ok(Self {
            spec,
            days,
            opens,
            closes,
            time_zone,
        })
    }

    /// Whether some day from `first` to `last` (inclusive) is an open day
    /// and not a holiday: a window that never opens sends nothing.
    pub fn opens_on_a_day_between(&self, first: NaiveDate, last: NaiveDate) -> bool {
        first
            .iter_days()
            .take_while(|day| *day <= last)
            .take(400)
            .any(|day| {
                self.days[day.weekday().num_days_from_monday() as usize]
                    && !self.spec.holidays.contains(&day)
            })
    }

    /// The earliest instant at or after `t` inside the window.
    pub fn next_open(
        &self,
        t: DateTime<Utc>,
        person_tz: Option<chrono_tz::Tz>,
        org_tz: chrono_tz::Tz,
    ) -> DateTime<Utc> {
        let tz = person_tz.or(self.time_zone).unwrap_or(org_tz);
        let local = t.with_timezone(&tz);
        let mut date = local.date_naive();
        let mut time = local.time();
        // A window open at least one day a week opens within 8 days, unless
        // holidays block every open day for a long stretch: bound the search.
        for _ in 0..400 {
            let open_day = self.days[date.weekday().num_days_from_monday() as usize]
                && !self.spec.holidays.contains(&date);
            if open_day && time < self.closes {
                let at = time.max(self.opens);
                if let Some(instant) = tz.from_local_datetime(&date.and_time(at)).earliest() {
                    return instant.with_timezone(&Utc).max(t);
                }
            }
            date += Duration::days(1);
            time = NaiveTime::MIN;
        }
        t
    }
}

impl SendWindow {
    pub fn next_open(
        &self,
        t: DateTime<Utc>,
        person_tz: Option<chrono_tz::Tz>,
        org_tz: chrono_tz::Tz,
    ) -> DateTime<Utc> {
        match self {
            SendWindow::Always => t,
            SendWindow::Hours(w) => w.next_open(t, person_tz, org_tz),
        }
    }
}

fn parse_days(raw: &str) -> Result<[bool; 7], String> {
    let day = |s: &str| -> Result<Weekday, String> {
        s.trim().parse::<Weekday>().map_err(|_| {
            format!("send_window.days = {raw:?}: {s:?} is not a weekday; write e.g. \"Mon-Fri\"")
        })
    };
    let mut days = [false; 7];
    for part in raw.split(',') {
        match part.split_once('-') {
            Some((from, to)) => {
                let (mut d, end) = (day(from)?, day(to)?);
                loop {
                    days[d.num_days_from_monday() as usize] = true;
                    if d == end {
                        break;
                    }
                    d = d.succ();
                }
            }
            None => days[day(part)?.num_days_from_monday() as usize] = true,
        }
    }
    Ok(days)
}

fn parse_hours(raw: &str) -> Result<(NaiveTime, NaiveTime), String> {
    let bad = || {
        format!("send_window.hours = {raw:?}: write opening and closing time, e.g. \"09:00-16:00\"")
    };
    let (from, to) = raw.split_once('-').ok_or_else(bad)?;
    let parse = |s: &str| NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| bad());
    let (opens, closes) = (parse(from)?, parse(to)?);
    if opens >= closes {
        return Err(bad());
    }
    Ok((opens, closes))
}

impl<'de> Deserialize<'de> for SendWindow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Table(WindowSpec),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "always" => Ok(SendWindow::Always),
            Raw::Word(w) => Err(serde::de::Error::custom(format!("send_window = {w:?}: write \"always\" or a table with days, hours, time_zone, holidays"))),
            Raw::Table(spec) => Window::from_spec(spec).map(SendWindow::Hours).map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for SendWindow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SendWindow::Always => s.serialize_str("always"),
            SendWindow::Hours(w) => w.spec.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Window {
        Window::from_spec(WindowSpec {
            days: "Mon-Fri".into(),
            hours: "09:00-16:00".into(),
            time_zone: Some("America/New_York".into()),
            holidays: vec![NaiveDate::from_ymd_opt(2027, 1, 18).unwrap()],
        })
        .unwrap()
    }

    fn ny(s: &str) -> DateTime<Utc> {
        chrono_tz::America::New_York
            .from_local_datetime(
                &chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap(),
            )
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn inside_the_window_sends_now() {
        let t = ny("2027-01-12 10:30");
        assert_eq!(window().next_open(t, None, chrono_tz::UTC), t);
    }

    #[test]
    fn friday_evening_waits_for_monday_morning() {
        // 2027-01-15 is a Friday; Monday 18th is a holiday, so Tuesday 09:00.
        let t = ny("2027-01-15 17:00");
        assert_eq!(
            window().next_open(t, None, chrono_tz::UTC),
            ny("2027-01-19 09:00")
        );
    }

    #[test]
    fn the_persons_own_zone_wins() {
        // 09:00 in New York is 06:00 in Los Angeles: too early there.
        let t = ny("2027-01-12 09:00");
        let la = chrono_tz::America::Los_Angeles;
        let expected = la
            .from_local_datetime(
                &NaiveDate::from_ymd_opt(2027, 1, 12)
                    .unwrap()
                    .and_hms_opt(9, 0, 0)
                    .unwrap(),
            )
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(window().next_open(t, Some(la), chrono_tz::UTC), expected);
    }

    #[test]
    fn bad_hours_say_what_to_write() {
        let err = parse_hours("9 to 5").unwrap_err();
        assert!(err.contains("09:00-16:00"), "{err}");
    }
}
