//! Pair programming on one bead, shared by `loom pair` and the TUI's pair pane: open a session
//! (persona, the bead's worktree, its sandbox, the conversation so far), ask one thing at a time
//! (the model may read freely; edits and commands go through the caller's confirmation; the
//! reply can be stopped), then record the exchange: the worktree's changes are committed on the
//! bead's branch and both messages are appended to `.beads/conversations/<id>.jsonl`.

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;

use crate::bead::{Bead, Timestamp};
use crate::error::Result;
use crate::git::Committed;
use crate::git::worktree::{Worktree, Worktrees};
use crate::llm::{Client, Completion, LlmError, Message, ProviderConfig, Usage};
use crate::store::{ConversationEntry, Problem};
use crate::workspace::Workspace;

use super::exec::ToolContext;
use super::persona::Persona;
use super::run::{self, AgentEvent, ConfirmFn, Limits, LoopEnd, LoopMode, Terminal};
use super::session;
use super::tools::Action;

/// How the model is asked to behave in pair mode.
pub const PAIR_PROMPT: &str = "\
You are Loom's pair programmer. A developer is working on one bead (a work item) in their git \
repository and talks it through with you. Answer what they ask, concretely and briefly. \
Propose the smallest change that works; show code in fenced blocks headed by the file path. \
Point out risks (edge cases, tests that would catch them) when they matter, not as a list of \
everything. You can read and search the code of the bead's worktree with your tools, and — \
when the developer approves each one — edit files and run commands there. Look before you \
claim; when you are unsure, say what would settle it. End your turn by answering in plain text.";

/// Iterations one pair exchange may take.
const PAIR_MAX_ITERATIONS: u32 = 15;

/// Lines of a change shown when asking to apply it.
const PREVIEW_LINES: usize = 12;

/// One line saying what an action would do.
pub fn describe(action: &Action) -> String {
    match action {
        Action::EditFile { path, old, new } => format!(
            "edit_file {path}  +{} −{}",
            new.lines().count(),
            old.lines().count()
        ),
        Action::WriteFile { path, content } => {
            format!("write_file {path}  {} lines", content.lines().count())
        }
        Action::RunCommand { command, .. } => format!("run_command {command}"),
        other => other.name().to_owned(),
    }
}

/// One line naming a tool call as the model made it: the tool and its main argument.
pub fn call_title(tool: &str, args: &serde_json::Value) -> String {
    let main = ["path", "pattern", "command", "title", "text"]
        .iter()
        .find_map(|k| args.get(*k).and_then(serde_json::Value::as_str));
    match main {
        Some(m) => format!(
            "{tool} {}",
            crate::text::fit(m.lines().next().unwrap_or(""), 100)
        ),
        None if args.as_object().is_some_and(|o| o.is_empty()) || args.is_null() => tool.to_owned(),
        None => format!("{tool} {}", crate::text::fit(&args.to_string(), 100)),
    }
}

/// What an action would change, as diff-like lines (`- `, `+ `, `$ `), bounded.
pub fn preview(action: &Action) -> Vec<String> {
    fn bounded(out: &mut Vec<String>, prefix: &str, text: &str) {
        let total = text.lines().count();
        out.extend(
            text.lines()
                .take(PREVIEW_LINES)
                .map(|l| format!("{prefix}{l}")),
        );
        if total > PREVIEW_LINES {
            out.push(format!("  … {} more lines", total - PREVIEW_LINES));
        }
    }
    let mut out = Vec::new();
    match action {
        Action::EditFile { old, new, .. } => {
            bounded(&mut out, "- ", old);
            bounded(&mut out, "+ ", new);
        }
        Action::WriteFile { content, .. } => bounded(&mut out, "+ ", content),
        Action::RunCommand { command, .. } => out.push(format!("$ {command}")),
        _ => {}
    }
    out
}

/// How to open a session.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Talk to this persona (default: the one the bead matches).
    pub persona: Option<String>,
    /// Use this model instead of the persona's or the endpoint's default.
    pub model: Option<String>,
    /// `loom` itself, to apply Landlock to commands.
    pub helper: Option<PathBuf>,
}

