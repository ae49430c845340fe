//! Where an agent may act: paths confined to its worktree (no `..`, no absolute paths, no
//! symlink escapes, no writes into `.git/` or `.beads/`), and commands run by `sh -c` in the
//! worktree with a timeout, an output cap, their own process group (killed as a whole), an
//! environment without secrets, and — where the kernel has it — Landlock limiting writes to
//! the worktree and a private temp dir.
//!
//! Landlock is applied by Loom's own binary (`loom __sandbox-exec`), which restricts itself and
//! then becomes `sh`: no `unsafe` pre-exec hook is needed.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

/// `sandbox:` in a config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxFile {
    pub command_timeout_secs: Option<u64>,
    /// Bytes kept of each of stdout and stderr (half from the start, half from the end).
    pub output_cap_bytes: Option<usize>,
    /// Variables passed to commands even though their names look secret (`*_KEY`, …).
    pub env_allow: Vec<String>,
    /// Extra directories commands may write to under Landlock (e.g. `~/.cargo`).
    pub writable: Vec<PathBuf>,
    /// `false` turns Landlock off.
    pub landlock: Option<bool>,
}

impl SandboxFile {
    pub fn merge(&mut self, other: SandboxFile) {
        if other.command_timeout_secs.is_some() {
            self.command_timeout_secs = other.command_timeout_secs;
        }
        if other.output_cap_bytes.is_some() {
            self.output_cap_bytes = other.output_cap_bytes;
        }
        if other.landlock.is_some() {
            self.landlock = other.landlock;
        }
        self.env_allow.extend(other.env_allow);
        self.writable.extend(other.writable);
    }
}

/// Default command timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default bytes kept per output stream.
pub const DEFAULT_OUTPUT_CAP: usize = 32 * 1024;

/// The confines of one agent.
#[derive(Clone, Debug)]
pub struct Sandbox {
    /// The worktree, canonical.
    root: PathBuf,
    /// A private temp dir (`TMPDIR` for commands).
    tmp: PathBuf,
    env: Vec<(OsString, OsString)>,
    pub timeout: Duration,
    pub output_cap: usize,
    /// `loom` itself, to apply Landlock; `None` runs commands without it.
    helper: Option<PathBuf>,
    writable: Vec<PathBuf>,
}

/// Whether a variable name looks like it holds a secret.
pub fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    n.ends_with("_KEY")
        || n.ends_with("_TOKEN")
        || n.ends_with("_SECRET")
        || n == "TOKENHUB_API_KEY"
}

/// The environment commands get: the current one without secret-looking names (unless
/// allow-listed), without the named `secret_vars`, and without any variable whose value
/// contains one of `secret_values`.
pub fn scrubbed_env(
    secret_vars: &[&str],
    secret_values: &[&str],
    allow: &[String],
) -> Vec<(OsString, OsString)> {
    scrub_env(std::env::vars_os(), secret_vars, secret_values, allow)
}

/// [`scrubbed_env`] over a given set of variables.
pub fn scrub_env(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
    secret_vars: &[&str],
    secret_values: &[&str],
    allow: &[String],
) -> Vec<(OsString, OsString)> {
    vars.into_iter()
        .filter(|(k, v)| {
            let name = k.to_string_lossy();
            if allow.iter().any(|a| *a == name) {
                return true;
            }
            if secret_name(&name) || secret_vars.iter().any(|s| *s == name) {
                return false;
            }
            let value = v.to_string_lossy();
            !secret_values
                .iter()
                .any(|s| s.len() >= 4 && value.contains(s))
        })
        .collect()
}

/// Captured output of one stream: the first and last bytes, and how many there were.
#[derive(Clone, Debug, Default)]
pub struct Captured {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: usize,
    cap: usize,
}

