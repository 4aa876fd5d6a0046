//! `ambassador demo`: a whole rollout on embedded defaults and a simulated
//! clock. It drives the same code paths as the daemon (roster import,
//! campaign apply, planner, outbox worker, file transport); only time and the
//! people who complete the course are simulated.

use crate::app::App;
use crate::clock::{Clock, ManualClock, SharedClock};
use crate::config::{Settings, Transport};
use crate::roster::{self, ImportMode, ImportOptions};
use chrono::{DateTime, Duration, Utc};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const ROSTER: &[u8] = include_bytes!("../examples/roster.csv");
const ROSTER_MONTH2: &[u8] = include_bytes!("../examples/roster-month2.csv");
const CAMPAIGN: &str = include_str!("../config/campaigns/soar.toml");

/// One line of the demo's story.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoEvent {
    pub at: DateTime<Utc>,
    pub what: String,
}

/// What the demo did, for printing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoSummary {
    pub out_dir: PathBuf,
    pub database: PathBuf,
    pub outbox_dir: PathBuf,
    pub events: Vec<DemoEvent>,
    pub messages_by_step: Vec<(String, i64)>,
    pub enrolled: i64,
    pub completed: i64,
}

/// Runs the demo into `out_dir` (its demo.db and outbox/ are replaced).
pub async fn run(base: &Settings, out_dir: &Path) -> anyhow::Result<DemoSummary> {
    std::fs::create_dir_all(out_dir)?;
    let database = out_dir.join("demo.db");
    let outbox_dir = out_dir.join("outbox");
    for stale in [
        database.clone(),
        out_dir.join("demo.db-wal"),
        out_dir.join("demo.db-shm"),
    ] {
        let _ = std::fs::remove_file(stale);
    }
    let _ = std::fs::remove_dir_all(&outbox_dir);

    let mut settings = base.clone();
    settings.database.url = format!("sqlite://{}", database.display());
    settings.smtp.transport = Transport::File;
    settings.smtp.outbox_dir = outbox_dir.clone();
    settings.security.token_key_file = out_dir.join("token.key");
    settings.delivery.max_per_second = 0;
    settings.organisation.name = "Riverside Health".into();
    settings.smtp.from = "SOAR Ambassador <ambassador@riverside-health.example.org>".into();

    let campaign = crate::campaign::Campaign::from_toml(CAMPAIGN, "soar.toml")?;
    let launch = campaign.starts_at.with_timezone(&Utc);
    let clock = ManualClock::new(launch - Duration::days(3));
    let shared: SharedClock = Arc::new(clock.clone());
    let app = App::build(settings, shared).await?;
    let mut story = Story::default();

    let report = import(&app, ROSTER, "examples/roster.csv").await?;
    story.say(
        clock.now(),
        format!(
            "imported examples/roster.csv: {} people",
            report.counts.added
        ),
    );
    let templates = app.composer.templates();
    crate::campaign::apply(
        &app.store,
        &clock,
        &templates,
        CAMPAIGN,
        "config/campaigns/soar.toml",
    )
    .await?;
    story.say(
        clock.now(),
        format!(
            "applied campaign {} ({} steps), launching {}",
            campaign.slug,
            campaign.steps.len(),
            campaign.starts_at
        ),
    );

    let end = launch + Duration::days(45);
    let mut day = 0;
    while clock.now() < end {
        clock.advance(Duration::hours(1));
        let now = clock.now();
        let (plan, sent) = app.plan_and_deliver().await?;
        if plan.enrolled > 0 {
            story.say(now, format!("{} people enrolled", plan.enrolled));
        }
        if sent.sent > 0 {
            story.say(now, format!("{} messages sent", sent.sent));
        }
        let elapsed = (now - launch).num_days();
        if elapsed > day {
            day = elapsed;
            simulate_day(&app, &clock, day, &mut story).await?;
        }
    }
    let by_step = app.store.messages_by_step().await?;
    let (enrolled, completed) = app.store.enrolment_totals().await?;
    app.store.close().await;
    Ok(DemoSummary {
        out_dir: out_dir.to_path_buf(),
        database,
        outbox_dir,
        events: story.events,
        messages_by_step: by_step,
        enrolled,
        completed,
    })
}

/// Completions, a monthly roster sync, an exemption: what happens in a real rollout.
async fn simulate_day(
    app: &App,
    clock: &ManualClock,
    day: i64,
    story: &mut Story,
) -> anyhow::Result<()> {
    let now = clock.now();
    if day == 16 {
        let r = import(app, ROSTER_MONTH2, "examples/roster-month2.csv").await?;
        story.say(
            now,
            format!(
                "monthly HR sync: {} joined, {} left, {} changed",
                r.counts.added, r.counts.deactivated, r.counts.updated
            ),
        );
    }
    if day == 5 {
        let row = crate::campaign::find(&app.store, "soar-2027").await?;
        app.store
            .exempt(
                row.id,
                "marcus.webb@riverside-health.example.org",
                "trained at a previous employer",
                crate::clock::to_millis(now),
            )
            .await?;
        story.say(
            now,
            "exempted marcus.webb@… (trained at a previous employer)".into(),
        );
    }
    // Deterministic completions: most people finish within a few weeks; some never do.
    let people = app.store.list_staff(false).await?;
    let row = crate::campaign::find(&app.store, "soar-2027").await?;
    let mut finished = 0;
    for (i, person) in people.iter().enumerate() {
        let finishes_on = match i % 5 {
            0 => 3 + (i as i64 % 4),
            1 => 9 + (i as i64 % 5),
            2 => 20 + (i as i64 % 6),
            3 => 33,
            _ => continue, // never completes: reminders, then the manager hears
        };
        if finishes_on == day
            && app
                .store
                .complete_enrolment(row.id, person.id, crate::clock::to_millis(now), "demo")
                .await?
        {
            finished += 1;
        }
    }
    if finished > 0 {
        story.say(now, format!("{finished} people completed the course"));
    }
    Ok(())
}

async fn import(app: &App, bytes: &[u8], name: &str) -> anyhow::Result<roster::ImportReport> {
    let options = ImportOptions {
        source: "hr".into(),
        mode: ImportMode::Sync,
        dry_run: false,
        skip_invalid: false,
        force: false,
        file_name: name.into(),
    };
    Ok(roster::import(
        &app.store,
        app.clock.as_ref(),
        &app.settings.roster,
        bytes,
        &options,
        &mut |_, _| {},
    )
    .await?)
}

#[derive(Default)]
struct Story {
    events: Vec<DemoEvent>,
}

impl Story {
    fn say(&mut self, at: DateTime<Utc>, what: String) {
        self.events.push(DemoEvent { at, what });
    }
}
