//! bd's filter-driven queries: `search` (title and id) and `count` (totals and groups), with
//! bd's flags, text and JSON shapes.

use std::collections::BTreeMap;
use std::io::Write;

use clap::Args;
use serde_json::json;

use crate::bead::graph::Graph;
use crate::bead::{Bead, FastSet, status};
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_like_queries() {
        assert!(looks_like_id("bd-a1b"));
        assert!(looks_like_id("bd-a1b.2"));
        assert!(!looks_like_id("-x"));
        assert!(!looks_like_id("login bug"));
        assert!(!looks_like_id("login"));
    }
}
