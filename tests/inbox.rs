//! The drop folder (`inbox.dir`) on real files: the app's own task watches a
//! temporary folder, imports what is dropped into a real database (SQLite,
//! or PostgreSQL with AMBASSADOR_TEST_PG), and tells the admins over a real
//! SMTP server on loopback. Tests wait on the task's looks at the folder,
//! never on a fixed sleep.

mod common;

use ambassador::clock::{SharedClock, SystemClock};
use ambassador::config::{Settings, Transport};
use ambassador::domain::HumanDuration;
use ambassador::inbox::Inbox;
use ambassador::App;
use common::app::{launch, postgres_or_skip, TestApp, TestDb, CAMPAIGN, HEADER};
use common::smtp::Faults;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const ADMIN: &str = "it-admin@hospital.example.org";

/// Long enough that a test fails rather than hangs, short enough to say "seconds".
const WITHIN: Duration = Duration::from_secs(20);

fn roster(people: &[(u32, &str, &str)]) -> String {
    let mut text = format!("{HEADER}\n");
    for (id, first, last) in people {
        text.push_str(&common::app::person(
            *id,
            first,
            last,
            "Supply Chain",
            "Buyer",
            "mgr@hospital.example.org",
        ));
        text.push('\n');
    }
    text
}

fn three() -> String {
    roster(&[(1, "Ann", "Lee"), (2, "Bo", "Park"), (3, "Cy", "Diaz")])
}

/// Drop folder settings: `settle` for files written in place, a quick listing.
fn drop_folder(dir: &Path, settle: &str) -> impl FnOnce(&mut Settings) {
    let dir = dir.to_path_buf();
    let settle = settle.to_string();
    move |s: &mut Settings| {
        s.inbox.dir = dir;
        s.inbox.settle = HumanDuration::parse(&settle).unwrap();
        s.inbox.scan_every = HumanDuration::parse("100ms").unwrap();
        s.inbox.notify = vec![ADMIN.parse().unwrap()];
    }
}

/// The drop folder's task, running until the guard is dropped.
struct Watching {
    inbox: Inbox,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Watching {
    /// Starts the task and waits for its first look at the folder: from
    /// then on, a file renamed in is noticed (one already there when the
    /// task starts waits for `inbox.settle`, as after a restart).
    async fn start(inbox: Inbox) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(inbox.clone().run(stop.clone()));
        let watching = Self { inbox, stop, task };
        watching.looks(1).await;
        watching
    }

    /// Waits, look by look, until `done` holds; panics after [`WITHIN`].
    async fn until(&self, what: &str, done: impl Fn() -> bool) {
        let mut looks = self.inbox.looks();
        let waited = tokio::time::timeout(WITHIN, async {
            while !done() {
                if looks.changed().await.is_err() {
                    panic!("the drop folder task ended while waiting for {what}");
                }
            }
        })
        .await;
        assert!(waited.is_ok(), "no {what} within {WITHIN:?}");
    }

    /// Waits for `n` more looks at the folder.
    async fn looks(&self, n: u64) {
        let mut looks = self.inbox.looks();
        let start = *looks.borrow_and_update();
        let waited = tokio::time::timeout(WITHIN, looks.wait_for(|seen| *seen >= start + n)).await;
        assert!(
            waited.is_ok(),
            "the drop folder was not looked at {n} times"
        );
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task
            .await
            .unwrap()
            .expect("the drop folder task ends cleanly");
    }
}

/// Files in `dir/sub`, sorted by name.
fn files_in(dir: &Path, sub: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join(sub))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Writes `text` as `name.part`, then renames it to `name`: as an SFTP
/// client that uploads under a temporary name.
fn drop_renamed(dir: &Path, name: &str, text: &str) {
    let part = dir.join(format!("{name}.part"));
    std::fs::write(&part, text).unwrap();
    std::fs::rename(&part, dir.join(name)).unwrap();
}

async fn count(t: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(t.store().pool())
        .await
        .unwrap()
}

/// (file name, outcome) of every file the folder took, oldest first.
async fn taken(t: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as("SELECT file_name, outcome FROM inbox_files ORDER BY id")
        .fetch_all(t.store().pool())
        .await
        .unwrap()
}

/// (actor, action, target, outcome, detail) of every audit entry, oldest first.
async fn audit(t: &TestApp) -> Vec<(String, String, String, String, serde_json::Value)> {
    let rows: Vec<(String, String, String, String, String)> =
        sqlx::query_as("SELECT actor, action, target, outcome, detail FROM audit_log ORDER BY id")
            .fetch_all(t.store().pool())
            .await
            .unwrap();
    rows.into_iter()
        .map(|(a, b, c, d, e)| (a, b, c, d, serde_json::from_str(&e).unwrap()))
        .collect()
}

