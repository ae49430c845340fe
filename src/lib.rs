//! Loom: a terminal-first orchestrator for AI coding agents. Work items ("beads") live as plain
//! files under `.beads/` in the user's git repository; every change is a git commit.
//!
//! Data flows one way: `store`, `git` are the edges; `cli` (and later the TUI and the
//! orchestrator) consume [`event`]s and call into them. See `docs/ARCHITECTURE.md`.

pub mod agent;
pub mod bead;
pub mod cli;
pub mod config;
pub mod decision;
pub mod demo;
pub mod error;
pub mod event;
pub mod git;
pub mod llm;
pub mod ops;
pub mod orchestrator;
pub mod store;
pub mod synth;
pub mod text;
pub mod tui;
pub mod workspace;

pub use error::{Error, Result};
