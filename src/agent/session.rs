//! One agent on one bead, start to end: pick the persona, ensure the bead's worktree, set up
//! the sandbox, run the action loop (or the external runner), commit the worktree as the agent,
//! record the outcome in the bead's `metadata.loom`, and leave a lesson if it went wrong.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::bead::graph::Graph;
use crate::bead::{Bead, Timestamp};
use crate::error::{Error, Result};
use crate::git::worktree::{Identity, Worktree, WorktreeFile, Worktrees};
use crate::git::{CommitRequest, Repo};
use crate::llm::{Client, Message};
use crate::ops::{self, change::Change};
use crate::workspace::Workspace;

use super::exec::ToolContext;
use super::lessons;
use super::persona::{Persona, PersonaSet};
use super::prompt;
use super::run::{self, AgentEvent, AgentFile, Limits, LoopEnd, LoopMode, RunReport, Terminal};
use super::runner;
use super::sandbox::{self, Sandbox, SandboxFile};

/// Options of [`run_bead`].
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Use this persona instead of the matched one.
    pub persona: Option<String>,
    /// Branch the worktree starts from (default: the branch checked out now).
    pub target: Option<String>,
    /// `loom` itself, the supervisor of commands (`None`: commands run unsupervised, for
    /// tests only).
    pub sandbox_helper: Option<PathBuf>,
    /// The beads agents may still file (shared by a run's agents); default limits if `None`.
    pub quota: Option<std::sync::Arc<super::quota::Quota>>,
}

/// How long a new worktree's setup may take (`test_timeout_secs`, else 10 minutes).
pub fn setup_timeout(ws: &Workspace) -> Result<std::time::Duration> {
    let secs = ws.config.value::<u64>("test_timeout_secs")?.unwrap_or(600);
    Ok(std::time::Duration::from_secs(secs.max(1)))
}

/// The worktrees of a workspace's repository.
pub fn worktrees(ws: &Workspace) -> Result<Worktrees> {
    let repo = ws.require_repo()?.clone();
    let base = ws
        .data_dir()
        .ok_or_else(|| Error::Config("no data directory: set LOOM_DATA_DIR".into()))?
        .join("worktrees");
    let section = ws.config.section("worktree", WorktreeFile::merge)?;
    let trees = Worktrees::new(repo.clone(), base, section);
    // The bead store stays out of agents' checkouts (when it lives inside the repository).
    Ok(match ws.layout().beads_dir.strip_prefix(&repo.workdir) {
        Ok(rel) if !rel.as_os_str().is_empty() => trees.leaving_out(&rel.to_string_lossy()),
        _ => trees,
    })
}

/// The branch the user has checked out (the default target).
pub fn current_target(repo: &Repo) -> Result<String> {
    repo.current_branch()?.ok_or_else(|| {
        Error::Usage("HEAD is detached: check out a branch (or pass --target)".into())
    })
}

/// The personas of a workspace.
pub fn personas(ws: &Workspace) -> PersonaSet {
    PersonaSet::load_with(
        crate::config::user_config_dir().as_deref(),
        Some(&ws.layout().root),
        ws.config.repo_trusted,
    )
}

/// The persona `bead` gets (or `name`).
pub fn persona_for<'a>(
    set: &'a PersonaSet,
    ws: &Workspace,
    bead: &Bead,
    name: Option<&str>,
) -> Result<&'a Persona> {
    if let Some(n) = name {
        return set.get(n).ok_or_else(|| {
            let known: Vec<&str> = set.iter().map(|p| p.name.as_str()).collect();
            // A file of that name that was skipped says why.
            let skipped: Vec<String> = set
                .problems
                .iter()
                .filter(|pr| {
                    pr.path.file_stem().is_some_and(|s| s == n)
                        || pr
                            .path
                            .parent()
                            .and_then(|d| d.file_name())
                            .is_some_and(|d| d == n)
                })
                .map(|pr| format!("{}: {}", pr.path.display(), pr.reason))
                .collect();
            Error::Usage(format!(
                "no persona named {n:?}; known: {}{}",
                known.join(", "),
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", skipped.join("; "))
                }
            ))
        });
    }
    let agent = AgentFile::from_config(&ws.config)?;
    let default = agent.default_persona.as_deref().unwrap_or("coder");
    set.for_bead(bead, default).map(|(p, _)| p).ok_or_else(|| {
        Error::Config(format!(
            "no persona matches {} and the default {default:?} does not exist",
            bead.id
        ))
    })
}