fn txt_of(dir: &Path, sub: &str, file: &str) -> String {
    std::fs::read_to_string(dir.join(sub).join(format!("{file}.txt"))).unwrap()
}

#[tokio::test]
async fn a_roster_export_renamed_in_is_imported_within_seconds_and_moved_with_its_report() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    // A settle time of an hour: only the rename can make it this quick.
    let t = TestApp::spawn_with(Faults::default(), drop_folder(dir, "1h")).await;
    let watching = Watching::start(t.app.inbox().expect("inbox.dir is set")).await;

    drop_renamed(dir, "roster-2027-01.csv", &three());
    watching
        .until("file in processed/", || {
            files_in(dir, "processed").len() == 2
        })
        .await;

    assert_eq!(
        count(&t, "SELECT COUNT(*) FROM staff WHERE active = 1").await,
        3
    );
    assert!(!dir.join("roster-2027-01.csv").exists());
    let processed = files_in(dir, "processed");
    let moved = &processed[0];
    // Dated by the app's clock (an hour before launch), then the name.
    assert_eq!(moved, "20270111T130000Z-roster-2027-01.csv");
    assert_eq!(processed[1], format!("{moved}.txt"));
    let txt = txt_of(dir, "processed", moved);
    assert!(txt.contains("Read as: a roster export"), "{txt}");
    assert!(
        txt.contains("roster imported: 3 added, 0 updated, 0 deactivated"),
        "{txt}"
    );
    assert_eq!(
        taken(&t).await,
        vec![("roster-2027-01.csv".to_string(), "imported".to_string())]
    );
    assert!(files_in(dir, "rejected").is_empty());
    // In the audit trail as the command line's import is, by the actor "inbox".
    let entries = audit(&t).await;
    let (actor, action, target, outcome, detail) = entries.last().unwrap();
    assert_eq!(
        (
            actor.as_str(),
            action.as_str(),
            target.as_str(),
            outcome.as_str()
        ),
        ("inbox", "roster.import", "roster-2027-01.csv", "success")
    );
    assert_eq!(detail["counts"]["added"], 3);
    assert_eq!(detail["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(detail["inbox"]["moved_to"], format!("processed/{moved}"));
    // Success is not mailed unless inbox.notify_success.
    assert!(t.smtp.messages().is_empty());
    watching.stop().await;
}

#[tokio::test]
async fn a_bad_roster_is_rejected_with_every_error_by_line_and_the_admins_are_emailed() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let t = TestApp::spawn_with(Faults::default(), drop_folder(dir, "1h")).await;
    let watching = Watching::start(t.app.inbox().unwrap()).await;
    let mut text = three();
    text.push_str("E4,Di,Ng,not-an-address,Supply Chain,Buyer,Main,,\n");
    text.push_str("E5,Ed,Fox,ed.fox@hospital.example.org,Supply Chain,Buyer,Main,,Mars/Olympus\n");
    text.push_str("E6,Fay,Gu,\"fay@x.org\u{202e}\",Supply Chain,Buyer,Main,,\n");

    drop_renamed(dir, "roster.csv", &text);
    watching
        .until("file in rejected/", || files_in(dir, "rejected").len() == 2)
        .await;

    assert_eq!(
        count(&t, "SELECT COUNT(*) FROM staff").await,
        0,
        "all or nothing"
    );
    let moved = &files_in(dir, "rejected")[0];
    let txt = txt_of(dir, "rejected", moved);
    assert!(txt.contains("Outcome: rejected"), "{txt}");
    for line in ["line 5,", "line 7,"] {
        assert!(txt.contains(line), "{line} missing from:\n{txt}");
    }
    assert!(txt.contains("What to do: Correct the rows listed"), "{txt}");

    let mail = t.smtp.wait_for(1, WITHIN).await;
    assert_eq!(mail[0].recipients, vec![ADMIN.to_string()]);
    let parsed = mail[0].parsed();
    let subject = parsed.subject().unwrap_or_default().to_string();
    assert!(subject.contains("\"roster.csv\" was rejected"), "{subject}");
    let body = parsed.body_text(0).unwrap().into_owned();
    for expected in [
        "line 5,",
        "line 7,",
        "What to do:",
        &format!("rejected/{moved}"),
    ] {
        assert!(body.contains(expected), "{expected} missing from:\n{body}");
    }
    assert_eq!(
        taken(&t).await,
        vec![("roster.csv".to_string(), "rejected".to_string())]
    );
    let entries = audit(&t).await;
    let (actor, action, _, outcome, detail) = entries.last().unwrap();
    assert_eq!(
        (actor.as_str(), action.as_str(), outcome.as_str()),
        ("inbox", "roster.import", "failure")
    );
    assert_eq!(detail["counts"]["rejected"], 2);
    watching.stop().await;
}

