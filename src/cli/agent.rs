//! `loom agent <bead>` (one agent on one bead, its actions printed as they happen) and
//! `loom personas`.

use std::io::Write;

use clap::Args;
use crossterm::style::Color;

use crate::agent::run::{AgentEvent, Terminal};
use crate::agent::session::{self, RunOptions};
use crate::error::Result;
use crate::event::render;
use crate::text::count;

use super::output::{self, Table, stdout_err};
use super::{Ctx, llm, read};

#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub exchanges: super::ModelArgs,
    /// The bead to work on.
    id: String,
    /// Use this persona instead of the one the bead matches.
    #[arg(long)]
    persona: Option<String>,
    /// Start the worktree from this branch (default: the current branch).
    #[arg(long)]
    target: Option<String>,
}

/// Exit code of a finished run: 0 done/approved, 3 waiting on a person, 4 endpoint, 1 other.
fn exit_code(t: Terminal) -> i32 {
    match t {
        Terminal::Done | Terminal::Approved => 0,
        Terminal::Escalated => 3,
        Terminal::LlmError => 4,
        _ => 1,
    }
}

pub fn agent(ctx: &Ctx, a: AgentArgs) -> Result<i32> {
    let ws = ctx.workspace()?;
    ws.require_repo()?;
    let snap = read::load(ctx, &ws)?;
    let id = read::resolve(&snap, &a.id)?;
    // An external-runner persona needs no endpoint: a missing one only matters if called.
    llm::warn_untrusted(ctx, &ws);
    let client = llm::client_for_agent(ctx, llm::provider(&ws)?)?;
    let opts = RunOptions {
        persona: a.persona.clone(),
        target: a.target.clone(),
        sandbox_helper: std::env::current_exe().ok(),
        quota: None,
    };
    let json = ctx.global.json;
    let p = ctx.paint;
    // What the model and its commands said is data: printed inert.
    macro_rules! say {
        ($($t:tt)*) => { println!("{}", super::inert::line(&format!($($t)*), p.color)) };
    }
    // Who the session's lines are by (the persona, once the session says which).
    let mut who = String::from("agent");
    let mut text = String::new();
    let flush_text = |text: &mut String| {
        let t = text.trim();
        if !t.is_empty() {
            for line in t.lines() {
                say!("    {}", p.dim(line));
            }
        }
        text.clear();
    };
    let report = llm::block_on(session::run_bead(&ws, &client, &id, &opts, &mut |e| {
        if json {
            let _ = output::write_json(&mut std::io::stdout(), &e);
            return;
        }
        match &e {
            AgentEvent::Text { text: t } => text.push_str(t),
            AgentEvent::Started {
                bead,
                persona,
                model,
                worktree,
            } => {
                who = persona.clone();
                say!(
                    "{} {persona} on {bead} ({model}) in {worktree}",
                    p.bold("▶")
                );
            }
            // The total is in the final line; a call shows with its result.
            AgentEvent::Usage { .. } => {}
            AgentEvent::ToolCall { .. } => flush_text(&mut text),
            AgentEvent::Finished { report } => {
                flush_text(&mut text);
                let mark = if report.terminal.is_success() {
                    p.paint("■", Color::Green)
                } else {
                    p.paint("■", Color::Red)
                };
                let cost = report
                    .usage
                    .cost_usd
                    .map(|c| format!(" · ${c:.4}"))
                    .unwrap_or_default();
                let commit = report
                    .commit
                    .as_deref()
                    .map(|c| format!(" · commit {}", &c[..c.len().min(10)]))
                    .unwrap_or_default();
                say!(
                    "{mark} {} after {} · {} · {}{cost}{commit}",
                    report.terminal.as_str(),
                    count(report.iterations, "iteration"),
                    count(report.tool_calls, "tool call"),
                    count(report.usage.total_tokens, "token")
                );
                if !report.detail.is_empty() {
                    say!("  {}", report.detail.trim().replace('\n', "\n  "));
                }
                if let Some(d) = &report.decision {
                    say!("  waiting on decision {d}: `loom show {d}`");
                }
                if report.commit.is_some() && !report.branch.is_empty() {
                    let (b, id) = (&report.branch, &report.bead);
                    say!(
                        "  the work is on branch {b}. To land it: `loom run --bead {id}` (tests, review, merge), or `git merge --squash {b}` yourself. To discard it: `loom worktrees` shows its worktree; remove that with `git worktree remove <path>`, then `git branch -D {b}`."
                    );
                }
            }
            // Everything else in the words every front end uses.
            other => {
                if let Some(line) = other.to_event(&id, &who).as_ref().and_then(render::line) {
                    say!("{}", super::watch::paint(&p, &line, false));
                }
            }
        }
        let _ = std::io::stdout().flush();
    }))??;
    Ok(exit_code(report.terminal))
}

