//! Agents: a persona driving the model through tools inside the bead's own git worktree.
//!
//! `persona` (who), `tools` (what it can do, schemas and parsing), `sandbox` (where its
//! commands run), `beneath` (file access confined to the worktree), `exec` (doing it),
//! `quota` (how many beads agents may file), `prompt` (what the model is told), `run` (the
//! action loop) and `runner` (handing the work to another coding-agent CLI).

pub(crate) mod beneath;
pub mod exec;
pub(crate) mod lessons;
pub(crate) mod pair;
pub(crate) mod persona;
pub(crate) mod prompt;
pub(crate) mod quota;
pub(crate) mod run;
pub(crate) mod runner;
pub mod sandbox;
pub(crate) mod session;
pub mod tools;

pub use persona::{Persona, PersonaSet};