/// A sandbox in `wt` with a private temp dir, the allow-listed environment and the
/// configured limits; commands run under the supervisor `helper` (the `loom` binary).
pub fn sandbox_for(
    ws: &Workspace,
    client: &Client,
    wt: &Worktree,
    helper: Option<PathBuf>,
) -> Result<(Sandbox, PathBuf)> {
    let data = ws
        .data_dir()
        .ok_or_else(|| Error::Config("no data directory: set LOOM_DATA_DIR".into()))?;
    let tmp = data.join("tmp").join(&wt.bead_id);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let secrets = client.config().secret_values();
    let secret_values: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let cfg = &SandboxFile::from_config(&ws.config)?;
    let env = sandbox::env::current(&secret_values, &cfg.env_allow);
    let mut sandbox = Sandbox::new(&wt.path, &tmp, env).map_err(|e| Error::io(&wt.path, e))?;
    sandbox = sandbox.expecting_dotgit(wt.expected_dotgit());
    if let Some(t) = cfg.command_timeout_secs {
        sandbox.timeout = std::time::Duration::from_secs(t.max(1));
    }
    if let Some(t) = cfg.max_command_timeout_secs {
        sandbox.max_timeout = std::time::Duration::from_secs(t.max(1));
    }
    if let Some(c) = cfg.output_cap_bytes {
        sandbox.output_cap = c.max(256);
    }
    if let Some(n) = cfg.max_processes {
        sandbox.max_processes = n;
    }
    sandbox.network = cfg.network.unwrap_or_default();
    sandbox.landlock = cfg.landlock != Some(false);
    if let Some(h) = helper {
        sandbox = sandbox.supervised(h, cfg.writable.clone());
    }
    Ok((sandbox, tmp))
}

/// Runs `future` to completion from blocking code: on the current runtime's handle when
/// called on one of its blocking threads, else on a small runtime of its own.
pub fn block_on<F: std::future::Future>(future: F) -> Result<F::Output> {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        return Ok(handle.block_on(future));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))?;
    Ok(rt.block_on(future))
}

/// The worktree of bead `id` (created from `target` if needed), with `worktree.setup` run in
/// a new one inside the sandbox; a setup that fails removes the new worktree and is a
/// configuration error. Returns whether it was created.
pub async fn prepare_worktree(
    ws: &Workspace,
    client: &Client,
    trees: &Worktrees,
    id: &str,
    target: &str,
    helper: Option<PathBuf>,
    timeout: std::time::Duration,
) -> Result<(Worktree, bool)> {
    let (wt, created) = trees.add(id, target)?;
    if let Some(why) = wt.tampered() {
        return Err(Error::Security(format!("{id}: {why}")));
    }
    if !created {
        return Ok((wt, false));
    }
    if let Some(why) = setup_worktree(ws, client, trees, &wt, helper, timeout).await? {
        trees.discard(&wt);
        return Err(Error::Config(format!(
            "{why}; fix worktree.setup in .loom/config.yaml"
        )));
    }
    Ok((wt, true))
}

/// Runs `worktree.setup` in `wt` under the sandbox; why it failed, if it did.
pub async fn setup_worktree(
    ws: &Workspace,
    client: &Client,
    trees: &Worktrees,
    wt: &Worktree,
    helper: Option<PathBuf>,
    timeout: std::time::Duration,
) -> Result<Option<String>> {
    let Some(cmd) = trees.setup_command() else {
        return Ok(None);
    };
    let (sandbox, _) = sandbox_for(ws, client, wt, helper)?;
    let out = sandbox.run(cmd, Some(timeout)).await;
    if let Some(why) = out.tampered {
        return Err(Error::Security(format!(
            "{}: the setup command `{cmd}` changed the worktree's .git: {why}",
            wt.bead_id
        )));
    }
    Ok((out.timed_out || out.exit_code != Some(0)).then(|| {
        format!(
            "the worktree setup command `{cmd}` failed ({}): {}",
            if out.timed_out {
                "timed out".to_owned()
            } else {
                out.exit_code
                    .map_or("killed".to_owned(), |c| format!("exit {c}"))
            },
            crate::text::tail(&format!("{}{}", out.stdout.text(), out.stderr.text()), 600).trim()
        )
    }))
}