#[derive(Debug, Args)]
pub struct PersonasArgs {}

pub fn personas(ctx: &Ctx, _a: PersonasArgs) -> Result<()> {
    let ws = ctx.workspace().ok();
    let set = match &ws {
        Some(ws) => session::personas(ws),
        None => crate::agent::PersonaSet::load(crate::config::user_config_dir().as_deref(), None),
    };
    for p in &set.problems {
        ctx.warn(&format!("{}: {} (skipped)", p.path.display(), p.reason));
    }
    let mut out = ctx.out();
    if ctx.global.json {
        let items: Vec<_> = set.iter().collect();
        return output::write_json_array(&mut out, items);
    }
    let mut t = Table::default();
    for p in set.iter() {
        let how = if p.runner.is_some() {
            "runner".to_owned()
        } else {
            format!("{} tools", p.tools.len())
        };
        t.row(vec![
            ctx.paint.bold(&p.name),
            p.source.to_string(),
            ctx.paint.dim(&how),
            output::truncate(&p.description, 80),
        ]);
    }
    t.write(&mut out).map_err(stdout_err)
}

#[derive(Debug, Args)]
pub struct WorktreesArgs {
    /// Remove worktrees whose branch is merged and that hold no uncommitted work.
    #[arg(long)]
    sweep: bool,
    /// The branch work is merged into (default: the current branch).
    #[arg(long)]
    target: Option<String>,
}

pub fn worktrees(ctx: &Ctx, a: WorktreesArgs) -> Result<()> {
    let ws = ctx.workspace()?;
    let repo = ws.require_repo()?.clone();
    let target = match a.target {
        Some(t) => t,
        None => session::current_target(&repo)?,
    };
    let trees = session::worktrees(&ws)?;
    let mut out = ctx.out();
    if a.sweep {
        // Beads a person dropped (a denied decision): their work is not wanted.
        let snap = ws.store.load_index()?;
        let dropped: Vec<String> = snap
            .beads
            .iter()
            .filter(|b| {
                b.status == crate::bead::status::CLOSED
                    && b.loom_get("stage").and_then(|s| s.as_str()) == Some("denied")
            })
            .map(|b| b.id.clone())
            .collect();
        let report = trees.sweep(&target, &dropped)?;
        if ctx.global.json {
            return output::write_json(&mut out, &report);
        }
        for p in &report.removed {
            let line = ctx.paint.ok(&format!("removed {}", p.display()));
            writeln!(out, "{line}").map_err(stdout_err)?;
        }
        for b in &report.branches_deleted {
            let line = ctx
                .paint
                .ok(&format!("deleted branch {b} (its bead was denied)"));
            writeln!(out, "{line}").map_err(stdout_err)?;
        }
        for (p, why) in &report.kept {
            writeln!(out, "  kept {} — {why}", p.display()).map_err(stdout_err)?;
        }
        return Ok(());
    }
    let list = trees.list(&target)?;
    if ctx.global.json {
        return output::write_json_array(&mut out, &list);
    }
    if list.is_empty() {
        return writeln!(out, "No agent worktrees.").map_err(stdout_err);
    }
    let mut t = Table::default();
    for s in &list {
        let state = match (s.dirty, s.merged) {
            (true, _) => ctx.paint.paint("uncommitted changes", Color::Yellow),
            (false, true) => ctx.paint.dim("merged"),
            (false, false) => "unmerged work".to_owned(),
        };
        t.row(vec![
            ctx.paint.bold(&s.worktree.bead_id),
            s.worktree.branch.clone(),
            state,
            s.worktree.path.display().to_string(),
        ]);
    }
    t.write(&mut out).map_err(stdout_err)
}
