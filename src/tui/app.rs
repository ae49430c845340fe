//! The application state and what keys and events do to it. [`App::key`] and [`App::event`]
//! change the state and return [`Command`]s for the runtime to carry out in the background
//! (writes, loads, git, the orchestrator); nothing here blocks or does I/O, so it is tested by
//! feeding it keys and events.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::KeyEvent;

use crate::agent::run::Confirm;
use crate::bead::Bead;
use crate::event::Event;
use crate::git::LogEntry;
use crate::ops::decision::Verdict;

use super::deps::{Deps, DepsView};
use super::forms::{BeadDraft, BeadForm, Known, LineInput, PickItem, Picker};
use super::keys::{Action, KeyMap};
use super::list::ListView;
use super::live::Live;
use super::logs::Logs;
use super::model::{Board, COLUMNS, Column, Filter};
use super::pair::{PairEvent, PairView};
use super::theme::Theme;
use super::work::{Work, WorkView};
use super::worker::PastRun;

/// The main view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Board,
    Detail,
    Logs,
    Agents,
    Decisions,
    Usage,
    /// Pair programming on one bead.
    Pair,
    /// What the agents did on one bead: diff, tests, transcript.
    Work,
    /// The beads as a dense, sortable table.
    List,
    /// One bead's dependencies and dependents.
    Deps,
}

impl View {
    pub const TABS: [View; 5] = [
        View::Board,
        View::Logs,
        View::Agents,
        View::Decisions,
        View::Usage,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Board => "Board",
            View::Detail => "Bead",
            View::Logs => "Logs",
            View::Agents => "Agents",
            View::Decisions => "Decisions",
            View::Usage => "Usage",
            View::Pair => "Pair",
            View::Work => "Work",
            View::List => "List",
            View::Deps => "Dependencies",
        }
    }
}

/// How the usage view groups spend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UsageGroup {
    #[default]
    Agent,
    Bead,
    Model,
}

impl UsageGroup {
    pub const ALL: [UsageGroup; 3] = [UsageGroup::Agent, UsageGroup::Bead, UsageGroup::Model];

    pub fn name(self) -> &'static str {
        match self {
            UsageGroup::Agent => "agent",
            UsageGroup::Bead => "bead",
            UsageGroup::Model => "model",
        }
    }

    pub fn step(self, forward: bool) -> UsageGroup {
        let i = UsageGroup::ALL.iter().position(|g| *g == self).unwrap_or(0);
        let n = UsageGroup::ALL.len();
        UsageGroup::ALL[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }]
    }
}

/// Something shown over the view, taking the keys.
#[derive(Debug)]
pub enum Overlay {
    /// Every key: scrolled by `scroll` rows, narrowed by a search (`/`).
    Help {
        scroll: usize,
        search: LineInput,
        /// Whether keys go to the search.
        searching: bool,
    },
    /// The command palette (a picker over actions and beads).
    Palette(Box<Picker>),
    /// The last message (or error) in full, scrolled by this many lines.
    Message {
        scroll: u16,
    },
    Form(Box<BeadForm>),
    Picker(Box<Picker>),
    /// Which persona to pair with.
    Persona(Box<Picker>),
    /// Waiting for a digit 0–4 for these beads.
    Priority(Vec<String>),
    Filter(LineInput),
    Search(LineInput),
    /// The close reason for these beads.
    Close {
        ids: Vec<String>,
        reason: LineInput,
    },
    /// Labels to add (`name`) and remove (`-name`) on these beads.
    Labels {
        ids: Vec<String>,
        input: LineInput,
    },
    /// The status for these beads.
    Status {
        ids: Vec<String>,
        picker: Box<Picker>,
    },
    /// The answer to this decision.
    Answer {
        decision: String,
        text: LineInput,
    },
}

impl Overlay {
    /// The help, from its top.
    pub fn help() -> Overlay {
        Overlay::Help {
            scroll: 0,
            search: LineInput::default(),
            searching: false,
        }
    }
}

