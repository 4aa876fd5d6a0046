//! The systemd side of `serve`: readiness, stopping and watchdog
//! notifications over `$NOTIFY_SOCKET` (the unit is `Type=notify`).
//!
//! Every call is a no-op when the variable is unset, so `serve` run by hand,
//! in tests or under another supervisor behaves exactly the same. A failed
//! notification is logged, never fatal: the daemon's work matters more than
//! its bookkeeping with the service manager.

use crate::heartbeat::Heartbeat;
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

/// A loop the watchdog watches: its progress mark, and how much longer than
/// the watchdog interval it may legitimately go without a beat (a job that
/// runs every minute beats once a minute).
#[derive(Debug, Clone)]
pub struct Watched {
    pub name: &'static str,
    pub heartbeat: Heartbeat,
    pub slack: Duration,
}

/// Pings the watchdog at half the interval systemd asked for
/// (`WatchdogSec=`), until `stop`, but only while every watched loop made
/// progress within the interval (plus its slack). A wedged worker or
/// scheduler, or a wedged runtime, stops the pings and systemd restarts the
/// service.
pub fn spawn_watchdog(
    stop: CancellationToken,
    watched: Vec<Watched>,
) -> Option<tokio::task::JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled()?;
    tracing::debug!(
        interval_ms = interval.as_millis() as u64,
        "watchdog enabled"
    );
    Some(tokio::spawn(ping_until(interval, watched, stop)))
}

async fn ping_until(interval: Duration, watched: Vec<Watched>, stop: CancellationToken) {
    let mut ticks = tokio::time::interval((interval / 2).max(Duration::from_millis(10)));
    let mut stalled = None;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.cancelled() => break,
        }
        let late = watched
            .iter()
            .find(|w| w.heartbeat.age() > interval + w.slack);
        match late {
            None => {
                if let Some(name) = stalled.take() {
                    tracing::warn!(part = name, "progress again; watchdog pings resume");
                }
                notify(&[NotifyState::Watchdog], "WATCHDOG");
            }
            Some(w) if stalled != Some(w.name) => {
                tracing::error!(
                    part = w.name,
                    idle_ms = w.heartbeat.age().as_millis() as u64,
                    "no progress within the watchdog interval; watchdog pings stop, so systemd restarts the service"
                );
                stalled = Some(w.name);
            }
            Some(_) => {}
        }
    }
}

fn notify(states: &[NotifyState], what: &str) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, notification = what, "cannot notify systemd");
    }
}
