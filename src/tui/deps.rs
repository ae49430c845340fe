//! The dependency view of one bead (`T`): what it waits on (its dependencies, as a tree) and
//! what waits on it (its dependents), the critical path to it — the longest chain of
//! unfinished blockers that must close before it can start, the first of them where to begin —
//! and the cycles among them, marked. Pure: built from the beads by the worker, drawn as is.

use std::collections::{HashMap, HashSet};

use crate::bead::graph::{Direction, Graph};
use crate::bead::{Bead, dep_type, status};
use crate::text::inert;

/// One line of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepLine {
    pub depth: usize,
    pub id: String,
    pub title: String,
    pub status: String,
    /// The edge from the line above (`blocks`, `parent-child`, …; empty for the root).
    pub edge: String,
    /// Whether it is on the critical path.
    pub critical: bool,
    /// Whether it is part of a dependency cycle.
    pub in_cycle: bool,
    /// Whether the line lies above the root (a dependent) rather than below (a dependency).
    pub dependent: bool,
}

/// The dependency view's content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deps {
    pub root: String,
    /// The root, then what it waits on, then what waits on it.
    pub lines: Vec<DepLine>,
    /// Root first, then each unfinished blocker it waits on through the longest chain.
    pub critical: Vec<String>,
    /// Cycles through blocking edges reachable from the root, each as ids in order.
    pub cycles: Vec<Vec<String>>,
}

/// The deepest a tree goes.
const MAX_DEPTH: usize = 50;

/// Whether an edge from `d` holds its bead back.
fn blocking(kind: &str) -> bool {
    dep_type::blocks_directly(kind)
}

