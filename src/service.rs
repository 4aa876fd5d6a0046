//! The systemd side of `serve`: readiness, stopping and watchdog
//! notifications over `$NOTIFY_SOCKET` (the unit is `Type=notify`).
//!
//! Every call is a no-op when the variable is unset, so `serve` run by hand,
//! in tests or under another supervisor behaves exactly the same. A failed
//! notification is logged, never fatal: the daemon's work matters more than
//! its bookkeeping with the service manager.

use sd_notify::NotifyState;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Tells systemd the daemon is up: migrations ran and the listeners are
/// bound, so `systemctl start` returns only once requests can be served.
pub fn ready() {
    notify(
        &[NotifyState::Ready, NotifyState::Status("serving")],
        "READY",
    );
}

/// Tells systemd the daemon is draining, so `systemctl status` says so
/// while in-flight messages finish.
pub fn stopping() {
    notify(
        &[NotifyState::Stopping, NotifyState::Status("draining")],
        "STOPPING",
    );
}

/// Pings the watchdog at half the interval systemd asked for
/// (`WatchdogSec=`), until `stop`. The pings come from a runtime task, so a
/// wedged runtime stops them and systemd restarts the service.
pub fn spawn_watchdog(stop: CancellationToken) -> Option<tokio::task::JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled()? / 2;
    tracing::debug!(
        interval_ms = interval.as_millis() as u64,
        "watchdog enabled"
    );
    Some(tokio::spawn(ping_until(interval, stop)))
}

async fn ping_until(interval: Duration, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(10)));
    loop {
        tokio::select! {
            _ = ticks.tick() => notify(&[NotifyState::Watchdog], "WATCHDOG"),
            _ = stop.cancelled() => break,
        }
    }
}

fn notify(states: &[NotifyState], what: &str) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, notification = what, "cannot notify systemd");
    }
}
