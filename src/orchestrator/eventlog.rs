//! The running orchestrator's events, as NDJSON in `<data dir>/events.jsonl`, so other
//! processes (a TUI opened while `loom run` works, a second TUI) can show the run live. Each
//! run writes a new file (a new inode: readers notice and start from its beginning); one
//! orchestrator per repository (the lock) means one writer. It is bounded: past [`CAP`] bytes
//! a new file starts with the run's `run_started` line. Lines are redacted (no secret reaches
//! the disk) and the file is readable by its owner only.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use tokio::sync::broadcast::error::RecvError;

use crate::event::{EventBus, EventKind};
use crate::llm::ProviderConfig;
use crate::workspace::Workspace;

/// The file's name in the data dir.
pub const FILE: &str = "events.jsonl";

/// The most bytes the file holds before it starts over.
pub const CAP: u64 = 64 << 20;

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
