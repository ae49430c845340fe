//! Where an agent may act. Commands (the agent's `run_command`, the test command, the worktree
//! setup, external runners) run by `sh -c` in the worktree under Loom's supervisor
//! (`supervise`): an allow-listed environment (`env`), a timeout, bounded output (`capture`),
//! every process they start ended with them (`contain`: a subreaper, and a cgroup with a
//! process limit where Loom may make one), no capabilities, and — where the kernel has it —
//! Landlock limiting writes to the worktree and a private temp dir, optionally denying TCP
//! connects, and keeping signals inside the sandbox. After every command Loom checks that the
//! worktree's `.git` still points at the git dir Loom made.
//!
//! File tools do not run here: they go through [`crate::agent::beneath`].

pub(crate) mod capture;
pub(crate) mod contain;
pub(crate) mod env;
mod session;
pub(crate) mod supervise;
mod wire;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use capture::Captured;
pub use session::finish_cleanups;
pub use supervise::{Enforced, sandbox_exec};

use capture::Output;
use contain::Cgroup;

/// `sandbox.network`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// Commands may connect anywhere (builds that fetch dependencies keep working).
    #[default]
    Allow,
    /// TCP connects are denied (Landlock ABI 4+; `loom doctor` says whether it holds).
    Deny,
}

/// `sandbox:` in a config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxFile {
    pub command_timeout_secs: Option<u64>,
    /// The longest a command may run whatever the model asks for (`timeout_s`).
    pub max_command_timeout_secs: Option<u64>,
    /// Bytes kept of each of stdout and stderr (half from the start, half from the end).
    pub output_cap_bytes: Option<usize>,
    /// Variables passed to commands besides the base set (PATH, HOME, LANG/LC_*, TERM, USER,
    /// SHELL, TMPDIR).
    pub env_allow: Vec<String>,
    /// Extra directories commands may write to under Landlock (e.g. `~/.cargo`).
    pub writable: Vec<PathBuf>,
    /// `false` turns Landlock off.
    pub landlock: Option<bool>,
    /// `allow` (default) or `deny` TCP connects from commands.
    pub network: Option<Network>,
    /// Most processes (threads) one command may have at once (default 4096).
    pub max_processes: Option<u32>,
}

impl SandboxFile {
    /// The `sandbox:` section of `config`, over all its layers (the repository's only when
    /// the user trusts it: see [`crate::config`]).
    pub fn from_config(config: &crate::config::Config) -> crate::error::Result<SandboxFile> {
        config.section("sandbox", SandboxFile::merge)
    }

