//! The admin web page in headless Chromium (through chromedriver and the
//! WebDriver protocol): sign in, upload a roster with an error and see it,
//! fix and apply it, read the announcement as staff would (open it, follow
//! the course link, confirm completion), check the dashboard's non-zero
//! figures against the scenario and `report::build`, preview
//! an email, pause the campaign, sign out. Every page gets an axe-core
//! accessibility check and a screenshot in target/browser-artifacts/.
//!
//! Without /usr/bin/chromium and /usr/bin/chromedriver the test says why and
//! passes, unless AMBASSADOR_REQUIRE_BROWSER=1 (CI), where it fails.

mod common;

use ambassador::clock::Clock;
use common::admin::{AdminServer, PASSWORD};
use common::app::{launch, person, CAMPAIGN, HEADER};
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// axe-core, installed by `npm install --prefix tests/browser` (see .ci/run).
const AXE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/browser/node_modules/axe-core/axe.min.js"
);

/// Whether the browser is here; when it is not, says why (or fails in CI).
fn browser_available() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER, AXE]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let reason = format!(
        "the browser test: {} not installed (apt-get install chromium chromium-driver; npm install --prefix tests/browser)",
        missing.join(" and ")
    );
    common::skip::skip(&reason, Some("AMBASSADOR_REQUIRE_BROWSER"));
    false
}

async fn start_driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    // Wait until it accepts connections (bounded: 10 s).
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Driver {
        child,
        port,
        _profile: tempfile::tempdir().unwrap(),
    }
}

async fn browser(driver: &Driver) -> Client {
    let profile = format!("--user-data-dir={}", driver._profile.path().display());
    let args = [
        // A person's browser: headless Chromium names itself HeadlessChrome,
        // which tracking rightly counts as a machine, not a reader.
        "--user-agent=Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        profile.as_str(),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": CHROMIUM, "args": args }),
    );
    // chromedriver is plain HTTP on loopback: no TLS stack needed.
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session starts")
}

