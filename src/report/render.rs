//! Report renderers: a terminal table, spreadsheet-safe CSV, JSON, a
//! self-contained printable HTML page, and the per-person evidence CSV.
//! Every value from a roster is escaped for where it lands.

use super::cells::spreadsheet_cell;
use super::chart::completion_svg;
use super::model::{BouncedPerson, Group, Report};
use super::plot::{departments_svg, escape};
use crate::clock::from_millis;
use crate::store::report::EvidenceRow;
use std::fmt::Write as _;

pub(super) fn pct(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or("n/a".into(), |x| format!("{x}{unit}"))
}

/// The terminal table.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    let (p, reach, e, o) = (&r.population, &r.reach, &r.engagement, &r.outcome);
    let _ = writeln!(
        out,
        "{} ({}), {}, as of {}",
        r.campaign.name,
        r.campaign.slug,
        r.campaign.status,
        r.as_of.format("%Y-%m-%d %H:%M UTC")
    );
    if r.campaign.audience_size == 0 {
        let _ = writeln!(
            out,
            "warning      the audience matches nobody active in the roster: nobody new will be enrolled"
        );
    }
    let _ = writeln!(
        out,
        "population   enrolled {}  exempted {}  left {}",
        p.enrolled, p.exempted, p.left
    );
    let _ = writeln!(
        out,
        "reach        messages sent {}  people reached {}  undeliverable {}",
        reach.messages_sent, reach.people_reached, reach.people_undeliverable
    );
    let _ = writeln!(
        out,
        "bounces      addresses bounced {} (not counted as reached; no reminders go to them)",
        r.bounces.people_bounced
    );
    for b in &r.bounces.people {
        let _ = writeln!(
            out,
            "  address bounced  {}  {}  {}  {}  {}",
            terminal_safe(&b.email),
            terminal_safe(&format!("{} {}", b.first_name, b.last_name)),
            terminal_safe(b.employee_id.as_deref().unwrap_or("-")),
            terminal_safe(&b.department),
            terminal_safe(&b.status)
        );
    }
    let _ = writeln!(out, "engagement   opened {} human / {} all  clicked {} human / {} all  (opens are a lower bound)", e.opened_human, e.opened_all, e.clicked_human, e.clicked_all);
    let _ = writeln!(
        out,
        "outcome      completed {} ({})  on time {}  overdue {}  median {} days  reminders per completion {}  clicked, not completed {}",
        o.completed,
        pct(o.completion_rate),
        o.completed_on_time,
        o.overdue,
        opt(o.median_days_to_complete, ""),
        opt(o.reminders_per_completion, ""),
        o.clicked_not_completed
    );
    for (name, groups) in &r.breakdowns {
        let _ = writeln!(out, "\nby {name}");
        // As wide as the longest name: a hierarchy such as "Mercy Valley
        // Health > Operations > Supply Chain" is read whole, never cut.
        let width = groups
            .iter()
            .map(|g| g.group.chars().count())
            .chain([name.chars().count(), 12])
            .max()
            .unwrap_or(12);
        let _ = writeln!(
            out,
            "  {:<width$} {:>9} {:>10} {:>8} {:>7}",
            name, "enrolled", "completed", "overdue", "rate"
        );
        for g in groups {
            let _ = writeln!(
                out,
                "  {:<width$} {:>9} {:>10} {:>8} {:>7}",
                g.group,
                g.enrolled_shown,
                shown(g.completed),
                shown(g.overdue),
                g.completion_rate.map_or("-".into(), pct)
            );
        }
    }
    let _ = writeln!(out, "\nweek ending   completed   target");
    for w in &r.weekly {
        let _ = writeln!(
            out,
            "  {}  {:>9}  {:>7}",
            w.week_ending.format("%Y-%m-%d"),
            w.completed,
            w.target
        );
    }
    out
}

fn shown(v: Option<u64>) -> String {
    v.map_or("-".into(), |n| n.to_string())
}

