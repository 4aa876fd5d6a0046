//! `ambassador serve` and `ambassador demo`.

use ambassador::clock::SystemClock;
use ambassador::config::Settings;
use ambassador::App;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

pub async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    let app = App::build(settings, Arc::new(SystemClock)).await?;
    app.run_until_stopped(ambassador::shutdown::on_signal())
        .await?;
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
    Ok(ExitCode::SUCCESS)
}
