//! The TUI's background work: it carries out the app's [`Command`]s off the UI task and answers
//! with [`AppEvent`]s. The board is rebuilt by one task that coalesces requests (the watcher,
//! filters, our own writes) and reads the disk only when something changed there; writes,
//! loads and git run on the blocking pool; the orchestrator is started on the first `s` or `S`
//! and steered through its control channel.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, mpsc};

use crate::agent::persona::PersonaSet;
use crate::bead::{Bead, Timestamp, status};
use crate::error::{Error, Result};
use crate::event::{Event, EventBus, EventKind};
use crate::llm::Client;
use crate::ops::change::{Change, Edited, Patch};
use crate::ops::decision::{self, Verdict};
use crate::ops::{self, CommitKind, DepSpec, NewBead};
use crate::orchestrator::dispatch::{self, Control, Setup};
use crate::orchestrator::report::StopReason;
use crate::orchestrator::settings::RunSettings;
use crate::store::watch::{Armed, Seed, Watcher};
use crate::store::{self, Snapshot, TxOptions};
use crate::workspace::Workspace;

use super::app::{AppEvent, Bulk, Detail, Mutation};
use super::forms::BeadDraft;
use super::model::{self, Filter};

/// Stores above this many beads show a first screen before all cards are built.
const FIRST_SCREEN_FROM: usize = 5_000;

mod follow;
mod glimpse;
mod runs;

pub use runs::PastRun;
mod pair;

/// How the TUI runs agents: everything `loom run` needs but the bead scope.
pub struct AgentSetup {
    pub client: Client,
    pub settings: RunSettings,
    pub personas: Option<PersonaSet>,
    /// `loom` itself, for Landlock.
    pub helper: Option<PathBuf>,
}

/// The orchestrator of this window, once started.
struct Running {
    control: mpsc::UnboundedSender<Control>,
    stop: Arc<Notify>,
    /// Set to `true` when the run has ended.
    ended: tokio::sync::watch::Receiver<bool>,
}

/// Wakes the board task: after a change on disk (read it again), or to re-filter the last
/// snapshot. Wake-ups coalesce.
#[derive(Clone, Default)]
struct Rebuild {
    disk_changed: Arc<AtomicBool>,
    wake: Arc<Notify>,
}

impl Rebuild {
    fn disk_changed(&self) {
        self.disk_changed.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn refilter(&self) {
        self.wake.notify_one();
    }
}

type Shared<T> = Arc<Mutex<T>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Carries out commands; cheap to call from the UI task (everything slow is spawned).
pub struct Worker {
    ws: Workspace,
    events: mpsc::UnboundedSender<AppEvent>,
    filter: Shared<Filter>,
    latest: Shared<Option<Arc<Snapshot>>>,
    rebuild: Rebuild,
    agents: Option<AgentSetup>,
    /// Why agents cannot run here (no endpoint configured, …), said on `s`.
    agents_unavailable: Option<String>,
    running: Shared<Option<Running>>,
    /// The pair session (`worker/pair.rs`), and stopped replies still being recorded.
    pair: Shared<Option<pair::PairSlot>>,
    pair_replies: Shared<Vec<tokio::task::JoinHandle<()>>>,
    /// Started by the board task once the first board is out (seeded with its snapshot).
    watcher: Shared<Option<Watcher>>,
    /// What each change of this window did, newest last (`u` takes the last back).
    undo: Shared<Vec<Vec<store::Change>>>,
    _follower: Option<follow::Follower>,
}

impl Worker {
    /// Starts the board task and the watcher (must run inside the runtime). `agents` is how to
    /// run agents, or why they cannot run.
    pub fn start(
        ws: Workspace,
        agents: std::result::Result<AgentSetup, String>,
        events: mpsc::UnboundedSender<AppEvent>,
    ) -> Worker {
        let (agents, agents_unavailable) = match agents {
            Ok(a) => (Some(a), None),
            Err(why) => (None, Some(why)),
        };
        let mut w = Worker {
            ws,
            events,
            filter: Arc::default(),
            latest: Arc::default(),
            rebuild: Rebuild::default(),
            agents,
            agents_unavailable,
            running: Arc::default(),
            pair: Arc::default(),
            pair_replies: Arc::default(),
            watcher: Arc::default(),
            undo: Arc::default(),
            _follower: None,
        };
        let armed = w.arm();
        // The first screen at once from the cache, when the store is as it was.
        if let Some(board) = glimpse::load(&w.ws) {
            let _ = w.events.send(AppEvent::Board(Arc::new(board)));
        }
        w.spawn_board_task(armed);
        w._follower = w.follow();
        w.rebuild.disk_changed();
        w
    }

