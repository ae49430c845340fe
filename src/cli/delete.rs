//! `loom delete`: bd's delete. Without `--force` it shows what would go and changes nothing;
//! with it, the beads are removed in one commit (git keeps them in history).

use std::io::Write;

use clap::Args;
use serde_json::json;

use crate::error::{Error, Result};
use crate::ops::{CommitKind, delete};
use crate::store::TxOptions;
use crate::text::inert;

use super::Ctx;
use super::output::{self, stdout_err};

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Bead ids (full or unique prefixes).
    ids: Vec<String>,
    /// Read ids from a file, one per line (`#` comments and blank lines skipped).
    #[arg(long, value_name = "FILE")]
    from_file: Option<std::path::PathBuf>,
    /// Delete (without it, only show what would be deleted).
    #[arg(short, long)]
    force: bool,
    /// Show what would be deleted and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also delete every bead that depends on these, recursively.
    #[arg(long)]
    cascade: bool,
}

fn queries(a: &DeleteArgs) -> Result<Vec<String>> {
    let mut ids = a.ids.clone();
    if let Some(f) = &a.from_file {
        let text = std::fs::read_to_string(f).map_err(|e| Error::io(f, e))?;
        ids.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned),
        );
    }
    if ids.is_empty() {
        return Err(Error::Usage(
            "name the beads to delete: loom delete <id>... (or --from-file FILE)".into(),
        ));
    }
    Ok(ids)
}

pub fn delete(ctx: &Ctx, a: DeleteArgs) -> Result<()> {
    let queries = queries(&a)?;
    let ws = ctx.workspace()?;
    let resolve = |tx: &mut crate::store::Tx| -> Result<Vec<String>> {
        queries.iter().map(|q| tx.resolve(q)).collect()
    };
    if !a.force || a.dry_run {
        let plan = ws.store.preview(TxOptions::default(), |tx| {
            let ids = resolve(tx)?;
            delete::plan(tx, &ids, a.cascade)
        })?;
        return preview(ctx, &plan, &a);
    }
    let m = ws.mutate(CommitKind::Deleted, TxOptions::default(), |tx| {
        let ids = resolve(tx)?;
        let plan = delete::plan(tx, &ids, a.cascade)?;
        delete::delete(tx, &plan)
    })?;
    ctx.commit_warnings(m.commit.as_ref());
    report(ctx, &m.value, a.cascade)
}

fn report(ctx: &Ctx, d: &delete::Deleted, cascade: bool) -> Result<()> {
    if ctx.global.json {
        let value = match d.deleted.as_slice() {
            [one] if !cascade => json!({
                "deleted": one,
                "dependencies_removed": d.dependencies_removed,
                "references_updated": d.references_updated,
                "schema_version": 1,
            }),
            _ => json!({
                "deleted": d.deleted,
                "deleted_count": d.deleted.len(),
                "dependencies_removed": d.dependencies_removed,
                "orphaned_issues": d.orphaned,
                "references_updated": d.references_updated,
                "schema_version": 1,
            }),
        };
        return output::write_json(&mut ctx.out(), &value);
    }
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let head = match d.deleted.as_slice() {
        [one] => format!("Deleted {one}"),
        many => format!("Deleted {}", plural(many.len(), "bead", "beads")),
    };
    ctx.say(&ctx.paint.ok(&head))?;
    ctx.say(&format!(
        "  Removed {}",
        plural(
            d.dependencies_removed,
            "dependency link",
            "dependency links"
        )
    ))?;
    ctx.say(&format!(
        "  Updated text references in {}",
        plural(d.references_updated, "bead", "beads")
    ))?;
    if !d.orphaned.is_empty() {
        ctx.say(&format!(
            "  Left without their link: {}",
            d.orphaned.join(", ")
        ))?;
    }
    Ok(())
}

fn preview(ctx: &Ctx, plan: &delete::Plan, a: &DeleteArgs) -> Result<()> {
    if ctx.global.json {
        let beads: Vec<_> = plan.beads.iter().map(|(id, _)| id).collect();
        return output::write_json(
            &mut ctx.out(),
            &json!({
                "dry_run": true,
                "would_delete": beads,
                "dependencies_removed": plan.links.len(),
                "references_updated": plan.referencing.len(),
                "orphaned_issues": if a.cascade { Vec::new() } else { plan.orphans() },
                "schema_version": 1,
            }),
        );
    }
    let mut t = String::from("DELETE PREVIEW\n\n");
    t.push_str(&format!("Beads to delete ({}):\n", plan.beads.len()));
    for (id, title) in &plan.beads {
        t.push_str(&format!("  {id}: {}\n", inert(title)));
    }
    if !plan.links.is_empty() {
        t.push_str(&format!(
            "\nDependency links to remove ({}):\n",
            plan.links.len()
        ));
        for (from, to, kind) in &plan.links {
            t.push_str(&format!("  {from} → {to} ({})\n", inert(kind)));
        }
    }
    if !plan.connected.is_empty() {
        t.push_str("\nConnected beads (their links go; text mentioning a deleted id says [deleted:<id>]):\n");
        for (id, title) in &plan.connected {
            let mark = if plan.referencing.contains(id) {
                " (mentions it)"
            } else {
                ""
            };
            t.push_str(&format!("  {id}: {}{mark}\n", inert(title)));
        }
    }
    let ids: Vec<&str> = a.ids.iter().map(String::as_str).collect();
    if a.dry_run {
        t.push_str("\n(Dry run: nothing changed.)\n");
    } else {
        t.push_str(&format!(
            "\nNothing is deleted yet. To delete, run: loom delete {}{} --force\n",
            ids.join(" "),
            if a.cascade { " --cascade" } else { "" }
        ));
    }
    let mut out = ctx.out();
    out.write_all(t.as_bytes()).map_err(stdout_err)
}
