//! The action loop: model → tool calls → execute → results back → repeat, until `done`,
//! `escalate` (or a reviewer's verdict), a reply without a tool call, the iteration limit, two
//! unparseable replies in a row, the same call five times in a row, or a token or time budget.
//! Parse failures go back to the model as corrections — never into beads.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::llm::{ChatRequest, Client, LlmError, Message, StreamEvent, ToolCall, Usage};

use super::exec::{Finish, Outcome, ToolContext};
use super::persona::Persona;
use super::prompt::{ToolMode, fit_history};
use super::tools::{self, Action, TextCall};

/// `agent:` in a config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentFile {
    /// Persona for beads nothing else matches (default `coder`).
    pub default_persona: Option<String>,
    /// Overrides the personas' `max_iterations`.
    pub max_iterations: Option<u32>,
    /// Token budget of one run (prompt + completion), default 400,000.
    pub max_tokens: Option<u64>,
    /// Wall-clock budget of one run, default 30 minutes.
    pub max_minutes: Option<f64>,
    /// Identical consecutive calls that end the loop, default 5.
    pub repeat_limit: Option<u32>,
    /// Context window when the endpoint does not say, default 32,768.
    pub context_length: Option<u64>,
    pub tool_mode: Option<ToolMode>,
    /// Committer of agent commits (default: the repository's git identity).
    pub committer: Option<Committer>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Committer {
    pub name: String,
    pub email: String,
}

impl AgentFile {
    /// The `agent:` section of `config`, over all its layers.
    pub fn from_config(config: &crate::config::Config) -> crate::error::Result<AgentFile> {
        config.section("agent", AgentFile::merge)
    }

    pub fn merge(&mut self, other: AgentFile) {
        macro_rules! take {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        take!(
            default_persona,
            max_iterations,
            max_tokens,
            max_minutes,
            repeat_limit,
            context_length,
            tool_mode,
            committer
        );
    }
}

/// Effective limits of one run.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_iterations: u32,
    pub max_tokens: u64,
    pub max_time: Duration,
    pub repeat_limit: u32,
    pub unparseable_limit: u32,
    pub context_length: u64,
    pub tool_mode: ToolMode,
}

impl Limits {
    pub fn new(file: &AgentFile, persona: &Persona) -> Limits {
        Limits {
            max_iterations: file.max_iterations.unwrap_or(persona.max_iterations).max(1),
            max_tokens: file.max_tokens.unwrap_or(400_000),
            max_time: file
                .max_minutes
                .filter(|m| m.is_finite() && *m > 0.0)
                .and_then(|m| Duration::try_from_secs_f64(m * 60.0).ok())
                .unwrap_or(Duration::from_secs(30 * 60)),
            repeat_limit: file.repeat_limit.unwrap_or(5).max(2),
            unparseable_limit: 2,
            context_length: file.context_length.unwrap_or(32_768),
            tool_mode: file.tool_mode.unwrap_or_default(),
        }
    }
}

/// Why a loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Terminal {
    Done,
    Escalated,
    Approved,
    ChangesRequested,
    /// The model answered without calling a tool.
    NoToolCall,
    MaxIterations,
    /// Two unparseable replies in a row.
    Unparseable,
    /// The same call again and again.
    RepeatedAction,
    TokenBudget,
    TimeBudget,
    /// The endpoint failed for good.
    LlmError,
    /// An external runner exited non-zero.
    RunnerFailed,
    /// Stopped from outside (the run ended: timeout, Ctrl-C, the endpoint gone).
    Interrupted,
    /// A command broke the sandbox's promises (the worktree's `.git` was replaced): nothing
    /// from this bead may be merged.
    SecurityStop,
}

impl Terminal {
    pub fn as_str(self) -> &'static str {
        match self {
            Terminal::Done => "done",
            Terminal::Escalated => "escalated",
            Terminal::Approved => "approved",
            Terminal::ChangesRequested => "changes_requested",
            Terminal::NoToolCall => "no_tool_call",
            Terminal::MaxIterations => "max_iterations",
            Terminal::Unparseable => "unparseable",
            Terminal::RepeatedAction => "repeated_action",
            Terminal::TokenBudget => "token_budget",
            Terminal::TimeBudget => "time_budget",
            Terminal::LlmError => "llm_error",
            Terminal::RunnerFailed => "runner_failed",
            Terminal::Interrupted => "interrupted",
            Terminal::SecurityStop => "security_stop",
        }
    }

    /// Whether the work succeeded as far as the loop can tell.
    pub fn is_success(self) -> bool {
        matches!(self, Terminal::Done | Terminal::Approved)
    }
}