    /// The one task that builds boards: each wake-up reads the disk if it changed (else
    /// reuses the last snapshot) and builds the board under the current filter. It reads what
    /// listings need (`load_index`: no long texts), so the first board of a large store shows
    /// fast; once it is out, the watcher `armed` (registered before that read, so no change is
    /// missed) reads the beads completely on its own thread as its baseline and hands that
    /// snapshot back for the next board.
    fn spawn_board_task(&self, armed: Option<Armed>) {
        let (ws, filter, latest) = (
            self.ws.clone(),
            Arc::clone(&self.filter),
            Arc::clone(&self.latest),
        );
        let (rebuild, events) = (self.rebuild.clone(), self.events.clone());
        let mut armed = armed.map(|a| (a, self.watch_sink(), Arc::clone(&self.watcher)));
        tokio::spawn(async move {
            // Whether a board from the store is out (a glimpse from the cache is not).
            let mut shown = false;
            loop {
                rebuild.wake.notified().await;
                let (ws, filter, snap_slot) =
                    (ws.clone(), Arc::clone(&filter), Arc::clone(&latest));
                let changed = rebuild.disk_changed.swap(false, Ordering::SeqCst);
                let early = (!shown).then(|| events.clone());
                let built = tokio::task::spawn_blocking(move || -> Result<model::Board> {
                    let reuse = lock(&snap_slot).clone();
                    let mut read_as = None;
                    let snap = match reuse {
                        Some(s) if !changed => s,
                        _ => {
                            // Taken before the read: a change during it makes the glimpse
                            // stale by fingerprint, never wrong for it.
                            read_as = glimpse::fingerprint(&ws);
                            let s = Arc::new(ws.store.load_index()?);
                            *lock(&snap_slot) = Some(Arc::clone(&s));
                            s
                        }
                    };
                    let f = lock(&filter).clone();
                    let mut plan = model::Plan::new(&snap.beads, &f, snap.problems.len());
                    // Decisions show their whole text (an index snapshot has none).
                    for d in plan.decisions_mut() {
                        if let Some(b) = snap.beads.iter().find(|b| b.id == d.id) {
                            d.description = snap.full(b).description.clone().unwrap_or_default();
                        }
                    }
                    // A large store read afresh shows its first screen (every count, the top
                    // cards) before all its cards are built.
                    if let Some(early) = early
                        && snap.beads.len() > FIRST_SCREEN_FROM
                    {
                        let first = plan.board(&snap.beads, Some(glimpse::CARDS));
                        let _ = early.send(AppEvent::Board(Arc::new(first)));
                    }
                    let board = plan.board(&snap.beads, None);
                    if let Some(fp) = read_as
                        && f == Filter::default()
                    {
                        glimpse::save(&ws, &fp, &board);
                    }
                    Ok(board)
                })
                .await;
                let event = match built {
                    Ok(Ok(board)) => AppEvent::Board(Arc::new(board)),
                    Ok(Err(e)) => AppEvent::Done {
                        ok: false,
                        message: format!("cannot read the beads: {e}"),
                    },
                    Err(e) => AppEvent::Done {
                        ok: false,
                        message: format!("the board task failed: {e}"),
                    },
                };
                if events.send(event).is_err() {
                    return;
                }
                shown = true;
                if let Some((a, sink, slot)) = armed.take() {
                    let events = events.clone();
                    let (latest, rebuild) = (Arc::clone(&latest), rebuild.clone());
                    let seed = Seed::Background(Box::new(move |full| {
                        *lock(&latest) = Some(full);
                        rebuild.refilter();
                    }));
                    tokio::task::spawn_blocking(move || {
                        match a.start(crate::store::watch::DEBOUNCE, sink, None, seed) {
                            Ok(w) => *lock(&slot) = Some(w),
                            Err(e) => {
                                let _ = events.send(watch_failed(&e));
                            }
                        }
                    });
                }
            }
        });
    }

