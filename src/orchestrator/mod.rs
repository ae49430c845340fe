//! The orchestrator: dispatches ready beads to agents and drives each through the pipeline of
//! DESIGN §6 — claim, worktree, implement, verify, review, merge, close — event-driven, within
//! budgets, surviving crashes.

mod agents;
pub mod context;
pub mod dispatch;
pub mod eventlog;
pub mod gate;
mod land;
pub mod lock;
pub mod pipeline;
pub mod report;
mod review;
pub mod settings;
mod verify;
