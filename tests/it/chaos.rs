//! Step 9 end to end: a coordinator (`loom run --nats`), workers (`loom worker --nats`) in
//! clones of a bare remote, a real `nats-server` and the scripted model server — then faults:
//! a worker killed mid-bead, the server stopped and killed. After each: every bead closed on
//! the target exactly once (one merge commit per bead), no old epoch merged, `git fsck`
//! clean, and the fault provably caused a re-dispatch.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::llm_server::{Fault, LlmServer, Reply};
use crate::orchestrate::call;
use crate::scale_nats::Server;
use crate::support::{TestRepo, isolate, loom_bin};

pub(crate) const KEY: &str = "tokenhub_chaos_3c1d_secret";
pub(crate) const CODER: &str = "You are the coder";
pub(crate) const REVIEWER: &str = "You are the reviewer";

/// The whole cast.
pub(crate) struct Fleet {
    pub(crate) nats: Server,
    pub(crate) llm: LlmServer,
    pub(crate) repo: TestRepo,
    pub(crate) _bare: tempfile::TempDir,
    pub(crate) bare: PathBuf,
    pub(crate) workers: Vec<Worker>,
}

pub(crate) struct Worker {
    pub(crate) child: Option<Child>,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) config: tempfile::TempDir,
    pub(crate) id: String,
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub(crate) fn model_env(cmd: &mut Command, llm: &LlmServer) {
    cmd.env("TOKENHUB_URL", llm.url())
        .env("TOKENHUB_API_KEY", KEY)
        .env("LOOM_MODEL", "test-model");
}

impl Fleet {
    /// A project (tests pass when every `*.txt` says ok) with `beads` beads, pushed to a bare
    /// remote; `None` when nats-server is not installed (outside CI).
    pub(crate) fn new(beads: usize, lease_secs: u64) -> Option<(Fleet, Vec<String>)> {
        let nats = Server::start()?;
        let repo = TestRepo::with_loom("yaml");
        repo.write_executable(
            "test.sh",
            "#!/bin/sh\nfor f in *.txt; do [ -e \"$f\" ] || continue; grep -q '^ok$' \"$f\" || { echo \"FAIL: $f\" >&2; exit 1; }; done\necho PASS\n",
        );
        repo.write(
            ".loom/config.yaml",
            format!(
                "test_command: ./test.sh\nscale:\n  lease_secs: {lease_secs}\n  ack_wait_secs: {}\n",
                lease_secs + 1
            ),
        );
        repo.git(&["add", "."]);
        repo.git(&["commit", "-qm", "project"]);
        let mut ids = Vec::new();
        for n in 0..beads {
            ids.push(repo.create(&format!("Task number {n}"), &[]));
        }
        let bare_dir = tempfile::tempdir().unwrap();
        let bare = bare_dir.path().join("remote.git");
        git(
            bare_dir.path(),
            &["init", "-q", "--bare", "-b", "main", "remote.git"],
        );
        repo.git(&["remote", "add", "origin", bare.to_str().unwrap()]);
        repo.git(&["push", "-q", "origin", "main"]);
        let llm = LlmServer::start();
        Some((
            Fleet {
                nats,
                llm,
                repo,
                _bare: bare_dir,
                bare,
                workers: Vec::new(),
            },
            ids,
        ))
    }

    /// Scripts bead `id`'s coder (write `f-<n>.txt`, then done) and reviewer, for every
    /// attempt; `slow`: each coder turn takes that long to start answering.
    pub(crate) fn script(&self, id: &str, n: usize, slow: Duration) {
        let file = format!("f-{n}.txt");
        // What only the bead's own sessions say (a dependent's prompt names it too).
        let me = format!("Bead {id}:");
        let wrote = format!("wrote {file}");
        let slowly = |r: Reply| {
            if slow.is_zero() {
                r
            } else {
                r.with(Fault::SlowFirstByte(slow))
            }
        };
        self.llm.always(
            &[&me, CODER, &wrote],
            slowly(call("done", json!({"summary": format!("Wrote {file}.")}))),
        );
        self.llm.always(
            &[&me, CODER],
            slowly(call("write_file", json!({"path": file, "content": "ok\n"}))),
        );
        self.llm.always(
            &[&me, REVIEWER],
            call("approve", json!({"summary": "Looks right."})),
        );
    }

