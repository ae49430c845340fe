//! Following a run in another process (`loom run`, another TUI): its orchestrator writes its
//! events to `<data dir>/events.jsonl` (`orchestrator::eventlog`); this watches that file and
//! hands new events to the app, so agents, logs and usage show live here too. A file written
//! by this process (the lock names the writer) is only skipped over: those events come from
//! the bus. On opening, a run that is still going is read back (its start and its last
//! [`REPLAY_BYTES`]); a finished one is not. A followed run whose process died without
//! finishing is ended here (checked every [`ALIVE_CHECK`] while it runs).

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};

use crate::event::{Event, EventKind};
use crate::orchestrator::{eventlog, lock};

use super::super::app::AppEvent;
use super::Worker;

/// How much of a running run's log is read back on opening.
const REPLAY_BYTES: u64 = 4 << 20;

/// The least time between two reads of the log while it is being written.
const READ_INTERVAL: Duration = Duration::from_millis(100);

/// How often a followed run's process is checked while the run goes.
const ALIVE_CHECK: Duration = Duration::from_secs(2);

/// The running follower; dropping it stops it (and its thread).
pub(super) struct Follower {
    _watcher: notify::RecommendedWatcher,
}

/// Reads what was appended to a file since the last read, in whole lines.
struct Tail {
    path: PathBuf,
    /// The file read so far (a new run writes a new file).
    inode: u64,
    offset: u64,
    /// An unfinished last line, kept for the next read.
    partial: Vec<u8>,
}

impl Tail {
    /// At the end of the file, or (`replay`) at the run's first line and its last bytes.
    fn open(path: PathBuf, replay: bool) -> (Tail, Vec<u8>) {
        let (len, inode) = std::fs::metadata(&path)
            .map(|m| (m.len(), m.ino()))
            .unwrap_or((0, 0));
        let mut tail = Tail {
            path,
            inode,
            offset: len,
            partial: Vec::new(),
        };
        if !replay {
            return (tail, Vec::new());
        }
        let mut first = Vec::new();
        if len > REPLAY_BYTES {
            // The `run_started` line, then the end (from a line boundary).
            if let Ok(f) = std::fs::File::open(&tail.path) {
                let mut head = Vec::new();
                let _ = f.take(64 << 10).read_to_end(&mut head);
                if let Some(i) = head.iter().position(|&b| b == b'\n') {
                    first.extend_from_slice(&head[..=i]);
                }
            }
            tail.offset = len - REPLAY_BYTES;
            let mut skipped = tail.read();
            if let Some(i) = skipped.iter().position(|&b| b == b'\n') {
                skipped.drain(..=i);
            }
            first.extend(skipped);
        } else {
            tail.offset = 0;
            first = tail.read();
        }
        (tail, first)
    }

    /// The whole lines appended since the last read (from the start if the file started over).
    fn read(&mut self) -> Vec<u8> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let (len, inode) = f.metadata().map(|m| (m.len(), m.ino())).unwrap_or((0, 0));
        if inode != self.inode || len < self.offset {
            // Another run's file: from its beginning.
            self.inode = inode;
            self.offset = 0;
            self.partial.clear();
        }
        let mut fresh = Vec::new();
        if f.seek(SeekFrom::Start(self.offset)).is_err()
            || f.take(len - self.offset).read_to_end(&mut fresh).is_err()
        {
            return Vec::new();
        }
        self.offset += fresh.len() as u64;
        let mut bytes = std::mem::take(&mut self.partial);
        bytes.extend(fresh);
        match bytes.iter().rposition(|&b| b == b'\n') {
            Some(i) => {
                self.partial = bytes.split_off(i + 1);
                bytes
            }
            None => {
                self.partial = bytes;
                Vec::new()
            }
        }
    }
}

/// A run's log read back: its `run_started` line and its last [`REPLAY_BYTES`].
pub(super) fn read_back(path: PathBuf) -> Vec<u8> {
    Tail::open(path, true).1
}

/// The events in `bytes` worth showing: bead changes are left out (this window's own watcher
/// reports them).
pub(super) fn events(bytes: &[u8]) -> impl Iterator<Item = Event> + '_ {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<Event>(l).ok())
        .filter(|e| {
            !matches!(
                e.kind,
                EventKind::BeadCreated { .. }
                    | EventKind::BeadChanged { .. }
                    | EventKind::BeadDeleted { .. }
                    | EventKind::StoreProblem { .. }
                    | EventKind::WatchError { .. }
            )
        })
}

/// Whether `bytes` (whole lines) end with the end of a run.
pub(super) fn ends_run(bytes: &[u8]) -> bool {
    bytes
        .split(|&b| b == b'\n')
        .rfind(|l| !l.is_empty())
        .is_some_and(|l| {
            serde_json::from_slice::<Event>(l)
                .is_ok_and(|e| matches!(e.kind, EventKind::RunFinished { .. }))
        })
}

