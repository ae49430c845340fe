//! A sandbox's supervisor, kept for the sandbox's lifetime: Loom starts `loom __sandbox-exec
//! --serve` once (it joins the cgroup and restricts its command thread once), then sends it
//! each command over a Unix socket with the command's pipes attached; the supervisor starts
//! it, ends its whole tree when it ends, and replies with its status. So a command costs a
//! `fork` and an `exec` of the command, not a start of Loom's binary and a cgroup migration.
//!
//! Loom trusts a reply only when the supervisor vouches that the whole tree ended and the
//! cgroup (where there is one) holds nothing but the supervisor. A timeout, a caller that
//! stops waiting, a missing reply or a tree not accounted for ends the session: Loom itself
//! SIGKILLs the supervisor's tree and the supervisor, empties the cgroup, and the next command
//! starts a new session.

use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::capture::{self, Captured, Output};
use super::contain::{self, Cgroup};
use super::wire::{self, Request};
use super::{CommandOutput, Sandbox};

/// A running supervisor.
pub(super) struct Session {
    /// Held until the supervisor is known dead, so its pid is never reused under us.
    child: Option<tokio::process::Child>,
    sock: tokio::net::UnixStream,
    /// Emptied and removed when the session ends (off the async threads).
    cgroup: Option<Cgroup>,
    /// A command is under way: the session cannot take another.
    busy: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl Session {
    fn start(sb: &Sandbox, helper: &std::path::Path) -> std::io::Result<Session> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let cgroup = Cgroup::create(sb.max_processes.max(16));
        let opts = sb.options(cgroup.as_ref());
        let child = tokio::process::Command::new(helper)
            .arg("__sandbox-exec")
            .args(opts.to_args())
            .arg("--serve")
            .current_dir(&sb.root)
            .env_clear()
            .envs(sb.env.iter().map(|(k, v)| (k, v)))
            .env("TMPDIR", &sb.tmp)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(false)
            .spawn()?;
        ours.set_nonblocking(true)?;
        Ok(Session {
            child: Some(child),
            sock: tokio::net::UnixStream::from_std(ours)?,
            cgroup,
            busy: false,
        })
    }

    fn pid(&self) -> Option<i32> {
        self.child
            .as_ref()
            .and_then(tokio::process::Child::id)
            .and_then(|p| i32::try_from(p).ok())
    }

    /// Whether the cgroup (if any) holds nothing but the supervisor.
    fn cgroup_clean(&self) -> bool {
        match (&self.cgroup, self.pid()) {
            (Some(cg), Some(pid)) => cg.members().iter().all(|m| *m == pid),
            _ => true,
        }
    }

    /// Ends the session, off this thread: Loom SIGKILLs the supervisor's tree and the
    /// supervisor, then empties the cgroup.
    fn discard(mut self) {
        let pid = self.pid();
        let (child, cgroup) = (self.child.take(), self.cgroup.take());
        drop(self); // the socket closes
        cleanup(move || {
            if let Some(p) = pid {
                contain::kill_tree(p);
            }
            drop(child);
            drop(cgroup);
        });
    }
}

/// Ending sessions still under way, joined by [`finish_cleanups`] before Loom exits.
static CLEANUPS: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

/// Runs `end` on its own thread (ending a tree blocks), remembered so that the process does
/// not exit before it has finished.
fn cleanup(end: impl FnOnce() + Send + 'static) {
    let handle = std::thread::spawn(end);
    if let Ok(mut pending) = CLEANUPS.lock() {
        pending.retain(|h| !h.is_finished());
        pending.push(handle);
    }
}

/// Waits for every session being ended (each is bounded by a few seconds): a process that
/// exits first would leave a discarded supervisor's processes running and its cgroup behind.
pub fn finish_cleanups() {
    let pending = match CLEANUPS.lock() {
        Ok(mut p) => std::mem::take(&mut *p),
        Err(_) => return,
    };
    for h in pending {
        let _ = h.join();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Dropped with its sandbox: closing the socket ends an idle supervisor; the cgroup is
        // emptied off this thread, once the supervisor has had a moment to go.
        if let Some(cg) = self.cgroup.take() {
            let child = self.child.take();
            cleanup(move || {
                let until = Instant::now() + Duration::from_millis(200);
                while !cg.members().is_empty() && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(2));
                }
                drop(cg);
                drop(child);
            });
        }
    }
}

/// The session slot while a command runs: unless the command ended cleanly, the session is
/// discarded (also when the caller stops waiting and the future is dropped).
struct Running<'a> {
    slot: &'a mut Option<Session>,
    keep: bool,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if !self.keep
            && let Some(s) = self.slot.take()
        {
            s.discard();
        }
    }
}

/// How a command ended, as seen from Loom.
struct Ended {
    /// The exit code; `None` without a reply.
    code: Option<i32>,
    timed_out: bool,
    stdout: Captured,
    stderr: Captured,
    /// The supervisor vouched that the whole tree ended.
    clean: bool,
}

