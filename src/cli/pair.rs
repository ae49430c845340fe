//! `loom pair <bead> -m TEXT`: talk a bead through with the model in the bead's worktree. The
//! model can read and search freely; edits and commands need `--yes` or a confirmation at the
//! terminal. The reply streams to stdout; the exchange is appended to the bead's conversation
//! log (committed) and file changes are committed on the bead's branch.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Instant;

use clap::Args;
use serde_json::json;

use crate::agent::exec::{Stats, ToolContext};
use crate::agent::run::{self, AgentEvent, Confirm, Limits, LoopMode};
use crate::agent::session;
use crate::agent::tools::Action;
use crate::bead::{Bead, Timestamp};
use crate::error::{Error, Result};
use crate::llm::Message;
use crate::store::ConversationEntry;

use super::output::{self, stdout_err};
use super::{Ctx, llm, read};

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

#[derive(Debug, Args)]
pub struct PairArgs {
    /// The bead to talk about.
    id: String,
    /// Your message.
    #[arg(short, long)]
    message: String,
    /// Use this model instead of the configured one.
    #[arg(long)]
    model: Option<String>,
    /// Talk to this persona (default: the one the bead matches).
    #[arg(long)]
    persona: Option<String>,
    /// Allow edits and commands without asking.
    #[arg(short, long)]
    yes: bool,
}

fn bead_context(b: &Bead) -> String {
    let mut s = format!(
        "The bead under discussion:\nid: {}\ntitle: {}\ntype: {}  priority: P{}  status: {}\n",
        b.id, b.title, b.issue_type, b.priority, b.status
    );
    for (name, text) in [
        ("Description", &b.description),
        ("Acceptance criteria", &b.acceptance_criteria),
        ("Design", &b.design),
    ] {
        if let Some(t) = text.as_deref().filter(|t| !t.trim().is_empty()) {
            s.push_str(&format!("\n{name}:\n{}\n", t.trim_end()));
        }
    }
    s
}

fn describe(action: &Action) -> String {
    match action {
        Action::EditFile { path, old, new } => format!(
            "edit {path} (−{} +{} lines)",
            old.lines().count(),
            new.lines().count()
        ),
        Action::WriteFile { path, content } => {
            format!("write {path} ({} lines)", content.lines().count())
        }
        Action::RunCommand { command, .. } => format!("run `{command}`"),
        other => other.name().to_owned(),
    }
}