/// What happens during a run, for the log.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    Started {
        bead: String,
        persona: String,
        model: String,
        worktree: String,
    },
    /// Model text, as it streams.
    Text {
        text: String,
    },
    ToolCall {
        iteration: u32,
        tool: String,
        arguments: serde_json::Value,
    },
    ToolResult {
        iteration: u32,
        tool: String,
        ok: bool,
        summary: String,
    },
    /// The model's reply could not be used; a correction was sent.
    Correction {
        iteration: u32,
        reason: String,
    },
    /// A streamed reply was retried (and possibly restarted).
    Retrying {
        reason: String,
    },
    /// The endpoint is down: the agent waits for it (and then retries).
    Paused {
        reason: String,
    },
    /// The endpoint answered again after a pause.
    Resumed,
    /// Old tool outputs were elided to fit the context window.
    HistoryElided {
        outputs: usize,
    },
    /// A line of an external runner's output.
    RunnerOutput {
        line: String,
    },
    /// What one model call used (also summed in the end's usage).
    Usage {
        usage: Usage,
    },
    Finished {
        report: RunReport,
    },
}

impl AgentEvent {
    /// The protocol event for this agent event of `agent` on `bead`: what `loom run`, the TUI
    /// and `loom agent` show. `None` for the run's start, end and usage, which the caller
    /// reports in its own terms (a run's budget, a session's summary).
    pub fn to_event(&self, bead: &str, agent: &str) -> Option<crate::event::Event> {
        use crate::event::{Event, EventKind, Notice};
        let notice = |notice: Notice, message: String| EventKind::AgentNotice { notice, message };
        let kind = match self {
            AgentEvent::Text { text } => EventKind::ModelText { text: text.clone() },
            AgentEvent::ToolCall {
                iteration,
                tool,
                arguments,
            } => EventKind::ToolCall {
                iteration: *iteration,
                tool: tool.clone(),
                arguments: arguments.clone(),
            },
            AgentEvent::ToolResult {
                iteration,
                tool,
                ok,
                summary,
            } => EventKind::ToolResult {
                iteration: *iteration,
                tool: tool.clone(),
                ok: *ok,
                summary: summary.clone(),
            },
            AgentEvent::Correction { reason, .. } => notice(Notice::Correction, reason.clone()),
            AgentEvent::Retrying { reason } => notice(Notice::Retrying, reason.clone()),
            AgentEvent::Paused { reason } => notice(Notice::Paused, reason.clone()),
            AgentEvent::Resumed => notice(Notice::Resumed, "the endpoint answers again".into()),
            AgentEvent::HistoryElided { outputs } => notice(
                Notice::HistoryElided,
                format!(
                    "elided {}",
                    crate::text::count(*outputs as u64, "old tool output")
                ),
            ),
            AgentEvent::RunnerOutput { line } => notice(Notice::RunnerOutput, line.clone()),
            AgentEvent::Started { .. } | AgentEvent::Finished { .. } | AgentEvent::Usage { .. } => {
                return None;
            }
        };
        Some(Event::about(bead, kind).by(agent))
    }
}

/// How a run ended, with its counts. Stored (summarised) in the bead's `metadata.loom`.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub bead: String,
    pub persona: String,
    pub model: String,
    pub terminal: Terminal,
    /// The summary (`done`), the question (`escalate`), or why it stopped.
    pub detail: String,
    pub iterations: u32,
    pub tool_calls: u32,
    pub usage: Usage,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    pub branch: String,
}

/// A person's answer to "may the agent do this?" (pair mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirm {
    Yes,
    No,
    /// Yes, and do not ask again this session.
    Always,
}

/// The answer to a confirmation, once the person gives it.
pub type ConfirmFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Confirm> + Send>>;

/// Asks whether the agent may carry out an action (a write or a command).
pub type ConfirmFn<'a> = dyn FnMut(&Action) -> ConfirmFuture + Send + 'a;

