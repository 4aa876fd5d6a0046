//! Logging: human-readable on a terminal, JSON lines for journald and files.
//! Logs go to stderr; stdout belongs to command output and reports.

use crate::config::{Log, LogFormat};
use std::io::IsTerminal;
use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber. RUST_LOG, when set, wins over `log.level`.
pub fn init(log: &Log, quiet: bool) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(if quiet { "warn" } else { &log.level }))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match log.format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests, demo inside a test) is harmless: keep the first.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().try_init()
    };
}
