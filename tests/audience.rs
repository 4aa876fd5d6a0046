//! Audiences on any roster field or attribute: exact values, prefixes and
//! the last level of a hierarchy, include and exclude, counted at apply and
//! enrolled by the planner; a name nobody's record has is refused.

mod common;

use common::app::{launch, TestApp};

const HEADER: &str =
    "Employee ID,First Name,Last Name,Email,Department,Job Title,Location,Org Path,Staffing Class";

const ROSTER: &[&str] = &[
    "E1,Ann,Lee,ann@hospital.example.org,Ops,Buyer,Main,Mercy Valley Health > Operations > Supply Chain,Employee",
    "E2,Bob,Ray,bob@hospital.example.org,Ops,Buyer,Main,Mercy Valley Health > Operations > Supply Chain,Contingent",
    "E3,Cy,Oh,cy@hospital.example.org,Ops,Analyst,Main,Mercy Valley Health > Supply Chain > Analytics,Employee",
    "E4,Di,Wu,di@hospital.example.org,Finance,Clerk,Main,Mercy Valley Health > Finance > Purchasing,Employee",
    "E5,Ed,Fox,ed@hospital.example.org,Nursing,RN,Main,Mercy Valley Health > Nursing,Employee",
];

const CAMPAIGN: &str = r#"
slug = "aud"
name = "SOAR for Procurement Professionals"
course_url = "https://train.example.org/course/1"
contact = "ambassador@hospital.example.org"
starts_at = "2027-01-11T14:00:00Z"
due = "30d"
send_window = "always"

[audience]
include = { org_path = { last = ["Supply Chain"], prefix = ["Mercy Valley Health > Finance"] } }
exclude = { staffing_class = "Contingent" }

[[steps]]
name = "announcement"
at = "0s"
template = "news_item"
"#;

async fn enrolled(t: &TestApp) -> Vec<String> {
    let mut emails: Vec<String> = sqlx::query_scalar(
        "SELECT s.email FROM enrolments e JOIN staff s ON s.id = e.staff_id WHERE e.left_at IS NULL",
    )
    .fetch_all(t.store().pool())
    .await
    .unwrap();
    emails.sort();
    emails
}

#[tokio::test]
async fn an_audience_matches_attributes_by_hierarchy_level_and_prefix_and_excludes_by_attribute() {
    let t = TestApp::spawn().await;
    t.import(&format!("{HEADER}\n{}\n", ROSTER.join("\n")))
        .await;
    let applied = t.apply_with(CAMPAIGN, false, false).await.unwrap();
    assert_eq!(applied.audience, 2, "{applied:?}");
    t.tick_at(launch()).await;
    assert_eq!(
        enrolled(&t).await,
        ["ann@hospital.example.org", "di@hospital.example.org"],
        "Ann by the last level, Di by the prefix; Bob excluded as contingent, Cy's path only passes through Supply Chain"
    );
}

#[tokio::test]
async fn an_attribute_nobody_has_is_refused_naming_it() {
    let t = TestApp::spawn().await;
    t.import(&format!("{HEADER}\n{}\n", ROSTER.join("\n")))
        .await;
    let typo = CAMPAIGN.replace("exclude = { staffing_class", "exclude = { staffing_clas");
    let err = t
        .apply_with(&typo, false, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[audience] names \"staffing_clas\", which is neither a roster field")
            && err.contains("attributes: org_path, staffing_class"),
        "{err}"
    );
}

/// The report says so when an audience matches nobody (table and JSON).
#[tokio::test]
async fn the_report_warns_of_an_audience_that_matches_nobody() {
    let t = TestApp::spawn().await;
    t.import(&format!("{HEADER}\n{}\n", ROSTER.join("\n")))
        .await;
    let nobody = CAMPAIGN
        .replace("last = [\"Supply Chain\"]", "last = [\"Cardiology\"]")
        .replace(
            "prefix = [\"Mercy Valley Health > Finance\"]",
            "prefix = [\"Elsewhere\"]",
        );
    t.apply_with(&nobody, false, true).await.unwrap();
    let row = ambassador::campaign::find(t.store(), "aud").await.unwrap();
    let report = ambassador::report::build(t.store(), &row, launch(), 1)
        .await
        .unwrap();
    assert_eq!(report.campaign.audience_size, 0);
    let table = ambassador::report::render::table(&report);
    assert!(
        table.contains("warning      the audience matches nobody active in the roster"),
        "{table}"
    );
}

#[tokio::test]
async fn the_reported_audience_follows_every_roster_change() {
    // The count is kept between reports until the roster changes: a move
    // out of the audience (no new person) and a joiner must both show.
    let t = TestApp::spawn().await;
    let roster = |lines: &[&str]| format!("{HEADER}\n{}\n", lines.join("\n"));
    t.import(&roster(ROSTER)).await;
    t.apply_with(CAMPAIGN, false, false).await.unwrap();
    let size = || async {
        let row = ambassador::campaign::find(t.store(), "aud").await.unwrap();
        ambassador::report::build(t.store(), &row, launch(), 1)
            .await
            .unwrap()
            .campaign
            .audience_size
    };
    assert_eq!(size().await, 2);
    assert_eq!(size().await, 2, "unchanged roster, same count");

    let mut moved = ROSTER.to_vec();
    let di_moved = ROSTER[3].replace(
        "Mercy Valley Health > Finance > Purchasing",
        "Mercy Valley Health > Nursing",
    );
    moved[3] = &di_moved;
    t.import(&roster(&moved)).await;
    assert_eq!(size().await, 1, "Di moved out of the audience");

    let joiner = "E6,Fay,Ng,fay@hospital.example.org,Ops,Buyer,Main,Mercy Valley Health > Operations > Supply Chain,Employee";
    moved.push(joiner);
    t.import(&roster(&moved)).await;
    assert_eq!(size().await, 2, "Fay joined the audience");
}
