//! Bead operations: the one place beads are created and changed. Every front end — the CLI,
//! the TUI's worker, agents' tools, decisions, the orchestrator and the demo — runs these
//! functions inside [`crate::workspace::Workspace::mutate`], which names the change with a
//! typed [`CommitKind`] (the commit's `Loom-Event`) and describes it from what the
//! transaction changed. Nothing else builds a bead or edits one.
//!
//! - [`create`]: new beads (ids, parents, bd's `--deps` directions).
//! - [`edit`]: status (validated against bd's set and `status.custom`), claim, close, reopen,
//!   dependencies with the cycle check, labels, comments, finished epics.
//! - [`delete`]: bd's `delete`, with the links and text references it leaves behind.
//! - [`decision`]: escalating (a bead blocked on one decision bead) and deciding.

pub mod create;
pub mod decision;
pub mod delete;
pub mod edit;

pub use crate::git::CommitKind;
pub use create::{DepSpec, NewBead, create};
