//! Reports from a known history: every figure asserted exactly, in every
//! format. The history: six people plus a small department; one address
//! bounces, opens and clicks by people, proxies and scanners, two
//! completions, an exemption and a leaver.

mod common;

use ambassador::clock::{to_millis, Clock};
use ambassador::report::{self, render, Report};
use ambassador::store::report::ReportKind;
use ambassador::store::{CampaignStatus, ReportOutcome};
use ambassador::tracking::LinkKind;
use chrono::{DateTime, Duration, Utc};
use common::app::{launch, person, TestApp, CAMPAIGN, HEADER};
use common::smtp::{Faults, SmtpServer};
use mail_parser::MimeHeaders;

const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1";
const PROXY: &str = "Mozilla/5.0 (via ggpht.com GoogleImageProxy)";

fn day(n: i64) -> DateTime<Utc> {
    launch() + Duration::days(n)
}

fn roster(without_fay: bool) -> String {
    let mut lines = vec![
        person(1, "Ann", "A", "Procurement", "Buyer", ""),
        person(2, "Bob", "B", "Procurement", "Buyer", ""),
        person(3, "Cy", "C", "Procurement", "Buyer", ""),
        person(4, "Dee", "D", "Procurement", "Buyer", ""),
        person(5, "Eve", "E", "Procurement", "Buyer", ""),
        person(7, "Gus", "G", "\"=1+1 Supply Chain\"", "Buyer", ""),
    ];
    if !without_fay {
        lines.push(person(6, "Fay", "F", "Supply Chain", "Buyer", ""));
    }
    format!("{HEADER}\n{}\n", lines.join("\n"))
}

/// Builds the history and returns the app, as of day 16.
async fn history() -> TestApp {
    let faults = Faults::default().reject_rcpt_550("eve.e@hospital.example.org");
    let t = TestApp::spawn_with(faults, |s| {
        s.report.min_group_size = 3;
        s.report.recipients =
            vec![ambassador::domain::EmailAddress::parse("board@hospital.example.org").unwrap()];
    })
    .await;
    t.import(&roster(false)).await;
    t.apply(&CAMPAIGN.replace(
        "include = { department = [\"Supply Chain\", \"Procurement\"] }",
        "",
    ))
    .await;
    t.tick_at(day(0)).await;
    t.hit("ann.a", "announcement", LinkKind::Open, PHONE, day(1))
        .await;
    t.hit("ann.a", "announcement", LinkKind::Course, PHONE, day(1))
        .await;
    t.hit("bob.b", "announcement", LinkKind::Open, PROXY, day(1))
        .await;
    t.hit_request(
        "cy.c",
        "announcement",
        LinkKind::Course,
        PHONE,
        true,
        day(1),
    )
    .await; // a scanner's HEAD
    t.complete("ann.a", day(2)).await;
    t.tick_at(day(2)).await;
    t.clock.set(day(3));
    t.store()
        .exempt(
            t.campaign_id("test").await,
            t.staff_id("dee.d@hospital.example.org").await,
            "on leave",
            to_millis(day(3)),
            &ambassador::store::exemption::Actor::cli("test"),
        )
        .await
        .unwrap();
    t.tick_at(day(7)).await;
    t.clock.set(day(8));
    t.import(&roster(true)).await;
    t.tick_at(day(8)).await;
    t.hit("cy.c", "announcement", LinkKind::Course, PHONE, day(9))
        .await;
    t.complete("bob.b", day(10)).await;
    t.tick_at(day(10)).await;
    t.tick_at(day(12)).await;
    t.tick_at(day(16)).await;
    t
}

/// A completion before any announcement was accepted (here: the relay
/// refused it) still counts in the median, from the enrolment.
#[tokio::test]
async fn the_median_shows_when_the_only_completer_never_got_the_announcement() {
    let faults = Faults::default().reject_rcpt_550("ann.a@hospital.example.org");
    let t = TestApp::spawn_with(faults, |_| {}).await;
    t.import(&roster(false)).await;
    t.apply(&CAMPAIGN.replace(
        "include = { department = [\"Supply Chain\", \"Procurement\"] }",
        "",
    ))
    .await;
    t.tick_at(day(0)).await;
    t.complete("ann.a", day(2)).await;

    let r = build(&t, day(3)).await;

    assert_eq!(r.outcome.completed, 1);
    assert_eq!(r.outcome.median_days_to_complete, Some(2.0));
}

