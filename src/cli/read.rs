//! Commands that only read: list, show, ready, blocked, stats, dep tree, log.

use std::io::Write;

use clap::Args;
use serde_json::json;

use crate::bead::graph::{self, Graph, ReadyFilter, SortPolicy};
use crate::bead::{self, Bead, id as bead_id, status};
use crate::error::{Error, Result};
use crate::store::{Severity, Snapshot, resolve_error};
use crate::workspace::Workspace;

use super::output::{self, Table, stdout_err, truncate};
use super::{Ctx, priority_arg, split_list};

/// Refuses `-s` values that are neither bd's statuses, `status.custom` ones, `tombstone` nor
/// `all` (bd's rule), naming the valid ones.
fn check_statuses(ws: &Workspace, statuses: &[String]) -> Result<()> {
    let custom = ws.layout().custom_statuses()?;
    for s in statuses {
        let known =
            crate::ops::edit::is_known_status(&custom, s) || s == "all" || s == status::TOMBSTONE;
        if !known {
            let mut valid: Vec<&str> = crate::ops::edit::BD_STATUSES.to_vec();
            valid.extend(custom.iter().map(String::as_str));
            return Err(Error::Usage(format!(
                "invalid status {s:?} (valid: {}, or all)",
                valid.join(", ")
            )));
        }
    }
    Ok(())
}

/// Loads the store for reading (index-only where that is faster; see
/// [`Snapshot::full`]), reporting unreadable records on stderr (they are kept on disk).
pub(super) fn load(ctx: &Ctx, ws: &Workspace) -> Result<Snapshot> {
    let snap = ws.store.load_index()?;
    report_unreadable(ctx, &snap);
    Ok(snap)
}

/// Prints unreadable records as warnings (at most ten, then a count).
pub(super) fn report_unreadable(ctx: &Ctx, snap: &Snapshot) {
    let errors: Vec<_> = snap
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .collect();
    const SHOWN: usize = 10;
    for p in errors.iter().take(SHOWN) {
        ctx.warn(&p.to_string());
    }
    if errors.len() > SHOWN {
        ctx.warn(&format!(
            "… and {} more unreadable records; `loom doctor` lists them all",
            errors.len() - SHOWN
        ));
    }
}

/// Ends a read command: the process exits next, so the snapshot is not freed bead by bead
/// (tens of milliseconds on 100k beads). The OS reclaims it.
pub(super) fn finish(snap: Snapshot, result: Result<()>) -> Result<()> {
    std::mem::forget(snap);
    result
}

/// Resolves a (partial) id against a snapshot.
pub(super) fn resolve(snap: &Snapshot, query: &str) -> Result<String> {
    let query = query.trim();
    let kept = snap.problems.iter().filter_map(|p| p.id.as_deref());
    bead_id::resolve(snap.beads.iter().map(|b| b.id.as_str()).chain(kept), query)
        .map_err(|c| resolve_error(query, c))
}

/// One line per bead: id, priority, type, status, title, assignee, labels.
fn bead_rows(ctx: &Ctx, beads: &[&Bead]) -> Table {
    let p = &ctx.paint;
    let width = terminal_width();
    let mut t = Table::default();
    for b in beads {
        let mut tail = String::new();
        if let Some(a) = b.assignee.as_deref().filter(|a| !a.is_empty()) {
            tail.push_str(&p.dim(&format!(" @{a}")));
        }
        if !b.labels.is_empty() {
            tail.push_str(&p.dim(&format!(" [{}]", b.labels.join(", "))));
        }
        let title = match width {
            Some(w) => truncate(&inert(&b.title), w.saturating_sub(48).max(24)),
            None => inert(&b.title).into_owned(),
        };
        t.row(vec![
            p.bold(&b.id),
            p.priority(b.priority),
            inert(&b.issue_type).into_owned(),
            p.status(&b.status),
            format!("{title}{tail}"),
        ]);
    }
    t
}