/// A conversation about one bead, in its worktree.
pub struct PairSession {
    ws: Workspace,
    client: Client,
    bead: Bead,
    persona: Persona,
    trees: Worktrees,
    wt: Worktree,
    tools: ToolContext,
    limits: Limits,
    model: Option<String>,
    /// The system prompt and the conversation so far (text turns only).
    messages: Vec<Message>,
}

/// One question and how the reply went, before it is recorded.
pub struct Exchange {
    pub question: String,
    pub asked: Timestamp,
    pub started: Instant,
    /// The text of the reply (what streamed, also when stopped).
    pub reply: String,
    pub end: LoopEnd,
    /// Stopped by the person before the reply ended.
    pub stopped: bool,
}

/// What recording an exchange did.
pub struct Recorded {
    /// The commit of the worktree's changes on the bead's branch.
    pub work: Option<String>,
    /// The commit of the conversation log (with any warnings after it).
    pub log: Option<Committed>,
}

impl PairSession {
    /// Opens a session on bead `bead` (complete): the persona, the worktree (created from the
    /// branch checked out now if needed), the sandbox, and the conversation so far. Blocking
    /// (git); returns the conversation's unreadable lines too.
    pub fn open(
        ws: &Workspace,
        client: &Client,
        bead: Bead,
        opts: &OpenOptions,
    ) -> Result<(PairSession, Vec<ConversationEntry>, Vec<Problem>)> {
        let repo = ws.require_repo()?.clone();
        let (history, problems) = ws.store.read_conversation(&bead.id)?;
        let set = session::personas(ws);
        let persona = session::persona_for(&set, ws, &bead, opts.persona.as_deref())?.clone();
        let trees = session::worktrees(ws)?;
        let target = session::current_target(&repo)?;
        let setup_timeout = super::session::setup_timeout(ws)?;
        let (wt, _) = session::block_on(session::prepare_worktree(
            ws,
            client,
            &trees,
            &bead.id,
            &target,
            opts.helper.clone(),
            setup_timeout,
        ))??;
        let (sandbox, _) = session::sandbox_for(ws, client, &wt, opts.helper.clone())?;
        let tools = ToolContext::new(
            sandbox,
            std::sync::Arc::new(ws.clone()),
            &bead.id,
            &persona.name,
        )
        .map_err(|e| crate::error::Error::io(&wt.path, e))?
        .in_worktree(&wt);
        let mut limits = Limits::new(&super::run::AgentFile::from_config(&ws.config)?, &persona);
        limits.max_iterations = limits.max_iterations.min(PAIR_MAX_ITERATIONS);
        let mut messages = vec![Message::system(format!(
            "{PAIR_PROMPT}\n\nThe bead under discussion:\n{}",
            super::prompt::bead_facts(&bead, None)
        ))];
        for e in &history {
            match e.role.as_str() {
                "user" => messages.push(Message::user(&e.content)),
                "assistant" => messages.push(Message::assistant(&e.content)),
                _ => {}
            }
        }
        let model = opts.model.clone().or(persona.model.clone());
        Ok((
            PairSession {
                ws: ws.clone(),
                client: client.clone(),
                bead,
                persona,
                trees,
                wt,
                tools,
                limits,
                model,
                messages,
            },
            history,
            problems,
        ))
    }

    pub fn persona(&self) -> &str {
        &self.persona.name
    }

    pub fn bead(&self) -> &Bead {
        &self.bead
    }

    /// The branch of the bead's worktree.
    pub fn branch(&self) -> &str {
        &self.wt.branch
    }