fn artifacts() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target").into());
    let dir = PathBuf::from(target).join("browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// axe-core, from the npm install in tests/browser (see .ci/run).
fn axe_source() -> String {
    std::fs::read_to_string(AXE)
        .unwrap_or_else(|e| panic!("{AXE}: {e}; run `npm install --prefix tests/browser`"))
}

/// Saves a screenshot and asserts axe finds nothing serious or critical.
async fn check_page(c: &Client, axe: &str, name: &str) {
    std::fs::write(
        artifacts().join(format!("{name}.png")),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    c.execute(axe, vec![]).await.unwrap();
    let script = r#"const done = arguments[arguments.length - 1];
        axe.run(document, { iframes: false }).then(r => done(r.violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at ' + v.nodes.map(n => n.target.join(' ')).join(', '))));"#;
    let found = c.execute_async(script, vec![]).await.unwrap();
    assert_eq!(
        found,
        serde_json::json!([]),
        "accessibility problems on the {name} page"
    );
}

/// The text of the first element matching `css` once it contains `expected`
/// (a click's navigation may still be under way: poll, up to 10 s).
async fn text_with(c: &Client, css: &str, expected: &str) -> String {
    let mut last = String::new();
    for _ in 0..200 {
        if let Ok(element) = c.find(Locator::Css(css)).await {
            if let Ok(text) = element.text().await {
                if text.contains(expected) {
                    return text;
                }
                last = text;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "{css} never showed {expected:?} (last: {last:?})\n{}",
        c.source().await.unwrap_or_default()
    )
}

async fn text(c: &Client, css: &str) -> String {
    text_with(c, css, "").await
}

async fn upload_roster(c: &Client, file: &Path) {
    c.find(Locator::Css("#roster-file"))
        .await
        .unwrap()
        .send_keys(&file.display().to_string())
        .await
        .unwrap();
    c.find(Locator::Css(
        "form[action='/admin/roster'] button[type=submit]",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
}

/// Signs in on the sign-in page the browser is at; lands on the dashboard.
async fn sign_in(c: &Client) {
    c.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_with(c, "main h1", "Dashboard").await;
}

fn team(bad_line: bool) -> String {
    let third = if bad_line {
        "E3,Cy,Oh,not-an-address,Procurement,Buyer,Main,,"
    } else {
        "E3,Cy,Oh,cy.oh@hospital.example.org,Procurement,Buyer,Main,,"
    };
    format!(
        "{HEADER}\n{}\n{}\n{third}\n",
        person(1, "Ann", "Lee", "Procurement", "Buyer", ""),
        person(2, "Bob", "Ng", "Supply Chain", "Buyer", "")
    )
}

/// `who`'s announcement as a mail client shows it: its HTML part in a file,
/// links pointing at this server, opening in the same window. Returns its
/// file:// URL.
fn email_page(s: &AdminServer, dir: &Path, who: &str) -> String {
    let to = format!("{who}@hospital.example.org");
    let mail = s.t.smtp.messages();
    let message = mail
        .iter()
        .find(|m| m.recipients == [to.as_str()])
        .unwrap_or_else(|| panic!("nothing sent to {to}"));
    let html = message.parsed().body_html(0).unwrap().into_owned();
    assert!(html.contains("http://127.0.0.1/t/o/"), "{html}");
    let html = html
        .replace("http://127.0.0.1/", &s.url("/"))
        .replace(" target=\"_blank\"", "");
    let file = dir.join(format!("{who}.html"));
    std::fs::write(&file, html).unwrap();
    format!("file://{}", file.display())
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Opens the email (its pixel loads), clicks the course link, comes back,
/// clicks "completed" and confirms on the page it leads to.
async fn read_follow_and_complete(s: &AdminServer, c: &Client, email: &str) {
    c.goto(email).await.unwrap();
    click(c, "a[href*='/t/c/']").await;
    text_with(c, "body", "").await;
    for _ in 0..200 {
        if c.current_url().await.unwrap().as_str() == s.url("/healthz") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(c.current_url().await.unwrap().as_str(), s.url("/healthz"));
    c.back().await.unwrap();
    click(c, "a[href*='/t/done/']").await;
    text_with(c, "body", "Have you completed the course").await;
    click(c, "form button[type=submit]").await;
    text_with(c, "body", "Your completion is recorded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_signs_in_imports_checks_previews_pauses_and_signs_out() {
    if !browser_available() {
        return;
    }
    let s = AdminServer::start().await;
    // A completion link in the emails, and a course on this server, so that
    // following the course link lands on a page.
    let campaign = CAMPAIGN
        .replace("send_window", "completion_link = true\nsend_window")
        .replace("https://train.example.org/course/1", &s.url("/healthz"));
    s.t.apply(&campaign).await;
    let driver = start_driver().await;
    let c = browser(&driver).await;
    // Close the session even when an assertion fails, or Chromium outlives the test.
    let outcome = AssertUnwindSafe(the_whole_flow(&s, &c))
        .catch_unwind()
        .await;
    let _ = c.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn the_whole_flow(s: &AdminServer, c: &Client) {
    let axe = axe_source();
    c.set_window_size(1280, 1500).await.unwrap();

    // Sign in.
    c.goto(&s.url("/admin")).await.unwrap();
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/admin/sign-in"));
    check_page(c, &axe, "01-sign-in").await;
    sign_in(c).await;

    // A roster with a bad row: reported with its line, nothing written.
    let dir = tempfile::tempdir().unwrap();
    let (bad, good) = (
        dir.path().join("staff-bad.csv"),
        dir.path().join("staff.csv"),
    );
    std::fs::write(&bad, team(true)).unwrap();
    std::fs::write(&good, team(false)).unwrap();
    c.goto(&s.url("/admin/roster")).await.unwrap();
    check_page(c, &axe, "02-roster-upload").await;
    upload_roster(c, &bad).await;
    let rejected = text_with(c, "table.rejected tbody", "valid").await;
    assert!(
        rejected.starts_with('4') && rejected.contains("not a valid email address"),
        "{rejected}"
    );
    text_with(c, "[role=alert]", "Nothing was imported").await;
    check_page(c, &axe, "03-roster-rejected").await;

    // Fixed: the dry run, then apply.
    upload_roster(c, &good).await;
    text_with(c, "main h1", "Roster dry run").await;
    assert_eq!(text(c, "[data-count=added]").await, "3");
    check_page(c, &axe, "04-roster-dry-run").await;
    c.find(Locator::Css("form[action='/admin/roster/apply'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_with(c, "main h1", "Roster imported").await;
    assert_eq!(s.t.store().list_staff(false).await.unwrap().len(), 3);

    // The announcements go out. A day later Ann reads hers, follows the
    // course link and confirms her completion; Bob only reads his.
    s.t.tick_at(launch()).await;
    s.t.clock.set(launch() + chrono::Duration::days(1));
    read_follow_and_complete(s, c, &email_page(s, dir.path(), "ann.lee")).await;
    c.goto(&email_page(s, dir.path(), "bob.ng")).await.unwrap();
    // Twenty days in, the dashboard shows report::build's numbers.
    s.t.clock.set(launch() + chrono::Duration::days(20));
    c.goto(&s.url("/admin")).await.unwrap();
    text_with(c, "main h1", "Sign in").await; // the 12-hour session has expired
    sign_in(c).await;
    let row = s.t.store().campaign_by_slug("test").await.unwrap().unwrap();
    let r = ambassador::report::build(
        s.t.store(),
        &row,
        s.t.clock.now(),
        s.t.app.settings.report.min_group_size,
    )
    .await
    .unwrap();
    let expected = [
        ("enrolled", r.population.enrolled),
        ("reached", r.reach.people_reached),
        ("opened", r.engagement.opened_human),
        ("clicked", r.engagement.clicked_human),
        ("completed", r.outcome.completed),
        ("overdue", r.outcome.overdue),
    ];
    let figures: Vec<u64> = expected.iter().map(|(_, v)| *v).collect();
    assert_eq!(
        figures,
        [3, 3, 2, 1, 1, 2],
        "enrolled, reached, opened, clicked, completed, overdue"
    );
    for (metric, value) in expected {
        assert_eq!(
            text(c, &format!("[data-metric={metric}]")).await,
            value.to_string(),
            "{metric}"
        );
    }
    assert!(c
        .find(Locator::Css("figure.chart svg polyline"))
        .await
        .is_ok());
    check_page(c, &axe, "05-dashboard").await;
    c.set_window_size(390, 1400).await.unwrap();
    std::fs::write(
        artifacts().join("05-dashboard-phone.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    c.set_window_size(1280, 1500).await.unwrap();

    // The campaign page: the announcement as sent, in its sandboxed frame.
    c.find(Locator::Css("h2 a[href='/admin/campaigns/test']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let subject = text_with(c, ".step .subject", "Free course").await;
    assert!(
        subject.starts_with("Free course on forced labor"),
        "{subject}"
    );
    check_page(c, &axe, "06-campaign").await;
    c.enter_frame(Some(0)).await.unwrap();
    text_with(c, "body", "SOAR").await;
    c.enter_parent_frame().await.unwrap();

    // Pause.
    c.find(Locator::Css("form[action$='/pause'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_with(c, "[data-status]", "Paused").await;
    assert_eq!(
        s.t.store()
            .campaign_by_slug("test")
            .await
            .unwrap()
            .unwrap()
            .status,
        ambassador::store::CampaignStatus::Paused
    );
    check_page(c, &axe, "07-campaign-paused").await;

    // Sign out: the dashboard is closed again.
    c.find(Locator::Css("form.sign-out button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_with(c, "[role=status]", "signed out").await;
    c.goto(&s.url("/admin")).await.unwrap();
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/admin/sign-in"));
}

/// Signs in as a named account on the sign-in page the browser is at.
async fn sign_in_as(c: &Client, email: &str) {
    c.find(Locator::Css("#email"))
        .await
        .unwrap()
        .send_keys(email)
        .await
        .unwrap();
    sign_in(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_upload_form_and_an_admin_manages_accounts_and_reads_the_trail() {
    if !browser_available() {
        return;
    }
    let s = AdminServer::start().await;
    s.t.apply(CAMPAIGN).await;
    common::admin::account(
        &s,
        "cno@hospital.example.org",
        ambassador::accounts::Role::Viewer,
    )
    .await;
    common::admin::account(
        &s,
        "it@hospital.example.org",
        ambassador::accounts::Role::Admin,
    )
    .await;
    let driver = start_driver().await;
    let c = browser(&driver).await;
    let outcome = AssertUnwindSafe(roles_flow(&s, &c)).catch_unwind().await;
    let _ = c.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn roles_flow(s: &AdminServer, c: &Client) {
    let axe = axe_source();
    c.goto(&s.url("/admin/sign-in")).await.unwrap();
    sign_in_as(c, "cno@hospital.example.org").await;
    let nav = text(c, "header nav").await;
    assert!(
        !nav.contains("Roster"),
        "a viewer has no roster link: {nav}"
    );
    assert!(text(c, "header")
        .await
        .contains("cno@hospital.example.org (viewer)"));
    c.goto(&s.url("/admin/roster")).await.unwrap();
    text_with(c, "main h1", "Forbidden").await;
    assert!(
        c.find_all(Locator::Css("input[type=file]"))
            .await
            .unwrap()
            .is_empty(),
        "a viewer sees no upload form"
    );
    c.goto(&s.url("/admin/campaigns/test")).await.unwrap();
    text(c, "main h1").await;
    assert!(
        c.find_all(Locator::Css("form[action$='/exempt']"))
            .await
            .unwrap()
            .is_empty(),
        "a viewer sees no exemption form"
    );
    click(c, "form.sign-out button").await;
    text_with(c, "main h1", "Sign in").await;

    sign_in_as(c, "it@hospital.example.org").await;
    click(c, "a[href='/admin/accounts']").await;
    text_with(c, "main h1", "Accounts").await;
    check_page(c, &axe, "20-accounts").await;
    c.find(Locator::Css("#add-email"))
        .await
        .unwrap()
        .send_keys("coordinator@hospital.example.org")
        .await
        .unwrap();
    click(c, "form[action='/admin/accounts'] button[type=submit]").await;
    text_with(c, "main", "The account was added.").await;
    click(c, "a[href='/admin/audit']").await;
    text_with(c, "main h1", "Audit trail").await;
    let entries = text(c, "table.audit").await;
    assert!(entries.contains("account.add"), "{entries}");
    assert!(
        entries.contains("coordinator@hospital.example.org"),
        "{entries}"
    );
    check_page(c, &axe, "21-audit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_signs_in_through_the_identity_provider() {
    if !browser_available() || !common::oidc::provider_available() {
        return;
    }
    let s = common::oidc::SsoServer::start(|_| {}).await;
    let driver = start_driver().await;
    let c = browser(&driver).await;
    let outcome = AssertUnwindSafe(sign_in_through_the_provider(&s, &c))
        .catch_unwind()
        .await;
    let _ = c.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The sign-in page's provider button, the provider's own login page (on
/// another site: localhost, not 127.0.0.1), back to the dashboard.
async fn sign_in_through_the_provider(s: &common::oidc::SsoServer, c: &Client) {
    let axe = axe_source();
    c.set_window_size(1280, 1000).await.unwrap();
    c.goto(&s.url("/admin")).await.unwrap();
    let button = text_with(c, "a[href='/admin/sign-in/oidc']", "Sign in with").await;
    assert_eq!(button, "Sign in with Hospital Login");
    check_page(c, &axe, "30-sign-in-with-provider").await;
    click(c, "a[href='/admin/sign-in/oidc']").await;
    text_with(c, "h1", "Test provider").await;
    let at = c.current_url().await.unwrap();
    assert!(at.as_str().starts_with(&s.provider.issuer), "{at}");
    c.find(Locator::Css("#login"))
        .await
        .unwrap()
        .send_keys("carol")
        .await
        .unwrap();
    click(c, "form button[type=submit]").await;
    text_with(c, "main h1", "Dashboard").await;
    assert_eq!(c.current_url().await.unwrap().as_str(), s.url("/admin"));
    // The groups claim's training-coordinators maps to coordinator.
    assert_eq!(
        text(c, ".who").await,
        "carol.coord@hospital.example.org (coordinator)"
    );
    check_page(c, &axe, "31-dashboard-after-provider").await;
}
