//! Loom: a terminal-first orchestrator for AI coding agents. Work items ("beads") live as plain
//! files under `.beads/` in the user's git repository; every change is a git commit.
//!
//! Layers, lowest first: `bead`, `llm` → `store`, `git` → `config` → `ops`, `workspace`, `event`,
//! `scale` → `agent` → `orchestrator` → `tui`, `cli`; a module imports only from its own layer
//! or below (`tests/it/layers.rs` enforces it). Only the front ends print. See
//! `docs/ARCHITECTURE.md`.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod agent;
pub mod bead;
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub mod cli;
pub mod config;
pub mod demo;
pub(crate) mod error;
pub mod event;
pub mod git;
pub mod llm;
pub mod ops;
pub mod orchestrator;
pub mod scale;
pub mod store;
pub mod synth;
pub(crate) mod text;
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub mod tui;
pub mod workspace;

pub use error::{Error, Result};
