//! The audit trail: each audited action leaves its entry (who, from where,
//! what, outcome), entries cannot be changed, the retention purge leaves
//! its own entry, and the exports are formula-safe.

mod common;

use ambassador::accounts::Role;
use ambassador::audit::{self, Action, Filter};
use ambassador::store::{ActorKind, AuditOutcome};
use common::admin::{account, no_redirect_client, session_cookie, sign_in_form, token_for};
use common::admin::{hidden_value, AdminServer, PASSWORD};
use common::app::{person, CAMPAIGN, HEADER};
use common::cli_json::{check_each, tables};
use common::process::{ambassador as command, config_for_app, stdout_of};
use reqwest::StatusCode;
use std::io::Write;
use std::process::Stdio;

/// The newest entry for `action`, failing the test when there is none.
async fn last(s: &AdminServer, action: Action) -> audit::Entry {
    let filter = Filter {
        action: action.as_str().to_string(),
        limit: 1,
        ..Default::default()
    };
    audit::entries(s.t.store(), &filter)
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {action} entry"))
}

fn roster() -> String {
    format!(
        "{HEADER}\n{}\n{}\n",
        person(1, "Ann", "Lee", "Procurement", "Buyer", ""),
        person(2, "Bo", "Chan", "Procurement", "Buyer", "")
    )
}

#[tokio::test]
async fn sign_in_success_and_failure_are_recorded_with_the_address() {
    let s = AdminServer::start().await;
    let c = no_redirect_client();
    account(&s, "ann.admin@hospital.example.org", Role::Admin).await;
    let wrong = sign_in_form(&s.base, &c, "ann.admin@hospital.example.org", "not it").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let failure = last(&s, Action::SignIn).await;
    assert_eq!(failure.outcome, AuditOutcome::Failure);
    assert_eq!(failure.actor_kind, ActorKind::Anonymous);
    assert_eq!(failure.actor, "ann.admin@hospital.example.org");
    assert_eq!(failure.address, "127.0.0.1");
    let right = sign_in_form(&s.base, &c, "ANN.admin@hospital.example.org", PASSWORD).await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    let success = last(&s, Action::SignIn).await;
    assert_eq!(success.outcome, AuditOutcome::Success);
    assert_eq!(success.actor_kind, ActorKind::Account);
    assert_eq!(success.actor, "ann.admin@hospital.example.org");
    assert_eq!(success.detail["role"], "admin");
    // The shared password still signs in, as a deprecated admin, named so.
    let shared = sign_in_form(&s.base, &c, "", PASSWORD).await;
    assert_eq!(shared.status(), StatusCode::SEE_OTHER);
    let entry = last(&s, Action::SignIn).await;
    assert_eq!(entry.actor_kind, ActorKind::Shared);
}

