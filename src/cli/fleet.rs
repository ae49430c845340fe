//! `loom worker --nats URL` (take work orders on this machine) and `loom run --nats URL` (the
//! coordinator): the wiring of flags, configuration and the NATS connection around
//! [`crate::orchestrator::fleet`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use clap::Args;

use crate::error::{Error, Result};
use crate::event::{EventBus, EventKind, Outcome};
use crate::orchestrator::fleet::record::{GitRecord, RecordSetup};
use crate::orchestrator::fleet::slot::SlotConfig;
use crate::orchestrator::fleet::{self, Coordination, ScaleSettings, WorkerSetup};
use crate::orchestrator::report::{self, BeadReport, RunSummary};
use crate::orchestrator::settings::RunSettings;
use crate::scale::coordinator::Coordinator;
use crate::scale::nats::{NatsBus, NatsOptions};
use crate::scale::worker::Handled;
use crate::workspace::Workspace;

use super::{Ctx, llm};

/// How to reach the NATS server.
#[derive(Clone, Debug, Default, Args)]
pub struct NatsArgs {
    /// The NATS server (JetStream on) that carries work orders: `nats://host:4222`.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// A NATS credentials file (JWT and NKey seed).
    #[arg(long, value_name = "FILE", requires = "nats")]
    pub nats_creds: Option<PathBuf>,
    /// A CA certificate (PEM) to trust for the NATS server's TLS; TLS is then required.
    #[arg(long, value_name = "FILE", requires = "nats")]
    pub nats_ca: Option<PathBuf>,
}

impl NatsArgs {
    fn options(&self, scale: &ScaleSettings) -> Option<NatsOptions> {
        let mut o = NatsOptions::new(self.nats.as_deref()?);
        o.creds = self.nats_creds.clone();
        o.ca = self.nats_ca.clone();
        o.ack_wait = scale.ack_wait;
        Some(o)
    }
}

/// What `loom --nats URL` attaches the terminal UI to: the server and this repository's id.
pub fn remote(ws: &Workspace, nats: &NatsArgs) -> Result<Option<(NatsOptions, String)>> {
    let scale = ScaleSettings::from_config(&ws.config)?;
    let Some(opts) = nats.options(&scale) else {
        return Ok(None);
    };
    Ok(Some((opts, repo_id(ws)?)))
}

/// This repository's id (the streams' names carry it).
fn repo_id(ws: &Workspace) -> Result<String> {
    ws.require_repo()?.id()?.ok_or_else(|| {
        Error::Config("the repository has no commits yet: commit something first".into())
    })
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Follow the runs of this repository coordinated through a NATS server (`loom run
    /// --nats`) from any machine: the kept events first, then live.
    #[command(flatten)]
    pub nats: NatsArgs,
}