/// Runs `persona`'s agent on bead `id` to the end of its loop.
pub async fn run_bead(
    ws: &Workspace,
    client: &Client,
    id: &str,
    opts: &RunOptions,
    on_event: &mut (dyn FnMut(AgentEvent) + Send),
) -> Result<RunReport> {
    let started = Instant::now();
    let repo = ws.require_repo()?.clone();
    let snap = ws.store.load()?;
    let bead = snap
        .beads
        .iter()
        .find(|b| b.id == id)
        .cloned()
        .ok_or_else(|| Error::NotFound(id.to_owned()))?;
    let set = personas(ws);
    let persona = persona_for(&set, ws, &bead, opts.persona.as_deref())?.clone();
    let target = match &opts.target {
        Some(t) => t.clone(),
        None => current_target(&repo)?,
    };
    let trees = worktrees(ws)?;
    let setup_timeout = setup_timeout(ws)?;
    let (wt, _) = prepare_worktree(
        ws,
        client,
        &trees,
        id,
        &target,
        opts.sandbox_helper.clone(),
        setup_timeout,
    )
    .await?;
    let (sandbox, tmp) = sandbox_for(ws, client, &wt, opts.sandbox_helper.clone())?;
    let limits = Limits::new(&AgentFile::from_config(&ws.config)?, &persona);
    let model = match (&persona.runner, persona.model.clone()) {
        (Some(spec), _) => spec.command.clone(),
        (None, Some(m)) => m,
        (None, None) => client.resolve_model(None).await?,
    };
    on_event(AgentEvent::Started {
        bead: id.to_owned(),
        persona: persona.name.clone(),
        model: model.clone(),
        worktree: wt.path.display().to_string(),
    });
    let graph = Graph::new(&snap.beads);
    let bead_text = prompt::bead_message(&bead, Some(&graph));
    let mut ctx = ToolContext::new(sandbox, Arc::new(ws.clone()), id, &persona.name)
        .map_err(|e| Error::io(&wt.path, e))?
        .in_worktree(&wt);
    if let Some(q) = &opts.quota {
        ctx.quota = std::sync::Arc::clone(q);
    }
    let end = match &persona.runner {
        Some(spec) => {
            let prompt = format!("{}\n\n{bead_text}", persona.body);
            runner::session(spec, &ctx.sandbox, &tmp, &prompt, on_event).await
        }
        None => {
            let lessons = lessons::tail(&ws.layout().root, lessons::PROMPT_BYTES);
            let system =
                prompt::system_prompt(&persona, limits.tool_mode, &wt.path, lessons.as_deref());
            let messages = vec![Message::system(system), Message::user(bead_text)];
            let mode = LoopMode {
                confirm: None,
                answer_ends: false,
                outage_limit: Some(client.config().down_limit),
            };
            run::action_loop(
                client, &persona, &limits, &model, messages, &mut ctx, mode, on_event,
            )
            .await
        }
    };
    // The model's last words go into a commit and the bead: never a secret.
    let mut end = end;
    end.detail = client.config().redact(&end.detail);
    // A worktree whose `.git` was replaced is left exactly as it is, for a person to look at:
    // nothing of it is committed, and the bead says why.
    let commit = if end.terminal == Terminal::SecurityStop {
        security_comment(ws, id, &persona.name, &end.detail, &wt)?;
        None
    } else {
        commit_work(ws, &trees, &wt, &bead, &persona, &end)?
    };
    let report = end.report(id, &persona.name, &wt.branch, started, commit);
    record(ws, &report, &wt)?;
    if let Some(line) = lessons::lesson(
        id,
        &persona.name,
        &end,
        &ctx.stats,
        &Timestamp::now().as_str()[..10],
    ) {
        // A lesson that cannot be written must not hide the run's outcome.
        let _ = write_lesson(ws, &line);
    }
    on_event(AgentEvent::Finished {
        report: report.clone(),
    });
    Ok(report)
}

