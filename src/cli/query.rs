//! bd's query commands: `search`, `count`, `stale`, `children`, `epic status`, `dep cycles`,
//! `label list`, `label list-all` and `comments`, with bd's flags, text and JSON shapes.

use std::collections::BTreeMap;
use std::io::Write;

use clap::Args;
use serde_json::json;

use crate::bead::graph::{self, Graph};
use crate::bead::{Bead, FastMap, FastSet, dep_type, issue_type, status};
use crate::error::{Error, Result};
use crate::text::inert;

use super::output::{self, stdout_err};
use super::read::{WhoFilter, finish, list_sort, load, resolve};
use super::{Ctx, priority_arg, split_list};

/// Filters `search` and `count` share (bd's names).
#[derive(Debug, Args)]
pub struct Filters {
    /// Only this status (`all` for every one).
    #[arg(short, long)]
    status: Option<String>,
    #[command(flatten)]
    who: WhoFilter,
    /// Lowest priority number (0-4 or P0-P4).
    #[arg(long)]
    priority_min: Option<String>,
    /// Highest priority number (0-4 or P0-P4).
    #[arg(long)]
    priority_max: Option<String>,
    /// Only beads whose description contains this text (case-insensitive).
    #[arg(long)]
    desc_contains: Option<String>,
    /// Only beads whose notes contain this text (case-insensitive).
    #[arg(long)]
    notes_contains: Option<String>,
    /// Only beads without a description.
    #[arg(long)]
    empty_description: bool,
    /// Only beads nobody is assigned to.
    #[arg(long)]
    no_assignee: bool,
    /// Only beads without labels.
    #[arg(long)]
    no_labels: bool,
}

/// [`Filters`] checked and ready to apply.
struct Filter {
    status: Option<String>,
    all: bool,
    assignee: Option<String>,
    issue_type: Option<String>,
    labels: Vec<String>,
    label_any: Vec<String>,
    priority: (i64, i64),
    desc: Option<String>,
    notes: Option<String>,
    empty_description: bool,
    no_assignee: bool,
    no_labels: bool,
}

impl Filters {
    /// `closed_by_default`: without `-s`, closed beads count (bd's `count`) or not (`search`).
    fn check(&self, closed_by_default: bool) -> Result<Filter> {
        let p = |v: &Option<String>, d| {
            v.as_deref()
                .map(priority_arg)
                .transpose()
                .map(|p| p.unwrap_or(d))
        };
        let status = self
            .status
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        Ok(Filter {
            all: status == Some("all") || (status.is_none() && closed_by_default),
            status: status.filter(|s| *s != "all").map(str::to_owned),
            assignee: self.who.assignee.clone(),
            issue_type: self.who.issue_type.clone(),
            labels: split_list(&self.who.labels),
            label_any: split_list(&self.who.label_any),
            priority: (p(&self.priority_min, 0)?, p(&self.priority_max, i64::MAX)?),
            desc: self.desc_contains.as_deref().map(str::to_lowercase),
            notes: self.notes_contains.as_deref().map(str::to_lowercase),
            empty_description: self.empty_description,
            no_assignee: self.no_assignee,
            no_labels: self.no_labels,
        })
    }
}

fn contains(text: &Option<String>, needle: &Option<String>) -> bool {
    needle.as_ref().is_none_or(|n| {
        text.as_deref()
            .is_some_and(|t| t.to_lowercase().contains(n))
    })
}

impl Filter {
    /// Whether `b` passes (`b` complete where text filters are used).
    fn keeps(&self, b: &Bead) -> bool {
        if b.status == status::TOMBSTONE || b.ephemeral == Some(true) {
            return false;
        }
        let status_ok = match &self.status {
            Some(s) => &b.status == s,
            None => self.all || b.status != status::CLOSED,
        };
        let empty = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
        status_ok
            && self
                .assignee
                .as_ref()
                .is_none_or(|a| b.assignee.as_ref() == Some(a))
            && self.issue_type.as_ref().is_none_or(|t| &b.issue_type == t)
            && self.labels.iter().all(|l| b.labels.contains(l))
            && (self.label_any.is_empty() || self.label_any.iter().any(|l| b.labels.contains(l)))
            && (self.priority.0..=self.priority.1).contains(&b.priority)
            && contains(&b.description, &self.desc)
            && contains(&b.notes, &self.notes)
            && (!self.empty_description || empty(&b.description))
            && (!self.no_assignee || empty(&b.assignee))
            && (!self.no_labels || b.labels.is_empty())
    }