/// The help's entries a search keeps: (keys, what), matched case-insensitively on both and
/// the action's config name.
pub fn help_entries(keys: &KeyMap, search: &str) -> Vec<(String, &'static str)> {
    let q = search.trim().to_lowercase();
    super::keys::ACTIONS
        .iter()
        .map(|(a, name, what, _)| (keys.keys_of(*a).join("/"), *name, *what))
        .filter(|(k, name, what)| {
            q.is_empty()
                || k.to_lowercase().contains(&q)
                || name.contains(&q)
                || what.to_lowercase().contains(&q)
        })
        .map(|(k, _, what)| (k, what))
        .collect()
}

/// A bead and its neighbourhood, for the detail view.
#[derive(Clone, Debug)]
pub struct Detail {
    pub bead: Box<Bead>,
    /// Beads that depend on it: (id, dependency type, status, title).
    pub dependents: Vec<(String, String, String, String)>,
    /// Status and title of what it depends on, by id.
    pub depends_on: Vec<(String, String, String, String)>,
}

/// The detail view's state.
#[derive(Debug, Default)]
pub struct DetailView {
    pub id: String,
    pub detail: Option<Detail>,
    pub history: Option<Result<Vec<LogEntry>, String>>,
    /// Scroll position (lines).
    pub scroll: u16,
    /// Selected dependency line (for navigation), over depends_on then dependents.
    pub link: usize,
}

/// A change to make to beads.
#[derive(Clone, Debug, PartialEq)]
pub enum Mutation {
    Create(Box<BeadDraft>),
    /// Write what changed between `was` and `draft`.
    Update {
        id: String,
        draft: Box<BeadDraft>,
        was: Box<BeadDraft>,
    },
    Priority {
        id: String,
        priority: i64,
    },
    AddDependency {
        id: String,
        on: String,
    },
    Close {
        id: String,
        reason: String,
    },
    Reopen {
        id: String,
    },
    /// The whole bead, as edited in `$EDITOR` (same id).
    Replace(Box<Bead>),
    /// One change to several beads, in one commit.
    Bulk {
        ids: Vec<String>,
        change: Bulk,
    },
}

/// What a bulk edit does to each bead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bulk {
    Close {
        reason: String,
    },
    Priority(i64),
    Labels {
        add: Vec<String>,
        remove: Vec<String>,
    },
    Status(String),
}

/// `t-1`, or `3 beads`.
pub fn who(ids: &[String]) -> String {
    match ids {
        [one] => one.clone(),
        many => format!("{} beads", many.len()),
    }
}

/// A change to `ids`: the one-bead mutation for one bead, else a bulk edit.
pub fn mutation_for(ids: Vec<String>, change: Bulk) -> Mutation {
    match (<[String; 1]>::try_from(ids), change) {
        (Ok([id]), Bulk::Close { reason }) => Mutation::Close { id, reason },
        (Ok([id]), Bulk::Priority(priority)) => Mutation::Priority { id, priority },
        (Ok([id]), change) => Mutation::Bulk {
            ids: vec![id],
            change,
        },
        (Err(ids), change) => Mutation::Bulk { ids, change },
    }
}

/// What the runtime should do.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    SetFilter(Filter),
    LoadDetail(String),
    LoadHistory(String),
    /// What the agents did on this bead.
    LoadWork(String),
    /// This bead's dependency view.
    LoadDeps(String),
    /// Run log `index` (0 the newest); `initial`: only if that run is over.
    LoadRun {
        index: usize,
        initial: bool,
    },
    Mutate(Mutation),
    EditExternal(String),
    Start(String),
    Stop(String),
    Auto(bool),
    Decide {
        id: String,
        verdict: Verdict,
    },
    /// Open the pair session on a bead (with this persona, or the one it matches).
    PairOpen {
        /// The app's number for the session (its events carry it).
        session: u64,
        bead: String,
        persona: Option<String>,
    },
    PairSend(String),
    PairAnswer(Confirm),
    /// Stop the reply under way.
    PairStop,
    /// End the session (a reply under way is stopped and recorded).
    PairClose,
    /// Look again after this long (paced text, counters): a tick, then a frame.
    FrameAfter(Duration),
    /// Take back the last change this window made.
    Undo,
    /// Put this text on the clipboard (OSC 52): only ever from the explicit key.
    Yank(String),
    /// Tell the person (bell, desktop notification): a decision waits.
    Notify {
        title: String,
        body: String,
    },
    Quit,
}