/// `loom watch --nats URL`: every event kept for the repository's runs, then live ones, as
/// human lines (NDJSON with `--json`), until interrupted.
pub fn watch(ctx: &Ctx, a: &WatchArgs) -> Result<()> {
    let ws = ctx.workspace()?;
    let Some((opts, repo_id)) = remote(&ws, &a.nats)? else {
        return Err(Error::Usage("--nats needs a URL".into()));
    };
    if !ctx.global.quiet {
        eprintln!(
            "Following the runs of {repo_id} on {} (Ctrl-C to stop)…",
            opts.url
        );
    }
    runtime()?.block_on(async {
        let bus = NatsBus::open(&opts, &repo_id).await.map_err(Error::Other)?;
        let mut failed = None;
        bus.follow_events(|e| {
            let mut out = ctx.out();
            let written = if ctx.global.json {
                super::output::write_json(&mut out, &e)
            } else {
                match super::watch::human(ctx, &e) {
                    Some(line) => {
                        use std::io::Write;
                        writeln!(out, "{line}").map_err(super::output::stdout_err)
                    }
                    None => Ok(()),
                }
            };
            let flushed = written.and_then(|()| {
                use std::io::Write;
                out.flush().map_err(super::output::stdout_err)
            });
            match flushed {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        })
        .await
        .map_err(Error::Other)?;
        failed.map_or(Ok(()), Err)
    })
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// How many beads this worker works at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    slots: usize,
    /// Where the slots keep their clones (default: the data dir's `worker/<id>`).
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// This worker's name in claims and reports (default: host and process id).
    #[arg(long, value_name = "NAME")]
    id: Option<String>,
    /// The repository to fetch from and push to (default: scale.remote, else origin).
    #[arg(long, value_name = "URL")]
    remote: Option<String>,
}

/// The repository id and the remote both sides reach, as a URL or absolute path.
fn identity(ws: &Workspace, flag: Option<&str>, scale: &ScaleSettings) -> Result<(String, String)> {
    let repo = ws.require_repo()?;
    let id = repo_id(ws)?;
    let named = flag
        .map(str::to_owned)
        .or_else(|| scale.remote.clone())
        .unwrap_or_else(|| "origin".into());
    Ok((id, remote_url(&repo.workdir, &named)?))
}

/// `name` as a URL: a remote of the repository at `workdir`, else a URL or path (relative
/// paths are taken from `workdir`).
fn remote_url(workdir: &Path, name: &str) -> Result<String> {
    let out = crate::git::run_in(workdir, &["remote", "get-url", name], &[], None)?;
    let url = if out.status.success() {
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    } else if name.contains('/') || name.contains(':') {
        name.to_owned()
    } else {
        return Err(Error::Config(format!(
            "no remote {name:?} in {}: add it (`git remote add {name} URL`), pass --remote, or set scale.remote in .loom/config.yaml",
            workdir.display()
        )));
    };
    // Whatever names it, a remote reaches git's command line: never as an option.
    if url.starts_with('-') {
        return Err(Error::Config(format!(
            "the remote {url:?} starts with '-': give a URL or a path"
        )));
    }
    if url.contains("://") || Path::new(&url).is_absolute() || url.contains(':') {
        return Ok(url);
    }
    Ok(workdir.join(url).to_string_lossy().into_owned())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))
}

/// Sets `stop` on Ctrl-C or SIGTERM.
fn stop_on_signals(stop: &Arc<AtomicBool>) {
    let stop = Arc::clone(stop);
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
        stop.store(true, Ordering::SeqCst);
    });
}

pub fn worker(ctx: &Ctx, a: WorkerArgs) -> Result<i32> {
    let ws = ctx.workspace()?;
    let scale = ScaleSettings::from_config(&ws.config)?;
    let Some(opts) = a.nats.options(&scale) else {
        return Err(Error::Usage("loom worker needs --nats URL".into()));
    };
    let (repo_id, remote) = identity(&ws, a.remote.as_deref(), &scale)?;
    let owner = crate::ops::owner::Owner::current();
    let id =
        a.id.unwrap_or_else(|| format!("{}-{}", owner.host, owner.pid));
    let cache = match a.cache {
        Some(c) => crate::store::absolutize(&std::env::current_dir().unwrap_or_default(), &c),
        None => ws
            .data_dir()
            .ok_or_else(|| Error::Config("no data directory: pass --cache DIR".into()))?
            .join("worker")
            .join(&id),
    };
    // A worker is there to run agents: without a model endpoint it says so now, rather
    // than taking orders it cannot work.
    let client = llm::client(ctx, llm::provider(&ws)?)?;
    let quiet = ctx.global.quiet;
    let rt = runtime()?;
    rt.block_on(async move {
        let bus = Arc::new(NatsBus::open(&opts, &repo_id).await.map_err(Error::Other)?);
        let stop = Arc::new(AtomicBool::new(false));
        stop_on_signals(&stop);
        if !quiet {
            eprintln!(
                "loom worker {id}: {} slot(s) on {} (repository {repo_id}), clones in {}",
                a.slots,
                opts.url,
                cache.display()
            );
        }
        let setup = WorkerSetup {
            bus,
            slot: SlotConfig::new(remote, client, scale.lease),
            id,
            slots: a.slots,
            cache,
            lease: scale.lease,
            stop,
        };
        fleet::serve_worker(
            setup,
            move |w, o, h| {
                if !quiet {
                    eprintln!("{}", crate::text::inert(&handled_line(w, &o.msg_id(), h)));
                }
            },
            |e| {
                eprintln!(
                    "{}",
                    crate::text::inert(&format!("cannot announce this worker: {e}"))
                )
            },
        )
        .await;
        Ok::<(), Error>(())
    })?;
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    Ok(0)
}

