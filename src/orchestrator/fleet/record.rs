//! The coordinator's [`Record`] over the repository: the ready set from the bead store, the
//! target branch as the base of orders, and the merge. A result is landed in a worktree of
//! its own (`<data dir>/landing`): the attempt's pushed commit is merged onto the target in
//! memory, the target's `.beads/` is kept whatever the branch did to it, the tests run again
//! (sandboxed) when the target's code moved since the order's base, and the bead's close is
//! written into the same tree — so the code and the close are **one commit**, and "the target
//! shows the bead closed" is exactly "merged". The target then moves by compare-and-swap and
//! is pushed to the remote (a fast-forward, never forced) for the workers' next orders.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::agent::session;
use crate::bead::{issue_type, status};
use crate::error::{Error, Result};
use crate::event::{Event, EventBus, EventKind, Outcome, Stage};
use crate::git::merge::{Advance, Landing as Merged};
use crate::git::worktree::{Identity, Worktree};
use crate::git::{Repo, Trailers, ok_in, transport_ok};
use crate::llm::Client;
use crate::ops::decision::{self, Question};
use crate::scale::coordinator::{Landing, Record};
use crate::scale::protocol::Report;
use crate::workspace::{OpenOptions, Workspace};

use crate::orchestrator::gate::Protected;
use crate::orchestrator::pipeline::retry_options;

/// How often a landing is tried when the target keeps moving.
const ATTEMPTS: u32 = 5;

/// What the record needs (module docs).
pub struct GitRecord {
    inner: Arc<Inner>,
}

struct Inner {
    ws: Workspace,
    client: Client,
    bus: Arc<EventBus>,
    target: String,
    remote: String,
    /// Only these beads (empty: all).
    only: Vec<String>,
    test_command: Option<String>,
    test_timeout: Duration,
    protected: Protected,
    helper: Option<PathBuf>,
}

/// What [`GitRecord::new`] is given.
pub struct RecordSetup {
    pub ws: Workspace,
    pub client: Client,
    pub bus: Arc<EventBus>,
    pub target: String,
    pub remote: String,
    pub only: Vec<String>,
    pub test_command: Option<String>,
    pub test_timeout: Duration,
    pub helper: Option<PathBuf>,
}

impl GitRecord {
    pub fn new(s: RecordSetup) -> Result<GitRecord> {
        let repo = s.ws.require_repo()?;
        let protected = Protected::new(
            s.ws.config
                .value::<Vec<String>>("protected_paths")?
                .as_deref(),
            s.test_command.as_deref(),
            &repo.workdir,
        )?;
        Ok(GitRecord {
            inner: Arc::new(Inner {
                ws: s.ws,
                client: s.client,
                bus: s.bus,
                target: s.target,
                remote: s.remote,
                only: s.only,
                test_command: s.test_command,
                test_timeout: s.test_timeout,
                protected,
                helper: s.helper,
            }),
        })
    }

    /// Pushes the target to the remote (a fast-forward), so workers can fetch the base.
    pub async fn publish_target(&self) -> Result<()> {
        self.blocking(|i| i.push_target()).await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| Error::Other(format!("a background task failed: {e}")))?
    }

    fn error(&self, bead: &str, message: String) {
        self.inner.bus.publish(Event {
            bead: Some(bead.to_owned()),
            ..Event::new(EventKind::Error { message })
        });
    }
}

impl Record for GitRecord {
    async fn ready(&self) -> Vec<String> {
        let ready = self
            .blocking(|i| {
                let snap = i.ws.store.load_index()?;
                Ok(crate::orchestrator::dispatch::candidates(&snap)
                    .into_iter()
                    .filter(|c| c.issue_type != issue_type::DECISION)
                    .filter(|c| i.only.is_empty() || i.only.contains(&c.id))
                    .map(|c| c.id)
                    .collect::<Vec<_>>())
            })
            .await;
        ready.unwrap_or_else(|e| {
            self.error("", format!("cannot read the beads: {e}"));
            Vec::new()
        })
    }

    async fn base(&self) -> String {
        self.blocking(|i| i.repo()?.tip(&i.target))
            .await
            .unwrap_or_default()
    }

    async fn landed(&self, bead: &str) -> bool {
        let id = bead.to_owned();
        self.blocking(move |i| i.closed(&id)).await.unwrap_or(false)
    }

