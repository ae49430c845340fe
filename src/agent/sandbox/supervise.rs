//! `loom __sandbox-exec --serve`: the supervisor every agent command runs under.
//!
//! Loom starts its own binary with the sandbox's options, once per sandbox session
//! (`session.rs`); this process
//! 1. joins the session's cgroup (made by Loom, with a process limit) if there is one,
//! 2. becomes a child subreaper, so orphaned daemons are re-parented to it, not to init,
//! 3. restricts **one thread** — no new privileges, every capability dropped (also from the
//!    bounding set, so even root gets none back at `exec`), `RLIMIT_NPROC` where there is no
//!    cgroup, and Landlock (writes only beneath the given paths; TCP connects denied with
//!    `--deny-network`; signals and abstract sockets scoped to the sandbox) — and starts each
//!    command from that thread, so the command inherits the restrictions while the supervisor
//!    itself stays outside them (the command can neither signal nor trace it),
//! 4. waits for each command, then SIGKILLs every process left in its tree, reaps them, and
//!    replies with the command's status (128 + signal if it was killed by one).
//!
//! SIGTERM (Loom's timeout or stop), SIGINT, SIGHUP or Loom's death end the tree the same way.
//! `--probe` prints what the restrictions achieve here instead (`loom doctor`).
//! Landlock and capabilities are per thread, so no `unsafe` pre-exec hook is needed.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::contain;

/// The options Loom passes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Options {
    pub writable: Vec<PathBuf>,
    pub deny_network: bool,
    pub landlock: bool,
    pub cgroup: Option<PathBuf>,
    /// `RLIMIT_NPROC` headroom when there is no cgroup (unprivileged users only; the kernel
    /// does not apply it to root).
    pub max_processes: Option<u64>,
}

/// What `__sandbox-exec` is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Run the commands Loom sends over stdin (a Unix socket), one at a time.
    Serve,
    /// Print what the restrictions achieve here, as JSON.
    Probe,
}

impl Options {
    /// The arguments that give these options to `__sandbox-exec`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        for w in &self.writable {
            a.push("--write".into());
            a.push(w.clone().into_os_string());
        }
        if self.deny_network {
            a.push("--deny-network".into());
        }
        if !self.landlock {
            a.push("--no-landlock".into());
        }
        if let Some(c) = &self.cgroup {
            a.push("--cgroup".into());
            a.push(c.clone().into_os_string());
        }
        if let Some(n) = self.max_processes {
            a.push("--max-processes".into());
            a.push(n.to_string().into());
        }
        a
    }

    fn parse(args: &[OsString]) -> Result<(Options, Mode), String> {
        let mut o = Options {
            landlock: true,
            ..Options::default()
        };
        let mut mode = None;
        let mut rest = args.iter();
        while let Some(a) = rest.next() {
            let mut value = |name: &str| {
                rest.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match a.to_str() {
                Some("--probe") => mode = Some(Mode::Probe),
                Some("--serve") => mode = Some(Mode::Serve),
                Some("--write") => o.writable.push(PathBuf::from(value("--write")?)),
                Some("--deny-network") => o.deny_network = true,
                Some("--no-landlock") => o.landlock = false,
                Some("--cgroup") => o.cgroup = Some(PathBuf::from(value("--cgroup")?)),
                Some("--max-processes") => {
                    let v = value("--max-processes")?;
                    o.max_processes = Some(
                        v.to_str()
                            .and_then(|s| s.parse().ok())
                            .ok_or_else(|| format!("--max-processes {v:?} is not a number"))?,
                    );
                }
                _ => return Err(format!("unexpected argument {a:?}")),
            }
        }
        let mode = mode.ok_or("--serve or --probe is needed")?;
        Ok((o, mode))
    }
}

/// What the restrictions achieved here (`loom doctor`, `Sandbox::protections`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enforced {
    /// `fully_enforced`, `partially_enforced`, `not_enforced` or `off`.
    pub landlock: String,
    /// The kernel's Landlock ABI (0 without Landlock).
    pub landlock_abi: u32,
    /// TCP connects are denied (needs ABI 4) — only when asked for.
    pub network_denied: bool,
    /// Signals and abstract sockets are scoped to the sandbox (ABI 6).
    pub scoped: bool,
    pub capabilities_dropped: bool,
    pub no_new_privs: bool,
}

/// Restricts the calling thread (never the whole process) as `o` says.
fn restrict_thread(o: &Options) -> Enforced {
    let mut e = Enforced {
        landlock: "off".into(),
        ..Enforced::default()
    };
    e.no_new_privs = rustix::thread::set_no_new_privs(true).is_ok();
    e.capabilities_dropped = drop_capabilities();
    if let Some(more) = o.max_processes {
        let n = contain::user_tasks().saturating_add(more);
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Nproc,
            rustix::process::Rlimit {
                current: Some(n),
                maximum: Some(n),
            },
        );
    }
    if o.landlock {
        apply_landlock(o, &mut e);
    }
    e
}

