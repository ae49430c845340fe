//! Orchestration benchmarks (see `scripts/bench.sh` and docs/PERFORMANCE.md):
//!
//! - `setup --out DIR`: a repository of `--files` source files and `--beads` beads whose
//!   scripted agent writes one file and calls `done` (test command `true`, no review), the
//!   recording that scripts it (`DIR/tape.jsonl`, zero model latency) and `DIR/baseline.sh`,
//!   the same git work done by a shell script with the git CLI.
//! - `latency --out DIR`: ready-to-dispatch latency. 100 beads each wait on a gate bead; the
//!   gates are closed on disk one at a time (as an editor or another tool would) while the
//!   orchestrator runs; the time from the write to the bead's agent starting is measured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use loom::bead::{Bead, Dependency, Timestamp, dep_type, issue_type, status};
use loom::event::{EventBus, EventKind, Stage};
use loom::llm::record::Replayer;
use loom::llm::{Client, ProviderConfig, ProviderFile, ReplayMatch, Tape};
use loom::orchestrator::dispatch::{self, Setup};
use loom::orchestrator::settings::{Budget, MergeMode, RunSettings};
use loom::store::{Format, TxOptions};
use loom::workspace::{OpenOptions, Workspace};
use serde_json::json;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    Setup {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 50)]
        beads: usize,
        #[arg(long, default_value_t = 1000)]
        files: usize,
    },
    Latency {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 100)]
        events: usize,
    },
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

/// A git repository with `files` source files, Loom's store and config.
fn repo(dir: &Path, files: usize, config: &str) -> Workspace {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.name", "bench"]);
    git(dir, &["config", "user.email", "bench@example.com"]);
    for i in 0..files {
        let sub = dir.join(format!("src/m{}", i / 100));
        std::fs::create_dir_all(&sub).unwrap();
        let body: String = (0..40)
            .map(|l| format!("fn f{i}_{l}() -> u32 {{ {l} }}\n"))
            .collect();
        std::fs::write(sub.join(format!("f{i}.rs")), body).unwrap();
    }
    std::fs::create_dir_all(dir.join(".loom")).unwrap();
    std::fs::write(dir.join(".loom/config.yaml"), config).unwrap();
    let lock = dir.join(".git/loom/beads.lock");
    loom::store::init(dir, Format::Yaml, "bench", &lock).unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "project"]);
    Workspace::open(&OpenOptions {
        dir: Some(dir.to_path_buf()),
        actor: Some("bench".into()),
        no_commit: false,
    })
    .unwrap()
}

fn bead(id: &str, kind: &str, now: &Timestamp) -> Bead {
    Bead {
        id: id.into(),
        title: format!("Bench bead {id}"),
        status: status::OPEN.into(),
        priority: 2,
        issue_type: kind.into(),
        created_at: Some(now.clone()),
        updated_at: Some(now.clone()),
        ..Bead::default()
    }
}