use crate::text::inert;

/// `b` with every text field made inert (control characters and escape sequences shown
/// visibly), for human output.
fn inert_bead(b: &Bead) -> std::borrow::Cow<'_, Bead> {
    let all = |s: &str| s.chars().any(crate::text::is_unsafe_char);
    let opt = |s: &Option<String>| s.as_deref().is_some_and(all);
    let dirty = all(&b.id)
        || all(&b.title)
        || all(&b.status)
        || all(&b.issue_type)
        || [
            &b.description,
            &b.design,
            &b.acceptance_criteria,
            &b.notes,
            &b.assignee,
            &b.owner,
            &b.created_by,
            &b.close_reason,
            &b.external_ref,
        ]
        .into_iter()
        .any(opt)
        || b.labels.iter().any(|l| all(l))
        || b.dependencies
            .iter()
            .any(|d| all(&d.depends_on_id) || all(&d.dep_type))
        || b.comments.iter().any(|c| all(&c.author) || all(&c.text))
        || b.metadata.as_ref().is_some_and(|m| all(&m.to_string()));
    if !dirty {
        return std::borrow::Cow::Borrowed(b);
    }
    let fix = |s: &mut String| *s = inert(s).into_owned();
    let mut c = b.clone();
    for s in [&mut c.id, &mut c.title, &mut c.status, &mut c.issue_type] {
        fix(s);
    }
    for s in [
        &mut c.description,
        &mut c.design,
        &mut c.acceptance_criteria,
        &mut c.notes,
        &mut c.assignee,
        &mut c.owner,
        &mut c.created_by,
        &mut c.close_reason,
        &mut c.external_ref,
    ]
    .into_iter()
    .flatten()
    {
        fix(s);
    }
    c.labels.iter_mut().for_each(fix);
    for d in &mut c.dependencies {
        fix(&mut d.depends_on_id);
        fix(&mut d.dep_type);
    }
    for cm in &mut c.comments {
        fix(&mut cm.author);
        fix(&mut cm.text);
    }
    if let Some(m) = &mut c.metadata {
        let text = inert(&m.to_string()).into_owned();
        *m = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    }
    std::borrow::Cow::Owned(c)
}

fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    crossterm::terminal::size()
        .ok()
        .map(|(w, _)| usize::from(w))
}

pub(super) fn print_beads(ctx: &Ctx, snap: &Snapshot, beads: &[&Bead], empty: &str) -> Result<()> {
    let mut out = ctx.out();
    if ctx.global.json {
        return output::write_json_array(&mut out, beads.iter().map(|b| snap.full(b)));
    }
    if beads.is_empty() {
        if !ctx.global.quiet {
            writeln!(out, "{empty}").map_err(stdout_err)?;
        }
        return Ok(());
    }
    if ctx.global.quiet {
        for b in beads {
            writeln!(out, "{}", b.id).map_err(stdout_err)?;
        }
        return Ok(());
    }
    bead_rows(ctx, beads).write(&mut out).map_err(stdout_err)
}

fn limit<'a>(ctx: &Ctx, mut beads: Vec<&'a Bead>, n: usize, what: &str) -> Vec<&'a Bead> {
    if n != 0 && beads.len() > n {
        if !ctx.global.json && !ctx.global.quiet {
            eprintln!(
                "Showing {n} of {} {what}; use -n 0 to show all.",
                beads.len()
            );
        }
        beads.truncate(n);
    }
    beads
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only these statuses (comma-separated; `all` for every status).
    #[arg(short, long, value_delimiter = ',')]
    status: Vec<String>,
    /// Only this priority (0-4 or P0-P4).
    #[arg(short, long)]
    priority: Option<String>,
    #[command(flatten)]
    who: WhoFilter,
    /// Only beads whose title contains this text (case-insensitive).
    #[arg(long)]
    title: Option<String>,
    /// At most N beads (default 50; 0 = no limit).
    #[arg(short = 'n', long)]
    limit: Option<usize>,
    /// Include closed and pinned beads, with no limit unless -n is given.
    #[arg(long)]
    all: bool,
    /// Order: priority, created, updated, closed, status, id, title, type, assignee.
    #[arg(long, default_value = "priority")]
    sort: String,
    /// Reverse the order.
    #[arg(short, long)]
    reverse: bool,
    /// Only direct children of this bead (its parent-child dependents, and `<id>.N` beads
    /// that have no parent-child dependency).
    #[arg(long, value_name = "ID")]
    parent: Option<String>,
}

