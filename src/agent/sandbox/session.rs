//! A sandbox's supervisor, kept for the sandbox's lifetime: Loom starts `loom __sandbox-exec
//! --serve` once (it joins the cgroup and restricts its command thread once), then sends it
//! each command over a Unix socket with the command's pipes attached; the supervisor starts
//! it, ends its whole tree when it ends, and replies with its status. So a command costs a
//! `fork` and an `exec` of the command, not a start of Loom's binary and a cgroup migration.
//!
//! A timeout (or a caller that stops waiting) ends the session: SIGTERM makes the supervisor
//! end the running command's tree and exit; the cgroup is emptied; the next command starts a
//! new session.

use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::capture::{Captured, Lines};
use super::contain::Cgroup;
use super::wire::{self, Request};
use super::{CommandOutput, STOP_GRACE, Sandbox};

/// A running supervisor.
pub(super) struct Session {
    child: tokio::process::Child,
    sock: tokio::net::UnixStream,
    /// Emptied and removed when the session ends (off the async threads).
    cgroup: Option<Cgroup>,
    /// A command is under way: the session cannot take another.
    busy: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl Session {
    fn start(sb: &Sandbox, helper: &std::path::Path) -> std::io::Result<Session> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let cgroup = Cgroup::create(sb.max_processes.max(16));
        let mut opts = sb.options(&[], cgroup.as_ref());
        opts.serve = true;
        let child = tokio::process::Command::new(helper)
            .arg("__sandbox-exec")
            .args(opts.to_args())
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
            child,
            sock: tokio::net::UnixStream::from_std(ours)?,
            cgroup,
            busy: false,
        })
    }

    fn pid(&self) -> Option<rustix::process::Pid> {
        self.child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw)
    }

    /// Asks the supervisor to end the running command and itself.
    fn stop(&self) {
        if let Some(pid) = self.pid() {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }

    /// Ends the session off this thread: the supervisor is stopped, then its group and cgroup
    /// are emptied.
    fn discard(mut self) {
        self.stop();
        let (pid, cgroup) = (self.pid(), self.cgroup.take());
        drop(self); // the socket closes: an idle supervisor exits
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            if let Some(pid) = pid {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            drop(cgroup);
        });
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Dropped with its sandbox: closing the socket ends an idle supervisor; the cgroup is
        // emptied off this thread.
        if let Some(cg) = self.cgroup.take() {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                drop(cg);
            });
        }
    }
}

/// The session slot while a command runs: if the caller stops waiting (the future is
/// dropped), the session is stopped and discarded, never left with a command running.
struct Running<'a> {
    slot: &'a mut Option<Session>,
    done: bool,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if !self.done
            && let Some(s) = self.slot.take()
        {
            s.discard();
        }
    }
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
        done: false,
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
    let ended = collect(sb, session, rx, timeout, on_line).await;
    let (code, timed_out, stdout, stderr, alive) = ended;
    if alive {
        session.busy = false;
        running.done = true;
    }
    drop(running);
    let tampered = match sb.check_git() {
        Some(why) => Some(why),
        None if code.is_none() && !timed_out => {
            Some("the command killed Loom's supervisor (it may have left processes running)".into())
        }
        None => None,
    };
    CommandOutput {
        exit_code: if timed_out { None } else { code },
        timed_out,
        stdout,
        stderr,
        duration: started.elapsed(),
        tampered,
    }
}

/// The command's stdout and stderr as one channel of `(is_stderr, bytes)`.
fn read_pipes(
    out: OwnedFd,
    err: OwnedFd,
) -> std::io::Result<tokio::sync::mpsc::Receiver<(bool, Vec<u8>)>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    for (is_err, fd) in [(false, out), (true, err)] {
        let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(fd)?;
        let tx = tx.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match pipe.read(&mut buf).await {
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
    Ok(rx)
}

/// Output until the supervisor replies (or the timeout ends the session): the exit code
/// (`None` if there was no reply), whether it timed out, both streams, and whether the
/// session is still usable.
async fn collect(
    sb: &Sandbox,
    session: &mut Session,
    mut rx: tokio::sync::mpsc::Receiver<(bool, Vec<u8>)>,
    timeout: Duration,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> (Option<i32>, bool, Captured, Captured, bool) {
    let (mut stdout, mut stderr) = (Captured::new(sb.output_cap), Captured::new(sb.output_cap));
    let (mut line_out, mut line_err) = (Lines::default(), Lines::default());
    let mut take = |(is_err, bytes): (bool, Vec<u8>)| {
        let (cap, lines) = if is_err {
            (&mut stderr, &mut line_err)
        } else {
            (&mut stdout, &mut line_out)
        };
        cap.push(&bytes);
        lines.push(&bytes, on_line);
    };
    let deadline = tokio::time::Instant::now().checked_add(timeout);
    let mut streams_open = true;
    let (code, timed_out, alive) = loop {
        tokio::select! {
            chunk = rx.recv(), if streams_open => match chunk {
                Some(c) => take(c),
                None => streams_open = false,
            },
            reply = wire::recv_reply(&mut session.sock) => match reply {
                Ok(Some(r)) => break (Some(r.code), false, true),
                // No reply: the supervisor is gone (killed, or it failed).
                _ => break (None, false, false),
            },
            _ = super::sleep_until(deadline) => {
                session.stop();
                let _ = tokio::time::timeout(STOP_GRACE, session.child.wait()).await;
                break (None, true, false);
            }
        }
    };
    // The tree has ended, so the pipes close; what is still buffered is read (bounded).
    if streams_open {
        let grace = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(Some(c)) = tokio::time::timeout_at(grace, rx.recv()).await {
            take(c);
        }
    }
    let mut sink = |line: &str| on_line(line);
    line_out.finish(&mut sink);
    line_err.finish(&mut sink);
    (code, timed_out, stdout, stderr, alive)
}
