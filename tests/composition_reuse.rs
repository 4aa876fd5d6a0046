//! Composition that reuses what a step's message says to everyone gives the
//! same bytes as rendering every message whole: every step of a rollout, for
//! a roster of awkward names, composed by the app's composer (reuse on) and
//! by one whose templates render whole, compared byte for byte once the
//! MIME boundary and the preview's random Message-ID are masked (the only
//! parts that differ from one composition to the next).

mod common;

use ambassador::campaign::Campaign;
use ambassador::config::Settings;
use ambassador::delivery::{Composer, Templates};
use chrono::{DateTime, Duration, Utc};
use common::app::{launch, TestApp, HEADER};
use std::sync::{Arc, RwLock};

/// Steps on every side of the due date, so "days left" is 14, 1, 0 and
/// negative, a manager step (rendered whole: its template lists people)
/// and a completion step.
const CAMPAIGN: &str = r#"
slug = "reuse"
name = "SOAR for Procurement Professionals"
course_url = "https://train.example.org/course/1?lang=en&x=1"
video_url = "https://train.example.org/video/1"
contact = "ambassador@hospital.example.org"
starts_at = "2027-01-11T14:00:00Z"
due = "14d"
send_window = "always"
completion_link = true

[[steps]]
name = "announcement"
at = "0s"
template = "news_item"

[[steps]]
name = "last-call"
at = "due-2d"
template = "reminder"

[[steps]]
name = "eve"
at = "due-1d"
template = "reminder"

[[steps]]
name = "day"
at = "due"
template = "reminder"

[[steps]]
name = "late"
at = "due+3d"
template = "reminder"

[[steps]]
name = "escalation"
at = "due+1d"
template = "escalation"
to = "manager"

[[steps]]
name = "thanks"
on = "completion"
template = "thanks"
"#;

/// Names that exercise escaping, non-ASCII, long lines and white space.
fn roster() -> String {
    let long = "Maximiliana-Alexandra ".repeat(6);
    let people = [
        ("E1", "Ann", "Lee", "ann.lee"),
        ("E2", "Zoë", "Ångström", "zoe"),
        ("E3", "\"Bo\" <b>&amp;", "O'Brien & Sons", "bo"),
        ("E4", "李", "小龙", "li"),
        ("E5", long.trim(), "Quellenberg-Wittgenstein", "max"),
        ("E6", "José  María", "de la   Cruz", "jose"),
        ("E7", "Ana=3D", "Nuñez \u{1F600}", "ana"),
    ];
    let mut csv = format!("{HEADER}\n");
    for (id, first, last, local) in people {
        csv.push_str(&format!(
            "{id},{},{},{local}@hospital.example.org,Supply Chain,Buyer,Main,mia.boss@hospital.example.org,\n",
            quoted(first),
            quoted(last)
        ));
    }
    csv.push_str("E9,Mia,Boss,mia.boss@hospital.example.org,Supply Chain,Director,Main,,\n");
    csv
}

fn quoted(field: &str) -> String {
    format!("\"{}\"", field.replace('"', "\"\""))
}

/// The app's settings with its templates rendering every message whole.
fn whole(t: &TestApp) -> Composer {
    let templates = t.app.load_templates().unwrap().without_reuse();
    composer(t, &t.app.settings, templates)
}

fn composer(t: &TestApp, settings: &Settings, templates: Templates) -> Composer {
    let templates = Arc::new(RwLock::new(Arc::new(templates)));
    Composer::new(
        t.app.store.clone(),
        templates,
        settings,
        t.app.tracker.clone(),
    )
    .unwrap()
}

