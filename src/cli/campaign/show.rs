//! What `campaign show` prints: the campaign in words ("5 days", "Mon-Fri
//! 09:00-16:00"), how many people its audience matches, and its message
//! counts; or the same as JSON (docs/cli-json.md, "campaign show").

use super::Format;
use ambassador::campaign::{self, definition_of, describe, Campaign, SendWindow};
use ambassador::clock::from_millis;
use ambassador::store::campaign::CampaignRow;
use ambassador::store::Store;
use std::io::Write;

/// Prints one campaign in the chosen format.
pub async fn print(
    store: &Store,
    row: &CampaignRow,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let c = definition_of(row)?;
    let (audience, _) = campaign::audience_size(store, &c).await?;
    let counts = store.outbox_counts(Some(row.id)).await?;
    if format == Format::Json {
        let json = serde_json::json!({
            "slug": c.slug,
            "name": c.name,
            "status": row.status.as_str(),
            "starts_at": from_millis(row.starts_at).to_rfc3339(),
            "due": c.due.to_string(),
            "course_url": c.course_url,
            "video_url": c.video_url,
            "contact": c.contact.to_string(),
            "audience": c.audience,
            "audience_size": audience,
            "send_window": match &c.send_window {
                SendWindow::Always => serde_json::Value::Null,
                SendWindow::Hours(w) => serde_json::to_value(&w.spec)?,
            },
            "max_per_hour": c.max_per_hour.filter(|n| *n > 0),
            "spread": c.spread.map(|s| s.to_string()),
            "steps": steps_json(&c),
            "messages": counts,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        return Ok(());
    }
    writeln!(out, "{} — {}", c.slug, c.name)?;
    let lines = [
        ("status", row.status.as_str().to_string()),
        ("starts", c.starts_at.to_rfc3339()),
        ("due", describe::due(c.due)),
        ("course", c.course_url.clone()),
        ("contact", c.contact.to_string()),
        ("audience", describe::audience(&c.audience)),
        ("matches", people(audience)),
        ("send window", describe::window(&c.send_window)),
        ("hourly limit", describe::limit(c.max_per_hour)),
        ("spread", describe::spread(c.spread)),
    ];
    for (label, value) in lines {
        writeln!(out, "{:<13} {value}", format!("{label}:"))?;
    }
    writeln!(out, "steps:")?;
    for s in &c.steps {
        writeln!(out, "  {:<14} {}", s.name, describe::step(s))?;
    }
    writeln!(
        out,
        "messages:     {} sent, {} pending, {} sending, {} failed, {} undeliverable, {} cancelled, {} skipped",
        counts.sent,
        counts.pending,
        counts.sending,
        counts.failed,
        counts.undeliverable,
        counts.cancelled,
        counts.skipped
    )?;
    Ok(())
}

fn people(n: u64) -> String {
    match n {
        0 => "nobody active in the roster (warning: nobody will be enrolled)".into(),
        1 => "1 person".into(),
        n => format!("{n} people"),
    }
}

fn steps_json(c: &Campaign) -> Vec<serde_json::Value> {
    c.steps
        .iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name,
                "at": s.at.map(|a| a.to_string()),
                "on": s.on.map(|_| "completion"),
                "template": s.template,
                "to": match s.to {
                    campaign::Recipient::Person => "person",
                    campaign::Recipient::Manager => "manager",
                },
                "when": describe::step(s),
            })
        })
        .collect()
}