/// Runs `argv` through the sandbox's session (starting one if needed).
pub(super) async fn run(
    sb: &Sandbox,
    helper: &std::path::Path,
    argv: &[String],
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> CommandOutput {
    let started = Instant::now();
    let failed = |msg: String| super::failed_output(sb.output_cap, started, msg);
    let mut slot = sb.session.lock().await;
    if slot.as_ref().is_some_and(|s| s.busy) {
        // Only a dropped future leaves a session busy, and that discards it: never here.
        if let Some(s) = slot.take() {
            s.discard();
        }
    }
    if slot.is_none() {
        match Session::start(sb, helper) {
            Ok(s) => *slot = Some(s),
            Err(e) => return failed(format!("could not start the sandbox's supervisor: {e}")),
        }
    }
    let mut running = Running {
        slot: &mut slot,
        keep: false,
    };
    let Some(session) = running.slot.as_mut() else {
        return failed("no sandbox session".into());
    };
    // The command's pipes: their write ends go to the supervisor with the request.
    let pipes = (|| -> std::io::Result<_> {
        let flags = rustix::pipe::PipeFlags::CLOEXEC;
        let out = rustix::pipe::pipe_with(flags)?;
        let err = rustix::pipe::pipe_with(flags)?;
        let input = match &stdin {
            Some(_) => Some(rustix::pipe::pipe_with(flags)?),
            None => None,
        };
        Ok((out, err, input))
    })();
    let ((out_r, out_w), (err_r, err_w), input) = match pipes {
        Ok(p) => p,
        Err(e) => return failed(format!("cannot make pipes: {e}")),
    };
    let mut fds = vec![out_w.as_fd(), err_w.as_fd()];
    if let Some((r, _)) = &input {
        fds.push(r.as_fd());
    }
    let req = Request {
        argv: argv.to_vec(),
        stdin: input.is_some(),
    };
    session.busy = true;
    if let Err(e) = wire::send_request(&session.sock, &req, &fds).await {
        return failed(format!("cannot reach the sandbox's supervisor: {e}"));
    }
    drop(fds);
    drop((out_w, err_w));
    if let (Some(data), Some((r, w))) = (stdin, input) {
        drop(r);
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let _ = std::fs::File::from(w).write_all(&data);
        });
    }
    let rx = match read_pipes(out_r, err_r) {
        Ok(rx) => rx,
        Err(e) => return failed(format!("cannot read the command's output: {e}")),
    };
    let ended = collect(sb, &mut session.sock, rx, timeout, on_line).await;
    let accounted = ended.clean && session.cgroup_clean();
    if ended.code.is_some() && accounted {
        session.busy = false;
        running.keep = true;
    }
    drop(running);
    let tampered = match sb.check_git() {
        Some(why) => Some(why),
        None if ended.timed_out => None,
        None if ended.code.is_none() => Some(
            "the command stopped or killed Loom's supervisor (it may have left processes running)"
                .into(),
        ),
        None if !accounted => {
            Some("the command left processes its supervisor could not account for".into())
        }
        None => None,
    };
    CommandOutput {
        exit_code: if ended.timed_out { None } else { ended.code },
        timed_out: ended.timed_out,
        stdout: ended.stdout,
        stderr: ended.stderr,
        duration: started.elapsed(),
        tampered,
    }
}

/// The command's stdout and stderr (the read ends of its pipes) as one channel.
fn read_pipes(
    out: OwnedFd,
    err: OwnedFd,
) -> std::io::Result<tokio::sync::mpsc::Receiver<(bool, Vec<u8>)>> {
    use tokio::net::unix::pipe::Receiver;
    Ok(capture::forward(
        Some(Receiver::from_owned_fd(out)?),
        Some(Receiver::from_owned_fd(err)?),
    ))
}

/// Output until the supervisor replies, or the timeout (then the session is over).
async fn collect(
    sb: &Sandbox,
    sock: &mut tokio::net::UnixStream,
    mut rx: tokio::sync::mpsc::Receiver<(bool, Vec<u8>)>,
    timeout: Duration,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Ended {
    let mut output = Output::new(sb.output_cap);
    let deadline = tokio::time::Instant::now().checked_add(timeout);
    let mut streams_open = true;
    // One read of the reply across the loop (a partly read reply is never dropped).
    let reply = wire::recv_reply(sock);
    tokio::pin!(reply);
    let (code, clean, timed_out) = loop {
        tokio::select! {
            chunk = rx.recv(), if streams_open => match chunk {
                Some(c) => output.take(c, on_line),
                None => streams_open = false,
            },
            r = &mut reply => match r {
                Ok(Some(r)) => break (Some(r.code), r.clean, false),
                // No reply: the supervisor is gone (killed, or it failed).
                _ => break (None, false, false),
            },
            _ = super::sleep_until(deadline) => break (None, false, true),
        }
    };
    // The tree has ended (or the session is about to be discarded, which ends it), so the
    // pipes close; what is still buffered is read, bounded.
    if streams_open && !timed_out {
        output.drain(&mut rx, on_line).await;
    }
    let (stdout, stderr) = output.finish(on_line);
    Ended {
        code,
        timed_out,
        stdout,
        stderr,
        clean,
    }
}
