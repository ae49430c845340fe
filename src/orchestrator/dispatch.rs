//! The dispatcher: one event loop that starts ready beads while agent slots are free. It wakes
//! on the store watcher (a bead created, unblocked or edited on disk, within milliseconds), on
//! pipelines finishing, on the endpoint's health changing, and on the run's limits; it never
//! polls. It ends the run when nothing is ready or running (or a limit is reached).
//!
//! Before dispatching it takes the repository's orchestrator lock, reopens beads whose owner
//! died, and sweeps worktrees that are merged and clean.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;

use crate::bead::graph::{Graph, ReadyFilter, SortPolicy};
use crate::bead::{Bead, dep_type, issue_type, status};
use crate::error::Result;
use crate::event::{Event, EventBus, EventKind, Stage};
use crate::llm::{Client, Health};
use crate::store::Snapshot;
use crate::workspace::Workspace;

use super::context::Context;
use super::lock::{self, Owner};
use super::pipeline;
use super::report::{self, BeadReport, RunSummary, StopReason};
use super::settings::RunSettings;

/// How quickly the dispatcher reacts to files changing under `.beads/`.
pub const WATCH_DEBOUNCE: Duration = Duration::from_millis(10);

/// A ready bead, as the dispatch policy sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub issue_type: String,
    /// `metadata.loom.dispatches` (0 after a decision reset it).
    pub dispatches: u64,
}

/// What the policy knows about the run.
#[derive(Debug, Default)]
pub struct RunState {
    pub running: HashSet<String>,
    /// Beads dispatched in this run, with their dispatch count at the time.
    pub tried: HashMap<String, u64>,
    /// Only these beads (empty: all, unless `manual`).
    pub only: Vec<String>,
    /// Nothing but the beads in `only` (a front end that starts beads one by one).
    pub manual: bool,
    /// Beads a person stopped: not dispatched again until started again.
    pub held: HashSet<String>,
    pub max_agents: usize,
    /// How many more beads may be dispatched (`--max-beads`).
    pub beads_left: Option<usize>,
}

/// Whether `c` may be dispatched now: not a decision (those are for people), not running, in
/// scope, and not already tried in this run — unless a decision reset its dispatches since.
pub fn eligible(c: &Candidate, s: &RunState) -> bool {
    c.issue_type != issue_type::DECISION
        && !s.running.contains(&c.id)
        && !s.held.contains(&c.id)
        && in_scope(&c.id, s)
        && s.tried.get(&c.id).is_none_or(|_| c.dispatches == 0)
}

fn in_scope(id: &str, s: &RunState) -> bool {
    if s.only.is_empty() {
        !s.manual
    } else {
        s.only.iter().any(|o| o == id)
    }
}

/// A front end steering a run that stays up (`idle_exit: false`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Dispatch every ready bead (`true`), or only the ones started by hand (`false`).
    Auto(bool),
    /// Dispatch this bead when it is ready (again, if it ran before).
    Start(String),
    /// Stop this bead's pipeline (the bead is given back) and hold it.
    Stop(String),
}

impl RunState {
    /// Applies a front end's instruction to the policy's state.
    pub fn control(&mut self, c: &Control) {
        match c {
            Control::Auto(on) => {
                self.manual = !on;
                self.only.clear();
            }
            Control::Start(id) => {
                self.held.remove(id);
                self.tried.remove(id);
                if (self.manual || !self.only.is_empty()) && !self.only.contains(id) {
                    self.only.push(id.clone());
                }
            }
            Control::Stop(id) => {
                self.held.insert(id.clone());
                self.only.retain(|o| o != id);
            }
        }
    }
}

/// The beads to start now, in ready order, within the free slots and the bead limit.
pub fn choose(ready: &[Candidate], s: &RunState) -> Vec<String> {
    let free = s.max_agents.saturating_sub(s.running.len());
    let n = free.min(s.beads_left.unwrap_or(usize::MAX));
    ready
        .iter()
        .filter(|c| eligible(c, s))
        .take(n)
        .map(|c| c.id.clone())
        .collect()
}

