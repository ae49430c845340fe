//! What the board shows, computed off the UI thread: beads sorted into the five columns (with
//! the dependency graph's ready/blocked rules), the filter applied, decisions gathered. The UI
//! only ever renders a finished [`Board`].

use std::collections::HashMap;

use serde_json::Value;

use crate::bead::graph::{Graph, ReadyFilter, SortPolicy};
use crate::bead::{Bead, dep_type, issue_type, status};
use crate::event::Stage;

/// The board's columns, left to right.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    Ready,
    /// Exactly what `loom blocked` lists (bar beads in progress or awaiting your review, which
    /// show where you act on them).
    Blocked,
    /// Open but not work now: deferred (status, `defer_until`, a deferred parent), pinned,
    /// ephemeral, bd's non-work types (agent, molecule, gate, …), statuses of their own. Shown
    /// only when it holds something.
    Deferred,
    InProgress,
    Review,
    Done,
}

/// How many columns the board has.
pub const COLUMNS: usize = 6;

impl Column {
    pub const ALL: [Column; COLUMNS] = [
        Column::Ready,
        Column::Blocked,
        Column::Deferred,
        Column::InProgress,
        Column::Review,
        Column::Done,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Column::Ready => "Ready",
            Column::Blocked => "Blocked",
            Column::Deferred => "Deferred",
            Column::InProgress => "In progress",
            Column::Review => "Review",
            Column::Done => "Done",
        }
    }

    /// Whether the board shows it even when it is empty.
    pub fn always_shown(self) -> bool {
        self != Column::Deferred
    }

    pub fn index(self) -> usize {
        Column::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }
}

/// One card: what the board shows of a bead.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Card {
    pub id: String,
    pub title: String,
    pub priority: i64,
    pub issue_type: String,
    pub status: String,
    pub assignee: Option<String>,
    /// `metadata.loom.stage`.
    pub stage: Option<String>,
    /// The persona that last worked on it.
    pub agent: Option<String>,
    /// Why it sits where it does: what it waits on, the decision it needs, a note.
    pub note: Option<String>,
    pub labels: Vec<String>,
    /// RFC 3339 (empty: unknown).
    pub updated: String,
    pub created: String,
}

#[cfg(test)]
impl Card {
    /// An open P2 task called `Title <id>`, for tests.
    pub fn sample(id: &str) -> Card {
        Card {
            id: id.into(),
            title: format!("Title {id}"),
            priority: 2,
            issue_type: "task".into(),
            status: "open".into(),
            assignee: None,
            stage: None,
            agent: None,
            note: None,
            labels: Vec::new(),
            updated: String::new(),
            created: String::new(),
        }
    }
}

/// A pending decision (an open decision bead).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Decision {
    pub id: String,
    pub title: String,
    pub description: String,
    /// The beads it blocks.
    pub blocks: Vec<String>,
}

/// The order of cards within a column (Done is always most recently closed first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    /// Ready in `loom ready`'s order; the others by priority, then id.
    #[default]
    Priority,
    /// Most recently updated first.
    Updated,
    /// Oldest first.
    Created,
    /// By title.
    Title,
}

impl Sort {
    /// The next order (the sort key cycles through them).
    pub fn next(self) -> Sort {
        match self {
            Sort::Priority => Sort::Updated,
            Sort::Updated => Sort::Created,
            Sort::Created => Sort::Title,
            Sort::Title => Sort::Priority,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Sort::Priority => "priority",
            Sort::Updated => "updated",
            Sort::Created => "created",
            Sort::Title => "title",
        }
    }
}

/// What the board shows: the filter (words match id or title; `label:`, `type:`, `assignee:`,
/// `status:` — also `l:`, `t:`, `a:`, `s:` — must match exactly) and the sort.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub text: String,
    pub sort: Sort,
}

impl Filter {
    /// Whether it is the default view (nothing filtered, the usual order).
    pub fn is_empty(&self) -> bool {
        self.text.trim().is_empty() && self.sort == Sort::Priority
    }

