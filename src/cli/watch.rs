//! `loom watch`: one line (NDJSON with `--json`) per bead created, changed or deleted on disk
//! by anyone else, until interrupted.

use std::io::Write;
use std::sync::mpsc;

use crate::error::Result;
use crate::event::Event;
use crate::store::watch;

use super::Ctx;
use super::output::{self, stdout_err};

pub fn watch(ctx: &Ctx) -> Result<()> {
    let ws = ctx.workspace()?;
    let (tx, rx) = mpsc::channel::<Event>();
    let _watcher = watch::watch(&ws.store, move |e| {
        // The receiver only goes away when we exit.
        let _ = tx.send(Event::from(e));
    })?;
    // Also with --json: on stderr, it tells scripts the watcher is ready.
    if !ctx.global.quiet {
        eprintln!(
            "Watching {} for changes (Ctrl-C to stop)…",
            ws.layout().relative(&ws.layout().beads_dir).display()
        );
    }
    for event in rx {
        let mut out = ctx.out();
        if ctx.global.json {
            output::write_json(&mut out, &event)?;
        } else {
            if let Some(line) = human(ctx, &event) {
                writeln!(out, "{line}").map_err(stdout_err)?;
            }
        }
        out.flush().map_err(stdout_err)?;
    }
    Ok(())
}

/// One human line for an event (`None`: not worth a line, e.g. streamed model text).
pub(super) fn human(ctx: &Ctx, e: &Event) -> Option<String> {
    human_with(&ctx.paint, e)
}

/// [`human`] with a given painter (stderr has its own).
pub(super) fn human_with(p: &output::Painter, e: &Event) -> Option<String> {
    let clock = |at: &str| p.dim(crate::text::clock(at));
    let line = match e {
        Event::BeadCreated { at, bead, .. } => {
            format!(
                "{} created {} {:?}",
                clock(at),
                p.bold(&bead.id),
                bead.title
            )
        }
        Event::BeadChanged {
            at, bead, changes, ..
        } => format!(
            "{} changed {} {}",
            clock(at),
            p.bold(&bead.id),
            crate::bead::change::summarize(changes)
        ),
        Event::BeadDeleted { at, id, .. } => format!("{} deleted {}", clock(at), p.bold(id)),
        Event::StoreProblem { at, problem } => format!("{} problem {problem}", clock(at)),
        Event::WatchError { at, message } => format!("{} watch error: {message}", clock(at)),
        Event::RunStarted {
            at,
            target,
            max_agents,
            beads_ready,
        } => format!(
            "{} run on {target}: {beads_ready} ready, up to {max_agents} agents",
            clock(at)
        ),
        Event::StageChanged {
            at,
            bead,
            stage,
            detail,
        } => {
            let d = if detail.is_empty() {
                String::new()
            } else {
                format!(" {}", p.dim(detail))
            };
            format!("{} {} {stage}{d}", clock(at), p.bold(bead))
        }
        Event::AgentStarted {
            at,
            bead,
            persona,
            model,
            round,
        } => {
            format!(
                "{} {} {persona} started ({model}, round {round})",
                clock(at),
                p.bold(bead)
            )
        }
        Event::ModelText { .. } | Event::Usage { .. } => return None,
        Event::ToolCall { .. } => return None,
        Event::ToolResult {
            at,
            bead,
            agent,
            ok,
            summary,
            ..
        } => {
            let mark = if *ok { "·" } else { "✗" };
            format!("{} {} {agent} {mark} {summary}", clock(at), p.bold(bead))
        }
        Event::TestOutput {
            at,
            bead,
            round,
            passed,
            exit_code,
            ..
        } => format!(
            "{} {} tests {} (round {round}, {})",
            clock(at),
            p.bold(bead),
            if *passed { "pass" } else { "fail" },
            exit_code.map_or("killed".into(), |c| format!("exit {c}"))
        ),
        Event::AgentNotice {
            at,
            bead,
            agent,
            kind,
            message,
        } => {
            let first = message.lines().next().unwrap_or("");
            format!("{} {} {agent} {kind}: {first}", clock(at), p.bold(bead))
        }
        Event::ReviewVerdict {
            at,
            bead,
            approved,
            comments,
        } => format!(
            "{} {} review: {}{}",
            clock(at),
            p.bold(bead),
            if *approved {
                "approved"
            } else {
                "changes requested"
            },
            if *approved {
                String::new()
            } else {
                format!(" — {}", comments.lines().next().unwrap_or(""))
            }
        ),
        // A merge is announced once, by the bead finishing (`merged: …`); the commit is in the
        // summary.
        Event::MergeResult { merged: true, .. } => return None,
        Event::MergeResult {
            at,
            bead,
            merged,
            commit,
            detail,
        } => format!(
            "{} {} {}{}",
            clock(at),
            p.bold(bead),
            if *merged { "merged" } else { "not merged" },
            match (commit, merged) {
                (Some(c), true) => format!(" as {}", &c[..c.len().min(10)]),
                _ => format!(": {detail}"),
            }
        ),
        Event::DecisionNeeded {
            at,
            bead,
            decision,
            question,
        } => {
            format!(
                "{} {} waits on decision {decision}: {question}",
                clock(at),
                p.bold(bead)
            )
        }
        Event::ProviderHealth { at, health } => {
            format!(
                "{} endpoint {}{}",
                clock(at),
                serde_json::to_value(health.health)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                health
                    .last_error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )
        }
        Event::SecurityNotice { at, bead, message } => {
            format!(
                "{} {} {}: {message}",
                clock(at),
                p.bold(bead),
                p.paint("security", crossterm::style::Color::Red)
            )
        }
        Event::Error { at, bead, message } => {
            format!(
                "{} {}error: {message}",
                clock(at),
                bead.as_deref()
                    .map(|b| format!("{} ", p.bold(b)))
                    .unwrap_or_default()
            )
        }
        Event::BeadFinished {
            at,
            bead,
            outcome,
            detail,
            ..
        } => {
            // The detail may begin with the outcome ("waiting on decision …"): said once.
            let (word, d) = (outcome.as_str(), detail.trim());
            let text = if d.is_empty() {
                word.to_owned()
            } else if d.starts_with(word) {
                p.dim(d)
            } else {
                format!("{word}: {}", p.dim(d))
            };
            format!("{} {} {text}", clock(at), p.bold(bead))
        }
        Event::RunFinished { at, exit_code, .. } => {
            format!("{} run finished (exit {exit_code})", clock(at))
        }
    };
    Some(line)
}
