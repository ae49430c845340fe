//! Agents: a persona driving the model through tools inside the bead's own git worktree.
//!
//! `persona` (who), `tools` (what it can do, schemas and parsing), `sandbox` (where its
//! commands run), `beneath` (file access confined to the worktree), `exec` (doing it),
//! `quota` (how many beads agents may file), `prompt` (what the model is told), `run` (the
//! action loop) and `runner` (handing the work to another coding-agent CLI).

pub mod beneath;
pub mod exec;
pub mod lessons;
pub mod pair;
pub mod persona;
pub mod prompt;
pub mod quota;
pub mod run;
pub mod runner;
pub mod sandbox;
pub mod session;
pub mod tools;

pub use persona::{Persona, PersonaSet};