    /// Whether the text filter hides anything.
    pub fn filters(&self) -> bool {
        !self.text.trim().is_empty()
    }

    /// Whether `b` passes.
    pub fn keeps(&self, b: &Bead) -> bool {
        for word in self.text.split_whitespace() {
            let (key, value) = match word.split_once(':') {
                Some((k, v)) if !v.is_empty() => (k.to_ascii_lowercase(), v),
                _ => (String::new(), word),
            };
            let v = value.to_lowercase();
            let ok = match key.as_str() {
                "label" | "l" => b.labels.iter().any(|l| l.to_lowercase() == v),
                "type" | "t" => b.issue_type.to_lowercase() == v,
                "assignee" | "a" => b.assignee.as_deref().is_some_and(|a| a.to_lowercase() == v),
                "status" | "s" => b.status.to_lowercase() == v,
                _ => {
                    b.id.to_lowercase().contains(&v)
                        || b.title.to_lowercase().contains(&v)
                        || b.labels.iter().any(|l| l.to_lowercase() == v)
                }
            };
            if !ok {
                return false;
            }
        }
        true
    }
}

/// The board, ready to render.
#[derive(Clone, Debug, Default)]
pub struct Board {
    pub columns: [Vec<Card>; COLUMNS],
    pub decisions: Vec<Decision>,
    /// Beads in the store (before the filter).
    pub total: usize,
    /// Beads the filter hides (decisions aside, which always show in their pane).
    pub hidden: usize,
    /// Ready beads (before the filter), for the status bar.
    pub ready: usize,
    /// Records that could not be read.
    pub problems: usize,
    /// Every label in use, sorted (the form completes from these).
    pub labels: Vec<String>,
    /// Cards of each column left out (a glimpse from the cache holds a screenful).
    pub left_out: [usize; COLUMNS],
    /// A glimpse from the cache, shown until the store has been read.
    pub glimpse: bool,
}

impl Board {
    pub fn column(&self, c: Column) -> &[Card] {
        &self.columns[c.index()]
    }

    /// How many beads column `c` holds (those a glimpse left out included).
    pub fn count(&self, c: Column) -> usize {
        self.columns[c.index()].len() + self.left_out[c.index()]
    }

    /// Whether column `c` is on screen (an empty Deferred column folds away).
    pub fn shown(&self, c: Column) -> bool {
        c.always_shown() || self.count(c) > 0
    }

    /// Where bead `id` is.
    pub fn find(&self, id: &str) -> Option<(Column, usize)> {
        for c in Column::ALL {
            if let Some(i) = self.column(c).iter().position(|x| x.id == id) {
                return Some((c, i));
            }
        }
        None
    }
}

