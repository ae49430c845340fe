//! The one event protocol every front end consumes (`loom watch` now; the orchestrator and the
//! TUI later). Each event has a stable JSON form tagged by `type`.

use serde::Serialize;

use crate::bead::Bead;
use crate::bead::change::FieldChange;
use crate::store::Problem;

/// Who caused a bead change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Another program: an editor, `git pull`, bd, another Loom process.
    External,
    /// This Loom process.
    Loom,
}

/// Something that happened.
#[derive(Clone, Debug, Serialize)]
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
    StoreProblem { at: String, problem: Problem },
    /// The watcher itself failed (e.g. the OS ran out of watches).
    WatchError { at: String, message: String },
}

impl Event {
    /// The bead id this event is about, if any.
    pub fn bead_id(&self) -> Option<&str> {
        match self {
            Event::BeadCreated { bead, .. } | Event::BeadChanged { bead, .. } => Some(&bead.id),
            Event::BeadDeleted { id, .. } => Some(id),
            Event::StoreProblem { problem, .. } => problem.id.as_deref(),
            Event::WatchError { .. } => None,
        }
    }
}

/// The current time as event timestamps carry it.
pub fn now() -> String {
    crate::bead::Timestamp::now().as_str().to_owned()
}
