//! Skipping a test that needs something this machine lacks: the reason goes
//! where every log shows it, and CI turns the skip into a failure.

use std::io::Write;

/// Says why the calling test skips, or fails it when `require` names an
/// environment variable set to `1` (`.ci/run` sets one per prerequisite,
/// e.g. AMBASSADOR_REQUIRE_PG). The reason is written straight to the
/// process's stderr: the harness would swallow `eprintln!` of a passing
/// test unless run with `--nocapture`.
pub fn skip(reason: &str, require: Option<&str>) {
    if let Some(var) = require {
        assert!(
            std::env::var(var).as_deref() != Ok("1"),
            "{reason} ({var}=1: this test must run here)"
        );
    }
    let _ = std::io::stderr().write_all(format!("skipping: {reason}\n").as_bytes());
}
