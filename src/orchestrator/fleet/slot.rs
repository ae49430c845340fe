//! One slot of a `loom worker`: the [`Hands`] that carry out a work order on this machine.
//! Each slot keeps a clone of its own (fetched from the remote both sides reach), so two
//! slots never share a checkout. For an order it fetches, resets the clone to the order's
//! base (ignored build caches stay), and runs the very pipeline `loom run` runs — implement,
//! verify, review — on that one bead with `merge: none`, so the work ends on the bead's
//! branch; that tip is what is pushed as the attempt's branch. Nothing the slot writes to its
//! clone's beads travels: the coordinator keeps the beads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::event::{EventBus, Outcome};
use crate::git::{ok_in, transport_ok};
use crate::llm::Client;
use crate::scale::protocol::Order;
use crate::scale::worker::{Hands, Work};
use crate::workspace::{OpenOptions, Workspace};

use crate::orchestrator::dispatch::{self, Setup};
use crate::orchestrator::report::StopReason;
use crate::orchestrator::settings::{Overrides, RunSettings};

/// The branch a slot's clone has checked out: the order's base.
const BASE_BRANCH: &str = "loom-base";

/// What every slot of a worker shares.
#[derive(Clone)]
pub struct SlotConfig {
    /// The repository to fetch from and push to (a URL or path both sides reach).
    pub remote: String,
    pub client: Client,
    /// The pipeline's events (for the worker's output).
    pub bus: Arc<EventBus>,
    /// `loom` itself, for Landlock.
    pub helper: Option<PathBuf>,
    /// How long one [`Hands::work`] call waits before the lease is renewed.
    pub renew: Duration,
}

impl SlotConfig {
    /// Slots fetching from and pushing to `remote`, renewing a lease of `lease` three times
    /// per period; their events on a bus of their own.
    pub fn new(remote: String, client: Client, lease: Duration) -> SlotConfig {
        SlotConfig {
            remote,
            client,
            bus: EventBus::new(4096),
            helper: std::env::current_exe().ok(),
            renew: lease / 3,
        }
    }
}

/// One slot (module docs).
pub struct Slot {
    cfg: SlotConfig,
    /// This slot's clone.
    dir: PathBuf,
    /// The order at work: its attempt and the task doing it.
    job: Mutex<Option<(String, JoinHandle<Work>)>>,
}

impl Slot {
    pub fn new(cfg: SlotConfig, dir: PathBuf) -> Slot {
        Slot {
            cfg,
            dir,
            job: Mutex::new(None),
        }
    }
}

impl Hands for Slot {
    async fn work(&self, order: &Order, _epoch: u64, attempt: &str) -> Work {
        let mut job = self.job.lock().await;
        if job.as_ref().is_none_or(|(a, _)| a != attempt) {
            if let Some((_, old)) = job.take() {
                old.abort(); // a fenced attempt's leftovers
            }
            let (cfg, dir, order) = (self.cfg.clone(), self.dir.clone(), order.clone());
            *job = Some((
                attempt.to_owned(),
                tokio::spawn(async move { carry_out(cfg, dir, order).await }),
            ));
        }
        let Some((_, handle)) = job.as_mut() else {
            return Work::Abort("no job".into());
        };
        match tokio::time::timeout(self.cfg.renew, handle).await {
            Err(_) => Work::More,
            Ok(done) => {
                *job = None;
                done.unwrap_or_else(|e| Work::Abort(format!("the work task failed: {e}")))
            }
        }
    }

    async fn push(&self, branch: &str, commit: &str) -> std::result::Result<(), String> {
        let (dir, remote) = (self.dir.clone(), self.cfg.remote.clone());
        let refspec = format!("{commit}:refs/heads/{branch}");
        let pushed = tokio::task::spawn_blocking(move || {
            transport_ok(&dir, &["push", "-q", "--no-verify", &remote, &refspec])
        })
        .await;
        match pushed {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("pushing {branch}: {e}")),
            Err(e) => Err(format!("pushing {branch}: {e}")),
        }
    }
}

/// Makes `dir` a clone of `remote` at `base`, with nothing left of earlier orders but
/// ignored files (build caches).
pub fn prepare(dir: &Path, remote: &str, base: &str) -> Result<()> {
    if !dir.join(".git").exists() {
        let parent = dir.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        let path = dir.to_string_lossy();
        transport_ok(parent, &["clone", "-q", "--no-checkout", remote, &path])?;
    }
    transport_ok(
        dir,
        &[
            "fetch",
            "-q",
            "--no-tags",
            remote,
            "+refs/heads/*:refs/remotes/origin/*",
        ],
    )?;
    if ok_in(dir, &["cat-file", "-e", &format!("{base}^{{commit}}")]).is_err() {
        return Err(Error::Other(format!(
            "the order's base {base} is not on the remote {remote}: the coordinator pushes its target there"
        )));
    }
    // Worktrees and branches of earlier orders: their work was pushed, or is abandoned.
    let listed = ok_in(dir, &["worktree", "list", "--porcelain"])?;
    let own = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
    for path in listed.lines().filter_map(|l| l.strip_prefix("worktree ")) {
        // The pool's warm checkouts stay (the pool itself never resets one holding work).
        let pooled = Path::new(path)
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == ".pool");
        if Path::new(path) != own && !pooled {
            let _ = ok_in(dir, &["worktree", "remove", "--force", "--force", path]);
        } else if pooled && let Some(name) = Path::new(path).file_name() {
            // No order is under way in this slot now: a checkout an interrupted attempt
            // left marked is free again (one holding work is still skipped, never reset).
            // Its git dir as git made it, not as a `.git` file in the checkout says.
            let marker = own
                .join(".git")
                .join("worktrees")
                .join(name)
                .join(crate::git::worktree::pool::TAKEN);
            let _ = std::fs::remove_file(marker);
        }
    }
    let _ = ok_in(dir, &["worktree", "prune"]);
    ok_in(dir, &["checkout", "-q", "-f", "-B", BASE_BRANCH, base])?;
    ok_in(dir, &["clean", "-q", "-ffd"])?;
    let branches = ok_in(
        dir,
        &["for-each-ref", "--format=%(refname)", "refs/heads/loom/"],
    )?;
    for r in branches.lines().filter(|l| !l.is_empty()) {
        ok_in(dir, &["update-ref", "-d", r])?;
    }
    Ok(())
}