/// Empties every capability set of this thread, the bounding and ambient sets included (so an
/// `exec` as root gains nothing back). True when nothing is left.
fn drop_capabilities() -> bool {
    use rustix::thread::{CapabilitySet, CapabilitySets};
    let _ = rustix::thread::clear_ambient_capability_set();
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    for cap in 0..=last.min(63) {
        let _ = rustix::thread::remove_capability_from_bounding_set(
            CapabilitySet::from_bits_retain(1u64 << cap),
        );
    }
    let empty = CapabilitySets {
        effective: CapabilitySet::empty(),
        permitted: CapabilitySet::empty(),
        inheritable: CapabilitySet::empty(),
    };
    rustix::thread::set_capabilities(None, empty).is_ok()
        && rustix::thread::capabilities(None).is_ok_and(|c| {
            c.effective.is_empty() && c.permitted.is_empty() && c.inheritable.is_empty()
        })
}

fn apply_landlock(o: &Options, e: &mut Enforced) {
    use landlock::{
        ABI, AccessFs, AccessNet, LandlockStatus, Ruleset, RulesetAttr, RulesetCreatedAttr,
        RulesetStatus, Scope, path_beneath_rules,
    };
    let abi = ABI::V6;
    let mut ruleset = match Ruleset::default().handle_access(AccessFs::from_write(abi)) {
        Ok(r) => r,
        Err(_) => {
            e.landlock = "not_enforced".into();
            return;
        }
    };
    if o.deny_network {
        ruleset = match ruleset.handle_access(AccessNet::ConnectTcp) {
            Ok(r) => r,
            Err(_) => return,
        };
    }
    ruleset = match ruleset.scope(Scope::Signal | Scope::AbstractUnixSocket) {
        Ok(r) => r,
        Err(_) => return,
    };
    let status = ruleset
        .create()
        .and_then(|r| r.add_rules(path_beneath_rules(&o.writable, AccessFs::from_write(abi))))
        .and_then(|r| r.restrict_self());
    let Ok(status) = status else {
        e.landlock = "not_enforced".into();
        return;
    };
    e.landlock = match status.ruleset {
        RulesetStatus::FullyEnforced => "fully_enforced",
        RulesetStatus::PartiallyEnforced => "partially_enforced",
        RulesetStatus::NotEnforced => "not_enforced",
    }
    .into();
    if let LandlockStatus::Available { effective_abi, .. } = status.landlock {
        e.landlock_abi = effective_abi as u32;
        let enforced = status.ruleset != RulesetStatus::NotEnforced;
        e.network_denied = o.deny_network && enforced && e.landlock_abi >= 4;
        e.scoped = enforced && e.landlock_abi >= 6;
    }
}

/// The entry point of `loom __sandbox-exec [options] --serve` (or `--probe`, which prints
/// what would be enforced here as JSON). Returns the exit code. The supervisor is a process
/// of its own: its output is how it answers Loom, so it may print.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub fn sandbox_exec(args: &[OsString]) -> i32 {
    let (opts, mode) = match Options::parse(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("loom __sandbox-exec: {e}");
            return 2;
        }
    };
    if mode == Mode::Probe {
        let mut opts = opts;
        if opts.writable.is_empty() {
            opts.writable.push(std::env::temp_dir());
        }
        let e = std::thread::spawn(move || restrict_thread(&opts))
            .join()
            .unwrap_or_default();
        println!("{}", serde_json::to_string(&e).unwrap_or_default());
        return 0;
    }
    // A session of its own: the command has no controlling terminal (it cannot write to or
    // inject input into the terminal Loom runs in) and Loom ends it by this process group.
    let _ = rustix::process::setsid();
    if let Some(cg) = &opts.cgroup {
        // Best effort: if joining fails the tree and the timeout still end everything.
        let _ = std::fs::write(cg.join("cgroup.procs"), std::process::id().to_string());
    }
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    serve(opts)
}

/// What the restricted thread is asked to start.
struct Job {
    argv: Vec<String>,
    stdout: std::os::fd::OwnedFd,
    stderr: std::os::fd::OwnedFd,
    stdin: Option<std::os::fd::OwnedFd>,
}

