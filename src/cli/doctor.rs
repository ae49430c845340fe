//! `loom doctor`: checks git, the repository's `.beads/`, the configuration and the LLM
//! endpoint (reachable, key accepted, model offered, streaming works), and says how to fix
//! each problem. Exit code 1 when a check fails.

use std::io::Write;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::error::{Error, Result};
use crate::git::Repo;
use crate::llm::{ChatRequest, Client, Message, ProviderConfig, Tape};
use crate::store::Severity;
use crate::workspace::Workspace;

use super::output::{self, stdout_err};
use super::{Ctx, llm};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    status: Status,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

fn check(
    name: &'static str,
    status: Status,
    detail: impl Into<String>,
    fix: Option<String>,
) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
        fix,
    }
}

pub fn doctor(ctx: &Ctx, args: &super::DoctorArgs) -> Result<i32> {
    let mut checks = Vec::new();
    let start = Workspace::start_dir(&ctx.open_options())?;
    let repo = Repo::discover(&start)?;
    match &repo {
        Some(r) => {
            let branch = r
                .current_branch()
                .ok()
                .flatten()
                .unwrap_or_else(|| "detached HEAD".into());
            checks.push(check(
                "git",
                Status::Ok,
                format!("{} ({branch})", r.workdir.display()),
                None,
            ));
        }
        None => checks.push(check(
            "git",
            Status::Fail,
            "not inside a git repository: bead changes cannot be recorded",
            Some("run `git init` (or work in a clone)".into()),
        )),
    }
    let ws = match ctx.workspace() {
        Ok(ws) => Some(ws),
        Err(e @ Error::NoBeadsDir { .. }) => {
            checks.push(check("beads", Status::Fail, e.to_string(), e.hint()));
            None
        }
        Err(e) => return Err(e),
    };
    let mut problems = Vec::new();
    if let Some(ws) = &ws {
        let snap = ws.store.load_index()?;
        let layout = ws.layout();
        let errors = snap
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count();
        let warnings = snap.problems.len() - errors;
        let detail = format!(
            "{} ({} store, {} beads)",
            layout.relative(&layout.beads_dir).display(),
            layout.format.name(),
            snap.beads.len()
        );
        checks.push(match (errors, warnings) {
            (0, 0) => check("beads", Status::Ok, detail, None),
            (0, w) => check(
                "beads",
                Status::Warn,
                format!("{detail}; {w} records break write rules (listed below)"),
                Some("fix them in an editor or with `loom update`; Loom refuses to write them as they are".into()),
            ),
            (e, _) => check(
                "beads",
                Status::Fail,
                format!("{detail}; {e} records cannot be read (listed below)"),
                Some("fix or remove those records; Loom keeps them untouched until then".into()),
            ),
        });
        let sources: Vec<String> = ws
            .config
            .sources
            .iter()
            .map(|s| s.display().to_string())
            .collect();
        checks.push(check(
            "config",
            Status::Ok,
            format!(
                "auto-commit {}, actor {}, files: {}",
                if ws.config.auto_commit { "on" } else { "off" },
                ws.actor,
                if sources.is_empty() {
                    "none (built-in defaults)".into()
                } else {
                    sources.join(", ")
                }
            ),
            None,
        ));
        problems = snap.problems;
        checks.push(trust_check(ws));
        checks.extend(sandbox_checks(ws));
        checks.extend(endpoint_checks(ctx, llm::provider(ws)?)?);
    }

    if let Some(url) = &args.nats {
        let mut opts = crate::scale::nats::NatsOptions::new(url);
        opts.creds = args.nats_creds.clone();
        opts.ca = args.nats_ca.clone();
        let id = repo.as_ref().and_then(|r| r.id().ok().flatten());
        checks.extend(nats_checks(&opts, id.as_deref()));
    }

    let failed = checks.iter().any(|c| c.status == Status::Fail);
    let mut out = ctx.out();
    if ctx.global.json {
        output::write_json(
            &mut out,
            &json!({"ok": !failed, "checks": checks, "problems": problems}),
        )?;
        return Ok(i32::from(failed));
    }
    let p = &ctx.paint;
    for c in &checks {
        let mark = match c.status {
            Status::Ok => p.paint("✓", crossterm::style::Color::Green),
            Status::Warn => p.paint("!", crossterm::style::Color::Yellow),
            Status::Fail => p.paint("✗", crossterm::style::Color::Red),
        };
        writeln!(out, "{mark} {:<9} {}", c.name, c.detail).map_err(stdout_err)?;
        if let Some(fix) = &c.fix {
            writeln!(out, "  {:<9} {} {fix}", "", p.dim("fix:")).map_err(stdout_err)?;
        }
    }
    if !problems.is_empty() {
        writeln!(out, "\n{}", p.bold("Records")).map_err(stdout_err)?;
        for pr in &problems {
            writeln!(out, "  {pr}").map_err(stdout_err)?;
        }
    }
    Ok(i32::from(failed))
}