/// The whole order: the clone at its base, the pipeline on the bead, the outcome as [`Work`].
async fn carry_out(cfg: SlotConfig, dir: PathBuf, order: Order) -> Work {
    // Anyone who may publish on the queue can send an order: nothing in it may reach git's
    // command line as anything but a bead id and a commit id.
    let ids = crate::scale::protocol::is_commit_id(&order.base)
        && crate::store::layout::id_is_file_safe(&order.bead);
    if !ids {
        return Work::Done {
            commit: String::new(),
            ok: false,
            detail: "a malformed order (its bead or base is not an id)".into(),
        };
    }
    let (d2, remote, base) = (dir.clone(), cfg.remote.clone(), order.base.clone());
    let prepared = tokio::task::spawn_blocking(move || prepare(&d2, &remote, &base)).await;
    match prepared {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Work::Abort(format!("preparing the clone: {e}")),
        Err(e) => return Work::Abort(format!("preparing the clone: {e}")),
    }
    match pipeline(&cfg, &dir, &order).await {
        Ok(w) => w,
        Err(e) => Work::Abort(cfg.client.config().redact(&e.with_hint())),
    }
}

/// Runs the bead through implement → verify → review in the clone; where it ended.
async fn pipeline(cfg: &SlotConfig, dir: &Path, order: &Order) -> Result<Work> {
    let ws = Workspace::open(&OpenOptions {
        dir: Some(dir.to_path_buf()),
        ..OpenOptions::default()
    })?;
    let settings = RunSettings::resolve(
        &ws.config,
        Some(BASE_BRANCH),
        cfg.client.config().down_limit,
        Overrides {
            target: Some(BASE_BRANCH.to_owned()),
            max_agents: Some(1),
            beads: vec![order.bead.clone()],
            max_beads: Some(1),
            no_merge: true,
            // Beads filed here would stay in this clone: agents on workers file none.
            run_created_beads: Some(0),
            bead_created_beads: Some(0),
            ..Overrides::default()
        },
    )?;
    let summary = dispatch::run(Setup {
        ws,
        client: cfg.client.clone(),
        settings,
        bus: Arc::clone(&cfg.bus),
        helper: cfg.helper.clone(),
        command: format!("loom worker ({})", order.msg_id()),
        personas: None,
        stop: None,
        control: None,
        // Warm checkouts: a slot's builds start from the last order's caches.
        pool: true,
    })
    .await?;
    let redact = |s: &str| -> String {
        let s = cfg.client.config().redact(s);
        s.lines().next().unwrap_or("").chars().take(500).collect()
    };
    if summary.stopped == StopReason::EndpointDown {
        return Ok(Work::Abort("the model endpoint is unusable".into()));
    }
    // The run could not start (a configuration problem on this worker): not the bead's fault.
    if let Some(e) = &summary.error {
        return Ok(Work::Abort(redact(e)));
    }
    let Some(b) = summary.beads.iter().find(|b| b.id == order.bead) else {
        return Ok(Work::Done {
            commit: String::new(),
            ok: false,
            detail: format!("{} is not open and ready at {}", order.bead, order.base),
        });
    };
    Ok(match (b.outcome(), &b.commit) {
        (Outcome::Completed, Some(tip)) => Work::Done {
            commit: tip.clone(),
            ok: true,
            // The coder's summary (its commit's body), not the pipeline's note about the
            // branch: it becomes the merge commit's message and the close reason.
            detail: redact(&summary_of(dir, tip).unwrap_or_else(|| b.detail.clone())),
        },
        (Outcome::Interrupted, _) => Work::Abort(redact(&b.detail)),
        _ => Work::Done {
            commit: String::new(),
            ok: false,
            detail: redact(&b.detail),
        },
    })
}

/// The first paragraph of the body of the last agent commit up to `tip` (an agent's `done`
/// summary), if any.
fn summary_of(dir: &Path, tip: &str) -> Option<String> {
    let body = ok_in(
        dir,
        &["log", "-1", "--format=%b", "--grep=^Loom-Agent: ", tip],
    )
    .ok()?;
    let first = body.split("\n\n").next()?.trim();
    (!first.is_empty() && !first.starts_with("Loom-")).then(|| first.to_owned())
}