    fn needs_text(&self) -> bool {
        self.desc.is_some() || self.notes.is_some() || self.empty_description
    }
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words to look for in titles and ids (case-insensitive).
    query: Vec<String>,
    /// The query, as a flag.
    #[arg(long = "query", value_name = "TEXT")]
    query_flag: Option<String>,
    #[command(flatten)]
    filters: Filters,
    /// At most N results (0 = no limit).
    #[arg(short = 'n', long, default_value_t = 50)]
    limit: usize,
    /// Order: priority, created, updated, closed, status, id, title, type, assignee.
    #[arg(long)]
    sort: Option<String>,
    /// Reverse the order.
    #[arg(short, long)]
    reverse: bool,
    /// Several lines per result.
    #[arg(long)]
    long: bool,
}

/// bd's test for a query that is an id: a `-` inside, no spaces, only `[A-Za-z0-9.-]`.
fn looks_like_id(q: &str) -> bool {
    q.find('-').is_some_and(|i| i > 0 && i + 1 < q.len())
        && q.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// bd's query match: id-like queries match the id exactly or by prefix, the title or the
/// external reference; others the title or anywhere in the id.
fn query_matches(b: &Bead, q: &str) -> bool {
    let title = b.title.to_lowercase().contains(q);
    if looks_like_id(q) {
        let id = b.id.to_lowercase();
        id == q
            || id.starts_with(q)
            || title
            || b.external_ref
                .as_deref()
                .is_some_and(|e| e.to_lowercase().contains(q))
    } else {
        title || b.id.to_lowercase().contains(q)
    }
}

pub fn search(ctx: &Ctx, a: SearchArgs) -> Result<()> {
    let query = match (&a.query_flag, a.query.is_empty()) {
        (Some(q), true) => q.clone(),
        (None, false) => a.query.join(" "),
        (Some(_), false) => {
            return Err(Error::Usage(
                "give the query once: as words or with --query".into(),
            ));
        }
        (None, true) => {
            return Err(Error::Usage(
                "search query is required: loom search \"login bug\"".into(),
            ));
        }
    };
    let q = query.trim().to_lowercase();
    let filter = a.filters.check(false)?;
    let ws = ctx.workspace()?;
    let snap = load(ctx, &ws)?;
    let mut found: Vec<&Bead> = snap
        .beads
        .iter()
        .filter(|b| query_matches(b, &q))
        .filter(|b| {
            if filter.needs_text() {
                filter.keeps(&snap.full(b))
            } else {
                filter.keeps(b)
            }
        })
        .collect();
    list_sort(&mut found, a.sort.as_deref().unwrap_or("priority"))?;
    if a.reverse {
        found.reverse();
    }
    if a.limit != 0 {
        found.truncate(a.limit);
    }
    let mut out = ctx.out();
    let result = if ctx.global.json {
        // bd's IssueWithCounts: each bead with its dependency, dependent and comment counts.
        let graph = Graph::new(&snap.beads);
        let items = found
            .iter()
            .map(|b| {
                let full = snap.full(b);
                output::bead_with(
                    &full,
                    &[
                        ("dependency_count", json!(full.dependencies.len())),
                        ("dependent_count", json!(graph.dependents(&b.id).len())),
                        ("comment_count", json!(full.comments.len())),
                    ],
                )
            })
            .collect::<Result<Vec<_>>>()?;
        output::write_json_array(&mut out, items)
    } else if found.is_empty() {
        ctx.say(&format!("No issues found matching '{}'", inert(&query)))
    } else {
        print_found(ctx, &mut out, &query, &found, a.long)
    };
    drop(found);
    finish(snap, result)
}

fn print_found(
    ctx: &Ctx,
    out: &mut dyn Write,
    query: &str,
    found: &[&Bead],
    long: bool,
) -> Result<()> {
    if ctx.global.quiet {
        for b in found {
            writeln!(out, "{}", b.id).map_err(stdout_err)?;
        }
        return Ok(());
    }
    let noun = if found.len() == 1 { "issue" } else { "issues" };
    let head = format!("Found {} {noun} matching '{}':", found.len(), inert(query));
    if long {
        writeln!(out, "\n{head}\n").map_err(stdout_err)?;
    } else {
        writeln!(out, "{head}").map_err(stdout_err)?;
    }
    let p = &ctx.paint;
    for b in found {
        let kind = format!(
            "[P{}] [{}] {}",
            b.priority,
            inert(&b.issue_type),
            p.status(&b.status)
        );
        if long {
            writeln!(out, "{} {kind}\n  {}", p.bold(&b.id), inert(&b.title)).map_err(stdout_err)?;
            if let Some(a) = b.assignee.as_deref().filter(|a| !a.is_empty()) {
                writeln!(out, "  Assignee: {}", inert(a)).map_err(stdout_err)?;
            }
            if !b.labels.is_empty() {
                writeln!(out, "  Labels: [{}]", inert(&b.labels.join(" "))).map_err(stdout_err)?;
            }
            writeln!(out).map_err(stdout_err)?;
            continue;
        }
        let mut line = format!("{} {kind}", p.bold(&b.id));
        if let Some(a) = b.assignee.as_deref().filter(|a| !a.is_empty()) {
            line.push_str(&format!(" @{}", inert(a)));
        }
        if !b.labels.is_empty() {
            line.push_str(&format!(" [{}]", inert(&b.labels.join(" "))));
        }
        writeln!(out, "{line} - {}", inert(&b.title)).map_err(stdout_err)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("by").multiple(false).args(
    ["by_status", "by_priority", "by_type", "by_assignee", "by_label"])))]
