//! The dependency graph over a set of beads, with bd's `ready` and `blocked` semantics.
//!
//! A bead is *blocked* (bd's `is_blocked`) when its own status does not resolve blockers
//! (closed, pinned, tombstone) and
//! - a `blocks`/`conditional-blocks` target exists and is not resolved, or
//! - a `waits-for` target has unresolved `parent-child` children (`gate: any-children`: until
//!   the first child closes), or
//! - its `parent-child` parent is blocked (transitively, to any depth).
//!
//! Targets that do not exist never block. *Ready* = status `open`, not blocked, not pinned,
//! not ephemeral, no future `defer_until` on itself or its parent, and not an infrastructure
//! type. See `docs/ARCHITECTURE.md` for the bd versions this follows.

use std::cmp::Reverse;
use std::collections::{HashMap, VecDeque};

use super::FastMap;
use std::str::FromStr;

use super::{Bead, Dependency, dep_type, issue_type, status};

/// How ready work is ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortPolicy {
    /// Priority ascending, then newest first, then id.
    #[default]
    Priority,
    /// Oldest first, then id.
    Oldest,
    /// Beads created in the last 48 hours first, by priority; then older ones, oldest first.
    Hybrid,
}

impl FromStr for SortPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "priority" => Ok(SortPolicy::Priority),
            "oldest" => Ok(SortPolicy::Oldest),
            "hybrid" => Ok(SortPolicy::Hybrid),
            _ => Err(format!(
                "invalid sort policy '{s}'. Valid values: hybrid, priority, oldest"
            )),
        }
    }
}

/// Filters of `ready` beyond the rule itself.
#[derive(Clone, Debug, Default)]
pub struct ReadyFilter {
    pub assignee: Option<String>,
    pub unassigned: bool,
    pub priority: Option<i64>,
    /// All must be present.
    pub labels: Vec<String>,
    /// At least one must be present (ignored when empty).
    pub labels_any: Vec<String>,
    /// Only this type; also lifts the infrastructure-type exclusion.
    pub issue_type: Option<String>,
    pub include_deferred: bool,
    pub include_ephemeral: bool,
    /// Only descendants of this bead.
    pub parent: Option<String>,
}

/// Which way `dep tree` walks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    /// What the bead depends on.
    #[default]
    Down,
    /// What depends on the bead.
    Up,
    Both,
}

/// A blocked bead and what holds it back.
#[derive(Clone, Debug)]
pub struct Blocked<'a> {
    pub bead: &'a Bead,
    /// Unresolved direct blockers, or the blocked parent when the block is inherited.
    pub blocked_by: Vec<&'a str>,
}

/// A node of a dependency tree, in depth-first pre-order.
#[derive(Clone, Debug)]
pub struct TreeNode<'a> {
    pub bead: &'a Bead,
    pub depth: usize,
    /// The node above this one (empty for the root).
    pub parent_id: &'a str,
    /// The dependency type of the edge from the node above (empty for the root).
    pub edge: &'a str,
}

/// An index over beads: lookups by id, edges both ways, and the blocked set.
pub struct Graph<'a> {
    beads: &'a [Bead],
    index: FastMap<&'a str, usize>,
    /// Incoming edges per bead: (source index, dependency).
    incoming: Vec<Vec<(usize, &'a Dependency)>>,
    blocked: Vec<bool>,
}

fn resolved(b: &Bead) -> bool {
    status::resolves_blockers(&b.status)
}

impl<'a> Graph<'a> {
    /// Indexes `beads` (the first of duplicate ids wins) and computes who is blocked.
    pub fn new(beads: &'a [Bead]) -> Self {
        let mut index = FastMap::with_capacity_and_hasher(beads.len(), Default::default());
        for (i, b) in beads.iter().enumerate() {
            index.entry(b.id.as_str()).or_insert(i);
        }
        let mut incoming: Vec<Vec<(usize, &Dependency)>> = vec![Vec::new(); beads.len()];
        for (i, b) in beads.iter().enumerate() {
            if index.get(b.id.as_str()) != Some(&i) {
                continue; // a shadowed duplicate contributes no edges
            }
            for d in &b.dependencies {
                if let Some(&t) = index.get(d.depends_on_id.as_str()) {
                    incoming[t].push((i, d));
                }
            }
        }
        let mut g = Graph {
            beads,
            index,
            incoming,
            blocked: vec![false; beads.len()],
        };
        g.compute_blocked();
        g
    }