    /// Registers the watch on `.beads/` (its events wait until the first board is out).
    fn arm(&self) -> Option<Armed> {
        match crate::store::watch::arm(&self.ws.store.detached()) {
            Ok(a) => Some(a),
            Err(e) => {
                let _ = self.events.send(watch_failed(&e));
                None
            }
        }
    }

    /// What the watcher does with a change (every change, ours included): rebuild the board,
    /// and tell the app what it would not hear from a run.
    fn watch_sink(&self) -> impl FnMut(crate::store::watch::StoreChange) + Send + 'static {
        let (rebuild, events) = (self.rebuild.clone(), self.events.clone());
        let running = Arc::clone(&self.running);
        move |e| {
            use crate::store::watch::StoreChange;
            let problem = matches!(e, StoreChange::WatchFailed(_) | StoreChange::Problem(_));
            if !problem {
                rebuild.disk_changed();
            }
            // The orchestrator's own watcher reports bead changes while it runs.
            if problem || lock(&running).is_none() {
                let _ = events.send(AppEvent::Run(Box::new(Event::from(e))));
            }
        }
    }

    /// Rebuilds the board with a new filter (no disk read).
    pub fn set_filter(&self, f: Filter) {
        *lock(&self.filter) = f;
        self.rebuild.refilter();
    }

