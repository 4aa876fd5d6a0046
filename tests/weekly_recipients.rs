//! Report claims keep their recipients as a JSON array: an address whose
//! quoted local part holds a comma survives the claim and the retry, and
//! migration 0008 converts the comma-joined rows of earlier versions. On
//! PostgreSQL when AMBASSADOR_TEST_PG is set, else SQLite.

mod common;

use ambassador::store::report::{ReportKind, RetryWindow};
use ambassador::store::{Backend, Store};
use common::app::TestDb;

const QUOTED: &str = "\"lee,ann\"@hospital.example.org";
const PLAIN: &str = "board@hospital.example.org";

/// Every unsent claim at `now`, by key, with its recipients.
async fn unsent(store: &Store, now: i64) -> Vec<(String, Vec<String>)> {
    let window = RetryWindow {
        stale_before: now,
        since: 0,
        max_attempts: 10,
    };
    let mut rows: Vec<_> = store
        .unsent_reports(window)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.report_key, r.recipients))
        .collect();
    rows.sort();
    rows
}

/// A campaign row for the claims' foreign key.
async fn campaign(store: &Store) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO campaigns (slug, name, definition, status, starts_at, created_at, updated_at)
         VALUES ('c', 'C', '{}', 'active', 0, 0, 0) RETURNING id",
    )
    .fetch_one(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_recipient_with_a_comma_survives_the_claim_and_the_retry() {
    let db = TestDb::create().await;
    let store = Store::open(&db.url, 2).await.unwrap();
    let id = campaign(&store).await;
    let recipients = vec![QUOTED.to_string(), PLAIN.to_string()];
    let claimed = store
        .claim_weekly(
            "c:2027-W02",
            ReportKind::Weekly,
            id,
            "gone",
            1_000,
            &recipients,
        )
        .await
        .unwrap();
    assert!(claimed);
    assert_eq!(
        unsent(&store, 2_000).await,
        vec![("c:2027-W02".to_string(), recipients)]
    );
}

#[tokio::test]
async fn migration_0008_turns_comma_joined_rows_into_arrays() {
    let db = TestDb::create().await;
    let store = Store::connect(&db.url, 2).await.unwrap();
    let dir = match store.backend() {
        Backend::Sqlite => "migrations/sqlite",
        Backend::Postgres => "migrations/postgres",
    };
    // The schema as version 0.7 left it, with rows it wrote.
    let mut before =
        sqlx::migrate::Migrator::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
            .await
            .unwrap();
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version <= 7)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(store.pool()).await.unwrap();
    let id = campaign(&store).await;
    for (key, kind, recipients) in [
        (
            "c:2027-W01",
            "weekly",
            "a@hospital.example.org,b@hospital.example.org",
        ),
        ("c:2027-W02:manual:5", "manual", "a@hospital.example.org"),
        (
            "team:c:m@hospital.example.org:2027-W01",
            "team",
            "m@hospital.example.org",
        ),
        ("c:2027-W03", "weekly", "odd\\\"name@hospital.example.org"),
    ] {
        sqlx::query(
            "INSERT INTO weekly_reports (report_key, kind, campaign_id, claimed_by, claimed_at, recipients)
             VALUES ($1, $2, $3, 'old', 1000, $4)",
        )
        .bind(key)
        .bind(kind)
        .bind(id)
        .bind(recipients)
        .execute(store.pool())
        .await
        .unwrap();
    }

    store.migrate().await.unwrap();
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT report_key, recipients FROM weekly_reports ORDER BY report_key")
            .fetch_all(store.pool())
            .await
            .unwrap();
    let arrays: Vec<(String, Vec<String>)> = stored
        .into_iter()
        .map(|(k, r)| (k, serde_json::from_str(&r).expect("a JSON array")))
        .collect();
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    assert_eq!(
        arrays,
        vec![
            (
                "c:2027-W01".into(),
                s(&["a@hospital.example.org", "b@hospital.example.org"])
            ),
            ("c:2027-W02:manual:5".into(), s(&["a@hospital.example.org"])),
            (
                "c:2027-W03".into(),
                s(&["odd\\\"name@hospital.example.org"])
            ),
            (
                "team:c:m@hospital.example.org:2027-W01".into(),
                s(&["m@hospital.example.org"])
            ),
        ]
    );
    // The retry pass reads them (manual sends are not retried).
    assert_eq!(unsent(&store, 2_000).await.len(), 3);
}
