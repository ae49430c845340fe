//! The one event protocol every front end consumes (`loom watch`, `loom run --json`, the TUI).
//! Each event has a stable JSON form tagged by `type`, with `at` (RFC 3339, UTC).
//!
//! [`EventBus`] carries them: a broadcast channel for live subscribers and a bounded recent
//! history (per bead, and overall) for subscribers that arrive late.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::bead::Bead;
use crate::bead::change::FieldChange;
use crate::llm::{HealthSnapshot, Usage};
use crate::store::Problem;

/// Who caused a bead change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Another program: an editor, `git pull`, bd, another Loom process.
    External,
    /// This Loom process.
    Loom,
}

/// How a bead's run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Merged into the target and closed.
    Merged,
    /// Done, reviewed and tested, but left on its branch (`merge: none` / `--no-merge`).
    Completed,
    /// Waiting for a person: a decision bead blocks it, or `merge: approve`.
    Waiting,
    /// Could not finish (and no decision was possible).
    Failed,
    /// Stopped by the run ending (timeout, Ctrl-C, endpoint gone); released for the next run.
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Merged => "merged",
            Outcome::Completed => "completed",
            Outcome::Waiting => "waiting",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        }
    }
}

impl From<crate::store::watch::StoreChange> for Event {
    /// What the store watcher saw, as the event every front end reads.
    fn from(c: crate::store::watch::StoreChange) -> Event {
        use crate::store::watch::StoreChange;
        let at = now();
        match c {
            StoreChange::Created(bead) => Event::BeadCreated {
                at,
                origin: Origin::External,
                bead,
            },
            StoreChange::Changed { changes, bead } => Event::BeadChanged {
                at,
                origin: Origin::External,
                changes,
                bead,
            },
            StoreChange::Deleted(id) => Event::BeadDeleted {
                at,
                origin: Origin::External,
                id,
            },
            StoreChange::Problem(problem) => Event::StoreProblem { at, problem },
            StoreChange::WatchFailed(message) => Event::WatchError { at, message },
            StoreChange::Undone { bead, message } => Event::Error {
                at,
                bead: Some(bead),
                message,
            },
        }
    }
}

/// Something that happened.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    BeadCreated {
        at: String,
        origin: Origin,
        bead: Box<Bead>,
    },
    BeadChanged {
        at: String,
        origin: Origin,
        changes: Vec<FieldChange>,
        bead: Box<Bead>,
    },
    BeadDeleted {
        at: String,
        origin: Origin,
        id: String,
    },
    /// A file under `.beads/` changed into something Loom cannot read.
    StoreProblem {
        at: String,
        problem: Problem,
    },
    /// The watcher itself failed (e.g. the OS ran out of watches).
    WatchError {
        at: String,
        message: String,
    },

    /// An orchestrator run began.
    RunStarted {
        at: String,
        target: String,
        max_agents: usize,
        beads_ready: usize,
    },
    /// A bead moved to another pipeline stage (`claimed`, `implementing`, `verifying`,
    /// `reviewing`, `merging`, `done`, …).
    StageChanged {
        at: String,
        bead: String,
        stage: String,
        detail: String,
    },
    AgentStarted {
        at: String,
        bead: String,
        persona: String,
        model: String,
        /// 1 for the first implementation, more after failed tests, review or conflicts.
        round: u32,
    },
    /// Model text as it streams.
    ModelText {
        at: String,
        bead: String,
        agent: String,
        text: String,
    },
    ToolCall {
        at: String,
        bead: String,
        agent: String,
        iteration: u32,
        tool: String,
        arguments: serde_json::Value,
    },
    ToolResult {
        at: String,
        bead: String,
        agent: String,
        iteration: u32,
        tool: String,
        ok: bool,
        summary: String,
    },
    /// The repository's test command ran in the bead's worktree.
    TestOutput {
        at: String,
        bead: String,
        round: u32,
        command: String,
        exit_code: Option<i32>,
        passed: bool,
        /// The end of the output (both streams).
        output: String,
    },
    /// Something about an agent worth showing in its log: a correction sent to the model, a
    /// retried stream, a pause while the endpoint is down, elided history, runner output.
    AgentNotice {
        at: String,
        bead: String,
        agent: String,
        /// `correction`, `retrying`, `paused`, `resumed`, `history_elided`, `runner_output`.
        kind: String,
        message: String,
    },
    ReviewVerdict {
        at: String,
        bead: String,
        approved: bool,
        comments: String,
    },
    MergeResult {
        at: String,
        bead: String,
        merged: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        commit: Option<String>,
        detail: String,
    },
    /// A person must decide: a decision bead blocks `bead`.
    DecisionNeeded {
        at: String,
        bead: String,
        decision: String,
        question: String,
    },
    Usage {
        at: String,
        bead: String,
        agent: String,
        usage: Usage,
    },
    ProviderHealth {
        at: String,
        health: HealthSnapshot,
    },
    Error {
        at: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        bead: Option<String>,
        message: String,
    },
    /// Something an agent ran broke the sandbox's promises (its worktree's `.git` changed):
    /// the bead is stopped, nothing from it is merged.
    SecurityNotice {
        at: String,
        bead: String,
        message: String,
    },
    /// A bead's pipeline ended (for this run).
    BeadFinished {
        at: String,
        bead: String,
        outcome: Outcome,
        stage: String,
        detail: String,
    },
    RunFinished {
        at: String,
        exit_code: i32,
        summary: serde_json::Value,
    },
}