    async fn land(&self, report: &Report) -> Landing {
        let r = report.clone();
        let landed = self.blocking(move |i| i.land(&r)).await;
        match landed {
            Ok(Some(squash)) => {
                let detail = format!("squashed onto {} from {}", self.inner.target, report.worker);
                self.inner.bus.publish(Event::about(
                    report.bead.clone(),
                    EventKind::MergeResult {
                        merged: true,
                        commit: Some(squash),
                        detail: detail.clone(),
                    },
                ));
                self.finished(&report.bead, Outcome::Merged, Stage::Done, detail);
                Landing::Merged
            }
            Ok(None) => Landing::Rejected(format!(
                "{} conflicts with {}: the attempt cannot be merged as it is",
                report.branch, self.inner.target
            )),
            Err(Error::Refused(why)) => Landing::Rejected(why),
            // What the result's tests did to the landing worktree: never retried.
            Err(Error::Security(why)) => {
                let why = format!("security: {why}");
                self.inner.bus.publish(Event::about(
                    report.bead.clone(),
                    EventKind::SecurityNotice {
                        message: why.clone(),
                    },
                ));
                Landing::Rejected(why)
            }
            Err(e) => {
                self.error(&report.bead, format!("cannot land {}: {e}", report.branch));
                Landing::Later(e.to_string())
            }
        }
    }

    async fn failed(&self, report: &Report, why: &str) {
        let title = if report.ok {
            format!(
                "{}: the result from {} was not merged",
                report.bead, report.worker
            )
        } else {
            format!("{}: the attempt on {} failed", report.bead, report.worker)
        };
        let q = Question {
            body: format!(
                "Attempt {} (epoch {}) of {} on worker {}, branch {}: {why}",
                report.attempt,
                report.epoch,
                report.bead,
                report.worker,
                if report.branch.is_empty() {
                    "none"
                } else {
                    &report.branch
                }
            ),
            title,
            options: retry_options(),
            reason: why.chars().take(300).collect(),
            stage: None,
            comment: None,
        };
        self.escalate(&report.bead, q, why.to_owned()).await;
    }

    async fn give_up(&self, bead: &str, dispatches: u32) {
        let q = Question {
            title: format!("{bead}: dispatched {dispatches} times without a result"),
            body: format!(
                "{bead} was handed to workers {dispatches} times and each attempt's lease lapsed \
                 without a result (a worker died, was cut off, or the bead kills what runs it)."
            ),
            options: retry_options(),
            reason: format!("{dispatches} dispatches lapsed"),
            stage: None,
            comment: None,
        };
        self.escalate(bead, q, format!("given up after {dispatches} dispatches"))
            .await;
    }
}

impl GitRecord {
    fn finished(&self, bead: &str, outcome: Outcome, stage: Stage, detail: String) {
        self.inner.bus.publish(Event::about(
            bead.to_owned(),
            EventKind::BeadFinished {
                outcome,
                stage,
                detail,
            },
        ));
    }

    async fn escalate(&self, bead: &str, q: Question, detail: String) {
        let (id, title) = (bead.to_owned(), q.title.clone());
        let decided = self
            .blocking(move |i| decision::escalate(&i.ws, &id, &i.ws.actor, &q))
            .await;
        match decided {
            Ok(d) => {
                let d = d.unwrap_or_default();
                self.inner.bus.publish(Event::about(
                    bead.to_owned(),
                    EventKind::DecisionNeeded {
                        decision: d,
                        question: title,
                    },
                ));
                self.finished(bead, Outcome::Waiting, Stage::Escalated, detail);
            }
            Err(e) => self.error(bead, format!("cannot record the decision: {e}")),
        }
    }
}

impl Inner {
    fn repo(&self) -> Result<&Repo> {
        self.ws.require_repo()
    }

    fn push_target(&self) -> Result<()> {
        let repo = self.repo()?;
        let spec = format!("refs/heads/{t}:refs/heads/{t}", t = self.target);
        transport_ok(
            &repo.workdir,
            &["push", "-q", "--no-verify", &self.remote, &spec],
        )
        .map(|_| ())
    }

    /// A report is a worker's word, and a worker may be hostile: it must name a bead of this
    /// store, the branch its epoch gets, and a commit id — nothing that could steer git
    /// (an option, a refspec, a path) reaches a command line.
    fn check(&self, r: &Report) -> Result<()> {
        let known = self
            .ws
            .store
            .load_index()?
            .beads
            .iter()
            .any(|b| b.id == r.bead);
        if !known || !crate::store::layout::id_is_file_safe(&r.bead) {
            return Err(Error::Refused(format!(
                "the report names {:?}, which is no bead here",
                r.bead
            )));
        }
        let branch = crate::scale::protocol::branch(&r.bead, r.epoch);
        if r.branch != branch {
            return Err(Error::Refused(format!(
                "the report names branch {:?}, not the attempt's {branch}",
                r.branch
            )));
        }
        if !crate::scale::protocol::is_commit_id(&r.commit) {
            return Err(Error::Refused(format!(
                "the report's commit {:?} is not a commit id",
                r.commit
            )));
        }
        Ok(())
    }

