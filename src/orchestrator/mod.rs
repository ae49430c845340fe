//! The orchestrator: dispatches ready beads to agents and drives each through the pipeline of
//! DESIGN §6 — claim, worktree, implement, verify, review, merge, close — event-driven, within
//! budgets, surviving crashes.

mod agents;
pub(crate) mod context;
pub mod dispatch;
pub(crate) mod eventlog;
pub(crate) mod fleet;
pub(crate) mod gate;
mod land;
pub(crate) mod lock;
pub(crate) mod notify;
pub(crate) mod pipeline;
pub(crate) mod report;
mod review;
pub mod settings;
mod verify;