/// A session: the thread that holds the restrictions starts each command Loom sends; this
/// thread waits for it, ends its tree, and replies with its status. The session ends when
/// Loom closes the socket (or stops it with SIGTERM, which also ends the running command).
#[allow(clippy::print_stderr)]
fn serve(opts: Options) -> i32 {
    use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
    use std::os::fd::AsFd;
    use std::process::Stdio;
    let mut signals = match signal_hook::iterator::Signals::new([SIGCHLD, SIGTERM, SIGINT, SIGHUP])
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("loom __sandbox-exec: cannot watch signals: {e}");
            return 126;
        }
    };
    let (jobs, incoming) = std::sync::mpsc::channel::<Job>();
    let (started_tx, started) = std::sync::mpsc::channel::<Result<i32, String>>();
    std::thread::spawn(move || {
        restrict_thread(&opts);
        for job in incoming {
            let spawned = job
                .argv
                .split_first()
                .ok_or_else(|| "no program".to_owned())
                .and_then(|(prog, args)| {
                    std::process::Command::new(prog)
                        .args(args)
                        .stdin(job.stdin.map_or_else(Stdio::null, Stdio::from))
                        .stdout(Stdio::from(job.stdout))
                        .stderr(Stdio::from(job.stderr))
                        .spawn()
                        .map(|c| c.id() as i32)
                        .map_err(|e| format!("cannot run {prog:?}: {e}"))
                });
            if started_tx.send(spawned).is_err() {
                return;
            }
        }
    });
    watch_parent();
    let stdin = std::io::stdin();
    let sock = stdin.as_fd();
    loop {
        let (req, mut fds) = match super::wire::recv::<super::wire::Request>(sock) {
            Ok(Some(r)) => r,
            _ => break, // Loom closed the session (or it broke): done
        };
        if fds.len() < 2 {
            break;
        }
        let stdin = (req.stdin && fds.len() > 2).then(|| fds.remove(2));
        let stderr = fds.remove(1);
        let stdout = fds.remove(0);
        let job = Job {
            argv: req.argv,
            stdout,
            stderr,
            stdin,
        };
        if jobs.send(job).is_err() {
            break;
        }
        let code = match started.recv() {
            Ok(Ok(pid)) => match wait_for(pid, &mut signals) {
                Some(code) => code,
                None => {
                    contain::end_tree();
                    return 128 + SIGTERM;
                }
            },
            Ok(Err(e)) => {
                eprintln!("loom __sandbox-exec: {e}");
                127
            }
            Err(_) => break,
        };
        contain::end_tree();
        // Vouch for the tree only if it could be seen and nothing of it is left.
        let me = std::process::id() as i32;
        let clean = contain::tree_visible() && contain::descendants(me).is_empty();
        if super::wire::send(sock, &super::wire::Reply { code, clean }, &[]).is_err() {
            break;
        }
    }
    contain::end_tree();
    0
}

/// Waits for child `pid` to end; its status, or `None` when told to stop (SIGTERM, SIGINT,
/// SIGHUP).
fn wait_for(pid: i32, signals: &mut signal_hook::iterator::Signals) -> Option<i32> {
    use signal_hook::consts::SIGCHLD;
    // It may have ended before the first signal was looked at.
    for (p, status) in contain::reap_all() {
        if p == pid {
            return Some(exit_code(status));
        }
    }
    for signal in signals.forever() {
        if signal != SIGCHLD {
            return None;
        }
        for (p, status) in contain::reap_all() {
            if p == pid {
                return Some(exit_code(status));
            }
        }
    }
    None
}

/// The shell's convention: the exit code, or 128 + the signal that ended the process.
fn exit_code(status: rustix::process::WaitStatus) -> i32 {
    if let Some(c) = status.exit_status() {
        c
    } else if let Some(s) = status.terminating_signal() {
        128 + s
    } else {
        1
    }
}

/// If Loom dies, this process is re-parented: then it ends the command as if told to stop.
fn watch_parent() {
    let parent = rustix::process::getppid();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(500));
            if rustix::process::getppid() != parent {
                let _ = signal_hook::low_level::raise(signal_hook::consts::SIGTERM);
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_through_arguments() {
        let o = Options {
            writable: vec![PathBuf::from("/w"), PathBuf::from("/t")],
            deny_network: true,
            landlock: false,
            cgroup: Some(PathBuf::from("/sys/fs/cgroup/pids/loom-1-0")),
            max_processes: Some(100),
        };
        let mut args = o.to_args();
        args.push("--serve".into());
        let (back, mode) = Options::parse(&args).unwrap();
        assert_eq!(mode, Mode::Serve);
        assert_eq!(back.writable, o.writable);
        assert!(back.deny_network && !back.landlock);
        assert_eq!(back.cgroup, o.cgroup);
        assert_eq!(back.max_processes, Some(100));
        let (_, mode) = Options::parse(&["--probe".into()]).unwrap();
        assert_eq!(mode, Mode::Probe);
        assert!(Options::parse(&o.to_args()).is_err(), "no mode");
        assert!(Options::parse(&["--bogus".into(), "--serve".into()]).is_err());
        assert!(Options::parse(&["--max-processes".into(), "x".into(), "--serve".into()]).is_err());
    }
}
