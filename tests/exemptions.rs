//! Exemptions through the CLI (the real binary) and the API: someone outside
//! the campaign's audience is refused and nothing is written; someone inside
//! it who is not enrolled yet is exempted. A completion stands, a second
//! exemption does not replace the first, undo restores, a cancelled campaign
//! refuses both, and every change is kept with who, when and why. On
//! PostgreSQL when AMBASSADOR_TEST_PG is set, else SQLite.

mod common;

use ambassador::campaign::{self, Status};
use ambassador::clock::to_millis;
use chrono::Duration;
use common::app::{launch, person, TestApp, CAMPAIGN, HEADER};
use common::process::ambassador;
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "correct horse battery staple";
const ANN: &str = "ann.lee@hospital.example.org";
/// Nursing: not in the audience's departments.
const CARL: &str = "carl.roy@hospital.example.org";
/// Procurement, but a Contractor: excluded by role.
const DAN: &str = "dan.ode@hospital.example.org";
/// Procurement, in the audience like Ann (only in [`setup_with_eve`]).
const EVE: &str = "eve.fox@hospital.example.org";

/// The roster and the campaign, before any planning: nobody is enrolled.
async fn setup() -> TestApp {
    setup_people(false).await
}

/// [`setup`] with Eve, a second person in the audience.
async fn setup_with_eve() -> TestApp {
    setup_people(true).await
}

async fn setup_people(with_eve: bool) -> TestApp {
    let t = TestApp::spawn_with(Default::default(), |s| {
        s.security.admin_token = ambassador::config::Secret::new(TOKEN)
    })
    .await;
    let boss = "mia.boss@hospital.example.org";
    let mut roster = vec![
        HEADER.to_string(),
        person(1, "Ann", "Lee", "Procurement", "Buyer", boss),
        person(2, "Carl", "Roy", "Nursing", "RN", boss),
        person(3, "Dan", "Ode", "Procurement", "Contractor", boss),
    ];
    if with_eve {
        roster.push(person(4, "Eve", "Fox", "Procurement", "Buyer", boss));
    }
    let roster = roster.join("\n");
    t.import(&format!("{roster}\n")).await;
    t.apply(CAMPAIGN).await;
    t
}

/// Each enrolled address with whether it is exempted.
async fn enrolments(t: &TestApp) -> Vec<(String, bool)> {
    let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT s.email, e.exempted_at FROM enrolments e JOIN staff s ON s.id = e.staff_id ORDER BY s.email",
    )
    .fetch_all(t.store().pool())
    .await
    .unwrap();
    rows.into_iter().map(|(e, x)| (e, x.is_some())).collect()
}