async fn build(t: &TestApp, as_of: DateTime<Utc>) -> Report {
    let row = ambassador::campaign::find(t.store(), "test").await.unwrap();
    report::build(t.store(), &row, as_of, 3).await.unwrap()
}

#[tokio::test]
async fn every_figure_of_a_known_history_is_exact() {
    let t = history().await;
    let r = build(&t, day(16)).await;
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["population"],
        serde_json::json!({ "enrolled": 5, "exempted": 1, "left": 1 })
    );
    assert_eq!(
        json["reach"],
        serde_json::json!({ "messages_sent": 11, "people_reached": 4, "people_undeliverable": 1 })
    );
    assert_eq!(
        json["engagement"],
        serde_json::json!({ "opened_human": 1, "opened_all": 2, "clicked_human": 2, "clicked_all": 2 })
    );
    assert_eq!(
        json["outcome"],
        serde_json::json!({
            "completed": 2, "completion_rate": 0.4, "completed_on_time": 2, "overdue": 3,
            "median_days_to_complete": 6.0, "reminders_per_completion": 2.5, "clicked_not_completed": 1
        })
    );
    let departments = &json["breakdowns"]["department"];
    assert_eq!(departments[0]["group"], "=1+1 Supply Chain");
    assert_eq!(
        (
            departments[0]["suppressed"].as_bool(),
            departments[0]["enrolled_shown"].as_str(),
            &departments[0]["completed"]
        ),
        (Some(true), Some("<3"), &serde_json::Value::Null)
    );
    assert_eq!(
        departments[1],
        serde_json::json!({ "group": "Procurement", "suppressed": false, "enrolled_shown": "4", "enrolled": 4, "completed": 2, "overdue": 2, "completion_rate": 0.5 })
    );
    let weekly: Vec<(u64, u64)> = r.weekly.iter().map(|w| (w.completed, w.target)).collect();
    assert_eq!(weekly, vec![(1, 0), (2, 5), (2, 5)]);
    assert_eq!(r.completed_last_7_days, 1);
}

#[tokio::test]
async fn a_report_as_of_an_earlier_day_shows_that_day() {
    let t = history().await;
    let r = build(&t, day(5)).await;
    assert_eq!(
        (
            r.population.enrolled,
            r.population.exempted,
            r.population.left
        ),
        (6, 1, 0)
    );
    assert_eq!(
        (
            r.outcome.completed,
            r.outcome.overdue,
            r.reach.messages_sent
        ),
        (1, 0, 6)
    );
}

#[tokio::test]
async fn the_csv_round_trips_and_neutralises_formulas() {
    let t = history().await;
    let text = render::csv(&build(&t, day(16)).await).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    let find = |section: &str, group: &str, metric: &str| {
        rows.iter()
            .find(|r| r[0] == section && r[1] == group && r[2] == metric)
            .map(|r| r[3].clone())
    };
    assert_eq!(find("outcome", "", "completed").as_deref(), Some("2"));
    assert_eq!(
        find("outcome", "", "completion_rate").as_deref(),
        Some("0.4")
    );
    assert_eq!(
        find("department", "Procurement", "overdue").as_deref(),
        Some("2")
    );
    assert_eq!(
        find("department", "'=1+1 Supply Chain", "enrolled").as_deref(),
        Some("<3"),
        "the formula is neutralised"
    );
    assert!(!rows.iter().any(|r| r.iter().any(|c| c.starts_with('='))));
}