#[tokio::test]
async fn a_roster_import_is_recorded_with_the_file_digest_and_counts() {
    let s = AdminServer::start().await;
    let coordinator = account(&s, "coord@hospital.example.org", Role::Coordinator).await;
    let token = token_for(&s, &coordinator).await;
    let body = roster();
    let r = reqwest::Client::new()
        .post(s.url("/api/roster"))
        .bearer_auth(&token)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let entry = last(&s, Action::RosterImport).await;
    assert_eq!(entry.actor, "coord@hospital.example.org");
    assert_eq!(entry.outcome, AuditOutcome::Success);
    assert_eq!(entry.detail["sha256"], audit::sha256_hex(body.as_bytes()));
    assert_eq!(entry.detail["counts"]["added"], 2);
    // A dry run changes nothing and is not recorded.
    let dry = reqwest::Client::new()
        .post(s.url("/api/roster?dry_run=true"))
        .bearer_auth(&token)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(dry.status(), StatusCode::OK);
    let all = audit::entries(
        s.t.store(),
        &Filter {
            action: "roster.import".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(all.len(), 1);
}

#[tokio::test]
async fn completions_exemptions_and_campaign_status_are_recorded() {
    let s = AdminServer::start().await;
    s.t.import(&roster()).await;
    s.t.apply(CAMPAIGN).await;
    s.t.clock.advance(chrono::Duration::days(2));
    s.t.tick().await;
    let coordinator = account(&s, "coord@hospital.example.org", Role::Coordinator).await;
    let token = token_for(&s, &coordinator).await;
    let c = reqwest::Client::new();
    let report =
        "Email,Status,Completion Date\nann.lee@hospital.example.org,Completed,2027-01-12\n";
    let r = c
        .post(s.url("/api/completions?campaign=test"))
        .bearer_auth(&token)
        .body(report)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let entry = last(&s, Action::CompletionsImport).await;
    assert_eq!(entry.detail["sha256"], audit::sha256_hex(report.as_bytes()));
    assert_eq!(entry.detail["newly_completed"], 1);

    let r = c
        .post(s.url("/api/exemptions"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "email": "bo.chan@hospital.example.org", "campaign": "test", "reason": "on leave" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let entry = last(&s, Action::Exempt).await;
    assert_eq!(entry.target, "bo.chan@hospital.example.org");
    assert_eq!(entry.actor, "coord@hospital.example.org");
    assert_eq!(entry.detail["reason"], "on leave");
    // A refused exemption is recorded as a failure.
    let again = c
        .post(s.url("/api/exemptions"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "email": "bo.chan@hospital.example.org", "campaign": "test", "reason": "twice" }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(
        last(&s, Action::Exempt).await.outcome,
        AuditOutcome::Failure
    );

    for (path, action) in [
        ("pause", Action::CampaignPause),
        ("resume", Action::CampaignResume),
    ] {
        let r = c
            .post(s.url(&format!("/api/campaigns/test/{path}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let entry = last(&s, action).await;
        assert_eq!(
            (entry.target.as_str(), entry.outcome),
            ("test", AuditOutcome::Success)
        );
    }
}

#[tokio::test]
async fn report_exports_and_audit_exports_are_recorded_and_csv_is_formula_safe() {
    let s = AdminServer::start().await;
    s.t.apply(CAMPAIGN).await;
    let c = no_redirect_client();
    let admin = account(&s, "it@hospital.example.org", Role::Admin).await;
    // A failed sign-in whose "email" would be a formula in a spreadsheet.
    sign_in_form(&s.base, &c, "=HYPERLINK(\"http://x\")", "guess").await;
    let cookie = session_cookie(&sign_in_form(&s.base, &c, &admin.email, PASSWORD).await).unwrap();
    let csv = c
        .get(s.url("/admin/campaigns/test/report.csv"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    let entry = last(&s, Action::ReportExport).await;
    assert_eq!(
        (entry.target.as_str(), entry.detail["format"].as_str()),
        ("test", Some("csv"))
    );
    let export = c
        .get(s.url("/admin/audit.csv?action=sign_in"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), StatusCode::OK);
    let text = export.text().await.unwrap();
    assert!(text.contains("'=HYPERLINK"), "{text}");
    assert!(!text.contains(",=HYPERLINK"), "{text}");
    assert_eq!(
        last(&s, Action::AuditExport).await.actor,
        "it@hospital.example.org"
    );
    // The API gives the same entries as JSON, to admins only.
    let token = token_for(&s, &admin).await;
    let json: Vec<serde_json::Value> = reqwest::Client::new()
        .get(s.url("/api/audit?action=sign_in"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json.len(), 2, "the failed and the good sign-in: {json:?}");
    let bad = reqwest::Client::new()
        .get(s.url("/api/audit?from=yesterday"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_audit_page_filters_by_person_action_and_date() {
    let s = AdminServer::start().await;
    let c = no_redirect_client();
    let admin = account(&s, "it@hospital.example.org", Role::Admin).await;
    sign_in_form(&s.base, &c, "mallory@example.org", "guess").await;
    let cookie = session_cookie(&sign_in_form(&s.base, &c, &admin.email, PASSWORD).await).unwrap();
    let page = |query: &str| {
        let (c, cookie, url) = (
            c.clone(),
            cookie.clone(),
            s.url(&format!("/admin/audit{query}")),
        );
        async move {
            c.get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let mallory = page("?actor=mallory%40example.org").await;
    assert!(mallory.contains("data-total=\"1\""), "{mallory}");
    let today = ambassador::clock::Clock::now(&s.t.clock)
        .format("%Y-%m-%d")
        .to_string();
    let all_today = page(&format!("?action=sign_in&from={today}&to={today}")).await;
    assert!(all_today.contains("data-total=\"2\""), "{all_today}");
    let before = page("?from=2000-01-01&to=2000-01-02").await;
    assert!(before.contains("data-total=\"0\""), "{before}");
}

#[tokio::test]
async fn accounts_changed_on_the_page_are_recorded() {
    let s = AdminServer::start().await;
    let c = no_redirect_client();
    let admin = account(&s, "it@hospital.example.org", Role::Admin).await;
    let cookie = session_cookie(&sign_in_form(&s.base, &c, &admin.email, PASSWORD).await).unwrap();
    let page = c
        .get(s.url("/admin/accounts"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let csrf = hidden_value(&page.text().await.unwrap(), "csrf");
    let r = c
        .post(s.url("/admin/accounts"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "cno@hospital.example.org"),
            ("role", "viewer"),
            ("password", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/admin/accounts?notice=added");
    let added = last(&s, Action::AccountAdd).await;
    assert_eq!(
        (added.target.as_str(), added.actor.as_str()),
        ("cno@hospital.example.org", "it@hospital.example.org")
    );
    let cno =
        s.t.store()
            .account_by_email("cno@hospital.example.org")
            .await
            .unwrap()
            .unwrap();
    let r = c
        .post(s.url(&format!("/admin/accounts/{}/role", cno.id)))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("role", "coordinator")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/admin/accounts?notice=role");
    assert_eq!(
        last(&s, Action::AccountRole).await.detail["to"],
        "coordinator"
    );
    let r = c
        .post(s.url(&format!("/admin/accounts/{}/disable", cno.id)))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/admin/accounts?notice=disabled");
    assert_eq!(
        last(&s, Action::AccountDisable).await.target,
        "cno@hospital.example.org"
    );
    // An admin cannot disable themselves.
    let r = c
        .post(s.url(&format!("/admin/accounts/{}/disable", admin.id)))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/admin/accounts?notice=yourself");
}

#[tokio::test]
async fn the_command_line_records_accounts_tokens_apply_cancel_and_exports_as_the_os_user() {
    let s = AdminServer::start().await;
    s.t.import(&roster()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_for_app(dir.path(), &s.t);
    let run = |args: &[&str]| {
        let out = command(&config, args).env("USER", "jdoe").output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let mut child = command(
        &config,
        &[
            "admin",
            "add",
            "it@hospital.example.org",
            "--role",
            "admin",
            "--password-stdin",
        ],
    )
    .env("USER", "jdoe")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added = last(&s, Action::AccountAdd).await;
    assert_eq!(
        (added.actor.as_str(), added.actor_kind),
        ("jdoe", ActorKind::Cli)
    );
    assert_eq!(added.detail["password"], true);

    let secret = run(&[
        "admin",
        "token",
        "create",
        "it@hospital.example.org",
        "--name",
        "hr-sync",
        "--expires",
        "400d",
    ]);
    let secret = secret.trim();
    assert!(secret.starts_with("amb_"), "{secret}");
    let created = last(&s, Action::TokenCreate).await;
    assert_eq!(created.detail["name"], "hr-sync");
    assert!(
        !created.detail.to_string().contains(secret),
        "the secret is never recorded"
    );
    let ok = reqwest::Client::new()
        .get(s.url("/api/audit"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let id = created.detail["id"].as_i64().unwrap().to_string();
    run(&["admin", "token", "revoke", &id]);
    assert_eq!(
        last(&s, Action::TokenRevoke).await.target,
        "it@hospital.example.org"
    );
    let revoked = reqwest::Client::new()
        .get(s.url("/api/audit"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);

    std::fs::write(dir.path().join("c.toml"), CAMPAIGN).unwrap();
    run(&[
        "campaign",
        "apply",
        dir.path().join("c.toml").to_str().unwrap(),
    ]);
    assert_eq!(last(&s, Action::CampaignApply).await.target, "test");
    run(&["report", "--campaign", "test", "--format", "csv"]);
    assert_eq!(
        last(&s, Action::ReportExport).await.detail["channel"],
        "cli"
    );
    run(&[
        "exempt",
        "ann.lee@hospital.example.org",
        "--campaign",
        "test",
        "--reason",
        "elsewhere",
    ]);
    assert_eq!(last(&s, Action::Exempt).await.actor, "jdoe");
    run(&["campaign", "cancel", "test", "--yes"]);
    let cancel = last(&s, Action::CampaignCancel).await;
    assert_eq!(
        (cancel.target.as_str(), cancel.actor.as_str()),
        ("test", "jdoe")
    );
    run(&["admin", "disable", "it@hospital.example.org"]);
    assert_eq!(
        last(&s, Action::AccountDisable).await.actor_kind,
        ActorKind::Cli
    );
    run(&["admin", "enable", "it@hospital.example.org"]);
    assert_eq!(
        last(&s, Action::AccountEnable).await.target,
        "it@hospital.example.org"
    );
    run(&[
        "admin",
        "role",
        "it@hospital.example.org",
        "--role",
        "viewer",
    ]);
    assert_eq!(last(&s, Action::AccountRole).await.detail["to"], "viewer");
    run(&["admin", "disable", "it@hospital.example.org"]);
    let listed = stdout_of(&config, &["admin", "list"]);
    assert!(listed.contains("disabled"), "{listed}");
    // The JSON of `admin list` and `admin token list` is as docs/cli-json.md says.
    let accounts: serde_json::Value =
        serde_json::from_str(&stdout_of(&config, &["admin", "list", "--format", "json"])).unwrap();
    assert_eq!(accounts.as_array().unwrap().len(), 1);
    check_each("admin list", &accounts, &tables("admin list")[0]);
    let tokens: serde_json::Value = serde_json::from_str(&stdout_of(
        &config,
        &["admin", "token", "list", "--format", "json"],
    ))
    .unwrap();
    assert!(tokens[0]["revoked_at"].is_string(), "{tokens}");
    check_each("admin token list", &tokens, &tables("admin token list")[0]);
    assert!(
        !tokens.to_string().contains(secret),
        "no secret in the listing"
    );
}

#[tokio::test]
async fn a_reload_is_recorded_as_the_daemon() {
    let s = AdminServer::start().await;
    ambassador::reload::reload_and_log(&s.t.app).await;
    let entry = last(&s, Action::ConfigReload).await;
    assert_eq!(
        (entry.actor_kind, entry.outcome),
        (ActorKind::System, AuditOutcome::Success)
    );
}

#[tokio::test]
async fn entries_cannot_be_changed_and_the_retention_purge_leaves_its_own_entry() {
    let s = AdminServer::start().await;
    let c = no_redirect_client();
    sign_in_form(&s.base, &c, "old@example.org", "guess").await;
    let changed = sqlx::query("UPDATE audit_log SET actor = 'someone else'")
        .execute(s.t.store().pool())
        .await;
    assert!(changed.is_err(), "the table refuses updates");
    s.t.clock.advance(chrono::Duration::days(401));
    sign_in_form(&s.base, &c, "new@example.org", "guess").await;
    let now = ambassador::clock::to_millis(ambassador::clock::Clock::now(&s.t.clock));
    let retention = 400 * 86_400_000;
    let purged = audit::purge(s.t.store(), now, retention).await.unwrap();
    assert_eq!(purged, 1);
    let left = audit::entries(s.t.store(), &Filter::default())
        .await
        .unwrap();
    let actions: Vec<&str> = left.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["audit.purge", "sign_in"], "{left:?}");
    assert_eq!(left[0].detail["deleted"], 1);
    assert_eq!(left[1].actor, "new@example.org");
}