/// What happens to the app.
#[derive(Debug)]
pub enum AppEvent {
    Key(KeyEvent),
    /// A click or the wheel (moves are not passed on).
    Mouse(crossterm::event::MouseEvent),
    Paste(String),
    Resize,
    Board(Arc<Board>),
    Detail(Box<Detail>),
    History {
        id: String,
        entries: Result<Vec<LogEntry>, String>,
    },
    /// An orchestrator or watcher event.
    Run(Box<Event>),
    /// A bead's work, for the Work view.
    Work(Box<Work>),
    /// A bead's dependency view.
    Deps(Box<Deps>),
    /// A run's log read back.
    PastRun(Box<PastRun>),
    /// The outcome of a command: a message to show.
    Done {
        ok: bool,
        message: String,
    },
    /// The store refused what the bead form saved: the form comes back with why.
    Unsaved {
        mutation: Box<Mutation>,
        message: String,
    },
    /// Time passed (paced text, elapsed counters).
    Tick,
    /// From pair session number `session`.
    Pair {
        session: u64,
        event: PairEvent,
    },
    /// The orchestrator could not start (another one runs) or stopped.
    Orchestrator {
        running: bool,
        message: String,
    },
}

/// The header's facts about the repository.
#[derive(Clone, Debug, Default)]
pub struct RepoInfo {
    pub name: String,
    pub branch: String,
}

/// Everything on screen.
pub struct App {
    pub theme: Theme,
    pub keys: KeyMap,
    pub repo: RepoInfo,
    pub board: Arc<Board>,
    /// Whether the first board has arrived.
    pub loaded: bool,
    pub view: View,
    /// The view `esc` goes back to from the detail view.
    pub back: View,
    pub overlay: Option<Overlay>,
    /// Selected column, and the selected card of each column.
    pub col: usize,
    pub rows: [usize; COLUMNS],
    /// The selected bead (kept across board updates).
    pub selected_id: Option<String>,
    /// First card shown of each column, and where each column's cards are on screen (both
    /// updated while drawing; the mouse finds cards by them).
    pub scroll: Cell<[usize; COLUMNS]>,
    pub column_areas: Cell<[ratatui::layout::Rect; COLUMNS]>,
    pub done_folded: bool,
    pub filter: Filter,
    /// Beads marked for a bulk edit (`space`).
    pub marked: std::collections::BTreeSet<String>,
    /// Decisions on the board (`None` before the first board).
    seen_decisions: Option<std::collections::HashSet<String>>,
    pub detail: DetailView,
    /// Open the form for this bead when its detail arrives.
    pending_edit: Option<String>,
    pub logs: Logs,
    /// The live log, while the logs pane shows a past run (live events keep arriving here).
    pub parked: Option<Logs>,
    pub work: WorkView,
    pub list: ListView,
    pub deps: DepsView,
    pub live: Live,
    /// Selected row in the agents and decisions views.
    pub agents_row: usize,
    pub decisions_row: usize,
    /// The usage view's grouping and selected row.
    pub usage_group: UsageGroup,
    pub usage_row: usize,
    /// The pair session, once opened (kept while other views are shown), and how many were.
    pub pair: Option<PairView>,
    pair_sessions: u64,
    pub auto: bool,
    /// The last message (and whether it reports a failure), with when it came.
    pub message: Option<(bool, String, Instant)>,
    pub quit: bool,
}

