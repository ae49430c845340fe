//! What the pipelines of one run share — the workspace, the model client, the settings, the
//! event bus, this process's owner record, the worktrees and personas — with the helpers they
//! all use: blocking git and store work moved off the async threads, events, the stop signal.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::agent::persona::PersonaSet;
use crate::error::{Error, Result};
use crate::event::{Event, EventBus, EventKind, Stage};
use crate::git::worktree::{Identity, Worktrees};
use crate::llm::Client;
use crate::workspace::Workspace;

use super::lock::Owner;
use super::settings::RunSettings;

/// Shared by every pipeline of a run.
pub struct Context {
    pub ws: Workspace,
    pub client: Client,
    pub settings: RunSettings,
    pub bus: Arc<EventBus>,
    pub owner: Owner,
    pub trees: Worktrees,
    pub personas: PersonaSet,
    /// `loom` itself, to run commands under Landlock (`None`: without).
    pub helper: Option<PathBuf>,
    /// Serializes git work on shared state: worktree creation and removal, landing.
    pub git_lock: Mutex<()>,
    /// One bead at a time takes in the target, re-tests and lands (a merge queue).
    pub landing: Arc<tokio::sync::Mutex<()>>,
    stop: watch::Sender<bool>,
    /// Stops asked for one bead (by a front end).
    bead_stops: Mutex<std::collections::HashMap<String, Arc<watch::Sender<bool>>>>,
    endpoint_failed: AtomicBool,
    /// Tokens the run's model calls used so far (running sessions included).
    spent: std::sync::atomic::AtomicU64,
    /// Model requests the run made so far.
    requests: std::sync::atomic::AtomicU64,
    /// How many beads the run's agents may still file (and which they filed).
    pub quota: Arc<crate::agent::quota::Quota>,
    /// The paths agents may not change without a person's approval.
    pub protected: super::gate::Protected,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("target", &self.settings.target)
            .finish_non_exhaustive()
    }
}

impl Context {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ws: Workspace,
        client: Client,
        settings: RunSettings,
        bus: Arc<EventBus>,
        owner: Owner,
        trees: Worktrees,
        personas: PersonaSet,
        helper: Option<PathBuf>,
        protected: super::gate::Protected,
    ) -> Context {
        Context {
            ws,
            client,
            bus,
            owner,
            trees,
            personas,
            helper,
            git_lock: Mutex::new(()),
            landing: Arc::new(tokio::sync::Mutex::new(())),
            stop: watch::channel(false).0,
            bead_stops: Mutex::default(),
            endpoint_failed: AtomicBool::new(false),
            spent: std::sync::atomic::AtomicU64::new(0),
            requests: std::sync::atomic::AtomicU64::new(0),
            protected,
            quota: Arc::new(crate::agent::quota::Quota::new(
                settings.limits.created_beads,
                settings.limits.bead_created_beads,
            )),
            settings,
        }
    }

    /// Runs blocking work (git, the store) on the blocking pool.
    pub async fn blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        F: FnOnce(&Context) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let cx = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&cx))
            .await
            .map_err(|e| Error::Other(format!("a background task failed: {e}")))?
    }

    /// Runs `f` holding the git lock.
    pub fn with_git<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let _guard = self.git_lock.lock().unwrap_or_else(|p| p.into_inner());
        f()
    }

    pub fn publish(&self, e: Event) {
        self.bus.publish(e);
    }

    /// Announces that bead `id` reached `stage`.
    pub fn stage_event(&self, id: &str, stage: Stage, detail: impl Into<String>) {
        self.publish(Event::about(
            id.to_owned(),
            EventKind::StageChanged {
                stage,
                detail: detail.into(),
            },
        ));
    }

    /// Asks every pipeline to stop at its next step (agents are interrupted).
    pub fn request_stop(&self) {
        self.stop.send_replace(true);
    }

    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves once a stop was requested.
    pub async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    fn bead_stop(&self, id: &str) -> Arc<watch::Sender<bool>> {
        let mut map = self.bead_stops.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            map.entry(id.to_owned())
                .or_insert_with(|| Arc::new(watch::channel(false).0)),
        )
    }

    /// Asks bead `id`'s pipeline to stop at its next step (a front end's stop).
    pub fn stop_bead(&self, id: &str) {
        self.bead_stop(id).send_replace(true);
    }

    /// Clears a bead's stop when it is dispatched again.
    pub fn clear_bead_stop(&self, id: &str) {
        self.bead_stop(id).send_replace(false);
    }

    /// Whether the run or bead `id` was asked to stop.
    pub fn stopping_bead(&self, id: &str) -> bool {
        self.stopping() || *self.bead_stop(id).borrow()
    }

    /// Resolves once the run or bead `id` was asked to stop.
    pub async fn stopped_bead(&self, id: &str) {
        let mut bead = self.bead_stop(id).subscribe();
        tokio::select! {
            () = self.stopped() => {}
            _ = bead.wait_for(|s| *s) => {}
        }
    }

    /// A pipeline found the endpoint unusable (down past the limit, or refusing the key).
    pub fn mark_endpoint_failed(&self) {
        self.endpoint_failed.store(true, Ordering::SeqCst);
    }

    pub fn endpoint_failed(&self) -> bool {
        self.endpoint_failed.load(Ordering::SeqCst)
    }

    /// Where a landing in progress is recorded (the squash commit), so a crash between moving
    /// the target and closing the bead is finished by the next run instead of redone.
    pub fn landing_marker(&self, id: &str) -> Option<PathBuf> {
        Some(self.ws.data_dir()?.join("landing").join(id))
    }

    /// The committer of agents' commits, when configured (else git's identity).
    pub fn committer(&self) -> Option<Identity> {
        self.settings.agent.committer.as_ref().map(|c| Identity {
            name: c.name.clone(),
            email: c.email.clone(),
        })
    }
}

impl Context {
    /// A model call of the run used `tokens`.
    pub fn spend(&self, tokens: u64) {
        self.spent
            .fetch_add(tokens, std::sync::atomic::Ordering::Relaxed);
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Model requests the run made so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The run-wide limit reached, if one is: beads filed by agents, requests or tokens.
    pub fn run_limit_reached(&self) -> Option<String> {
        let l = &self.settings.limits;
        if let Some(why) = self.quota.hit() {
            return Some(why);
        }
        if self.requests() >= l.requests {
            return Some(format!(
                "the run made {} model requests (budget.run_requests: {})",
                self.requests(),
                l.requests
            ));
        }
        if self.spent() >= l.tokens {
            return Some(format!(
                "the run used {} tokens (budget.run_tokens: {})",
                self.spent(),
                l.tokens
            ));
        }
        None
    }

    /// Tokens the run's model calls used so far, running sessions included.
    pub fn spent(&self) -> u64 {
        self.spent.load(std::sync::atomic::Ordering::Relaxed)
    }
}
