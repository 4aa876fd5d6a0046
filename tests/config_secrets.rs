//! Secrets through the real binary: `config check` and `serve` refuse bad
//! or contradictory secrets naming the keys; one-off commands read only the
//! secrets they use, so they run outside the unit.

use std::path::{Path, PathBuf};

/// Argon2id of "pw" with small parameters: a real, parseable hash.
const GOOD_HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$2ZpVu2cpvhR3GYC5HxcF0g";

/// A config file in `dir` with `extra` TOML appended; the database and
/// tracking key stay inside `dir`.
fn config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("ambassador.toml");
    let text = format!(
        "[database]\nurl = \"sqlite://{}\"\n[http]\nbind = \"127.0.0.1:0\"\n{extra}",
        dir.join("amb.db").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn ambassador(config: &Path, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("ambassador").unwrap();
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .current_dir(config.parent().unwrap())
        .env_remove("RUST_LOG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .timeout(std::time::Duration::from_secs(60));
    cmd
}

/// Runs `args` and returns (success, stderr).
fn run(config: &Path, args: &[&str]) -> (bool, String) {
    let out = ambassador(config, args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `config check` and `serve` both refuse the config, and say `expected`.
fn refused_by_check_and_serve(extra: &str, expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), extra);
    for command in [&["config", "check"][..], &["serve"]] {
        let (ok, stderr) = run(&config, command);
        assert!(!ok, "{command:?} must fail for {extra:?}");
        for words in expected {
            assert!(
                stderr.contains(words),
                "{command:?}: {words:?} missing from {stderr}"
            );
        }
        assert!(
            !stderr.contains("HTTP listening"),
            "{command:?} started anyway: {stderr}"
        );
    }
}

#[test]
fn a_malformed_admin_token_digest_is_refused() {
    refused_by_check_and_serve(
        "[security]\nadmin_token_sha256 = \"abc123\"\n",
        &["security.admin_token_sha256", "64 hexadecimal digits"],
    );
    // 64 characters, but not hex.
    let not_hex = "z".repeat(64);
    refused_by_check_and_serve(
        &format!("[security]\nadmin_token_sha256 = \"{not_hex}\"\n"),
        &["security.admin_token_sha256", "not all hexadecimal"],
    );
}

#[test]
fn a_well_formed_digest_and_hash_pass() {
    let dir = tempfile::tempdir().unwrap();
    let digest = "a".repeat(64);
    let config = config(
        dir.path(),
        &format!(
            "[security]\nadmin_token_sha256 = \"{digest}\"\nadmin_password_hash = \"{GOOD_HASH}\"\n"
        ),
    );
    let (ok, stderr) = run(&config, &["config", "check"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("configuration is valid"), "{stderr}");
}

#[test]
fn a_password_hash_that_is_not_argon2_is_refused() {
    // A valid PHC string, but PBKDF2: the sign-in could never verify it.
    refused_by_check_and_serve(
        "[security]\nadmin_password_hash = \"$pbkdf2-sha256$i=1000$c2FsdA$aGFzaGhhc2hoYXNo\"\n",
        &["security.admin_password_hash", "not argon2id"],
    );
    refused_by_check_and_serve(
        "[security]\nadmin_password_hash = \"hunter2\"\n",
        &["security.admin_password_hash", "PHC"],
    );
}

#[test]
fn contradictory_secrets_are_refused_with_both_key_names() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin-token");
    std::fs::write(&token, "t0ken-from-file\n").unwrap();
    let file = token.display();
    let digest = "b".repeat(64);
    for (extra, keys) in [
        (
            format!("[security]\nadmin_token = \"inline\"\nadmin_token_file = \"{file}\"\n"),
            ["security.admin_token ", "security.admin_token_file"],
        ),
        (
            format!(
                "[security]\nadmin_token_sha256 = \"{digest}\"\nadmin_token_file = \"{file}\"\n"
            ),
            ["security.admin_token_sha256", "security.admin_token_file"],
        ),
        (
            format!(
                "[smtp]\nusername = \"amb\"\npassword = \"inline\"\npassword_file = \"{file}\"\n"
            ),
            ["smtp.password ", "smtp.password_file"],
        ),
        (
            "[smtp]\npassword = \"inline\"\n".to_string(),
            ["smtp.password ", "smtp.username"],
        ),
        (
            "[smtp]\ndkim_selector = \"s1\"\n".to_string(),
            ["smtp.dkim_domain", "smtp.dkim_key_file"],
        ),
    ] {
        refused_by_check_and_serve(&extra, &keys);
    }
}

#[test]
fn an_empty_or_missing_secret_file_is_refused_by_check_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty-token");
    std::fs::write(&empty, "\n").unwrap();
    refused_by_check_and_serve(
        &format!("[security]\nadmin_token_file = \"{}\"\n", empty.display()),
        &["security.admin_token_file", "is empty"],
    );
    refused_by_check_and_serve(
        "[smtp]\nusername = \"amb\"\npassword_file = \"no-such-credential\"\n",
        &["smtp.password_file", "cannot read", "no-such-credential"],
    );
}

#[test]
fn one_off_commands_read_only_the_secrets_they_use() {
    let dir = tempfile::tempdir().unwrap();
    // As outside the unit: the credential files are not there.
    let config = config(
        dir.path(),
        "[smtp]\nusername = \"amb\"\npassword_file = \"smtp-password\"\n\
         [security]\nadmin_token_file = \"admin-token\"\n",
    );
    let roster = dir.path().join("staff.csv");
    std::fs::write(&roster, "Email,First Name\nann@hospital.example.org,Ann\n").unwrap();
    let roster = roster.to_str().unwrap();
    for command in [
        &["roster", "import", roster][..],
        &["roster", "list"],
        &["db", "migrate"],
        &["campaign", "list"],
    ] {
        let (ok, stderr) = run(&config, command);
        assert!(ok, "{command:?} needs no secret: {stderr}");
    }
    // The commands that use them still read them, and say which is missing.
    let (ok, stderr) = run(&config, &["report", "send-weekly"]);
    assert!(!ok);
    assert!(stderr.contains("smtp.password_file"), "{stderr}");
    assert!(!stderr.contains("admin_token_file"), "{stderr}");
    let (ok, stderr) = run(&config, &["config", "check"]);
    assert!(!ok);
    assert!(stderr.contains("smtp.password_file"), "{stderr}");
}
