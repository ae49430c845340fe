//! bd's query commands: `stale`, `epic status`, `dep cycles`, `dep tree`, `stats`, `label
//! list`, `label list-all` and `comments`, with bd's flags, text and JSON shapes (`search` and `count` are in
//! `search.rs`).

use std::collections::BTreeMap;
use std::io::Write;

use clap::Args;
use serde_json::json;

use crate::bead::graph::{self, Direction, Graph, ReadyFilter, SortPolicy};
use crate::bead::{Bead, FastMap, FastSet, dep_type, issue_type, status};
use crate::error::{Error, Result};
use crate::text::inert;

use super::Ctx;
use super::output::{self, Table, stdout_err};
use super::read::{finish, load, resolve};

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

// ---------------------------------------------------------------------------------------------

pub fn stats(ctx: &Ctx) -> Result<()> {
    let ws = ctx.workspace()?;
    let snap = load(ctx, &ws)?;
    let g = Graph::new(&snap.beads);
    let count = |s: &str| snap.beads.iter().filter(|b| b.status == s).count();
    let live = snap
        .beads
        .iter()
        .filter(|b| b.status != status::TOMBSTONE)
        .count();
    let ready = g
        .ready(
            &ReadyFilter::default(),
            SortPolicy::Priority,
            jiff::Timestamp::now(),
        )
        .len();
    let lead: Vec<f64> = snap
        .beads
        .iter()
        .filter(|b| b.status == status::CLOSED)
        .filter_map(|b| {
            let c = b.created_at.as_ref()?.instant()?;
            let d = b.closed_at.as_ref()?.instant()?;
            Some((d.as_second() - c.as_second()) as f64 / 3600.0)
        })
        .filter(|h| *h >= 0.0)
        .collect();
    let avg_lead = if lead.is_empty() {
        0.0
    } else {
        lead.iter().sum::<f64>() / lead.len() as f64
    };
    let epics_done = crate::ops::edit::finished_epics(&snap.beads).len();
    let summary = json!({
        "total_issues": live,
        "open_issues": count(status::OPEN),
        "in_progress_issues": count(status::IN_PROGRESS),
        "closed_issues": count(status::CLOSED),
        "blocked_issues": g.blocked().len(),
        "deferred_issues": count(status::DEFERRED),
        "ready_issues": ready,
        "pinned_issues": count(status::PINNED),
        "tombstone_issues": count(status::TOMBSTONE),
        "epics_eligible_for_closure": epics_done,
        "average_lead_time_hours": (avg_lead * 10.0).round() / 10.0,
    });
    let mut out = ctx.out();
    if ctx.global.json {
        return output::write_json(&mut out, &json!({ "summary": summary }));
    }
    let mut t = Table::default();
    let rows = [
        ("Total", live.to_string()),
        ("Open", count(status::OPEN).to_string()),
        ("In progress", count(status::IN_PROGRESS).to_string()),
        ("Blocked", g.blocked().len().to_string()),
        ("Ready", ready.to_string()),
        ("Deferred", count(status::DEFERRED).to_string()),
        ("Closed", count(status::CLOSED).to_string()),
        ("Pinned", count(status::PINNED).to_string()),
        ("Epics ready to close", epics_done.to_string()),
        ("Average lead time", format!("{avg_lead:.1} h")),
    ];
    for (k, v) in rows {
        t.row(vec![ctx.paint.dim(k), v]);
    }
    t.write(&mut out).map_err(stdout_err)
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Args)]
pub struct TreeArgs {
    /// The bead at the root.
    id: String,
    /// down: what it depends on; up: what depends on it; both.
    #[arg(long, default_value = "down")]
    direction: String,
    /// Deepest level shown.
    #[arg(short = 'd', long, default_value_t = 50)]
    max_depth: usize,
}

pub fn tree(ctx: &Ctx, a: TreeArgs) -> Result<()> {
    let direction = match a.direction.as_str() {
        "down" => Direction::Down,
        "up" => Direction::Up,
        "both" => Direction::Both,
        other => {
            return Err(Error::Usage(format!(
                "invalid direction '{other}': use down, up or both"
            )));
        }
    };
    if a.max_depth == 0 {
        return Err(Error::Usage("--max-depth must be at least 1".into()));
    }
    let ws = ctx.workspace()?;
    let snap = load(ctx, &ws)?;
    let id = resolve(&snap, &a.id)?;
    let g = Graph::new(&snap.beads);
    let nodes = g.tree(&id, direction, a.max_depth);
    let mut out = ctx.out();
    if ctx.global.json {
        let items = nodes
            .iter()
            .map(|n| {
                let mut extra = vec![
                    ("depth", json!(n.depth)),
                    ("parent_id", json!(n.parent_id)),
                    ("truncated", json!(false)),
                ];
                if !n.edge.is_empty() {
                    extra.push(("edge_from_parent", json!(n.edge)));
                }
                output::bead_with(&snap.full(n.bead), &extra)
            })
            .collect::<Result<Vec<_>>>()?;
        return output::write_json_array(&mut out, items);
    }
    let p = &ctx.paint;
    // Whether each node is the last child of its parent, to draw the connectors.
    let last: Vec<bool> = (0..nodes.len())
        .map(|i| {
            nodes[i + 1..]
                .iter()
                .take_while(|m| m.depth >= nodes[i].depth)
                .all(|m| m.depth > nodes[i].depth)
        })
        .collect();
    let mut open_levels: Vec<bool> = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let b = n.bead;
        let mark = if n.depth == 0 {
            if g.is_blocked(&b.id) {
                format!(" {}", p.paint("[BLOCKED]", crossterm::style::Color::Red))
            } else if g.is_ready(b, &ReadyFilter::default(), jiff::Timestamp::now()) {
                format!(" {}", p.paint("[READY]", crossterm::style::Color::Green))
            } else {
                String::new()
            }
        } else {
            format!(" {}", p.dim(&format!("[{}]", n.edge)))
        };
        let mut prefix = String::new();
        if n.depth > 0 {
            open_levels.truncate(n.depth - 1);
            for open in &open_levels {
                prefix.push_str(if *open { "│   " } else { "    " });
            }
            prefix.push_str(if last[i] { "└── " } else { "├── " });
            open_levels.push(!last[i]);
        }
        writeln!(
            out,
            "{prefix}{}: {} {} ({}){mark}",
            p.bold(&b.id),
            inert(&b.title),
            p.priority(b.priority),
            p.status(&b.status)
        )
        .map_err(stdout_err)?;
    }
    Ok(())
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
}