#[tokio::test]
async fn the_html_report_parses_and_shows_the_figures_and_charts() {
    let t = history().await;
    let html = render::html(&build(&t, day(16)).await);
    let doc = scraper::Html::parse_document(&html);
    assert!(doc.errors.is_empty(), "{:?}", doc.errors);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    let rows: Vec<String> = doc
        .select(&sel("tr"))
        .map(|r| r.text().collect::<Vec<_>>().join("|"))
        .collect();
    assert!(
        rows.contains(&"Completed|2 (40.0%)".to_string()),
        "{rows:?}"
    );
    assert!(rows.contains(&"Overdue|3".to_string()), "{rows:?}");
    assert_eq!(
        doc.select(&sel("figure svg")).count(),
        2,
        "completion curve and department bars"
    );
    assert!(doc.select(&sel("script")).next().is_none());
    assert!(html.contains("=1+1 Supply Chain") && !html.contains("<script"));
}

#[tokio::test]
async fn the_weekly_summary_has_the_figures_and_an_inline_chart_and_goes_once() {
    let t = history().await;
    let first = report::weekly::send_weekly(&t.app.reports(), false)
        .await
        .unwrap();
    assert_eq!(first[0].outcome, ReportOutcome::Sent);
    // A second instance on the same database, the same week: nothing more.
    let other = ambassador::App::with_store(
        (*t.app.settings).clone(),
        t.app.clock.clone(),
        t.store().clone(),
    )
    .unwrap();
    assert_eq!(
        report::weekly::send_weekly(&other.reports(), false)
            .await
            .unwrap()[0]
            .outcome,
        ReportOutcome::AlreadySent
    );
    let all = t.smtp.messages();
    let weekly: Vec<_> = all
        .iter()
        .filter(|m| m.recipients == ["board@hospital.example.org"])
        .collect();
    assert_eq!(weekly.len(), 1);
    let parsed = weekly[0].parsed();
    let text = parsed.body_text(0).unwrap();
    assert!(text.contains("Completed: 2 (+1 since last week)"), "{text}");
    assert!(text.contains("Overdue: 3"), "{text}");
    let html = parsed.body_html(0).unwrap();
    assert!(
        html.contains("src=\"cid:completion-chart\"")
            && html.contains("alt=\"Completion chart: 2 people completed"),
        "{html}"
    );
    let image = parsed
        .attachments()
        .find(|a| a.content_type().map(|c| c.subtype()) == Some(Some("png")))
        .expect("an inline PNG");
    assert!(image.contents().starts_with(b"\x89PNG"));
    assert_eq!(image.content_id(), Some("completion-chart"));
}

const BOARD: &str = "board@hospital.example.org";

/// Another instance on the same database and clock, with changed settings.
fn instance(t: &TestApp, tweak: impl FnOnce(&mut ambassador::config::Settings)) -> ambassador::App {
    let mut settings = (*t.app.settings).clone();
    tweak(&mut settings);
    ambassador::App::with_store(settings, t.app.clock.clone(), t.store().clone()).unwrap()
}

/// One retry pass of `app`: the (report key, outcome) of each summary sent again.
async fn resend(app: &ambassador::App) -> Vec<(String, ReportOutcome)> {
    report::resend::resend_unsent(&app.reports()).await.unwrap()
}

fn past_the_lease(t: &TestApp) {
    t.clock
        .advance(t.app.settings.delivery.lease.as_chrono() + Duration::seconds(1));
}

fn mail_to(t: &TestApp, to: &str) -> usize {
    t.smtp
        .messages()
        .iter()
        .filter(|m| m.recipients == [to])
        .count()
}