fn handled_line(worker: &str, order: &str, h: &Handled) -> String {
    match h {
        Handled::Skipped => format!("{worker}: {order} is done already"),
        Handled::Dropped => format!("{worker}: {order} is held elsewhere or stale: dropped"),
        Handled::Fenced(why) => format!("{worker}: {order} stopped without a result: {why}"),
        Handled::Reported { epoch, ok } => format!(
            "{worker}: {order} reported ({}, epoch {epoch})",
            if *ok { "done" } else { "failed" }
        ),
    }
}

/// `loom run --nats URL`: this process coordinates; workers anywhere do the work.
pub fn coordinate(
    ctx: &Ctx,
    ws: Workspace,
    settings: RunSettings,
    nats: &NatsArgs,
    local_slots: usize,
) -> Result<RunSummary> {
    let scale = ScaleSettings::from_config(&ws.config)?;
    let Some(opts) = nats.options(&scale) else {
        return Err(Error::Usage("--nats needs a URL".into()));
    };
    let (repo_id, remote) = identity(&ws, None, &scale)?;
    let client = llm::client_for_agent(ctx, llm::provider(&ws)?)?;
    let events = EventBus::new(16 * 1024);
    let owner = crate::ops::owner::Owner::current();
    let holder = format!("{}:{}", owner.host, owner.pid);
    let data = ws
        .data_dir()
        .ok_or_else(|| Error::Config("no data directory: set LOOM_DATA_DIR".into()))?;
    let provider = client.config().clone();
    let log_ws = ws.clone();
    let record = GitRecord::new(RecordSetup {
        ws,
        client: client.clone(),
        bus: Arc::clone(&events),
        target: settings.target.clone(),
        remote: remote.clone(),
        only: settings.beads.clone(),
        test_command: settings.test_command.clone(),
        test_timeout: settings.test_timeout,
        helper: std::env::current_exe().ok(),
    })?;
    let started = Instant::now();
    let mut progress = super::run::Progress::new(ctx);
    let json = ctx.global.json;
    let rt = runtime()?;
    let target = settings.target.clone();
    let outcome = rt.block_on(async move {
        let bus = Arc::new(NatsBus::open(&opts, &repo_id).await.map_err(Error::Other)?);
        let me = owner.host.clone();
        let gone = move |who: &str| {
            // `host:pid` of a process of this machine that is no longer running.
            who.rsplit_once(':').is_some_and(|(host, pid)| {
                host == me
                    && pid.parse::<u32>().is_ok_and(|p| {
                        p != std::process::id() && !Path::new(&format!("/proc/{p}")).exists()
                    })
            })
        };
        let lease_revision = bus.take_lease(&holder, gone).await.map_err(Error::Config)?;
        record.publish_target().await?;
        // A window on this machine follows the run's log; one on any other, the stream.
        let log = crate::orchestrator::eventlog::spawn(&log_ws, &events, &provider);
        let forwarder = fleet::forward_events(Arc::clone(&bus), &events, false);
        let stop = Arc::new(AtomicBool::new(false));
        stop_on_signals(&stop);
        let reports = collect(Arc::clone(&events), json, move |e| progress.event(e));
        let announced = bus
            .workers()
            .await
            .map_or(0, |w| w.iter().map(|p| p.slots as usize).sum::<usize>());
        events.publish(crate::event::Event::new(EventKind::RunStarted {
            target: settings.target.clone(),
            max_agents: announced.max(local_slots),
            beads_ready: record_ready(&record).await,
        }));
        let local = (local_slots > 0).then(|| {
            let setup = WorkerSetup {
                bus: Arc::clone(&bus),
                slot: SlotConfig::new(remote, client, scale.lease),
                id: format!("{}-local", owner.host),
                slots: local_slots,
                cache: data.join("worker").join("local"),
                lease: scale.lease,
                stop: Arc::new(AtomicBool::new(false)),
            };
            let stop = Arc::clone(&setup.stop);
            (
                stop,
                tokio::spawn(fleet::serve_worker(setup, |_, _, _| {}, |_| {})),
            )
        });
        let mut coordinator = Coordinator::new(
            "default",
            scale.lease.as_millis() as u64,
            settings.budget.max_dispatches,
        );
        coordinator.events = Some(Arc::clone(&events));
        let mut c = Coordination {
            bus: Arc::clone(&bus),
            record,
            coordinator,
            holder,
            lease_revision,
            local_slots,
            deadline: settings.timeout.map(|t| Instant::now() + t),
            stop,
            events: Arc::clone(&events),
        };
        let stopped = c.run().await;
        if let Some((stop, task)) = local {
            stop.store(true, Ordering::SeqCst);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
        }
        bus.release_lease(c.lease_revision).await;
        let tally = c.coordinator.tally.clone();
        drop(c);
        events.publish(crate::event::Event::new(EventKind::RunFinished {
            exit_code: 0,
            summary: serde_json::json!({ "tally": tally, "target": settings.target }),
        }));
        let beads = reports.await.unwrap_or_default();
        let bounded = std::time::Duration::from_secs(5);
        let _ = tokio::time::timeout(bounded, forwarder).await;
        if let Some(log) = log {
            let _ = tokio::time::timeout(bounded, log).await;
        }
        Ok::<_, Error>((stopped, beads))
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    let (stopped, beads) = outcome?;
    let exit_code = report::exit_code(stopped, &beads, 0);
    Ok(RunSummary {
        target,
        stopped,
        beads,
        pending_decisions: Vec::new(),
        usage: Default::default(),
        duration_ms: started.elapsed().as_millis() as u64,
        peak_rss_kb: None,
        exit_code,
        error: None,
    })
}

/// How many beads are ready now (for the run's first line).
async fn record_ready(record: &GitRecord) -> usize {
    use crate::scale::coordinator::Record;
    record.ready().await.len()
}

/// Prints the run's events (NDJSON with `--json`, progress otherwise) until `run_finished`,
/// and gathers what became of each bead.
fn collect(
    events: Arc<EventBus>,
    json: bool,
    mut show: impl FnMut(&crate::event::Event) + Send + 'static,
) -> tokio::task::JoinHandle<Vec<BeadReport>> {
    let mut rx = events.subscribe();
    tokio::spawn(async move {
        let mut beads: Vec<BeadReport> = Vec::new();
        let mut commits = std::collections::HashMap::new();
        loop {
            let e = match rx.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            };
            if json {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                let _ = super::output::write_json(&mut out, &e);
                let _ = out.flush();
            }
            show(&e);
            let id = e.bead_or_empty().to_owned();
            match &e.kind {
                EventKind::MergeResult {
                    commit: Some(c), ..
                } => {
                    commits.insert(id, c.clone());
                }
                EventKind::BeadFinished {
                    outcome,
                    stage,
                    detail,
                } => beads.push(BeadReport {
                    commit: if *outcome == Outcome::Merged {
                        commits.get(&id).cloned()
                    } else {
                        None
                    },
                    id,
                    outcome: Some(*outcome),
                    stage: *stage,
                    detail: detail.clone(),
                    ..BeadReport::default()
                }),
                EventKind::RunFinished { .. } => break,
                _ => {}
            }
        }
        beads
    })
}