/// Long-format CSV: section, group, metric, value. Cells that a spreadsheet
/// would run as formulas are neutralised.
pub fn csv(r: &Report) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["section", "group", "metric", "value"])?;
    let value = |v: serde_json::Value| match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    for (section, figures) in [
        ("population", serde_json::to_value(&r.population)?),
        ("reach", serde_json::to_value(&r.reach)?),
        ("engagement", serde_json::to_value(&r.engagement)?),
        ("outcome", serde_json::to_value(&r.outcome)?),
        (
            "bounces",
            serde_json::json!({ "people_bounced": r.bounces.people_bounced }),
        ),
    ] {
        if let serde_json::Value::Object(map) = figures {
            for (metric, v) in map {
                w.write_record([section, "", &metric, &value(v)])?;
            }
        }
    }
    for (by, groups) in &r.breakdowns {
        for g in groups {
            let group = spreadsheet_cell(&g.group);
            w.write_record([by.as_str(), &group, "enrolled", &g.enrolled_shown])?;
            for (metric, v) in [
                ("completed", g.completed.map(|n| n.to_string())),
                ("overdue", g.overdue.map(|n| n.to_string())),
                ("completion_rate", g.completion_rate.map(|x| x.to_string())),
            ] {
                w.write_record([by.as_str(), &group, metric, &v.unwrap_or_default()])?;
            }
        }
    }
    for b in &r.bounces.people {
        let email = spreadsheet_cell(&b.email);
        w.write_record([
            "address bounced",
            &email,
            "status",
            &spreadsheet_cell(&b.status),
        ])?;
    }
    for p in &r.weekly {
        let week = p.week_ending.format("%Y-%m-%d").to_string();
        w.write_record(["weekly", &week, "completed", &p.completed.to_string()])?;
        w.write_record(["weekly", &week, "target", &p.target.to_string()])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// A self-contained HTML page (inline CSS and SVG, no scripts) that prints well.
pub fn html(r: &Report) -> String {
    let mut h = String::new();
    let title = format!("{} — rollout report", escape(&r.campaign.name));
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
         <style>body{{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;color:#1a1a1a;max-width:52rem;margin:2rem auto;padding:0 1rem;line-height:1.45}}\
         table{{border-collapse:collapse;margin:.5rem 0 1.5rem}}th,td{{border-bottom:1px solid #ccc;padding:.3rem .6rem;text-align:right}}th:first-child,td:first-child{{text-align:left}}\
         h2{{margin-top:2rem;border-bottom:2px solid #1f4e79;color:#1f4e79}}figure{{margin:0 0 1rem}}@media print{{body{{margin:0;max-width:none}}h2{{break-after:avoid}}table,figure{{break-inside:avoid}}}}</style></head><body>\
         <h1>{title}</h1><p>Campaign <strong>{}</strong> ({}), as of {}.</p>",
        escape(&r.campaign.slug),
        escape(r.campaign.status.as_str()),
        r.as_of.format("%A %-d %B %Y, %H:%M UTC")
    );
    if r.campaign.audience_size == 0 {
        h.push_str("<p><strong>Warning:</strong> the audience matches nobody active in the roster: nobody new will be enrolled.</p>");
    }
    let (p, reach, e, o) = (&r.population, &r.reach, &r.engagement, &r.outcome);
    let rows: [(&str, String); 15] = [
        ("Enrolled", p.enrolled.to_string()),
        ("Exempted", p.exempted.to_string()),
        ("Left during the campaign", p.left.to_string()),
        ("Messages sent", reach.messages_sent.to_string()),
        ("People reached", reach.people_reached.to_string()),
        ("Undeliverable", reach.people_undeliverable.to_string()),
        ("Address bounced", r.bounces.people_bounced.to_string()),
        (
            "Opened (people; human / all)",
            format!("{} / {}", e.opened_human, e.opened_all),
        ),
        (
            "Clicked (people; human / all)",
            format!("{} / {}", e.clicked_human, e.clicked_all),
        ),
        (
            "Completed",
            format!("{} ({})", o.completed, pct(o.completion_rate)),
        ),
        ("Completed on time", o.completed_on_time.to_string()),
        ("Overdue", o.overdue.to_string()),
        (
            "Median days to complete",
            opt(o.median_days_to_complete, ""),
        ),
        (
            "Reminders per completion",
            opt(o.reminders_per_completion, ""),
        ),
        (
            "Clicked but not completed",
            o.clicked_not_completed.to_string(),
        ),
    ];
    h.push_str("<h2>Headline</h2><table><tbody>");
    for (label, v) in rows {
        let _ = write!(
            h,
            "<tr><th scope=\"row\">{label}</th><td>{}</td></tr>",
            escape(&v)
        );
    }
    h.push_str("</tbody></table><p>Opens are a lower bound: many mail clients block images, and image proxies open on the reader's behalf. Machine opens and clicks are counted in \"all\" only.</p>");
    if !r.bounces.people.is_empty() {
        h.push_str(&bounced_table(&r.bounces.people));
    }
    let last = r.weekly.last();
    let alt = last.map_or("No weekly data yet.".to_string(), |w| {
        format!(
            "Cumulative completions: {} of a target of {} by {}.",
            w.completed,
            w.target,
            w.week_ending.format("%-d %B %Y")
        )
    });
    let _ = write!(h, "<h2>Completion over time</h2><figure>{}<figcaption>{} Blue: completed; grey: people whose due date has passed (the target).</figcaption></figure>", completion_svg(&r.weekly, "Completion over time", "curve"), escape(&alt));
    if let Some(departments) = r.breakdowns.get("department") {
        let _ = write!(h, "<h2>By department</h2><figure>{}<figcaption>Completion rate by department; groups under {} people are not shown.</figcaption></figure>", departments_svg(departments), r.min_group_size);
    }
    for (name, groups) in &r.breakdowns {
        let _ = write!(h, "<h2>By {}</h2>", escape(name));
        h.push_str(&group_table(name, groups));
    }
    h.push_str("<h2>Week by week</h2><table><thead><tr><th scope=\"col\">Week ending</th><th scope=\"col\">Completed</th><th scope=\"col\">Target</th></tr></thead><tbody>");
    for w in &r.weekly {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            w.week_ending.format("%Y-%m-%d"),
            w.completed,
            w.target
        );
    }
    h.push_str("</tbody></table></body></html>\n");
    h
}

/// "Address bounced": each person with their roster row, so the admin
/// can have the HR record fixed.
fn bounced_table(people: &[BouncedPerson]) -> String {
    let mut t = String::from("<h2>Address bounced</h2><p>No reminders go to these addresses until a roster import changes them.</p><table><thead><tr><th scope=\"col\">Email</th><th scope=\"col\">Name</th><th scope=\"col\">Employee ID</th><th scope=\"col\">Department</th><th scope=\"col\">Role</th><th scope=\"col\">Facility</th><th scope=\"col\">Manager</th><th scope=\"col\">Bounced</th><th scope=\"col\">Status</th><th scope=\"col\">Diagnostic</th></tr></thead><tbody>");
    for b in people {
        let _ = write!(
            t,
            "<tr><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&b.email),
            escape(&b.first_name),
            escape(&b.last_name),
            escape(b.employee_id.as_deref().unwrap_or("")),
            escape(&b.department),
            escape(&b.role),
            escape(&b.facility),
            escape(b.manager_email.as_deref().unwrap_or("")),
            b.bounced_at.format("%Y-%m-%d"),
            escape(&b.status),
            escape(&b.diagnostic)
        );
    }
    t.push_str("</tbody></table>");
    t
}

/// A roster value on one terminal line: control characters (escape
/// sequences, line breaks) become spaces.
fn terminal_safe(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn group_table(name: &str, groups: &[Group]) -> String {
    let mut t = format!("<table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">Enrolled</th><th scope=\"col\">Completed</th><th scope=\"col\">Overdue</th><th scope=\"col\">Rate</th></tr></thead><tbody>", escape(name));
    for g in groups {
        let _ = write!(
            t,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&g.group),
            escape(&g.enrolled_shown),
            shown(g.completed),
            shown(g.overdue),
            g.completion_rate.map_or("-".into(), pct)
        );
    }
    t.push_str("</tbody></table>");
    t
}

/// The per-person evidence an auditor asks for: every message and its relay reply, and how completion was recorded.
pub fn evidence_csv(rows: &[EvidenceRow]) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "email",
        "first_name",
        "last_name",
        "department",
        "enrolled_at",
        "due_at",
        "completed_at",
        "completion_source",
        "exempt_reason",
        "left_at",
        "step",
        "message_status",
        "attempts",
        "accepted_at",
        "relay_reply",
        "message_id",
    ])?;
    let time = |t: Option<i64>| t.map(|t| from_millis(t).to_rfc3339()).unwrap_or_default();
    for r in rows {
        let cells = [
            r.email.clone(),
            r.first_name.clone(),
            r.last_name.clone(),
            r.department.clone(),
            time(Some(r.enrolled_at)),
            time(Some(r.due_at)),
            time(r.completed_at),
            r.completion_source.clone().unwrap_or_default(),
            r.exempt_reason.clone().unwrap_or_default(),
            time(r.left_at),
            r.step.clone().unwrap_or_default(),
            r.status.clone().unwrap_or_default(),
            r.attempts.map(|a| a.to_string()).unwrap_or_default(),
            time(r.accepted_at),
            r.smtp_reply.clone().unwrap_or_default(),
            r.message_id.clone().unwrap_or_default(),
        ];
        w.write_record(
            cells
                .iter()
                .map(|c| spreadsheet_cell(c))
                .collect::<Vec<_>>()
                .iter()
                .map(|c| c.as_ref()),
        )?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