impl Captured {
    fn new(cap: usize) -> Captured {
        Captured {
            cap: cap.max(2),
            ..Captured::default()
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len();
        let half = self.cap / 2;
        let mut rest = bytes;
        if self.head.len() < half {
            let take = (half - self.head.len()).min(rest.len());
            self.head.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        self.tail.extend(rest);
        while self.tail.len() > self.cap - half {
            self.tail.pop_front();
        }
    }

    /// Total bytes the stream produced.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The text, head and tail, with a marker where bytes were dropped.
    pub fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.head).into_owned();
        let kept = self.head.len() + self.tail.len();
        if self.total > kept {
            s.push_str(&format!("\n… [{} bytes omitted] …\n", self.total - kept));
        }
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        s.push_str(&String::from_utf8_lossy(&tail));
        s
    }
}

/// What a command did.
#[derive(Clone, Debug)]
pub struct CommandOutput {
    /// The exit code; `None` when killed by a signal.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub stdout: Captured,
    pub stderr: Captured,
    pub duration: Duration,
}

/// Which protections are active.
#[derive(Clone, Debug, Serialize)]
pub struct Protections {
    pub path_confinement: bool,
    pub env_scrub: bool,
    pub timeouts: bool,
    pub process_groups: bool,
    /// `fully_enforced`, `partially_enforced`, `not_enforced` or `off`.
    pub landlock: String,
}

impl Sandbox {
    /// A sandbox over `worktree` with a private `tmp` dir (both must exist).
    pub fn new(
        worktree: &Path,
        tmp: &Path,
        env: Vec<(OsString, OsString)>,
    ) -> std::io::Result<Sandbox> {
        Ok(Sandbox {
            root: std::fs::canonicalize(worktree)?,
            tmp: std::fs::canonicalize(tmp)?,
            env,
            timeout: DEFAULT_TIMEOUT,
            output_cap: DEFAULT_OUTPUT_CAP,
            helper: None,
            writable: Vec::new(),
        })
    }

    /// Applies Landlock to commands through `helper` (the `loom` binary) with these extra
    /// writable paths.
    pub fn with_landlock(mut self, helper: PathBuf, writable: Vec<PathBuf>) -> Sandbox {
        self.helper = Some(helper);
        self.writable = writable;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path the agent may read.
    pub fn resolve_read(&self, raw: &str) -> Result<PathBuf, String> {
        self.resolve(raw, false)
    }

    /// A path the agent may write.
    pub fn resolve_write(&self, raw: &str) -> Result<PathBuf, String> {
        self.resolve(raw, true)
    }

    fn resolve(&self, raw: &str, write: bool) -> Result<PathBuf, String> {
        let raw = raw.trim();
        let p = Path::new(if raw.is_empty() { "." } else { raw });
        let mut rel = PathBuf::new();
        for comp in p.components() {
            match comp {
                Component::Normal(c) => rel.push(c),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(format!(
                        "`{raw}`: `..` is not allowed; paths stay inside the repository"
                    ));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(format!(
                        "`{raw}`: absolute paths are not allowed; give a path relative to the repository root"
                    ));
                }
            }
        }
        if write {
            let protected = rel
                .components()
                .any(|c| c.as_os_str() == ".git" || c.as_os_str() == ".beads");
            if protected || rel.as_os_str().is_empty() {
                return Err(format!(
                    "`{raw}`: .git/ and .beads/ are not writable by tools"
                ));
            }
        }
        let full = self.root.join(&rel);
        // The deepest part that exists, with every symlink resolved, must stay inside.
        let mut existing = full.clone();
        while !existing.exists() && existing.symlink_metadata().is_err() {
            if !existing.pop() {
                break;
            }
        }
        let real = std::fs::canonicalize(&existing).map_err(|_| {
            format!("`{raw}`: a symlink on this path points outside the repository (or nowhere)")
        })?;
        if !real.starts_with(&self.root) {
            return Err(format!(
                "`{raw}`: a symlink on this path points outside the repository"
            ));
        }
        if write {
            let inside_rel = real.strip_prefix(&self.root).unwrap_or(&real);
            if inside_rel
                .components()
                .any(|c| c.as_os_str() == ".git" || c.as_os_str() == ".beads")
            {
                return Err(format!(
                    "`{raw}`: this path leads into .git/ or .beads/, which tools may not write"
                ));
            }
        }
        Ok(full)
    }

