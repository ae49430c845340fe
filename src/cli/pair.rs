//! `loom pair <bead> -m TEXT`: talk a bead through with the model in the bead's worktree. The
//! model can read and search freely; edits and commands need `--yes` or a confirmation at the
//! terminal. The reply streams to stdout; the exchange is appended to the bead's conversation
//! log (committed) and file changes are committed on the bead's branch.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;
use serde_json::json;

use crate::agent::pair::{self, OpenOptions, PairSession};
use crate::agent::run::{AgentEvent, Confirm, ConfirmFuture};
use crate::agent::tools::Action;
use crate::error::{Error, Result};

use super::output::{self, stdout_err};
use super::{Ctx, llm, read};

#[derive(Debug, Args)]
pub struct PairArgs {
    #[command(flatten)]
    pub exchanges: super::ModelArgs,
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

/// Asks at the terminal (or declines without one) whether `action` may run.
fn ask_terminal(action: &Action, interactive: bool) -> Confirm {
    if !interactive {
        eprintln!(
            "(declined: {} — run with --yes to allow edits and commands)",
            pair::describe(action)
        );
        return Confirm::No;
    }
    eprint!(
        "\n{} — apply? [y]es / [n]o / [a]lways this session: ",
        pair::describe(action)
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    match line.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Confirm::Yes,
        "a" | "always" => Confirm::Always,
        _ => Confirm::No,
    }
}

/// Exit code of a reply stopped with Ctrl-C (128 + SIGINT, as shells report it).
const STOPPED: i32 = 130;

pub fn pair(ctx: &Ctx, a: PairArgs) -> Result<i32> {
    if a.message.trim().is_empty() {
        return Err(Error::Usage(
            "the message is empty: loom pair <id> -m \"…\"".into(),
        ));
    }
    let ws = ctx.workspace()?;
    let snap = read::load(ctx, &ws)?;
    let id = read::resolve(&snap, &a.id)?;
    let bead = snap
        .beads
        .iter()
        .find(|b| b.id == id)
        .map(|b| snap.full(b).into_owned())
        .ok_or_else(|| Error::NotFound(id.clone()))?;
    llm::warn_untrusted(ctx, &ws);
    let client = llm::client(ctx, llm::provider(&ws)?)?;
    let opts = OpenOptions {
        persona: a.persona.clone(),
        model: a.model.clone(),
        helper: std::env::current_exe().ok(),
    };
    let (mut session, _, problems) = PairSession::open(&ws, &client, bead, &opts)?;
    for p in &problems {
        ctx.warn(&p.to_string());
    }
    let (json_out, quiet, yes) = (ctx.global.json, ctx.global.quiet, a.yes);
    let interactive = std::io::stdin().is_terminal();
    let mut confirm = move |action: &Action| -> ConfirmFuture {
        let answer = if yes {
            Confirm::Always
        } else {
            ask_terminal(action, interactive)
        };
        Box::pin(async move { answer })
    };
    let ex = llm::block_on(async {
        // The model's reply is data: it streams inert (no escape sequence reaches the terminal).
        let mut stdout = super::inert::Inert::new(std::io::stdout(), false);
        let mut on_event = |e: AgentEvent| match e {
            AgentEvent::Text { text } if !json_out => {
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
            AgentEvent::ToolResult { ok, summary, .. } if !quiet => {
                eprintln!(
                    "  {} {}",
                    if ok { "▸" } else { "✗" },
                    crate::text::inert(&summary)
                );
            }
            AgentEvent::Retrying { reason } if !quiet => {
                eprintln!("(retrying: {})", crate::text::inert(&reason))
            }
            _ => {}
        };
        session
            .ask(
                &a.message,
                &mut confirm,
                &mut on_event,
                // Ctrl-C stops the reply; what came so far is kept, as in the TUI's pane.
                async {
                    if tokio::signal::ctrl_c().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                },
            )
            .await
    })?;
    let recorded = session.record(&ex)?;
    if ex.stopped {
        if !json_out {
            println!();
        }
        ctx.commit_warnings(recorded.log.as_ref());
        ctx.warn(&format!(
            "stopped: the question and the reply so far are in {id}'s conversation log"
        ));
        return Ok(STOPPED);
    }
    if let Some(e) = &ex.end.error {
        return Err(e.clone().into());
    }
    let reply = ex.reply.trim();
    if !json_out && !ex.reply.ends_with('\n') {
        println!();
    }
    ctx.commit_warnings(recorded.log.as_ref());
    let usage = ex.end.usage;
    let model = &ex.end.model;
    if json_out {
        output::write_json(
            &mut ctx.out(),
            &json!({"bead": id, "model": model, "reply": reply, "usage": usage,
                    "tool_calls": ex.end.tool_calls, "commit": recorded.work,
                    "branch": session.branch()}),
        )?;
        return Ok(0);
    }
    if !quiet {
        eprintln!(
            "— {}",
            ex.summary(session.branch(), recorded.work.as_deref())
        );
    }
    std::io::stdout().flush().map_err(stdout_err)?;
    Ok(0)
}
