//! The running orchestrator's events, as NDJSON in `<data dir>/events.jsonl`, so other
//! processes (a TUI opened while `loom run` works, a second TUI) can show the run live. Each
//! run writes a new file (a new inode: readers notice and start from its beginning); one
//! orchestrator per repository (the lock) means one writer. It is bounded: past [`CAP`] bytes
//! a new file starts with the run's `run_started` line. Lines are redacted (no secret reaches
//! the disk) and the file is readable by its owner only. When a run starts, the previous run's
//! file moves to `runs/` beside it (the last [`KEEP`] are kept), so past runs stay browsable.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tokio::sync::broadcast::error::RecvError;

use crate::event::{EventBus, EventKind};
use crate::llm::ProviderConfig;
use crate::workspace::Workspace;

/// The file's name in the data dir.
pub const FILE: &str = "events.jsonl";

/// The most bytes the file holds before it starts over.
pub const CAP: u64 = 64 << 20;

/// The folder of past runs' logs, beside [`FILE`].
pub const RUNS_DIR: &str = "runs";

/// How many past runs' logs are kept.
pub const KEEP: usize = 20;

/// Moves the last run's log (if any) to `runs/`, named by when it was last written, and drops
/// the oldest beyond [`KEEP`]. Best effort: a log that cannot be kept is replaced as before.
fn archive(path: &Path) {
    let (Some(dir), Ok(meta)) = (path.parent(), std::fs::metadata(path)) else {
        return;
    };
    let runs = dir.join(RUNS_DIR);
    if std::fs::create_dir_all(&runs).is_err() {
        return;
    }
    let millis = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis());
    let mut to = runs.join(format!("{millis:015}.jsonl"));
    for n in 1..100 {
        if !to.exists() {
            break;
        }
        to = runs.join(format!("{millis:015}-{n:02}.jsonl"));
    }
    let _ = std::fs::rename(path, to);
    let mut past = runs_in(&runs);
    for old in past.drain(KEEP.min(past.len())..) {
        let _ = std::fs::remove_file(old);
    }
}

/// The `.jsonl` files in `runs`, newest first (their names sort by time).
fn runs_in(runs: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(runs)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files.reverse();
    files
}

/// Every run log of `ws`'s repository, newest first: the last (or running) run's, then the
/// past ones.
pub fn runs(ws: &Workspace) -> Vec<PathBuf> {
    let Some(path) = path(ws) else {
        return Vec::new();
    };
    let mut all = Vec::new();
    if path.exists() {
        all.push(path.clone());
    }
    if let Some(dir) = path.parent() {
        all.extend(runs_in(&dir.join(RUNS_DIR)));
    }
    all
}

/// The event log of `ws`'s repository.
pub fn path(ws: &Workspace) -> Option<PathBuf> {
    ws.data_dir().map(|d| d.join(FILE))
}

/// Starts writing `bus`'s events to the log (best effort: a log that cannot be written is
/// skipped, the run goes on). The task ends after `run_finished` or when the bus closes.
pub fn spawn(
    ws: &Workspace,
    bus: &EventBus,
    provider: &ProviderConfig,
) -> Option<tokio::task::JoinHandle<()>> {
    let path = path(ws)?;
    let dir = path.parent()?.to_path_buf();
    std::fs::create_dir_all(&dir).ok()?;
    archive(&path);
    let open = move || {
        // A new file, not the old one truncated: a reader can tell a new run by its inode.
        let _ = std::fs::remove_file(&path);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .ok()
            .map(std::io::BufWriter::new)
    };
    let mut file = open()?;
    let provider = provider.clone();
    let mut sub = bus.subscribe();
    // A thread of the blocking pool: the writes (a flush per burst of streamed text) stay off
    // the async workers.
    Some(tokio::task::spawn_blocking(move || {
        let mut written = 0u64;
        let mut started: Option<String> = None;
        loop {
            let event = match sub.blocking_recv() {
                Ok(e) => e,
                // A slow disk lost some events: the reader sees a gap, nothing worse.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            };
            let last = matches!(event.kind, EventKind::RunFinished { .. });
            let Ok(line) = serde_json::to_string(&event) else {
                continue;
            };
            let line = provider.redact(&line);
            if matches!(event.kind, EventKind::RunStarted { .. }) {
                started = Some(line.clone());
            }
            if written + line.len() as u64 > CAP {
                let _ = file.flush();
                let Some(fresh) = open() else { return };
                file = fresh;
                written = 0;
                if let Some(first) = &started {
                    let _ = writeln!(file, "{first}");
                    written += first.len() as u64 + 1;
                }
            }
            if writeln!(file, "{line}").is_err() {
                return;
            }
            written += line.len() as u64 + 1;
            // Readers see each burst as soon as it is over.
            if sub.is_empty() || last {
                let _ = file.flush();
            }
            if last {
                break;
            }
        }
        let _ = file.flush();
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    #[test]
    fn a_new_run_keeps_the_last_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        for n in 0..KEEP + 3 {
            std::fs::write(&path, format!("run {n}\n")).unwrap();
            // Distinct names: the clock may not move between two writes.
            let runs = dir.path().join(RUNS_DIR);
            archive(&path);
            if let Some(newest) = runs_in(&runs).first() {
                let _ = std::fs::rename(newest, runs.join(format!("{n:015}.jsonl")));
            }
        }
        assert!(!path.exists(), "moved, not copied");
        let kept = runs_in(&dir.path().join(RUNS_DIR));
        assert_eq!(kept.len(), KEEP);
        let newest = std::fs::read_to_string(&kept[0]).unwrap();
        assert_eq!(newest, format!("run {}\n", KEEP + 2), "newest first");
        archive(&dir.path().join("nothing-here"));
    }

    #[test]
    fn events_read_back_as_they_were_written() {
        let at = || "2026-11-21T10:00:00Z".to_owned();
        let events = vec![
            Event::new(EventKind::RunStarted {
                target: "main".into(),
                max_agents: 2,
                beads_ready: 1,
            }),
            Event::about(
                "t-1",
                EventKind::ModelText {
                    text: "Hello\n".into(),
                },
            )
            .by("coder"),
            Event::new(EventKind::RunFinished {
                exit_code: 0,
                summary: serde_json::json!({"done": 1}),
            }),
        ];
        for mut e in events {
            e.at = at();
            let line = serde_json::to_string(&e).unwrap();
            let back: Event = serde_json::from_str(&line).unwrap();
            assert_eq!(back, e);
            assert_eq!(serde_json::to_string(&back).unwrap(), line);
        }
    }
}