fn loom_str(b: &Bead, key: &str) -> Option<String> {
    b.loom_get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Why an open bead that nothing blocks is not ready work now.
fn why_not_now(b: &Bead, g: &Graph<'_>, now: jiff::Timestamp) -> String {
    let later = |x: &Bead| {
        x.defer_until
            .as_ref()
            .filter(|t| t.instant().is_some_and(|t| t > now))
            .map(|t| t.as_str().get(..10).unwrap_or(t.as_str()).to_owned())
    };
    if b.status == status::DEFERRED {
        return match later(b) {
            Some(d) => format!("until {d}"),
            None => "deferred".to_owned(),
        };
    }
    if b.status != status::OPEN {
        return format!("status {}", b.status);
    }
    if let Some(d) = later(b) {
        return format!("until {d}");
    }
    if let Some(p) = g.parent(b)
        && let Some(d) = later(p)
    {
        return format!("its parent {} waits until {d}", p.id);
    }
    if issue_type::NOT_WORK.contains(&b.issue_type.as_str()) {
        return format!("{}: not work", b.issue_type);
    }
    if b.pinned == Some(true) {
        return "pinned".to_owned();
    }
    if b.ephemeral == Some(true) {
        return "ephemeral".to_owned();
    }
    "not ready".to_owned()
}

/// Sorts `beads` into the board.
pub fn build(beads: &[Bead], filter: &Filter, problems: usize) -> Board {
    Plan::new(beads, filter, problems).board(beads, None)
}

/// Where every bead goes, decided once: per column, the beads (by index) in display order
/// with the note each card shows. Cards are made from it for as many rows as wanted, so the
/// first screen of a large store need not wait for 100,000 cards to be built.
pub struct Plan {
    slots: [Vec<Slot>; COLUMNS],
    decisions: Vec<Decision>,
    labels: Vec<String>,
    total: usize,
    hidden: usize,
    ready: usize,
    problems: usize,
}

/// One card to be: its bead's index and what the classification found out about it.
struct Slot {
    bead: usize,
    stage: Option<String>,
    note: Option<String>,
}

impl Plan {
    /// Classifies and orders `beads` under `filter`.
    pub fn new(beads: &[Bead], filter: &Filter, problems: usize) -> Plan {
        let g = Graph::new(beads);
        let now = jiff::Timestamp::now();
        let ready = g.ready(&ReadyFilter::default(), SortPolicy::Priority, now);
        let ready_ids: HashMap<&str, usize> = ready
            .iter()
            .enumerate()
            .map(|(i, b)| (b.id.as_str(), i))
            .collect();
        let blockers: HashMap<&str, Vec<&str>> = g
            .blocked()
            .into_iter()
            .map(|b| (b.bead.id.as_str(), b.blocked_by))
            .collect();
        let mut plan = Plan {
            slots: Default::default(),
            decisions: Vec::new(),
            labels: Vec::new(),
            total: beads.len(),
            hidden: 0,
            ready: ready
                .iter()
                .filter(|b| b.issue_type != issue_type::DECISION)
                .count(),
            problems,
        };
        let mut labels: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        let mut ready_order: Vec<(usize, Slot)> = Vec::new();
        for (i, b) in beads.iter().enumerate() {
            if b.status == status::TOMBSTONE {
                continue;
            }
            labels.extend(b.labels.iter().map(String::as_str));
            if b.issue_type == issue_type::DECISION {
                if !status::resolves_blockers(&b.status) {
                    plan.decisions.push(decision(b, &g));
                }
                continue;
            }
            if !filter.keeps(b) {
                plan.hidden += 1;
                continue;
            }
            let stage = loom_str(b, "stage");
            let (column, note) = place(b, stage.as_deref(), &g, &ready_ids, &blockers, now);
            let slot = Slot {
                bead: i,
                stage,
                note,
            };
            match column {
                Column::Ready => ready_order.push((ready_ids[b.id.as_str()], slot)),
                c => plan.slots[c.index()].push(slot),
            }
        }
        ready_order.sort_unstable_by_key(|(i, _)| *i);
        plan.slots[Column::Ready.index()] = ready_order.into_iter().map(|(_, s)| s).collect();
        plan.order(beads, filter.sort);
        plan.decisions.sort_by(|a, b| a.id.cmp(&b.id));
        plan.labels = labels.into_iter().map(str::to_owned).collect();
        plan
    }

    /// Sorts each column: Ready keeps the ready order, Done is most recently closed first,
    /// the rest by priority — unless the filter asks for another order.
    fn order(&mut self, beads: &[Bead], sort: Sort) {
        fn time(t: &Option<crate::bead::Timestamp>) -> Option<&str> {
            t.as_ref().map(|t| t.as_str())
        }
        self.slots[Column::Done.index()].sort_unstable_by(|x, y| {
            let (a, b) = (&beads[x.bead], &beads[y.bead]);
            time(&b.closed_at)
                .cmp(&time(&a.closed_at))
                .then_with(|| a.id.cmp(&b.id))
        });
        for c in [
            Column::Blocked,
            Column::Deferred,
            Column::InProgress,
            Column::Review,
        ] {
            self.slots[c.index()].sort_unstable_by(|x, y| {
                let (a, b) = (&beads[x.bead], &beads[y.bead]);
                a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id))
            });
        }
        if sort == Sort::Priority {
            return;
        }
        for c in Column::ALL.into_iter().filter(|c| *c != Column::Done) {
            self.slots[c.index()].sort_by(|x, y| {
                let (a, b) = (&beads[x.bead], &beads[y.bead]);
                let by = match sort {
                    Sort::Updated => time(&b.updated_at).cmp(&time(&a.updated_at)),
                    Sort::Created => time(&a.created_at).cmp(&time(&b.created_at)),
                    Sort::Title | Sort::Priority => {
                        a.title.to_lowercase().cmp(&b.title.to_lowercase())
                    }
                };
                by.then_with(|| a.id.cmp(&b.id))
            });
        }
    }

    /// The open decisions (each board made afterwards carries them as they are then).
    pub fn decisions_mut(&mut self) -> &mut [Decision] {
        &mut self.decisions
    }

    /// The board with at most `rows` cards per column (`None`: all of them); the counts are
    /// always complete. A board with cards left out is shown as still loading.
    pub fn board(&self, beads: &[Bead], rows: Option<usize>) -> Board {
        let mut board = Board {
            decisions: self.decisions.clone(),
            total: self.total,
            hidden: self.hidden,
            ready: self.ready,
            problems: self.problems,
            labels: self.labels.clone(),
            ..Board::default()
        };
        for c in Column::ALL {
            let slots = &self.slots[c.index()];
            let take = rows.map_or(slots.len(), |r| r.min(slots.len()));
            board.columns[c.index()] = slots[..take]
                .iter()
                .filter_map(|s| Some(card(beads.get(s.bead)?, s, c)))
                .collect();
            board.left_out[c.index()] = slots.len() - take;
        }
        board.glimpse = board.left_out.iter().any(|&n| n > 0);
        board
    }
}

