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
        let _ = tx.send(e);
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
            writeln!(out, "{}", human(ctx, &event)).map_err(stdout_err)?;
        }
        out.flush().map_err(stdout_err)?;
    }
    Ok(())
}

fn human(ctx: &Ctx, e: &Event) -> String {
    let p = &ctx.paint;
    let clock = |at: &str| p.dim(at.get(11..19).unwrap_or(at));
    match e {
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
    }
}
