//! `ambassador demo`: a whole rollout on embedded defaults and a simulated
//! clock. It drives the same code paths as the daemon (roster import,
//! campaign apply, planner, outbox worker, file transport); only time and the
//! people who complete the course are simulated.
//!
//! The rollout's timeline ends today: the shipped campaign is moved by whole
//! weeks (the same weekdays, holidays moved with it) so that its
//! [`RUN_DAYS`] end within the last week, and the simulation runs up to now.
//! So `serve` over the demo's database shows the rollout as of now.

use crate::app::App;
use crate::campaign::words::people_count;
use crate::clock::to_millis;
use crate::clock::{Clock, ManualClock, SharedClock};
use crate::completions::{self, CompletionOptions};
use crate::config::{Settings, Transport};
use crate::roster::{self, ImportMode, ImportOptions};
use crate::tracking::{self, Claims, Hit, LinkKind};
use chrono::{DateTime, Duration, Utc};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const ROSTER: &[u8] = include_bytes!("../examples/roster.csv");
const ROSTER_MONTH2: &[u8] = include_bytes!("../examples/roster-month2.csv");
const CAMPAIGN: &str = include_str!("../config/campaigns/soar.toml");
/// Days from launch the rollout needs: every step, the last completions, the escalations.
pub const RUN_DAYS: i64 = 45;

/// One simulated day: what was sent and read, and what happened.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DemoDay {
    pub date: chrono::NaiveDate,
    pub sent: u64,
    pub opens: u64,
    pub clicks: u64,
    pub notes: Vec<String>,
}

/// What the demo did, for printing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoSummary {
    pub out_dir: PathBuf,
    pub database: PathBuf,
    pub outbox_dir: PathBuf,
    pub days: Vec<DemoDay>,
    pub messages_by_step: Vec<(String, i64)>,
    /// The report's figures, so the summary and report.html agree: exempted
    /// people and leavers who never completed are not counted.
    pub enrolled: u64,
    pub completed: u64,
    /// The sample admin and viewer, to sign in to the admin page with.
    pub accounts: Vec<DemoAccount>,
}

/// A sample account the demo made, and its password (random, shown once).
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoAccount {
    pub email: String,
    pub role: crate::accounts::Role,
    pub password: String,
}

/// The sample accounts: an admin (everything) and a viewer (dashboards and reports).
const DEMO_ACCOUNTS: [(&str, crate::accounts::Role); 2] = [
    (
        "admin@riverside-health.example.org",
        crate::accounts::Role::Admin,
    ),
    (
        "viewer@riverside-health.example.org",
        crate::accounts::Role::Viewer,
    ),
];

/// Makes the sample accounts with fresh random passwords, recorded in the
/// audit trail as the demo's doing.
async fn sample_accounts(app: &App, now: DateTime<Utc>) -> anyhow::Result<Vec<DemoAccount>> {
    use rand::RngCore;
    let mut made = Vec::new();
    for (email, role) in DEMO_ACCOUNTS {
        let mut bytes = [0u8; 9];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let password = hex::encode(bytes);
        let typed = password.clone();
        let hash =
            tokio::task::spawn_blocking(move || crate::accounts::password::hash(&typed)).await??;
        let address = crate::domain::EmailAddress::parse(email)?;
        let at = to_millis(now);
        crate::accounts::create(&app.store, &address, role, Some(&hash), "demo", at).await?;
        crate::audit::record(
            &app.store,
            at,
            &crate::audit::Actor::cli("demo"),
            crate::audit::Action::AccountAdd,
            email,
            crate::store::AuditOutcome::Success,
            serde_json::json!({ "role": role, "password": true }),
        )
        .await;
        made.push(DemoAccount {
            email: email.into(),
            role,
            password,
        });
    }
    Ok(made)
}

/// Runs the demo into `out_dir` (its demo.db and outbox/ are replaced),
/// its timeline ending now.
pub async fn run(base: &Settings, out_dir: &Path) -> anyhow::Result<DemoSummary> {
    run_until(base, out_dir, Utc::now()).await
}

