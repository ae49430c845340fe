//! `loom run` (the orchestrator, headless: progress on stderr, a summary on stdout, NDJSON
//! events with `--json`, a JUnit report with `--junit`) and `loom decide` (resolve a decision
//! bead).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use crossterm::style::Color;

use crate::error::{Error, Result};
use crate::event::{Event, EventBus, EventKind, Outcome};
use crate::ops::decision::{self, Verdict};
use crate::orchestrator::dispatch::{self, Setup};
use crate::orchestrator::report::{self, RunSummary};
use crate::orchestrator::settings::{Overrides, RunSettings, parse_duration};
use crate::workspace::Workspace;

use super::output::{self, Table, stdout_err};
use super::{Ctx, llm, read};

#[derive(Debug, Default, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub exchanges: super::ModelArgs,
    /// How many agents work at once (default: max_agents in .loom/config.yaml, else 4).
    #[arg(long, value_name = "N")]
    max_agents: Option<usize>,
    /// Only this bead (repeatable); others stay untouched.
    #[arg(long = "bead", value_name = "ID")]
    beads: Vec<String>,
    /// Stop dispatching after this many beads.
    #[arg(long, value_name = "N")]
    max_beads: Option<usize>,
    /// Stop the run after this long (e.g. 90s, 15m, 2h); running beads are given back.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<std::time::Duration>,
    /// Stop dispatching once the run used this many tokens.
    #[arg(long, value_name = "N")]
    max_tokens: Option<u64>,
    /// Leave finished work on its branch instead of merging it (as `merge: none`).
    #[arg(long)]
    no_merge: bool,
    /// Beads agents may file in this run (budget.run_created_beads; default 20).
    #[arg(long, value_name = "N")]
    run_created_beads: Option<u32>,
    /// Beads agents may file while working one bead (budget.bead_created_beads; default 5).
    #[arg(long, value_name = "N")]
    bead_created_beads: Option<u32>,
    /// Model requests this run may make (budget.run_requests; default 2000).
    #[arg(long, value_name = "N")]
    run_requests: Option<u64>,
    /// Tokens this run may use (budget.run_tokens; default 20000000).
    #[arg(long, value_name = "N")]
    run_tokens: Option<u64>,
    /// Dispatch the beads agents file in this same run (budget.dispatch_followups).
    #[arg(long)]
    dispatch_followups: bool,
    /// The branch to merge into (default: target_branch in .loom/config.yaml, else the
    /// branch checked out now).
    #[arg(long, value_name = "BRANCH")]
    target: Option<String>,
    /// Write a JUnit XML report here (one test case per bead).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    #[command(flatten)]
    nats: super::fleet::NatsArgs,
    /// With --nats: also work this many beads in this process (besides the workers').
    #[arg(long, value_name = "N", requires = "nats")]
    local_slots: Option<usize>,
}

/// The run's settings from configuration and flags, with `--bead` ids resolved.
pub(super) fn settings(ctx: &Ctx, ws: &Workspace, a: &RunArgs) -> Result<RunSettings> {
    let repo = ws.require_repo()?;
    let wanted: Vec<&str> = a
        .beads
        .iter()
        .flat_map(|b| b.split(','))
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .collect();
    // The beads are read only to resolve `--bead` prefixes (the TUI opens without reading).
    let beads = if wanted.is_empty() {
        Vec::new()
    } else {
        let snap = read::load(ctx, ws)?;
        wanted
            .into_iter()
            .map(|b| read::resolve(&snap, b))
            .collect::<Result<Vec<_>>>()?
    };
    let current = repo.current_branch()?;
    let s = RunSettings::resolve(
        &ws.config,
        current.as_deref(),
        llm::provider(ws)?.down_limit,
        Overrides {
            target: a.target.clone(),
            max_agents: a.max_agents,
            beads,
            max_beads: a.max_beads,
            timeout: a.timeout,
            max_tokens: a.max_tokens,
            no_merge: a.no_merge,
            run_created_beads: a.run_created_beads,
            bead_created_beads: a.bead_created_beads,
            run_requests: a.run_requests,
            run_tokens: a.run_tokens,
            dispatch_followups: a.dispatch_followups,
        },
    )?;
    if repo.tip(&s.target).is_err() {
        return Err(Error::Config(format!(
            "the target branch {:?} has no commits: create it (or commit something), or set target_branch in .loom/config.yaml",
            s.target
        )));
    }
    Ok(s)
}

