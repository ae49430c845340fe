//! Keeping every process an agent command starts together, and ending them all.
//!
//! Two mechanisms, used together where both exist:
//! - **the process tree** under the supervisor, which is a child subreaper: an orphan (a
//!   double-forked or `setsid` daemon) is re-parented to it instead of to init, so walking the
//!   tree from the supervisor finds everything the command started;
//! - **a cgroup** (`pids` controller; cgroup v1 or a delegated v2 subtree) that Loom creates
//!   per command with a process limit (`sandbox.max_processes`): a fork bomb stops at the
//!   limit, and emptying the cgroup ends whatever is left even if the supervisor itself died.
//!   Where no cgroup can be made (an unprivileged user without delegation), `RLIMIT_NPROC`
//!   bounds forks instead.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

/// How long ending a tree or a cgroup may take before Loom gives up on stragglers (processes
/// stuck in the kernel): they cannot run user code once SIGKILLed.
const END_WITHIN: Duration = Duration::from_secs(3);

fn pid(raw: i32) -> Option<Pid> {
    Pid::from_raw(raw)
}

/// The direct children of every thread of `of` (`/proc/<pid>/task/<tid>/children`).
fn children(of: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{of}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(t.path().join("children")) else {
            continue;
        };
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
    out
}

/// Every descendant of `root`, found breadth first.
pub(crate) fn descendants(root: i32) -> Vec<i32> {
    let mut seen = HashSet::new();
    let mut queue = vec![root];
    let mut out = Vec::new();
    while let Some(p) = queue.pop() {
        for c in children(p) {
            if seen.insert(c) {
                out.push(c);
                queue.push(c);
            }
        }
    }
    out
}

/// SIGKILLs every descendant of this process and reaps them, until none is left (a process
/// being killed cannot fork, so a fork bomb converges). Bounded by [`END_WITHIN`].
pub(crate) fn end_tree() {
    let me = std::process::id() as i32;
    let started = Instant::now();
    loop {
        reap_all();
        let left = descendants(me);
        if left.is_empty() || started.elapsed() > END_WITHIN {
            return;
        }
        for p in &left {
            if let Some(p) = pid(*p) {
                let _ = rustix::process::kill_process(p, Signal::KILL);
            }
        }
        // The killed are zombies in a moment; reap them (blocking only briefly).
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether this process's descendants can be seen (`/proc/<pid>/task/<tid>/children`, which
/// needs `CONFIG_PROC_CHILDREN`): without it nothing can be vouched for.
pub(crate) fn tree_visible() -> bool {
    let me = std::process::id();
    std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).is_ok()
}

/// SIGKILLs the descendants of `root` (another process: Loom ending a supervisor that did not
/// stop, or was stopped), then `root` itself. Bounded by [`END_WITHIN`].
pub(crate) fn kill_tree(root: i32) {
    let started = Instant::now();
    loop {
        let left = descendants(root);
        if left.is_empty() || started.elapsed() > END_WITHIN {
            break;
        }
        for p in left.iter().filter_map(|p| pid(*p)) {
            let _ = rustix::process::kill_process(p, Signal::KILL);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if let Some(p) = pid(root) {
        let _ = rustix::process::kill_process(p, Signal::KILL);
    }
}

/// The processes in cgroup `dir` now (its `cgroup.procs`).
pub(crate) fn cgroup_members(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| {
            t.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Reaps every child that has ended, without waiting.
pub(crate) fn reap_all() -> Vec<(i32, rustix::process::WaitStatus)> {
    let mut ended = Vec::new();
    while let Ok(Some((p, status))) = rustix::process::wait(rustix::process::WaitOptions::NOHANG) {
        ended.push((p.as_raw_nonzero().get(), status));
    }
    ended
}

/// Numbers the cgroups this process makes.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// A cgroup holding one command's processes, with a process limit. Dropping it ends every
/// process still in it and removes it.
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    /// A new cgroup beside this process's own (`pids` controller), limited to `max` tasks;
    /// `None` where this process may not make one.
    pub fn create(max: u32) -> Option<Cgroup> {
        let mine = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let name = format!(
            "loom-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        for base in candidates(&mine) {
            let dir = base.join(&name);
            if std::fs::create_dir(&dir).is_err() {
                continue;
            }
            let cg = Cgroup { dir };
            if std::fs::write(cg.dir.join("pids.max"), max.to_string()).is_ok() {
                return Some(cg);
            }
            // No pids controller here (a v2 subtree without it): not a limit, not ours.
            let _ = std::fs::remove_dir(&cg.dir);
        }
        None
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The processes in it now.
    pub fn members(&self) -> Vec<i32> {
        cgroup_members(&self.dir)
    }

    /// SIGKILLs everything in it until it is empty (bounded), then removes it.
    pub fn end(&self) {
        let started = Instant::now();
        // cgroup v2 ends a whole cgroup in one write.
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        loop {
            let left = self.members();
            if left.is_empty() || started.elapsed() > END_WITHIN {
                break;
            }
            for p in left {
                if let Some(p) = pid(p) {
                    let _ = rustix::process::kill_process(p, Signal::KILL);
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        // Emptied processes may take a moment to leave (zombies reaped by their parent).
        for _ in 0..100 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.end();
    }
}

/// Where a new `pids` cgroup may go, given `/proc/self/cgroup`: the v1 `pids` hierarchy at our
/// own place in it, else our own v2 cgroup (only useful where `pids` is delegated to it).
fn candidates(proc_self_cgroup: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "pids") {
            out.push(Path::new("/sys/fs/cgroup/pids").join(rel));
        } else if controllers.is_empty() && Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        {
            out.push(Path::new("/sys/fs/cgroup").join(rel));
        }
    }
    out
}

/// How many tasks (threads) the real user of this process runs now, for an `RLIMIT_NPROC`
/// that leaves room for `more`.
pub(crate) fn user_tasks() -> u64 {
    let uid = rustix::process::getuid().as_raw();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut n = 0u64;
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(p) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        use std::os::unix::fs::MetadataExt;
        if e.metadata().is_ok_and(|m| m.uid() == uid) {
            n += std::fs::read_dir(format!("/proc/{p}/task")).map_or(1, |t| t.count() as u64);
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_places_follow_proc_self_cgroup() {
        let v1 = "9:name=systemd:/\n8:pids:/user.slice\n4:memory:/x\n0::/\n";
        assert_eq!(
            candidates(v1)[0],
            PathBuf::from("/sys/fs/cgroup/pids/user.slice")
        );
        assert!(candidates("garbage").is_empty());
    }
}