    /// Whether the target shows bead `id` closed.
    fn closed(&self, id: &str) -> Result<bool> {
        let snap = self.ws.store.load_index()?;
        Ok(snap
            .beads
            .iter()
            .any(|b| b.id == id && b.status == status::CLOSED))
    }

    /// The landing worktree, detached at `at`.
    fn landing_tree(&self, at: &str) -> Result<Worktree> {
        let repo = self.repo()?;
        let data = self
            .ws
            .data_dir()
            .ok_or_else(|| Error::Config("no data directory: set LOOM_DATA_DIR".into()))?;
        let path = data.join("landing");
        if !path.join(".git").exists() {
            let _ = ok_in(&repo.workdir, &["worktree", "prune"]);
            let p = path.to_string_lossy();
            ok_in(
                &repo.workdir,
                &["worktree", "add", "-q", "--detach", &p, at],
            )?;
        }
        let git_dir = ok_in(&path, &["rev-parse", "--absolute-git-dir"])?;
        Ok(Worktree {
            bead_id: "landing".into(),
            path,
            branch: String::new(),
            copied: Vec::new(),
            git_dir: PathBuf::from(git_dir),
        })
    }

    /// Lands `r` (module docs): the squash commit, or `None` for a conflict.
    fn land(&self, r: &Report) -> Result<Option<String>> {
        let repo = self.repo()?;
        self.check(r)?;
        let fetched = format!("refs/loom/fetched/{}", r.bead);
        let spec = format!("+refs/heads/{}:{fetched}", r.branch);
        transport_ok(
            &repo.workdir,
            &["fetch", "-q", "--no-tags", &self.remote, &spec],
        )?;
        let tip = ok_in(
            &repo.workdir,
            &["rev-parse", &format!("{fetched}^{{commit}}")],
        )?;
        if tip != r.commit {
            return Err(Error::Refused(format!(
                "{} on the remote is {tip}, not the reported {}",
                r.branch, r.commit
            )));
        }
        let attempt = self.attempt(&tip)?;
        for _ in 0..ATTEMPTS {
            match self.try_land(repo, r, &tip, &attempt)? {
                Try::Landed(squash) => {
                    if let Err(e) = self.push_target() {
                        // The next landing (or the next start) pushes it.
                        self.bus.publish(Event::new(EventKind::Error {
                            message: format!("cannot push {}: {e}", self.target),
                        }));
                    }
                    let _ = ok_in(&repo.workdir, &["update-ref", "-d", &fetched]);
                    return Ok(Some(squash));
                }
                Try::Conflict => return Ok(None),
                Try::Moved => continue,
            }
        }
        Err(Error::Other(format!(
            "{} kept moving while {} was landed",
            self.target, r.bead
        )))
    }

