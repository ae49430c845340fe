//! `loom log`: the history of a bead (or of all bead changes) read back from git.

use std::io::Write;

use clap::Args;

use crate::error::Result;
use crate::text::inert;

use super::Ctx;
use super::output::{self, Table, stdout_err};
use super::read::resolve;

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only the history of this bead.
    id: Option<String>,
    /// At most N entries (0 = all).
    #[arg(short = 'n', long, default_value_t = 0)]
    limit: usize,
}

pub fn log(ctx: &Ctx, a: LogArgs) -> Result<()> {
    let ws = ctx.workspace()?;
    let repo = ws.require_repo()?;
    let id = match &a.id {
        Some(q) => {
            let snap = ws.store.load_index()?;
            // A bead that no longer exists still has a history: fall back to the query.
            Some(resolve(&snap, q).unwrap_or_else(|_| q.trim().to_owned()))
        }
        None => None,
    };
    let file = id.as_deref().and_then(|i| ws.bead_file(i));
    let entries = repo.log(id.as_deref(), file.as_deref(), a.limit)?;
    let mut out = ctx.out();
    if ctx.global.json {
        return output::write_json_array(&mut out, &entries);
    }
    if entries.is_empty() {
        let what = id.map(|i| format!(" for {i}")).unwrap_or_default();
        return writeln!(out, "No Loom history{what}.").map_err(stdout_err);
    }
    let p = &ctx.paint;
    let mut t = Table::default();
    for e in &entries {
        let time = e.time.get(..16).unwrap_or(&e.time).replace('T', " ");
        t.row(vec![
            p.dim(&time),
            inert(&e.actor).into_owned(),
            inert(&e.event).into_owned(),
            p.paint(
                e.commit.get(..10).unwrap_or(&e.commit),
                crossterm::style::Color::Yellow,
            ),
            inert(&e.subject).into_owned(),
        ]);
    }
    t.write(&mut out).map_err(stdout_err)
}