    /// Runs `command` with `sh -c` in the worktree. Never fails: spawn errors come back as a
    /// failed command with the reason on stderr.
    pub async fn run(&self, command: &str, timeout: Option<Duration>) -> CommandOutput {
        let argv = ["sh".to_owned(), "-c".to_owned(), command.to_owned()];
        self.run_program(&argv, None, timeout, &mut |_| {}).await
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
        let started = Instant::now();
        let failed = |cap: usize, msg: String| {
            let mut stderr = Captured::new(cap);
            stderr.push(msg.as_bytes());
            CommandOutput {
                exit_code: Some(127),
                timed_out: false,
                stdout: Captured::new(cap),
                stderr,
                duration: started.elapsed(),
            }
        };
        let Some((program, args)) = argv.split_first() else {
            return failed(self.output_cap, "no program to run".into());
        };
        let mut cmd = match &self.helper {
            Some(helper) => {
                let mut c = tokio::process::Command::new(helper);
                c.arg("__sandbox-exec");
                for w in self.writable_paths() {
                    c.arg("--write").arg(w);
                }
                c.arg("--").arg(program).args(args);
                c
            }
            None => {
                let mut c = tokio::process::Command::new(program);
                c.args(args);
                c
            }
        };
        cmd.current_dir(&self.root)
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
            Err(e) => return failed(self.output_cap, format!("could not start {program}: {e}")),
        };
        let pgid = child.id();
        // If this future is dropped (the run stops), the whole group goes, not just the child.
        struct GroupGuard(Option<u32>);
        impl Drop for GroupGuard {
            fn drop(&mut self) {
                kill_group(self.0);
            }
        }
        let _group = GroupGuard(pgid);
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = pipe.write_all(&input).await;
            });
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(bool, Vec<u8>)>(64);
        for (is_err, stream) in [
            (
                false,
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            ),
            (
                true,
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            ),
        ] {
            if let Some(mut s) = stream {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if tx.send((is_err, buf[..n].to_vec())).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                });
            }
        }
        drop(tx);
        let (mut stdout, mut stderr) = (
            Captured::new(self.output_cap),
            Captured::new(self.output_cap),
        );
        let (mut line_out, mut line_err) = (Vec::new(), Vec::new());
        let deadline = tokio::time::Instant::now() + timeout;
        let mut timed_out = false;
        let mut streams_open = true;
        let mut status = None;
        loop {
            tokio::select! {
                chunk = rx.recv(), if streams_open => match chunk {
                    Some((is_err, bytes)) => {
                        let (cap, line) = if is_err { (&mut stderr, &mut line_err) } else { (&mut stdout, &mut line_out) };
                        cap.push(&bytes);
                        emit_lines(line, &bytes, on_line);
                    }
                    None => streams_open = false,
                },
                s = child.wait(), if status.is_none() => {
                    status = Some(s.ok());
                    // Children that left the group could keep the pipes open: give them a moment.
                    if streams_open {
                        let grace = tokio::time::Instant::now() + Duration::from_secs(2);
                        while let Ok(Some((is_err, bytes))) = tokio::time::timeout_at(grace, rx.recv()).await {
                            let (cap, line) = if is_err { (&mut stderr, &mut line_err) } else { (&mut stdout, &mut line_out) };
                            cap.push(&bytes);
                            emit_lines(line, &bytes, on_line);
                        }
                    }
                    break;
                }
                _ = tokio::time::sleep_until(deadline) => {
                    timed_out = true;
                    kill_group(pgid);
                    status = Some(child.wait().await.ok());
                    break;
                }
            }
        }
        kill_group(pgid);
        for rest in [line_out, line_err] {
            if !rest.is_empty() {
                on_line(&String::from_utf8_lossy(&rest));
            }
        }
        CommandOutput {
            exit_code: status.flatten().and_then(|s| s.code()),
            timed_out,
            stdout,
            stderr,
            duration: started.elapsed(),
        }
    }

    fn writable_paths(&self) -> Vec<PathBuf> {
        let mut w = vec![self.root.clone(), self.tmp.clone()];
        w.extend(self.writable.iter().cloned());
        for dev in [
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/dev/tty",
            "/dev/pts",
            "/dev/ptmx",
            "/dev/shm",
        ] {
            w.push(PathBuf::from(dev));
        }
        w
    }

    /// Which protections this sandbox applies (probing Landlock with the helper).
    pub async fn protections(&self) -> Protections {
        let landlock = match &self.helper {
            None => "off".to_owned(),
            Some(helper) => {
                let out = tokio::process::Command::new(helper)
                    .args(["__sandbox-exec", "--probe"])
                    .output()
                    .await;
                match out {
                    Ok(o) if o.status.success() => {
                        String::from_utf8_lossy(&o.stdout).trim().to_owned()
                    }
                    _ => "not_enforced".to_owned(),
                }
            }
        };
        Protections {
            path_confinement: true,
            env_scrub: true,
            timeouts: true,
            process_groups: true,
            landlock,
        }
    }
}