#[tokio::test]
async fn a_refused_weekly_summary_is_sent_again_after_a_lease_and_only_so_often() {
    let t = history().await;
    let refusing = SmtpServer::start(Faults::default().reject_rcpt_550(BOARD)).await;
    let broken = instance(&t, |s| s.smtp.port = refusing.port());
    let first = report::weekly::send_weekly(&broken.reports(), false)
        .await
        .unwrap();
    assert!(
        matches!(first[0].outcome, ReportOutcome::Failed(_)),
        "{first:?}"
    );
    assert!(
        resend(&t.app).await.is_empty(),
        "within its lease the claim is left to its holder"
    );
    for attempt in 2..=report::resend::MAX_ATTEMPTS {
        past_the_lease(&t);
        let again = resend(&broken).await;
        assert_eq!(again.len(), 1, "attempt {attempt}: {again:?}");
        assert_eq!(again[0].0, first[0].key);
        assert!(matches!(again[0].1, ReportOutcome::Failed(_)), "{again:?}");
    }
    past_the_lease(&t);
    assert!(resend(&t.app).await.is_empty(), "no attempts are left");
    assert_eq!(mail_to(&t, BOARD), 0);
    assert_eq!(
        report::weekly::send_weekly(&t.app.reports(), false)
            .await
            .unwrap()[0]
            .outcome,
        ReportOutcome::AlreadySent,
        "the cron does not start the week over"
    );
}

#[tokio::test]
async fn a_cancelled_campaigns_unsent_summary_is_not_sent_again() {
    let t = history().await;
    let refusing = SmtpServer::start(Faults::default().reject_rcpt_550(BOARD)).await;
    let broken = instance(&t, |s| s.smtp.port = refusing.port());
    let first = report::weekly::send_weekly(&broken.reports(), false)
        .await
        .unwrap();
    assert!(
        matches!(first[0].outcome, ReportOutcome::Failed(_)),
        "{first:?}"
    );
    t.store()
        .set_campaign_status("test", CampaignStatus::Cancelled, to_millis(t.clock.now()))
        .await
        .unwrap();
    past_the_lease(&t);
    assert!(resend(&t.app).await.is_empty());
    assert_eq!(mail_to(&t, BOARD), 0);
}

/// Two survivors race for the takeover on two worker threads, each on its own task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_claimed_by_an_instance_that_died_is_sent_once_by_a_survivor() {
    let t = history().await;
    let refusing = SmtpServer::start(Faults::default().reject_rcpt_550(BOARD)).await;
    let broken = instance(&t, |s| s.smtp.port = refusing.port());
    let failed = report::weekly::send_weekly(&broken.reports(), false)
        .await
        .unwrap();
    // The instance that died: claimed, and never got as far as recording an outcome.
    let campaign = t.campaign_id("test").await;
    let now = to_millis(t.clock.now());
    let dead = ReportKind::Weekly;
    assert!(t
        .store()
        .claim_weekly(
            "test:died",
            dead,
            campaign,
            "dead-instance",
            now,
            &[BOARD.into()]
        )
        .await
        .unwrap());
    past_the_lease(&t);
    let other = instance(&t, |_| {});
    let survivors = [t.app.clone(), other].map(|app| {
        tokio::spawn(async move { report::resend::resend_unsent(&app.reports()).await.unwrap() })
    });
    let mut sent: Vec<(String, ReportOutcome)> = Vec::new();
    for survivor in survivors {
        sent.extend(survivor.await.unwrap());
    }
    sent.sort();
    assert_eq!(
        sent,
        vec![
            (failed[0].key.clone(), ReportOutcome::Sent),
            ("test:died".to_string(), ReportOutcome::Sent)
        ],
        "each unsent summary is taken over by one instance"
    );
    assert_eq!(mail_to(&t, BOARD), 2);
    // The dead instance comes back and records its stale outcome: ignored.
    t.store()
        .finish_weekly(
            "test:died",
            "dead-instance",
            now,
            &ReportOutcome::Failed("too late".into()),
        )
        .await
        .unwrap();
    let outcome: String =
        sqlx::query_scalar("SELECT outcome FROM weekly_reports WHERE report_key = 'test:died'")
            .fetch_one(t.store().pool())
            .await
            .unwrap();
    assert_eq!(outcome, "sent");
    past_the_lease(&t);
    assert!(resend(&t.app).await.is_empty());
}