    pub fn merge(&mut self, other: SandboxFile) {
        macro_rules! take {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        take!(
            command_timeout_secs,
            max_command_timeout_secs,
            output_cap_bytes,
            landlock,
            network,
            max_processes
        );
        self.env_allow.extend(other.env_allow);
        self.writable.extend(other.writable);
    }
}

/// Default command timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default longest timeout a model may ask for.
pub const DEFAULT_MAX_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Default bytes kept per output stream.
pub const DEFAULT_OUTPUT_CAP: usize = 32 * 1024;
/// Default process limit per command.
pub const DEFAULT_MAX_PROCESSES: u32 = 4096;

/// The confines of one agent.
#[derive(Clone, Debug)]
pub struct Sandbox {
    /// The worktree, canonical.
    root: PathBuf,
    /// A private temp dir (`TMPDIR` for commands).
    tmp: PathBuf,
    env: Vec<(OsString, OsString)>,
    pub timeout: Duration,
    /// The cap on any requested timeout.
    pub max_timeout: Duration,
    pub output_cap: usize,
    /// `loom` itself, the supervisor; `None` runs commands directly (tests of this module).
    helper: Option<PathBuf>,
    writable: Vec<PathBuf>,
    pub landlock: bool,
    pub network: Network,
    pub max_processes: u32,
    /// The worktree's `.git` file as Loom made it (checked after every command).
    dotgit: Option<String>,
    /// The supervisor serving this sandbox's commands (started with the first one; shared by
    /// clones; ended when the last clone is dropped).
    session: std::sync::Arc<tokio::sync::Mutex<Option<session::Session>>>,
}

/// What a command did.
#[derive(Clone, Debug)]
pub struct CommandOutput {
    /// The exit code (128 + the signal if one ended it); `None` when it was killed (timeout).
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub stdout: Captured,
    pub stderr: Captured,
    pub duration: Duration,
    /// The worktree's `.git` no longer points at Loom's git dir: what changed.
    pub tampered: Option<String>,
}

/// Which protections are active.
#[derive(Clone, Debug, Serialize)]
pub struct Protections {
    pub path_confinement: bool,
    pub env_allow_list: bool,
    pub timeouts: bool,
    /// Orphans come back to the supervisor and end with the command.
    pub process_tree: bool,
    /// A cgroup with a process limit per command (else `RLIMIT_NPROC`, or nothing for root).
    pub cgroup: bool,
    /// What the supervisor enforces here.
    pub enforced: Enforced,
}

impl Sandbox {
    /// A sandbox over `worktree` with a private `tmp` dir (both must exist).
    pub fn new(
        worktree: &Path,
        tmp: &Path,
        env: Vec<(OsString, OsString)>,
    ) -> std::io::Result<Sandbox> {
        let root = std::fs::canonicalize(worktree)?;
        let dotgit = std::fs::read_to_string(root.join(".git")).ok();
        Ok(Sandbox {
            root,
            tmp: std::fs::canonicalize(tmp)?,
            env,
            timeout: DEFAULT_TIMEOUT,
            max_timeout: DEFAULT_MAX_TIMEOUT,
            output_cap: DEFAULT_OUTPUT_CAP,
            helper: None,
            writable: Vec::new(),
            landlock: true,
            network: Network::Allow,
            max_processes: DEFAULT_MAX_PROCESSES,
            dotgit,
            session: std::sync::Arc::default(),
        })
    }