pub fn run(ctx: &Ctx, a: RunArgs) -> Result<i32> {
    let ws = ctx.workspace()?;
    let settings = settings(ctx, &ws, &a)?;
    llm::warn_untrusted(ctx, &ws);
    if a.nats.nats.is_some() {
        let summary =
            super::fleet::coordinate(ctx, ws, settings, &a.nats, a.local_slots.unwrap_or(0))?;
        finish(ctx, &summary, a.junit.as_deref())?;
        return Ok(summary.exit_code);
    }
    let client = llm::client_for_agent(ctx, llm::provider(&ws)?)?;
    let summary = execute(ctx, ws, client, settings, "loom run", None)?;
    finish(ctx, &summary, a.junit.as_deref())?;
    Ok(summary.exit_code)
}

/// Threads for blocking work in `loom run`.
const BLOCKING_THREADS: usize = 8;

/// Runs the orchestrator with progress on stderr (and NDJSON on stdout with `--json`).
pub(super) fn execute(
    ctx: &Ctx,
    ws: Workspace,
    client: crate::llm::Client,
    settings: RunSettings,
    command: &str,
    personas: Option<crate::agent::persona::PersonaSet>,
) -> Result<RunSummary> {
    let bus = EventBus::new(16 * 1024);
    // Blocking work (git, the store) is short; eight threads keep 16 agents busy while each
    // thread's allocator heap stays one of few (peak memory: docs/PERFORMANCE.md).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))?;
    let setup = Setup {
        ws,
        client,
        settings,
        bus: Arc::clone(&bus),
        helper: std::env::current_exe().ok(),
        command: command.to_owned(),
        personas,
        stop: None,
        control: None,
        pool: false,
    };
    let mut progress = Progress::new(ctx);
    let json = ctx.global.json;
    let summary = rt.block_on(async move {
        let mut rx = bus.subscribe();
        let printer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tokio::select! {
                    got = rx.recv() => match got {
                        Ok(e) => {
                            let last = matches!(e.kind, EventKind::RunFinished { .. });
                            if json {
                                let mut out = std::io::stdout().lock();
                                let _ = output::write_json(&mut out, &e);
                                let _ = out.flush();
                            }
                            progress.event(&e);
                            if last {
                                break;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            progress.line(&format!("({n} events skipped: output is slower than the run)"));
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                    _ = tick.tick() => progress.redraw(),
                }
            }
            progress.clear();
        });
        let summary = dispatch::run(setup).await;
        if summary.is_err() {
            printer.abort();
        }
        let _ = printer.await;
        summary
    });
    // Commands still running in the background (a test killed mid-way) do not hold us up.
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    summary
}

/// Prints the summary (unless --json: the last event carries it) and writes the JUnit file.
pub(super) fn finish(ctx: &Ctx, s: &RunSummary, junit: Option<&std::path::Path>) -> Result<()> {
    if let Some(path) = junit {
        std::fs::write(path, report::junit(s)).map_err(|e| Error::io(path, e))?;
    }
    if let Some(e) = &s.error {
        let label = ctx.paint_stderr("error:", Color::Red);
        eprintln!("{label} {}", crate::text::inert(e));
    }
    if ctx.global.json || ctx.global.quiet {
        return Ok(());
    }
    let p = &ctx.paint;
    let mut out = ctx.out();
    let count = |o: Outcome| s.beads.iter().filter(|b| b.outcome() == o).count();
    let cost = s
        .usage
        .cost_usd
        .map(|c| format!(" · ${c:.4}"))
        .unwrap_or_default();
    writeln!(
        out,
        "\n{} on {}: {} merged, {} completed, {} waiting, {} failed, {} interrupted · {} tokens{cost} · {:.1}s",
        p.bold("Run"),
        s.target,
        count(Outcome::Merged),
        count(Outcome::Completed),
        count(Outcome::Waiting),
        count(Outcome::Failed),
        count(Outcome::Interrupted),
        s.usage.total_tokens,
        s.duration_ms as f64 / 1000.0
    )
    .map_err(stdout_err)?;
    if !s.beads.is_empty() {
        let mut t = Table::default();
        t.row(
            [
                "BEAD", "OUTCOME", "STAGE", "ROUNDS", "ITER", "TOKENS", "COST", "COMMIT",
            ]
            .iter()
            .map(|h| p.dim(h))
            .collect(),
        );
        for b in &s.beads {
            let colour = match b.outcome() {
                Outcome::Merged | Outcome::Completed => Color::Green,
                Outcome::Waiting => Color::Yellow,
                Outcome::Failed | Outcome::Interrupted => Color::Red,
            };
            t.row(vec![
                p.bold(&b.id),
                p.paint(b.outcome().as_str(), colour),
                b.stage.to_string(),
                b.rounds.to_string(),
                b.iterations.to_string(),
                b.usage.total_tokens.to_string(),
                b.usage
                    .cost_usd
                    .map(|c| format!("${c:.4}"))
                    .unwrap_or_else(|| "-".into()),
                b.commit
                    .as_deref()
                    .map(|c| c[..c.len().min(10)].to_owned())
                    .unwrap_or_else(|| "-".into()),
            ]);
        }
        t.write(&mut out).map_err(stdout_err)?;
        for b in s.beads.iter().filter(|b| b.outcome() != Outcome::Merged) {
            writeln!(
                out,
                "  {} {}",
                p.bold(&b.id),
                b.detail.lines().next().unwrap_or("")
            )
            .map_err(stdout_err)?;
        }
    }
    for d in &s.pending_decisions {
        writeln!(
            out,
            "{} {d} waits for you: `loom show {d}`, then `loom decide {d} approve|deny|answer \"…\"`",
            p.paint("decision", Color::Yellow)
        )
        .map_err(stdout_err)?;
    }
    Ok(())
}

