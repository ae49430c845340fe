//! What the orchestrator is doing, folded from its events: the running agents (stage, round,
//! iteration, tokens, elapsed), the session's usage (per agent, bead and model, and over
//! time), the endpoint's health and the last error.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::event::{Event, EventKind, Outcome, Stage};
use crate::llm::{Health, Usage};

/// One bead's agent, as far as the events tell.
#[derive(Clone, Debug)]
pub struct AgentLive {
    pub bead: String,
    pub persona: String,
    pub model: String,
    pub stage: Stage,
    pub round: u32,
    pub iteration: u32,
    pub tokens: u64,
    pub cost: f64,
    pub since: Instant,
    /// How it ended (kept until the bead runs again).
    pub outcome: Option<Outcome>,
}

/// Tokens and cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Spend {
    pub tokens: u64,
    pub cost: f64,
}

impl Spend {
    fn add(&mut self, u: &Usage) {
        self.tokens += u.total_tokens;
        self.cost += u.cost_usd.unwrap_or(0.0);
    }
}

/// Tokens per minute, by who spent them.
#[derive(Clone, Debug, Default)]
pub struct Trends {
    pub agent: BTreeMap<String, Vec<u64>>,
    pub bead: BTreeMap<String, Vec<u64>>,
    pub model: BTreeMap<String, Vec<u64>>,
}

/// The most minutes a series keeps (a day).
const MAX_MINUTES: usize = 24 * 60;

/// Adds `n` to minute `minute` of `series`.
fn bump<T: Copy + Default + std::ops::AddAssign>(series: &mut Vec<T>, minute: usize, n: T) {
    if series.len() <= minute {
        series.resize(minute + 1, T::default());
    }
    series[minute] += n;
}

/// Everything live.
#[derive(Clone, Debug)]
pub struct Live {
    pub agents: BTreeMap<String, AgentLive>,
    pub by_agent: BTreeMap<String, Spend>,
    pub by_bead: BTreeMap<String, Spend>,
    pub by_model: BTreeMap<String, Spend>,
    /// Tokens per minute since the session started (index = minute).
    pub per_minute: Vec<u64>,
    /// Cost (USD) per minute.
    pub cost_per_minute: Vec<f64>,
    /// Tokens per minute of each agent, bead and model.
    pub trend: Trends,
    /// Beads finished per minute, and how they ended (`merged`, `escalated`, …).
    pub finished_per_minute: Vec<u64>,
    pub outcomes: BTreeMap<String, u64>,
    pub total: Spend,
    pub health: Health,
    pub health_detail: Option<String>,
    pub last_error: Option<String>,
    pub watcher_ok: bool,
    pub started: Instant,
    /// Whether a run is going: this window's, or another process's that it follows.
    pub orchestrating: bool,
    pub max_agents: usize,
}

impl Live {
    pub fn new(now: Instant) -> Live {
        Live {
            agents: BTreeMap::new(),
            by_agent: BTreeMap::new(),
            by_bead: BTreeMap::new(),
            by_model: BTreeMap::new(),
            per_minute: Vec::new(),
            cost_per_minute: Vec::new(),
            trend: Trends::default(),
            finished_per_minute: Vec::new(),
            outcomes: BTreeMap::new(),
            total: Spend::default(),
            health: Health::Unknown,
            health_detail: None,
            last_error: None,
            watcher_ok: true,
            started: now,
            orchestrating: false,
            max_agents: 0,
        }
    }

    /// Agents working now.
    /// Whether an agent works on bead `id` now.
    pub fn running(&self, id: &str) -> bool {
        self.agents.get(id).is_some_and(|a| a.outcome.is_none())
    }

    pub fn busy(&self) -> usize {
        self.agents.values().filter(|a| a.outcome.is_none()).count()
    }

    /// The live record of bead `id`'s pipeline (new from `now` if there is none).
    fn agent(&mut self, id: &str, now: Instant) -> &mut AgentLive {
        self.agents
            .entry(id.to_owned())
            .or_insert_with(|| AgentLive {
                bead: id.to_owned(),
                persona: String::new(),
                model: String::new(),
                stage: Stage::Claimed,
                round: 0,
                iteration: 0,
                tokens: 0,
                cost: 0.0,
                since: now,
                outcome: None,
            })
    }

    /// The minute of the session `now` falls in (capped at a day).
    fn minute(&self, now: Instant) -> usize {
        let m = now.saturating_duration_since(self.started).as_secs() / 60;
        usize::try_from(m).unwrap_or(usize::MAX).min(MAX_MINUTES)
    }

