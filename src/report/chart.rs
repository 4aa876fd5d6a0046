//! The completion curve as an inline SVG: cumulative completions per week
//! against the target (people whose due date had passed). Drawn on the
//! server with presentation attributes only, so it needs no script and no
//! inline style (the admin page's CSP allows neither), and reads the same
//! in an HTML report or an email. It carries its own text alternative.

use super::model::WeekPoint;
use super::plot::escape;
use std::fmt::Write;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 264.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 32.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 64.0;
/// Completed: dark blue; target: grey, dashed. Both pass WCAG contrast on white.
const COMPLETED_COLOUR: &str = "#1d4f7a";
const TARGET_COLOUR: &str = "#5b6570";

/// The chart for `weekly`, titled `title`; `<title>` and `<desc>` say in
/// words what the lines show. `id` prefixes their ids (unique per page).
pub fn completion_svg(weekly: &[WeekPoint], title: &str, id: &str) -> String {
    let top = weekly
        .iter()
        .map(|p| p.completed.max(p.target))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let x = |i: usize| {
        let span = weekly.len().saturating_sub(1).max(1) as f64;
        LEFT + (WIDTH - LEFT - RIGHT) * i as f64 / span
    };
    let y = |v: u64| TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - v as f64 / top);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" aria-labelledby="{id}-title {id}-desc" font-family="system-ui, sans-serif" font-size="12"><title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
        escape(title),
        escape(&describe(weekly))
    );
    axes(&mut svg, top, &y);
    for (i, p) in weekly.iter().enumerate() {
        let label = p.week_ending.format("%-d %b");
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{TARGET_COLOUR}">{label}</text>"#,
            x(i),
            HEIGHT - BOTTOM + 18.0
        );
    }
    let line = |value: fn(&WeekPoint) -> u64| -> String {
        weekly
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(value(p))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = write!(
        svg,
        r#"<polyline points="{}" fill="none" stroke="{TARGET_COLOUR}" stroke-width="2" stroke-dasharray="6 4"/>"#,
        line(|p| p.target)
    );
    let _ = write!(
        svg,
        r#"<polyline points="{}" fill="none" stroke="{COMPLETED_COLOUR}" stroke-width="3"/>"#,
        line(|p| p.completed)
    );
    for (i, p) in weekly.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{COMPLETED_COLOUR}"/>"#,
            x(i),
            y(p.completed)
        );
    }
    axis_titles(&mut svg);
    legend(&mut svg);
    svg.push_str("</svg>");
    svg
}

/// The y axis: zero, half and the top value, with light grid lines.
fn axes(svg: &mut String, top: f64, y: &dyn Fn(u64) -> f64) {
    let mut ticks = vec![0, (top / 2.0).round() as u64, top as u64];
    ticks.dedup();
    for v in ticks {
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#d5dae0"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="{TARGET_COLOUR}">{v}</text>"##,
            WIDTH - RIGHT,
            y(v),
            y(v),
            LEFT - 8.0,
            y(v) + 4.0
        );
    }
}

/// What each axis counts: week-ending dates along the bottom, people up the side.
fn axis_titles(svg: &mut String) {
    let (x, y) = (
        (LEFT + WIDTH - RIGHT) / 2.0,
        TOP + (HEIGHT - TOP - BOTTOM) / 2.0,
    );
    let _ = write!(
        svg,
        r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#1f2933">Week ending</text><text x="16" y="{y:.1}" text-anchor="middle" fill="#1f2933" transform="rotate(-90 16 {y:.1})">People</text>"##,
        HEIGHT - BOTTOM + 36.0
    );
}

fn legend(svg: &mut String) {
    let y = HEIGHT - 8.0;
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{COMPLETED_COLOUR}" stroke-width="3"/><text x="{:.1}" y="{y}" fill="#1f2933">Completed</text><line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{TARGET_COLOUR}" stroke-width="2" stroke-dasharray="6 4"/><text x="{:.1}" y="{y}" fill="#1f2933">Target (due by then)</text>"##,
        LEFT + 24.0,
        y - 4.0,
        y - 4.0,
        LEFT + 30.0,
        LEFT + 120.0,
        LEFT + 144.0,
        y - 4.0,
        y - 4.0,
        LEFT + 150.0
    );
}

/// The chart in one or two sentences, for screen readers and text-only readers.
pub fn describe(weekly: &[WeekPoint]) -> String {
    let Some(last) = weekly.last() else {
        return "No weeks to show yet: the campaign has not started.".into();
    };
    format!(
        "Cumulative completions per week over {} week(s). By {}: {} completed, against a target of {} whose due date had passed.",
        weekly.len(),
        last.week_ending.format("%-d %B %Y"),
        last.completed,
        last.target
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn week(day: u32, completed: u64, target: u64) -> WeekPoint {
        WeekPoint {
            week_ending: Utc.with_ymd_and_hms(2027, 1, day, 0, 0, 0).unwrap(),
            completed,
            target,
        }
    }

    #[test]
    fn the_chart_has_both_lines_and_a_text_alternative() {
        let svg = completion_svg(&[week(18, 1, 0), week(25, 3, 4)], "Soar <2027>", "chart");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("<title id=\"chart-title\">Soar &lt;2027&gt;</title>"));
        assert!(svg.contains("3 completed, against a target of 4"));
        assert!(svg.contains(">Week ending</text>") && svg.contains(">People</text>"));
    }

    #[test]
    fn an_empty_campaign_still_draws() {
        let svg = completion_svg(&[], "x", "chart");
        assert!(svg.contains("has not started"));
    }
}