    /// Runs commands under the supervisor `helper` (the `loom` binary), with these extra
    /// writable paths.
    pub fn supervised(mut self, helper: PathBuf, writable: Vec<PathBuf>) -> Sandbox {
        self.helper = Some(helper);
        self.writable = writable;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `.git` file the worktree must keep (checked after every command); by default the
    /// one found when the sandbox was made.
    pub fn expecting_dotgit(mut self, content: String) -> Sandbox {
        self.dotgit = Some(content);
        self
    }

    /// The timeout for a command that asks for `requested`: the default when it asks for
    /// none, never more than [`Sandbox::max_timeout`] nor `left` (the bead's remaining time),
    /// never less than a second.
    pub fn timeout_for(&self, requested: Option<Duration>, left: Option<Duration>) -> Duration {
        let t = requested.unwrap_or(self.timeout).min(self.max_timeout);
        let t = left.map_or(t, |l| t.min(l));
        t.max(Duration::from_secs(1))
    }

    /// Checks the worktree's `.git` is still the file Loom made; the reason if not.
    pub fn check_git(&self) -> Option<String> {
        let expected = self.dotgit.as_deref()?;
        let path = self.root.join(".git");
        match std::fs::symlink_metadata(&path) {
            Err(_) => Some(".git was removed from the worktree".into()),
            Ok(m) if !m.file_type().is_file() => Some(format!(
                ".git in the worktree was replaced by a {}",
                if m.is_dir() {
                    "directory (another repository)"
                } else if m.file_type().is_symlink() {
                    "symlink"
                } else {
                    "special file"
                }
            )),
            Ok(_) => match std::fs::read_to_string(&path) {
                Ok(now) if now.trim_end() == expected.trim_end() => None,
                Ok(now) => Some(format!(
                    ".git in the worktree was rewritten to point elsewhere ({:?})",
                    now.trim().chars().take(200).collect::<String>()
                )),
                Err(e) => Some(format!(".git in the worktree cannot be read: {e}")),
            },
        }
    }

    /// Runs `command` with `sh -c` in the worktree. Never fails: spawn errors come back as a
    /// failed command with the reason on stderr.
    pub async fn run(&self, command: &str, timeout: Option<Duration>) -> CommandOutput {
        let argv = ["sh".to_owned(), "-c".to_owned(), command.to_owned()];
        self.run_program(&argv, None, timeout, &mut |_| {}).await
    }

    /// The writable paths and other options the supervisor gets.
    fn options(&self, cgroup: Option<&Cgroup>) -> supervise::Options {
        let root = rustix::process::getuid().is_root();
        supervise::Options {
            writable: self.writable_paths(),
            deny_network: self.network == Network::Deny,
            landlock: self.landlock,
            cgroup: cgroup.map(|c| c.path().to_path_buf()),
            max_processes: (cgroup.is_none() && !root).then_some(u64::from(self.max_processes)),
        }
    }

    /// Runs `argv` in the worktree under the sandbox's rules, feeding it `stdin`, calling
    /// `on_line` with each line it prints (stdout and stderr) as it prints it.
    pub async fn run_program(
        &self,
        argv: &[String],
        stdin: Option<Vec<u8>>,
        timeout: Option<Duration>,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> CommandOutput {
        let timeout = timeout.unwrap_or(self.timeout);
        if argv.is_empty() {
            return failed_output(self.output_cap, Instant::now(), "no program to run".into());
        }
        match &self.helper {
            Some(helper) => session::run(self, helper, argv, stdin, timeout, on_line).await,
            None => self.run_bare(argv, stdin, timeout, on_line).await,
        }
    }

    /// Runs `argv` directly in its own process group (no supervisor: tests of this module).
    async fn run_bare(
        &self,
        argv: &[String],
        stdin: Option<Vec<u8>>,
        timeout: Duration,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> CommandOutput {
        let started = Instant::now();
        let Some((program, args)) = argv.split_first() else {
            return failed_output(self.output_cap, started, "no program to run".into());
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .current_dir(&self.root)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("TMPDIR", &self.tmp)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return failed_output(
                    self.output_cap,
                    started,
                    format!("could not start {program}: {e}"),
                );
            }
        };
        // If this future is dropped (the run stops), the whole group goes.
        let mut ending = Ending { pid: child.id() };
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = pipe.write_all(&input).await;
            });
        }
        let rx = capture::forward(child.stdout.take(), child.stderr.take());
        let (status, timed_out, stdout, stderr) = self
            .collect(&mut child, &mut ending, rx, timeout, on_line)
            .await;
        ending.kill();
        ending.pid = None;
        CommandOutput {
            exit_code: if timed_out {
                None
            } else {
                status.and_then(|s| s.code())
            },
            timed_out,
            stdout,
            stderr,
            duration: started.elapsed(),
            tampered: self.check_git(),
        }
    }

