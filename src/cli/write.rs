//! Commands that change beads: create, update, close, reopen, dep add/remove, label, comment.
//! Each runs its change inside [`Workspace::mutate`]: under the lock, on the latest beads, then
//! written, verified and committed.

use std::io::Read;

use clap::Args;
use serde_json::json;

use crate::bead::{Bead, Timestamp};
use crate::error::{Error, Result};
use crate::ops::change::{self, Change, Edited, Patch};
use crate::ops::{self, CommitKind, DepSpec, NewBead, edit};
use crate::store::TxOptions;
use crate::workspace::{Mutation, Workspace};

use super::output;
use super::{Ctx, priority_arg};

fn parse_time(flag: &str, value: &str) -> Result<Timestamp> {
    Timestamp::parse_user(value).ok_or_else(|| {
        Error::Usage(format!(
            "{flag} {value:?}: expected a date (2026-12-01) or an RFC 3339 time (2026-12-01T09:00:00Z)"
        ))
    })
}

/// Prints commit warnings, if any.
fn finish<T>(ctx: &Ctx, m: &Mutation<T>) {
    ctx.commit_warnings(m.commit.as_ref());
}

/// Prints the changed beads: JSON (object for one, array for several) or a line each.
fn report_beads<T>(
    ctx: &Ctx,
    ws: &Workspace,
    m: &Mutation<T>,
    ids: &[String],
    verb: &str,
) -> Result<()> {
    finish(ctx, m);
    if ctx.global.json {
        let mut beads: Vec<Bead> = Vec::new();
        for id in ids {
            match m.applied.changes.iter().find(|c| &c.id == id) {
                Some(c) => beads.push(c.after.clone()),
                None => {
                    let snap = ws.store.load()?;
                    if let Some(b) = snap.beads.into_iter().find(|b| &b.id == id) {
                        beads.push(b);
                    }
                }
            }
        }
        let mut out = ctx.out();
        return match beads.as_slice() {
            [one] => output::write_json(&mut out, one),
            many => output::write_bead_array(&mut out, many),
        };
    }
    for id in ids {
        match m.applied.changes.iter().find(|c| &c.id == id) {
            Some(c) => ctx.say(&ctx.paint.ok(&format!("{verb} {id}: {}", c.summary())))?,
            None => ctx.say(&format!("{id}: no change"))?,
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------

/// The free-text fields `create` sets and `update` changes ("" clears one on update).
#[derive(Debug, Args)]
pub struct TextArgs {
    /// What the work is about (Markdown).
    #[arg(short, long)]
    description: Option<String>,
    /// How it should be built.
    #[arg(long)]
    design: Option<String>,
    /// What must hold for it to be done.
    #[arg(long)]
    acceptance: Option<String>,
    /// Anything else worth keeping.
    #[arg(long)]
    notes: Option<String>,
    /// A reference in another tracker (e.g. gh-123).
    #[arg(long)]
    external_ref: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The title (or use --title).
    #[arg(value_name = "TITLE")]
    title_arg: Option<String>,
    /// The title, as a flag.
    #[arg(long = "title", value_name = "TITLE")]
    title: Option<String>,
    /// bug, feature, task, epic, chore, decision, … (default task).
    #[arg(short = 't', long = "type", default_value = "task")]
    issue_type: String,
    /// 0-4 or P0-P4 (0 = critical; default 2).
    #[arg(short, long, default_value = "2")]
    priority: String,
    #[command(flatten)]
    text: TextArgs,
    /// Who works on it.
    #[arg(short, long)]
    assignee: Option<String>,
    /// Labels (repeatable, comma-separated).
    #[arg(short, long = "labels", alias = "label")]
    labels: Vec<String>,
    /// Make it a child of this bead (id `<parent>.N`, with a parent-child dependency).
    #[arg(long)]
    parent: Option<String>,
    /// Dependencies: `id`, `type:id` (`blocks:id` means id waits for the new bead).
    #[arg(long, value_delimiter = ',')]
    deps: Vec<String>,
    /// Use this id instead of a generated one.
    #[arg(long)]
    id: Option<String>,
    /// Due date (2026-12-01 or RFC 3339).
    #[arg(long)]
    due: Option<String>,
    /// Hide from ready work until this date.
    #[arg(long)]
    defer: Option<String>,
    /// Mark as ephemeral (never ready work, bd's wisps).
    #[arg(long)]
    ephemeral: bool,
    /// Print only the new id (same as -q).
    #[arg(long)]
    silent: bool,
}

pub fn create(ctx: &Ctx, a: CreateArgs) -> Result<()> {
    let title = match (a.title_arg.as_deref(), a.title.as_deref()) {
        (Some(t), None) | (None, Some(t)) => t.to_owned(),
        (Some(_), Some(_)) => {
            return Err(Error::Usage(
                "give the title once: as an argument or with --title".into(),
            ));
        }
        (None, None) => {
            return Err(Error::Usage(
                "a title is required: loom create \"Fix the login\"".into(),
            ));
        }
    };
    let priority = priority_arg(&a.priority)?;
    let due = a
        .due
        .as_deref()
        .map(|d| parse_time("--due", d))
        .transpose()?;
    let defer = a
        .defer
        .as_deref()
        .map(|d| parse_time("--defer", d))
        .transpose()?;
    let mut new = NewBead::new(title.clone(), String::new());
    new.description = a.text.description.clone();
    new.design = a.text.design.clone();
    new.acceptance_criteria = a.text.acceptance.clone();
    new.notes = a.text.notes.clone();
    new.external_ref = a.text.external_ref.clone();
    new.issue_type = a.issue_type.trim().to_owned();
    new.priority = priority;
    new.assignee = a.assignee.clone();
    new.labels = edit::parse_labels(&a.labels)?;
    new.parent = a.parent.clone();
    new.deps = a
        .deps
        .iter()
        .filter(|d| !d.trim().is_empty())
        .map(|d| DepSpec::parse(d))
        .collect::<Result<_>>()?;
    new.id = a.id.clone();
    new.due_at = due;
    new.defer_until = defer;
    new.ephemeral = a.ephemeral;
    let ws = ctx.workspace()?;
    new.created_by = ws.actor.clone();
    let now = Timestamp::now();
    let m = ws.mutate(CommitKind::Created, TxOptions::default(), |tx| {
        ops::create(tx, &new, &now)
    })?;
    finish(ctx, &m);
    let id = &m.value;
    if ctx.global.json {
        let bead = m
            .applied
            .changes
            .iter()
            .find(|c| &c.id == id)
            .map(|c| &c.after);
        return output::write_json(&mut ctx.out(), &bead);
    }
    if ctx.global.quiet || a.silent {
        println!("{id}");
    } else {
        ctx.say(&ctx.paint.ok(&format!("Created {id}: {title}")))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Bead ids (full or unique prefixes).
    #[arg(required = true)]
    ids: Vec<String>,
    /// New status: open, in_progress, blocked, deferred, closed, … (any value loads).
    #[arg(short, long)]
    status: Option<String>,
    /// 0-4 or P0-P4.
    #[arg(short, long)]
    priority: Option<String>,
    /// New title.
    #[arg(long)]
    title: Option<String>,
    /// New type.
    #[arg(short = 't', long = "type")]
    issue_type: Option<String>,
    /// Assignee ("" clears it).
    #[arg(short, long)]
    assignee: Option<String>,
    #[command(flatten)]
    text: TextArgs,
    /// Append a paragraph to the notes.
    #[arg(long)]
    append_notes: Option<String>,
    /// Add labels (repeatable, comma-separated).
    #[arg(long)]
    add_label: Vec<String>,
    /// Remove labels (repeatable, comma-separated).
    #[arg(long)]
    remove_label: Vec<String>,
    /// Replace all labels.
    #[arg(long)]
    set_labels: Option<String>,
    /// Due date ("" clears it).
    #[arg(long)]
    due: Option<String>,
    /// Defer until ("" clears it).
    #[arg(long)]
    defer: Option<String>,
    /// Assign to yourself and set in_progress.
    #[arg(long)]
    claim: bool,
    /// Make it a child of this bead ("" removes its parent).
    #[arg(long)]
    parent: Option<String>,
}

fn opt_text(v: &Option<String>) -> Option<Option<String>> {
    v.as_ref().map(|s| (!s.is_empty()).then(|| s.clone()))
}

pub fn update(ctx: &Ctx, a: UpdateArgs) -> Result<()> {
    let priority = a.priority.as_deref().map(priority_arg).transpose()?;
    let parse_opt_time = |flag: &str, v: &Option<String>| -> Result<Option<Option<Timestamp>>> {
        match v.as_deref() {
            None => Ok(None),
            Some("") => Ok(Some(None)),
            Some(t) => parse_time(flag, t).map(|t| Some(Some(t))),
        }
    };
    let due = parse_opt_time("--due", &a.due)?;
    let defer = parse_opt_time("--defer", &a.defer)?;
    if let Some(s) = &a.status
        && s.trim().is_empty()
    {
        return Err(Error::Usage(
            "--status needs a value (open, in_progress, blocked, deferred, closed, …)".into(),
        ));
    }
    let ws = ctx.workspace()?;
    let (add, remove) = (
        edit::parse_labels(&a.add_label)?,
        edit::parse_labels(&a.remove_label)?,
    );
    let set_labels = a
        .set_labels
        .as_ref()
        .map(|s| edit::parse_labels(std::slice::from_ref(s)))
        .transpose()?;
    let patch = Patch {
        claim: a.claim,
        status: a.status.clone(),
        title: a.title.clone(),
        priority,
        issue_type: a.issue_type.clone(),
        assignee: opt_text(&a.assignee),
        description: opt_text(&a.text.description),
        design: opt_text(&a.text.design),
        acceptance_criteria: opt_text(&a.text.acceptance),
        notes: opt_text(&a.text.notes),
        external_ref: opt_text(&a.text.external_ref),
        append_notes: a.append_notes.clone(),
        due_at: due,
        defer_until: defer,
        labels: set_labels,
        add_labels: add,
        remove_labels: remove,
        blockers: None,
        parent: opt_text(&a.parent),
    };
    let m = change::edit(&ws, &a.ids, &Change::Update(Box::new(patch)))?;
    report_beads(ctx, &ws, &m, &ids_of(&m), "Updated")
}

/// The beads a change edited.
fn ids_of(m: &Mutation<Vec<Edited>>) -> Vec<String> {
    m.value.iter().map(|e| e.id.clone()).collect()
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct CloseArgs {
    /// Bead ids (full or unique prefixes).
    #[arg(required = true)]
    ids: Vec<String>,
    /// Why it is closed (default "Closed").
    #[arg(short, long, alias = "resolution")]
    reason: Option<String>,
    /// Close even if open beads still block it.
    #[arg(short, long)]
    force: bool,
}

pub fn close(ctx: &Ctx, a: CloseArgs) -> Result<()> {
    let ws = ctx.workspace()?;
    let reason = a.reason.clone().unwrap_or_else(|| "Closed".to_owned());
    let close = Change::Close {
        reason,
        force: a.force,
    };
    let m = change::edit(&ws, &a.ids, &close)?;
    report_beads(ctx, &ws, &m, &ids_of(&m), "Closed")
}

#[derive(Debug, Args)]
pub struct ReopenArgs {
    /// Bead ids (full or unique prefixes).
    #[arg(required = true)]
    ids: Vec<String>,
    /// Why it is reopened (recorded as a comment).
    #[arg(short, long)]
    reason: Option<String>,
}

pub fn reopen(ctx: &Ctx, a: ReopenArgs) -> Result<()> {
    let ws = ctx.workspace()?;
    let reopen = Change::Reopen {
        reason: a.reason.clone(),
    };
    let m = change::edit(&ws, &a.ids, &reopen)?;
    report_beads(ctx, &ws, &m, &ids_of(&m), "Reopened")
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct DepAddArgs {
    /// The bead that waits.
    id: String,
    /// The bead it depends on.
    depends_on: String,
    /// blocks (default), parent-child, related, discovered-from, waits-for, …
    #[arg(short = 't', long = "type", default_value = "blocks")]
    dep_type: String,
}

pub fn dep_add(ctx: &Ctx, a: DepAddArgs) -> Result<()> {
    let kind = a.dep_type.trim().to_owned();
    if kind.is_empty() {
        return Err(Error::Usage(
            "--type needs a value (blocks, parent-child, related, …)".into(),
        ));
    }
    let ws = ctx.workspace()?;
    let depend = Change::Depend {
        on: a.depends_on.clone(),
        dep_type: kind.clone(),
    };
    let m = change::edit(&ws, std::slice::from_ref(&a.id), &depend)?;
    finish(ctx, &m);
    let Some(e) = m.value.first() else {
        return Ok(());
    };
    let (from, to, existed) = (&e.id, e.other.as_deref().unwrap_or_default(), &e.unchanged);
    if ctx.global.json {
        let status = if *existed { "exists" } else { "added" };
        return output::write_json(
            &mut ctx.out(),
            &json!({"status": status, "issue_id": from, "depends_on_id": to, "type": kind}),
        );
    }
    if *existed {
        ctx.say(&format!("{from} already depends on {to} ({kind})"))
    } else {
        ctx.say(&ctx.paint.ok(&format!(
            "Added dependency: {from} depends on {to} ({kind})"
        )))
    }
}

#[derive(Debug, Args)]
pub struct DepRemoveArgs {
    /// The bead that waits.
    id: String,
    /// The bead it no longer depends on.
    depends_on: String,
    /// Only remove a dependency of this type.
    #[arg(short = 't', long = "type")]
    dep_type: Option<String>,
}

pub fn dep_remove(ctx: &Ctx, a: DepRemoveArgs) -> Result<()> {
    let ws = ctx.workspace()?;
    let undepend = Change::Undepend {
        on: a.depends_on.clone(),
        dep_type: a.dep_type.clone(),
    };
    let m = change::edit(&ws, std::slice::from_ref(&a.id), &undepend)?;
    finish(ctx, &m);
    let Some(e) = m.value.first() else {
        return Ok(());
    };
    let (from, to) = (&e.id, e.other.as_deref().unwrap_or_default());
    if ctx.global.json {
        return output::write_json(
            &mut ctx.out(),
            &json!({"status": "removed", "issue_id": from, "depends_on_id": to}),
        );
    }
    ctx.say(&ctx.paint.ok(&format!(
        "Removed dependency: {from} no longer depends on {to}"
    )))
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct LabelArgs {
    /// One or more bead ids, then the label.
    #[arg(required = true, num_args = 2.., value_name = "ID... LABEL")]
    args: Vec<String>,
}

pub fn label(ctx: &Ctx, a: LabelArgs, add: bool) -> Result<()> {
    let Some((label, ids)) = a.args.split_last() else {
        return Err(Error::Usage("usage: loom label add <id>... <label>".into()));
    };
    let labels = edit::parse_labels(std::slice::from_ref(label))?;
    if labels.is_empty() {
        return Err(Error::Usage(format!(
            "{label:?} is not a label: give one or more, comma-separated"
        )));
    }
    let ws = ctx.workspace()?;
    let (adding, removing) = if add {
        (labels.clone(), Vec::new())
    } else {
        (Vec::new(), labels.clone())
    };
    let label_change = Change::Label {
        add: adding,
        remove: removing,
    };
    let m = change::edit(&ws, ids, &label_change)?;
    finish(ctx, &m);
    let edited = ids_of(&m);
    let verb = if add { "added" } else { "removed" };
    if ctx.global.json {
        let items: Vec<_> = edited
            .iter()
            .flat_map(|id| {
                labels
                    .iter()
                    .map(move |l| json!({"issue_id": id, "label": l, "status": verb}))
            })
            .collect();
        return output::write_json_array(&mut ctx.out(), items);
    }
    let prep = if add { "to" } else { "from" };
    for id in &edited {
        if !m.applied.changes.iter().any(|c| &c.id == id) {
            ctx.say(&format!("{id}: no change"))?;
            continue;
        }
        for l in &labels {
            let verb = if add { "Added" } else { "Removed" };
            ctx.say(&ctx.paint.ok(&format!("{verb} label '{l}' {prep} {id}")))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct CommentArgs {
    /// The bead to comment on.
    id: String,
    /// The comment text (or --file).
    text: Vec<String>,
    /// Read the text from a file (`-` for stdin).
    #[arg(short, long)]
    file: Option<std::path::PathBuf>,
    /// Author (default: the actor).
    #[arg(short, long)]
    author: Option<String>,
}

pub fn comment(ctx: &Ctx, a: CommentArgs) -> Result<()> {
    let text = match &a.file {
        Some(f) if f.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| Error::io("<stdin>", e))?;
            s
        }
        Some(f) => std::fs::read_to_string(f).map_err(|e| Error::io(f, e))?,
        None => a.text.join(" "),
    };
    let text = text.trim_end().to_owned();
    if text.trim().is_empty() {
        return Err(Error::Usage(
            "the comment is empty: give text or --file".into(),
        ));
    }
    let ws = ctx.workspace()?;
    let author = a.author.clone().unwrap_or_else(|| ws.actor.clone());
    let comment = Change::Comment { author, text };
    let m = change::edit(&ws, std::slice::from_ref(&a.id), &comment)?;
    finish(ctx, &m);
    let Some(c) = m.value.first().and_then(|e| e.comment.as_ref()) else {
        return Ok(());
    };
    if ctx.global.json {
        return output::write_json(&mut ctx.out(), c);
    }
    ctx.say(&ctx.paint.ok(&format!("Comment added to {}", c.issue_id)))
}