/// The message with its boundary and Message-ID masked.
fn masked(raw: &[u8]) -> String {
    let text = String::from_utf8(raw.to_vec()).expect("messages are ASCII");
    let boundary = text
        .split("boundary=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a multipart message")
        .to_string();
    text.replace(&boundary, "BOUNDARY")
        .lines()
        .map(|line| {
            if line.starts_with("Message-ID:") {
                "Message-ID: <MASKED>"
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every step for every person (and the manager) through both composers:
/// the same result, the same bytes. Returns how many messages compared equal.
async fn compare(t: &TestApp, reusing: &Composer, whole: &Composer, at: DateTime<Utc>) -> usize {
    let campaign = Campaign::from_toml(CAMPAIGN, "reuse.toml").unwrap();
    let id = t.campaign_id("reuse").await;
    let recipients = [
        "ann.lee", "zoe", "bo", "li", "max", "jose", "ana", "mia.boss",
    ];
    let mut compared = 0;
    for step in &campaign.steps {
        for local in recipients {
            let to = format!("{local}@hospital.example.org");
            let ours = reusing
                .preview(id, &campaign, &step.name, Some(&to), at)
                .await;
            let theirs = whole
                .preview(id, &campaign, &step.name, Some(&to), at)
                .await;
            match (ours, theirs) {
                (Ok(ours), Ok(theirs)) => {
                    let (ours, theirs) = (masked(&ours.formatted()), masked(&theirs.formatted()));
                    assert_eq!(ours, theirs, "step {} to {to}", step.name);
                    compared += 1;
                }
                (Err(ours), Err(theirs)) => assert_eq!(ours.to_string(), theirs.to_string()),
                (ours, theirs) => panic!(
                    "step {} to {to}: with reuse {:?}, whole {:?}",
                    step.name,
                    ours.map(|_| "a message"),
                    theirs.map(|_| "a message")
                ),
            }
        }
    }
    compared
}

#[tokio::test]
async fn every_step_composes_to_the_same_bytes_with_and_without_reuse() {
    let t = TestApp::spawn().await;
    t.apply(CAMPAIGN).await;
    t.import(&roster()).await;
    t.tick_at(launch()).await;
    let whole = whole(&t);
    let compared = compare(&t, &t.app.composer, &whole, launch()).await;
    assert!(compared >= 6 * 7, "only {compared} messages compared");
    let reused = t.app.composer.templates().reused_keys();
    assert!(
        reused >= 4,
        "the reuse cache holds {reused} keys: messages were rendered whole"
    );
    assert_eq!(whole.templates().reused_keys(), 0);

    // The sent announcements (composed with reuse) carry each person's own
    // values, escaped in HTML, and none of the cache's marks.
    let sent = t.smtp.messages();
    assert_eq!(sent.len(), 8, "one announcement per person");
    for message in &sent {
        let parsed = message.parsed();
        let (html, text) = (parsed.body_html(0).unwrap(), parsed.body_text(0).unwrap());
        assert!(!html.contains(['\u{FDD0}', '\u{FDD1}']), "{html}");
        assert!(!text.contains(['\u{FDD0}', '\u{FDD1}']), "{text}");
    }
    let bo = sent
        .iter()
        .find(|m| m.recipients == ["bo@hospital.example.org"])
        .expect("Bo's announcement");
    let html = bo.parsed().body_html(0).unwrap().to_string();
    assert!(html.contains("&quot;Bo&quot; &lt;b&gt;&amp;amp;"), "{html}");
}

/// Override templates that print a value raw, test a person's field with a
/// helper, print an attribute of some people only, and list with `#each`.
#[tokio::test]
async fn override_templates_compose_to_the_same_bytes_with_and_without_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "news_item.html.hbs",
        "{{#> layout}}{{#*inline \"preheader\"}}For {{person.first_name}}{{/inline}}\
         {{#*inline \"why\"}}Because.{{/inline}}\
         <p>{{{person.first_name}}} / {{person.last_name}}</p>\n\
         {{#if (eq person.first_name \"Ann\")}}<p>Hello Ann</p>{{else}}<p>Hello {{person.full_name}}</p>{{/if}}\n\
         <a href=\"{{links.course}}\">{{links.course}}</a>\n{{/layout}}",
    );
    write(
        "news_item.subject.hbs",
        "{{person.full_name}}  –  {{campaign.name}}\r\n",
    );
    write(
        "news_item.txt.hbs",
        "Hi {{person.first_name}}\n{{person.last_name}}\n\n{{links.course}}\n{{campaign.due_date}}\n",
    );
    write(
        "reminder.txt.hbs",
        "{{#each person}}{{@key}}={{this}}\n{{/each}}{{campaign.days_left}}\n",
    );
    let t = TestApp::spawn_with(Default::default(), |s| {
        s.templates.dir = dir.path().to_path_buf();
    })
    .await;
    t.apply(CAMPAIGN).await;
    t.import(&roster()).await;
    let whole = whole(&t);
    let compared = compare(&t, &t.app.composer, &whole, launch()).await;
    assert!(compared >= 6 * 7, "only {compared} messages compared");
    assert!(t.app.composer.templates().reused_keys() >= 2);
}

/// A day later the same step is keyed again ("days left" changed), and
/// what it says to everyone is still reused.
#[tokio::test]
async fn a_key_is_reused_across_people() {
    let t = TestApp::spawn().await;
    t.apply(CAMPAIGN).await;
    t.import(&roster()).await;
    let campaign = Campaign::from_toml(CAMPAIGN, "reuse.toml").unwrap();
    let id = t.campaign_id("reuse").await;
    let templates = t.app.composer.templates();
    for (i, local) in ["ann.lee", "zoe", "li", "max"].into_iter().enumerate() {
        let to = format!("{local}@hospital.example.org");
        t.app
            .composer
            .preview(
                id,
                &campaign,
                "announcement",
                Some(&to),
                launch() + Duration::hours(1),
            )
            .await
            .unwrap();
        assert_eq!(
            templates.reused_keys(),
            1,
            "after person {i}: one key for the step"
        );
    }
}