/// Ready beads in ready order (priority), with what the policy needs.
pub(crate) fn candidates(snap: &Snapshot) -> Vec<Candidate> {
    let g = Graph::new(&snap.beads);
    let ready = g.ready(
        &ReadyFilter::default(),
        SortPolicy::Priority,
        jiff::Timestamp::now(),
    );
    ready
        .into_iter()
        .map(|b| {
            // Index-only JSONL beads carry no metadata: read those that may have some.
            let dispatches = |b: &Bead| {
                b.loom_get("dispatches")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            };
            let n = if b.metadata.is_some() {
                dispatches(b)
            } else {
                dispatches(&snap.full(b))
            };
            Candidate {
                id: b.id.clone(),
                issue_type: b.issue_type.clone(),
                dispatches: n,
            }
        })
        .collect()
}

/// Open decision beads that block unfinished work (in scope of `only`).
fn pending_decisions(snap: &Snapshot, only: &[String]) -> Vec<String> {
    let open_decisions: HashSet<&str> = snap
        .beads
        .iter()
        .filter(|b| b.issue_type == issue_type::DECISION && !status::resolves_blockers(&b.status))
        .map(|b| b.id.as_str())
        .collect();
    let mut out: Vec<String> = snap
        .beads
        .iter()
        .filter(|b| b.status != status::CLOSED && (only.is_empty() || only.contains(&b.id)))
        .flat_map(|b| b.dependencies.iter())
        .filter(|d| {
            dep_type::blocks_directly(&d.dep_type)
                && open_decisions.contains(d.depends_on_id.as_str())
        })
        .map(|d| d.depends_on_id.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What a run needs from its caller.
pub struct Setup {
    pub ws: Workspace,
    pub client: Client,
    pub settings: RunSettings,
    pub bus: Arc<EventBus>,
    /// `loom` itself, for Landlock (`None`: commands run without it).
    pub helper: Option<PathBuf>,
    /// The command line, recorded in the lock for whoever finds it held.
    pub command: String,
    /// The personas to use (`None`: built-in, the user's and the repository's).
    pub personas: Option<crate::agent::persona::PersonaSet>,
    /// Notified to end the run (running beads are given back), e.g. by a front end.
    pub stop: Option<Arc<Notify>>,
    /// A front end's instructions (with `idle_exit: false`); starts in manual mode when set.
    pub control: Option<mpsc::UnboundedReceiver<Control>>,
    /// Take beads' worktrees from the pool whatever `worktree.pool` says (a worker's slots).
    pub pool: bool,
}

/// Runs the orchestrator until nothing is ready or a limit is reached.
pub async fn run(setup: Setup) -> Result<RunSummary> {
    let started = Instant::now();
    let repo = setup.ws.require_repo()?.clone();
    let _lock = lock::acquire(&repo, &setup.command)?;
    // Other windows follow the run through its event log.
    let log = super::eventlog::spawn(&setup.ws, &setup.bus, setup.client.config());
    let notifier = setup.settings.notify_command.clone().map(|cmd| {
        let provider = setup.client.config().clone();
        let n = super::notify::Notifier::new(cmd, repo.workdir.clone(), &provider.secret_values());
        super::notify::spawn(Arc::clone(&setup.bus), n, move |s| provider.redact(s))
    });
    let owner = Owner::current();
    let trees = crate::agent::session::worktrees(&setup.ws)?;
    let trees = if setup.pool { trees.pooled() } else { trees };
    let personas = setup
        .personas
        .unwrap_or_else(|| crate::agent::session::personas(&setup.ws));
    let protected = super::gate::Protected::new(
        setup
            .ws
            .config
            .value::<Vec<String>>("protected_paths")?
            .as_deref(),
        setup.settings.test_command.as_deref(),
        &repo.workdir,
    )?;
    let cx = Arc::new(Context::new(
        setup.ws,
        setup.client,
        setup.settings,
        setup.bus,
        owner,
        trees,
        personas,
        setup.helper,
        protected,
    ));
    // Beads left by a process that died, and worktrees whose work already landed.
    let recovered = cx
        .blocking(|cx| crate::ops::claim::recover(&cx.ws, &cx.owner))
        .await?;
    for id in &recovered {
        cx.stage_event(id, Stage::Recovered, "its owner is gone; reopened");
    }
    let swept = cx
        .blocking(|cx| cx.with_git(|| cx.trees.sweep(&cx.settings.target, &[])))
        .await;
    if let Ok(s) = swept {
        for p in s.removed {
            cx.stage_event(
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .as_deref()
                    .unwrap_or(""),
                Stage::WorktreeRemoved,
                "its branch was already merged",
            );
        }
    }
    let mut d = Dispatcher::new(Arc::clone(&cx), setup.stop, setup.control);
    let result = d.run().await;
    let summary = d.summary(started, result).await;
    cx.publish(Event::new(EventKind::RunFinished {
        exit_code: summary.exit_code,
        summary: serde_json::to_value(&summary).unwrap_or(Value::Null),
    }));
    if let Some(log) = log {
        // Bounded: it ends at `run_finished`, just published.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), log).await;
    }
    if let Some(n) = notifier {
        // A decision told just before the end gets its command's time, no more.
        let _ = tokio::time::timeout(super::notify::LIMIT, n).await;
    }
    Ok(summary)
}

struct Dispatcher {
    cx: Arc<Context>,
    state: RunState,
    tasks: JoinSet<Option<BeadReport>>,
    task_beads: HashMap<tokio::task::Id, String>,
    reports: Vec<BeadReport>,
    wake: Arc<Notify>,
    stopped: Option<StopReason>,
    /// Set when nothing eligible was left at the last look.
    nothing_ready: bool,
    down_since: Option<Instant>,
    /// The endpoint answers its model list again while down and nothing runs: dispatch one.
    trial: bool,
    external_stop: Option<Arc<Notify>>,
    control: Option<mpsc::UnboundedReceiver<Control>>,
    signals: Signals,
}

/// SIGINT and SIGTERM, listened to from the start (so none is lost between polls).
struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    async fn recv(&mut self) {
        async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    if s.recv().await.is_none() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = one(&mut self.int) => {}
            () = one(&mut self.term) => {}
        }
    }
}