    fn compute_blocked(&mut self) {
        let mut queue = VecDeque::new();
        for i in 0..self.beads.len() {
            if !self.is_primary(i) || resolved(&self.beads[i]) {
                continue;
            }
            if self.direct_blockers(i).next().is_some() {
                self.blocked[i] = true;
                queue.push_back(i);
            }
        }
        // A blocked parent blocks its unresolved children, to any depth.
        while let Some(p) = queue.pop_front() {
            for &(c, d) in &self.incoming[p] {
                if d.dep_type == dep_type::PARENT_CHILD
                    && !self.blocked[c]
                    && !resolved(&self.beads[c])
                {
                    self.blocked[c] = true;
                    queue.push_back(c);
                }
            }
        }
    }

    fn is_primary(&self, i: usize) -> bool {
        self.index.get(self.beads[i].id.as_str()) == Some(&i)
    }

    /// Targets of bead `i`'s edges that hold it back directly.
    fn direct_blockers(&self, i: usize) -> impl Iterator<Item = &'a str> + '_ {
        self.beads[i].dependencies.iter().filter_map(move |d| {
            let &t = self.index.get(d.depends_on_id.as_str())?;
            let target = &self.beads[t];
            let holds = if dep_type::blocks_directly(&d.dep_type) {
                !resolved(target)
            } else if d.dep_type == dep_type::WAITS_FOR {
                self.waits_on_children(t, d)
            } else {
                false
            };
            holds.then_some(self.beads[t].id.as_str())
        })
    }

    /// Whether a `waits-for` edge to `spawner` still holds: the spawner has children and they
    /// are not all resolved (`gate: any-children`: none has closed yet).
    fn waits_on_children(&self, spawner: usize, d: &Dependency) -> bool {
        let children: Vec<&Bead> = self.incoming[spawner]
            .iter()
            .filter(|(_, e)| e.dep_type == dep_type::PARENT_CHILD)
            .map(|&(c, _)| &self.beads[c])
            .collect();
        if gate_of(d).as_deref() == Some("any-children") {
            !children.is_empty() && !children.iter().any(|c| c.status == status::CLOSED)
        } else {
            children.iter().any(|c| !resolved(c))
        }
    }