pub fn pair(ctx: &Ctx, a: PairArgs) -> Result<()> {
    if a.message.trim().is_empty() {
        return Err(Error::Usage(
            "the message is empty: loom pair <id> -m \"…\"".into(),
        ));
    }
    let ws = ctx.workspace()?;
    let repo = ws.require_repo()?.clone();
    let snap = read::load(ctx, &ws)?;
    let id = read::resolve(&snap, &a.id)?;
    let bead = snap
        .beads
        .iter()
        .find(|b| b.id == id)
        .map(|b| snap.full(b).into_owned())
        .ok_or_else(|| Error::NotFound(id.clone()))?;
    let provider = llm::provider(&ws);
    let client = llm::client(ctx, provider.clone())?;
    let (history, problems) = ws.store.read_conversation(&id)?;
    for p in &problems {
        ctx.warn(&p.to_string());
    }
    let set = session::personas(&ws);
    let persona = session::persona_for(&set, &ws, &bead, a.persona.as_deref())?.clone();
    let trees = session::worktrees(&ws)?;
    let (wt, _) = trees.ensure(&id, &session::current_target(&repo)?)?;
    let (sandbox, _) = session::sandbox_for(&ws, &client, &wt, std::env::current_exe().ok())?;
    let mut tool_ctx = ToolContext {
        sandbox,
        diff_base: None,
        workspace: ws.clone(),
        bead_id: id.clone(),
        agent: persona.name.clone(),
        stats: Stats::default(),
    };
    let mut limits = Limits::new(&ws.config.agent, &persona);
    limits.max_iterations = limits.max_iterations.min(PAIR_MAX_ITERATIONS);

    let mut messages = vec![Message::system(format!(
        "{PAIR_PROMPT}\n\n{}",
        bead_context(&bead)
    ))];
    for e in &history {
        match e.role.as_str() {
            "user" => messages.push(Message::user(&e.content)),
            "assistant" => messages.push(Message::assistant(&e.content)),
            _ => {}
        }
    }
    messages.push(Message::user(&a.message));

    let (json_out, quiet, yes) = (ctx.global.json, ctx.global.quiet, a.yes);
    let interactive = std::io::stdin().is_terminal();
    let mut confirm = move |action: &Action| -> Confirm {
        if yes {
            return Confirm::Always;
        }
        if !interactive {
            eprintln!(
                "(declined: {} — run with --yes to allow edits and commands)",
                describe(action)
            );
            return Confirm::No;
        }
        eprint!(
            "\n{} — apply? [y]es / [n]o / [a]lways this session: ",
            describe(action)
        );
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        match line.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => Confirm::Yes,
            "a" | "always" => Confirm::Always,
            _ => Confirm::No,
        }
    };
    let asked = Timestamp::now();
    let started = Instant::now();
    let mut reply = String::new();
    let model_name = a.model.clone().or(persona.model.clone());
    let end = llm::block_on(async {
        let model = match model_name {
            Some(m) => m,
            None => client.resolve_model(None).await?,
        };
        let mut stdout = std::io::stdout();
        let mut on_event = |e: AgentEvent| match e {
            AgentEvent::Text { text } => {
                reply.push_str(&text);
                if !json_out {
                    let _ = stdout.write_all(text.as_bytes());
                    let _ = stdout.flush();
                }
            }
            AgentEvent::ToolResult { ok, summary, .. } if !quiet => {
                eprintln!("  {} {summary}", if ok { "▸" } else { "✗" });
            }
            AgentEvent::Retrying { reason } if !quiet => eprintln!("(retrying: {reason})"),
            _ => {}
        };
        let mode = LoopMode {
            confirm: Some(&mut confirm),
            answer_ends: true,
            outage_limit: None,
        };
        Ok::<_, Error>(
            run::action_loop(
                &client,
                &persona,
                &limits,
                &model,
                messages,
                &mut tool_ctx,
                mode,
                &mut on_event,
            )
            .await,
        )
    })??;
    let result = match &end.error {
        Some(e) => Err(e.clone()),
        None => Ok(crate::llm::Completion {
            text: reply.clone(),
            model: end.model.clone(),
            usage: end.usage,
            attempts: 1,
            ..Default::default()
        }),
    };
    llm::log_call(&ws, &provider, "pair", Some(&id), started, &result);
    let done = result?;
    if !json_out && !reply.ends_with('\n') {
        println!();
    }
    let commit = session::commit_work(&ws, &trees, &wt, &bead, &persona, &end)?;
    let entries = [
        ConversationEntry {
            role: "user".into(),
            content: provider.redact(&a.message),
            time: asked.as_str().to_owned(),
            author: Some(ws.actor.clone()),
            model: None,
            prompt_tokens: None,
            completion_tokens: None,
            cost_usd: None,
        },
        ConversationEntry {
            role: "assistant".into(),
            content: provider.redact(reply.trim()),
            time: Timestamp::now().as_str().to_owned(),
            author: Some(persona.name.clone()),
            model: Some(done.model.clone()),
            prompt_tokens: Some(done.usage.prompt_tokens),
            completion_tokens: Some(done.usage.completion_tokens),
            cost_usd: done.usage.cost_usd,
        },
    ];
    let topic = output::truncate(a.message.trim(), 50);
    let logged = ws.append_conversation(&id, &entries, &format!("loom: {id} pair: {topic}"))?;
    ctx.commit_warnings(logged.as_ref());
    if json_out {
        return output::write_json(
            &mut ctx.out(),
            &json!({"bead": id, "model": done.model, "reply": reply.trim(), "usage": done.usage,
                    "tool_calls": end.tool_calls, "commit": commit, "branch": wt.branch}),
        );
    }
    if !quiet {
        let cost = done
            .usage
            .cost_usd
            .map(|c| format!(" · ${c:.4}"))
            .unwrap_or_default();
        let work = commit
            .map(|c| {
                format!(
                    " · changes committed on {} ({})",
                    wt.branch,
                    &c[..c.len().min(10)]
                )
            })
            .unwrap_or_default();
        eprintln!(
            "— {} · {} tokens in, {} out{cost}{work}",
            done.model, done.usage.prompt_tokens, done.usage.completion_tokens
        );
    }
    std::io::stdout().flush().map_err(stdout_err)
}