impl Worker {
    /// Follows the event log of runs in other processes.
    pub(super) fn follow(&self) -> Option<Follower> {
        let path = eventlog::path(&self.ws)?;
        let dir = path.parent()?.to_path_buf();
        std::fs::create_dir_all(&dir).ok()?;
        let (tx, rx) = mpsc::channel::<()>();
        let name = path.file_name()?.to_owned();
        let mut watcher = notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
            if let Ok(e) = e
                && !matches!(e.kind, notify::EventKind::Access(_))
                && e.paths
                    .iter()
                    .any(|p| p.file_name() == Some(name.as_os_str()))
            {
                let _ = tx.send(());
            }
        })
        .ok()?;
        watcher.watch(&dir, RecursiveMode::NonRecursive).ok()?;
        let repo = self.ws.repo.clone();
        let holder = move || repo.as_ref().and_then(lock::last_holder);
        let other = holder().is_some_and(|h| h.owner.is_alive() && !h.owner.is_current());
        let events_tx = self.events.clone();
        std::thread::Builder::new()
            .name("loom-follow".into())
            .spawn(move || {
                let (mut tail, mut first) = Tail::open(path, other);
                if ends_run(&first) {
                    first.clear(); // that run is over: nothing to show live
                }
                // Whether a followed run goes (started, not yet finished).
                let mut active = false;
                let deliver = |bytes: &[u8], active: &mut bool| -> bool {
                    // This process's own run reaches the app through its bus.
                    if bytes.is_empty() || holder().is_some_and(|h| h.owner.is_current()) {
                        return true;
                    }
                    events(bytes).all(|e| {
                        match e.kind {
                            EventKind::RunStarted { .. } => *active = true,
                            EventKind::RunFinished { .. } => *active = false,
                            _ => {}
                        }
                        events_tx.send(AppEvent::Run(Box::new(e))).is_ok()
                    })
                };
                if !deliver(&first, &mut active) {
                    return;
                }
                loop {
                    let woke = if active {
                        rx.recv_timeout(ALIVE_CHECK)
                    } else {
                        rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
                    };
                    match woke {
                        Ok(()) => loop {
                            while rx.try_recv().is_ok() {}
                            if !deliver(&tail.read(), &mut active) {
                                return;
                            }
                            // A streaming run flushes per chunk: read at most every
                            // READ_INTERVAL while writes keep coming, then wait again.
                            std::thread::sleep(READ_INTERVAL);
                            match rx.try_recv() {
                                Ok(()) => {}
                                Err(mpsc::TryRecvError::Empty) => break,
                                Err(mpsc::TryRecvError::Disconnected) => return,
                            }
                        },
                        Err(RecvTimeoutError::Disconnected) => return,
                        Err(RecvTimeoutError::Timeout) => {
                            let alive = holder().is_some_and(|h| h.owner.is_alive());
                            if !alive && !deliver(&tail.read(), &mut active) {
                                return;
                            }
                            if !alive && active {
                                // The run's process died without finishing it.
                                active = false;
                                let ended = Event::new(EventKind::RunFinished {
                                    exit_code: 1,
                                    summary: serde_json::json!({
                                        "error": "the process running it ended without finishing"
                                    }),
                                });
                                if events_tx.send(AppEvent::Run(Box::new(ended))).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                }
            })
            .ok()?;
        Some(Follower { _watcher: watcher })
    }
}

impl Worker {
    /// Follows the runs of this repository coordinated through a NATS server (`loom --nats
    /// URL`): every event the server keeps, then live ones, handed to the app as this
    /// process's run events are. A server that cannot be reached is said once, as a message.
    pub fn follow_remote(&mut self, opts: crate::scale::nats::NatsOptions, repo: String) {
        let events = self.events.clone();
        tokio::spawn(async move {
            let bus = match crate::scale::nats::NatsBus::open(&opts, &repo).await {
                Ok(b) => b,
                Err(e) => {
                    let _ = events.send(AppEvent::Done {
                        ok: false,
                        message: e,
                    });
                    return;
                }
            };
            let followed = bus
                .follow_events(|e| events.send(AppEvent::Run(Box::new(e))).is_ok())
                .await;
            if let Err(e) = followed {
                let _ = events.send(AppEvent::Done {
                    ok: false,
                    message: e,
                });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_finished_run_is_recognised_by_its_last_line() {
        let finished =
            br#"{"type":"run_started","at":"x","target":"main","max_agents":1,"beads_ready":0}
{"type":"run_finished","at":"x","exit_code":0,"summary":null}
"#;
        assert!(ends_run(finished));
        assert!(!ends_run(&finished[..finished.len() / 2]));
        assert!(!ends_run(b""));
    }

    #[test]
    fn a_tail_reads_whole_new_lines_and_starts_over_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "old 1\nold 2\n").unwrap();
        let (mut tail, first) = Tail::open(path.clone(), false);
        assert!(first.is_empty(), "a finished run is not read back");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        write!(f, "new 1\nnew").unwrap();
        assert_eq!(tail.read(), b"new 1\n");
        f.write_all(b" 2\n").unwrap();
        assert_eq!(tail.read(), b"new 2\n");
        assert!(tail.read().is_empty());
        std::fs::write(&path, "run 2\n").unwrap();
        assert_eq!(tail.read(), b"run 2\n", "shorter: from the start");
        // A new run's file, longer than what was read: told apart by its inode.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "run 3 started\nrun 3 goes on\n").unwrap();
        assert_eq!(tail.read(), b"run 3 started\nrun 3 goes on\n");
        let (_, replayed) = Tail::open(path, true);
        assert_eq!(replayed, b"run 3 started\nrun 3 goes on\n");
    }
}
