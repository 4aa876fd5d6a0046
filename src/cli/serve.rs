//! `ambassador serve` and `ambassador demo`.

use ambassador::clock::SystemClock;
use ambassador::config::Settings;
use ambassador::App;
use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// Builds the app, applies `campaigns.dir`, reloads on SIGHUP and runs
/// until SIGTERM. A bad campaign file at start is an error: the service
/// should not come up with campaigns other than the ones configured.
pub async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    for advice in settings.advisories() {
        tracing::warn!("{advice}");
    }
    let app = App::build(settings, Arc::new(SystemClock)).await?;
    ambassador::reload::apply_campaign_dir(&app)
        .await
        .context("cannot apply the campaign files in campaigns.dir")?;
    let stop = ambassador::shutdown::on_signal();
    let reloads = ambassador::reload::on_hangup(app.clone(), stop.clone());
    app.run_until_stopped(stop).await?;
    let _ = reloads.await;
    Ok(ExitCode::SUCCESS)
}

pub async fn demo(settings: &Settings, out_dir: &Path) -> anyhow::Result<ExitCode> {
    let summary = ambassador::demo::run(settings, out_dir).await?;
    println!("ambassador demo: a SOAR rollout on a simulated clock\n");
    for day in &summary.days {
        let mut line = format!("{}", day.date.format("%a %d %b %Y"));
        if day.sent > 0 {
            line.push_str(&format!("  {} sent", day.sent));
        }
        if day.opens + day.clicks > 0 {
            line.push_str(&format!("  {} opens, {} clicks", day.opens, day.clicks));
        }
        for note in &day.notes {
            line.push_str(&format!("  · {note}"));
        }
        println!("{line}");
    }
    println!("\nmessages sent by step:");
    for (step, n) in &summary.messages_by_step {
        println!("  {step:<14} {n}");
    }
    println!(
        "\n{} enrolled, {} completed",
        summary.enrolled, summary.completed
    );
    println!(
        "every message is an .eml file in {}",
        summary.outbox_dir.display()
    );
    println!(
        "the database is {} (try: AMBASSADOR__DATABASE__URL=sqlite://{} ambassador roster list)",
        summary.database.display(),
        summary.database.display()
    );
    println!(
        "\nto see it in the admin page, serve the demo's database:\n  AMBASSADOR__DATABASE__URL=sqlite://{} AMBASSADOR__SECURITY__TOKEN_KEY_FILE={} ambassador serve\nthen open {}/admin and sign in with an email and password:",
        summary.database.display(),
        summary.out_dir.join("token.key").display(),
        settings.http.public_url.trim_end_matches('/')
    );
    for account in &summary.accounts {
        let can = match account.role {
            ambassador::accounts::Role::Admin => {
                "everything, accounts and the audit trail included"
            }
            ambassador::accounts::Role::Coordinator => {
                "rosters, completions, exemptions, campaigns"
            }
            ambassador::accounts::Role::Viewer => "dashboards and reports only",
        };
        println!(
            "  {:<38} password {}  ({}: {can})",
            account.email, account.password, account.role
        );
    }
    Ok(ExitCode::SUCCESS)
}