/// The NATS server a scale-out run would use: reachable, version 2.9 or later, JetStream
/// on, and this repository's streams (created by the first `loom run --nats` if missing).
fn nats_checks(opts: &crate::scale::nats::NatsOptions, repo: Option<&str>) -> Vec<Check> {
    use crate::scale::nats;
    let probe = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
        .and_then(|rt| rt.block_on(nats::probe(opts, repo)));
    let p = match probe {
        Ok(p) => p,
        Err(e) => {
            return vec![check(
                "nats",
                Status::Fail,
                e,
                Some(
                    "start one (`nats-server -js`), or check the URL, credentials and TLS options"
                        .into(),
                ),
            )];
        }
    };
    let mut checks = vec![match (nats::version_ok(&p.version), p.jetstream) {
        (false, _) => check(
            "nats",
            Status::Fail,
            format!("{}: server {} is older than 2.9", opts.url, p.version),
            Some("upgrade nats-server to 2.9 or later".into()),
        ),
        (true, false) => check(
            "nats",
            Status::Fail,
            format!("{}: server {}, JetStream is off", opts.url, p.version),
            Some("start the server with JetStream on: `nats-server -js` (or `jetstream {}` in its config)".into()),
        ),
        (true, true) => check(
            "nats",
            Status::Ok,
            format!("{}: server {}, JetStream on", opts.url, p.version),
            None,
        ),
    }];
    if !p.streams.is_empty() {
        let missing: Vec<&str> = p
            .streams
            .iter()
            .filter(|(_, present)| !present)
            .map(|(n, _)| n.as_str())
            .collect();
        checks.push(if missing.is_empty() {
            check(
                "streams",
                Status::Ok,
                format!("{} present", p.streams.len()),
                None,
            )
        } else {
            check(
                "streams",
                Status::Warn,
                format!("not yet created: {}", missing.join(", ")),
                Some("the first `loom run --nats` or `loom worker --nats` creates them".into()),
            )
        });
    }
    checks
}

/// Whether the repository's config may set security settings, and how to allow it.
fn trust_check(ws: &Workspace) -> Check {
    let root = ws.layout().root.display().to_string();
    let how = format!(
        "to trust it, add it to `trusted_repos:` in {}: `trusted_repos: [{root}]`",
        crate::config::user_config_dir()
            .map(|d| d.join("config.yaml").display().to_string())
            .unwrap_or_else(|| "your config.yaml".into())
    );
    if ws.config.repo_trusted {
        return check(
            "trust",
            Status::Ok,
            "this repository is trusted (trusted_repos): its .loom/config.yaml may set provider and sandbox settings",
            None,
        );
    }
    if ws.config.ignored.is_empty() {
        return check(
            "trust",
            Status::Ok,
            "provider and sandbox settings come only from your own config, the environment and flags (this repository is not in trusted_repos)",
            None,
        );
    }
    check(
        "trust",
        Status::Warn,
        format!(
            ".loom/config.yaml sets {} — ignored: this repository is not trusted",
            ws.config.ignored.join(", ")
        ),
        Some(how),
    )
}

