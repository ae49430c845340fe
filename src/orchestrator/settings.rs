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

/// `budget:` in a config file: limits per bead, across all its rounds, and per run.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetFile {
    pub max_dispatches: Option<u32>,
    pub max_verify_rounds: Option<u32>,
    pub max_review_rounds: Option<u32>,
    pub max_tokens: Option<u64>,
    pub max_minutes: Option<f64>,
    /// Model turns across all the bead's agent sessions.
    pub max_iterations: Option<u32>,
    /// Beads agents may file in one run (default 20).
    pub run_created_beads: Option<u32>,
    /// Beads agents may file while working one bead (default 5).
    pub bead_created_beads: Option<u32>,
    /// Model requests in one run (default 2,000).
    pub run_requests: Option<u64>,
    /// Tokens in one run (default 20 million).
    pub run_tokens: Option<u64>,
    /// Dispatch beads that agents file in the same run (default false: they wait for the
    /// next run, so a person sees them first).
    pub dispatch_followups: Option<bool>,
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
            max_minutes,
            max_iterations,
            run_created_beads,
            bead_created_beads,
            run_requests,
            run_tokens,
            dispatch_followups
        );
    }
}

/// Default model requests per run.
pub const DEFAULT_RUN_REQUESTS: u64 = 2_000;
/// Default tokens per run.
pub const DEFAULT_RUN_TOKENS: u64 = 20_000_000;

/// Limits on a whole run (DESIGN §9): reaching one stops dispatching, files one decision and
/// makes `loom run` exit 3.
#[derive(Clone, Debug, PartialEq)]
pub struct RunLimits {
    pub created_beads: u32,
    pub bead_created_beads: u32,
    pub requests: u64,
    pub tokens: u64,
    pub dispatch_followups: bool,
}

