//! The error type shared by the library: each variant says what failed and where, and
//! [`Error::hint`] says what to do about it.

use std::path::PathBuf;

use crate::bead::Invalid;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("no .beads/ directory in {} or any directory above it", .start.display())]
    NoBeadsDir { start: PathBuf },

    #[error("{} is not inside a git repository", .path.display())]
    NotGit { path: PathBuf },

    #[error("no bead matches {0:?}")]
    NotFound(String),

    #[error("{query:?} matches {} beads: {}", .candidates.len(), .candidates.join(", "))]
    Ambiguous {
        query: String,
        candidates: Vec<String>,
    },

    #[error("bead {0} already exists")]
    Exists(String),

    #[error("bead {id} would be invalid: {}", join(.problems))]
    Invalid { id: String, problems: Vec<Invalid> },

    #[error("{location}: the record of {id} cannot be read: {message}")]
    Malformed {
        id: String,
        location: String,
        message: String,
    },

    #[error("{0}")]
    Usage(String),

    /// The request is well-formed but the beads' current state forbids it (a cycle, open
    /// blockers, …).
    #[error("{0}")]
    Refused(String),

    #[error("{0}")]
    Config(String),

    #[error("`git {command}` failed: {message}")]
    Git { command: String, message: String },

    #[error("{}: changed by another program {attempts} times while Loom tried to write it", .path.display())]
    Contended { path: PathBuf, attempts: usize },

    #[error(transparent)]
    Llm(#[from] crate::llm::LlmError),

    /// Something an agent ran broke the sandbox's promises (its worktree's `.git` changed):
    /// the bead stops and nothing from it is merged.
    #[error("security: {0}")]
    Security(String),

    #[error("{0}")]
    Other(String),
}

fn join(problems: &[Invalid]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The message with its hint in parentheses (one line, for events and status bars).
    pub fn with_hint(&self) -> String {
        match self.hint() {
            Some(h) => format!("{self} ({h})"),
            None => self.to_string(),
        }
    }

    /// What the user can do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::NoBeadsDir { .. } => Some(
                "run `loom init` in your repository (add `--format jsonl` for a bd-compatible issues.jsonl)"
                    .into(),
            ),
            Error::NotGit { .. } => Some(
                "Loom records every change as a git commit: run `git init` first (or `git clone` your repository)"
                    .into(),
            ),
            Error::NotFound(_) => Some("`loom list --all` shows every bead and its id".into()),
            Error::Ambiguous { .. } => Some("give more characters of the id".into()),
            Error::Malformed { .. } => Some(
                "fix or remove that record in your editor; Loom keeps it untouched until then".into(),
            ),
            Error::Contended { .. } => Some(
                "another program (bd, an editor, a sync tool) keeps rewriting the file; retry when it is idle".into(),
            ),
            Error::Llm(e) => e.hint(),
            Error::Security(_) => Some(
                "nothing from this bead is merged; inspect its worktree (`loom worktrees`), then remove it and resolve the decision"
                    .into(),
            ),
            Error::Git { .. } => Some(
                "check `git status`; set `auto_commit: false` in .loom/config.yaml to write beads without committing"
                    .into(),
            ),
            _ => None,
        }
    }

    /// Process exit code: 2 for usage and configuration errors, 4 when the LLM endpoint is
    /// unusable, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        use crate::llm::LlmError;
        match self {
            Error::Usage(_)
            | Error::Config(_)
            | Error::NoBeadsDir { .. }
            | Error::NotGit { .. }
            | Error::Llm(LlmError::NotConfigured | LlmError::Replay(_) | LlmError::Record(_)) => 2,
            Error::Llm(_) => 4,
            _ => 1,
        }
    }
}