/// How a loop behaves beyond the limits.
pub struct LoopMode<'a> {
    /// Asked before every mutating tool; `None`: allowed.
    pub confirm: Option<&'a mut ConfirmFn<'a>>,
    /// A reply without a tool call is the answer (pair mode) rather than a failure.
    pub answer_ends: bool,
    /// When the endpoint is down, wait up to this long for it to come back (probing) and then
    /// retry, instead of ending the loop. The wait does not count against the time budget.
    pub outage_limit: Option<Duration>,
}

/// Where a loop ended.
#[derive(Clone, Debug)]
pub struct LoopEnd {
    pub terminal: Terminal,
    pub detail: String,
    pub iterations: u32,
    pub tool_calls: u32,
    pub usage: Usage,
    pub model: String,
    /// The last text the model wrote.
    pub last_text: String,
    pub decision: Option<String>,
    /// Edits that did not apply, tests that failed: material for lessons.
    pub failed_edits: u32,
    pub messages: Vec<Message>,
    /// The endpoint's error when the loop ended on one.
    pub error: Option<LlmError>,
}

impl LoopEnd {
    /// An end with nothing counted yet.
    pub fn new(terminal: Terminal, detail: impl Into<String>, model: impl Into<String>) -> LoopEnd {
        LoopEnd {
            terminal,
            detail: detail.into(),
            iterations: 0,
            tool_calls: 0,
            usage: Usage::default(),
            model: model.into(),
            last_text: String::new(),
            decision: None,
            failed_edits: 0,
            messages: Vec::new(),
            error: None,
        }
    }
}

/// Canonical form of a call, to spot repetition.
fn call_key(name: &str, args: &serde_json::Value) -> String {
    format!("{name} {args}")
}