    /// Loads bead `id` with its dependencies both ways.
    pub fn load_detail(&self, id: String) {
        let (ws, latest, events) = (
            self.ws.clone(),
            Arc::clone(&self.latest),
            self.events.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let snap = match snapshot(&ws, &latest) {
                Ok(s) => s,
                Err(e) => {
                    let _ = events.send(AppEvent::Done {
                        ok: false,
                        message: format!("cannot read the beads: {e}"),
                    });
                    return;
                }
            };
            let event = match detail(&snap, &id) {
                Some(d) => AppEvent::Detail(Box::new(d)),
                None => AppEvent::Done {
                    ok: false,
                    message: format!("{id} is gone"),
                },
            };
            let _ = events.send(event);
        });
    }

    /// Builds the dependency view of bead `id`.
    pub fn load_deps(&self, id: String) {
        let (ws, latest, events) = (
            self.ws.clone(),
            Arc::clone(&self.latest),
            self.events.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let event = match snapshot(&ws, &latest) {
                Err(e) => AppEvent::Done {
                    ok: false,
                    message: format!("cannot read the beads: {e}"),
                },
                Ok(snap) => match super::deps::build(&snap.beads, &id) {
                    Some(d) => AppEvent::Deps(Box::new(d)),
                    None => AppEvent::Done {
                        ok: false,
                        message: format!("{id} is gone"),
                    },
                },
            };
            let _ = events.send(event);
        });
    }

    /// Loads bead `id`'s history from git.
    pub fn load_history(&self, id: String) {
        let (repo, events) = (self.ws.repo.clone(), self.events.clone());
        let file = self.ws.bead_file(&id);
        tokio::task::spawn_blocking(move || {
            let entries = match repo {
                Some(r) => r
                    .log(Some(&id), file.as_deref(), 100)
                    .map_err(|e| e.to_string()),
                None => Err("not a git repository: no history".to_owned()),
            };
            let _ = events.send(AppEvent::History { id, entries });
        });
    }

    /// Takes back the last change made in this window (a new commit), then says what happened.
    pub fn undo(&self) {
        let (ws, events, rebuild) = (self.ws.clone(), self.events.clone(), self.rebuild.clone());
        let last = lock(&self.undo).pop();
        tokio::task::spawn_blocking(move || {
            let (ok, message) = match last {
                None => (
                    false,
                    "nothing you changed in this window to undo".to_owned(),
                ),
                Some(changes) => match ops::undo::undo(&ws, &changes) {
                    Ok(m) => (true, format!("undone: {}", m.value.join(", "))),
                    Err(e) => (false, e.with_hint()),
                },
            };
            rebuild.disk_changed();
            let _ = events.send(AppEvent::Done { ok, message });
        });
    }

    /// Writes and commits a change, then says what happened.
    pub fn mutate(&self, m: Mutation) {
        let (ws, events, rebuild) = (self.ws.clone(), self.events.clone(), self.rebuild.clone());
        let undo = Arc::clone(&self.undo);
        tokio::task::spawn_blocking(move || {
            let mut took = Vec::new();
            let event = match apply_keeping(&ws, &m, &mut took) {
                Ok(message) => AppEvent::Done { ok: true, message },
                Err(e) if matches!(m, Mutation::Create(_) | Mutation::Update { .. }) => {
                    AppEvent::Unsaved {
                        mutation: Box::new(m),
                        message: e.with_hint(),
                    }
                }
                Err(e) => AppEvent::Done {
                    ok: false,
                    message: e.with_hint(),
                },
            };
            if !took.is_empty() {
                lock(&undo).push(took);
            }
            rebuild.disk_changed();
            let _ = events.send(event);
        });
    }

    /// Resolves a decision.
    pub fn decide(&self, id: String, verdict: Verdict) {
        let (ws, events, rebuild) = (self.ws.clone(), self.events.clone(), self.rebuild.clone());
        tokio::task::spawn_blocking(move || {
            let (ok, message) = match decision::decide(&ws, &id, &verdict) {
                Ok(d) => {
                    let beads: Vec<String> = d
                        .beads
                        .iter()
                        .map(|b| format!("{} {}", b.id, b.result))
                        .collect();
                    (
                        true,
                        format!("{}: {} — {}", d.decision, d.verdict, beads.join(", ")),
                    )
                }
                Err(e) => (false, e.with_hint()),
            };
            rebuild.disk_changed();
            let _ = events.send(AppEvent::Done { ok, message });
        });
    }

    /// Steers the orchestrator, starting it first if needed.
    pub fn control(&mut self, c: Control) {
        if let Control::Stop(_) = c
            && lock(&self.running).is_none()
        {
            let _ = self.events.send(AppEvent::Done {
                ok: false,
                message: "no agent runs in this window".into(),
            });
            return;
        }
        let started = lock(&self.running)
            .as_ref()
            .map(|r| r.control.send(c.clone()).is_ok());
        if started == Some(true) {
            return;
        }
        if let Err(why) = self.start_orchestrator(c) {
            let _ = self.events.send(AppEvent::Done {
                ok: false,
                message: why,
            });
        }
    }

    /// Starts the orchestrator with `first` as its first instruction.
    fn start_orchestrator(&mut self, first: Control) -> std::result::Result<(), String> {
        let Some(a) = &self.agents else {
            return Err(self
                .agents_unavailable
                .clone()
                .unwrap_or_else(|| "agents cannot run here".into()));
        };
        let bus = EventBus::new(16 * 1024);
        let (control, rx) = mpsc::unbounded_channel();
        let _ = control.send(first);
        let stop = Arc::new(Notify::new());
        let setup = Setup {
            ws: self.ws.clone(),
            client: a.client.clone(),
            settings: RunSettings {
                idle_exit: false,
                ..a.settings.clone()
            },
            bus: Arc::clone(&bus),
            helper: a.helper.clone(),
            command: "loom (TUI)".into(),
            personas: a.personas.clone(),
            stop: Some(Arc::clone(&stop)),
            control: Some(rx),
            pool: false,
        };
        let (ended_tx, ended) = tokio::sync::watch::channel(false);
        *lock(&self.running) = Some(Running {
            control,
            stop,
            ended,
        });
        // Forward the run's events to the app.
        let mut sub = bus.subscribe();
        let events = self.events.clone();
        tokio::spawn(async move {
            loop {
                match sub.recv().await {
                    Ok(e) => {
                        let last = matches!(e.kind, EventKind::RunFinished { .. });
                        if events.send(AppEvent::Run(Box::new(e))).is_err() || last {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                }
            }
        });
        let (running, events, rebuild) = (
            Arc::clone(&self.running),
            self.events.clone(),
            self.rebuild.clone(),
        );
        tokio::spawn(async move {
            let result = dispatch::run(setup).await;
            *lock(&running) = None;
            ended_tx.send_replace(true);
            rebuild.disk_changed();
            let event = match result {
                Ok(s) => AppEvent::Orchestrator {
                    running: false,
                    message: format!("agents stopped: {}", stop_text(s.stopped)),
                },
                // It never ran (e.g. another process holds the repository, whose run this
                // window may be following): nothing to mark stopped.
                Err(e) => AppEvent::Done {
                    ok: false,
                    message: format!("agents cannot run: {}", e.with_hint()),
                },
            };
            let _ = events.send(event);
        });
        Ok(())
    }

    /// Stops the orchestrator (running beads are given back) and waits for it, bounded.
    pub async fn shutdown(&self) {
        self.pair_shutdown().await;
        let run = lock(&self.running)
            .as_ref()
            .map(|r| (Arc::clone(&r.stop), r.ended.clone()));
        let Some((stop, mut ended)) = run else { return };
        stop.notify_one();
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(30), ended.wait_for(|e| *e)).await;
    }

    /// Bead `id` complete, from the last snapshot or the disk.
    pub fn full_bead(&self, id: &str) -> Result<Bead> {
        let snap = snapshot(&self.ws, &self.latest)?;
        snap.beads
            .iter()
            .find(|b| b.id == id)
            .map(|b| snap.full(b).into_owned())
            .ok_or_else(|| Error::NotFound(id.to_owned()))
    }
}

