//! Reading back what runs did: a past run's log for the logs pane (`[`/`]`, and the last run
//! when the window opens), and one bead's work for the Work view (its diff from git, its last
//! tests and transcript from the newest run log that mentions it).

use std::path::Path;

use crate::event::Event;
use crate::orchestrator::eventlog;
use crate::tui::work::{self, Work};
use crate::workspace::Workspace;

use super::super::app::AppEvent;
use super::Worker;
use super::follow::{ends_run, events, read_back};

/// A past run, for the logs pane.
#[derive(Clone, Debug, PartialEq)]
pub struct PastRun {
    /// 0: the last (or running) run; higher: older.
    pub index: usize,
    /// How many run logs there are.
    pub total: usize,
    /// When it started (its first event's time).
    pub started: String,
    pub events: Vec<Event>,
}

/// The events of the run log at `path`.
fn read(path: &Path) -> (Vec<Event>, bool) {
    let bytes = read_back(path.to_path_buf());
    (events(&bytes).collect(), ends_run(&bytes))
}

/// Bead `id`'s work: its diff, and from the newest run that has events for it, its last
/// tests and transcript.
pub fn work(ws: &Workspace, id: &str) -> Work {
    let mut w = Work {
        id: id.to_owned(),
        ..Work::default()
    };
    match ws.repo.as_ref().map(|r| r.work_diff(id)) {
        None => w.source = "not a git repository: no diff".into(),
        Some(Err(e)) => w.source = format!("no diff: {e}"),
        Some(Ok(None)) => {
            w.source = format!(
                "no branch {} and nothing landed",
                crate::git::worktree::branch_of(id)
            )
        }
        Some(Ok(Some(d))) => {
            w.source = d.source;
            w.files = work::parse_diff(&d.text);
            work::highlight(&mut w.files);
        }
    }
    for path in eventlog::runs(ws) {
        let (all, _) = read(&path);
        let mine: Vec<Event> = all
            .into_iter()
            .filter(|e| e.bead.as_deref() == Some(id))
            .collect();
        if mine.is_empty() {
            continue;
        }
        w.run = mine.first().map(|e| e.at.clone());
        w.tests = work::last_tests(&mine);
        w.steps = work::transcript(&mine);
        break;
    }
    w
}

impl Worker {
    /// Loads run log `index` (0 the newest). `initial`: the window just opened — only a
    /// finished run is sent (a running one is followed live).
    pub fn load_run(&self, index: usize, initial: bool) {
        let (ws, events) = (self.ws.clone(), self.events.clone());
        tokio::task::spawn_blocking(move || {
            let runs = eventlog::runs(&ws);
            let Some(path) = runs.get(index) else {
                if !initial {
                    let _ = events.send(AppEvent::Done {
                        ok: false,
                        message: match runs.len() {
                            0 => "no runs yet: `s` starts an agent, `loom run` all ready beads"
                                .into(),
                            n => format!("only {n} runs are kept"),
                        },
                    });
                }
                return;
            };
            let (list, finished) = read(path);
            if initial && !finished {
                return;
            }
            let started = list.first().map(|e| e.at.clone()).unwrap_or_default();
            let _ = events.send(AppEvent::PastRun(Box::new(PastRun {
                index,
                total: runs.len(),
                started,
                events: list,
            })));
        });
    }

    /// Loads what the agents did on bead `id`.
    pub fn load_work(&self, id: String) {
        let (ws, events) = (self.ws.clone(), self.events.clone());
        tokio::task::spawn_blocking(move || {
            let loaded = work(&ws, &id);
            let _ = events.send(AppEvent::Work(Box::new(loaded)));
        });
    }
}