/// An open decision, with the beads it holds up (from the graph's incoming edges: not a scan
/// of every bead per decision).
fn decision(b: &Bead, g: &Graph<'_>) -> Decision {
    let mut blocks: Vec<String> = g
        .dependents(&b.id)
        .iter()
        .filter(|(_, d)| dep_type::blocks_directly(&d.dep_type))
        .map(|(x, _)| x.id.clone())
        .collect();
    // Two edges from one bead name it once.
    blocks.dedup();
    Decision {
        id: b.id.clone(),
        title: b.title.clone(),
        description: b.description.clone().unwrap_or_default(),
        blocks,
    }
}

/// The column bead `b` belongs in, and the note its card shows there.
fn place(
    b: &Bead,
    stage: Option<&str>,
    g: &Graph<'_>,
    ready_ids: &HashMap<&str, usize>,
    blockers: &HashMap<&str, Vec<&str>>,
    now: jiff::Timestamp,
) -> (Column, Option<String>) {
    let stage = stage.map(Stage::parse);
    let waiting = matches!(stage, Some(Stage::AwaitingApproval | Stage::MergeWaiting));
    if b.status == status::CLOSED {
        return (Column::Done, None);
    }
    if waiting && b.status != status::IN_PROGRESS {
        let note = match stage {
            Some(Stage::MergeWaiting) => Some("⧖ merge waits for you".to_owned()),
            _ => loom_str(b, "decision").map(|d| format!("⚑ approve in {d}")),
        };
        return (Column::Review, note);
    }
    if b.status == status::IN_PROGRESS || b.status == status::HOOKED {
        return (Column::InProgress, None);
    }
    if ready_ids.contains_key(b.id.as_str()) {
        return (Column::Ready, None);
    }
    let Some(ids) = blockers.get(b.id.as_str()) else {
        return (Column::Deferred, Some(why_not_now(b, g, now)));
    };
    let decision = ids.iter().find(|id| {
        g.get(id)
            .is_some_and(|x| x.issue_type == issue_type::DECISION)
    });
    let note = match decision {
        Some(d) => format!("⚑ decision {d}"),
        None if ids.len() == 1 => format!("⧗ waits on {}", ids[0]),
        None => format!("⧗ waits on {} +{}", ids[0], ids.len().saturating_sub(1)),
    };
    (Column::Blocked, Some(note))
}