    /// Folds one event in (at `now`).
    pub fn apply(&mut self, e: &Event, now: Instant) {
        let bead = e.bead_or_empty();
        match &e.kind {
            EventKind::RunStarted { max_agents, .. } => {
                self.max_agents = *max_agents;
                self.orchestrating = true;
            }
            // Here or in another process (followed through its event log). An agent the run
            // did not report finished (its process died) is not working any more.
            EventKind::RunFinished { .. } => {
                self.orchestrating = false;
                for a in self.agents.values_mut().filter(|a| a.outcome.is_none()) {
                    a.outcome = Some(Outcome::Interrupted);
                }
            }
            EventKind::StageChanged { stage, .. } => {
                let a = self.agent(bead, now);
                if *stage == Stage::Claimed {
                    *a = AgentLive {
                        since: now,
                        outcome: None,
                        iteration: 0,
                        tokens: 0,
                        cost: 0.0,
                        round: 0,
                        ..a.clone()
                    };
                }
                if !matches!(
                    stage,
                    Stage::Worktree | Stage::WorktreeKept | Stage::WorktreeRemoved | Stage::Skipped
                ) {
                    a.stage = *stage;
                }
            }
            EventKind::AgentStarted {
                persona,
                model,
                round,
                ..
            } => {
                let a = self.agent(bead, now);
                a.persona = persona.clone();
                a.model = model.clone();
                a.round = *round;
                a.outcome = None;
            }
            EventKind::ToolCall { iteration, .. } => {
                if let Some(a) = self.agents.get_mut(bead) {
                    a.iteration = a.iteration.max(*iteration);
                }
            }
            EventKind::Usage { usage } => {
                self.total.add(usage);
                self.by_agent
                    .entry(e.agent_or_empty().to_owned())
                    .or_default()
                    .add(usage);
                self.by_bead.entry(bead.to_owned()).or_default().add(usage);
                let model = self
                    .agents
                    .get(bead)
                    .map(|a| a.model.clone())
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "unknown".into());
                self.by_model.entry(model.clone()).or_default().add(usage);
                let minute = self.minute(now);
                let n = usage.total_tokens;
                bump(&mut self.per_minute, minute, n);
                bump(
                    &mut self.cost_per_minute,
                    minute,
                    usage.cost_usd.unwrap_or(0.0),
                );
                let agent = e.agent_or_empty().to_owned();
                bump(self.trend.agent.entry(agent).or_default(), minute, n);
                bump(
                    self.trend.bead.entry(bead.to_owned()).or_default(),
                    minute,
                    n,
                );
                bump(self.trend.model.entry(model).or_default(), minute, n);
                if let Some(a) = self.agents.get_mut(bead) {
                    a.tokens += usage.total_tokens;
                    a.cost += usage.cost_usd.unwrap_or(0.0);
                }
            }
            EventKind::BeadFinished { outcome, stage, .. } => {
                let minute = self.minute(now);
                bump(&mut self.finished_per_minute, minute, 1);
                *self
                    .outcomes
                    .entry(outcome.as_str().to_owned())
                    .or_default() += 1;
                if let Some(a) = self.agents.get_mut(bead) {
                    a.outcome = Some(*outcome);
                    a.stage = *stage;
                }
            }
            EventKind::ProviderHealth { health, .. } => {
                self.health = health.health;
                self.health_detail = health.last_error.clone();
            }
            EventKind::SecurityNotice { message } => {
                self.last_error = Some(format!("{bead}: security: {message}"));
            }
            EventKind::Error { message } => {
                self.last_error = Some(match &e.bead {
                    Some(b) => format!("{b}: {message}"),
                    None => message.clone(),
                });
            }
            EventKind::WatchError { message, .. } => {
                self.watcher_ok = false;
                self.last_error = Some(format!("watcher: {message}"));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_and_usage_follow_the_events() {
        let t0 = Instant::now();
        let mut l = Live::new(t0);
        let stage = |s: &str| {
            Event::about(
                "t-a",
                EventKind::StageChanged {
                    stage: Stage::parse(s),
                    detail: String::new(),
                },
            )
        };
        l.apply(&stage("claimed"), t0);
        l.apply(
            &Event::about(
                "t-a",
                EventKind::AgentStarted {
                    persona: "coder".into(),
                    model: "m1".into(),
                    round: 1,
                },
            ),
            t0,
        );
        l.apply(&stage("implementing"), t0);
        l.apply(
            &Event::about(
                "t-a",
                EventKind::ToolCall {
                    iteration: 3,
                    tool: "read_file".into(),
                    arguments: serde_json::json!({}),
                },
            )
            .by("coder"),
            t0,
        );
        let usage = Usage {
            prompt_tokens: 100,
            completion_tokens: 20,
            total_tokens: 120,
            cost_usd: Some(0.01),
        };
        l.apply(
            &Event::about("t-a", EventKind::Usage { usage }).by("coder"),
            t0 + std::time::Duration::from_secs(125),
        );
        let a = &l.agents["t-a"];
        assert_eq!(
            (a.persona.as_str(), a.stage.as_str(), a.iteration, a.tokens),
            ("coder", "implementing", 3, 120)
        );
        assert_eq!(l.busy(), 1);
        assert_eq!(l.by_model["m1"].tokens, 120);
        assert_eq!(l.per_minute, [0, 0, 120]);
        assert_eq!(l.trend.agent["coder"], [0, 0, 120]);
        assert_eq!(l.trend.model["m1"], [0, 0, 120]);
        assert!((l.cost_per_minute[2] - 0.01).abs() < 1e-9);
        assert!((l.total.cost - 0.01).abs() < 1e-9);
        l.apply(
            &Event::about(
                "t-a",
                EventKind::BeadFinished {
                    outcome: Outcome::Merged,
                    stage: Stage::Done,
                    detail: String::new(),
                },
            ),
            t0,
        );
        assert_eq!(l.busy(), 0);
        assert_eq!(
            (l.finished_per_minute.clone(), l.outcomes["merged"]),
            (vec![1], 1)
        );
    }
}
