//! Bead operations: the one place beads are created and changed. Every front end — the CLI,
//! the TUI's worker, agents' tools, decisions, the orchestrator and the demo — runs these
//! functions inside [`crate::workspace::Workspace::mutate`], which names the change with a
//! typed [`CommitKind`] (the commit's `Loom-Event`) and describes it from what the
//! transaction changed. Nothing else builds a bead or edits one.
//!
//! - [`create`]: new beads (ids, parents, bd's `--deps` directions).
//! - [`change`]: one typed [`change::Change`] to existing beads (update, replace, close,
//!   reopen, dependencies, labels, comments), its commit event, and applying it.
//! - [`edit`]: status (validated against bd's set and `status.custom`), claim, close, reopen,
//!   dependencies with the cycle check, labels, comments, finished epics.
//! - [`desk`]: [`desk::AgentDesk`], the narrow trait agents' tools reach beads through.
//! - [`delete`]: bd's `delete`, with the links and text references it leaves behind.
//! - [`claim`]: a run's hold on a bead — claiming it for an [`owner::Owner`], stage updates,
//!   releasing or giving it back, closing it after a merge, recovering beads whose owner died.
//! - [`undo`]: taking a change back as a new commit.
//! - [`decision`]: escalating (a bead blocked on one decision bead) and deciding.

pub mod change;
pub mod claim;
pub(crate) mod create;
pub(crate) mod decision;
pub(crate) mod delete;
pub(crate) mod desk;
pub(crate) mod edit;
pub(crate) mod owner;
pub mod undo;

pub use crate::git::CommitKind;
pub use create::{DepSpec, NewBead, create};
