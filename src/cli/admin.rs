//! Whole-store commands: init, import, export, convert, doctor.

use std::io::{Read, Write};
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use crate::bead::{Bead, id as bead_id};
use crate::error::{Error, Result};
use crate::git::{CommitRequest, Repo};
use crate::store::{self, Format, Layout, TxOptions, jsonl};
use crate::workspace::Workspace;

use super::output::{self, stdout_err};
use super::{Ctx, read};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Id prefix for new beads (default: issue-prefix in .beads/config.yaml, else the
    /// repository's directory name).
    #[arg(long)]
    prefix: Option<String>,
    /// yaml (one file per bead, the default) or jsonl (bd-compatible issues.jsonl).
    #[arg(long, default_value = "yaml")]
    format: String,
}

pub fn init(ctx: &Ctx, a: InitArgs) -> Result<()> {
    let format: Format = a.format.parse()?;
    let start = Workspace::start_dir(&ctx.open_options())?;
    let repo = Repo::require(&start)?;
    let root = repo.workdir.clone();
    let prefix = match a.prefix.as_deref().map(str::trim) {
        Some("") => return Err(Error::Usage("--prefix cannot be empty".into())),
        Some(p) => p.trim_end_matches('-').to_owned(),
        None => Layout::with_format(&root, format)
            .configured_prefix()?
            .unwrap_or_else(|| {
                let name = root
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "bd".into());
                bead_id::prefix_from_dir_name(&name)
            }),
    };
    let done = store::init(&root, format, &prefix, &repo.beads_lock_path())?;
    let ws = Workspace::for_new_store(done.layout.clone(), repo.clone(), &ctx.open_options())?;
    let commit = ws.commit(
        &repo,
        CommitRequest {
            paths: done.paths.clone(),
            subject: format!(
                "loom: init .beads ({}, prefix {})",
                format.name(),
                done.prefix
            ),
            body: None,
            beads: Vec::new(),
            actor: ws.actor.clone(),
            event: crate::git::CommitKind::Init,
        },
    )?;
    ctx.commit_warnings(commit.as_ref());
    if ctx.global.json {
        return output::write_json(
            &mut ctx.out(),
            &json!({
                "path": done.layout.beads_dir,
                "format": format.name(),
                "prefix": done.prefix,
                "commit": commit.map(|c| c.id),
            }),
        );
    }
    ctx.say(&ctx.paint.ok(&format!(
        "Initialized {} ({} store, ids like {}-a1b)",
        done.layout.relative(&done.layout.beads_dir).display(),
        format.name(),
        done.prefix
    )))
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The JSONL file to read (`-` or nothing: stdin).
    file: Option<PathBuf>,
    /// Same as the FILE argument (bd's flag).
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Report what would change without writing.
    #[arg(long)]
    dry_run: bool,
}

pub fn import(ctx: &Ctx, a: ImportArgs) -> Result<()> {
    let source = a.input.or(a.file);
    let bytes = match &source {
        Some(p) if p.as_os_str() != "-" => std::fs::read(p).map_err(|e| Error::io(p, e))?,
        _ => {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .map_err(|e| Error::io("<stdin>", e))?;
            b
        }
    };
    let shown = source.clone().unwrap_or_else(|| PathBuf::from("<stdin>"));
    let (doc, problems) = jsonl::JsonlDoc::parse(bytes, &shown);
    for p in &problems {
        ctx.warn(&format!("{p} (skipped)"));
    }
    let incoming: Vec<Bead> = doc.beads;
    let ws = ctx.workspace()?;
    let run = |tx: &mut store::Tx| -> Result<(usize, usize, usize)> {
        let (mut created, mut updated, mut skipped) = (0, 0, 0);
        for b in &incoming {
            let existing = tx.get(&b.id)?.cloned();
            match existing {
                None if !tx.exists(&b.id)? => {
                    tx.insert(b.clone())?;
                    created += 1;
                }
                None => skipped += 1, // an unreadable record is never overwritten
                Some(existing) => {
                    let newer = match (&b.updated_at, &existing.updated_at) {
                        (Some(n), Some(o)) => n.sort_key() > o.sort_key(),
                        (Some(_), None) => true,
                        _ => false,
                    };
                    if newer && existing != *b {
                        *tx.get_mut(&b.id)? = b.clone();
                        updated += 1;
                    } else {
                        skipped += 1;
                    }
                }
            }
        }
        Ok((created, updated, skipped))
    };
    let (created, updated, skipped) = if a.dry_run {
        ws.store.preview(
            TxOptions {
                keep_updated_at: true,
                ..TxOptions::default()
            },
            run,
        )?
    } else {
        let m = ws.mutate(
            crate::git::CommitKind::Imported,
            TxOptions {
                keep_updated_at: true,
                ..TxOptions::default()
            },
            run,
        )?;
        ctx.commit_warnings(m.commit.as_ref());
        m.value
    };
    if ctx.global.json {
        return output::write_json(
            &mut ctx.out(),
            &json!({"created": created, "updated": updated, "skipped": skipped, "invalid": problems.len(), "dry_run": a.dry_run}),
        );
    }
    let verb = if a.dry_run {
        "Would import"
    } else {
        "Imported"
    };
    ctx.say(&ctx.paint.ok(&format!(
        "{verb}: {created} new, {updated} updated, {skipped} unchanged or older{}",
        if problems.is_empty() {
            String::new()
        } else {
            format!(", {} unreadable", problems.len())
        }
    )))
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn export(ctx: &Ctx, a: ExportArgs) -> Result<()> {
    let ws = ctx.workspace()?;
    let snap = ws.store.load()?;
    read::report_unreadable(ctx, &snap);
    let mut beads: Vec<&Bead> = snap.beads.iter().collect();
    beads.sort_by(|x, y| x.id.cmp(&y.id));
    let bytes =
        jsonl::render_all(beads.iter().copied()).map_err(|e| Error::Other(e.to_string()))?;
    match &a.output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            let expected = store::fsio::fingerprint(path)?;
            store::fsio::replace(path, &dir, &bytes, expected)?;
            if !ctx.global.quiet {
                eprintln!("Exported {} beads to {}", beads.len(), path.display());
            }
            Ok(())
        }
        None => ctx.out().write_all(&bytes).map_err(stdout_err),
    }
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The backend to move to: yaml or jsonl.
    #[arg(long)]
    to: String,
}

pub fn convert(ctx: &Ctx, a: ConvertArgs) -> Result<()> {
    let to: Format = a.to.parse()?;
    let ws = ctx.workspace()?;
    let repo = ws.require_repo()?.clone();
    let mut commit = None;
    let done = ws.store.convert(to, |c| {
        commit = ws.commit(
            &repo,
            CommitRequest {
                paths: c.paths.clone(),
                subject: format!(
                    "loom: convert {} beads from {} to {}",
                    c.beads,
                    c.from.name(),
                    c.to.name()
                ),
                body: None,
                beads: Vec::new(),
                actor: ws.actor.clone(),
                event: crate::git::CommitKind::Converted,
            },
        )?;
        Ok(())
    })?;
    ctx.commit_warnings(commit.as_ref());
    if ctx.global.json {
        return output::write_json(
            &mut ctx.out(),
            &json!({"from": done.from.name(), "to": done.to.name(), "beads": done.beads}),
        );
    }
    ctx.say(&ctx.paint.ok(&format!(
        "Converted {} beads from {} to {}",
        done.beads,
        done.from.name(),
        done.to.name()
    )))
}