impl App {
    pub fn new(theme: Theme, keys: KeyMap, repo: RepoInfo, now: Instant) -> App {
        App {
            theme,
            keys,
            repo,
            board: Arc::new(Board::default()),
            loaded: false,
            view: View::Board,
            back: View::Board,
            overlay: None,
            col: 0,
            rows: [0; COLUMNS],
            selected_id: None,
            scroll: Cell::new([0; COLUMNS]),
            column_areas: Cell::new([ratatui::layout::Rect::default(); COLUMNS]),
            done_folded: true,
            filter: Filter::default(),
            marked: std::collections::BTreeSet::new(),
            seen_decisions: None,
            detail: DetailView::default(),
            pending_edit: None,
            logs: Logs::default(),
            parked: None,
            work: WorkView::default(),
            list: ListView::default(),
            deps: DepsView::default(),
            live: Live::new(now),
            agents_row: 0,
            decisions_row: 0,
            usage_group: UsageGroup::Agent,
            usage_row: 0,
            pair: None,
            pair_sessions: 0,
            auto: false,
            message: None,
            quit: false,
        }
    }

    /// Notifications for decisions on `next` that were not on the board before (none for the
    /// first board: those were waiting already when the window opened).
    fn new_decisions(&mut self, next: &Board) -> Vec<Command> {
        let ids: std::collections::HashSet<String> =
            next.decisions.iter().map(|d| d.id.clone()).collect();
        let Some(seen) = self.seen_decisions.replace(ids) else {
            return Vec::new();
        };
        next.decisions
            .iter()
            .filter(|d| !seen.contains(&d.id))
            .map(|d| Command::Notify {
                title: format!("Loom: {} needs a decision", self.repo.name),
                body: format!("{} {}", d.id, d.title),
            })
            .collect()
    }

    /// Every bead on the board, for pickers: `id  title`.
    pub(super) fn bead_items(&self) -> Vec<PickItem> {
        self.board
            .columns
            .iter()
            .flatten()
            .map(|c| PickItem {
                id: c.id.clone(),
                label: format!("{}  {}", c.id, c.title),
            })
            .collect()
    }

    /// What the bead form offers: the labels in use and the beads on the board.
    pub(super) fn known(&self) -> Known {
        Known {
            labels: self.board.labels.clone(),
            beads: self.bead_items(),
        }
    }

    /// The palette's choices: every action (with its key), then every bead on the board.
    fn palette(&self) -> Picker {
        let mut items: Vec<PickItem> = super::keys::ACTIONS
            .iter()
            .filter(|(a, ..)| *a != Action::Palette)
            .map(|(a, name, what, _)| PickItem {
                id: format!("action:{name}"),
                label: format!("{what}  ({})", self.keys.hint(*a)),
            })
            .collect();
        for c in Column::ALL {
            items.extend(self.board.column(c).iter().map(|card| PickItem {
                id: format!("bead:{}", card.id),
                label: format!("go to {}  {}", card.id, card.title),
            }));
        }
        Picker::new("", items).asking("Command palette · type to find".into(), "run")
    }

    /// Runs what the palette chose.
    pub(super) fn palette_choice(&mut self, id: &str) -> Vec<Command> {
        if let Some(name) = id.strip_prefix("action:") {
            let action = super::keys::ACTIONS
                .iter()
                .find(|(_, n, ..)| *n == name)
                .map(|(a, ..)| *a);
            return action.map(|a| self.act(a)).unwrap_or_default();
        }
        let Some(bead) = id.strip_prefix("bead:") else {
            return Vec::new();
        };
        match self.board.find(bead) {
            Some((c, i)) => {
                self.view = View::Board;
                if c == Column::Done {
                    self.done_folded = false;
                }
                self.col = c.index();
                self.rows[self.col] = i;
                self.remember();
            }
            None => self.say(false, format!("{bead} is not on the board")),
        }
        Vec::new()
    }