#[tokio::test]
async fn a_mass_deactivation_from_the_folder_is_refused_and_never_forced() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let t = TestApp::spawn_with(Faults::default(), drop_folder(dir, "1h")).await;
    t.import(&three()).await;
    let watching = Watching::start(t.app.inbox().unwrap()).await;

    drop_renamed(dir, "roster.csv", &roster(&[(1, "Ann", "Lee")]));
    watching
        .until("file in rejected/", || files_in(dir, "rejected").len() == 2)
        .await;

    assert_eq!(
        count(&t, "SELECT COUNT(*) FROM staff WHERE active = 1").await,
        3
    );
    let txt = txt_of(dir, "rejected", &files_in(dir, "rejected")[0]);
    assert!(
        txt.contains("would deactivate 2 of 3 active people"),
        "{txt}"
    );
    assert!(txt.contains("never forced"), "{txt}");
    let mail = t.smtp.wait_for(1, WITHIN).await;
    assert!(mail[0].parsed().body_text(0).unwrap().contains("--force"));
    watching.stop().await;
}

#[tokio::test]
async fn a_half_written_file_is_not_touched_until_complete() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let t = TestApp::spawn_with(Faults::default(), drop_folder(dir, "5s")).await;
    // Complete files the folder must never take: partial uploads by name, and hidden files.
    for ignored in ["next.csv.part", "next.csv.tmp", ".roster.csv"] {
        std::fs::write(dir.join(ignored), three()).unwrap();
    }
    let watching = Watching::start(t.app.inbox().unwrap()).await;
    let full = three();
    let cut = full.len() - 20;
    let path = dir.join("roster.csv");
    std::fs::write(&path, &full[..cut]).unwrap();

    // Listed and looked at again and again while it settles: untouched.
    watching.looks(5).await;
    assert!(path.exists());
    assert!(taken(&t).await.is_empty());
    assert_eq!(count(&t, "SELECT COUNT(*) FROM staff").await, 0);

    // The writer finishes; once it settles the whole file is imported.
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(&full.as_bytes()[cut..]).unwrap();
    drop(file);
    watching
        .until("file in processed/", || {
            files_in(dir, "processed").len() == 2
        })
        .await;
    assert_eq!(count(&t, "SELECT COUNT(*) FROM staff").await, 3);
    let txt = txt_of(dir, "processed", &files_in(dir, "processed")[0]);
    assert!(txt.contains("3 added"), "{txt}");
    watching.looks(3).await;
    for ignored in ["next.csv.part", "next.csv.tmp", ".roster.csv"] {
        assert!(dir.join(ignored).exists(), "{ignored} was touched");
    }
    assert_eq!(taken(&t).await.len(), 1);
    watching.stop().await;
}

#[tokio::test]
async fn the_same_file_dropped_twice_is_recorded_as_a_duplicate_and_not_imported_again() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let t = TestApp::spawn_with(Faults::default(), drop_folder(dir, "1h")).await;
    let watching = Watching::start(t.app.inbox().unwrap()).await;

    drop_renamed(dir, "roster.csv", &three());
    watching
        .until("first file processed", || {
            files_in(dir, "processed").len() == 2
        })
        .await;
    // HR's job runs again with nothing new: the same bytes, the same name.
    drop_renamed(dir, "roster.csv", &three());
    watching
        .until("second file processed", || {
            files_in(dir, "processed").len() == 4
        })
        .await;

    assert_eq!(
        taken(&t).await,
        vec![
            ("roster.csv".to_string(), "imported".to_string()),
            ("roster.csv".to_string(), "duplicate".to_string())
        ]
    );
    assert_eq!(count(&t, "SELECT COUNT(*) FROM roster_imports").await, 1);
    let processed = files_in(dir, "processed");
    // Same second on the app's clock: the second copy gets a suffix.
    assert_eq!(processed[2], "20270111T130000Z-roster.csv");
    assert_eq!(processed[0], "20270111T130000Z-roster-2.csv");
    let txt = txt_of(dir, "processed", &processed[0]);
    assert!(txt.contains("Outcome: duplicate"), "{txt}");
    assert!(txt.contains("not imported again"), "{txt}");
    let entries = audit(&t).await;
    let (actor, _, _, outcome, detail) = entries.last().unwrap();
    assert_eq!((actor.as_str(), outcome.as_str()), ("inbox", "failure"));
    assert_eq!(detail["duplicate_of"], "roster.csv");
    watching.stop().await;
}