/// Which protections agent commands get here: the supervisor's probe (Landlock, network,
/// scoping, capabilities) and process containment.
fn sandbox_checks(ws: &Workspace) -> Vec<Check> {
    use crate::agent::sandbox::{Enforced, Network, contain::Cgroup};
    let cfg = &crate::agent::sandbox::SandboxFile::from_config(&ws.config).unwrap_or_default();
    let always = "paths resolved beneath the worktree, allow-listed environment, timeouts, every process ended with its command";
    let deny = cfg.network == Some(Network::Deny);
    let mut args = vec!["__sandbox-exec".to_owned(), "--probe".to_owned()];
    if deny {
        args.push("--deny-network".into());
    }
    if cfg.landlock == Some(false) {
        args.push("--no-landlock".into());
    }
    let probe: Option<Enforced> = std::env::current_exe().ok().and_then(|exe| {
        let o = std::process::Command::new(exe).args(&args).output().ok()?;
        serde_json::from_slice(&o.stdout).ok()
    });
    let e = probe.unwrap_or_default();
    let mut checks = Vec::new();
    checks.push(match (cfg.landlock == Some(false), e.landlock.as_str()) {
        (true, _) => check(
            "sandbox",
            Status::Warn,
            format!("{always}; Landlock off (sandbox.landlock: false)"),
            Some("remove `landlock: false` from the sandbox settings to limit command writes to the worktree".into()),
        ),
        (_, "fully_enforced") => check(
            "sandbox",
            Status::Ok,
            format!(
                "{always}; Landlock (ABI {}) limits command writes to the worktree{}",
                e.landlock_abi,
                if e.scoped {
                    " and keeps signals inside the sandbox"
                } else {
                    ""
                }
            ),
            None,
        ),
        (_, other) => check(
            "sandbox",
            Status::Warn,
            format!("{always}; Landlock {} on this kernel", other.replace('_', " ")),
            Some("use a Linux kernel with Landlock (5.13+, enabled in the LSM list) for write confinement".into()),
        ),
    });
    let root = rustix::process::getuid().is_root();
    checks.push(if e.capabilities_dropped && e.no_new_privs {
        check(
            "privilege",
            Status::Ok,
            format!(
                "commands run without capabilities or new privileges{}; Loom's own memory and environment are not readable by them",
                if root { " (even though Loom runs as root)" } else { "" }
            ),
            None,
        )
    } else {
        check(
            "privilege",
            Status::Warn,
            "commands could not be stripped of capabilities here",
            Some("run Loom as an ordinary user".into()),
        )
    });
    let cgroup = Cgroup::create(16).is_some();
    checks.push(match (cgroup, root) {
        (true, _) => check(
            "processes",
            Status::Ok,
            format!(
                "commands run in a cgroup limited to {} processes, and nothing a command starts outlives it",
                cfg.max_processes.unwrap_or(crate::agent::sandbox::DEFAULT_MAX_PROCESSES)
            ),
            None,
        ),
        (false, false) => check(
            "processes",
            Status::Ok,
            "orphaned processes come back to Loom's supervisor and end with their command; forks are limited with RLIMIT_NPROC (no cgroup could be made here)",
            None,
        ),
        (false, true) => check(
            "processes",
            Status::Warn,
            "orphaned processes end with their command, but no cgroup could be made and the kernel does not limit forks for root",
            Some("give Loom a writable pids cgroup, or run it as an ordinary user".into()),
        ),
    });
    checks.push(match (deny, e.network_denied) {
        (false, _) => check(
            "network",
            Status::Ok,
            "commands may connect to the network (sandbox.network: allow, the default)",
            None,
        ),
        (true, true) => check(
            "network",
            Status::Ok,
            "TCP connects from commands are denied (sandbox.network: deny, enforced by Landlock)",
            None,
        ),
        (true, false) => check(
            "network",
            Status::Warn,
            "sandbox.network: deny is NOT enforced: this kernel's Landlock has no network rules (ABI 4+, Linux 6.7+)",
            Some("use a newer kernel for network denial, or expect commands to reach the network".into()),
        ),
    });
    checks
}