pub struct CountArgs {
    #[command(flatten)]
    filters: Filters,
    /// Only this priority (0-4 or P0-P4).
    #[arg(short, long)]
    priority: Option<String>,
    /// Only beads whose title contains this text (case-insensitive).
    #[arg(long, alias = "title-contains")]
    title: Option<String>,
    /// Only these ids (comma-separated).
    #[arg(long = "id", value_delimiter = ',')]
    ids: Vec<String>,
    /// Count per status.
    #[arg(long)]
    by_status: bool,
    /// Count per priority (P0…P4).
    #[arg(long)]
    by_priority: bool,
    /// Count per type.
    #[arg(long)]
    by_type: bool,
    /// Count per assignee (`(unassigned)` for none).
    #[arg(long)]
    by_assignee: bool,
    /// Count per label (`(no labels)` for none; a bead counts once per label).
    #[arg(long)]
    by_label: bool,
}

pub fn count(ctx: &Ctx, a: CountArgs) -> Result<()> {
    let filter = a.filters.check(true)?;
    let priority = a.priority.as_deref().map(priority_arg).transpose()?;
    let title = a.title.as_deref().map(str::to_lowercase);
    let ws = ctx.workspace()?;
    let snap = load(ctx, &ws)?;
    let ids: FastSet<String> = a
        .ids
        .iter()
        .map(|q| resolve(&snap, q))
        .collect::<Result<_>>()?;
    let keep = |b: &Bead| {
        priority.is_none_or(|p| b.priority == p)
            && title
                .as_ref()
                .is_none_or(|t| b.title.to_lowercase().contains(t))
            && (ids.is_empty() || ids.contains(&b.id))
            && if filter.needs_text() {
                filter.keeps(&snap.full(b))
            } else {
                filter.keeps(b)
            }
    };
    let beads: Vec<&Bead> = snap.beads.iter().filter(|b| keep(b)).collect();
    let total = beads.len();
    let key: Option<fn(&Bead) -> Vec<String>> = if a.by_status {
        Some(|b| vec![b.status.clone()])
    } else if a.by_priority {
        Some(|b| vec![format!("P{}", b.priority)])
    } else if a.by_type {
        Some(|b| vec![b.issue_type.clone()])
    } else if a.by_assignee {
        Some(|b| {
            vec![
                b.assignee
                    .clone()
                    .filter(|a| !a.is_empty())
                    .unwrap_or_else(|| "(unassigned)".into()),
            ]
        })
    } else if a.by_label {
        Some(|b| {
            if b.labels.is_empty() {
                vec!["(no labels)".into()]
            } else {
                b.labels.clone()
            }
        })
    } else {
        None
    };
    let mut out = ctx.out();
    let Some(key) = key else {
        let result = if ctx.global.json {
            output::write_json(&mut out, &json!({"count": total, "schema_version": 1}))
        } else {
            writeln!(out, "{total}").map_err(stdout_err)
        };
        drop(beads);
        return finish(snap, result);
    };
    let mut groups: BTreeMap<String, usize> = BTreeMap::new();
    for b in &beads {
        for k in key(b) {
            *groups.entry(k).or_default() += 1;
        }
    }
    let result = if ctx.global.json {
        let groups: Vec<_> = groups
            .iter()
            .map(|(g, c)| json!({"count": c, "group": g}))
            .collect();
        output::write_json(
            &mut out,
            &json!({"groups": groups, "schema_version": 1, "total": total}),
        )
    } else {
        let mut text = format!("Total: {total}\n\n");
        for (g, c) in &groups {
            text.push_str(&format!("{}: {c}\n", inert(g)));
        }
        out.write_all(text.as_bytes()).map_err(stdout_err)
    };
    drop(beads);
    finish(snap, result)
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct StaleArgs {
    /// Not updated for at least this many days.
    #[arg(short, long, default_value_t = 30)]
    days: i64,
    /// Only this status: open, in_progress, blocked or deferred (default: open and in_progress).
    #[arg(short, long)]
    status: Option<String>,
    /// At most N beads (0 = no limit).
    #[arg(short = 'n', long, default_value_t = 50)]
    limit: usize,
}

pub fn stale(ctx: &Ctx, a: StaleArgs) -> Result<()> {
    if a.days < 1 {
        return Err(Error::Usage("--days must be at least 1".into()));
    }
    const STALE_STATUSES: [&str; 4] = [
        status::OPEN,
        status::IN_PROGRESS,
        status::BLOCKED,
        status::DEFERRED,
    ];
    let statuses: Vec<&str> = match a.status.as_deref().map(str::trim) {
        None | Some("") => vec![status::OPEN, status::IN_PROGRESS],
        Some(s) if STALE_STATUSES.contains(&s) => vec![s],
        Some(s) => {
            return Err(Error::Usage(format!(
                "invalid status '{s}'. Valid values: {}",
                STALE_STATUSES.join(", ")
            )));
        }
    };
    let now = jiff::Timestamp::now();
    let cutoff = now.as_nanosecond() - i128::from(a.days) * 86_400 * 1_000_000_000;
    let ws = ctx.workspace()?;
    let snap = load(ctx, &ws)?;
    let updated = |b: &Bead| b.updated_at.as_ref().map(|t| t.sort_key());
    let mut beads: Vec<&Bead> = snap
        .beads
        .iter()
        .filter(|b| statuses.contains(&b.status.as_str()) && b.ephemeral != Some(true))
        .filter(|b| updated(b).is_some_and(|u| u < cutoff))
        .collect();
    beads.sort_by_key(|b| (updated(b), b.id.clone()));
    if a.limit != 0 {
        beads.truncate(a.limit);
    }
    let mut out = ctx.out();
    let result = if ctx.global.json {
        output::write_json_array(&mut out, beads.iter().map(|b| snap.full(b)))
    } else if beads.is_empty() {
        ctx.say(&format!(
            "No stale beads: each was updated in the last {} days.",
            a.days
        ))
    } else {
        let mut text = format!(
            "Stale beads ({} not updated in {}+ days):\n\n",
            beads.len(),
            a.days
        );
        for (i, b) in beads.iter().enumerate() {
            let age = updated(b).map_or(0, |u| (now.as_nanosecond() - u) / 86_400_000_000_000);
            text.push_str(&format!(
                "{}. [P{}] {}: {}\n   Status: {}, last updated: {age} {} ago\n",
                i + 1,
                b.priority,
                b.id,
                inert(&b.title),
                inert(&b.status),
                if age == 1 { "day" } else { "days" }
            ));
            if let Some(who) = b.assignee.as_deref().filter(|a| !a.is_empty()) {
                text.push_str(&format!("   Assignee: {}\n", inert(who)));
            }
            text.push('\n');
        }
        out.write_all(text.as_bytes()).map_err(stdout_err)
    };
    drop(beads);
    finish(snap, result)
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct EpicStatusArgs {
    /// Only epics whose children are all closed.
    #[arg(long)]
    eligible_only: bool,
}

pub fn epic_status(ctx: &Ctx, a: EpicStatusArgs) -> Result<()> {
    let ws = ctx.workspace()?;
    let snap = load(ctx, &ws)?;
    let g = Graph::new(&snap.beads);
    let mut rows: Vec<(&Bead, usize, usize)> = Vec::new();
    for e in snap.beads.iter().filter(|b| {
        b.issue_type == issue_type::EPIC
            && !matches!(b.status.as_str(), status::CLOSED | status::TOMBSTONE)
    }) {
        let kids: Vec<&Bead> = g
            .dependents(&e.id)
            .into_iter()
            .filter(|(k, d)| d.dep_type == dep_type::PARENT_CHILD && k.status != status::TOMBSTONE)
            .map(|(k, _)| k)
            .collect();
        if kids.is_empty() {
            continue;
        }
        let closed = kids.iter().filter(|k| k.status == status::CLOSED).count();
        if a.eligible_only && closed != kids.len() {
            continue;
        }
        rows.push((e, kids.len(), closed));
    }
    rows.sort_by(|x, y| graph::priority_order(x.0, y.0));
    let mut out = ctx.out();
    let result = if ctx.global.json {
        let items: Vec<_> = rows
            .iter()
            .map(|(e, total, closed)| {
                json!({
                    "epic": snap.full(e),
                    "total_children": total,
                    "closed_children": closed,
                    "eligible_for_close": total == closed,
                })
            })
            .collect();
        output::write_json_array(&mut out, items)
    } else if rows.is_empty() {
        ctx.say("No open epics with child beads.")
    } else {
        let mut text = String::new();
        for (e, total, closed) in &rows {
            let done = total == closed;
            text.push_str(&format!(
                "{} {} {}\n   Progress: {closed}/{total} children closed ({}%)\n",
                if done { "✓" } else { "○" },
                e.id,
                inert(&e.title),
                closed * 100 / total
            ));
            if done {
                text.push_str("   Eligible for closure\n");
            }
            text.push('\n');
        }
        out.write_all(text.as_bytes()).map_err(stdout_err)
    };
    drop(rows);
    drop(g);
    finish(snap, result)
}

// ---------------------------------------------------------------------------------------------

/// Cycles over `blocks` and `conditional-blocks` (bd's `dep cycles`): each as the ids around
/// it, found by a depth-first walk; the same set of beads is reported once.
fn cycles(beads: &[Bead]) -> Vec<Vec<usize>> {
    let index: FastMap<&str, usize> = beads
        .iter()
        .enumerate()
        .map(|(i, b)| (b.id.as_str(), i))
        .collect();
    let edges: Vec<Vec<usize>> = beads
        .iter()
        .map(|b| {
            b.dependencies
                .iter()
                .filter(|d| matches!(d.dep_type.as_str(), dep_type::BLOCKS | "conditional-blocks"))
                .filter_map(|d| index.get(d.depends_on_id.as_str()).copied())
                .collect()
        })
        .collect();
    // 0 = unseen, 1 = on the current path, 2 = done.
    let mut state = vec![0u8; beads.len()];
    let mut found: Vec<Vec<usize>> = Vec::new();
    let mut seen_sets: FastSet<Vec<usize>> = FastSet::default();
    for start in 0..beads.len() {
        if state[start] != 0 {
            continue;
        }
        let mut path: Vec<usize> = vec![start];
        let mut next: Vec<usize> = vec![0];
        state[start] = 1;
        while let (Some(&node), Some(at)) = (path.last(), next.last_mut()) {
            if let Some(&to) = edges[node].get(*at) {
                *at += 1;
                match state[to] {
                    0 => {
                        state[to] = 1;
                        path.push(to);
                        next.push(0);
                    }
                    1 => {
                        if let Some(from) = path.iter().position(|&n| n == to) {
                            let cycle = path[from..].to_vec();
                            let mut key = cycle.clone();
                            key.sort_unstable();
                            if seen_sets.insert(key) {
                                found.push(cycle);
                            }
                        }
                    }
                    _ => {}
                }
            } else {
                state[node] = 2;
                path.pop();
                next.pop();
            }
        }
    }
    found
}

pub fn dep_cycles(ctx: &Ctx) -> Result<()> {
    let ws = ctx.workspace()?;
    let snap = load(ctx, &ws)?;
    let found = cycles(&snap.beads);
    let mut out = ctx.out();
    let result = if ctx.global.json {
        let items: Vec<Vec<_>> = found
            .iter()
            .map(|c| c.iter().map(|&i| snap.full(&snap.beads[i])).collect())
            .collect();
        output::write_json_array(&mut out, items)
    } else if found.is_empty() {
        ctx.say("✓ No dependency cycles detected")
    } else {
        let mut text = format!(
            "⚠ Found {} dependency {}:\n\n",
            found.len(),
            if found.len() == 1 { "cycle" } else { "cycles" }
        );
        for (n, c) in found.iter().enumerate() {
            let mut ids: Vec<&str> = c.iter().map(|&i| snap.beads[i].id.as_str()).collect();
            ids.push(ids[0]);
            text.push_str(&format!("{}. {}\n", n + 1, ids.join(" → ")));
            for &i in c {
                let b = &snap.beads[i];
                text.push_str(&format!("   - {}: {}\n", b.id, inert(&b.title)));
            }
            text.push('\n');
        }
        out.write_all(text.as_bytes()).map_err(stdout_err)
    };
    finish(snap, result)
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct LabelListArgs {
    /// The bead.
    id: String,
}

pub fn label_list(ctx: &Ctx, a: LabelListArgs) -> Result<()> {
    let ws = ctx.workspace()?;
    let snap = load(ctx, &ws)?;
    let id = resolve(&snap, &a.id)?;
    let mut labels: Vec<String> = snap
        .beads
        .iter()
        .find(|b| b.id == id)
        .map(|b| b.labels.clone())
        .unwrap_or_default();
    labels.sort();
    let mut out = ctx.out();
    let result = if ctx.global.json {
        output::write_json(&mut out, &labels)
    } else if labels.is_empty() {
        ctx.say(&format!("{id} has no labels"))
    } else {
        let mut text = format!("Labels for {id}:\n");
        for l in &labels {
            text.push_str(&format!("  - {}\n", inert(l)));
        }
        out.write_all(text.as_bytes()).map_err(stdout_err)
    };
    finish(snap, result)
}

pub fn label_list_all(ctx: &Ctx) -> Result<()> {
    let ws = ctx.workspace()?;
    let snap = load(ctx, &ws)?;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for b in snap.beads.iter().filter(|b| b.status != status::TOMBSTONE) {
        for l in &b.labels {
            *counts.entry(l.as_str()).or_default() += 1;
        }
    }
    let mut out = ctx.out();
    let result = if ctx.global.json {
        let items: Vec<_> = counts
            .iter()
            .map(|(l, c)| json!({"label": l, "count": c}))
            .collect();
        output::write_json_array(&mut out, items)
    } else if counts.is_empty() {
        ctx.say("No labels found")
    } else {
        let width = counts.keys().map(|l| l.chars().count()).max().unwrap_or(0);
        let mut text = format!("All labels ({} unique):\n", counts.len());
        for (l, c) in &counts {
            let noun = if *c == 1 { "bead" } else { "beads" };
            text.push_str(&format!("  {:width$}  ({c} {noun})\n", inert(l)));
        }
        out.write_all(text.as_bytes()).map_err(stdout_err)
    };
    drop(counts);
    finish(snap, result)
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CommentsArgs {
    #[command(subcommand)]
    pub add: Option<CommentsCommand>,
    /// The bead whose comments to list.
    pub id: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum CommentsCommand {
    /// Add a comment: `loom comments add <id> "text"`.
    Add(super::write::CommentArgs),
}

pub fn comments(ctx: &Ctx, a: CommentsArgs) -> Result<()> {
    if let Some(CommentsCommand::Add(c)) = a.add {
        return super::write::comment(ctx, c);
    }
    let Some(query) = a.id else {
        return Err(Error::Usage(
            "name the bead: loom comments <id>, or loom comments add <id> \"text\"".into(),
        ));
    };
    let ws = ctx.workspace()?;
    let snap = load(ctx, &ws)?;
    let id = resolve(&snap, &query)?;
    let bead = snap.beads.iter().find(|b| b.id == id).map(|b| snap.full(b));
    let mut comments = bead.map(|b| b.comments.clone()).unwrap_or_default();
    comments.sort_by_key(|c| c.created_at.as_ref().map(|t| t.sort_key()));
    let mut out = ctx.out();
    let result = if ctx.global.json {
        output::write_json_array(&mut out, &comments)
    } else if comments.is_empty() {
        ctx.say(&format!("No comments on {id}"))
    } else {
        let mut text = format!("Comments on {id}:\n\n");
        for c in &comments {
            let when = c
                .created_at
                .as_ref()
                .and_then(|t| t.instant())
                .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default();
            text.push_str(&format!("[{}] at {when}\n", inert(&c.author)));
            for line in c.text.lines() {
                text.push_str(&format!("  {}\n", inert(line)));
            }
            text.push('\n');
        }
        out.write_all(text.as_bytes()).map_err(stdout_err)
    };
    finish(snap, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bead(id: &str, on: &[&str]) -> Bead {
        let mut b = Bead {
            id: id.into(),
            ..Bead::default()
        };
        for t in on {
            b.dependencies.push(crate::bead::Dependency {
                issue_id: id.into(),
                depends_on_id: (*t).into(),
                dep_type: "blocks".into(),
                ..Default::default()
            });
        }
        b
    }

    #[test]
    fn each_cycle_is_found_once() {
        let beads = vec![
            bead("a", &["b"]),
            bead("b", &["c"]),
            bead("c", &["a"]),
            bead("d", &["a", "e"]),
            bead("e", &["d"]),
            bead("f", &[]),
        ];
        let ids = |c: &Vec<usize>| c.iter().map(|&i| beads[i].id.as_str()).collect::<Vec<_>>();
        let found: Vec<Vec<&str>> = cycles(&beads).iter().map(ids).collect();
        assert_eq!(found, vec![vec!["a", "b", "c"], vec!["d", "e"]]);
        assert!(cycles(&beads[5..]).is_empty());
    }

    #[test]
    fn id_like_queries() {
        assert!(looks_like_id("bd-a1b"));
        assert!(looks_like_id("bd-a1b.2"));
        assert!(!looks_like_id("-x"));
        assert!(!looks_like_id("login bug"));
        assert!(!looks_like_id("login"));
    }
}
