//! `loom watch`: one line (NDJSON with `--json`) per bead created, changed or deleted on disk
//! by anyone else, until interrupted.

use std::io::Write;
use std::sync::mpsc;

use crate::error::Result;
use crossterm::style::Color;

use crate::event::{Event, EventKind, render};
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

/// [`human`] with a given painter (stderr has its own): the shared wording
/// ([`render::line`]) painted for a terminal.
pub(super) fn human_with(p: &output::Painter, e: &Event) -> Option<String> {
    let l = render::line(e)?;
    // A tool call shows with its result; a merge is announced once, by the bead finishing.
    let once = matches!(
        &e.kind,
        EventKind::ToolCall { .. } | EventKind::MergeResult { merged: true, .. }
    );
    (!once).then(|| paint(p, &l, true))
}

/// A rendered line for a terminal: `clock bead who ✓ text · note`, the bead left out when
/// `with_bead` is false (a one-bead command).
pub(super) fn paint(p: &output::Painter, l: &render::Line, with_bead: bool) -> String {
    let mut s = p.dim(&l.clock);
    if with_bead && !l.bead.is_empty() {
        s.push(' ');
        s.push_str(&p.bold(&l.bead));
    }
    if !l.who.is_empty() && l.who != "loom" {
        s.push(' ');
        s.push_str(&l.who);
    }
    if let Some(ok) = l.ok {
        s.push(' ');
        s.push_str(&if ok {
            p.paint("✓", Color::Green)
        } else {
            p.paint("✗", Color::Red)
        });
    }
    s.push(' ');
    s.push_str(&match l.topic {
        render::Topic::Error => p.paint(&l.text, Color::Red),
        render::Topic::Decision => p.paint(&l.text, Color::Yellow),
        _ => l.text.clone(),
    });
    if !l.note.is_empty() {
        s.push_str(" · ");
        s.push_str(&p.dim(&l.note));
    }
    s
}