/// Calls `on_line` for every complete line in `pending` + `bytes`; keeps the rest.
fn emit_lines(pending: &mut Vec<u8>, bytes: &[u8], on_line: &mut (dyn FnMut(&str) + Send)) {
    pending.extend_from_slice(bytes);
    while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = pending.drain(..=nl).collect();
        on_line(String::from_utf8_lossy(&line[..line.len() - 1]).trim_end_matches('\r'));
    }
}

fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

/// `loom __sandbox-exec [--probe] [--write DIR]... -- PROGRAM ARGS…`: restricts writes to the
/// given paths with Landlock (best effort), then becomes PROGRAM. With `--probe`, prints how
/// well Landlock is enforced here and exits.
pub fn sandbox_exec(args: &[OsString]) -> i32 {
    use landlock::{
        ABI, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, path_beneath_rules,
    };
    let mut writable = Vec::new();
    let mut probe = false;
    let mut rest = args.iter();
    let mut program = Vec::new();
    while let Some(a) = rest.next() {
        match a.to_str() {
            Some("--probe") => probe = true,
            Some("--write") => {
                if let Some(p) = rest.next() {
                    writable.push(PathBuf::from(p));
                }
            }
            Some("--") => {
                program.extend(rest.by_ref().cloned());
                break;
            }
            _ => {
                eprintln!("loom __sandbox-exec: unexpected argument {a:?}");
                return 2;
            }
        }
    }
    if probe {
        let dir = std::env::temp_dir();
        writable.push(dir);
    }
    let abi = ABI::V5;
    let status = Ruleset::default()
        .handle_access(AccessFs::from_write(abi))
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(path_beneath_rules(&writable, AccessFs::from_write(abi))))
        .and_then(|r| r.restrict_self());
    let enforced = match &status {
        Ok(s) => match s.ruleset {
            RulesetStatus::FullyEnforced => "fully_enforced",
            RulesetStatus::PartiallyEnforced => "partially_enforced",
            _ => "not_enforced",
        },
        Err(_) => "not_enforced",
    };
    if probe {
        println!("{enforced}");
        return 0;
    }
    let Some((prog, prog_args)) = program.split_first() else {
        eprintln!("loom __sandbox-exec: no program given after --");
        return 2;
    };
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(prog).args(prog_args).exec();
    eprintln!("loom __sandbox-exec: cannot run {prog:?}: {err}");
    127
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox() -> (tempfile::TempDir, tempfile::TempDir, Sandbox) {
        let wt = tempfile::tempdir().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(wt.path().join("src")).unwrap();
        std::fs::create_dir_all(wt.path().join(".beads")).unwrap();
        std::fs::write(wt.path().join(".git"), "gitdir: elsewhere\n").unwrap();
        std::fs::write(wt.path().join("src/a.rs"), "fn a() {}\n").unwrap();
        let sb = Sandbox::new(wt.path(), tmp.path(), Vec::new()).unwrap();
        (wt, tmp, sb)
    }

    #[test]
    fn paths_stay_inside() {
        let (wt, _tmp, sb) = sandbox();
        assert!(sb.resolve_read("src/a.rs").unwrap().ends_with("src/a.rs"));
        assert!(sb.resolve_write("src/new/b.rs").is_ok());
        assert!(
            sb.resolve_read("./src/../src/a.rs")
                .unwrap_err()
                .contains("`..`")
        );
        assert!(
            sb.resolve_read("../../etc/passwd")
                .unwrap_err()
                .contains("`..`")
        );
        assert!(
            sb.resolve_read("/etc/passwd")
                .unwrap_err()
                .contains("absolute")
        );
        assert!(
            sb.resolve_write(".git/config")
                .unwrap_err()
                .contains(".git/ and .beads/")
        );
        assert!(
            sb.resolve_write(".beads/x.yaml")
                .unwrap_err()
                .contains(".git/ and .beads/")
        );
        assert!(
            sb.resolve_read(".beads/x.yaml").is_ok(),
            "reading beads is fine"
        );
        std::os::unix::fs::symlink("/etc", wt.path().join("etc")).unwrap();
        assert!(
            sb.resolve_read("etc/passwd")
                .unwrap_err()
                .contains("symlink")
        );
        assert!(
            sb.resolve_write("etc/evil")
                .unwrap_err()
                .contains("symlink")
        );
        std::os::unix::fs::symlink(wt.path().join(".beads"), wt.path().join("notes")).unwrap();
        assert!(
            sb.resolve_write("notes/x.yaml")
                .unwrap_err()
                .contains(".beads")
        );
        std::os::unix::fs::symlink(wt.path().join("src"), wt.path().join("code")).unwrap();
        assert!(
            sb.resolve_write("code/c.rs").is_ok(),
            "a symlink inside is fine"
        );
    }

    #[test]
    fn captured_output_keeps_head_and_tail() {
        let mut c = Captured::new(10);
        c.push(b"0123456789abcdefghij");
        assert_eq!(c.total(), 20);
        assert_eq!(c.text(), "01234\n… [10 bytes omitted] …\nfghij");
        let mut small = Captured::new(10);
        small.push(b"hi");
        assert_eq!(small.text(), "hi");
    }

    #[test]
    fn secret_names_are_recognised() {
        for n in [
            "OPENAI_API_KEY",
            "GITHUB_TOKEN",
            "aws_secret",
            "TOKENHUB_API_KEY",
        ] {
            assert!(secret_name(n), "{n}");
        }
        for n in ["PATH", "HOME", "KEYBOARD", "TOKENS_USED"] {
            assert!(!secret_name(n), "{n}");
        }
    }

    #[test]
    fn the_environment_is_scrubbed() {
        let vars = [
            ("PATH", "/usr/bin"),
            ("TOKENHUB_API_KEY", "tokenhub_abc123"),
            ("MY_GATEWAY_KEY", "k-999999"),
            ("GITHUB_TOKEN", "ghp_x"),
            ("DB_SECRET", "s"),
            ("NPM_TOKEN", "allowed"),
            ("INNOCENT", "has tokenhub_abc123 inside"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let kept = scrub_env(
            vars,
            &["MY_GATEWAY_KEY"],
            &["tokenhub_abc123"],
            &["NPM_TOKEN".to_owned()],
        );
        let names: Vec<String> = kept
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["PATH", "NPM_TOKEN"]);
    }

    #[tokio::test]
    async fn commands_report_exit_codes_and_output() {
        let (_wt, _tmp, sb) = sandbox();
        let out = sb.run("echo out; echo err >&2; ls src; exit 3", None).await;
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.stdout.text(), "out\na.rs\n");
        assert_eq!(out.stderr.text(), "err\n");
        assert!(!out.timed_out);
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
        assert_eq!(out.exit_code, None, "killed by a signal");
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