impl Default for RunLimits {
    fn default() -> RunLimits {
        RunLimits {
            created_beads: crate::agent::quota::DEFAULT_RUN,
            bead_created_beads: crate::agent::quota::DEFAULT_BEAD,
            requests: DEFAULT_RUN_REQUESTS,
            tokens: DEFAULT_RUN_TOKENS,
            dispatch_followups: false,
        }
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
    pub max_iterations: u32,
}

impl Budget {
    pub fn from_file(f: &BudgetFile) -> Budget {
        Budget {
            max_dispatches: f.max_dispatches.unwrap_or(3).max(1),
            max_verify_rounds: f.max_verify_rounds.unwrap_or(3).max(1),
            max_review_rounds: f.max_review_rounds.unwrap_or(2).max(1),
            max_tokens: f.max_tokens.unwrap_or(1_000_000),
            max_iterations: f.max_iterations.unwrap_or(200).max(1),
            max_time: f
                .max_minutes
                .and_then(|m| Duration::try_from_secs_f64(m * 60.0).ok())
                .filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_secs(3600)),
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
    /// Stop dispatching once the run used this many tokens (`--max-tokens`, without a
    /// decision: a budget the caller chose for this run).
    pub max_tokens: Option<u64>,
    /// Run-wide limits (`budget.run_*`, flags).
    pub limits: RunLimits,
    /// Give up (exit 4) when the endpoint stays down this long.
    pub provider_down_limit: Duration,
    /// End the run when nothing is ready or running (`loom run`); `false` keeps dispatching
    /// as beads become ready until stopped (the TUI).
    pub idle_exit: bool,
    /// The `agent:` section (limits, committer) for every session of the run.
    pub agent: crate::agent::run::AgentFile,
    /// Run for each decision the run needs, with it as JSON on stdin (`notify_command`).
    pub notify_command: Option<String>,
}

/// What `loom run` flags override.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub target: Option<String>,
    pub max_agents: Option<usize>,
    pub beads: Vec<String>,
    pub max_beads: Option<usize>,
    pub timeout: Option<Duration>,
    pub max_tokens: Option<u64>,
    pub no_merge: bool,
    pub run_created_beads: Option<u32>,
    pub bead_created_beads: Option<u32>,
    pub run_requests: Option<u64>,
    pub run_tokens: Option<u64>,
    pub dispatch_followups: bool,
}

impl RunSettings {
    /// The effective settings: flags over the configuration over the defaults. `current` is
    /// the branch checked out now (the default target).
    pub fn resolve(
        config: &crate::config::Config,
        current: Option<&str>,
        down_limit: Duration,
        o: Overrides,
    ) -> crate::error::Result<RunSettings> {
        use crate::error::Error;
        let nonempty = |s: &Option<String>| {
            s.as_ref()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let configured = nonempty(&config.value("target_branch")?);
        let target = o
            .target
            .or(configured)
            .or_else(|| current.map(str::to_owned))
            .ok_or_else(|| {
                Error::Usage(
                    "HEAD is detached: check out the branch to merge into, or set target_branch in .loom/config.yaml"
                        .into(),
                )
            })?;
        let max_agents = o.max_agents.or(config.value("max_agents")?).unwrap_or(4);
        let b = &config.section("budget", BudgetFile::merge)?;
        if max_agents == 0 {
            return Err(Error::Usage(
                "max_agents must be at least 1 (--max-agents, or max_agents in .loom/config.yaml)"
                    .into(),
            ));
        }
        Ok(RunSettings {
            test_command: nonempty(&config.value("test_command")?),
            test_timeout: Duration::from_secs(
                config
                    .value::<u64>("test_timeout_secs")?
                    .unwrap_or(600)
                    .max(1),
            ),
            target,
            max_agents,
            review: config.value("review")?.unwrap_or(true),
            merge: if o.no_merge {
                MergeMode::None
            } else {
                config.value("merge")?.unwrap_or_default()
            },
            budget: Budget::from_file(b),
            beads: o.beads,
            max_beads: o.max_beads,
            timeout: o.timeout,
            max_tokens: o.max_tokens,
            limits: RunLimits {
                created_beads: o
                    .run_created_beads
                    .or(b.run_created_beads)
                    .unwrap_or(crate::agent::quota::DEFAULT_RUN),
                bead_created_beads: o
                    .bead_created_beads
                    .or(b.bead_created_beads)
                    .unwrap_or(crate::agent::quota::DEFAULT_BEAD),
                requests: o
                    .run_requests
                    .or(b.run_requests)
                    .unwrap_or(DEFAULT_RUN_REQUESTS),
                tokens: o.run_tokens.or(b.run_tokens).unwrap_or(DEFAULT_RUN_TOKENS),
                dispatch_followups: o.dispatch_followups
                    || b.dispatch_followups.unwrap_or(false)
                    || config.value("dispatch_followups")?.unwrap_or(false),
            },
            provider_down_limit: down_limit,
            idle_exit: true,
            agent: crate::agent::run::AgentFile::from_config(config)?,
            notify_command: nonempty(&config.value("notify_command")?),
        })
    }
}

/// A duration flag: `90` (seconds), `90s`, `15m`, `2h`, `1h30m`.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let t = text.trim();
    let bad = || format!("{text:?} is not a duration; use e.g. 90s, 15m, 2h or 1h30m");
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
        total = total.saturating_add(n.saturating_mul(unit));
    }
    if !num.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        for bad in ["", "m", "10x", "1.5h", "10m5"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_over_config_over_defaults() {
        let mut c = crate::config::Config::default();
        let d = Duration::from_secs(300);
        let s = RunSettings::resolve(&c, Some("main"), d, Overrides::default()).unwrap();
        assert_eq!(
            (s.target.as_str(), s.max_agents, s.review, s.merge),
            ("main", 4, true, MergeMode::Auto)
        );
        assert_eq!(s.test_command, None);
        assert_eq!(s.budget.max_dispatches, 3);
        assert_eq!(s.limits.created_beads, 20);
        assert_eq!(s.limits.bead_created_beads, 5);
        assert!(!s.limits.dispatch_followups);
        c.set("target_branch", "dev".into());
        c.set("max_agents", 2.into());
        c.set("merge", "approve".into());
        c.set("test_command", "  ".into());
        let s = RunSettings::resolve(&c, Some("main"), d, Overrides::default()).unwrap();
        assert_eq!(
            (s.target.as_str(), s.max_agents, s.merge),
            ("dev", 2, MergeMode::Approve)
        );
        assert_eq!(s.test_command, None, "blank means none");
        let o = Overrides {
            target: Some("x".into()),
            max_agents: Some(8),
            no_merge: true,
            ..Overrides::default()
        };
        let s = RunSettings::resolve(&c, None, d, o).unwrap();
        assert_eq!(
            (s.target.as_str(), s.max_agents, s.merge),
            ("x", 8, MergeMode::None)
        );
        assert!(
            RunSettings::resolve(
                &crate::config::Config::default(),
                None,
                d,
                Overrides::default()
            )
            .is_err()
        );
        let zero = Overrides {
            max_agents: Some(0),
            ..Overrides::default()
        };
        assert!(RunSettings::resolve(&c, None, d, zero).is_err());
    }
}