/// The last snapshot the board task read, else the disk's.
fn snapshot(ws: &Workspace, latest: &Mutex<Option<Arc<Snapshot>>>) -> Result<Arc<Snapshot>> {
    match lock(latest).clone() {
        Some(s) => Ok(s),
        None => Ok(Arc::new(ws.store.load()?)),
    }
}

fn stop_text(s: StopReason) -> &'static str {
    match s {
        StopReason::Finished => "nothing left to do",
        StopReason::MaxBeads | StopReason::MaxTokens => "a limit was reached",
        StopReason::Timeout => "the time limit passed",
        StopReason::EndpointDown => "the model endpoint is unusable (see the logs)",
        StopReason::Interrupted => "stopped",
        StopReason::RunLimit => "a run limit was reached: a decision asks how to go on",
    }
}

/// Bead `id` from `snap`, complete, with what it depends on and what depends on it.
pub fn detail(snap: &Snapshot, id: &str) -> Option<Detail> {
    let bead = snap.beads.iter().find(|b| b.id == id)?;
    let bead = snap.full(bead).into_owned();
    let describe = |id: &str| {
        snap.beads
            .iter()
            .find(|b| b.id == id)
            .map(|b| (b.status.clone(), b.title.clone()))
            .unwrap_or_else(|| ("missing".into(), String::new()))
    };
    let depends_on = bead
        .dependencies
        .iter()
        .map(|d| {
            let (st, title) = describe(&d.depends_on_id);
            (d.depends_on_id.clone(), d.dep_type.clone(), st, title)
        })
        .collect();
    let dependents = snap
        .beads
        .iter()
        .flat_map(|b| {
            b.dependencies
                .iter()
                .filter(|d| d.depends_on_id == id)
                .map(move |d| {
                    (
                        b.id.clone(),
                        d.dep_type.clone(),
                        b.status.clone(),
                        b.title.clone(),
                    )
                })
        })
        .collect();
    Some(Detail {
        bead: Box::new(bead),
        dependents,
        depends_on,
    })
}