/// Human progress on stderr: one line per stage change, and a status line redrawn in place
/// when stderr is a terminal.
pub(super) struct Progress {
    quiet: bool,
    tty: bool,
    paint: output::Painter,
    started: Instant,
    running: std::collections::BTreeSet<String>,
    done: [usize; 5],
    tokens: u64,
    cost: f64,
    shown: bool,
    endpoint_down: bool,
}

impl Progress {
    pub(super) fn new(ctx: &Ctx) -> Progress {
        let tty = std::io::stderr().is_terminal();
        Progress {
            quiet: ctx.global.quiet,
            tty,
            paint: output::Painter::for_stderr(ctx.global.color),
            started: Instant::now(),
            running: Default::default(),
            done: [0; 5],
            tokens: 0,
            cost: 0.0,
            shown: false,
            endpoint_down: false,
        }
    }

    pub(super) fn event(&mut self, e: &Event) {
        let bead = e.bead_or_empty();
        match &e.kind {
            EventKind::AgentStarted { .. } => {
                self.running.insert(bead.to_owned());
            }
            EventKind::BeadFinished { outcome, .. } => {
                self.running.remove(bead);
                self.done[*outcome as usize] += 1;
            }
            EventKind::Usage { usage } => {
                self.tokens += usage.total_tokens;
                self.cost += usage.cost_usd.unwrap_or(0.0);
            }
            _ => {}
        }
        if self.quiet {
            return;
        }
        let worth = match &e.kind {
            EventKind::AgentNotice { notice, .. } => notice.is_endpoint(),
            EventKind::ModelText { .. }
            | EventKind::ToolCall { .. }
            | EventKind::ToolResult { .. }
            | EventKind::Usage { .. }
            | EventKind::BeadCreated { .. }
            | EventKind::BeadChanged { .. }
            | EventKind::BeadDeleted { .. }
            | EventKind::RunFinished { .. } => false,
            // The endpoint going down, and coming back after that.
            EventKind::ProviderHealth { health } => {
                use crate::llm::Health;
                let show = match health.health {
                    Health::Down => !self.endpoint_down,
                    Health::Healthy => self.endpoint_down,
                    _ => false,
                };
                match health.health {
                    Health::Down => self.endpoint_down = true,
                    Health::Healthy => self.endpoint_down = false,
                    _ => {}
                }
                show
            }
            _ => true,
        };
        if worth && let Some(line) = super::watch::human_with(&self.paint, e) {
            self.line(&line);
        } else {
            self.redraw();
        }
    }

    fn line(&mut self, line: &str) {
        self.clear();
        // Bead titles, agents' words and error messages are data: printed inert.
        eprintln!("{}", super::inert::line(line, self.paint.color));
        self.redraw();
    }

    fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[2K");
            self.shown = false;
        }
    }

    fn redraw(&mut self) {
        if !self.tty || self.quiet {
            return;
        }
        let e = self.started.elapsed().as_secs();
        let running: Vec<&str> = self.running.iter().map(String::as_str).take(4).collect();
        let more = self.running.len().saturating_sub(running.len());
        let status = format!(
            "▸ {} running{}{} · {} merged · {} waiting · {} failed · {} tokens · {}:{:02}",
            self.running.len(),
            if running.is_empty() {
                String::new()
            } else {
                format!(" ({})", running.join(" "))
            },
            if more > 0 {
                format!(" +{more}")
            } else {
                String::new()
            },
            self.done[Outcome::Merged as usize] + self.done[Outcome::Completed as usize],
            self.done[Outcome::Waiting as usize],
            self.done[Outcome::Failed as usize] + self.done[Outcome::Interrupted as usize],
            self.tokens,
            e / 60,
            e % 60
        );
        let width = crossterm::terminal::size().map_or(100, |(w, _)| w as usize);
        eprint!(
            "\r\x1b[2K{}",
            self.paint.dim(&crate::text::inert(&output::truncate(
                &status,
                width.saturating_sub(1)
            )))
        );
        let _ = std::io::stderr().flush();
        self.shown = true;
    }
}

