//! What the security tests share: a project, a hostile scripted model (tool calls chosen to
//! attack, replies that echo the key), and ways to run `loom agent` / `loom run` against it
//! with bounded waits and look everywhere a secret could end up.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::llm_server::{LlmServer, Reply, tool_call_events};
use crate::support::{Out, TestRepo};

pub const KEY: &str = "tokenhub_hostile_7c1e_secret_value";
pub const CODER: &str = "You are the coder";
pub const REVIEWER: &str = "You are the reviewer";

/// One reply calling every tool of `calls` (name, arguments), in order.
pub fn calls(calls: &[(&str, Value)]) -> Reply {
    let args: Vec<(String, String, String)> = calls
        .iter()
        .enumerate()
        .map(|(i, (n, a))| (format!("call_{i}"), (*n).to_owned(), a.to_string()))
        .collect();
    let refs: Vec<(&str, &str, &str)> = args
        .iter()
        .map(|(i, n, a)| (i.as_str(), n.as_str(), a.as_str()))
        .collect();
    Reply::stream(tool_call_events(&refs, 64))
}

/// One reply calling one tool.
pub fn call(name: &str, args: Value) -> Reply {
    calls(&[(name, args)])
}

/// A project whose `./test.sh` passes once `config.txt` says `answer=42`, with `config` as
/// its `.loom/config.yaml`, and one bead asking for that. Returns the bead's id.
pub fn project(config: &str) -> (TestRepo, String) {
    let repo = TestRepo::with_loom("yaml");
    repo.write("config.txt", "answer=41\n");
    repo.write_executable(
        "test.sh",
        "#!/bin/sh\nif grep -q '^answer=42$' config.txt; then echo PASS; exit 0; fi\necho \"FAIL: want answer=42, got $(cat config.txt)\" >&2\nexit 1\n",
    );
    repo.write(".loom/config.yaml", config);
    repo.git(&["add", "."]);
    repo.git(&["commit", "-qm", "project"]);
    let id = repo.create(
        "Make the answer 42",
        &["-d", "config.txt holds the answer."],
    );
    (repo, id)
}

/// A `loom` command against `server` with the key in its environment.
pub fn loom(repo: &TestRepo, server: &LlmServer, args: &[&str]) -> Command {
    let mut cmd = repo.command(args);
    cmd.env("TOKENHUB_URL", server.url())
        .env("TOKENHUB_API_KEY", KEY)
        .env("LOOM_MODEL", "test-model");
    cmd
}

/// Runs `cmd` to its end, killing it (and failing) past `limit`.
pub fn bounded(mut cmd: Command, limit: Duration) -> Out {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read both pipes on threads so a chatty child never blocks.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut s).unwrap();
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut s).unwrap();
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let (o, e) = (o.join().unwrap(), e.join().unwrap());
            panic!(
                "loom did not finish within {limit:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&o),
                String::from_utf8_lossy(&e)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Out {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&e.join().unwrap()).into_owned(),
    }
}

/// JSON lines of `text`.
pub fn events(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `loom agent <id> --json` to its end; its output and events.
pub fn agent(repo: &TestRepo, server: &LlmServer, id: &str) -> (Out, Vec<Value>) {
    let out = bounded(
        loom(repo, server, &["agent", id, "--json"]),
        Duration::from_secs(120),
    );
    let ev = events(&out.stdout);
    (out, ev)
}

/// `loom run --json …` to its end; its output and events.
pub fn run(repo: &TestRepo, server: &LlmServer, args: &[&str]) -> (Out, Vec<Value>) {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    let out = bounded(loom(repo, server, &all), Duration::from_secs(180));
    let ev = events(&out.stdout);
    (out, ev)
}

/// The report of `loom agent`'s `finished` event.
pub fn finished(events: &[Value]) -> &Value {
    events
        .iter()
        .find(|e| e["type"] == "finished")
        .map(|e| &e["report"])
        .expect("no finished event")
}

/// Events of one type.
pub fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == t).collect()
}

/// The bead as `loom show --json` has it.
pub fn bead(repo: &TestRepo, id: &str) -> Value {
    repo.json(&["show", id])
}

/// Loom's data directory of the test repository.
pub fn data_dir(repo: &TestRepo) -> PathBuf {
    repo.config_dir().join("data")
}

/// Every regular file under `dir` (not following symlinks).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

/// The files under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| {
            std::fs::read(p)
                .map(|b| memchr::memmem::find(&b, needle.as_bytes()).is_some())
                .unwrap_or(false)
        })
        .collect()
}

/// The text of every chat request the server received after the first `skip`.
pub fn requests_after(server: &LlmServer, skip: usize) -> String {
    server
        .chats()
        .iter()
        .skip(skip)
        .map(|s| s.body.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The worktree of bead `id` of the repository at `_dir` (whose Loom config dir is `config`)
/// once `loom` has made it (waits up to `limit`; usable from another thread).
pub fn wait_for_worktree_in(
    _dir: &Path,
    config: &Path,
    id: &str,
    limit: Duration,
) -> Option<PathBuf> {
    let started = Instant::now();
    let repos = config.join("data").join("repos");
    while started.elapsed() < limit {
        if let Ok(entries) = std::fs::read_dir(&repos) {
            for e in entries.flatten() {
                let wt = e.path().join("worktrees").join(id);
                if wt.join(".git").exists() {
                    return Some(wt);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

/// Live processes whose command line contains `needle` (none of the test's own).
pub fn processes_matching(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        if stat.contains(") Z ") {
            continue; // a zombie is gone but for its exit status
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) {
            found.push(format!("{name}: {cmd}"));
        }
    }
    found
}

/// Waits (bounded) until no process matches `needle`; the ones left if any.
pub fn gone(needle: &str, limit: Duration) -> Vec<String> {
    let started = Instant::now();
    loop {
        let left = processes_matching(needle);
        if left.is_empty() || started.elapsed() > limit {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A unique word for process names and markers.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The scripted coder of bead `id`: `steps` replies in order.
pub fn coder(server: &LlmServer, id: &str, steps: Vec<Reply>) {
    for s in steps {
        server.route(&[id, CODER], s);
    }
}

/// `done` with a summary.
pub fn done(summary: &str) -> Reply {
    call("done", json!({ "summary": summary }))
}

/// What this kernel supports (Landlock network rules, scoping, …), asked of this build's
/// binary whatever binary is under test.
pub fn probe(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_loom"))
        .arg("__sandbox-exec")
        .arg("--probe")
        .args(args)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// The files `main` changed since `before`, other than the bead store (`git diff --name-only`).
pub fn merged_since(repo: &TestRepo, before: &str) -> String {
    repo.git(&[
        "diff",
        "--name-only",
        before.trim(),
        "main",
        "--",
        ".",
        ":(exclude).beads",
    ])
}

/// The markers programs left in `dir` (every file but the `.sh` scripts that make them).
pub fn markers_left(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".sh"))
        .collect()
}
