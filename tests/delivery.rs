//! Campaign delivery end to end: roster, campaign file, planner, outbox
//! worker and a real SMTP server on loopback, on a manual clock. Every
//! received message is parsed with a real MIME parser.

mod common;

use chrono::Duration;
use common::app::{launch, person, TestApp, CAMPAIGN, HEADER};
use mail_parser::MimeHeaders;
use std::time::Duration as StdDuration;

const WAIT: StdDuration = StdDuration::from_secs(10);

fn roster(lines: &[String]) -> String {
    let mut csv = String::from(HEADER);
    for l in lines {
        csv.push('\n');
        csv.push_str(l);
    }
    csv.push('\n');
    csv
}

/// Ann and Bob report to Mia, Cy to Raj; Dee is a contractor, Eve a nurse.
fn team() -> String {
    roster(&[
        person(
            1,
            "Ann",
            "Lee",
            "Supply Chain",
            "Buyer",
            "mia.boss@hospital.example.org",
        ),
        person(
            2,
            "Bob",
            "Ng",
            "Procurement",
            "Buyer",
            "mia.boss@hospital.example.org",
        ),
        person(
            3,
            "Cy",
            "Ode",
            "Procurement",
            "Category Manager",
            "raj.chief@hospital.example.org",
        ),
        person(
            4,
            "Dee",
            "Fox",
            "Procurement",
            "Contractor",
            "raj.chief@hospital.example.org",
        ),
        person(
            5,
            "Eve",
            "Gray",
            "Nursing",
            "Registered Nurse",
            "raj.chief@hospital.example.org",
        ),
        person(6, "Mia", "Boss", "Supply Chain Leadership", "Director", ""),
    ])
}

fn email(first: &str, last: &str) -> String {
    format!(
        "{}.{}@hospital.example.org",
        first.to_lowercase(),
        last.to_lowercase()
    )
}

async fn launched() -> TestApp {
    let t = TestApp::spawn().await;
    t.import(&team()).await;
    t.apply(CAMPAIGN).await;
    t
}

#[tokio::test]
async fn nothing_is_sent_before_the_campaign_starts() {
    let t = launched().await;
    let (plan, sent) = t.tick_at(launch() - Duration::minutes(1)).await;
    assert_eq!((plan.enrolled, sent.sent), (0, 0));
    assert!(t.smtp.messages().is_empty());
}

#[tokio::test]
async fn the_announcement_reaches_exactly_the_audience_as_multipart_mail() {
    let t = launched().await;
    let (plan, sent) = t.tick_at(launch()).await;
    assert_eq!((plan.enrolled, sent.sent), (3, 3));
    let received = t.smtp.wait_for(3, WAIT).await;
    let mut to: Vec<String> = received.iter().map(|m| m.recipients.join(",")).collect();
    to.sort();
    assert_eq!(
        to,
        vec![email("Ann", "Lee"), email("Bob", "Ng"), email("Cy", "Ode")]
    );
    let ann = received
        .iter()
        .find(|m| m.recipients == [email("Ann", "Lee")])
        .unwrap();
    let parsed = ann.parsed();
    assert_eq!(
        ann.header("X-Ambassador-Step").as_deref(),
        Some("announcement")
    );
    assert_eq!(ann.header("X-Ambassador-Campaign").as_deref(), Some("test"));
    assert_eq!(
        ann.header("List-Id").as_deref(),
        Some("<test.hospital.example.org>")
    );
    assert_eq!(
        parsed.to().and_then(|a| a.first()).and_then(|a| a.name()),
        Some("Ann Lee")
    );
    assert_eq!(
        parsed
            .reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some("ambassador@hospital.example.org")
    );
    assert_eq!(
        parsed.content_type().map(|c| c.subtype()),
        Some(Some("alternative"))
    );
    let text = parsed.body_text(0).unwrap();
    let html = parsed.body_html(0).unwrap();
    let tracked = "https://ambassador.hospital.example.org/t/c/";
    assert!(
        text.contains("Hi Ann") && text.contains(tracked),
        "tracked course link: {text}"
    );
    assert!(html.contains(&format!("href=\"{tracked}")), "{html}");
    assert!(
        html.contains("src=\"https://ambassador.hospital.example.org/t/o/"),
        "open pixel: {html}"
    );
    assert!(
        text.contains("Monday, 25 January 2027"),
        "due date in the text: {text}"
    );
    let stored: String = sqlx::query_scalar("SELECT message_id FROM outbox WHERE recipient = $1")
        .bind(email("Ann", "Lee"))
        .fetch_one(t.store().pool())
        .await
        .unwrap();
    assert_eq!(format!("<{}>", ann.message_id().unwrap()), stored);
}