/// The shipped campaign moved by whole weeks so that its first
/// [`RUN_DAYS`] end at most a week before `now`: its text and its launch.
pub fn campaign_ending_by(now: DateTime<Utc>) -> anyhow::Result<(String, DateTime<Utc>)> {
    use chrono::TimeZone;
    let mut doc: toml::Table = CAMPAIGN.parse()?;
    let text = |v: Option<&toml::Value>, what: &str| {
        v.and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("the demo's campaign has no {what}"))
    };
    let starts_at = DateTime::parse_from_rfc3339(&text(doc.get("starts_at"), "starts_at")?)?;
    let window = doc
        .get_mut("send_window")
        .and_then(|w| w.as_table_mut())
        .ok_or_else(|| anyhow::anyhow!("the demo's campaign has no send_window"))?;
    let tz: chrono_tz::Tz = text(window.get("time_zone"), "send_window.time_zone")?
        .parse()
        .map_err(|e| anyhow::anyhow!("the demo's campaign: {e}"))?;
    const WEEK: i64 = 7 * 86_400;
    let behind = now - (starts_at.with_timezone(&Utc) + Duration::days(RUN_DAYS));
    let shift = Duration::days(7 * behind.num_seconds().div_euclid(WEEK));
    // The same local time of day, whatever daylight saving does in between.
    let local = starts_at.with_timezone(&tz).naive_local() + shift;
    let launch = tz
        .from_local_datetime(&local)
        .earliest()
        .ok_or_else(|| anyhow::anyhow!("the demo's launch {local} does not exist in {tz}"))?;
    if let Some(holidays) = window.get_mut("holidays").and_then(|h| h.as_array_mut()) {
        for day in holidays.iter_mut() {
            let date: chrono::NaiveDate = text(Some(day), "holiday date")?.parse()?;
            *day = toml::Value::String((date + shift).to_string());
        }
    }
    doc.insert(
        "starts_at".into(),
        toml::Value::String(launch.fixed_offset().to_rfc3339()),
    );
    Ok((toml::to_string(&doc)?, launch.with_timezone(&Utc)))
}