    /// What the message overlay shows: the last message, else the run's last error
    /// (`(is an error, text)`).
    pub fn full_message(&self) -> Option<(bool, &str)> {
        match (&self.message, &self.live.last_error) {
            (Some((error, text, _)), _) => Some((*error, text.as_str())),
            (None, Some(e)) => Some((true, e.as_str())),
            (None, None) => None,
        }
    }

    /// Whether Done shows folded to its count: folded by default while other work is on the
    /// board; a finished board (nothing but Done) shows what was done.
    pub fn done_shut(&self) -> bool {
        self.done_folded
            && Column::ALL
                .iter()
                .any(|c| *c != Column::Done && self.board.count(*c) > 0)
    }

    /// The column selected now.
    pub fn column(&self) -> Column {
        Column::ALL[self.col.min(COLUMNS - 1)]
    }

    /// The bead under the cursor on the board (or in the list).
    pub fn selected(&self) -> Option<&super::model::Card> {
        if self.view == View::List {
            return self.list.card(&self.board, self.list.row);
        }
        if self.column() == Column::Done && self.done_shut() {
            return None;
        }
        self.board.column(self.column()).get(self.rows[self.col])
    }

    fn selected_bead(&self) -> Option<String> {
        match self.view {
            View::Detail => Some(self.detail.id.clone()),
            View::Work => Some(self.work.id.clone()),
            View::Deps => self.deps.selected().map(str::to_owned),
            View::Agents => self.live.agents.keys().nth(self.agents_row).cloned(),
            View::Decisions => self
                .board
                .decisions
                .get(self.decisions_row)
                .map(|d| d.id.clone()),
            _ => self.selected().map(|c| c.id.clone()),
        }
    }

    fn say_if_not(&mut self, ok: bool, text: &str) {
        if !ok {
            self.say(false, text);
        }
    }

    fn say(&mut self, ok: bool, text: impl Into<String>) {
        self.message = Some((!ok, text.into(), Instant::now()));
    }

    /// Follows the selected bead to wherever the new board put it.
    fn reselect(&mut self) {
        if let Some(id) = &self.selected_id
            && let Some((c, i)) = self.board.find(id)
            && !(c == Column::Done && self.done_shut() && self.column() != Column::Done)
        {
            self.col = c.index();
            self.rows[self.col] = i;
            return;
        }
        for c in Column::ALL {
            let n = self.board.column(c).len();
            let r = &mut self.rows[c.index()];
            *r = (*r).min(n.saturating_sub(1));
        }
        // A column that folded away (an emptied Deferred) hands the cursor to its left.
        while self.col > 0 && !self.board.shown(self.column()) {
            self.col -= 1;
        }
        self.remember();
    }

    fn remember(&mut self) {
        self.selected_id = self.selected().map(|c| c.id.clone());
    }