/// Runs the loop from `messages` (system prompt, bead, …) until a terminal condition.
#[allow(clippy::too_many_arguments)]
pub async fn action_loop(
    client: &Client,
    persona: &Persona,
    limits: &Limits,
    model: &str,
    mut messages: Vec<Message>,
    ctx: &mut ToolContext,
    mut mode: LoopMode<'_>,
    on_event: &mut (dyn FnMut(AgentEvent) + Send),
) -> LoopEnd {
    let started = Instant::now();
    let native = limits.tool_mode == ToolMode::Native;
    let tool_defs = if native {
        tools::llm_tools(&persona.tools)
    } else {
        Vec::new()
    };
    let context = client
        .known_context_length(model)
        .unwrap_or(limits.context_length);
    let mut end = LoopEnd::new(Terminal::MaxIterations, "", model);
    let mut recent: VecDeque<String> = VecDeque::new();
    let mut unparseable = 0u32;
    let mut always = false;
    // Time spent waiting for the endpoint (not charged to the time budget).
    let mut paused = Duration::ZERO;
    'turns: loop {
        if end.iterations >= limits.max_iterations {
            end.terminal = Terminal::MaxIterations;
            end.detail = format!(
                "stopped after {} without finishing",
                crate::text::count(end.iterations, "iteration")
            );
            break;
        }
        if started.elapsed().saturating_sub(paused) >= limits.max_time {
            end.terminal = Terminal::TimeBudget;
            end.detail = format!(
                "stopped after {}",
                crate::text::count(limits.max_time.as_secs() / 60, "minute")
            );
            break;
        }
        if end.usage.total_tokens >= limits.max_tokens {
            end.terminal = Terminal::TokenBudget;
            end.detail = format!(
                "used {} tokens of a {} budget",
                end.usage.total_tokens, limits.max_tokens
            );
            break;
        }
        end.iterations += 1;
        let iteration = end.iterations;
        // Keep the history within three quarters of the window (the rest is for the reply),
        // sparing the latest exchanges; after a context overflow, spare only the last message.
        let mut budget = context * 3 / 4;
        let mut keep_recent = 4;
        let mut overflows = 0;
        let mut down_since: Option<Instant> = None;
        let completion = loop {
            let elided = fit_history(&mut messages, budget, keep_recent);
            if elided > 0 {
                on_event(AgentEvent::HistoryElided { outputs: elided });
            }
            let request = ChatRequest {
                model: Some(model.to_owned()),
                messages: messages.clone(),
                tools: tool_defs.clone(),
                tool_choice: None,
                temperature: persona.temperature,
                max_tokens: None,
                session: Some(format!("{}/{}", ctx.bead_id, persona.name)),
            };
            let mut forward = |e: StreamEvent| match e {
                StreamEvent::TextDelta { text } => on_event(AgentEvent::Text { text }),
                StreamEvent::Retrying { reason, .. } => on_event(AgentEvent::Retrying { reason }),
                StreamEvent::Restart { reason } => on_event(AgentEvent::Retrying { reason }),
                _ => {}
            };
            match client.chat(&request, &mut forward).await {
                Ok(c) => break c,
                // Too long: drop more old output and try again, while there is any to drop.
                Err(LlmError::ContextOverflow { .. })
                    if overflows < 3 && {
                        let mut probe = messages.clone();
                        fit_history(&mut probe, budget * 2 / 3, 1) > 0
                    } =>
                {
                    overflows += 1;
                    budget = budget * 2 / 3;
                    keep_recent = 1;
                }
                // The endpoint is down: wait for it (bounded), then send the request again.
                Err(e) if e.is_outage() && mode.outage_limit.is_some() => {
                    let limit = mode.outage_limit.unwrap_or_default();
                    let since = *down_since.get_or_insert_with(Instant::now);
                    on_event(AgentEvent::Paused {
                        reason: e.to_string(),
                    });
                    let wait = Instant::now();
                    let up = client.wait_until_up(since + limit).await;
                    paused += wait.elapsed();
                    if !up {
                        end.terminal = Terminal::LlmError;
                        end.detail = format!(
                            "the endpoint stayed down for {} s: {e}",
                            since.elapsed().as_secs()
                        );
                        end.error = Some(e);
                        break 'turns;
                    }
                    on_event(AgentEvent::Resumed);
                }
                Err(e) => {
                    end.terminal = Terminal::LlmError;
                    end.detail = e.to_string();
                    end.error = Some(e);
                    break 'turns;
                }
            }
        };
        end.usage += completion.usage;
        on_event(AgentEvent::Usage {
            usage: completion.usage,
        });
        if !completion.model.is_empty() {
            end.model = completion.model.clone();
        }
        end.last_text = completion.text.clone();
        // Native calls, else a JSON-in-text call.
        let calls: Vec<ToolCall> = if !completion.tool_calls.is_empty() {
            completion.tool_calls.clone()
        } else {
            match tools::parse_text_call(&completion.text) {
                TextCall::Call { name, args } => {
                    vec![ToolCall::new(
                        format!("text_{iteration}"),
                        name,
                        args.to_string(),
                    )]
                }
                TextCall::None => {
                    if mode.answer_ends {
                        end.terminal = Terminal::Done;
                        end.detail = completion.text.clone();
                    } else {
                        end.terminal = Terminal::NoToolCall;
                        end.detail = format!(
                            "the model replied without calling a tool: {}",
                            excerpt(&completion.text)
                        );
                    }
                    messages.push(Message::assistant(&completion.text));
                    break;
                }
                TextCall::Malformed(reason) => {
                    unparseable += 1;
                    on_event(AgentEvent::Correction {
                        iteration,
                        reason: reason.clone(),
                    });
                    if unparseable >= limits.unparseable_limit {
                        end.terminal = Terminal::Unparseable;
                        end.detail =
                            format!("{unparseable} replies in a row could not be parsed: {reason}");
                        break;
                    }
                    messages.push(Message::assistant(&completion.text));
                    messages.push(Message::user(format!(
                        "Your reply could not be read as a tool call: {reason}. Reply with exactly one JSON object \
                         {{\"tool\": NAME, \"args\": {{...}}}} (or a native tool call), nothing else."
                    )));
                    continue;
                }
            }
        };
        unparseable = 0;
        let from_text = completion.tool_calls.is_empty();
        if from_text {
            messages.push(Message::assistant(&completion.text));
        } else {
            messages.push(Message::assistant_calls(
                Some(completion.text.clone()),
                &calls,
            ));
        }
        for call in &calls {
            end.tool_calls += 1;
            on_event(AgentEvent::ToolCall {
                iteration,
                tool: call.name.clone(),
                arguments: call.arguments.clone(),
            });
            let key = call_key(&call.name, &call.arguments);
            if recent.back().is_some_and(|k| *k != key) {
                recent.clear();
            }
            recent.push_back(key);
            if recent.len() as u32 >= limits.repeat_limit {
                end.terminal = Terminal::RepeatedAction;
                end.detail = format!(
                    "called `{}` with the same arguments {} times in a row",
                    call.name,
                    recent.len()
                );
                break 'turns;
            }
            let action = match call.arguments_error.as_ref() {
                Some(err) => Err(err.clone()),
                None => tools::parse_action(&call.name, &call.arguments, &persona.tools),
            };
            let outcome = match action {
                Err(msg) => Outcome::Result(super::exec::ToolResult {
                    ok: false,
                    text: format!("error: {msg}"),
                    summary: format!("{} ✗ {msg}", call.name),
                    exit_code: None,
                }),
                Ok(action) => {
                    let needs_ok = tools::spec(action.name()).is_some_and(|s| s.mutates);
                    let allowed = match (&mut mode.confirm, needs_ok && !always) {
                        (Some(ask), true) => {
                            // A person thinking does not count against the time budget.
                            let asked = Instant::now();
                            let answer = ask(&action).await;
                            paused += asked.elapsed();
                            match answer {
                                Confirm::Yes => true,
                                Confirm::Always => {
                                    always = true;
                                    true
                                }
                                Confirm::No => false,
                            }
                        }
                        _ => true,
                    };
                    if allowed {
                        ctx.time_left = Some(
                            limits
                                .max_time
                                .saturating_sub(started.elapsed().saturating_sub(paused)),
                        );
                        ctx.execute(&action).await
                    } else {
                        Outcome::Result(super::exec::ToolResult {
                            ok: false,
                            text: "error: the person you are pairing with declined this action; ask or try another way".into(),
                            summary: format!("{} declined", action.name()),
                            exit_code: None,
                        })
                    }
                }
            };
            match outcome {
                Outcome::Finish(finish) => {
                    let (terminal, detail, decision) = match finish {
                        Finish::Done { summary } => (Terminal::Done, summary, None),
                        Finish::Escalated { question, decision } => {
                            (Terminal::Escalated, question, Some(decision))
                        }
                        Finish::Approved { summary } => (Terminal::Approved, summary, None),
                        Finish::ChangesRequested { comments } => {
                            (Terminal::ChangesRequested, comments, None)
                        }
                        Finish::Tampered { reason } => (Terminal::SecurityStop, reason, None),
                    };
                    on_event(AgentEvent::ToolResult {
                        iteration,
                        tool: call.name.clone(),
                        ok: true,
                        summary: format!("{} — {}", call.name, excerpt(&detail)),
                    });
                    end.terminal = terminal;
                    end.detail = detail;
                    end.decision = decision;
                    break 'turns;
                }
                Outcome::Result(r) => {
                    if !r.ok && call.name == "edit_file" {
                        end.failed_edits += 1;
                    }
                    // What a command printed may hold a secret the user let through
                    // (`sandbox.env_allow`): it never reaches the model, a log or a transcript.
                    let redact = |t: &str| client.config().redact(t);
                    on_event(AgentEvent::ToolResult {
                        iteration,
                        tool: call.name.clone(),
                        ok: r.ok,
                        summary: redact(&r.summary),
                    });
                    let text = format!(
                        "{}\n{}",
                        ctx.progress(iteration, limits.max_iterations),
                        redact(&r.text)
                    );
                    if from_text {
                        messages.push(Message::user(format!("Result of {}:\n{text}", call.name)));
                    } else {
                        messages.push(Message::tool_result(&call.id, text));
                    }
                }
            }
        }
    }
    end.messages = messages;
    end
}

fn excerpt(s: &str) -> String {
    crate::text::one_line(s, 160)
}

impl LoopEnd {
    /// A report for `bead` run by `persona` on `branch`.
    pub fn report(
        &self,
        bead: &str,
        persona: &str,
        branch: &str,
        started: Instant,
        commit: Option<String>,
    ) -> RunReport {
        RunReport {
            bead: bead.to_owned(),
            persona: persona.to_owned(),
            model: self.model.clone(),
            terminal: self.terminal,
            detail: self.detail.clone(),
            iterations: self.iterations,
            tool_calls: self.tool_calls,
            usage: self.usage,
            duration_ms: started.elapsed().as_millis() as u64,
            commit,
            decision: self.decision.clone(),
            branch: branch.to_owned(),
        }
    }
}