/// One recorded exchange calling `name(args)` in `session`.
fn exchange(seq: usize, session: &str, name: &str, args: serde_json::Value) -> String {
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        json!({"id": "b", "object": "chat.completion.chunk", "model": "bench",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    let chunks = vec![
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                   "function": {"name": name, "arguments": args.to_string()}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        json!({"id": "b", "model": "bench", "choices": [],
               "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}})
        .to_string(),
    ];
    json!({"loom_recording": 1, "seq": seq, "session": session,
           "request": {"model": "bench"}, "response": {"model": "bench", "chunks": chunks}})
    .to_string()
}

fn setup(out: &Path, beads: usize, files: usize) {
    let dir = out.join("repo");
    let ws = repo(
        &dir,
        files,
        "test_command: \"true\"\nreview: false\nmax_agents: 4\n",
    );
    let now = Timestamp::now();
    let ids: Vec<String> = (1..=beads).map(|i| format!("bench-{i:03}")).collect();
    ws.mutate(loom::git::CommitKind::Created, TxOptions::default(), |tx| {
        for id in &ids {
            tx.insert(bead(id, issue_type::TASK, &now))?;
        }
        Ok(())
    })
    .unwrap();
    let mut tape = String::new();
    let mut seq = 0;
    for id in &ids {
        let session = format!("{id}/coder");
        seq += 1;
        tape.push_str(&exchange(
            seq,
            &session,
            "write_file",
            json!({"path": format!("{id}.txt"), "content": "done\n"}),
        ));
        tape.push('\n');
        seq += 1;
        tape.push_str(&exchange(
            seq,
            &session,
            "done",
            json!({"summary": format!("Wrote {id}.txt.")}),
        ));
        tape.push('\n');
    }
    std::fs::write(out.join("tape.jsonl"), tape).unwrap();
    let script = r#"#!/usr/bin/env bash
# The git work Loom does per bead, done with the git CLI, one bead after another: claim commit
# (.beads/ only), worktree, the agent's commit, tests, rebase onto main, squash, fast-forward,
# close commit, worktree and branch removal.
set -euo pipefail
cd "$(dirname "$0")/repo"
wt="$(pwd)/../baseline-worktrees"
mkdir -p "$wt"
for f in .beads/beads/*.yaml; do
  id=$(basename "$f" .yaml)
  sed -i 's/^status: open$/status: in_progress/' "$f"
  git commit -q --no-verify -m "loom: $id claimed" -- "$f"
  git worktree add -q -b "loom/$id" "$wt/$id" main
  echo done > "$wt/$id/$id.txt"
  git -C "$wt/$id" add -A
  git -C "$wt/$id" commit -q --no-verify -m "$id: work"
  (cd "$wt/$id" && true)
  git -C "$wt/$id" rebase -q main
  tree=$(git merge-tree --write-tree main "loom/$id")
  squash=$(git commit-tree "$tree" -p main -m "$id squashed")
  git merge -q --ff-only "$squash"
  sed -i 's/^status: in_progress$/status: closed/' "$f"
  git commit -q --no-verify -m "loom: $id closed" -- "$f"
  git worktree remove "$wt/$id"
  git branch -q -D "loom/$id"
done
"#;
    std::fs::write(out.join("baseline.sh"), script).unwrap();
    eprintln!(
        "set up {} ({beads} beads, {files} files) with tape.jsonl and baseline.sh",
        out.display()
    );
}

fn latency(out: &Path, events: usize) {
    let dir = out.join("repo");
    let mut ws = repo(&dir, 10, "review: false\n");
    ws.config.repo_data_dir = Some(out.join("data"));
    let now = Timestamp::now();
    let pairs: Vec<(String, String)> = (1..=events)
        .map(|i| (format!("bench-g{i:03}"), format!("bench-w{i:03}")))
        .collect();
    ws.mutate(loom::git::CommitKind::Created, TxOptions::default(), |tx| {
        for (gate, work) in &pairs {
            // Gates are decisions: never dispatched themselves.
            tx.insert(bead(gate, issue_type::DECISION, &now))?;
            let mut w = bead(work, issue_type::TASK, &now);
            w.dependencies.push(Dependency {
                issue_id: work.clone(),
                depends_on_id: gate.clone(),
                dep_type: dep_type::BLOCKS.into(),
                ..Dependency::default()
            });
            tx.insert(w)?;
        }
        Ok(())
    })
    .unwrap();
    let tape: String = pairs
        .iter()
        .enumerate()
        .map(|(i, (_, w))| {
            exchange(
                i + 1,
                &format!("{w}/coder"),
                "done",
                json!({"summary": "nothing to change"}),
            ) + "\n"
        })
        .collect();
    let replay = Replayer::parse(Path::new("latency tape"), &tape, ReplayMatch::Off).unwrap();
    let client = Client::new(
        ProviderConfig::resolve(&ProviderFile::default(), |_| None),
        Tape::Replay(replay),
    )
    .unwrap();
    let settings = RunSettings {
        test_command: None,
        test_timeout: Duration::from_secs(60),
        target: "main".into(),
        max_agents: 4,
        review: false,
        merge: MergeMode::Auto,
        budget: Budget::from_file(&Default::default()),
        beads: Vec::new(),
        max_beads: None,
        timeout: None,
        max_tokens: None,
        limits: Default::default(),
        provider_down_limit: Duration::from_secs(30),
        idle_exit: false,
        agent: Default::default(),
        notify_command: None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let bus = EventBus::new(1 << 16);
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut rx = bus.subscribe();
    let setup = Setup {
        ws,
        client,
        settings,
        bus: Arc::clone(&bus),
        helper: None,
        command: "latency bench".into(),
        personas: None,
        stop: Some(Arc::clone(&stop)),
        control: None,
        pool: false,
    };
    // Another process's view of the store: its writes are external to the orchestrator.
    let other = Workspace::open(&OpenOptions {
        dir: Some(dir.clone()),
        actor: Some("someone".into()),
        no_commit: true,
    })
    .unwrap();
    let samples = rt.block_on(async move {
        let run = tokio::spawn(dispatch::run(setup));
        // Wait until the orchestrator is up.
        loop {
            if let Ok(e) = rx.recv().await
                && matches!(e.kind, EventKind::RunStarted { .. })
            {
                break;
            }
        }
        let mut samples = Vec::new();
        for (gate, work) in &pairs {
            let g = gate.clone();
            let t0 = Instant::now();
            let other2 = other.clone();
            tokio::task::spawn_blocking(move || {
                other2
                    .write_only(TxOptions::default(), |tx| {
                        let b = tx.get_mut(&g)?;
                        loom::bead::set_status(b, status::CLOSED, &Timestamp::now(), Some("go"));
                        Ok(())
                    })
                    .unwrap()
            })
            .await
            .unwrap();
            let wrote = t0.elapsed();
            let mut seen = Duration::ZERO;
            let mut claimed = Duration::ZERO;
            let mut worktree = Duration::ZERO;
            let started = loop {
                let e = match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                    Ok(Ok(e)) => e,
                    Ok(Err(_)) => continue,
                    Err(_) => panic!("{work} did not start within 10 s"),
                };
                let about = |id: &str| e.bead.as_deref() == Some(id);
                match e.kind {
                    EventKind::AgentStarted { .. } if about(work) => break t0.elapsed(),
                    EventKind::BeadChanged { .. } if about(gate) => seen = t0.elapsed(),
                    EventKind::StageChanged { stage, .. } if about(work) => match stage {
                        Stage::Claimed => claimed = t0.elapsed(),
                        Stage::Worktree => worktree = t0.elapsed(),
                        _ => {}
                    },
                    _ => {}
                }
            };
            if std::env::var_os("LATENCY_DETAIL").is_some() {
                eprintln!(
                    "{work}: seen {:.1} ms, claimed {:.1} ms, worktree {:.1} ms, agent {:.1} ms",
                    seen.as_secs_f64() * 1000.0,
                    claimed.as_secs_f64() * 1000.0,
                    worktree.as_secs_f64() * 1000.0,
                    started.as_secs_f64() * 1000.0
                );
            }
            samples.push((started, wrote));
            loop {
                match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                    Ok(Ok(e))
                        if matches!(e.kind, EventKind::BeadFinished { .. })
                            && e.bead.as_deref() == Some(work.as_str()) =>
                    {
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => panic!("{work} did not finish"),
                }
            }
        }
        stop.notify_one();
        let summary = run.await.unwrap().unwrap();
        assert!(
            summary
                .beads
                .iter()
                .all(|b| b.outcome == Some(loom::event::Outcome::Merged))
        );
        samples
    });
    let mut ms: Vec<f64> = samples
        .iter()
        .map(|(s, _)| s.as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    let write_ms: f64 = samples
        .iter()
        .map(|(_, w)| w.as_secs_f64() * 1000.0)
        .sum::<f64>()
        / samples.len() as f64;
    let pct = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "ready-to-dispatch latency over {} events: median {:.1} ms, p90 {:.1} ms, max {:.1} ms, min {:.1} ms (the write itself: {:.1} ms on average)",
        ms.len(),
        pct(0.5),
        pct(0.9),
        ms[ms.len() - 1],
        ms[0],
        write_ms
    );
}

fn main() {
    match Args::parse().mode {
        Mode::Setup { out, beads, files } => setup(&out, beads, files),
        Mode::Latency { out, events } => latency(&out, events),
    }
}