#[tokio::test]
async fn reminders_follow_the_schedule_and_planning_twice_sends_nothing_twice() {
    let t = launched().await;
    t.tick_at(launch()).await;
    let (_, early) = t
        .tick_at(launch() + Duration::days(7) - Duration::minutes(1))
        .await;
    assert_eq!(early.sent, 0, "no reminder before day 7");
    let (_, week) = t.tick_at(launch() + Duration::days(7)).await;
    assert_eq!(week.sent, 3);
    let (_, again) = t.tick().await;
    assert_eq!(
        again.sent, 0,
        "a second tick at the same time sends nothing"
    );
    let (_, last_call) = t.tick_at(launch() + Duration::days(12)).await;
    assert_eq!(last_call.sent, 3, "last call at due-2d");
    let steps: Vec<String> = t
        .smtp
        .wait_for(9, WAIT)
        .await
        .iter()
        .filter_map(|m| m.header("X-Ambassador-Step"))
        .collect();
    assert_eq!(steps.iter().filter(|s| *s == "reminder-1").count(), 3);
    assert_eq!(steps.iter().filter(|s| *s == "last-call").count(), 3);
    assert!(t.smtp.duplicates().is_empty());
}

#[tokio::test]
async fn nobody_completed_exempted_or_departed_gets_a_reminder() {
    let t = launched().await;
    t.tick_at(launch()).await;
    let campaign = t.campaign_id("test").await;
    let ann = t.staff_id(&email("Ann", "Lee")).await;
    t.store()
        .complete_enrolment(
            campaign,
            ann,
            ambassador::clock::to_millis(launch() + Duration::days(1)),
            "test",
        )
        .await
        .unwrap();
    t.store()
        .exempt(
            campaign,
            t.staff_id(&email("Bob", "Ng")).await,
            "on leave",
            ambassador::clock::to_millis(launch() + Duration::days(1)),
            &ambassador::store::exemption::Actor::cli("test"),
        )
        .await
        .unwrap();
    let mut without_cy = team()
        .lines()
        .filter(|l| !l.contains("Cy,Ode"))
        .collect::<Vec<_>>()
        .join("\n");
    without_cy.push_str(&format!(
        "\n{}\n",
        person(7, "Fay", "Ito", "Nursing", "Registered Nurse", "")
    ));
    t.import(&without_cy).await;
    t.tick_at(launch() + Duration::days(30)).await;
    let received = t.smtp.messages();
    let later: Vec<(String, String)> = received
        .iter()
        .skip(3)
        .map(|m| {
            (
                m.recipients.join(","),
                m.header("X-Ambassador-Step").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        later,
        vec![(email("Ann", "Lee"), "thanks".to_string())],
        "only Ann's thank-you after the announcement"
    );
    let outbox = t.outbox().await;
    assert!(!outbox.iter().any(|(r, s, st)| s != "thanks"
        && s != "announcement"
        && st == "sent"
        && r != &email("Ann", "Lee")));
}

#[tokio::test]
async fn each_manager_gets_one_digest_listing_their_overdue_people() {
    let t = launched().await;
    t.tick_at(launch()).await;
    let (_, sent) = t
        .tick_at(launch() + Duration::days(15) + Duration::hours(1))
        .await;
    let all = t.smtp.wait_for(3 + sent.sent as usize, WAIT).await;
    let digests: Vec<_> = all
        .iter()
        .filter(|m| m.header("X-Ambassador-Step").as_deref() == Some("escalation"))
        .collect();
    let mut managers: Vec<String> = digests.iter().map(|m| m.recipients.join(",")).collect();
    managers.sort();
    assert_eq!(
        managers,
        vec![
            "mia.boss@hospital.example.org",
            "raj.chief@hospital.example.org"
        ]
    );
    let mia = digests
        .iter()
        .find(|m| m.recipients == ["mia.boss@hospital.example.org"])
        .unwrap();
    let text = mia.parsed().body_text(0).unwrap().to_string();
    assert!(
        text.contains("Ann Lee") && text.contains("Bob Ng") && !text.contains("Cy Ode"),
        "{text}"
    );
    assert!(
        text.contains("Hi Mia"),
        "the manager is greeted by name from the roster: {text}"
    );
    let (_, again) = t.tick_at(launch() + Duration::days(16)).await;
    assert_eq!(again.sent, 0, "one digest per manager per week");
}

#[tokio::test]
async fn a_joiner_gets_their_own_schedule() {
    let t = launched().await;
    t.tick_at(launch()).await;
    let mut with_gil = team();
    with_gil.push_str(&format!(
        "{}\n",
        person(
            8,
            "Gil",
            "Roy",
            "Procurement",
            "Buyer",
            "raj.chief@hospital.example.org"
        )
    ));
    let joined = launch() + Duration::days(3);
    t.clock.set(joined);
    t.import(&with_gil).await;
    let (plan, sent) = t.tick().await;
    assert_eq!(
        (plan.enrolled, sent.sent),
        (1, 1),
        "Gil is announced on the next tick"
    );
    let (_, day7) = t.tick_at(launch() + Duration::days(7)).await;
    assert_eq!(
        day7.sent, 3,
        "the first three get reminder-1; Gil does not yet"
    );
    let (_, gil7) = t.tick_at(joined + Duration::days(7)).await;
    assert_eq!(gil7.sent, 1);
    let last = t.smtp.wait_for(8, WAIT).await.last().cloned().unwrap();
    assert_eq!(last.recipients, vec![email("Gil", "Roy")]);
    assert_eq!(
        last.header("X-Ambassador-Step").as_deref(),
        Some("reminder-1")
    );
}

#[tokio::test]
async fn applying_a_changed_campaign_resends_nothing() {
    let t = launched().await;
    t.tick_at(launch()).await;
    let changed = CAMPAIGN.replace("at = \"7d\"", "at = \"5d\"");
    let outcome = t.apply(&changed).await;
    assert!(!outcome.created && outcome.changed);
    assert!(
        !t.apply(&changed).await.changed,
        "the same file twice changes nothing"
    );
    let (_, sent) = t.tick_at(launch() + Duration::days(5)).await;
    assert_eq!(
        sent.sent, 3,
        "the new offset applies to reminders not yet sent"
    );
    let steps: Vec<String> = t
        .smtp
        .wait_for(6, WAIT)
        .await
        .iter()
        .filter_map(|m| m.header("X-Ambassador-Step"))
        .collect();
    assert_eq!(steps.iter().filter(|s| *s == "announcement").count(), 3);
}

#[tokio::test]
async fn messages_wait_for_the_send_window_in_the_persons_time_zone() {
    let t = TestApp::spawn().await;
    let mut csv = roster(&[person(1, "Ann", "Lee", "Procurement", "Buyer", "")]);
    csv.push_str(
        "E2,Lou,Paz,lou.paz@hospital.example.org,Procurement,Buyer,West,,America/Los_Angeles\n",
    );
    t.import(&csv).await;
    // Friday 15 January 2027, 21:00 in New York, 18:00 in Los Angeles: after hours in both.
    let windowed = CAMPAIGN
        .replace("starts_at = \"2027-01-11T14:00:00Z\"", "starts_at = \"2027-01-16T02:00:00Z\"")
        .replace("send_window = \"always\"", "[send_window]\ndays = \"Mon-Fri\"\nhours = \"09:00-16:00\"\ntime_zone = \"America/New_York\"\nholidays = [\"2027-01-18\"]");
    t.apply(&windowed).await;
    let friday = chrono::DateTime::parse_from_rfc3339("2027-01-16T02:00:00Z")
        .unwrap()
        .to_utc();
    assert_eq!(t.tick_at(friday).await.1.sent, 0, "Friday evening: nothing");
    // Monday is a holiday; Tuesday 08:59 New York is still too early.
    assert_eq!(
        t.tick_at(friday + Duration::days(2) + Duration::hours(15))
            .await
            .1
            .sent,
        0,
        "Monday 12:00 in New York is a holiday"
    );
    let tuesday_0900_ny = chrono::DateTime::parse_from_rfc3339("2027-01-19T14:00:00Z")
        .unwrap()
        .to_utc();
    assert_eq!(
        t.tick_at(tuesday_0900_ny - Duration::minutes(1))
            .await
            .1
            .sent,
        0
    );
    assert_eq!(
        t.tick_at(tuesday_0900_ny).await.1.sent,
        1,
        "Ann, in New York, at 09:00"
    );
    assert_eq!(
        t.tick_at(tuesday_0900_ny + Duration::hours(3)).await.1.sent,
        1,
        "Lou at 09:00 in Los Angeles"
    );
    assert_eq!(
        t.smtp.wait_for(2, WAIT).await[1].recipients,
        vec!["lou.paz@hospital.example.org"]
    );
}

#[tokio::test]
async fn a_paused_campaign_sends_nothing_until_resumed() {
    let t = launched().await;
    let clock = t.clock.clone();
    ambassador::campaign::set_status(
        t.store(),
        &clock,
        "test",
        ambassador::campaign::Status::Paused,
    )
    .await
    .unwrap();
    assert_eq!(t.tick_at(launch()).await.1.sent, 0);
    ambassador::campaign::set_status(
        t.store(),
        &clock,
        "test",
        ambassador::campaign::Status::Active,
    )
    .await
    .unwrap();
    assert_eq!(t.tick().await.1.sent, 3);
}

#[tokio::test]
async fn roster_values_cannot_change_headers_markup_or_templates() {
    let t = TestApp::spawn().await;
    let csv = roster(&["E1,{{campaign.contact}}<script>x</script>,Lee,ann.lee@hospital.example.org,Procurement,Buyer,Main,,".to_string()]);
    t.import(&csv).await;
    // CR/LF never pass roster import; put one in the database directly to prove the mailer holds too.
    sqlx::query("UPDATE staff SET last_name = $1")
        .bind("Lee\r\nBcc: victim@evil.example.org")
        .execute(t.store().pool())
        .await
        .unwrap();
    t.apply(CAMPAIGN).await;
    t.tick_at(launch()).await;
    let m = &t.smtp.wait_for(1, WAIT).await[0];
    assert_eq!(
        m.recipients,
        vec!["ann.lee@hospital.example.org"],
        "no extra recipient"
    );
    let raw = String::from_utf8_lossy(&m.raw);
    assert!(
        !raw.lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
        "{raw}"
    );
    let parsed = m.parsed();
    let html = parsed.body_html(0).unwrap();
    assert!(!html.contains("<script>"), "markup is escaped");
    assert!(
        html.contains("{{campaign.contact}}&lt;script&gt;"),
        "{html}"
    );
    let text = parsed.body_text(0).unwrap();
    assert!(
        text.contains("Hi {{campaign.contact}}<script>x</script>,"),
        "roster text is data, never a template: {text}"
    );
}

#[tokio::test]
async fn messages_are_dkim_signed_when_a_key_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dkim.pem");
    // Made here, so the test needs no openssl; tests/dkim.rs verifies such
    // signatures with an independent verifier.
    let rsa_key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let pem = rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_pem(&rsa_key, Default::default());
    std::fs::write(&key, pem.unwrap().as_bytes()).unwrap();
    let t = TestApp::spawn_with(Default::default(), |s| {
        s.smtp.dkim_selector = "amb2027".into();
        s.smtp.dkim_domain = "hospital.example.org".into();
        s.smtp.dkim_key_file = key.clone();
    })
    .await;
    t.import(&team()).await;
    t.apply(CAMPAIGN).await;
    t.tick_at(launch()).await;
    let m = &t.smtp.wait_for(1, WAIT).await[0];
    let signature = m.header("DKIM-Signature").expect("a DKIM-Signature header");
    assert!(
        signature.contains("d=hospital.example.org") && signature.contains("s=amb2027"),
        "{signature}"
    );
}

/// Outbox rows as the marks leave them: (id, status, not_before, smtp_reply, last_error, lease_until).
async fn marked(
    t: &TestApp,
) -> Vec<(
    i64,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
)> {
    sqlx::query_as(
        "SELECT id, status, not_before, smtp_reply, last_error, lease_until FROM outbox ORDER BY id",
    )
    .fetch_all(t.store().pool())
    .await
    .unwrap()
}

/// The team's announcements planned at launch and not yet claimed; the
/// launch instant in epoch ms.
async fn planned_at_launch() -> (TestApp, i64) {
    let t = launched().await;
    t.clock.set(launch());
    t.app.plan().await.unwrap();
    (t, ambassador::clock::to_millis(launch()))
}

#[tokio::test]
async fn sent_retry_and_final_marks_land_together_and_only_under_the_workers_lease() {
    use ambassador::store::outbox::Mark;
    use ambassador::store::state::OutboxStatus;
    let (t, now) = planned_at_launch().await;
    let store = t.store();
    let mine = store
        .claim_due(now, now + 60_000, "w1", 3, &[])
        .await
        .unwrap();
    assert_eq!(mine.len(), 3);
    let (a, b, c) = (mine[0].id, mine[1].id, mine[2].id);

    // A worker that does not hold the lease changes nothing.
    let not_mine = Mark::Sent {
        id: a,
        at: now + 1,
        reply: "250 not mine".into(),
    };
    store.record_marks("w2", &[not_mine]).await.unwrap();
    let before = marked(&t).await;
    let row_a = before.iter().find(|r| r.0 == a).unwrap();
    assert_eq!(
        (row_a.1.as_str(), row_a.5.is_some()),
        ("sending", true),
        "{row_a:?}"
    );

    let marks = [
        Mark::Sent {
            id: a,
            at: now + 1,
            reply: "250 2.0.0 queued as A".into(),
        },
        Mark::Retry {
            id: b,
            at: now + 1,
            retry_at: now + 90_000,
            error: "421 try later".into(),
        },
        Mark::Final {
            id: c,
            at: now + 1,
            status: OutboxStatus::Undeliverable,
            reply: "550 no such user".into(),
        },
    ];
    store.record_marks("w1", &marks).await.unwrap();

    let rows = marked(&t).await;
    let row = |id: i64| rows.iter().find(|r| r.0 == id).unwrap().clone();
    assert_eq!(row(a).1, "sent");
    assert_eq!(row(a).3.as_deref(), Some("250 2.0.0 queued as A"));
    assert_eq!((row(a).4, row(a).5.is_some()), (None, false));
    assert_eq!(row(b).1, "pending");
    assert_eq!(row(b).2, now + 90_000, "retried from retry_at");
    assert_eq!(
        (row(b).4.as_deref(), row(b).5.is_some()),
        (Some("421 try later"), false)
    );
    assert_eq!(row(c).1, "undeliverable");
    assert_eq!(
        (row(c).3.as_deref(), row(c).5.is_some()),
        (Some("550 no such user"), false)
    );
}

#[tokio::test]
async fn a_claim_takes_expired_leases_before_messages_that_fell_due() {
    let (t, now) = planned_at_launch().await;
    let store = t.store();
    // w0 claims the last message in claim order and dies: its lease runs out.
    let all = store
        .claim_due(now, now + 1_000, "w0", 100, &[])
        .await
        .unwrap();
    assert!(all.len() >= 3, "{}", all.len());
    let last = all.last().unwrap().id;
    let others: Vec<i64> = all.iter().map(|m| m.id).filter(|id| *id != last).collect();
    store.release(&others, "w0", now).await.unwrap();

    let claimed = store
        .claim_due(now + 2_000, now + 60_000, "w1", 2, &[])
        .await
        .unwrap();
    let ids: Vec<i64> = claimed.iter().map(|m| m.id).collect();
    assert!(
        ids.contains(&last),
        "the expired lease comes first: {ids:?} (expired {last})"
    );
    assert!(
        ids.contains(&others[0]),
        "then the first that fell due: {ids:?}"
    );
    assert_eq!(claimed.len(), 2);
    let again = claimed.iter().find(|m| m.id == last).unwrap();
    assert_eq!(
        again.attempts, 2,
        "a taken-over claim counts as another attempt"
    );
    assert!(
        again.staff_email.is_some(),
        "the claim carries what rendering needs"
    );
}

/// A sent message waits for its mark's commit without its send slot: with
/// one slot and the outbox locked against writes while the first message is
/// at the relay, the messages claimed after it still go out, and every mark
/// lands once the lock is gone.
#[tokio::test(flavor = "multi_thread")]
async fn a_mark_waiting_for_the_database_does_not_hold_up_the_next_send() {
    use ambassador::store::Backend;
    use common::smtp::{DataHold, Faults};
    use sqlx::Executor;
    let hold = DataHold::new();
    let t = TestApp::spawn_with(Faults::default().hold_data(&hold), |s| {
        s.delivery.concurrency = 1;
    })
    .await;
    t.import(&team()).await;
    t.apply(CAMPAIGN).await;
    t.clock.set(launch());
    let planned = t.app.plan().await.unwrap().enqueued;
    assert!(planned >= 3, "{planned} planned");

    let mut lock = t.store().pool().acquire().await.unwrap();
    let unsent_while_locked = |t: &TestApp| {
        let pool = t.store().pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox WHERE status <> 'sent'")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let (delivered, unsent) = tokio::join!(t.app.deliver_due(), async {
        hold.wait_held(1, WAIT).await;
        // The first message is at the relay: no mark can be written from now on.
        match t.store().backend() {
            Backend::Sqlite => lock.execute("BEGIN IMMEDIATE").await.unwrap(),
            Backend::Postgres => {
                lock.execute("BEGIN").await.unwrap();
                lock.execute("LOCK TABLE outbox IN SHARE MODE")
                    .await
                    .unwrap()
            }
        };
        hold.release();
        t.smtp.wait_for(3, WAIT).await;
        let unsent = unsent_while_locked(&t).await;
        lock.execute("ROLLBACK").await.unwrap();
        unsent
    });
    assert_eq!(
        unsent, planned as i64,
        "three messages went out while no mark could be written"
    );
    let delivered = delivered.unwrap();
    assert_eq!(delivered.sent, planned, "{delivered:?}");
    assert_eq!(unsent_while_locked(&t).await, 0);
}
