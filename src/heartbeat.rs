//! Progress marks of the long-running loops. The delivery worker beats on
//! every turn of its loop and the scheduler on every planning tick; the
//! systemd watchdog pings only while both are fresh, so a wedged loop gets
//! the daemon restarted instead of a process that is up and does nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When a loop last made progress (monotonic, real time: the watchdog
/// measures real time whatever clock the loop runs on).
#[derive(Debug, Clone)]
pub struct Heartbeat(Arc<Mutex<Instant>>);

impl Default for Heartbeat {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Instant::now())))
    }
}

impl Heartbeat {
    /// Records progress now.
    pub fn beat(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// How long ago the last progress was.
    pub fn age(&self) -> Duration {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_makes_it_fresh_again() {
        let beat = Heartbeat::default();
        std::thread::sleep(Duration::from_millis(20));
        assert!(beat.age() >= Duration::from_millis(20));
        beat.beat();
        assert!(beat.age() < Duration::from_millis(20));
    }
}