impl Dispatcher {
    fn new(
        cx: Arc<Context>,
        external_stop: Option<Arc<Notify>>,
        control: Option<mpsc::UnboundedReceiver<Control>>,
    ) -> Dispatcher {
        let state = RunState {
            only: cx.settings.beads.clone(),
            manual: control.is_some(),
            max_agents: cx.settings.max_agents.max(1),
            beads_left: cx.settings.max_beads,
            ..RunState::default()
        };
        Dispatcher {
            cx,
            state,
            tasks: JoinSet::new(),
            task_beads: HashMap::new(),
            reports: Vec::new(),
            wake: Arc::new(Notify::new()),
            stopped: None,
            nothing_ready: false,
            down_since: None,
            trial: false,
            external_stop,
            control,
            signals: Signals::new(),
        }
    }

    /// Tokens used: as the model calls report them (running beads included), or as the
    /// finished beads' reports sum them up, whichever is more.
    fn tokens_used(&self) -> u64 {
        let reported: u64 = self.reports.iter().map(|r| r.usage.total_tokens).sum();
        reported.max(self.cx.spent())
    }

    async fn run(&mut self) -> Result<()> {
        // The watcher wakes the loop when anyone else changes a bead; it publishes what changed.
        let wake = Arc::clone(&self.wake);
        let bus = Arc::clone(&self.cx.bus);
        // A change of this run that a program without the lock undoes is applied again.
        let ws = self.cx.ws.clone();
        let restore: crate::store::watch::Restore =
            Box::new(move |lost| crate::ops::claim::restore(&ws, lost));
        let _watcher = crate::store::watch::watch_restoring(
            &self.cx.ws.store,
            WATCH_DEBOUNCE,
            move |e| {
                bus.publish(e.into());
                wake.notify_one();
            },
            Some(restore),
        )?;
        let snap = self.load().await?;
        let ready = candidates(&snap);
        let ready_now = ready.iter().filter(|c| eligible(c, &self.state)).count();
        self.explain_scope(&snap, &ready);
        self.cx.publish(Event::new(EventKind::RunStarted {
            target: self.cx.settings.target.clone(),
            max_agents: self.state.max_agents,
            beads_ready: ready_now,
        }));
        if ready_now > 0 {
            self.preflight()?;
        }
        let mut health = self.cx.client.subscribe_health();
        let deadline = self
            .cx
            .settings
            .timeout
            .and_then(|t| Instant::now().checked_add(t));
        let mut probe_delay = Duration::from_millis(250);
        loop {
            if self.stopped.is_none() {
                self.dispatch().await?;
            }
            if self.tasks.is_empty() && (self.stopped.is_some() || self.done_dispatching()) {
                return Ok(());
            }
            let down = self.down_since.is_some();
            let give_up = self
                .down_since
                .and_then(|s| s.checked_add(self.cx.settings.provider_down_limit));
            tokio::select! {
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    if self.joined(joined) {
                        self.close_finished_epics().await;
                    }
                    if self.cx.endpoint_failed() {
                        self.stop(StopReason::EndpointDown);
                    }
                }
                () = self.wake.notified() => {}
                changed = health.changed() => {
                    if changed.is_ok() {
                        let snap = health.borrow_and_update().clone();
                        self.health_changed(snap);
                    }
                }
                () = sleep_until(deadline), if deadline.is_some() && self.stopped.is_none() => {
                    self.stop(StopReason::Timeout);
                }
                () = sleep_until(give_up), if give_up.is_some() && self.stopped.is_none() => {
                    self.stop(StopReason::EndpointDown);
                }
                // Nobody is asking the endpoint while dispatch is paused: probe it.
                // Probe the endpoint while it is down (waiting agents probe too).
                () = tokio::time::sleep(probe_delay), if down && self.stopped.is_none() => {
                    let h = self.cx.client.probe().await;
                    probe_delay = (probe_delay * 2).min(Duration::from_secs(5));
                    if h.health == Health::Healthy || h.reachable {
                        probe_delay = Duration::from_millis(250);
                    }
                    // Reachable again with nobody working: one bead is the trial that tells
                    // whether completions work (a model list alone does not).
                    if h.reachable && self.tasks.is_empty() {
                        self.trial = true;
                    }
                    self.health_changed(h);
                }
                // Ctrl-C or SIGTERM: stop and give running beads back; a second one: now.
                () = self.signals.recv() => {
                    if self.stopped.is_some() {
                        self.tasks.abort_all();
                        return Ok(());
                    }
                    self.stop(StopReason::Interrupted);
                }
                () = notified(self.external_stop.clone()), if self.stopped.is_none() => {
                    self.stop(StopReason::Interrupted);
                }
                c = recv(&mut self.control), if self.stopped.is_none() => match c {
                    Some(c) => self.controlled(c).await,
                    // The front end is gone.
                    None => self.stop(StopReason::Interrupted),
                },
            }
        }
    }

    /// A front end's instruction: starting checks what would fail every bead first and says
    /// why a bead will not run; stopping asks that bead's pipeline to stop.
    async fn controlled(&mut self, c: Control) {
        if matches!(c, Control::Auto(true) | Control::Start(_))
            && let Err(e) = self.preflight()
        {
            self.cx.publish(Event {
                bead: match &c {
                    Control::Start(id) => Some(id.clone()),
                    _ => None,
                },
                ..Event::new(EventKind::Error {
                    message: e.with_hint(),
                })
            });
            return;
        }
        self.state.control(&c);
        match &c {
            Control::Stop(id) => self.cx.stop_bead(id),
            Control::Start(id) => {
                if let Ok(snap) = self.load().await {
                    let ready = candidates(&snap);
                    if !ready
                        .iter()
                        .any(|r| r.id == *id && eligible(r, &self.state))
                        && !self.state.running.contains(id)
                    {
                        self.explain(&snap, id);
                    }
                }
            }
            Control::Auto(_) => {}
        }
    }

    /// No endpoint configured (and nothing to replay): say so before claiming anything.
    /// What would fail every bead, checked before claiming any: no endpoint, no reviewer.
    fn preflight(&self) -> Result<()> {
        let c = &self.cx.client;
        if !c.is_replay() && c.config().url.is_none() {
            return Err(crate::llm::LlmError::NotConfigured.into());
        }
        if self.cx.settings.review && self.cx.personas.get("reviewer").is_none() {
            return Err(crate::error::Error::Config(
                "review is on but there is no `reviewer` persona: add one to .loom/personas/, or set `review: false` in .loom/config.yaml"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Says why beads named with `--bead` will not run.
    fn explain_scope(&self, snap: &Snapshot, ready: &[Candidate]) {
        for id in &self.state.only {
            if ready
                .iter()
                .any(|c| c.id == *id && eligible(c, &self.state))
            {
                continue;
            }
            self.explain(snap, id);
        }
    }

    /// Says why bead `id` is not ready.
    fn explain(&self, snap: &Snapshot, id: &str) {
        let why = match snap.beads.iter().find(|b| b.id == id) {
            None => "it does not exist".to_owned(),
            Some(b) if b.issue_type == issue_type::DECISION => {
                "it is a decision: resolve it with `loom decide`".to_owned()
            }
            Some(b) if b.status != status::OPEN => format!("it is {}", b.status),
            Some(_) => "it is blocked (see `loom blocked`)".to_owned(),
        };
        self.cx.publish(Event {
            bead: Some(id.to_owned()),
            ..Event::new(EventKind::Error {
                message: format!("{id} is not ready: {why}"),
            })
        });
    }

    fn done_dispatching(&self) -> bool {
        self.cx.settings.idle_exit
            && self.down_since.is_none()
            && (self.nothing_ready
                || self.state.beads_left == Some(0)
                || self.limit_tokens_reached())
    }

    fn limit_tokens_reached(&self) -> bool {
        self.cx
            .settings
            .max_tokens
            .is_some_and(|m| self.tokens_used() >= m)
    }

    async fn load(&self) -> Result<Snapshot> {
        self.cx.blocking(|cx| cx.ws.store.load_index()).await
    }

    /// The beads ready to dispatch, read and worked out on the blocking pool: on a large store
    /// both take long enough to hold up whatever else shares the runtime (the TUI's keys).
    async fn load_ready(&self) -> Result<Vec<Candidate>> {
        self.cx
            .blocking(|cx| Ok(candidates(&cx.ws.store.load_index()?)))
            .await
    }

    /// Starts what the policy allows.
    async fn dispatch(&mut self) -> Result<()> {
        // Paused while the endpoint is down (except one trial bead once it answers again);
        // done once a limit is reached.
        let trial = std::mem::take(&mut self.trial);
        if (self.down_since.is_some() && !(trial && self.tasks.is_empty()))
            || self.state.beads_left == Some(0)
            || self.limit_tokens_reached()
        {
            return Ok(());
        }
        if let Some(why) = self.cx.run_limit_reached() {
            self.run_limit(why).await;
            return Ok(());
        }
        let mut ready = self.load_ready().await?;
        // Follow-ups agents filed wait for the next run, where a person sees them first.
        if !self.cx.settings.limits.dispatch_followups {
            ready.retain(|c| !self.cx.quota.is_followup(&c.id));
        }
        let mut chosen = choose(&ready, &self.state);
        if self.down_since.is_some() {
            chosen.truncate(1); // the trial
        }
        self.nothing_ready = chosen.is_empty() && !ready.iter().any(|c| eligible(c, &self.state));
        for id in chosen {
            let dispatches = ready
                .iter()
                .find(|c| c.id == id)
                .map_or(0, |c| c.dispatches);
            self.state.tried.insert(id.clone(), dispatches + 1);
            self.state.running.insert(id.clone());
            if let Some(n) = self.state.beads_left.as_mut() {
                *n = n.saturating_sub(1);
            }
            self.cx.clear_bead_stop(&id);
            let handle = self
                .tasks
                .spawn(pipeline::run(Arc::clone(&self.cx), id.clone()));
            self.task_beads.insert(handle.id(), id);
        }
        Ok(())
    }

    /// A run-wide limit was reached: dispatching stops (running beads finish), one decision
    /// bead asks a person how to go on, and the run ends with exit code 3.
    async fn run_limit(&mut self, why: String) {
        if self.stopped.is_some() {
            return;
        }
        self.stopped = Some(StopReason::RunLimit);
        let q = crate::ops::decision::Question {
            title: "Run limit reached: dispatching stopped".into(),
            body: format!(
                "Loom stopped dispatching beads because {why}. Beads already running were \
                 allowed to finish; nothing else was started.\n\nLook at what the agents \
                 filed and spent (`loom list`, `loom stats`), raise the limit in \
                 .loom/config.yaml under `budget:` (or with the `loom run` flag) if the work \
                 is legitimate, and run again."
            ),
            options: vec![
                "approve: the work is legitimate; raise the limit and run again".into(),
                "deny: stop here".into(),
            ],
            reason: why.clone(),
            stage: None,
            comment: None,
        };
        let filed = self
            .cx
            .blocking(move |cx| crate::ops::decision::file_for_run(&cx.ws, &cx.ws.actor, &q))
            .await;
        match filed {
            Ok(d) => self.cx.publish(Event::about(
                d.clone(),
                EventKind::DecisionNeeded {
                    decision: d,
                    question: format!("run limit reached: {why}"),
                },
            )),
            Err(e) => self.cx.publish(Event::new(EventKind::Error {
                message: format!(
                    "run limit reached ({why}), and the decision could not be filed: {e}"
                ),
            })),
        }
    }

    /// Closes epics whose child beads are all closed now (one commit), and says so.
    async fn close_finished_epics(&self) {
        let busy: Vec<String> = self.state.running.iter().cloned().collect();
        let closed = self
            .cx
            .blocking(move |cx| {
                let now = crate::bead::Timestamp::now();
                cx.ws
                    .mutate(
                        crate::git::CommitKind::Closed,
                        crate::store::TxOptions::default(),
                        |tx| crate::ops::edit::close_finished_epics(tx, &busy, &now),
                    )
                    .map(|done| done.value)
            })
            .await;
        match closed {
            Ok(ids) => {
                for id in ids {
                    self.cx
                        .stage_event(&id, Stage::Closed, crate::ops::edit::EPIC_DONE);
                }
            }
            Err(e) => self.cx.publish(Event::new(EventKind::Error {
                message: format!("cannot close finished epics: {e}"),
            })),
        }
    }

    /// Takes a finished pipeline's report; whether the bead was closed (merged).
    fn joined(
        &mut self,
        joined: std::result::Result<(tokio::task::Id, Option<BeadReport>), tokio::task::JoinError>,
    ) -> bool {
        let (task, report) = match joined {
            Ok((task, report)) => (task, report),
            Err(e) => {
                let id = self.task_beads.remove(&e.id()).unwrap_or_default();
                self.state.running.remove(&id);
                self.give_back(id.clone(), format!("the pipeline stopped abnormally: {e}"));
                self.cx.publish(Event {
                    bead: Some(id.clone()),
                    ..Event::new(EventKind::Error {
                        message: format!("the pipeline of {id} crashed: {e}"),
                    })
                });
                self.reports.push(BeadReport {
                    id,
                    outcome: Some(crate::event::Outcome::Failed),
                    detail: format!("internal error: {e}"),
                    ..BeadReport::default()
                });
                return false;
            }
        };
        let id = self.task_beads.remove(&task).unwrap_or_default();
        self.state.running.remove(&id);
        match report {
            Some(r) => {
                // A merge may finish an epic; so may a planner ending after its children
                // (they run alongside it and can all be done first).
                let closed = r.outcome == Some(crate::event::Outcome::Merged)
                    || r.outcome == Some(crate::event::Outcome::Completed);
                self.reports.push(r);
                closed
            }
            // Not claimed after all: let it count as not dispatched.
            None => {
                self.state.tried.remove(&id);
                if let Some(n) = self.state.beads_left.as_mut() {
                    *n += 1;
                }
                false
            }
        }
    }

    /// Returns a bead whose pipeline ended abnormally to `open` (in the background).
    fn give_back(&self, id: String, why: String) {
        if id.is_empty() {
            return;
        }
        let cx = Arc::clone(&self.cx);
        tokio::spawn(async move {
            let _ = cx
                .blocking(move |cx| crate::ops::claim::give_back(&cx.ws, &id, &why))
                .await;
        });
    }

    fn health_changed(&mut self, h: crate::llm::HealthSnapshot) {
        let was_down = self.down_since.is_some();
        match h.health {
            Health::Down if !was_down => self.down_since = Some(Instant::now()),
            Health::Healthy if was_down => self.down_since = None,
            _ => {}
        }
        self.cx
            .publish(Event::new(EventKind::ProviderHealth { health: h }));
    }

    fn stop(&mut self, why: StopReason) {
        if self.stopped.is_none() {
            self.stopped = Some(why);
            self.cx.request_stop();
        }
    }

    async fn summary(&mut self, started: Instant, result: Result<()>) -> RunSummary {
        let mut error = None;
        if let Err(e) = result {
            let msg = e.with_hint();
            self.cx.publish(Event::new(EventKind::Error {
                message: msg.clone(),
            }));
            error = Some((msg, e.exit_code()));
            self.stop(StopReason::Interrupted);
        }
        // Let pipelines settle their beads (bounded; a second Ctrl-C cuts it short), then stop
        // the rest and give their beads back.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut merged = false;
        loop {
            tokio::select! {
                j = self.tasks.join_next_with_id() => match j {
                    Some(j) => merged |= self.joined(j),
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => break,
                () = self.signals.recv() => break,
            }
        }
        if merged {
            self.close_finished_epics().await;
        }
        if !self.tasks.is_empty() {
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
            let left: Vec<String> = self.task_beads.drain().map(|(_, id)| id).collect();
            for id in left {
                self.state.running.remove(&id);
                let (id2, cx) = (id.clone(), Arc::clone(&self.cx));
                let _ = cx
                    .blocking(move |cx| {
                        crate::ops::claim::give_back(&cx.ws, &id2, "the run stopped")
                    })
                    .await;
                self.reports.push(BeadReport {
                    id,
                    outcome: Some(crate::event::Outcome::Interrupted),
                    stage: Stage::Interrupted,
                    detail: "the run stopped before the bead was settled".into(),
                    ..BeadReport::default()
                });
            }
        }
        let stopped = match (&error, self.stopped) {
            (Some((_, report::exit::ENDPOINT)), _) => StopReason::EndpointDown,
            (_, Some(s)) => s,
            (None, None) if self.state.beads_left == Some(0) => StopReason::MaxBeads,
            (None, None) if self.limit_tokens_reached() => StopReason::MaxTokens,
            _ => StopReason::Finished,
        };
        let pending = match self.load().await {
            Ok(snap) => pending_decisions(&snap, &self.state.only),
            Err(_) => Vec::new(),
        };
        let mut usage = crate::llm::Usage::default();
        for r in &self.reports {
            usage += r.usage;
        }
        let mut exit_code = report::exit_code(stopped, &self.reports, pending.len());
        if let Some((_, code)) = &error {
            exit_code = *code;
        }
        RunSummary {
            target: self.cx.settings.target.clone(),
            stopped,
            beads: std::mem::take(&mut self.reports),
            pending_decisions: pending,
            usage,
            duration_ms: started.elapsed().as_millis() as u64,
            peak_rss_kb: report::peak_rss_kb(),
            exit_code,
            error: error.map(|(m, _)| m),
        }
    }
}

async fn recv(c: &mut Option<mpsc::UnboundedReceiver<Control>>) -> Option<Control> {
    match c {
        Some(c) => c.recv().await,
        None => std::future::pending().await,
    }
}

async fn notified(n: Option<Arc<Notify>>) {
    match n {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, kind: &str, dispatches: u64) -> Candidate {
        Candidate {
            id: id.into(),
            issue_type: kind.into(),
            dispatches,
        }
    }

    fn state(max_agents: usize) -> RunState {
        RunState {
            max_agents,
            ..RunState::default()
        }
    }

    #[test]
    fn fills_free_slots_in_ready_order() {
        let ready = [c("a", "task", 0), c("b", "bug", 0), c("c", "task", 0)];
        let mut s = state(2);
        assert_eq!(choose(&ready, &s), ["a", "b"]);
        s.running.insert("a".into());
        assert_eq!(choose(&ready, &s), ["b"], "one slot left; a is running");
        s.running.insert("x".into());
        assert!(choose(&ready, &s).is_empty(), "no slot left");
    }

    #[test]
    fn decisions_are_never_dispatched() {
        let ready = [c("d", "decision", 0), c("a", "task", 0)];
        assert_eq!(choose(&ready, &state(4)), ["a"]);
    }

    #[test]
    fn a_bead_runs_once_per_run_unless_a_decision_reset_it() {
        let mut s = state(4);
        s.tried.insert("a".into(), 1);
        assert!(choose(&[c("a", "task", 1)], &s).is_empty());
        assert_eq!(choose(&[c("a", "task", 0)], &s), ["a"], "decide reset it");
    }

    #[test]
    fn scope_and_bead_limit() {
        let ready = [c("a", "task", 0), c("b", "task", 0), c("c", "task", 0)];
        let mut s = state(4);
        s.only = vec!["c".into(), "b".into()];
        assert_eq!(
            choose(&ready, &s),
            ["b", "c"],
            "ready order, not flag order"
        );
        s.beads_left = Some(1);
        assert_eq!(choose(&ready, &s), ["b"]);
        s.beads_left = Some(0);
        assert!(choose(&ready, &s).is_empty());
    }

    #[test]
    fn a_front_end_starts_stops_and_goes_auto() {
        let ready = [c("a", "task", 0), c("b", "task", 0), c("c", "task", 0)];
        let mut s = state(4);
        s.manual = true;
        assert!(choose(&ready, &s).is_empty(), "manual: nothing by itself");
        s.control(&Control::Start("b".into()));
        assert_eq!(choose(&ready, &s), ["b"]);
        s.tried.insert("b".into(), 1);
        s.control(&Control::Stop("b".into()));
        assert!(choose(&ready, &s).is_empty(), "stopped: held");
        s.control(&Control::Auto(true));
        assert_eq!(choose(&ready, &s), ["a", "c"], "auto: all but the held one");
        s.control(&Control::Start("b".into()));
        assert_eq!(
            choose(&ready, &s),
            ["a", "b", "c"],
            "started again, though tried"
        );
        s.control(&Control::Auto(false));
        assert!(choose(&ready, &s).is_empty(), "back to manual");
    }
}
