//! The real binary, as tests run it: one-shot commands and `serve` processes.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// `ambassador --config CONFIG ARGS…`, with RUST_LOG cleared.
pub fn ambassador(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ambassador"));
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG");
    cmd
}

/// Runs a one-shot command and fails the test with its stderr if it fails.
pub fn run_ok(config: &Path, args: &[&str]) {
    let out = ambassador(config, args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `serve`, logging to `log`.
pub fn serve(config: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    ambassador(config, &["serve"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Sends SIGTERM and waits; true when the process exited with 0.
pub fn terminate(child: &mut Child) -> bool {
    let sent = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    sent.success() && child.wait().unwrap().success()
}