/// The app's word that the watcher could not start.
fn watch_failed(e: &Error) -> AppEvent {
    AppEvent::Run(Box::new(Event::new(EventKind::WatchError {
        message: format!("cannot watch .beads/ ({e}); changes by others show after your next edit"),
    })))
}

/// Carries out a mutation; returns what to tell the user.
pub fn apply(ws: &Workspace, m: &Mutation) -> Result<String> {
    apply_keeping(ws, m, &mut Vec::new())
}

/// [`apply`], adding what it changed to `took` (for undo).
fn apply_keeping(ws: &Workspace, m: &Mutation, took: &mut Vec<store::Change>) -> Result<String> {
    let now = Timestamp::now();
    let actor = ws.actor.clone();
    let opts = TxOptions::default;
    match m {
        Mutation::Create(d) => {
            let mut new = NewBead::new(d.title.clone(), actor.clone());
            let text = |t: &str| (!t.is_empty()).then(|| t.to_owned());
            new.description = text(&d.description);
            new.design = text(&d.design);
            new.acceptance_criteria = text(&d.acceptance);
            new.notes = text(&d.notes);
            new.assignee = text(&d.assignee);
            new.labels = d.labels.clone();
            new.parent = text(&d.parent);
            new.issue_type = d.issue_type.clone();
            new.priority = d.priority;
            new.deps = d
                .depends_on
                .iter()
                .map(|on| DepSpec::parse(on))
                .collect::<Result<_>>()?;
            let done = ws.mutate(CommitKind::Created, opts(), |tx| {
                let id = ops::create(tx, &new, &now)?;
                if d.status == status::CLOSED {
                    // As `x` would: refused while what it is blocked by is open.
                    ops::edit::close(tx, &id, "Closed", false, &now)?;
                } else if d.status != status::OPEN && !d.status.is_empty() {
                    ops::edit::set_status(tx, &id, &d.status, None, &now)?;
                }
                Ok(id)
            })?;
            took.extend(done.applied.changes);
            Ok(format!("created {}: {}", done.value, d.title))
        }
        Mutation::Update { id, draft, was } => {
            let mut patch = changed(draft, was);
            if patch.status.as_deref() == Some(status::CLOSED) {
                // Closing from the form is closing: the rest of the edit and the close in one
                // commit, refused while open beads block it (as `x` is).
                patch.status = None;
                let update = Change::Update(Box::new(patch));
                let done = ws.mutate(CommitKind::Closed, opts(), |tx| {
                    let id = tx.resolve(id)?;
                    ops::change::apply(tx, &id, &update, &actor, &now)?;
                    ops::edit::close(tx, &id, "Closed", false, &now)
                })?;
                took.extend(done.applied.changes);
                return Ok(format!("updated and closed {id}"));
            }
            let done = edit(ws, took, id, Change::Update(Box::new(patch)))?;
            Ok(if done.unchanged {
                format!("{id}: nothing changed")
            } else {
                format!("updated {id}")
            })
        }
        Mutation::Priority { id, priority } => {
            let patch = Patch {
                priority: Some(*priority),
                ..Patch::default()
            };
            edit(ws, took, id, Change::Update(Box::new(patch)))?;
            Ok(format!("{id} is P{priority} now"))
        }
        Mutation::AddDependency { id, on } => {
            let done = edit(ws, took, id, Change::blocked_by(on.clone()))?;
            Ok(if done.unchanged {
                format!("{id} already depends on {on}")
            } else {
                format!("{id} depends on {on} now")
            })
        }
        Mutation::Close { id, reason } => {
            let close = Change::Close {
                reason: reason.clone(),
                force: false,
            };
            edit(ws, took, id, close)?;
            Ok(format!("closed {id}"))
        }
        Mutation::Replace(b) => {
            edit(ws, took, &b.id, Change::Replace(b.clone()))?;
            Ok(format!("updated {} from the editor", b.id))
        }
        Mutation::Bulk { ids, change } => {
            let (c, done) = match change {
                Bulk::Close { reason } => (
                    Change::Close {
                        reason: reason.clone(),
                        force: false,
                    },
                    "closed".to_owned(),
                ),
                Bulk::Priority(p) => (
                    Change::Update(Box::new(Patch {
                        priority: Some(*p),
                        ..Patch::default()
                    })),
                    format!("set to P{p}"),
                ),
                // Closing through the status picker is closing: refused while open beads
                // block it, as `x` is.
                Bulk::Status(st) if st == status::CLOSED => (
                    Change::Close {
                        reason: "Closed".into(),
                        force: false,
                    },
                    "closed".to_owned(),
                ),
                Bulk::Status(st) => (
                    Change::Update(Box::new(Patch {
                        status: Some(st.clone()),
                        ..Patch::default()
                    })),
                    format!("set to {st}"),
                ),
                Bulk::Labels { add, remove } => (
                    Change::Label {
                        add: ops::edit::parse_labels(add)?,
                        remove: remove.clone(),
                    },
                    "relabelled".to_owned(),
                ),
            };
            let m = ops::change::edit(ws, ids, &c)?;
            took.extend(m.applied.changes);
            Ok(match ids.as_slice() {
                [one] => format!("{one} {done}"),
                many => format!("{} beads {done}", many.len()),
            })
        }
        Mutation::Reopen { id } => {
            edit(ws, took, id, Change::Reopen { reason: None })?;
            Ok(format!("reopened {id}"))
        }
    }
}