/// The longest chain of unfinished blockers from `root`, and the cycles met on the way.
fn critical_path(beads: &[Bead], root: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let index: HashMap<&str, &Bead> = beads.iter().map(|b| (b.id.as_str(), b)).collect();
    let open = |id: &str| {
        index
            .get(id)
            .is_some_and(|b| !status::resolves_blockers(&b.status))
    };
    // Iterative DFS with memoised longest paths; a node met again while on the stack closes a
    // cycle (recorded once, its edge left out of the longest path).
    let mut best: HashMap<String, Vec<String>> = HashMap::new();
    let mut cycles: Vec<Vec<String>> = Vec::new();
    let mut seen_cycles: HashSet<Vec<String>> = HashSet::new();
    let mut stack: Vec<(String, usize)> = vec![(root.to_owned(), 0)];
    let mut on_stack: HashSet<String> = HashSet::from([root.to_owned()]);
    while let Some((id, next)) = stack.pop() {
        let deps: Vec<&str> = index
            .get(id.as_str())
            .map(|b| {
                b.dependencies
                    .iter()
                    .filter(|d| blocking(&d.dep_type) && open(&d.depends_on_id))
                    .map(|d| d.depends_on_id.as_str())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(child) = deps.get(next) {
            stack.push((id.clone(), next + 1));
            if on_stack.contains(*child) {
                let from = stack.iter().position(|(s, _)| s == child).unwrap_or(0);
                let mut cycle: Vec<String> = stack[from..].iter().map(|(s, _)| s.clone()).collect();
                // One spelling per cycle: starting at its smallest id.
                let low = cycle
                    .iter()
                    .enumerate()
                    .min_by(|a, b| a.1.cmp(b.1))
                    .map_or(0, |(i, _)| i);
                cycle.rotate_left(low);
                if seen_cycles.insert(cycle.clone()) {
                    cycles.push(cycle);
                }
            } else if !best.contains_key(*child) {
                on_stack.insert((*child).to_owned());
                stack.push(((*child).to_owned(), 0));
            }
            continue;
        }
        // All children done: the longest of their paths, behind this one.
        let longest = deps
            .iter()
            .filter(|c| !on_stack.contains(**c) || **c == id)
            .filter_map(|c| best.get(*c))
            .max_by(|a, b| a.len().cmp(&b.len()).then_with(|| b.cmp(a)))
            .cloned()
            .unwrap_or_default();
        let mut path = vec![id.clone()];
        path.extend(longest);
        on_stack.remove(&id);
        best.insert(id, path);
    }
    (best.remove(root).unwrap_or_default(), cycles)
}

/// The view of `root` over `beads` (`None`: no such bead).
pub fn build(beads: &[Bead], root: &str) -> Option<Deps> {
    let g = Graph::new(beads);
    g.get(root)?;
    let (critical, cycles) = critical_path(beads, root);
    let on_path: HashSet<&str> = critical.iter().skip(1).map(String::as_str).collect();
    let in_cycle: HashSet<&str> = cycles.iter().flatten().map(String::as_str).collect();
    let line = |n: &crate::bead::graph::TreeNode<'_>, dependent: bool| DepLine {
        depth: n.depth,
        id: n.bead.id.clone(),
        title: inert(&n.bead.title).into_owned(),
        status: n.bead.status.clone(),
        edge: n.edge.to_owned(),
        critical: !dependent && on_path.contains(n.bead.id.as_str()),
        in_cycle: in_cycle.contains(n.bead.id.as_str()),
        dependent,
    };
    let mut lines: Vec<DepLine> = g
        .tree(root, Direction::Down, MAX_DEPTH)
        .iter()
        .map(|n| line(n, false))
        .collect();
    lines.extend(
        g.tree(root, Direction::Up, MAX_DEPTH)
            .iter()
            .skip(1)
            .map(|n| line(n, true)),
    );
    Some(Deps {
        root: root.to_owned(),
        lines,
        critical,
        cycles,
    })
}

/// The dependency view's state.
#[derive(Debug, Default)]
pub struct DepsView {
    pub root: String,
    pub deps: Option<Deps>,
    /// The selected line.
    pub row: usize,
}

impl DepsView {
    pub fn move_by(&mut self, by: isize) {
        let n = self.deps.as_ref().map_or(0, |d| d.lines.len());
        let last = n.saturating_sub(1) as isize;
        self.row = (self.row as isize + by).clamp(0, last.max(0)) as usize;
    }

    /// The bead on the selected line.
    pub fn selected(&self) -> Option<&str> {
        Some(self.deps.as_ref()?.lines.get(self.row)?.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bead::Dependency;

    fn bead(id: &str, st: &str, deps: &[(&str, &str)]) -> Bead {
        let mut b: Bead = serde_json::from_value(serde_json::json!({
            "id": id, "title": format!("Bead {id}"), "status": st,
            "priority": 2, "issue_type": "task",
        }))
        .unwrap_or_default();
        b.dependencies = deps
            .iter()
            .map(|(on, kind)| Dependency {
                issue_id: id.into(),
                depends_on_id: (*on).into(),
                dep_type: (*kind).into(),
                ..Dependency::default()
            })
            .collect();
        b
    }

    #[test]
    fn the_critical_path_is_the_longest_open_chain() {
        // a waits on b and c; b on d (open); c on e (closed); f waits on a.
        let beads = vec![
            bead("a", "open", &[("b", "blocks"), ("c", "blocks")]),
            bead("b", "open", &[("d", "blocks")]),
            bead("c", "open", &[("e", "blocks")]),
            bead("d", "in_progress", &[]),
            bead("e", "closed", &[]),
            bead("f", "open", &[("a", "blocks")]),
        ];
        let d = build(&beads, "a").unwrap_or_default();
        assert_eq!(d.critical, ["a", "b", "d"]);
        assert!(d.cycles.is_empty());
        let ids: Vec<(&str, bool, bool)> = d
            .lines
            .iter()
            .map(|l| (l.id.as_str(), l.critical, l.dependent))
            .collect();
        assert_eq!(
            ids,
            [
                ("a", false, false),
                ("b", true, false),
                ("d", true, false),
                ("c", false, false),
                ("e", false, false),
                ("f", false, true)
            ]
        );
        assert!(build(&beads, "nope").is_none());
    }

    #[test]
    fn cycles_are_found_and_marked_once() {
        let beads = vec![
            bead("a", "open", &[("b", "blocks")]),
            bead("b", "open", &[("c", "blocks")]),
            bead("c", "open", &[("a", "blocks")]),
        ];
        let d = build(&beads, "a").unwrap_or_default();
        assert_eq!(d.cycles, [vec!["a", "b", "c"]]);
        assert!(d.lines.iter().all(|l| l.in_cycle));
        assert_eq!(
            d.critical,
            ["a", "b", "c"],
            "the cycle's edge back is left out"
        );
    }

    #[test]
    fn a_thousand_beads_in_a_chain_do_not_overflow() {
        let mut beads: Vec<Bead> = (0..1000)
            .map(|i| {
                let next = format!("b{}", i + 1);
                if i < 999 {
                    bead(&format!("b{i}"), "open", &[(next.as_str(), "blocks")])
                } else {
                    bead(&format!("b{i}"), "open", &[])
                }
            })
            .collect();
        beads.reverse();
        let d = build(&beads, "b0").unwrap_or_default();
        assert_eq!(d.critical.len(), 1000);
        assert_eq!(
            d.lines.len(),
            MAX_DEPTH,
            "the tree is cut at its depth limit"
        );
    }
}
