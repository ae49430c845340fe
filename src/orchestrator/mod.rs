//! The orchestrator: dispatches ready beads to agents and drives each through the pipeline of
//! DESIGN §6 — claim, worktree, implement, verify, review, merge, close — event-driven, within
//! budgets, surviving crashes.

pub mod beads;
pub mod lock;
pub mod settings;