impl Event {
    /// The bead id this event is about, if any.
    pub fn bead_id(&self) -> Option<&str> {
        match self {
            Event::BeadCreated { bead, .. } | Event::BeadChanged { bead, .. } => Some(&bead.id),
            Event::BeadDeleted { id, .. } => Some(id),
            Event::StoreProblem { problem, .. } => problem.id.as_deref(),
            Event::StageChanged { bead, .. }
            | Event::AgentStarted { bead, .. }
            | Event::ModelText { bead, .. }
            | Event::ToolCall { bead, .. }
            | Event::ToolResult { bead, .. }
            | Event::AgentNotice { bead, .. }
            | Event::TestOutput { bead, .. }
            | Event::ReviewVerdict { bead, .. }
            | Event::MergeResult { bead, .. }
            | Event::DecisionNeeded { bead, .. }
            | Event::Usage { bead, .. }
            | Event::SecurityNotice { bead, .. }
            | Event::BeadFinished { bead, .. } => Some(bead),
            Event::Error { bead, .. } => bead.as_deref(),
            Event::WatchError { .. }
            | Event::RunStarted { .. }
            | Event::ProviderHealth { .. }
            | Event::RunFinished { .. } => None,
        }
    }
}

/// The current time as event timestamps carry it.
pub fn now() -> String {
    crate::bead::Timestamp::now().as_str().to_owned()
}

/// Recent events kept per bead and overall, for late subscribers.
const PER_BEAD: usize = 500;
const OVERALL: usize = 2000;

#[derive(Default)]
struct History {
    per_bead: HashMap<String, VecDeque<Event>>,
    overall: VecDeque<Event>,
}

/// Publishes events to live subscribers and keeps a bounded recent history.
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    history: Mutex<History>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventBus")
    }
}

impl EventBus {
    /// A bus whose slow subscribers may lag by up to `capacity` events (then they skip ahead).
    pub fn new(capacity: usize) -> Arc<EventBus> {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Arc::new(EventBus {
            tx,
            history: Mutex::new(History::default()),
        })
    }

    pub fn publish(&self, event: Event) {
        if let Ok(mut h) = self.history.lock() {
            if let Some(id) = event.bead_id() {
                let q = h.per_bead.entry(id.to_owned()).or_default();
                q.push_back(event.clone());
                if q.len() > PER_BEAD {
                    q.pop_front();
                }
            }
            h.overall.push_back(event.clone());
            if h.overall.len() > OVERALL {
                h.overall.pop_front();
            }
        }
        let _ = self.tx.send(event); // no subscriber is fine
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Recent events of `bead` (or of everything), oldest first.
    pub fn recent(&self, bead: Option<&str>) -> Vec<Event> {
        let Ok(h) = self.history.lock() else {
            return Vec::new();
        };
        match bead {
            Some(id) => h
                .per_bead
                .get(id)
                .map(|q| q.iter().cloned().collect())
                .unwrap_or_default(),
            None => h.overall.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(bead: &str, n: usize) -> Event {
        Event::StageChanged {
            at: now(),
            bead: bead.into(),
            stage: format!("s{n}"),
            detail: String::new(),
        }
    }

    #[test]
    fn json_form_is_tagged_and_stable() {
        let v = serde_json::to_value(stage("x-1", 1)).unwrap();
        assert_eq!(v["type"], "stage_changed");
        assert_eq!(v["bead"], "x-1");
        assert!(v["at"].as_str().unwrap().ends_with('Z'));
        let v = serde_json::to_value(Event::MergeResult {
            at: now(),
            bead: "x".into(),
            merged: false,
            commit: None,
            detail: "conflict".into(),
        })
        .unwrap();
        assert!(v.get("commit").is_none());
    }

    #[tokio::test]
    async fn live_and_late_subscribers() {
        let bus = EventBus::new(64);
        let mut live = bus.subscribe();
        for n in 0..600 {
            bus.publish(stage("a", n));
        }
        bus.publish(stage("b", 0));
        assert!(matches!(
            live.recv().await,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_))
        ));
        let a = bus.recent(Some("a"));
        assert_eq!(a.len(), PER_BEAD, "bounded per bead");
        assert!(matches!(&a[a.len() - 1], Event::StageChanged { stage, .. } if stage == "s599"));
        assert_eq!(bus.recent(Some("b")).len(), 1);
        assert_eq!(bus.recent(None).len(), 601);
        assert!(bus.recent(Some("nobody")).is_empty());
    }
}