    /// Asks `question`. Mutating tools go through `confirm`; the reply streams through
    /// `on_event`; when `stop` completes first the reply ends there (what streamed is kept,
    /// and what the finished model calls used is counted).
    pub async fn ask(
        &mut self,
        question: &str,
        confirm: &mut ConfirmFn<'_>,
        on_event: &mut (dyn FnMut(AgentEvent) + Send),
        stop: impl Future<Output = ()>,
    ) -> Exchange {
        let asked = Timestamp::now();
        let started = Instant::now();
        let mut reply = String::new();
        let mut spent = Usage::default();
        let outcome = {
            let mut collect = |e: AgentEvent| {
                match &e {
                    AgentEvent::Text { text } => reply.push_str(text),
                    AgentEvent::Usage { usage } => spent += *usage,
                    _ => {}
                }
                on_event(e);
            };
            let work = async {
                let model = match &self.model {
                    Some(m) => m.clone(),
                    None => match self.client.resolve_model(None).await {
                        Ok(m) => m,
                        Err(e) => {
                            let mut end = LoopEnd::new(Terminal::LlmError, e.to_string(), "");
                            end.error = Some(e);
                            return end;
                        }
                    },
                };
                self.model = Some(model.clone());
                let mut messages = self.messages.clone();
                messages.push(Message::user(question));
                let mode = LoopMode {
                    confirm: Some(confirm),
                    answer_ends: true,
                    outage_limit: None,
                };
                run::action_loop(
                    &self.client,
                    &self.persona,
                    &self.limits,
                    &model,
                    messages,
                    &mut self.tools,
                    mode,
                    &mut collect,
                )
                .await
            };
            tokio::pin!(work);
            tokio::select! {
                end = &mut work => Some(end),
                () = stop => None,
            }
        };
        let (end, stopped) = match outcome {
            Some(end) => (end, false),
            None => {
                let model = self.model.clone().unwrap_or_default();
                let mut end = LoopEnd::new(Terminal::Interrupted, "stopped by hand", model);
                end.usage = spent;
                (end, true)
            }
        };
        Exchange {
            question: question.to_owned(),
            asked,
            started,
            reply,
            end,
            stopped,
        }
    }

    /// Records `ex`: appends both messages to the conversation log (committed), commits the
    /// worktree's changes on the bead's branch, logs the call, and remembers the turn for the
    /// next question. Blocking (git). A reply that failed is kept as far as it came (with a
    /// note); one that failed before saying anything is not logged. Secrets are removed from
    /// what is logged and committed.
    pub fn record(&mut self, ex: &Exchange) -> Result<Recorded> {
        let provider = self.client.config().clone();
        let result: std::result::Result<Completion, LlmError> = match &ex.end.error {
            Some(e) => Err(e.clone()),
            None => Ok(Completion {
                text: ex.reply.clone(),
                model: ex.end.model.clone(),
                usage: ex.end.usage,
                attempts: 1,
                ..Default::default()
            }),
        };
        log_call(
            &self.ws,
            &provider,
            "pair",
            Some(&self.bead.id),
            ex.started,
            &result,
        );
        let mut reply = ex.reply.trim().to_owned();
        let ending = match (&ex.end.error, ex.stopped) {
            (Some(e), _) => Some(format!("(the model failed: {})", e.kind())),
            (None, true) => Some("(stopped)".to_owned()),
            (None, false) => None,
        };
        let log = if ex.end.error.is_some() && reply.is_empty() {
            Ok(None)
        } else {
            if let Some(end) = ending {
                if !reply.is_empty() {
                    reply.push_str("\n\n");
                }
                reply.push_str(&end);
            }
            self.append(ex, &provider, &reply)
        };
        let mut end = ex.end.clone();
        end.detail = provider.redact(&end.detail);
        let work = session::commit_work(
            &self.ws,
            &self.trees,
            &self.wt,
            &self.bead,
            &self.persona,
            &end,
        );
        let log = log?;
        if log.is_some() {
            self.messages.push(Message::user(&ex.question));
            self.messages.push(Message::assistant(&reply));
        }
        Ok(Recorded {
            work: work?,
            log: log.flatten(),
        })
    }