    /// Gathers output until the command ends (or its timeout ends it).
    async fn collect(
        &self,
        child: &mut tokio::process::Child,
        ending: &mut Ending,
        mut rx: tokio::sync::mpsc::Receiver<(bool, Vec<u8>)>,
        timeout: Duration,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> (Option<std::process::ExitStatus>, bool, Captured, Captured) {
        let mut output = Output::new(self.output_cap);
        // A deadline past what the clock can hold is no deadline.
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        let mut timed_out = false;
        let mut streams_open = true;
        let status;
        loop {
            tokio::select! {
                chunk = rx.recv(), if streams_open => match chunk {
                    Some(c) => output.take(c, on_line),
                    None => streams_open = false,
                },
                s = child.wait() => {
                    status = s.ok();
                    // Children that left the group could keep the pipes open.
                    if streams_open {
                        output.drain(&mut rx, on_line).await;
                    }
                    break;
                }
                _ = sleep_until(deadline) => {
                    timed_out = true;
                    ending.kill();
                    status = child.wait().await.ok();
                    break;
                }
            }
        }
        let (stdout, stderr) = output.finish(on_line);
        (status, timed_out, stdout, stderr)
    }

    fn writable_paths(&self) -> Vec<PathBuf> {
        let mut w = vec![self.root.clone(), self.tmp.clone()];
        w.extend(self.writable.iter().cloned());
        for dev in [
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/dev/pts",
            "/dev/ptmx",
            "/dev/shm",
        ] {
            w.push(PathBuf::from(dev));
        }
        w
    }

    /// Which protections this sandbox applies (probing the supervisor).
    pub async fn protections(&self) -> Protections {
        let mut enforced = Enforced {
            landlock: "off".into(),
            ..Enforced::default()
        };
        if let Some(helper) = &self.helper {
            let opts = self.options(None);
            let mut args = vec![OsString::from("__sandbox-exec"), "--probe".into()];
            args.extend(opts.to_args());
            if let Ok(o) = tokio::process::Command::new(helper)
                .args(args)
                .output()
                .await
                && let Ok(e) = serde_json::from_slice::<Enforced>(&o.stdout)
            {
                enforced = e;
            }
        }
        let supervised = self.helper.is_some();
        Protections {
            path_confinement: true,
            env_allow_list: true,
            timeouts: true,
            process_tree: supervised,
            cgroup: supervised && Cgroup::create(self.max_processes.max(16)).is_some(),
            enforced,
        }
    }
}

pub(super) async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The process group of a bare command, killed whole when the command ends or its future is
/// dropped.
struct Ending {
    pid: Option<u32>,
}

impl Ending {
    fn kill(&self) {
        if let Some(pid) = self
            .pid
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A command that could not be started: exit 127 with `msg` on stderr.
fn failed_output(cap: usize, started: Instant, msg: String) -> CommandOutput {
    let mut stderr = Captured::new(cap);
    stderr.push(msg.as_bytes());
    CommandOutput {
        exit_code: Some(127),
        timed_out: false,
        stdout: Captured::new(cap),
        stderr,
        duration: started.elapsed(),
        tampered: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox() -> (tempfile::TempDir, tempfile::TempDir, Sandbox) {
        let wt = tempfile::tempdir().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(wt.path().join("src")).unwrap();
        std::fs::write(wt.path().join(".git"), "gitdir: elsewhere\n").unwrap();
        std::fs::write(wt.path().join("src/a.rs"), "fn a() {}\n").unwrap();
        let sb = Sandbox::new(wt.path(), tmp.path(), Vec::new()).unwrap();
        (wt, tmp, sb)
    }

    #[tokio::test]
    async fn commands_report_exit_codes_and_output() {
        let (_wt, _tmp, sb) = sandbox();
        let out = sb.run("echo out; echo err >&2; ls src; exit 3", None).await;
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.stdout.text(), "out\na.rs\n");
        assert_eq!(out.stderr.text(), "err\n");
        assert!(!out.timed_out);
        assert_eq!(out.tampered, None);
    }

    #[tokio::test]
    async fn a_replaced_dot_git_is_noticed() {
        let (_wt, _tmp, sb) = sandbox();
        let out = sb.run("echo 'gitdir: /tmp/evil' > .git", None).await;
        assert!(out.tampered.unwrap().contains("point elsewhere"));
        let out = sb.run("rm .git && mkdir .git", None).await;
        assert!(out.tampered.unwrap().contains("directory"));
    }

    #[test]
    fn timeouts_are_capped() {
        let (_wt, _tmp, mut sb) = sandbox();
        sb.max_timeout = Duration::from_secs(600);
        let huge = Some(Duration::from_secs(u64::MAX));
        assert_eq!(sb.timeout_for(huge, None), Duration::from_secs(600));
        assert_eq!(
            sb.timeout_for(huge, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(sb.timeout_for(None, None), DEFAULT_TIMEOUT);
        assert_eq!(
            sb.timeout_for(Some(Duration::ZERO), Some(Duration::ZERO)),
            Duration::from_secs(1)
        );
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_is_killed_with_its_children() {
        let (wt, _tmp, sb) = sandbox();
        let started = Instant::now();
        let out = sb
            .run(
                "sleep 30 & echo $! > child.pid; sleep 30",
                Some(Duration::from_millis(500)),
            )
            .await;
        assert!(out.timed_out);
        assert_eq!(out.exit_code, None, "killed");
        assert!(started.elapsed() < Duration::from_secs(10));
        let pid: i32 = std::fs::read_to_string(wt.path().join("child.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The background child is gone too (allow the kernel a moment to reap it).
        let gone = (0..50).any(|_| {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| !s.contains(") Z "))
                .unwrap_or(false);
            if alive {
                std::thread::sleep(Duration::from_millis(20));
            }
            !alive
        });
        assert!(gone, "child {pid} survived the timeout");
    }
}