    /// Starts a worker with `slots` slots in a fresh clone of the remote.
    pub(crate) fn worker(&mut self, slots: usize) -> usize {
        let url = self.nats.url();
        self.worker_via(slots, &url)
    }

    /// [`Fleet::worker`] reaching the server at `url` (a proxy).
    pub(crate) fn worker_via(&mut self, slots: usize, url: &str) -> usize {
        let n = self.workers.len() + 1;
        let dir = tempfile::Builder::new()
            .prefix("loomworker")
            .tempdir()
            .unwrap();
        let config = tempfile::tempdir().unwrap();
        git(
            dir.path(),
            &["clone", "-q", self.bare.to_str().unwrap(), "."],
        );
        let id = format!("w{n}");
        let mut w = Worker {
            child: None,
            dir,
            config,
            id,
        };
        self.start_worker(&mut w, slots, url);
        self.workers.push(w);
        n - 1
    }

    pub(crate) fn start_worker(&self, w: &mut Worker, slots: usize, url: &str) {
        let mut cmd = Command::new(loom_bin());
        isolate(&mut cmd, w.config.path());
        model_env(&mut cmd, &self.llm);
        let log = std::fs::File::create(w.config.path().join("worker.log")).unwrap();
        cmd.current_dir(w.dir.path())
            .args(["worker", "--nats", url, "--slots"])
            .arg(slots.to_string())
            .args(["--id", &w.id, "--cache"])
            .arg(w.config.path().join("cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        w.child = Some(cmd.spawn().unwrap());
    }

    pub(crate) fn worker_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.workers[i].config.path().join("worker.log"))
            .unwrap_or_default()
    }

    /// Starts the coordinator (`loom run --json --nats …`).
    pub(crate) fn coordinator(&self, extra: &[&str]) -> Child {
        self.coordinator_with(extra, None)
    }

