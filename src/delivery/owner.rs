//! Who holds a claim. The id names the host, its boot, the PID namespace,
//! the PID and that process's start time, plus a nonce per worker, so a new
//! instance can decide that a claim's holder is a dead process on this host
//! (its PID gone, or reused by a process that started at another time) and
//! take its messages back at once. Claims of other hosts, of live processes
//! (several instances may run on one host) and ids it cannot read wait for
//! their lease.

use std::sync::OnceLock;

/// One worker's identity, as written to `outbox.leased_by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    host: String,
    boot: String,
    pid_namespace: String,
    pid: u32,
    started: String,
    nonce: String,
}

/// The parts shared by every worker of this process.
#[derive(Debug, Clone)]
struct Process {
    host: String,
    boot: String,
    pid_namespace: String,
    started: String,
}

fn this_process() -> &'static Process {
    static PROCESS: OnceLock<Process> = OnceLock::new();
    PROCESS.get_or_init(|| Process {
        host: read_trimmed("/proc/sys/kernel/hostname").unwrap_or_else(|| "ambassador".into()),
        boot: read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
        pid_namespace: std::fs::read_link("/proc/self/ns/pid")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        started: start_time(std::process::id()).unwrap_or_default(),
    })
}

impl Owner {
    /// A new worker of this process, with a fresh nonce.
    pub fn current() -> Self {
        let p = this_process();
        Self {
            host: p.host.clone(),
            boot: p.boot.clone(),
            pid_namespace: p.pid_namespace.clone(),
            pid: std::process::id(),
            started: p.started.clone(),
            nonce: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    /// `host/boot/pidns/pid/start/nonce`; no part contains a `/`.
    pub fn id(&self) -> String {
        let clean = |s: &str| s.replace('/', "_");
        format!(
            "{}/{}/{}/{}/{}/{}",
            clean(&self.host),
            clean(&self.boot),
            clean(&self.pid_namespace),
            self.pid,
            clean(&self.started),
            self.nonce
        )
    }

    /// Reads an id written by [`Owner::id`]; `None` for other shapes
    /// (e.g. ids of older versions), which are never taken for dead.
    pub fn parse(id: &str) -> Option<Self> {
        let parts: Vec<&str> = id.split('/').collect();
        let [host, boot, pid_namespace, pid, started, nonce] = parts.as_slice() else {
            return None;
        };
        Some(Self {
            host: host.to_string(),
            boot: boot.to_string(),
            pid_namespace: pid_namespace.to_string(),
            pid: pid.parse().ok()?,
            started: started.to_string(),
            nonce: nonce.to_string(),
        })
    }

    /// True only when `other` ran on this host, in this boot and PID
    /// namespace, and its process no longer runs. Unknown means alive.
    pub fn outlived(&self, other: &Owner) -> bool {
        let decidable = !self.boot.is_empty()
            && !self.pid_namespace.is_empty()
            && !self.started.is_empty()
            && !other.started.is_empty();
        if !decidable
            || other.host != self.host
            || other.boot != self.boot
            || other.pid_namespace != self.pid_namespace
        {
            return false;
        }
        if other.pid == self.pid {
            // Our PID: the holder is this process (alive) or an earlier one.
            return other.started != self.started;
        }
        match start_time(other.pid) {
            None => true,                              // no such process
            Some(started) => started != other.started, // the PID was reused
        }
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The process's start time in clock ticks since boot (field 22 of
/// `/proc/PID/stat`, counted after the command name, which may hold spaces).
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_reads_back() {
        let me = Owner::current();
        assert_eq!(Owner::parse(&me.id()), Some(me));
        assert_eq!(Owner::parse("oldhost-0123abcd"), None);
    }

    #[test]
    fn live_processes_and_other_hosts_are_not_outlived() {
        let me = Owner::current();
        assert!(!me.outlived(&Owner::current()), "this process is alive");
        let parent = Owner {
            pid: std::os::unix::process::parent_id(),
            started: start_time(std::os::unix::process::parent_id()).unwrap(),
            ..Owner::current()
        };
        assert!(!me.outlived(&parent), "the parent process is alive");
        let elsewhere = Owner {
            host: "another-host".into(),
            pid: 999_999_999,
            ..Owner::current()
        };
        assert!(!me.outlived(&elsewhere));
    }

    #[test]
    fn a_gone_or_reused_pid_is_outlived() {
        let me = Owner::current();
        let gone = Owner {
            pid: 999_999_999,
            ..Owner::current()
        };
        assert!(me.outlived(&gone));
        let earlier_self = Owner {
            started: "1".into(),
            ..Owner::current()
        };
        assert!(me.outlived(&earlier_self), "same PID, earlier start");
    }
}
