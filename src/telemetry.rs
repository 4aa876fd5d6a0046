//! Logging: human-readable on a terminal, JSON lines for journald and files.
//! Logs go to stderr; stdout belongs to command output and reports.

use crate::config::{Log, LogFormat};
use std::io::IsTerminal;
use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber. RUST_LOG, when set, wins over `log.level`.
pub fn init(log: &Log, quiet: bool) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(directives(&log.level, quiet)))
        .unwrap_or_else(|_| EnvFilter::new(directives("info", quiet)));
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

/// The filter for `log.level`. At `info` the log is the daemon's own
/// sentences: the libraries (sqlx, hyper, lettre, tokio-cron-scheduler...)
/// say only warnings and errors, their info lines are for `debug`. A level
/// with directives (`"info,sqlx=debug"`) is the admin's choice, taken as is.
fn directives(level: &str, quiet: bool) -> String {
    let level = level.trim();
    if quiet {
        return "warn".into();
    }
    if level.eq_ignore_ascii_case("info") {
        "warn,ambassador=info".into()
    } else {
        level.to_string()
    }
}

/// `text` with every email address replaced by `<address>`.
///
/// Email addresses are personal data: they may appear at debug level only.
/// Relay replies and error chains often quote the recipient
/// ("550 5.1.1 <ann@hospital.org>: unknown user"), so whatever such text is
/// logged at info, warn or error passes through here first.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for c in text.chars() {
        if is_address_char(c) {
            word.push(c);
        } else {
            push_scrubbed(&mut out, &word);
            word.clear();
            out.push(c);
        }
    }
    push_scrubbed(&mut out, &word);
    out
}

fn is_address_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-' | '@')
}

fn push_scrubbed(out: &mut String, word: &str) {
    match word.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
            out.push_str("<address>")
        }
        _ => out.push_str(word),
    }
}

#[cfg(test)]
mod tests {
    use super::{directives, scrub};

    #[test]
    fn at_info_only_the_daemon_speaks_and_directives_are_kept() {
        assert_eq!(directives("info", false), "warn,ambassador=info");
        assert_eq!(directives("debug", false), "debug");
        assert_eq!(directives("info,sqlx=debug", false), "info,sqlx=debug");
        assert_eq!(directives("debug", true), "warn");
    }

    #[test]
    fn scrub_hides_addresses_and_keeps_the_rest() {
        assert_eq!(
            scrub("550 5.1.1 <ann.lee+x@hospital.org>: user unknown"),
            "550 5.1.1 <<address>>: user unknown"
        );
        assert_eq!(
            scrub("to bob@x.org, from a@b"),
            "to <address>, from <address>"
        );
        assert_eq!(
            scrub("connection refused @ 10:00"),
            "connection refused @ 10:00"
        );
    }
}