async fn exempted_in_report(t: &TestApp) -> u64 {
    let row = ambassador::campaign::find(t.store(), "test").await.unwrap();
    let r = ambassador::report::build(t.store(), &row, launch(), 3)
        .await
        .unwrap();
    serde_json::to_value(&r).unwrap()["population"]["exempted"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_refuses_people_outside_the_audience_and_exempts_one_not_yet_enrolled() {
    let t = setup().await;
    let config = t.db.dir.path().join("cli.toml");
    std::fs::write(&config, format!("[database]\nurl = \"{}\"\n", t.db.url)).unwrap();
    for (who, why) in [(CARL, "\"Nursing\""), (DAN, "\"Contractor\"")] {
        let out = ambassador(
            &config,
            &["exempt", who, "--campaign", "test", "--reason", "on leave"],
        )
        .output()
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{who} must be refused");
        assert!(
            stderr.contains("is not in the audience of campaign test") && stderr.contains(why),
            "{stderr}"
        );
        assert!(stderr.contains("nothing changed"), "{stderr}");
    }
    assert_eq!(enrolments(&t).await, vec![], "no enrolment was created");

    let out = ambassador(
        &config,
        &["exempt", ANN, "--campaign", "test", "--reason", "on leave"],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(enrolments(&t).await, vec![(ANN.to_string(), true)]);

    // Planning enrols nobody else (Carl and Dan are outside) and keeps Ann exempt.
    t.tick_at(launch()).await;
    assert_eq!(enrolments(&t).await, vec![(ANN.to_string(), true)]);
    assert_eq!(exempted_in_report(&t).await, 1);
    assert!(
        t.smtp.messages().is_empty(),
        "the exempted person got nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_refuses_people_outside_the_audience_and_exempts_one_not_yet_enrolled() {
    let t = setup().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let _guard = stop.clone().drop_guard();
    t.app.spawn_http(listener, stop);
    let client = reqwest::Client::new();
    let post = |email: &str| {
        client
            .post(format!("{base}/api/exemptions"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({ "email": email, "campaign": "test", "reason": "on leave" }))
            .send()
    };

    let refused = post(CARL).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = refused.text().await.unwrap();
    assert!(
        body.contains("is not in the audience of campaign test"),
        "{body}"
    );
    assert_eq!(enrolments(&t).await, vec![]);
    assert_eq!(exempted_in_report(&t).await, 0);

    let accepted = post(ANN).await.unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);
    assert_eq!(enrolments(&t).await, vec![(ANN.to_string(), true)]);
    assert_eq!(exempted_in_report(&t).await, 1);
}

/// The report's (completed, exempted) counts, as of now or three days into
/// the campaign, whichever is later (the CLI writes at the system time).
async fn counts(t: &TestApp) -> (u64, u64) {
    let row = campaign::find(t.store(), "test").await.unwrap();
    let as_of = chrono::Utc::now().max(launch() + Duration::days(3));
    let r = ambassador::report::build(t.store(), &row, as_of, 3)
        .await
        .unwrap();
    let r = serde_json::to_value(&r).unwrap();
    (
        r["outcome"]["completed"].as_u64().unwrap(),
        r["population"]["exempted"].as_u64().unwrap(),
    )
}

fn cli_config(t: &TestApp) -> std::path::PathBuf {
    let config = t.db.dir.path().join("cli.toml");
    std::fs::write(&config, format!("[database]\nurl = \"{}\"\n", t.db.url)).unwrap();
    config
}

/// Runs the binary as the OS user `auditor`; (success, stdout, stderr).
fn cli(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = ambassador(config, args)
        .env("USER", "auditor")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn listing(config: &std::path::Path) -> serde_json::Value {
    let (ok, stdout, stderr) = cli(
        config,
        &["campaign", "exemptions", "test", "--format", "json"],
    );
    assert!(ok, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_completion_stands_a_second_exemption_is_refused_and_undo_restores_with_history() {
    let t = setup_with_eve().await;
    t.tick_at(launch()).await; // Ann and Eve enrolled, announced
    let id = t.campaign_id("test").await;
    let eve = t.staff_id(EVE).await;
    let done = to_millis(launch() + Duration::days(1));
    assert!(t
        .store()
        .complete_enrolment(id, eve, done, "test")
        .await
        .unwrap());
    assert_eq!(counts(&t).await, (1, 0));
    let config = cli_config(&t);
    let exempt = |who: &'static str, reason: &'static str| {
        cli(
            &config,
            &["exempt", who, "--campaign", "test", "--reason", reason],
        )
    };

    let (ok, _, stderr) = exempt(EVE, "trained elsewhere");
    assert!(!ok, "exempting a completer must be refused");
    assert!(
        stderr.contains("completed campaign test") && stderr.contains("nothing changed"),
        "{stderr}"
    );
    assert_eq!(counts(&t).await, (1, 0), "the completion stands");

    let (ok, stdout, stderr) = exempt(ANN, "on leave");
    assert!(ok, "{stderr}");
    assert_eq!(stdout, format!("{ANN} is exempt from test: on leave\n"));
    assert_eq!(counts(&t).await, (1, 1));

    let (ok, _, stderr) = exempt(ANN, "another reason");
    assert!(!ok, "a second exemption must not replace the first");
    assert!(stderr.contains("already exempted"), "{stderr}");
    let list = listing(&config);
    assert_eq!(list["exemptions"].as_array().unwrap().len(), 1, "{list}");
    let current = &list["exemptions"][0];
    assert_eq!(current["email"], ANN);
    assert_eq!(current["reason"], "on leave", "the first reason is kept");
    assert_eq!(current["by"], "auditor");
    assert_eq!(current["channel"], "cli");

    let (ok, stdout, stderr) = cli(
        &config,
        &[
            "exempt",
            ANN,
            "--campaign",
            "test",
            "--undo",
            "--reason",
            "exempted by mistake",
        ],
    );
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout,
        format!("{ANN} is no longer exempt from test: exempted by mistake\n")
    );
    assert_eq!(counts(&t).await, (1, 0), "undo restores the counts");
    assert_eq!(
        enrolments(&t).await,
        vec![(ANN.to_string(), false), (EVE.to_string(), false)]
    );
    let (ok, _, stderr) = cli(
        &config,
        &[
            "exempt",
            ANN,
            "--campaign",
            "test",
            "--undo",
            "--reason",
            "again",
        ],
    );
    assert!(!ok && stderr.contains("is not exempted"), "{stderr}");

    let list = listing(&config);
    assert_eq!(list["exemptions"], serde_json::json!([]));
    let history: Vec<(String, String, String, String)> = list["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            assert!(h["at"].as_str().unwrap().ends_with('Z'), "{h}");
            let text = |k: &str| h[k].as_str().unwrap().to_string();
            (text("email"), text("action"), text("by"), text("reason"))
        })
        .collect();
    let row = |action: &str, reason: &str| {
        (
            ANN.to_string(),
            action.to_string(),
            "auditor".to_string(),
            reason.to_string(),
        )
    };
    assert_eq!(
        history,
        vec![
            row("exempted", "on leave"),
            row("removed", "exempted by mistake")
        ]
    );
    let (ok, text, _) = cli(&config, &["campaign", "exemptions", "test"]);
    assert!(
        ok && text.contains("nobody is exempted from test"),
        "{text}"
    );
    assert!(
        text.contains("removed") && text.contains("by auditor (cli)"),
        "{text}"
    );

    // Ann is messaged again: the reminder a week in reaches her.
    t.tick_at(launch() + Duration::days(7)).await;
    assert!(
        t.outbox().await.contains(&(
            ANN.to_string(),
            "reminder-1".to_string(),
            "sent".to_string()
        )),
        "{:?}",
        t.outbox().await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn undoing_an_exemption_that_enrolled_someone_lets_planning_enrol_them_as_anyone() {
    let t = setup().await;
    let row = campaign::find(t.store(), "test").await.unwrap();
    let ann = ambassador::domain::EmailAddress::parse(ANN).unwrap();
    let cli = ambassador::store::exemption::Actor::cli("test");
    let early = to_millis(launch() - Duration::days(2));
    campaign::exempt(t.store(), &row, &ann, "on leave", early, &cli)
        .await
        .unwrap();
    campaign::unexempt(t.store(), &row, &ann, "back", early + 1, &cli)
        .await
        .unwrap();
    assert_eq!(
        enrolments(&t).await,
        vec![],
        "the exemption's own enrolment is gone"
    );
    t.tick_at(launch()).await;
    let due: i64 = sqlx::query_scalar("SELECT due_at FROM enrolments")
        .fetch_one(t.store().pool())
        .await
        .unwrap();
    assert_eq!(
        due,
        to_millis(launch() + Duration::days(14)),
        "the campaign's due rule"
    );
    assert_eq!(
        t.outbox().await,
        vec![(
            ANN.to_string(),
            "announcement".to_string(),
            "sent".to_string()
        )]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_campaign_refuses_exemptions_and_their_undoing() {
    let t = setup_with_eve().await;
    t.tick_at(launch()).await;
    let config = cli_config(&t);
    let (ok, _, stderr) = cli(
        &config,
        &["exempt", ANN, "--campaign", "test", "--reason", "on leave"],
    );
    assert!(ok, "{stderr}");
    campaign::set_status(t.store(), &t.clock, "test", Status::Cancelled)
        .await
        .unwrap();
    for args in [
        ["exempt", EVE, "--campaign", "test", "--reason", "on leave"].as_slice(),
        &[
            "exempt",
            ANN,
            "--campaign",
            "test",
            "--undo",
            "--reason",
            "back",
        ],
    ] {
        let (ok, _, stderr) = cli(&config, args);
        assert!(!ok, "{args:?} must be refused");
        assert!(stderr.contains("campaign test was cancelled"), "{stderr}");
    }
    assert_eq!(
        enrolments(&t).await,
        vec![(ANN.to_string(), true), (EVE.to_string(), false)],
        "nothing changed"
    );
    assert_eq!(listing(&config)["history"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_lists_exemptions_and_undoes_them() {
    let t = setup_with_eve().await;
    t.tick_at(launch()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let _guard = stop.clone().drop_guard();
    t.app.spawn_http(listener, stop);
    let client = reqwest::Client::new();
    let post = |path: &str, email: &str, reason: &str| {
        client
            .post(format!("{base}/api/{path}"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({ "email": email, "campaign": "test", "reason": reason }))
            .send()
    };
    let id = t.campaign_id("test").await;
    let eve = t.staff_id(EVE).await;
    t.store()
        .complete_enrolment(id, eve, to_millis(launch() + Duration::days(1)), "test")
        .await
        .unwrap();

    let refused = post("exemptions", EVE, "trained elsewhere").await.unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("completed campaign test"));
    assert_eq!(
        post("exemptions", ANN, "on leave").await.unwrap().status(),
        StatusCode::OK
    );
    let again = post("exemptions", ANN, "other").await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(counts(&t).await, (1, 1));

    let list: serde_json::Value = client
        .get(format!("{base}/api/campaigns/test/exemptions"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["exemptions"][0]["email"], ANN);
    assert_eq!(list["exemptions"][0]["reason"], "on leave");
    assert_eq!(list["exemptions"][0]["by"], "shared admin credential");
    assert_eq!(list["exemptions"][0]["channel"], "api");

    let undone = post("exemptions/undo", ANN, "back from leave")
        .await
        .unwrap();
    assert_eq!(undone.status(), StatusCode::OK);
    assert_eq!(counts(&t).await, (1, 0));
    let twice = post("exemptions/undo", ANN, "back from leave")
        .await
        .unwrap();
    assert_eq!(twice.status(), StatusCode::CONFLICT);
    assert!(twice.text().await.unwrap().contains("is not exempted"));
    let missing = client
        .get(format!("{base}/api/campaigns/nope/exemptions"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}