/// Filters by who, what type and which labels (`list`, `search`, `count`).
#[derive(Debug, Default, Args)]
pub struct WhoFilter {
    /// Only beads assigned to this person.
    #[arg(short, long)]
    pub assignee: Option<String>,
    /// Only this type.
    #[arg(short = 't', long = "type")]
    pub issue_type: Option<String>,
    /// Only beads with all these labels (repeatable, comma-separated).
    #[arg(short, long = "label")]
    pub labels: Vec<String>,
    /// Only beads with at least one of these labels.
    #[arg(long, value_delimiter = ',')]
    pub label_any: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ChildrenArgs {
    /// The parent bead.
    id: String,
}

/// `loom children <id>`: bd's shorthand for `list --parent <id> --status all`.
pub fn children(ctx: &Ctx, a: ChildrenArgs) -> Result<()> {
    list(
        ctx,
        ListArgs {
            status: vec!["all".into()],
            priority: None,
            who: WhoFilter::default(),
            title: None,
            limit: None,
            all: false,
            sort: "priority".into(),
            reverse: false,
            parent: Some(a.id),
        },
    )
}

/// Whether `b` is a direct child of `parent` (bd's `--parent` rule).
fn child_of(b: &Bead, parent: &str) -> bool {
    let mut links = b
        .dependencies
        .iter()
        .filter(|d| d.dep_type == bead::dep_type::PARENT_CHILD)
        .peekable();
    if links.peek().is_none() {
        return b
            .id
            .strip_prefix(parent)
            .is_some_and(|rest| rest.starts_with('.'));
    }
    links.any(|d| d.depends_on_id == parent)
}

pub(super) fn list_sort(beads: &mut [&Bead], key: &str) -> Result<()> {
    let time = |t: &Option<bead::Timestamp>| {
        std::cmp::Reverse(t.as_ref().map_or(i128::MIN, |t| t.sort_key()))
    };
    match key {
        "priority" => beads.sort_by(|a, b| graph::priority_order(a, b)),
        "created" => beads.sort_by_key(|b| (time(&b.created_at), b.id.clone())),
        "updated" => beads.sort_by_key(|b| (time(&b.updated_at), b.id.clone())),
        "closed" => beads.sort_by_key(|b| (time(&b.closed_at), b.id.clone())),
        "status" => beads.sort_by(|a, b| {
            a.status
                .cmp(&b.status)
                .then_with(|| graph::priority_order(a, b))
        }),
        "id" => beads.sort_by(|a, b| a.id.cmp(&b.id)),
        "title" => beads.sort_by_key(|b| (b.title.to_lowercase(), b.id.clone())),
        "type" => beads.sort_by(|a, b| {
            a.issue_type
                .cmp(&b.issue_type)
                .then_with(|| graph::priority_order(a, b))
        }),
        "assignee" => beads.sort_by(|a, b| {
            a.assignee
                .cmp(&b.assignee)
                .then_with(|| graph::priority_order(a, b))
        }),
        other => {
            return Err(Error::Usage(format!(
                "invalid sort key '{other}': use priority, created, updated, closed, status, id, title, type or assignee"
            )));
        }
    }
    Ok(())
}

pub fn list(ctx: &Ctx, a: ListArgs) -> Result<()> {
    let ws = ctx.workspace()?;
    let snap = load(ctx, &ws)?;
    let statuses = split_list(&a.status);
    let all_statuses = statuses.iter().any(|s| s == "all");
    check_statuses(&ws, &statuses)?;
    let parent = a.parent.as_deref().map(|p| resolve(&snap, p)).transpose()?;
    let filter = ReadyFilter {
        assignee: a.who.assignee.clone(),
        priority: a.priority.as_deref().map(priority_arg).transpose()?,
        labels: split_list(&a.who.labels),
        labels_any: split_list(&a.who.label_any),
        ..ReadyFilter::default()
    };
    let title = a.title.as_deref().map(str::to_lowercase);
    let mut beads: Vec<&Bead> = snap
        .beads
        .iter()
        .filter(|b| {
            if !statuses.is_empty() && !all_statuses {
                statuses.contains(&b.status)
            } else if b.status == status::TOMBSTONE {
                false
            } else {
                a.all
                    || all_statuses
                    || !matches!(b.status.as_str(), status::CLOSED | status::PINNED)
            }
        })
        .filter(|b| a.who.issue_type.as_ref().is_none_or(|t| &b.issue_type == t))
        .filter(|b| {
            title
                .as_ref()
                .is_none_or(|t| b.title.to_lowercase().contains(t))
        })
        .filter(|b| graph::matches_common(b, &filter))
        .filter(|b| parent.as_deref().is_none_or(|p| child_of(b, p)))
        .collect();
    list_sort(&mut beads, &a.sort)?;
    if a.reverse {
        beads.reverse();
    }
    let n = a.limit.unwrap_or(if a.all { 0 } else { 50 });
    let beads = limit(ctx, beads, n, "beads");
    let result = print_beads(ctx, &snap, &beads, "No beads.");
    drop(beads);
    finish(snap, result)
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Bead ids (full or unique prefixes).
    #[arg(required = true)]
    ids: Vec<String>,
}

pub fn show(ctx: &Ctx, a: ShowArgs) -> Result<()> {
    let ws = ctx.workspace()?;
    let snap = load(ctx, &ws)?;
    let g = Graph::new(&snap.beads);
    let mut found = Vec::new();
    for q in &a.ids {
        let id = resolve(&snap, q)?;
        match g.get(&id) {
            Some(b) => found.push(b),
            None => {
                let p = snap
                    .problems
                    .iter()
                    .find(|p| p.id.as_deref() == Some(id.as_str()));
                return Err(match p {
                    Some(p) => Error::Malformed {
                        id,
                        location: p.location(),
                        message: p.message.clone(),
                    },
                    None => Error::NotFound(id),
                });
            }
        }
    }
    let found: Vec<std::borrow::Cow<'_, Bead>> = found.into_iter().map(|b| snap.full(b)).collect();
    let mut out = ctx.out();
    if ctx.global.json {
        return match found.as_slice() {
            [one] => output::write_json(&mut out, one.as_ref()),
            many => output::write_json_array(&mut out, many),
        };
    }
    for (i, b) in found.iter().enumerate() {
        if i > 0 {
            writeln!(out).map_err(stdout_err)?;
        }
        let warnings: Vec<&str> = snap
            .problems
            .iter()
            .filter(|p| p.id.as_deref() == Some(b.id.as_str()))
            .map(|p| p.message.as_str())
            .collect();
        write_detail(ctx, &mut out, &g, b.as_ref(), &warnings).map_err(stdout_err)?;
    }
    Ok(())
}

fn write_detail(
    ctx: &Ctx,
    out: &mut impl Write,
    g: &Graph<'_>,
    b: &Bead,
    warnings: &[&str],
) -> std::io::Result<()> {
    let p = &ctx.paint;
    // Every field of a bead is data: shown inert (also with colour on, where the writer lets
    // colour sequences through).
    let b = &inert_bead(b);
    let state = if g.is_ready(b, &ReadyFilter::default(), jiff::Timestamp::now()) {
        p.paint(" ready", crossterm::style::Color::Green)
    } else if g.is_blocked(&b.id) {
        p.paint(" blocked", crossterm::style::Color::Red)
    } else {
        String::new()
    };
    writeln!(out, "{}  {}", p.bold(&b.id), p.bold(&b.title))?;
    writeln!(
        out,
        "{}  {}  {}{state}",
        p.priority(b.priority),
        b.issue_type,
        p.status(&b.status)
    )?;
    let mut fields = Table::default();
    let mut field = |name: &str, value: String| fields.row(vec![p.dim(name), value]);
    if let Some(a) = &b.assignee {
        field("assignee", a.clone());
    }
    if let Some(o) = &b.owner {
        field("owner", o.clone());
    }
    if !b.labels.is_empty() {
        field("labels", b.labels.join(", "));
    }
    let now = jiff::Timestamp::now();
    let when = |t: &Option<bead::Timestamp>| t.as_ref().map(|t| output::readable_time(t, now));
    if let Some(c) = when(&b.created_at) {
        let by = b
            .created_by
            .as_deref()
            .map(|c| format!(" by {c}"))
            .unwrap_or_default();
        field("created", format!("{c}{by}"));
    }
    if let Some(u) = when(&b.updated_at) {
        field("updated", u);
    }
    if let Some(c) = when(&b.closed_at) {
        let why = b
            .close_reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        field("closed", format!("{c}{why}"));
    }
    if let Some(d) = when(&b.due_at) {
        field("due", d);
    }
    if let Some(d) = when(&b.defer_until) {
        field("deferred until", d);
    }
    if let Some(r) = &b.external_ref {
        field("external ref", r.clone());
    }
    if let Some(loom) = b.loom_metadata() {
        for (k, v) in loom {
            field(
                &format!("loom.{k}"),
                v.to_string().trim_matches('"').to_owned(),
            );
        }
    }
    fields.write(out)?;
    for (title, text) in [
        ("Description", &b.description),
        ("Design", &b.design),
        ("Acceptance criteria", &b.acceptance_criteria),
        ("Notes", &b.notes),
    ] {
        if let Some(text) = text.as_deref().filter(|t| !t.trim().is_empty()) {
            writeln!(out, "\n{}", p.bold(title))?;
            for line in text.trim_end().lines() {
                writeln!(out, "  {line}")?;
            }
        }
    }
    let name = |id: &str| match g.get(id) {
        Some(t) => format!("{}  {}", p.status(&t.status), inert(&t.title)),
        None => p.dim("(not found)"),
    };
    if !b.dependencies.is_empty() {
        writeln!(out, "\n{}", p.bold("Depends on"))?;
        let mut t = Table::default();
        for d in &b.dependencies {
            t.row(vec![
                format!("  → {}", d.depends_on_id),
                p.dim(&d.dep_type),
                name(&d.depends_on_id),
            ]);
        }
        t.write(out)?;
    }
    let dependents = g.dependents(&b.id);
    if !dependents.is_empty() {
        writeln!(out, "\n{}", p.bold("Needed by"))?;
        let mut t = Table::default();
        for (s, d) in dependents {
            t.row(vec![
                format!("  ← {}", s.id),
                p.dim(&d.dep_type),
                name(&s.id),
            ]);
        }
        t.write(out)?;
    }
    if !b.comments.is_empty() {
        writeln!(out, "\n{}", p.bold("Comments"))?;
        for c in &b.comments {
            let at = c.created_at.as_ref().map(|t| t.as_str()).unwrap_or("");
            writeln!(out, "  {} {}", p.bold(&c.author), p.dim(at))?;
            for line in c.text.lines() {
                writeln!(out, "    {line}")?;
            }
        }
    }
    for w in warnings {
        let w = inert(w);
        writeln!(
            out,
            "\n{} {w}",
            p.paint("warning:", crossterm::style::Color::Yellow)
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct ReadyArgs {
    /// At most N beads (default 100; 0 = no limit).
    #[arg(short = 'n', long, default_value_t = 100)]
    limit: usize,
    /// Only this priority (0-4 or P0-P4).
    #[arg(short, long)]
    priority: Option<String>,
    /// Only beads assigned to this person.
    #[arg(short, long)]
    assignee: Option<String>,
    /// Only unassigned beads.
    #[arg(short, long)]
    unassigned: bool,
    /// Order: priority (default), oldest, hybrid.
    #[arg(short, long, default_value = "priority")]
    sort: String,
    /// Only beads with all these labels (repeatable, comma-separated).
    #[arg(short, long = "label")]
    labels: Vec<String>,
    /// Only beads with at least one of these labels.
    #[arg(long, value_delimiter = ',')]
    label_any: Vec<String>,
    /// Only this type (also shows infrastructure types such as gate).
    #[arg(short = 't', long = "type")]
    issue_type: Option<String>,
    /// Only descendants of this bead.
    #[arg(long)]
    parent: Option<String>,
    /// Include beads deferred to the future.
    #[arg(long)]
    include_deferred: bool,
    /// Include ephemeral beads.
    #[arg(long)]
    include_ephemeral: bool,
}

pub fn ready(ctx: &Ctx, a: ReadyArgs) -> Result<()> {
    let sort: SortPolicy = a.sort.parse().map_err(Error::Usage)?;
    let ws = ctx.workspace()?;
    let snap = load(ctx, &ws)?;
    let parent = a.parent.as_deref().map(|p| resolve(&snap, p)).transpose()?;
    let filter = ReadyFilter {
        assignee: a.assignee,
        unassigned: a.unassigned,
        priority: a.priority.as_deref().map(priority_arg).transpose()?,
        labels: split_list(&a.labels),
        labels_any: split_list(&a.label_any),
        issue_type: a.issue_type,
        include_deferred: a.include_deferred,
        include_ephemeral: a.include_ephemeral,
        parent,
    };
    let g = Graph::new(&snap.beads);
    let beads = g.ready(&filter, sort, jiff::Timestamp::now());
    let beads = limit(ctx, beads, a.limit, "ready beads");
    let result = print_beads(ctx, &snap, &beads, "No ready beads.");
    drop(beads);
    std::mem::forget(g);
    finish(snap, result)
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct BlockedArgs {
    /// Only descendants of this bead.
    #[arg(long)]
    parent: Option<String>,
}

pub fn blocked(ctx: &Ctx, a: BlockedArgs) -> Result<()> {
    let ws = ctx.workspace()?;
    let snap = load(ctx, &ws)?;
    let parent = a.parent.as_deref().map(|p| resolve(&snap, p)).transpose()?;
    let g = Graph::new(&snap.beads);
    let blocked: Vec<_> = g
        .blocked()
        .into_iter()
        .filter(|b| {
            parent
                .as_deref()
                .is_none_or(|p| g.is_descendant_of(b.bead, p))
        })
        .collect();
    let mut out = ctx.out();
    if ctx.global.json {
        let items = blocked
            .iter()
            .map(|b| {
                output::bead_with(
                    &snap.full(b.bead),
                    &[
                        ("blocked_by_count", json!(b.blocked_by.len())),
                        ("blocked_by", json!(b.blocked_by)),
                    ],
                )
            })
            .collect::<Result<Vec<_>>>()?;
        return output::write_json_array(&mut out, items);
    }
    if blocked.is_empty() {
        return writeln!(out, "No blocked beads.").map_err(stdout_err);
    }
    let p = &ctx.paint;
    let mut t = Table::default();
    for b in &blocked {
        t.row(vec![
            p.bold(&b.bead.id),
            p.priority(b.bead.priority),
            inert(&b.bead.title).into_owned(),
            p.dim(&format!("← {}", b.blocked_by.join(", "))),
        ]);
    }
    t.write(&mut out).map_err(stdout_err)
}