#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The decision bead.
    id: String,
    /// approve (retry with a fresh budget, or merge what waits for approval), deny (close the
    /// beads it blocks), answer (the text goes to them as a comment and they reopen), or the
    /// number of one of the decision's options.
    #[arg(value_name = "VERDICT")]
    verdict: String,
    /// The answer (with `answer`, or an option that asks for one).
    text: Vec<String>,
}

/// The verdict a person typed: a word, or an option of the decision by its number (an option
/// that names a verdict — `approve: …` — is that verdict; any other is the answer).
fn verdict_of(word: &str, text: &str, id: &str, options: &[String]) -> Result<Verdict> {
    let answer = |text: &str| {
        if text.trim().is_empty() {
            Err(Error::Usage(format!(
                "`answer` needs the answer: loom decide {id} answer \"what to do\""
            )))
        } else {
            Ok(Verdict::Answer(text.trim().to_owned()))
        }
    };
    match word.trim().to_ascii_lowercase().as_str() {
        "approve" => return Ok(Verdict::Approve),
        "deny" => return Ok(Verdict::Deny),
        "answer" => return answer(text),
        _ => {}
    }
    let Some(option) = word
        .trim()
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| options.get(i))
    else {
        let listed: Vec<String> = options
            .iter()
            .enumerate()
            .map(|(i, o)| format!("{} = {o}", i + 1))
            .collect();
        let choices = if listed.is_empty() {
            String::new()
        } else {
            format!(", or an option by number ({})", listed.join("; "))
        };
        return Err(Error::Usage(format!(
            "{word:?} is not a verdict: use approve, deny or answer \"…\"{choices}"
        )));
    };
    let head = option
        .split(':')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match head.as_str() {
        "approve" => Ok(Verdict::Approve),
        "deny" => Ok(Verdict::Deny),
        "answer" => answer(text),
        _ if text.trim().is_empty() => Ok(Verdict::Answer(option.clone())),
        _ => Ok(Verdict::Answer(format!("{option}: {}", text.trim()))),
    }
}

pub fn decide(ctx: &Ctx, a: DecideArgs) -> Result<()> {
    let ws = ctx.workspace()?;
    let snap = read::load(ctx, &ws)?;
    let id = read::resolve(&snap, &a.id)?;
    let options = snap
        .beads
        .iter()
        .find(|b| b.id == id)
        .map(|b| decision::options(snap.full(b).description.as_deref().unwrap_or("")))
        .unwrap_or_default();
    let verdict = verdict_of(&a.verdict, &a.text.join(" "), &id, &options)?;
    let decided = decision::decide(&ws, &id, &verdict)?;
    if ctx.global.json {
        return output::write_json(&mut ctx.out(), &decided);
    }
    if ctx.global.quiet {
        return Ok(());
    }
    let mut line = ctx.paint.ok(&format!("{id}: {}", decided.verdict));
    if decided.beads.is_empty() {
        line.push_str(" (it blocked nothing)");
    }
    for b in &decided.beads {
        line.push_str(&format!("; {} {}", ctx.paint.bold(&b.id), b.result));
    }
    ctx.say(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_by_word_or_option_number() {
        let options = vec![
            "approve: try again with a fresh budget".to_owned(),
            "deny: drop the bead (close it)".to_owned(),
            "answer: give guidance, then try again".to_owned(),
            "Use SQLite".to_owned(),
        ];
        let v = |w: &str, t: &str| verdict_of(w, t, "d-1", &options);
        assert!(matches!(v("approve", ""), Ok(Verdict::Approve)));
        assert!(matches!(v("1", ""), Ok(Verdict::Approve)));
        assert!(matches!(v("2", ""), Ok(Verdict::Deny)));
        assert!(v("3", "").is_err(), "an answer needs its text");
        assert!(matches!(v("3", "use the cache"), Ok(Verdict::Answer(a)) if a == "use the cache"));
        assert!(matches!(v("4", ""), Ok(Verdict::Answer(a)) if a == "Use SQLite"));
        assert!(
            matches!(v("4", "in memory"), Ok(Verdict::Answer(a)) if a == "Use SQLite: in memory")
        );
        let err = v("5", "").unwrap_err().to_string();
        assert!(err.contains("4 = Use SQLite"), "{err}");
        assert!(v("0", "").is_err());
        assert!(v("maybe", "").is_err());
    }

    #[test]
    fn options_are_read_from_the_description() {
        let d = "Why it stopped.\n\nOptions:\n1. approve: again\n2. Use SQLite\n\nResolve with `loom decide x approve`.";
        assert_eq!(decision::options(d), vec!["approve: again", "Use SQLite"]);
        assert!(decision::options("no options here").is_empty());
    }
}