/// What the form changed, as a patch: only the fields that differ from `was`, so an edit
/// never writes back what someone else changed meanwhile in a field the user left alone.
fn changed(d: &BeadDraft, was: &BeadDraft) -> Patch {
    let text =
        |now: &str, then: &str| (now != then).then(|| (!now.is_empty()).then(|| now.to_owned()));
    let differs = |now: &String, then: &String| (now != then).then(|| now.clone());
    Patch {
        title: differs(&d.title, &was.title),
        issue_type: differs(&d.issue_type, &was.issue_type),
        priority: (d.priority != was.priority).then_some(d.priority),
        status: differs(&d.status, &was.status),
        assignee: text(&d.assignee, &was.assignee),
        labels: (d.labels != was.labels).then(|| d.labels.clone()),
        parent: text(&d.parent, &was.parent),
        blockers: (d.depends_on != was.depends_on).then(|| d.depends_on.clone()),
        description: text(&d.description, &was.description),
        design: text(&d.design, &was.design),
        acceptance_criteria: text(&d.acceptance, &was.acceptance),
        notes: text(&d.notes, &was.notes),
        ..Patch::default()
    }
}

/// One change to one bead, as this window's user.
fn edit(ws: &Workspace, took: &mut Vec<store::Change>, id: &str, change: Change) -> Result<Edited> {
    let m = ops::change::edit(ws, std::slice::from_ref(&id.to_owned()), &change)?;
    took.extend(m.applied.changes);
    m.value
        .into_iter()
        .next()
        .ok_or_else(|| Error::NotFound(id.to_owned()))
}
