//! Agent overheads without the model: one loop iteration (assemble a streamed tool call, parse
//! it, execute a cheap tool, append the result, serialize the next request), a command under
//! the sandbox's supervisor (`run_command true`), a file tool round trip (write, read back),
//! and creating a worktree in a 5,000-file repository beside `git worktree add` by hand.
//! Run: `cargo bench --bench agent`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use loom::agent::exec::ToolContext;
use loom::agent::sandbox::Sandbox;
use loom::agent::tools;
use loom::git::Repo;
use loom::git::worktree::{WorktreeFile, Worktrees};
use loom::llm::assemble::Assembler;
use loom::llm::{ChatRequest, Message};
use loom::workspace::{OpenOptions, Workspace};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "b")
        .env("GIT_AUTHOR_EMAIL", "b@e")
        .env("GIT_COMMITTER_NAME", "b")
        .env("GIT_COMMITTER_EMAIL", "b@e")
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "git {args:?}");
}

/// A git repository with `files` small source files and a bead store.
fn repo(files: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    for i in 0..files {
        let sub = dir.path().join(format!("src/m{}", i / 100));
        std::fs::create_dir_all(&sub).unwrap();
        let body: String = (0..40)
            .map(|l| format!("fn f{i}_{l}() -> u32 {{ {l} }}\n"))
            .collect();
        std::fs::write(sub.join(format!("f{i}.rs")), body).unwrap();
    }
    loom::store::init(
        dir.path(),
        loom::store::Format::Yaml,
        "b",
        &dir.path().join(".git/loom/beads.lock"),
    )
    .unwrap();
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-qm", "files"]);
    dir
}

fn iteration(c: &mut Criterion) {
    let dir = repo(50);
    let tmp = tempfile::tempdir().unwrap();
    let ws = Workspace::open(&OpenOptions {
        dir: Some(dir.path().to_path_buf()),
        ..OpenOptions::default()
    })
    .unwrap();
    // Commands run as in production: under `loom __sandbox-exec` (the supervisor).
    let sandbox = Sandbox::new(dir.path(), tmp.path(), Vec::new())
        .unwrap()
        .supervised(env!("CARGO_BIN_EXE_loom").into(), Vec::new());
    let mut ctx = ToolContext::new(sandbox, std::sync::Arc::new(ws), "b-1", "coder").unwrap();
    let allowed: Vec<String> = tools::STANDARD.iter().map(|s| (*s).to_owned()).collect();
    // A realistic history: system prompt, bead, and 10 earlier tool rounds of ~2 kB each.
    let mut history = vec![
        Message::system("x".repeat(6000)),
        Message::user("y".repeat(1500)),
    ];
    for i in 0..10 {
        history.push(Message::assistant(format!("step {i}")));
        history.push(Message::tool_result(format!("c{i}"), "z".repeat(2000)));
    }
    let stream: Vec<String> = {
        let args = r#"{"path":"src/m0/f7.rs","start_line":1,"end_line":40}"#;
        let mut v = vec![r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"read_file","arguments":""}}]}}]}"#.to_owned()];
        for chunk in args.as_bytes().chunks(4) {
            let frag = serde_json::json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": String::from_utf8_lossy(chunk)}}]}}]});
            v.push(frag.to_string());
        }
        v
    };
    let tool_defs = tools::llm_tools(&allowed);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    c.bench_function("loop_iteration_read_file", |b| {
        b.iter(|| {
            let mut asm = Assembler::new();
            let mut ev = Vec::new();
            for s in &stream {
                asm.push(s, &mut ev).unwrap();
            }
            let done = asm.finish(&mut ev);
            let call = &done.tool_calls[0];
            let action = tools::parse_action(&call.name, &call.arguments, &allowed).unwrap();
            let outcome = rt.block_on(ctx.execute(&action));
            let loom::agent::exec::Outcome::Result(r) = outcome else {
                panic!()
            };
            let mut messages = history.clone();
            messages.push(Message::assistant_calls(None, &done.tool_calls));
            messages.push(Message::tool_result(
                &call.id,
                format!("{}\n{}", ctx.progress(11, 25), r.text),
            ));
            let req = ChatRequest {
                messages,
                tools: tool_defs.clone(),
                ..ChatRequest::default()
            };
            req.to_wire("m", true).to_string().len()
        })
    });
    c.bench_function("run_command_true", |b| {
        b.iter(|| rt.block_on(ctx.sandbox.run("true", None)).exit_code)
    });
    // A file tool round trip: write a file, then read it back.
    let write = tools::parse_action(
        "write_file",
        &serde_json::json!({"path": "src/m0/new.rs", "content": "fn new() -> u32 { 1 }\n".repeat(40)}),
        &allowed,
    )
    .unwrap();
    let read = tools::parse_action(
        "read_file",
        &serde_json::json!({"path": "src/m0/new.rs"}),
        &allowed,
    )
    .unwrap();
    c.bench_function("file_tool_round_trip", |b| {
        b.iter(|| {
            rt.block_on(ctx.execute(&write));
            rt.block_on(ctx.execute(&read))
        })
    });
}

fn worktrees(c: &mut Criterion) {
    let dir = repo(5000);
    let base = tempfile::tempdir().unwrap();
    let r = Repo::require(dir.path()).unwrap();
    let trees = Worktrees::new(r, base.path().join("wt"), WorktreeFile::default());
    let mut g = c.benchmark_group("worktree_5000_files");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    let mut n = 0u64;
    g.bench_function("loom_add", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let id = format!("b-{n}");
                let start = Instant::now();
                let (wt, _) = trees.add(&id, "main").unwrap();
                total += start.elapsed();
                // A fresh worktree's branch is merged (it is main), so `remove` deletes it too.
                assert!(trees.remove(&wt, "main", true).unwrap().is_none());
            }
            total
        })
    });
    g.bench_function("git_worktree_add", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let path = base.path().join(format!("raw-{n}"));
                let p = path.to_str().unwrap().to_owned();
                let start = Instant::now();
                git(
                    dir.path(),
                    &[
                        "worktree",
                        "add",
                        "-q",
                        "-b",
                        &format!("raw/{n}"),
                        &p,
                        "main",
                    ],
                );
                total += start.elapsed();
                git(dir.path(), &["worktree", "remove", &p]);
                git(dir.path(), &["branch", "-q", "-D", &format!("raw/{n}")]);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, iteration, worktrees);
criterion_main!(benches);