#[tokio::test]
async fn an_unsent_summary_a_day_old_or_sent_by_hand_is_not_retried() {
    let t = history().await;
    let refusing = SmtpServer::start(Faults::default().reject_rcpt_550(BOARD)).await;
    let broken = instance(&t, |s| s.smtp.port = refusing.port());
    let manual = report::weekly::send_weekly(&broken.reports(), true)
        .await
        .unwrap();
    assert!(
        matches!(manual[0].outcome, ReportOutcome::Failed(_)),
        "{manual:?}"
    );
    past_the_lease(&t);
    assert!(
        resend(&t.app).await.is_empty(),
        "a manual send reported its failure to the admin who ran it"
    );
    let scheduled = report::weekly::send_weekly(&broken.reports(), false)
        .await
        .unwrap();
    assert!(matches!(scheduled[0].outcome, ReportOutcome::Failed(_)));
    t.clock.advance(Duration::hours(25));
    assert!(
        resend(&t.app).await.is_empty(),
        "yesterday's summary is news no longer"
    );
    assert_eq!(mail_to(&t, BOARD), 0);
}

#[tokio::test]
async fn the_evidence_export_lists_every_message_and_the_completion() {
    let t = history().await;
    let campaign = t.campaign_id("test").await;
    let text = render::evidence_csv(&t.store().evidence(campaign).await.unwrap()).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let bob: Vec<_> = rows
        .iter()
        .filter(|r| &r[0] == "bob.b@hospital.example.org")
        .collect();
    let steps: Vec<&str> = bob.iter().map(|r| &r[10]).collect();
    assert_eq!(steps, vec!["announcement", "reminder-1", "thanks"]);
    assert!(bob
        .iter()
        .all(|r| &r[11] == "sent" && r[14].starts_with("250") && !r[15].is_empty()));
    assert_eq!(&bob[0][7], "report", "how completion was recorded");
    let eve = rows
        .iter()
        .find(|r| &r[0] == "eve.e@hospital.example.org")
        .unwrap();
    assert_eq!(&eve[11], "undeliverable");
    assert!(eve[14].contains("550"));
}

const MIA: &str = "mia.boss@hospital.example.org";
const RAJ: &str = "raj.chief@hospital.example.org";

/// Buyers in Procurement: (id, first name, last name, manager's address).
fn team_roster(people: &[(u32, &str, &str, &str)]) -> String {
    let rows: Vec<String> = people
        .iter()
        .map(|&(id, first, last, manager)| person(id, first, last, "Procurement", "Buyer", manager))
        .collect();
    format!("{HEADER}\n{}\n", rows.join("\n"))
}

#[tokio::test]
async fn each_manager_gets_their_teams_status_once_a_week() {
    let t = TestApp::spawn().await;
    t.import(&team_roster(&[
        (1, "Ann", "A", MIA),
        (2, "Bob", "B", MIA),
        (3, "Cy", "C", RAJ),
    ]))
    .await;
    t.apply(CAMPAIGN).await;
    t.tick_at(day(0)).await;
    t.complete("ann.a", day(2)).await;
    t.clock.set(day(16));
    let sent = report::team::send_team_digests(&t.app.reports())
        .await
        .unwrap();
    assert_eq!(sent.len(), 2);
    assert!(
        report::team::send_team_digests(&t.app.reports())
            .await
            .unwrap()
            .is_empty(),
        "once per manager per week"
    );
    let mail = t.smtp.messages();
    let mia = mail
        .iter()
        .find(|m| m.recipients == ["mia.boss@hospital.example.org"])
        .unwrap();
    let text = mia.parsed().body_text(0).unwrap().to_string();
    assert!(
        text.contains("1 completed, 0 still to do, 1 overdue"),
        "{text}"
    );
    assert!(
        text.contains("Ann A <ann.a@hospital.example.org>: completed")
            && text.contains("Bob B <bob.b@hospital.example.org>: overdue"),
        "{text}"
    );
    assert!(!text.contains("Cy C"), "only the manager's own people");
}

