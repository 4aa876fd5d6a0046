//! The report as CSV, for spreadsheets: one row per figure
//! (`section,group,metric,value`), so the columns never change as
//! departments come and go. Suppressed groups show `<N` and no counts.

use super::cells::spreadsheet_cell;
use super::model::Report;

/// The whole report as CSV text.
pub fn to_csv(report: &Report) -> String {
    let mut rows: Vec<[String; 4]> = Vec::new();
    let mut figure = |section: &str, group: &str, metric: &str, value: String| {
        rows.push([section.into(), group.into(), metric.into(), value]);
    };
    figure("campaign", "", "slug", report.campaign.slug.clone());
    figure("campaign", "", "as_of", report.as_of.to_rfc3339());
    let summary = serde_json::json!({
        "population": report.population,
        "reach": report.reach,
        "engagement": report.engagement,
        "outcome": report.outcome,
    });
    for (section, values) in summary.as_object().into_iter().flatten() {
        for (metric, value) in values.as_object().into_iter().flatten() {
            figure(section, "", metric, plain(value));
        }
    }
    for (breakdown, groups) in &report.breakdowns {
        for g in groups {
            let section = format!("by_{breakdown}");
            figure(&section, &g.group, "enrolled", g.enrolled_shown.clone());
            for (metric, value) in [("completed", g.completed), ("overdue", g.overdue)] {
                figure(
                    &section,
                    &g.group,
                    metric,
                    value.map(|v| v.to_string()).unwrap_or_default(),
                );
            }
        }
    }
    for w in &report.weekly {
        let week = w.week_ending.format("%Y-%m-%d").to_string();
        figure("weekly", &week, "completed", w.completed.to_string());
        figure("weekly", &week, "target", w.target.to_string());
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    let _ = out.write_record(["section", "group", "metric", "value"]);
    for row in &rows {
        let _ = out.write_record(row.iter().map(|c| spreadsheet_cell(c).into_owned()));
    }
    String::from_utf8(out.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