    /// The beads this graph was built from.
    pub fn beads(&self) -> &'a [Bead] {
        self.beads
    }

    /// The bead with this exact id.
    pub fn get(&self, id: &str) -> Option<&'a Bead> {
        self.index.get(id).map(|&i| &self.beads[i])
    }

    /// Whether the bead with this id is blocked.
    pub fn is_blocked(&self, id: &str) -> bool {
        self.index.get(id).is_some_and(|&i| self.blocked[i])
    }

    /// The `parent-child` parent of a bead, if it exists.
    pub fn parent(&self, bead: &Bead) -> Option<&'a Bead> {
        bead.dependencies
            .iter()
            .filter(|d| d.dep_type == dep_type::PARENT_CHILD)
            .find_map(|d| self.get(&d.depends_on_id))
    }

    /// Beads with an edge to `id`, with the edge.
    pub fn dependents(&self, id: &str) -> Vec<(&'a Bead, &'a Dependency)> {
        let Some(&t) = self.index.get(id) else {
            return Vec::new();
        };
        self.incoming[t]
            .iter()
            .map(|&(s, d)| (&self.beads[s], d))
            .collect()
    }

    /// Whether `bead` is ready work under `filter` at time `now`.
    pub fn is_ready(&self, bead: &Bead, filter: &ReadyFilter, now: jiff::Timestamp) -> bool {
        let Some(&i) = self.index.get(bead.id.as_str()) else {
            return false;
        };
        if !std::ptr::eq(bead, &self.beads[i]) || bead.status != status::OPEN || self.blocked[i] {
            return false;
        }
        if bead.pinned == Some(true) {
            return false;
        }
        if bead.ephemeral == Some(true) && !filter.include_ephemeral {
            return false;
        }
        if !filter.include_deferred {
            let deferred = |b: &Bead| {
                b.defer_until
                    .as_ref()
                    .and_then(|t| t.instant())
                    .is_some_and(|t| t > now)
            };
            if deferred(bead) || self.parent(bead).is_some_and(deferred) {
                return false;
            }
        }
        match &filter.issue_type {
            Some(t) if &bead.issue_type != t => return false,
            None if issue_type::NOT_WORK.contains(&bead.issue_type.as_str()) => return false,
            _ => {}
        }
        matches_common(bead, filter)
            && filter
                .parent
                .as_deref()
                .is_none_or(|p| self.is_descendant_of(bead, p))
    }

    /// Whether `bead` sits below `ancestor` through `parent-child` edges or dotted ids.
    pub fn is_descendant_of(&self, bead: &Bead, ancestor: &str) -> bool {
        if bead.id.starts_with(ancestor) && bead.id[ancestor.len()..].starts_with('.') {
            return true;
        }
        let mut seen = vec![false; self.beads.len()];
        let mut cur = bead;
        while let Some(p) = self.parent(cur) {
            if p.id == ancestor {
                return true;
            }
            let Some(&pi) = self.index.get(p.id.as_str()) else {
                break;
            };
            if std::mem::replace(&mut seen[pi], true) {
                break; // a parent cycle
            }
            cur = p;
        }
        false
    }

    /// Ready work, ordered by `sort`.
    pub fn ready(
        &self,
        filter: &ReadyFilter,
        sort: SortPolicy,
        now: jiff::Timestamp,
    ) -> Vec<&'a Bead> {
        let mut out: Vec<&Bead> = self
            .beads
            .iter()
            .filter(|b| self.is_ready(b, filter, now))
            .collect();
        sort_beads(&mut out, sort, now);
        out
    }

    /// Blocked beads (bd's `blocked`): priority ascending, newest first, then id.
    pub fn blocked(&self) -> Vec<Blocked<'a>> {
        let mut out = Vec::new();
        for (i, bead) in self.beads.iter().enumerate() {
            if !self.blocked[i] || !self.is_primary(i) {
                continue;
            }
            let mut blocked_by: Vec<&str> = self.direct_blockers(i).collect();
            if blocked_by.is_empty() {
                match self.parent(bead) {
                    Some(p) => blocked_by.push(p.id.as_str()),
                    None => continue,
                }
            }
            out.push(Blocked { bead, blocked_by });
        }
        out.sort_by(|a, b| priority_order(a.bead, b.bead));
        out
    }

    /// If adding `from → to` of type `kind` would close a blocking cycle, the cycle as ids
    /// (`from`, `to`, …, `from`).
    pub fn cycle_if_added(&self, from: &str, to: &str, kind: &str) -> Option<Vec<String>> {
        if from == to {
            return Some(vec![from.to_owned(), to.to_owned()]);
        }
        if !dep_type::forms_cycle(kind) {
            return None;
        }
        let start = *self.index.get(to)?;
        let mut came_from: HashMap<usize, usize> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut seen = vec![false; self.beads.len()];
        seen[start] = true;
        while let Some(n) = queue.pop_front() {
            if self.beads[n].id == from {
                let mut path = vec![self.beads[n].id.clone()];
                let mut cur = n;
                while let Some(&prev) = came_from.get(&cur) {
                    path.push(self.beads[prev].id.clone());
                    cur = prev;
                }
                path.push(from.to_owned());
                path.reverse();
                return Some(path);
            }
            for d in &self.beads[n].dependencies {
                if !dep_type::forms_cycle(&d.dep_type) {
                    continue;
                }
                if let Some(&t) = self.index.get(d.depends_on_id.as_str())
                    && !std::mem::replace(&mut seen[t], true)
                {
                    came_from.insert(t, n);
                    queue.push_back(t);
                }
            }
        }
        None
    }

    /// The dependency tree below (or above) `root`, depth-first, each bead once; `relates-to`
    /// edges and missing targets are skipped; nodes at `max_depth` or deeper are cut.
    pub fn tree(&self, root: &str, direction: Direction, max_depth: usize) -> Vec<TreeNode<'a>> {
        let Some(&r) = self.index.get(root) else {
            return Vec::new();
        };
        let mut out = vec![TreeNode {
            bead: &self.beads[r],
            depth: 0,
            parent_id: "",
            edge: "",
        }];
        let mut seen = vec![false; self.beads.len()];
        seen[r] = true;
        if matches!(direction, Direction::Down | Direction::Both) {
            self.walk(r, 1, max_depth, true, &mut seen, &mut out);
        }
        if matches!(direction, Direction::Up | Direction::Both) {
            self.walk(r, 1, max_depth, false, &mut seen, &mut out);
        }
        out
    }

    fn walk(
        &self,
        n: usize,
        depth: usize,
        max_depth: usize,
        down: bool,
        seen: &mut [bool],
        out: &mut Vec<TreeNode<'a>>,
    ) {
        if depth >= max_depth {
            return;
        }
        let mut next: Vec<(usize, &'a str)> = if down {
            self.beads[n]
                .dependencies
                .iter()
                .filter(|d| d.dep_type != dep_type::RELATES_TO)
                .filter_map(|d| {
                    self.index
                        .get(d.depends_on_id.as_str())
                        .map(|&t| (t, d.dep_type.as_str()))
                })
                .collect()
        } else {
            self.incoming[n]
                .iter()
                .filter(|(_, d)| d.dep_type != dep_type::RELATES_TO)
                .map(|&(s, d)| (s, d.dep_type.as_str()))
                .collect()
        };
        next.sort_by(|a, b| {
            let (x, y) = (&self.beads[a.0], &self.beads[b.0]);
            x.priority.cmp(&y.priority).then_with(|| x.id.cmp(&y.id))
        });
        for (t, edge) in next {
            if std::mem::replace(&mut seen[t], true) {
                continue;
            }
            out.push(TreeNode {
                bead: &self.beads[t],
                depth,
                parent_id: self.beads[n].id.as_str(),
                edge,
            });
            self.walk(t, depth + 1, max_depth, down, seen, out);
        }
    }
}

