//! The orchestrator's settings: the repository keys of `.loom/config.yaml` (exact names from the
//! issue: `test_command`, `target_branch`, `max_agents`, `review`, `merge`) and the per-bead
//! `budget:`, overridden by `loom run` flags.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What happens once a bead is done, tested and reviewed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeMode {
    /// Squash and fast-forward the target.
    #[default]
    Auto,
    /// Wait for a person (a decision bead asks for approval).
    Approve,
    /// Leave the work on its branch.
    None,
}

/// `budget:` in a config file: limits per bead, across all its rounds.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetFile {
    pub max_dispatches: Option<u32>,
    pub max_verify_rounds: Option<u32>,
    pub max_review_rounds: Option<u32>,
    pub max_tokens: Option<u64>,
    pub max_minutes: Option<f64>,
}

impl BudgetFile {
    pub fn merge(&mut self, o: BudgetFile) {
        macro_rules! take {
            ($($f:ident),*) => { $( if o.$f.is_some() { self.$f = o.$f; } )* };
        }
        take!(
            max_dispatches,
            max_verify_rounds,
            max_review_rounds,
            max_tokens,
            max_minutes
        );
    }
}

/// Effective per-bead budget.
#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    pub max_dispatches: u32,
    pub max_verify_rounds: u32,
    pub max_review_rounds: u32,
    pub max_tokens: u64,
    pub max_time: Duration,
}

impl Budget {
    pub fn from_file(f: &BudgetFile) -> Budget {
        Budget {
            max_dispatches: f.max_dispatches.unwrap_or(3).max(1),
            max_verify_rounds: f.max_verify_rounds.unwrap_or(3).max(1),
            max_review_rounds: f.max_review_rounds.unwrap_or(2).max(1),
            max_tokens: f.max_tokens.unwrap_or(1_000_000),
            max_time: Duration::from_secs_f64(f.max_minutes.unwrap_or(60.0).max(0.01) * 60.0),
        }
    }
}

/// Everything a run needs to know.
#[derive(Clone, Debug)]
pub struct RunSettings {
    /// Verification command (none: beads are not verified).
    pub test_command: Option<String>,
    pub test_timeout: Duration,
    /// The branch work is merged into.
    pub target: String,
    pub max_agents: usize,
    pub review: bool,
    pub merge: MergeMode,
    pub budget: Budget,
    /// Only these beads (empty: every ready bead).
    pub beads: Vec<String>,
    /// Stop dispatching after this many beads.
    pub max_beads: Option<usize>,
    /// Stop the whole run after this long.
    pub timeout: Option<Duration>,
    /// Stop dispatching once the run used this many tokens.
    pub max_tokens: Option<u64>,
    /// Give up (exit 4) when the endpoint stays down this long.
    pub provider_down_limit: Duration,
}
