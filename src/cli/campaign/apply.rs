//! What `campaign apply` prints: the diff, what it touches, how many people
//! the audience matches, and the outcome; or the same as JSON
//! (docs/cli-json.md, "campaign apply").

use super::Format;
use ambassador::campaign::ApplyOutcome;
use std::io::Write;

/// Prints an apply outcome in the chosen format.
pub fn print(outcome: &ApplyOutcome, format: Format, out: &mut impl Write) -> anyhow::Result<()> {
    if format == Format::Json {
        let json = serde_json::json!({
            "slug": outcome.slug,
            "outcome": word(outcome),
            "applied": outcome.applied,
            "audience": outcome.audience,
            "changes": outcome.changes,
            "effect": outcome.effect,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        return Ok(());
    }
    let slug = &outcome.slug;
    if !outcome.changes.is_empty() {
        writeln!(out, "campaign {slug}: changes")?;
        for change in &outcome.changes {
            writeln!(out, "  {change}")?;
        }
        let e = &outcome.effect;
        writeln!(
            out,
            "touches: {} open enrolments get a new due date, {} pending messages move, {} pending messages are cancelled, {} people are enrolled, {} people leave the campaign",
            e.due_dates, e.messages_moved, e.messages_cancelled, e.enrolled, e.removed
        )?;
    }
    match outcome.audience {
        0 => writeln!(
            out,
            "audience: nobody matches (warning: nobody will be enrolled until the roster or [audience] changes)"
        )?,
        1 => writeln!(out, "audience: 1 person matches")?,
        n => writeln!(out, "audience: {n} people match")?,
    }
    let what = match word(outcome) {
        "dry-run" => "dry run, nothing changed (apply without --dry-run to make these changes)",
        "updated" => "updated (messages already sent are not sent again)",
        other => other,
    };
    writeln!(out, "campaign {slug}: {what}")?;
    Ok(())
}

/// `created`, `updated`, `unchanged` or `dry-run`.
fn word(outcome: &ApplyOutcome) -> &'static str {
    match (outcome.created, outcome.changed, outcome.applied) {
        (_, false, _) => "unchanged",
        (_, true, false) => "dry-run",
        (true, true, true) => "created",
        (false, true, true) => "updated",
    }
}