/// The `gate` of a `waits-for` edge, from its metadata (a JSON object or a string holding one).
fn gate_of(d: &Dependency) -> Option<String> {
    let meta = d.metadata.as_ref()?;
    let parsed;
    let obj = match meta {
        serde_json::Value::String(s) => {
            parsed = serde_json::from_str::<serde_json::Value>(s).ok()?;
            &parsed
        }
        other => other,
    };
    obj.get("gate")?.as_str().map(str::to_owned)
}

/// Assignee, priority and label filters shared by `ready` and `list`.
pub fn matches_common(bead: &Bead, filter: &ReadyFilter) -> bool {
    if filter.unassigned {
        if bead.assignee.as_deref().is_some_and(|a| !a.is_empty()) {
            return false;
        }
    } else if let Some(a) = &filter.assignee
        && bead.assignee.as_deref() != Some(a.as_str())
    {
        return false;
    }
    if filter.priority.is_some_and(|p| p != bead.priority) {
        return false;
    }
    if !filter.labels.iter().all(|l| bead.labels.contains(l)) {
        return false;
    }
    filter.labels_any.is_empty() || filter.labels_any.iter().any(|l| bead.labels.contains(l))
}

/// bd's default order: priority ascending, created_at descending, id ascending.
pub fn priority_order(a: &Bead, b: &Bead) -> std::cmp::Ordering {
    a.priority
        .cmp(&b.priority)
        .then_with(|| created(b).cmp(&created(a)))
        .then_with(|| a.id.cmp(&b.id))
}

fn created(b: &Bead) -> i128 {
    b.created_at.as_ref().map_or(i128::MIN, |t| t.sort_key())
}

/// Sorts beads by a ready policy.
pub fn sort_beads(beads: &mut [&Bead], sort: SortPolicy, now: jiff::Timestamp) {
    match sort {
        SortPolicy::Priority => beads.sort_by(|a, b| priority_order(a, b)),
        SortPolicy::Oldest => {
            beads.sort_by(|a, b| created(a).cmp(&created(b)).then_with(|| a.id.cmp(&b.id)))
        }
        SortPolicy::Hybrid => {
            let cutoff = now.as_nanosecond() - 48 * 3600 * 1_000_000_000;
            beads.sort_by_key(|b| {
                let recent = created(b) >= cutoff;
                (
                    Reverse(recent),
                    if recent { b.priority } else { 0 },
                    created(b),
                    b.id.clone(),
                )
            });
        }
    }
}