#[tokio::test]
async fn a_completion_report_is_told_by_its_header_and_credits_the_campaign() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let t = TestApp::spawn_with(Faults::default(), |s| {
        drop_folder(dir, "1h")(s);
        s.inbox.notify_success = true;
    })
    .await;
    t.apply(CAMPAIGN).await;
    t.import(&three()).await;
    t.tick_at(launch()).await;
    let before = t.smtp.messages().len();
    t.clock.set(launch() + chrono::Duration::days(2));
    let watching = Watching::start(t.app.inbox().unwrap()).await;

    // Named like neither pattern: the header says what it is.
    let report = "Learner Email,Course Status,Completion Date\nann.lee@hospital.example.org,Completed,01/12/2027\n";
    drop_renamed(dir, "TRAIN export 2027-01-12.csv", report);
    watching
        .until("file in processed/", || {
            files_in(dir, "processed").len() == 2
        })
        .await;

    let completed = count(
        &t,
        "SELECT COUNT(*) FROM enrolments WHERE completed_at IS NOT NULL",
    )
    .await;
    assert_eq!(completed, 1);
    let txt = txt_of(dir, "processed", &files_in(dir, "processed")[0]);
    assert!(txt.contains("Read as: a completion report"), "{txt}");
    assert!(txt.contains("1 newly completed"), "{txt}");
    // notify_success: the admins hear of it too.
    let mail = t.smtp.wait_for(before + 1, WITHIN).await;
    let notice = mail.last().unwrap();
    assert_eq!(notice.recipients, vec![ADMIN.to_string()]);
    assert!(notice.parsed().subject().unwrap().contains("was imported"));
    watching.stop().await;
}

#[tokio::test]
async fn serve_stops_with_an_error_naming_the_folder_when_inbox_dir_is_missing() {
    let folder = tempfile::tempdir().unwrap();
    let missing = folder.path().join("not-there");
    let t = TestApp::spawn_with(Faults::default(), |s| {
        drop_folder(&missing, "1s")(s);
        s.http.bind = "127.0.0.1:0".into();
    })
    .await;
    let stop = CancellationToken::new();
    let run = tokio::time::timeout(WITHIN, t.app.clone().run_until_stopped(stop)).await;
    let error = format!("{:#}", run.expect("serve stops by itself").unwrap_err());
    assert!(
        error.contains("the drop folder failed") && error.contains("inbox.dir"),
        "{error}"
    );
}

/// Two instances on one PostgreSQL database watch one folder: each of
/// several files dropped at once is imported by exactly one of them.
#[tokio::test]
async fn two_instances_on_postgresql_import_each_file_once() {
    let Some(url) = postgres_or_skip("two_instances_on_postgresql_import_each_file_once").await
    else {
        return;
    };
    let db = TestDb::postgres(&url).await;
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().to_path_buf();
    let mut instances = Vec::new();
    for n in 0..2 {
        let mut settings = Settings::load_with_env(None, Vec::new()).unwrap();
        settings.database.url = db.url.clone();
        settings.security.token_key_file = db.dir.path().join("token.key");
        settings.smtp.transport = Transport::File;
        settings.smtp.outbox_dir = db.dir.path().join(format!("outbox-{n}"));
        drop_folder(&dir, "1h")(&mut settings);
        settings.inbox.roster_mode = ambassador::roster::ImportMode::Add;
        let clock: SharedClock = Arc::new(SystemClock);
        let app = App::build(settings, clock).await.unwrap();
        instances.push((Watching::start(app.inbox().unwrap()).await, app));
    }

    let files: Vec<PathBuf> = (0..6)
        .map(|n| PathBuf::from(format!("roster-{n}.csv")))
        .collect();
    for (n, file) in files.iter().enumerate() {
        let n = n as u32;
        let text = roster(&[
            (10 * n + 1, "Ann", &format!("Lee{n}")),
            (10 * n + 2, "Bo", &format!("Park{n}")),
        ]);
        drop_renamed(&dir, file.to_str().unwrap(), &text);
    }
    let (first, app) = &instances[0];
    first
        .until("every file processed", || {
            files_in(&dir, "processed").len() == 12
        })
        .await;
    // Both have looked again since: the other instance did not take a file twice.
    for (watching, _) in &instances {
        watching.looks(2).await;
    }

    let store = &app.store;
    let one = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(store.pool())
            .await
            .unwrap()
    };
    assert_eq!(one("SELECT COUNT(*) FROM roster_imports").await, 6);
    assert_eq!(
        one("SELECT COUNT(*) FROM inbox_files WHERE outcome = 'imported'").await,
        6
    );
    assert_eq!(one("SELECT COUNT(*) FROM inbox_files").await, 6);
    assert_eq!(one("SELECT COUNT(*) FROM staff").await, 12);
    assert!(files_in(&dir, "rejected").is_empty());
    for (watching, _) in instances {
        watching.stop().await;
    }
}