/// The card of bead `b` in column `c`.
fn card(b: &Bead, slot: &Slot, c: Column) -> Card {
    let stamp = |t: &Option<crate::bead::Timestamp>| {
        t.as_ref()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default()
    };
    Card {
        id: b.id.clone(),
        title: b.title.clone(),
        priority: b.priority,
        issue_type: b.issue_type.clone(),
        status: b.status.clone(),
        assignee: b.assignee.clone(),
        agent: loom_str(b, "persona"),
        stage: slot.stage.clone(),
        note: slot.note.clone().or_else(|| {
            (c == Column::Done)
                .then(|| b.close_reason.clone())
                .flatten()
        }),
        labels: b.labels.clone(),
        updated: stamp(&b.updated_at),
        created: stamp(&b.created_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bead::{Dependency, Timestamp};

    fn bead(id: &str, st: &str, p: i64) -> Bead {
        let now = Timestamp::now();
        let mut b = Bead {
            id: id.into(),
            title: format!("Title of {id}"),
            status: st.into(),
            priority: p,
            issue_type: "task".into(),
            created_at: Some(now.clone()),
            updated_at: Some(now.clone()),
            ..Bead::default()
        };
        if st == status::CLOSED {
            b.closed_at = Some(now);
        }
        b
    }

    fn blocks(b: &mut Bead, on: &str) {
        b.dependencies.push(Dependency {
            issue_id: b.id.clone(),
            depends_on_id: on.into(),
            dep_type: "blocks".into(),
            ..Dependency::default()
        });
    }

    fn ids(board: &Board, c: Column) -> Vec<&str> {
        board.column(c).iter().map(|c| c.id.as_str()).collect()
    }

    #[test]
    fn a_first_screen_has_every_count_and_the_top_cards_of_the_full_board() {
        let mut beads: Vec<Bead> = (0..30)
            .map(|i| bead(&format!("t-{i:02}"), status::OPEN, i % 5))
            .collect();
        for (i, b) in beads.iter_mut().enumerate().skip(20) {
            b.status = status::CLOSED.into();
            b.closed_at = Timestamp::parse_user(&format!("2026-01-{:02}", i - 10));
        }
        blocks(&mut beads[3], "t-04");
        let plan = Plan::new(&beads, &Filter::default(), 2);
        let (full, first) = (plan.board(&beads, None), plan.board(&beads, Some(4)));
        assert!(
            !full.glimpse && first.glimpse,
            "a partial board says it is loading"
        );
        for c in Column::ALL {
            assert_eq!(first.count(c), full.count(c), "{c:?} counts");
            let n = full.column(c).len().min(4);
            assert_eq!(ids(&first, c), ids(&full, c)[..n], "{c:?} top cards");
        }
        assert_eq!(full.count(Column::Ready), 19);
        assert_eq!(first.left_out[Column::Ready.index()], 15);
        assert_eq!(ids(&first, Column::Done), ["t-29", "t-28", "t-27", "t-26"]);
        assert_eq!((first.total, first.ready, first.problems), (30, 19, 2));
    }

    #[test]
    fn blocked_is_what_loom_blocked_lists_and_the_rest_waits_in_deferred() {
        let mut waiting = bead("t-w", status::OPEN, 2);
        blocks(&mut waiting, "t-a");
        let mut later = bead("t-l", status::OPEN, 1);
        later.defer_until = Timestamp::parse_user("2999-01-01");
        let mut molecule = bead("t-m", status::OPEN, 1);
        molecule.issue_type = "molecule".into();
        let manual = bead("t-s", status::BLOCKED, 1);
        let beads = vec![
            bead("t-a", status::OPEN, 2),
            waiting,
            bead("t-d", status::DEFERRED, 3),
            later,
            molecule,
            manual,
        ];
        let board = build(&beads, &Filter::default(), 0);
        let listed: Vec<&str> = Graph::new(&beads)
            .blocked()
            .iter()
            .map(|b| b.bead.id.as_str())
            .collect();
        assert_eq!(ids(&board, Column::Blocked), listed);
        assert_eq!(ids(&board, Column::Blocked), ["t-w"]);
        assert_eq!(
            ids(&board, Column::Deferred),
            ["t-l", "t-m", "t-s", "t-d"],
            "by priority"
        );
        let notes: Vec<&str> = board
            .column(Column::Deferred)
            .iter()
            .filter_map(|c| c.note.as_deref())
            .collect();
        assert_eq!(
            notes,
            [
                "until 2999-01-01",
                "molecule: not work",
                "status blocked",
                "deferred"
            ]
        );
        assert!(board.shown(Column::Deferred));
        let none = build(&beads[..2], &Filter::default(), 0);
        assert!(
            !none.shown(Column::Deferred),
            "an empty Deferred folds away"
        );
    }

    #[test]
    fn beads_land_in_their_columns() {
        let mut waiting = bead("t-w", status::OPEN, 2);
        blocks(&mut waiting, "t-a");
        let mut asks = bead("t-q", status::BLOCKED, 1);
        blocks(&mut asks, "t-d");
        let mut decision = bead("t-d", status::OPEN, 1);
        decision.issue_type = "decision".into();
        let mut review = bead("t-r", status::BLOCKED, 2);
        review
            .loom_mut()
            .insert("stage".into(), "awaiting_approval".into());
        review.loom_mut().insert("decision".into(), "t-d2".into());
        let mut running = bead("t-i", status::IN_PROGRESS, 0);
        running
            .loom_mut()
            .insert("stage".into(), "verifying".into());
        let beads = vec![
            bead("t-a", status::OPEN, 2),
            bead("t-b", status::OPEN, 0),
            waiting,
            asks,
            decision,
            review,
            running,
            bead("t-c", status::CLOSED, 2),
            bead("t-z", status::TOMBSTONE, 2),
        ];
        let board = build(&beads, &Filter::default(), 0);
        assert_eq!(
            ids(&board, Column::Ready),
            ["t-b", "t-a"],
            "ready order: priority"
        );
        assert_eq!(ids(&board, Column::Blocked), ["t-q", "t-w"]);
        assert_eq!(
            board.column(Column::Blocked)[0].note.as_deref(),
            Some("⚑ decision t-d")
        );
        assert_eq!(
            board.column(Column::Blocked)[1].note.as_deref(),
            Some("⧗ waits on t-a")
        );
        assert_eq!(ids(&board, Column::InProgress), ["t-i"]);
        assert_eq!(
            board.column(Column::InProgress)[0].stage.as_deref(),
            Some("verifying")
        );
        assert_eq!(ids(&board, Column::Review), ["t-r"]);
        assert_eq!(ids(&board, Column::Done), ["t-c"]);
        assert_eq!(board.decisions.len(), 1);
        assert_eq!(board.decisions[0].blocks, ["t-q"]);
        assert_eq!(board.ready, 2);
        assert_eq!(board.find("t-w"), Some((Column::Blocked, 1)));
    }

    #[test]
    fn the_filter_matches_words_and_fields() {
        let mut a = bead("t-a", status::OPEN, 1);
        a.labels = vec!["money".into()];
        a.issue_type = "bug".into();
        a.assignee = Some("ann".into());
        let beads = vec![a, bead("t-b", status::OPEN, 2)];
        let f = |t: &str| {
            let board = build(
                &beads,
                &Filter {
                    text: t.into(),
                    ..Filter::default()
                },
                0,
            );
            ids(&board, Column::Ready)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(f(""), ["t-a", "t-b"]);
        assert_eq!(f("label:money"), ["t-a"]);
        assert_eq!(f("t:bug a:ann"), ["t-a"]);
        assert_eq!(f("of t-b"), ["t-b"]);
        assert_eq!(f("type:feature"), Vec::<String>::new());
        assert_eq!(
            f("MONEY"),
            ["t-a"],
            "a bare word matches labels too, any case"
        );
    }
}