#[tokio::test]
async fn a_campaign_with_nobody_enrolled_reports_zeros() {
    let t = TestApp::spawn().await;
    t.apply(CAMPAIGN).await;
    let r = build(&t, day(16)).await;
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["population"],
        serde_json::json!({ "enrolled": 0, "exempted": 0, "left": 0 })
    );
    assert_eq!(
        json["reach"],
        serde_json::json!({ "messages_sent": 0, "people_reached": 0, "people_undeliverable": 0 })
    );
    assert_eq!(
        json["engagement"],
        serde_json::json!({ "opened_human": 0, "opened_all": 0, "clicked_human": 0, "clicked_all": 0 })
    );
    assert_eq!(
        json["outcome"],
        serde_json::json!({
            "completed": 0, "completion_rate": 0.0, "completed_on_time": 0, "overdue": 0,
            "median_days_to_complete": null, "reminders_per_completion": null, "clicked_not_completed": 0
        })
    );
    for dimension in ["department", "facility", "role", "manager"] {
        assert_eq!(json["breakdowns"][dimension], serde_json::json!([]));
    }
    let weekly: Vec<(u64, u64)> = r.weekly.iter().map(|w| (w.completed, w.target)).collect();
    assert_eq!(weekly, vec![(0, 0), (0, 0), (0, 0)]);
    assert_eq!(r.completed_last_7_days, 0);
    assert!(render::html(&r).contains("<html"));
}

#[tokio::test]
async fn the_median_of_an_odd_count_is_the_middle_one() {
    let t = history().await;
    // Ann after 2 days, Bob after 10, Cy after 14: the middle one is 10.
    t.complete("cy.c", day(14)).await;
    let r = build(&t, day(16)).await;
    assert_eq!(r.outcome.completed, 3);
    assert_eq!(r.outcome.median_days_to_complete, Some(10.0));
    // As of day 5 only Ann had completed: a count of one.
    let r = build(&t, day(5)).await;
    assert_eq!(r.outcome.median_days_to_complete, Some(2.0));
}

#[tokio::test]
async fn the_weekly_series_stops_at_520_weeks_and_is_empty_before_the_start() {
    let t = history().await;
    let far = build(&t, launch() + Duration::weeks(600)).await;
    assert_eq!(far.weekly.len(), 520);
    let last = far.weekly.last().unwrap();
    assert_eq!(last.week_ending, launch() + Duration::weeks(520));
    assert_eq!((last.completed, last.target), (2, 5));
    let first = &far.weekly[0];
    assert_eq!((first.completed, first.target), (1, 0));
    let before = build(&t, launch() - Duration::days(1)).await;
    assert!(before.weekly.is_empty());
    assert_eq!(before.population.enrolled, 0);
}

#[tokio::test]
async fn a_refused_team_digest_is_sent_again_to_that_manager_only() {
    let t = TestApp::spawn().await;
    t.import(&team_roster(&[(1, "Ann", "A", MIA), (2, "Cy", "C", RAJ)]))
        .await;
    t.apply(CAMPAIGN).await;
    t.tick_at(day(0)).await;
    t.clock.set(day(16));
    let refusing =
        SmtpServer::start(Faults::default().reject_rcpt_550("mia.boss@hospital.example.org")).await;
    let broken = instance(&t, |s| s.smtp.port = refusing.port());
    let mut first = report::team::send_team_digests(&broken.reports())
        .await
        .unwrap();
    first.sort();
    assert_eq!(first[0].0, "mia.boss@hospital.example.org");
    assert!(matches!(first[0].1, ReportOutcome::Failed(_)), "{first:?}");
    assert_eq!(
        first[1],
        ("raj.chief@hospital.example.org".into(), ReportOutcome::Sent)
    );
    past_the_lease(&t);
    let again = resend(&t.app).await;
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(again[0].0.contains("mia.boss@hospital.example.org"));
    assert_eq!(again[0].1, ReportOutcome::Sent);
    assert_eq!(
        mail_to(&t, "raj.chief@hospital.example.org"),
        0,
        "Raj had his"
    );
    assert_eq!(mail_to(&t, "mia.boss@hospital.example.org"), 1);
    let mail = t.smtp.messages();
    let mia = mail
        .iter()
        .find(|m| m.recipients == ["mia.boss@hospital.example.org"])
        .expect("Mia's digest");
    let text = mia.parsed().body_text(0).unwrap().to_string();
    assert!(
        text.contains("Ann A <ann.a@hospital.example.org>: overdue") && !text.contains("Cy C"),
        "{text}"
    );
}