    /// One try at landing `r` (its tip `tip`, whose author and trailers are `attempt`).
    fn try_land(
        &self,
        repo: &Repo,
        r: &Report,
        tip: &str,
        attempt: &(Identity, Trailers),
    ) -> Result<Try> {
        let _store = crate::store::fsio::lock(&repo.beads_lock_path(), Duration::from_secs(60))?;
        let snap = self.ws.store.load_index()?;
        let Some(bead) = snap.beads.iter().find(|b| b.id == r.bead) else {
            return Err(Error::Refused(format!("{} is no bead here", r.bead)));
        };
        if bead.status == status::CLOSED {
            return Err(Error::Refused(format!("{} is closed already", r.bead)));
        }
        let old = repo.tip(&self.target)?;
        let tree = match repo.landing(&old, tip)? {
            Merged::Conflict { .. } => return Ok(Try::Conflict),
            Merged::Clean { tree } => tree,
        };
        let wt = self.landing_tree(&old)?;
        let beads = self
            .ws
            .layout()
            .relative(&self.ws.layout().beads_dir)
            .to_string_lossy()
            .into_owned();
        let at = &wt.path;
        // The merged code with the target's beads, whatever the branch did to them.
        ok_in(at, &["read-tree", "-u", "--reset", &tree])?;
        ok_in(at, &["clean", "-q", "-ffd"])?;
        ok_in(
            at,
            &[
                "rm",
                "-r",
                "-q",
                "--cached",
                "--ignore-unmatch",
                "--",
                &beads,
            ],
        )?;
        let dir = at.join(&beads);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        if ok_in(at, &["cat-file", "-e", &format!("{old}:{beads}")]).is_ok() {
            ok_in(at, &["checkout", "-q", &old, "--", &beads])?;
        }
        let changed = crate::git::changed_against(wt.place(), &old)?;
        let touched = self.protected.filter(changed.iter().map(String::as_str));
        if !touched.is_empty() {
            return Err(Error::Refused(format!(
                "the attempt changes protected paths ({}): a person merges that by hand from {}",
                touched.join(", "),
                r.branch
            )));
        }
        if repo.base_moved(&old, tip)? {
            self.verify(&wt, &r.bead)?;
        }
        let message = message(r, &bead.title, &attempt.1);
        // The close, in the same tree.
        let lws = Workspace::open(&OpenOptions {
            dir: Some(at.clone()),
            no_commit: true,
            ..OpenOptions::default()
        })?;
        let summary = if r.detail.trim().is_empty() {
            format!("Merged from {}", r.worker)
        } else {
            r.detail.clone()
        };
        lws.write_only(crate::store::TxOptions::default(), |tx| {
            crate::ops::claim::close_merged_in(tx, &r.bead, &summary, None)
        })?;
        ok_in(at, &["add", "-A", "--", &beads])?;
        let closed_tree = ok_in(at, &["write-tree"])?;
        let squash = repo.commit_tree(&closed_tree, &old, &message, &attempt.0, None)?;
        match repo.advance(&self.target, &old, &squash)? {
            Advance::Done => {
                crate::scale::failpoint("coordinator:after-advance");
                Ok(Try::Landed(squash))
            }
            Advance::Moved => Ok(Try::Moved),
            Advance::Refused(why) => Err(Error::Other(format!(
                "merging into {} was refused (uncommitted changes in the checkout?): {why}",
                self.target
            ))),
        }
    }

    /// Runs the test command on the merged tree, sandboxed; a failure refuses the landing.
    fn verify(&self, wt: &Worktree, bead: &str) -> Result<()> {
        let Some(cmd) = self.test_command.clone() else {
            return Ok(());
        };
        let (sandbox, _) = session::sandbox_for(&self.ws, &self.client, wt, self.helper.clone())?;
        let timeout = self.test_timeout;
        let rt = tokio::runtime::Handle::current();
        let out = rt.block_on(sandbox.run(&cmd, Some(timeout)));
        if let Some(why) = out.tampered {
            return Err(Error::Security(format!(
                "the test command left the landing worktree's .git changed: {why}"
            )));
        }
        if !out.timed_out && out.exit_code == Some(0) {
            return Ok(());
        }
        let text =
            self.client
                .config()
                .redact(&format!("{}{}", out.stdout.text(), out.stderr.text()));
        Err(Error::Refused(format!(
            "{bead}: the tests fail on {} with this attempt merged: {}",
            self.target,
            crate::text::tail(&text, 1500)
        )))
    }

    /// The author of the attempt's last commit (the agent) and its trailers.
    fn attempt(&self, tip: &str) -> Result<(Identity, Trailers)> {
        let repo = self.repo()?;
        let text = ok_in(
            &repo.workdir,
            &["log", "-1", "--format=%an%x00%ae%x00%B", tip],
        )?;
        let (name, rest) = text.split_once('\0').unwrap_or(("loom", "loom@localhost"));
        let (email, body) = rest.split_once('\0').unwrap_or((rest, ""));
        let author = Identity {
            name: name.to_owned(),
            email: email.to_owned(),
        };
        Ok((author, crate::git::parse_trailers(body)))
    }
}

/// The squash commit's message: the bead's title, the worker's summary, the trailers.
fn message(r: &Report, title: &str, trailers: &Trailers) -> String {
    let agent = trailers.agent.as_deref().unwrap_or("coder");
    let model = trailers.model.as_deref().unwrap_or("unknown");
    let mut m = format!("{title} ({})\n\n", r.bead);
    if !r.detail.trim().is_empty() {
        m.push_str(r.detail.trim());
        m.push_str("\n\n");
    }
    m.push_str(&format!(
        "Loom-Bead: {}\nLoom-Agent: {agent}\nLoom-Model: {model}\nLoom-Event: merged\n\
         Loom-Attempt: {}\nLoom-Epoch: {}\nLoom-Worker: {}\n",
        r.bead, r.attempt, r.epoch, r.worker
    ));
    m
}

enum Try {
    Landed(String),
    Conflict,
    Moved,
}