    /// Appends the question and `reply` to the bead's conversation log and commits it.
    fn append(
        &self,
        ex: &Exchange,
        provider: &ProviderConfig,
        reply: &str,
    ) -> Result<Option<Option<Committed>>> {
        let usage = ex.end.usage;
        let entries = [
            ConversationEntry {
                role: "user".into(),
                content: provider.redact(&ex.question),
                time: ex.asked.as_str().to_owned(),
                author: Some(self.ws.actor.clone()),
                model: None,
                prompt_tokens: None,
                completion_tokens: None,
                cost_usd: None,
            },
            ConversationEntry {
                role: "assistant".into(),
                content: provider.redact(reply),
                time: Timestamp::now().as_str().to_owned(),
                author: Some(self.persona.name.clone()),
                model: Some(ex.end.model.clone()),
                prompt_tokens: Some(usage.prompt_tokens),
                completion_tokens: Some(usage.completion_tokens),
                cost_usd: usage.cost_usd,
            },
        ];
        let topic = provider.redact(&crate::text::fit(ex.question.trim(), 50));
        let id = &self.bead.id;
        let committed =
            self.ws
                .append_conversation(id, &entries, &format!("loom: {id} pair: {topic}"))?;
        Ok(Some(committed))
    }
}

impl Exchange {
    /// One line on how it went: the model and tokens (or that it was stopped), the cost, and
    /// the commit of any changes on `branch`.
    pub fn summary(&self, branch: &str, work: Option<&str>) -> String {
        let u = self.end.usage;
        let mut s = if self.stopped {
            "stopped by you; what came is kept".to_owned()
        } else if u.total_tokens == 0 {
            format!("{} · usage not reported", self.end.model)
        } else {
            format!(
                "{} · {} tokens in, {} out",
                self.end.model, u.prompt_tokens, u.completion_tokens
            )
        };
        if let Some(c) = u.cost_usd {
            s.push_str(&format!(" · ${c:.4}"));
        }
        if let Some(c) = work {
            s.push_str(&format!(
                " · changes committed on {branch} ({})",
                &c[..c.len().min(10)]
            ));
        }
        s
    }
}

/// Appends one line about a model call to `<data dir>/llm-calls.jsonl` (no prompts, no
/// replies, no secrets: what, when, how long, how many tokens). Best effort.
pub fn log_call(
    ws: &Workspace,
    provider: &ProviderConfig,
    command: &str,
    bead: Option<&str>,
    started: Instant,
    result: &std::result::Result<Completion, LlmError>,
) {
    let Some(dir) = ws.data_dir() else { return };
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let mut line = json!({
        "time": crate::event::now(),
        "command": command,
        "bead": bead,
        "duration_ms": started.elapsed().as_millis() as u64,
    });
    match result {
        Ok(done) => {
            line["model"] = json!(done.model);
            line["attempts"] = json!(done.attempts);
            line["usage"] = json!(done.usage);
        }
        Err(e) => {
            line["error"] = json!(e.kind());
            line["message"] = json!(e.to_string());
        }
    }
    let text = provider.redact(&line.to_string());
    let path = dir.join("llm-calls.jsonl");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = writeln!(f, "{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_show_what_changes_bounded() {
        let edit = Action::EditFile {
            path: "src/money.rs".into(),
            old: "a\nb".into(),
            new: "c".into(),
        };
        assert_eq!(describe(&edit), "edit_file src/money.rs  +1 −2");
        assert_eq!(preview(&edit), ["- a", "- b", "+ c"]);
        let long: String = (0..20).map(|i| format!("line {i}\n")).collect();
        let write = Action::WriteFile {
            path: "x".into(),
            content: long,
        };
        let p = preview(&write);
        assert_eq!(p.len(), PREVIEW_LINES + 1);
        assert_eq!(p.last().map(String::as_str), Some("  … 8 more lines"));
        let cmd = Action::RunCommand {
            command: "cargo test".into(),
            timeout_s: None,
        };
        assert_eq!(preview(&cmd), ["$ cargo test"]);
        assert_eq!(describe(&cmd), "run_command cargo test");
        assert!(preview(&Action::GitDiff).is_empty());
        assert_eq!(
            call_title("read_file", &json!({"path": "src/a.rs", "start_line": 3})),
            "read_file src/a.rs"
        );
        assert_eq!(call_title("git_diff", &json!({})), "git_diff");
        assert_eq!(call_title("x", &json!({"n": 1})), r#"x {"n":1}"#);
    }
}
