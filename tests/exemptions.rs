//! Exemptions through the CLI (the real binary) and the API: someone outside
//! the campaign's audience is refused and nothing is written; someone inside
//! it who is not enrolled yet is exempted. On PostgreSQL when
//! AMBASSADOR_TEST_PG is set, else SQLite.

mod common;

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

/// The roster and the campaign, before any planning: nobody is enrolled.
async fn setup() -> TestApp {
    let t = TestApp::spawn_with(Default::default(), |s| {
        s.security.admin_token = ambassador::config::Secret::new(TOKEN)
    })
    .await;
    let boss = "mia.boss@hospital.example.org";
    let roster = [
        HEADER.to_string(),
        person(1, "Ann", "Lee", "Procurement", "Buyer", boss),
        person(2, "Carl", "Roy", "Nursing", "RN", boss),
        person(3, "Dan", "Ode", "Procurement", "Contractor", boss),
    ]
    .join("\n");
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