/// Runs the weekly jobs of `apps` side by side, each on its own task, so a
/// multi-threaded runtime runs them at once: planning and delivery (the
/// manager digest step), the weekly summary and the team digests.
async fn weekly_jobs_at_once(apps: &[ambassador::App]) {
    let tasks: Vec<_> = apps
        .iter()
        .cloned()
        .map(|app| {
            tokio::spawn(async move {
                app.plan_and_deliver().await.unwrap();
                report::weekly::send_weekly(&app.reports(), false)
                    .await
                    .unwrap();
                report::team::send_team_digests(&app.reports())
                    .await
                    .unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// (manager digests, team digests, weekly summaries) received so far: the
/// manager digest is the campaign's `to = "manager"` step.
fn weekly_mail(t: &TestApp) -> (usize, usize, usize) {
    let mail = t.smtp.messages();
    let count = |to: &str, starts: &str| {
        mail.iter()
            .filter(|m| m.recipients == [to])
            .filter(|m| m.parsed().subject().unwrap_or_default().contains(starts))
            .count()
    };
    (
        count(MIA, "on your team still need"),
        count(MIA, "Your team and"),
        count(BOARD, "of 2 completed"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weekly_jobs_go_once_in_a_week_and_again_the_next_week_on_two_instances() {
    let t = TestApp::spawn_with(Faults::default(), |s| {
        s.report.recipients = vec![ambassador::domain::EmailAddress::parse(BOARD).unwrap()];
    })
    .await;
    t.import(&team_roster(&[(1, "Ann", "A", MIA), (2, "Bob", "B", MIA)]))
        .await;
    t.apply(CAMPAIGN).await;
    t.tick_at(day(0)).await;
    // A second instance with a connection pool of its own, as another process has.
    let other = ambassador::App::build((*t.app.settings).clone(), t.app.clock.clone())
        .await
        .unwrap();
    let apps = [t.app.clone(), other];
    // Day 16, a Wednesday in ISO week 2027-W04: both people are overdue.
    t.clock.set(day(16));
    weekly_jobs_at_once(&apps).await;
    assert_eq!(weekly_mail(&t), (1, 1, 1), "once in week N");
    t.clock.set(day(18));
    weekly_jobs_at_once(&apps).await;
    assert_eq!(weekly_mail(&t), (1, 1, 1), "not twice in week N");
    // Day 23, the Wednesday of 2027-W05.
    t.clock.set(day(23));
    weekly_jobs_at_once(&apps).await;
    assert_eq!(weekly_mail(&t), (2, 2, 2), "once again in week N+1");
    t.clock.set(day(25));
    weekly_jobs_at_once(&apps).await;
    assert_eq!(weekly_mail(&t), (2, 2, 2), "not twice in week N+1");
    assert!(t.smtp.duplicates().is_empty());
}

#[tokio::test]
async fn a_report_template_override_that_does_not_render_is_refused_at_load() {
    let t = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("weekly_summary.txt.hbs"),
        "{{figures.completed}} of {{figures.nope}}",
    )
    .unwrap();
    let mut settings = (*t.app.settings).clone();
    settings.templates.dir = dir.path().to_path_buf();
    let refused =
        ambassador::App::with_store(settings.clone(), t.app.clock.clone(), t.store().clone())
            .expect_err("a template naming a missing figure is refused");
    let why = format!("{refused:#}");
    assert!(
        why.contains("weekly_summary.txt") && why.contains("nope"),
        "{why}"
    );
    // The same folder with a valid override loads, and renders it.
    std::fs::write(
        dir.path().join("weekly_summary.txt.hbs"),
        "{{figures.completed}} of {{figures.enrolled}}",
    )
    .unwrap();
    ambassador::App::with_store(settings, t.app.clock.clone(), t.store().clone()).unwrap();
}
