//! Who holds a bead: the process that claimed it (host, pid, its start time), precisely enough
//! to tell it from a later process with the same pid, and whether it still runs.

use serde::{Deserialize, Serialize};

/// Who a process is, precisely enough to tell it from a later process with the same pid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub host: String,
    pub pid: u32,
    /// The process's start time (clock ticks since boot, from /proc), against pid reuse.
    pub pid_start: u64,
    /// When it started, RFC 3339.
    pub started: String,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Start time of process `pid` (field 22 of /proc/<pid>/stat), if it exists.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None; // a zombie is dead
    }
    fields.get(19)?.parse().ok()
}

impl Owner {
    /// This process.
    pub fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            host: hostname(),
            pid,
            pid_start: start_ticks(pid).unwrap_or(0),
            started: crate::bead::Timestamp::now().as_str().to_owned(),
        }
    }

    /// Whether this owner is this very process.
    pub fn is_current(&self) -> bool {
        self.pid == std::process::id()
            && self.host == hostname()
            && start_ticks(self.pid).is_some_and(|t| self.pid_start == 0 || t == self.pid_start)
    }

    /// Whether this owner's process is still running (on another host: assumed so).
    pub fn is_alive(&self) -> bool {
        if self.host != hostname() {
            return true;
        }
        start_ticks(self.pid).is_some_and(|t| self.pid_start == 0 || t == self.pid_start)
    }
}