    /// An event from the runtime.
    pub fn event(&mut self, e: AppEvent, now: Instant) -> Vec<Command> {
        match e {
            AppEvent::Key(k) => self.key(k),
            AppEvent::Mouse(m) => self.mouse(m),
            AppEvent::Paste(text) => {
                match &mut self.overlay {
                    Some(Overlay::Form(f)) => f.paste(&text),
                    Some(Overlay::Filter(i) | Overlay::Search(i)) => i.paste(&text),
                    Some(Overlay::Close { reason: i, .. } | Overlay::Answer { text: i, .. }) => {
                        i.paste(&text)
                    }
                    None if self.view == View::Pair => {
                        if let Some(p) = &mut self.pair {
                            p.paste(&text);
                        }
                    }
                    _ => {}
                }
                Vec::new()
            }
            AppEvent::Resize => Vec::new(),
            AppEvent::Board(b) => {
                let mut notify = self.new_decisions(&b);
                if !self.loaded {
                    // The last run's log, if it is over (a running one is followed live).
                    notify.push(Command::LoadRun {
                        index: 0,
                        initial: true,
                    });
                }
                let old = std::mem::replace(&mut self.board, b);
                // Freeing a board of 100,000 cards takes a while: not on the UI's time.
                if old.total > 20_000 {
                    let _ = std::thread::Builder::new()
                        .name("loom-free-board".into())
                        .spawn(move || drop(old));
                }
                self.loaded = true;
                // A mark on a bead that left the board (deleted, filtered out) goes.
                let board = Arc::clone(&self.board);
                self.marked.retain(|id| board.find(id).is_some());
                if self.view == View::List {
                    let keep = self.selected().map(|c| c.id.clone());
                    self.list.rebuild(&board, keep.as_deref());
                }
                self.reselect();
                self.decisions_row = self
                    .decisions_row
                    .min(self.board.decisions.len().saturating_sub(1));
                let mut out = notify;
                // A bead shown in detail that changed: load it and its history again.
                if self.view == View::Detail && !self.detail.id.is_empty() {
                    out.push(Command::LoadDetail(self.detail.id.clone()));
                    out.push(Command::LoadHistory(self.detail.id.clone()));
                }
                out
            }
            AppEvent::Detail(d) => {
                let id = d.bead.id.clone();
                if self.pending_edit.as_deref() == Some(id.as_str()) {
                    self.pending_edit = None;
                    let draft = draft_of(&d.bead);
                    self.overlay = Some(Overlay::Form(Box::new(BeadForm::edit(
                        &id,
                        &draft,
                        self.known(),
                    ))));
                }
                if self.detail.id == id {
                    self.detail.detail = Some(*d);
                }
                Vec::new()
            }
            AppEvent::History { id, entries } => {
                if self.detail.id == id {
                    self.detail.history = Some(entries);
                }
                Vec::new()
            }
            AppEvent::Run(ev) => {
                self.live.apply(&ev, now);
                match self.live_logs().apply(&ev, now) {
                    Some(d) => vec![Command::FrameAfter(d)],
                    None => Vec::new(),
                }
            }
            AppEvent::Work(w) => {
                if self.work.id == w.id {
                    self.work.set(*w);
                }
                Vec::new()
            }
            AppEvent::Deps(d) => {
                if self.deps.root == d.root {
                    self.deps.deps = Some(*d);
                    self.deps.move_by(0);
                }
                Vec::new()
            }
            AppEvent::PastRun(run) => {
                self.past_run(*run);
                Vec::new()
            }
            AppEvent::Tick => {
                let pair = self.pair.as_mut().and_then(|p| p.pump(now));
                [self.live_logs().pump(now), pair]
                    .into_iter()
                    .flatten()
                    .min()
                    .map(Command::FrameAfter)
                    .into_iter()
                    .collect()
            }
            AppEvent::Pair { session, event } => {
                let pair_view = self.view == View::Pair;
                let hint = self.keys.hint(Action::Pair);
                let Some(p) = self.pair.as_mut().filter(|p| p.session == session) else {
                    return Vec::new(); // a superseded session
                };
                let ask = match (&event, pair_view) {
                    (PairEvent::Ask { title, .. }, false) => Some(format!(
                        "{}: the agent asks to {title} — {hint} to answer",
                        p.bead
                    )),
                    _ => None,
                };
                let next = p.event(event, now);
                if let Some(text) = ask {
                    self.say(true, text);
                }
                next.map(Command::FrameAfter).into_iter().collect()
            }
            AppEvent::Done { ok, message } => {
                self.say(ok, message);
                Vec::new()
            }
            AppEvent::Unsaved { mutation, message } => {
                self.reopen_form(*mutation, message);
                Vec::new()
            }
            AppEvent::Orchestrator { running, message } => {
                self.live.orchestrating = running;
                self.say(running, message);
                Vec::new()
            }
        }
    }

    /// A key press.
    pub fn key(&mut self, k: KeyEvent) -> Vec<Command> {
        if self.overlay.is_some() {
            return self.overlay_key(k);
        }
        if self.view == View::Pair {
            return self.pair_key(k);
        }
        let Some(action) = self.keys.action(&k) else {
            return Vec::new();
        };
        self.act(action)
    }