/// The comment a bead gets when its agent's command broke the sandbox's promises.
fn security_comment(ws: &Workspace, id: &str, agent: &str, why: &str, wt: &Worktree) -> Result<()> {
    let text = format!(
        "Loom stopped this bead for security: {why}. Nothing from it was committed; the worktree {} is kept as it is for inspection.",
        wt.path.display()
    );
    let comment = Change::Comment {
        author: agent.to_owned(),
        text,
    };
    ops::change::edit_as(ws, id, agent, &comment).map(drop)
}

/// The commit author of `persona`'s work.
pub fn agent_identity(persona: &str) -> Identity {
    Identity {
        name: persona.to_owned(),
        email: format!("{persona}@agents.loom.invalid"),
    }
}

/// Commits what the agent changed in its worktree (DESIGN §3 trailers).
pub fn commit_work(
    ws: &Workspace,
    trees: &Worktrees,
    wt: &Worktree,
    bead: &Bead,
    persona: &Persona,
    end: &LoopEnd,
) -> Result<Option<String>> {
    let detail = end.detail.trim();
    let body = if end.terminal == Terminal::Done {
        detail.to_owned()
    } else {
        format!(
            "Work in progress, stopped: {} — {detail}",
            end.terminal.as_str()
        )
    };
    let message = format!(
        "{}: {}\n\n{body}\n\nLoom-Bead: {}\nLoom-Agent: {}\nLoom-Model: {}\nCo-authored-by: {} ({}) <{}>\n",
        bead.id,
        bead.title,
        bead.id,
        persona.name,
        end.model,
        persona.name,
        end.model,
        agent_identity(&persona.name).email
    );
    let committer = AgentFile::from_config(&ws.config)?
        .committer
        .map(|c| Identity {
            name: c.name,
            email: c.email,
        });
    trees.commit(
        wt,
        &message,
        &agent_identity(&persona.name),
        committer.as_ref(),
    )
}

/// Writes the run's outcome into `metadata.loom` of the bead (one commit).
fn record(ws: &Workspace, report: &RunReport, wt: &Worktree) -> Result<()> {
    let now = Timestamp::now();
    let detail: String = report.detail.chars().take(500).collect();
    let mut record = serde_json::Map::new();
    for (k, v) in [
        ("terminal", json!(report.terminal.as_str())),
        ("terminal_detail", json!(detail)),
        ("iterations", json!(report.iterations)),
        ("tool_calls", json!(report.tool_calls)),
        (
            "tokens",
            json!({"prompt": report.usage.prompt_tokens, "completion": report.usage.completion_tokens, "total": report.usage.total_tokens}),
        ),
        ("cost_usd", json!(report.usage.cost_usd)),
        ("persona", json!(report.persona)),
        ("model", json!(report.model)),
        ("branch", json!(report.branch)),
        ("worktree", json!(wt.path.display().to_string())),
        ("commit", json!(report.commit)),
        ("last_run_at", json!(now.as_str())),
    ] {
        record.insert(k.to_owned(), v);
    }
    if let Some(d) = &report.decision {
        record.insert("decision".into(), json!(d));
    }
    let agent = report.persona.clone();
    ops::change::edit_as(ws, &report.bead, &agent, &Change::AgentRun { record }).map(drop)
}

/// Appends a lesson to `.loom/lessons.md` in the repository and commits it.
pub fn write_lesson(ws: &Workspace, line: &str) -> Result<()> {
    let repo = ws.require_repo()?;
    let root = &ws.layout().root;
    let path = lessons::path(root);
    let lock = repo.git_dir.join("loom").join("lessons.lock");
    let _guard = crate::store::fsio::lock(&lock, std::time::Duration::from_secs(30))?;
    let existing = crate::store::fsio::read_small(&path, 1 << 20)?;
    let text = lessons::appended(existing.as_deref(), line);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let expected = crate::store::fsio::fingerprint(&path)?;
    let dir = path
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| root.clone());
    crate::store::fsio::replace(&path, &dir, text.as_bytes(), expected)?;
    ws.commit(
        repo,
        CommitRequest {
            paths: vec![PathBuf::from(lessons::LESSONS_FILE)],
            subject: "loom: lesson from an agent run".into(),
            body: Some(line.to_owned()),
            beads: Vec::new(),
            actor: ws.actor.clone(),
            event: crate::git::CommitKind::Lesson,
        },
    )?;
    Ok(())
}