    /// [`Fleet::coordinator`] with a failpoint set.
    pub(crate) fn coordinator_with(&self, extra: &[&str], failpoint: Option<&str>) -> Child {
        let mut args = vec!["run", "--json", "--nats"];
        let url = self.nats.url();
        args.push(&url);
        args.extend_from_slice(extra);
        let mut cmd = self.repo.command(&args);
        model_env(&mut cmd, &self.llm);
        if let Some(f) = failpoint {
            cmd.env(loom::scale::FAILPOINT_VAR, f);
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Waits (bounded) for the coordinator to end: its exit code, events and stderr.
    pub(crate) fn finish(&self, child: Child, limit: Duration) -> (i32, Vec<Value>, String) {
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = match rx.recv_timeout(limit) {
            Ok(out) => out.unwrap(),
            Err(_) => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                let out = rx.recv().unwrap().unwrap();
                let logs: Vec<String> = (0..self.workers.len())
                    .map(|i| self.worker_log(i))
                    .collect();
                panic!(
                    "the coordinator did not finish within {limit:?}:\n{}\nworkers:\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    logs.join("\n---\n")
                );
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let events = stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (
            out.status.code().unwrap_or(-1),
            events,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Waits (bounded) until an agent has asked the model server about a bead.
    pub(crate) fn wait_for_an_agent(&self) {
        let end = Instant::now() + Duration::from_secs(60);
        while !self.llm.chats().iter().any(|c| c.body.contains(CODER)) {
            assert!(Instant::now() < end, "no agent started");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) until worker `i`'s log says `what`.
    pub(crate) fn wait_for_log(&self, i: usize, what: &str, limit: Duration) {
        let end = Instant::now() + limit;
        while !self.worker_log(i).contains(what) {
            assert!(
                Instant::now() < end,
                "worker {} never said {what:?}:\n{}",
                i + 1,
                self.worker_log(i)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Messages left in the repository's work and result queues, once they drain (bounded:
    /// a copy may still be on its way to a worker).
    pub(crate) fn queues_drain(&self) {
        let url = self.nats.url();
        let repo_id = self.repo_id();
        let rt = runtime();
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let left: u64 = rt.block_on(async {
                let client = async_nats::connect(&url).await.unwrap();
                let js = async_nats::jetstream::new(client);
                let mut n = 0;
                for s in ["LOOM_WORK_", "LOOM_RESULT_"] {
                    let mut stream = js.get_stream(format!("{s}{repo_id}")).await.unwrap();
                    n += stream.info().await.unwrap().state.messages;
                }
                n
            });
            if left == 0 {
                return;
            }
            assert!(Instant::now() < end, "{left} messages never drained");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A worker that holds a running claim now (waits, bounded, for one).
    pub(crate) fn busy_worker(&self) -> usize {
        let url = self.nats.url();
        let bucket = format!("LOOM_CLAIMS_{}", self.repo_id());
        let rt = runtime();
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let holders: Vec<String> = rt.block_on(async {
                use futures_util::StreamExt;
                let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
                let Ok(kv) = js.get_key_value(&bucket).await else {
                    return Vec::new();
                };
                let mut out = Vec::new();
                let Ok(mut keys) = kv.keys().await else {
                    return out;
                };
                while let Some(Ok(k)) = keys.next().await {
                    if let Ok(Some(v)) = kv.get(&k).await
                        && let Ok(c) = serde_json::from_slice::<Value>(&v)
                        && c["state"] == "running"
                    {
                        out.push(c["worker"].as_str().unwrap_or("").to_owned());
                    }
                }
                out
            });
            let alive = |i: &usize| self.workers[*i].child.is_some();
            if let Some(i) = (0..self.workers.len())
                .filter(alive)
                .find(|i| holders.contains(&self.workers[*i].id))
            {
                return i;
            }
            assert!(Instant::now() < end, "no worker ever held a bead");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The repository id the streams are named by (the smallest root commit, 16 digits).
    pub(crate) fn repo_id(&self) -> String {
        let roots = self.repo.git(&["rev-list", "--max-parents=0", "main"]);
        roots.lines().min().unwrap()[..16].to_owned()
    }

    /// No process is left running from a worker's clone (agents, tests, sandboxes).
    pub(crate) fn assert_no_orphans(&self, i: usize) {
        let dir = self.workers[i].config.path().to_string_lossy().into_owned();
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            let left: Vec<String> = std::fs::read_dir("/proc")
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .filter(|c| c.contains(&dir))
                .collect();
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < end,
                "orphans of worker {}: {left:?}",
                i + 1
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The invariants every scenario ends with.
    pub(crate) fn assert_each_merged_once(&self, ids: &[String]) {
        let log = self.repo.git(&["log", "--format=%H%x00%B%x01", "main"]);
        for (n, id) in ids.iter().enumerate() {
            let merges: Vec<&str> = log
                .split('\u{1}')
                .filter(|c| {
                    c.contains(&format!("Loom-Bead: {id}\n")) && c.contains("Loom-Event: merged")
                })
                .collect();
            assert_eq!(merges.len(), 1, "{id} merged {} times", merges.len());
            let bead = self.repo.json(&["show", id]);
            let bead = if bead.is_array() {
                bead[0].clone()
            } else {
                bead
            };
            assert_eq!(bead["status"], "closed", "{id}: {bead}");
            // The close is in the merge commit itself.
            let hash = merges[0].trim().split('\0').next().unwrap();
            let files = self.repo.git(&["show", "--name-only", "--format=", hash]);
            assert!(
                files.contains(&format!("f-{n}.txt")),
                "{id}: {files}\n{}",
                git(&self.bare, &["log", "--stat", "--all"])
            );
            assert!(
                files.contains(".beads/"),
                "{id}'s close is not in its merge commit: {files}"
            );
            assert_eq!(
                self.repo.git(&["show", &format!("main:f-{n}.txt")]).trim(),
                "ok"
            );
        }
        git(self.repo.path(), &["fsck", "--no-progress"]);
        assert_eq!(
            self.repo
                .git(&["status", "--porcelain", "--untracked-files=no"]),
            "",
            "the checkout is clean"
        );
    }
}

/// Directories named `name` under `dir`.
pub(crate) fn find_dirs(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            if e.file_name() == name {
                out.push(path);
            } else {
                find_dirs(&path, name, out);
            }
        }
    }
}

pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A runtime for the test's own NATS look-ups.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub(crate) fn tally(events: &[Value]) -> Value {
    events
        .iter()
        .rev()
        .find(|e| e["type"] == "run_finished")
        .map(|e| e["summary"]["tally"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn two_workers_merge_every_bead_once_with_its_close_in_the_same_commit() {
    let Some((mut fleet, ids)) = Fleet::new(4, 5) else {
        return;
    };
    fleet.repo.ok(&["dep", "add", &ids[1], &ids[0]]);
    fleet.repo.git(&["push", "-q", "origin", "main"]);
    for (n, id) in ids.iter().enumerate() {
        fleet.script(id, n, Duration::ZERO);
    }
    fleet.worker(2);
    fleet.worker(1);
    let started = Instant::now();
    let coordinator = fleet.coordinator(&[]);
    let (code, events, stderr) = fleet.finish(coordinator, Duration::from_secs(120));
    let logs = format!("{}\n{}", fleet.worker_log(0), fleet.worker_log(1));
    assert_eq!(code, 0, "stderr:\n{stderr}\nworkers:\n{logs}");
    fleet.assert_each_merged_once(&ids);
    let t = tally(&events);
    assert_eq!(t["merged"], 4, "{t}");
    eprintln!("4 beads over 2 workers in {:?}", started.elapsed());

    // A front end on another machine (a worker's clone) attaching after the run: it
    // replays the run — lifecycle and the agents' logs from the workers — then follows live.
    let mut cmd = Command::new(loom_bin());
    isolate(&mut cmd, fleet.workers[1].config.path());
    let mut watch = cmd
        .current_dir(fleet.workers[1].dir.path())
        .args(["watch", "--json", "--nats", &fleet.nats.url()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str(&line)
                && tx.send(v).is_err()
            {
                break;
            }
        }
    });
    let mut seen: Vec<Value> = Vec::new();
    let mut until = |what: &str, done: &dyn Fn(&[Value]) -> bool| {
        let end = Instant::now() + Duration::from_secs(30);
        while !done(&seen) {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(v) => seen.push(v),
                Err(_) => panic!("the front end never showed {what}: {seen:?}"),
            }
        }
    };
    let merged = |s: &[Value], n: usize| {
        s.iter()
            .filter(|e| e["type"] == "bead_finished" && e["outcome"] == "merged")
            .count()
            >= n
    };
    until("the replayed run", &|s| {
        merged(s, 4)
            && s.iter().any(|e| e["type"] == "run_finished")
            && s.iter()
                .any(|e| e["type"] == "tool_call" && e["tool"] == "write_file")
            && s.iter()
                .any(|e| e["type"] == "stage_changed" && e["stage"] == "verifying")
    });
    let extra = fleet.repo.create("Task number 4", &[]);
    fleet.repo.git(&["push", "-q", "origin", "main"]);
    fleet.script(&extra, 4, Duration::ZERO);
    let again = fleet.coordinator(&[]);
    let (code, _, stderr) = fleet.finish(again, Duration::from_secs(120));
    assert_eq!(code, 0, "{stderr}");
    until("the live run", &|s| merged(s, 5));
    let _ = watch.kill();
    let _ = watch.wait();

    // Workers work in warm checkouts: each slot's pool holds one checkout, reused order after
    // order (five beads went through three slots, so some slot took two).
    let mut pools = Vec::new();
    for w in &fleet.workers {
        find_dirs(w.config.path(), ".pool", &mut pools);
    }
    assert!(!pools.is_empty(), "no worker used the pool");
    for p in &pools {
        let mut slots: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        slots.sort();
        assert_eq!(slots, ["slot-0"], "{}", p.display());
    }

    // The terminal UI attached the same way (`loom --nats URL`) takes in the runs' events:
    // their agents' token use shows in its header (this clone's own board is as git has it).
    let url = fleet.nats.url();
    if let Some(tui) = crate::tui_tmux::Tmux::start(
        fleet.workers[1].dir.path(),
        fleet.workers[1].config.path(),
        &["--nats", &url],
    ) {
        tui.wait(
            "the remote runs' usage",
            Duration::from_secs(30),
            |screen| screen.contains("k tok"),
        );
    }
}

/// Scripts every bead with coder turns that take `slow` to start answering.
pub(crate) fn script_all(fleet: &Fleet, ids: &[String], slow: Duration) {
    for (n, id) in ids.iter().enumerate() {
        fleet.script(id, n, slow);
    }
}

pub(crate) fn count(t: &Value, key: &str) -> u64 {
    t[key].as_u64().unwrap_or(0)
}