fn endpoint_checks(ctx: &Ctx, mut provider: ProviderConfig) -> Result<Vec<Check>> {
    let mut checks = Vec::new();
    if ctx.model.replay.is_some() {
        checks.push(check(
            "endpoint",
            Status::Ok,
            "replaying a recording: the network is not used",
            None,
        ));
        return Ok(checks);
    }
    let Some(url) = provider.url.clone() else {
        checks.push(check(
            "endpoint",
            Status::Warn,
            "no LLM endpoint configured (bead commands work without one)",
            Some(
                "set TOKENHUB_URL and TOKENHUB_API_KEY, or provider.url in your own config.yaml (~/.config/loom; a repository's .loom/config.yaml only if you trust it)"
                    .into(),
            ),
        ));
        return Ok(checks);
    };
    checks.push(match &provider.api_key {
        Some(_) => check(
            "key",
            Status::Ok,
            format!("read from {}", provider.api_key_env),
            None,
        ),
        None => check(
            "key",
            Status::Warn,
            format!(
                "{} is not set (fine only if the endpoint needs no key)",
                provider.api_key_env
            ),
            Some(format!("export {}=…", provider.api_key_env)),
        ),
    });
    // Where the URL is set, for fixes that say what to change.
    let origin = if std::env::var_os("TOKENHUB_URL").is_some_and(|v| !v.is_empty()) {
        "TOKENHUB_URL".to_owned()
    } else {
        "provider.url in your config.yaml".to_owned()
    };
    let example = "e.g. http://localhost:8090 or https://tokenhub.example.com";
    match reqwest::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
        _ => {
            checks.push(check(
                "endpoint",
                Status::Fail,
                format!("{url:?} is not an http(s) URL"),
                Some(format!(
                    "set {origin} to the endpoint's base URL with scheme and host ({example})"
                )),
            ));
            return Ok(checks);
        }
    }
    // One attempt each, and a short wait: this is a diagnosis, not a job.
    provider.retry.max_attempts = 1;
    provider.idle_timeout = provider.idle_timeout.min(Duration::from_secs(20));
    let client = Client::new(provider, Tape::Live)?;
    let models = llm::block_on(client.models())?;
    let models = match models {
        Ok(m) => {
            checks.push(check(
                "reachable",
                Status::Ok,
                format!(
                    "{url} lists {}",
                    crate::text::count(m.len() as u64, "model")
                ),
                None,
            ));
            m
        }
        Err(e) => {
            let fix = match e.kind() {
                "transport" | "stalled" => Some(format!(
                    "nothing answers at {url}: start the endpoint, or set {origin} to where it runs ({example})"
                )),
                _ => e.hint(),
            };
            checks.push(check("reachable", Status::Fail, format!("{url}: {e}"), fix));
            return Ok(checks);
        }
    };
    let model = match llm::block_on(client.resolve_model(None))? {
        Ok(m) => m,
        Err(e) => {
            checks.push(check("model", Status::Fail, e.to_string(), e.hint()));
            return Ok(checks);
        }
    };
    match models.iter().find(|m| m.id == model) {
        Some(m) => {
            let ctx_len = m
                .context_length
                .map(|c| format!(", context {c} tokens"))
                .unwrap_or_default();
            checks.push(check(
                "model",
                Status::Ok,
                format!("{model}{ctx_len}"),
                None,
            ));
        }
        None => {
            let offered: Vec<&str> = models.iter().map(|m| m.id.as_str()).take(8).collect();
            checks.push(check(
                "model",
                Status::Fail,
                format!(
                    "{model} is not offered (the endpoint lists: {})",
                    offered.join(", ")
                ),
                Some("set LOOM_MODEL (or provider.model) to one of the listed models".into()),
            ));
        }
    }
    let request = ChatRequest {
        model: Some(model),
        messages: vec![
            Message::system("You are a health check. Reply with the single word: ok"),
            Message::user("ping"),
        ],
        max_tokens: Some(16),
        ..ChatRequest::default()
    };
    let started = Instant::now();
    let mut first_token = None;
    let result = llm::block_on(client.chat(&request, &mut |e| {
        if matches!(e, crate::llm::StreamEvent::TextDelta { .. }) && first_token.is_none() {
            first_token = Some(started.elapsed());
        }
    }))?;
    checks.push(match result {
        Ok(done) => check(
            "chat",
            Status::Ok,
            format!(
                "key accepted, streaming works ({} ms to first token, {} tokens)",
                first_token.unwrap_or(started.elapsed()).as_millis(),
                done.usage.total_tokens
            ),
            None,
        ),
        Err(e) => check("chat", Status::Fail, e.to_string(), e.hint()),
    });
    Ok(checks)
}