    /// Does what `action` does here (a key, or a choice in the command palette).
    pub fn act(&mut self, action: Action) -> Vec<Command> {
        match action {
            Action::Palette => {
                self.overlay = Some(Overlay::Palette(Box::new(self.palette())));
                return Vec::new();
            }
            Action::Undo if matches!(self.view, View::Board | View::Detail) => {
                return vec![Command::Undo];
            }
            Action::Yank => {
                return match self.selected_bead() {
                    Some(id) => {
                        self.say(true, format!("copied {id}"));
                        vec![Command::Yank(id)]
                    }
                    None => {
                        self.say(false, "no bead selected to copy");
                        Vec::new()
                    }
                };
            }
            Action::Quit => {
                self.quit = true;
                return vec![Command::Quit];
            }
            Action::Help => {
                self.overlay = Some(Overlay::help());
                return Vec::new();
            }
            Action::Message => {
                if self.full_message().is_some() {
                    self.overlay = Some(Overlay::Message { scroll: 0 });
                } else {
                    self.say(true, "no message to show");
                }
                return Vec::new();
            }
            Action::Board => return self.switch(View::Board),
            Action::Logs => {
                if self.view == View::Board || self.view == View::Detail {
                    self.logs.only = self.selected_bead();
                }
                return self.switch(View::Logs);
            }
            Action::Agents => return self.switch(View::Agents),
            Action::Decisions => return self.switch(View::Decisions),
            Action::Usage => return self.switch(View::Usage),
            Action::NextPane => {
                let i = View::TABS.iter().position(|v| *v == self.view).unwrap_or(0);
                return self.switch(View::TABS[(i + 1) % View::TABS.len()]);
            }
            Action::Auto => {
                self.auto = !self.auto;
                return vec![Command::Auto(self.auto)];
            }
            _ => {}
        }
        match self.view {
            View::Board => self.board_action(action),
            View::Detail => self.detail_action(action),
            View::Logs => self.logs_action(action),
            View::Agents => self.agents_action(action),
            View::Decisions => self.decisions_action(action),
            View::Usage => self.usage_action(action),
            View::Pair => Vec::new(),
            View::Work => self.work_action(action),
            View::List => self.list_action(action),
            View::Deps => self.deps_action(action),
        }
    }

    fn switch(&mut self, v: View) -> Vec<Command> {
        self.view = v;
        Vec::new()
    }

    fn open_detail(&mut self, id: String) -> Vec<Command> {
        if self.view != View::Detail {
            self.back = self.view;
        }
        self.view = View::Detail;
        self.detail = DetailView {
            id: id.clone(),
            ..DetailView::default()
        };
        vec![Command::LoadDetail(id.clone()), Command::LoadHistory(id)]
    }
}

mod mouse;
mod overlay;
mod pair;
mod views;

#[cfg(test)]
mod tests;

/// The form's view of a bead.
pub fn draft_of(b: &Bead) -> BeadDraft {
    use crate::bead::dep_type;
    let text = |t: &Option<String>| t.clone().unwrap_or_default();
    BeadDraft {
        title: b.title.clone(),
        issue_type: b.issue_type.clone(),
        priority: b.priority,
        status: b.status.clone(),
        assignee: text(&b.assignee),
        labels: b.labels.clone(),
        parent: b
            .dependencies
            .iter()
            .find(|x| x.dep_type == dep_type::PARENT_CHILD)
            .map(|x| x.depends_on_id.clone())
            .unwrap_or_default(),
        depends_on: b
            .dependencies
            .iter()
            .filter(|x| {
                dep_type::blocks_directly(&x.dep_type) && x.dep_type != dep_type::PARENT_CHILD
            })
            .map(|x| x.depends_on_id.clone())
            .collect(),
        description: text(&b.description),
        design: text(&b.design),
        acceptance: text(&b.acceptance_criteria),
        notes: text(&b.notes),
    }
}