/// As [`run`], with the timeline ending at `ends` (tests pin it).
pub async fn run_until(
    base: &Settings,
    out_dir: &Path,
    ends: DateTime<Utc>,
) -> anyhow::Result<DemoSummary> {
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
    settings.report.recipients = vec![crate::domain::EmailAddress::parse(
        "leadership@riverside-health.example.org",
    )?];

    let (campaign_text, launch) = campaign_ending_by(ends)?;
    let campaign = crate::campaign::Campaign::from_toml(&campaign_text, "soar.toml")?;
    let clock = ManualClock::new(launch - Duration::days(3));
    let shared: SharedClock = Arc::new(clock.clone());
    let app = App::build(settings, shared).await?;
    let mut story = Story::default();

    let report = import(&app, ROSTER, "examples/roster.csv").await?;
    story.say(
        clock.now(),
        format!(
            "imported examples/roster.csv: {}",
            people_count(report.counts.added)
        ),
    );
    let templates = app.composer.templates();
    crate::campaign::apply(
        &app.store,
        &clock,
        &templates,
        &campaign_text,
        "config/campaigns/soar.toml",
        &crate::campaign::ApplyOptions {
            dry_run: false,
            allow_empty: false,
            org_tz: app.settings.organisation.time_zone.0,
        },
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

    // Up to now, never past it: what is recorded has happened "as of now".
    let mut day = 0;
    while clock.now() + Duration::hours(1) <= ends {
        clock.advance(Duration::hours(1));
        let now = clock.now();
        let (plan, sent) = app.plan_and_deliver().await?;
        if plan.enrolled > 0 {
            story.say(now, format!("{} enrolled", people_count(plan.enrolled)));
        }
        if sent.sent > 0 {
            story.day(now).sent += sent.sent;
        }
        simulate_reading(&app, now - Duration::hours(1), now, &mut story).await?;
        let elapsed = (now - launch).num_days();
        if elapsed > day {
            day = elapsed;
            simulate_day(&app, &clock, day, &mut story).await?;
        }
    }
    let row = crate::campaign::find(&app.store, &campaign.slug).await?;
    let report = crate::report::build(
        &app.store,
        &row,
        clock.now(),
        app.settings.report.min_group_size,
    )
    .await?;
    let report_path = out_dir.join("report.html");
    std::fs::write(&report_path, crate::report::render::html(&report))?;
    crate::report::weekly::send_weekly(&app.reports(), true).await?;
    story.say(
        clock.now(),
        format!(
            "wrote {} and the weekly summary email",
            report_path.display()
        ),
    );
    let accounts = sample_accounts(&app, clock.now()).await?;
    let by_step = app.store.messages_by_step().await?;
    let (enrolled, completed) = (report.population.enrolled, report.outcome.completed);
    app.store.close().await;
    Ok(DemoSummary {
        out_dir: out_dir.to_path_buf(),
        database,
        outbox_dir,
        days: story.days.into_values().collect(),
        messages_by_step: by_step,
        enrolled,
        completed,
        accounts,
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
        let marcus =
            crate::domain::EmailAddress::parse("marcus.webb@riverside-health.example.org")?;
        crate::campaign::exempt(
            &app.store,
            &row,
            &marcus,
            "trained at a previous employer",
            crate::clock::to_millis(now),
            &crate::store::exemption::Actor::cli("demo"),
        )
        .await?;
        story.say(
            now,
            "exempted marcus.webb@… (trained at a previous employer)".into(),
        );
    }
    // Deterministic completions, arriving as the learning network's report.
    let people = app.store.list_staff(false).await?;
    let mut csv = String::from("Email,Completion Date,Status\n");
    for (i, person) in people.iter().enumerate() {
        let finishes_on = match i % 5 {
            0 => 3 + (i as i64 % 4),
            1 => 9 + (i as i64 % 5),
            2 => 20 + (i as i64 % 6),
            3 => 33,
            _ => continue, // never completes: reminders, then the manager hears
        };
        if finishes_on == day {
            csv.push_str(&format!(
                "{},{},Completed\n",
                person.email,
                now.format("%m/%d/%Y")
            ));
        }
    }
    let options = CompletionOptions {
        campaign: Some("soar-2027".into()),
        dry_run: false,
        file_name: format!("train-report-day-{day}.csv"),
    };
    let tz = app.settings.organisation.time_zone.0;
    let report = completions::import(
        &app.store,
        clock,
        tz,
        &app.settings.completions.columns,
        csv.as_bytes(),
        &options,
    )
    .await?;
    if report.newly_completed > 0 {
        story.say(
            now,
            format!(
                "TRAIN completion report: {} completed the course",
                people_count(report.newly_completed)
            ),
        );
    }
    Ok(())
}

/// Opens and clicks through the same path the HTTP routes use: most people
/// open, some through an image proxy, a third click, and a scanner probes.
async fn simulate_reading(
    app: &App,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    story: &mut Story,
) -> anyhow::Result<()> {
    const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1";
    const PROXY: &str =
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
    let (mut opens, mut clicks) = (0u64, 0u64);
    for (i, (outbox_id, _)) in app
        .store
        .accepted_between(to_millis(from), to_millis(to))
        .await?
        .into_iter()
        .enumerate()
    {
        let hit = |kind, user_agent, head_request| Hit {
            claims: Claims { outbox_id, kind },
            at: to,
            user_agent,
            head_request,
        };
        match i % 10 {
            0..=5 => tracking::record(&app.store, &hit(LinkKind::Open, PHONE, false)).await?,
            6 | 7 => tracking::record(&app.store, &hit(LinkKind::Open, PROXY, false)).await?,
            _ => None,
        };
        opens += u64::from(i % 10 < 8);
        if i % 3 == 0 {
            tracking::record(&app.store, &hit(LinkKind::Course, PHONE, false)).await?;
            clicks += 1;
        }
        if i % 7 == 0 {
            tracking::record(
                &app.store,
                &hit(LinkKind::Course, "Mozilla/5.0 Proofpoint", true),
            )
            .await?;
        }
    }
    if opens + clicks > 0 {
        let d = story.day(to);
        d.opens += opens;
        d.clicks += clicks;
    }
    Ok(())
}

async fn import(app: &App, bytes: &[u8], name: &str) -> anyhow::Result<roster::ImportReport> {
    let options = ImportOptions {
        source: crate::store::RosterSource::hr(),
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
    days: std::collections::BTreeMap<chrono::NaiveDate, DemoDay>,
}

impl Story {
    fn day(&mut self, at: DateTime<Utc>) -> &mut DemoDay {
        let date = at.date_naive();
        self.days.entry(date).or_insert_with(|| DemoDay {
            date,
            ..DemoDay::default()
        })
    }

    fn say(&mut self, at: DateTime<Utc>, what: String) {
        self.day(at).notes.push(what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike, Weekday};

    #[test]
    fn the_campaign_moves_by_whole_weeks_to_end_within_the_last_week() {
        let ny = chrono_tz::America::New_York;
        for now in [
            "2026-11-30T14:43:00Z",
            "2026-03-20T03:00:00Z",
            "2027-02-25T14:00:00Z",
            "2031-07-04T23:59:00Z",
        ] {
            let now: DateTime<Utc> = now.parse().unwrap();
            let (text, launch) = campaign_ending_by(now).unwrap();
            let end = launch + Duration::days(RUN_DAYS);
            assert!(
                end <= now && now < end + Duration::days(7),
                "{now}: {launch}"
            );
            let local = launch.with_timezone(&ny);
            assert_eq!(local.weekday(), Weekday::Mon, "{now}: {local}");
            assert_eq!((local.hour(), local.minute()), (9, 0), "{now}: {local}");
            let campaign = crate::campaign::Campaign::from_toml(&text, "soar.toml").unwrap();
            assert_eq!(campaign.starts_at.with_timezone(&Utc), launch);
            let doc: toml::Table = text.parse().unwrap();
            let holidays = doc["send_window"]["holidays"].as_array().unwrap();
            assert_eq!(holidays.len(), 2);
            for day in holidays {
                let day: chrono::NaiveDate = day.as_str().unwrap().parse().unwrap();
                assert_eq!(day.weekday(), Weekday::Mon, "{now}: {day}");
                assert!(day > local.date_naive() && day < end.date_naive());
            }
        }
    }
}
