//! `loom run` end to end: the real binary against the scripted model server, in real temp
//! repositories. Each test scripts the agents' tool calls per bead and persona (routes), runs
//! the orchestrator, and checks git, the beads, the events and the exit code.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::llm_server::{Fault, LlmServer, Reply, tool_call_events};
use crate::support::{Out, TestRepo};

const KEY: &str = "tokenhub_orchestrate_5e77_secret";
const CODER: &str = "You are the coder";
const REVIEWER: &str = "You are the reviewer";

/// A streamed reply calling one tool (with a usage chunk: 120 prompt + 30 completion tokens).
pub fn call(name: &str, args: Value) -> Reply {
    let mut events = tool_call_events(&[("call_1", name, &args.to_string())], 9);
    let usage = json!({"id": "c1", "model": "test-model", "choices": [],
                       "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}});
    events.insert(events.len() - 1, usage.to_string());
    Reply::stream(events)
}

/// Scripts bead `id`'s coder to write `file` with `content` and finish.
fn codes(server: &LlmServer, id: &str, file: &str, content: &str) {
    server.route(
        &[id, CODER],
        call("write_file", json!({"path": file, "content": content})),
    );
    server.route(
        &[id, CODER],
        call("done", json!({"summary": format!("Wrote {file}.")})),
    );
}

fn approves(server: &LlmServer, id: &str) {
    server.route(
        &[id, REVIEWER],
        call(
            "approve",
            json!({"summary": "Checked the diff; it does what the bead asks."}),
        ),
    );
}

/// A project whose tests pass when every `*.txt` file says `ok`.
fn project(config: &str) -> TestRepo {
    let repo = TestRepo::with_loom("yaml");
    repo.write(
        "README.md",
        "# Notes\nEvery .txt file must say ok. Run ./test.sh.\n",
    );
    repo.write_executable(
        "test.sh",
        "#!/bin/sh\nfor f in *.txt; do [ -e \"$f\" ] || continue; grep -q '^ok$' \"$f\" || { echo \"FAIL: $f does not say ok\" >&2; exit 1; }; done\necho PASS\n",
    );
    repo.write(".loom/config.yaml", config);
    repo.git(&["add", "."]);
    repo.git(&["commit", "-qm", "project"]);
    repo
}

/// A repository after a `loom run` whose tests failed (one round): bead `id`'s branch wrote
/// `nope` over `draft` in notes.txt, the run log holds its transcript and failing test output.
pub(crate) fn failed_run() -> (TestRepo, String) {
    let repo = project("test_command: ./test.sh\nbudget:\n  max_verify_rounds: 1\n");
    repo.write("notes.txt", "draft\n");
    repo.git(&["add", "notes.txt"]);
    repo.git(&["commit", "-qm", "notes"]);
    let id = repo.create("Make notes say ok", &[]);
    let server = LlmServer::start();
    codes(&server, &id, "notes.txt", "nope\n");
    let (out, _) = run(&repo, &server, &[]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    (repo, id)
}

fn run_cmd(repo: &TestRepo, server: &LlmServer, args: &[&str]) -> std::process::Command {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    let mut cmd = repo.command(&all);
    cmd.env("TOKENHUB_URL", server.url())
        .env("TOKENHUB_API_KEY", KEY)
        .env("LOOM_MODEL", "test-model");
    cmd
}

/// Runs `loom run --json …` to the end; returns the output and the events.
pub(crate) fn run(repo: &TestRepo, server: &LlmServer, args: &[&str]) -> (Out, Vec<Value>) {
    let out = Out::from(run_cmd(repo, server, args).output().unwrap());
    let events = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not NDJSON ({e}): {l}")))
        .collect();
    (out, events)
}

/// `loom run` as a child whose events are read while it runs.
struct Live {
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Live {
    fn start(repo: &TestRepo, server: &LlmServer, args: &[&str]) -> Live {
        let mut child = run_cmd(repo, server, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        Live {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for an event matching `pred`.
    fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => panic!("no {what} event within 60 s; saw {:#?}", self.seen),
            }
        }
    }

    fn finish(mut self) -> (i32, Vec<Value>) {
        let status = wait_bounded(&mut self.child, Duration::from_secs(120));
        self.seen.extend(self.lines.try_iter());
        (status, self.seen)
    }
}

fn wait_bounded(child: &mut Child, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("loom run did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == t).collect()
}

fn position(events: &[Value], pred: impl Fn(&Value) -> bool) -> usize {
    events
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("event not found in {events:#?}"))
}

fn summary(events: &[Value]) -> &Value {
    &of_type(events, "run_finished")
        .last()
        .expect("no run_finished event")["summary"]
}

fn bead(repo: &TestRepo, id: &str) -> Value {
    repo.json(&["show", id])
}

/// Commits on `branch` whose message has `needle`.
fn commits_with(repo: &TestRepo, branch: &str, needle: &str) -> Vec<String> {
    repo.git(&[
        "log",
        branch,
        "--format=%H",
        "--fixed-strings",
        "--grep",
        needle,
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

/// Loom leaves no worktree and no `loom/*` branch behind.
fn assert_clean(repo: &TestRepo) {
    let trees = repo.git(&["worktree", "list", "--porcelain"]);
    assert_eq!(
        trees.matches("worktree ").count(),
        1,
        "leaked worktrees:\n{trees}"
    );
    let branches = repo.git(&["branch", "--list", "loom/*"]);
    assert!(branches.trim().is_empty(), "leaked branches: {branches}");
}

#[test]
fn happy_path_three_beads_with_a_dependency_two_at_a_time() {
    let repo = project("test_command: ./test.sh\nmax_agents: 2\n");
    let a = repo.create("Add alpha", &["-p", "1"]);
    let b = repo.create("Add beta, after alpha", &["-p", "1"]);
    let c = repo.create("Add gamma", &["-p", "2"]);
    repo.ok(&["dep", "add", &b, &a]);
    let server = LlmServer::start();
    // A and C are slow to start answering, so both are in flight at once.
    server.route(
        &[&a, CODER],
        call(
            "write_file",
            json!({"path": "alpha.txt", "content": "ok\n"}),
        )
        .with(Fault::SlowFirstByte(Duration::from_millis(400))),
    );
    server.route(
        &[&a, CODER],
        call("done", json!({"summary": "Wrote alpha.txt."})),
    );
    server.route(
        &[&c, CODER],
        call(
            "write_file",
            json!({"path": "gamma.txt", "content": "ok\n"}),
        )
        .with(Fault::SlowFirstByte(Duration::from_millis(400))),
    );
    server.route(
        &[&c, CODER],
        call("done", json!({"summary": "Wrote gamma.txt."})),
    );
    codes(&server, &b, "beta.txt", "ok\n");
    for id in [&a, &b, &c] {
        approves(&server, id);
    }
    let junit = repo.path().join("junit.xml");
    let (out, events) = run(
        &repo,
        &server,
        &["--max-agents", "2", "--junit", junit.to_str().unwrap()],
    );
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert_eq!(server.unused(), 0, "every scripted reply was used");

    // Concurrency 2: A and C both started before either finished; B only after A merged.
    let first_finish = position(&events, |e| e["type"] == "bead_finished");
    for id in [&a, &c] {
        let started = position(&events, |e| {
            e["type"] == "agent_started" && e["bead"] == **id
        });
        assert!(started < first_finish, "{id} started after a bead finished");
    }
    let a_merged = position(&events, |e| {
        e["type"] == "merge_result" && e["bead"] == *a && e["merged"] == true
    });
    let b_claimed = position(&events, |e| e["type"] == "stage_changed" && e["bead"] == *b);
    assert!(a_merged < b_claimed, "B was dispatched before A was merged");
    let running_max = {
        let (mut now, mut max) = (0i32, 0i32);
        for e in &events {
            if e["type"] == "stage_changed" && e["stage"] == "claimed" {
                now += 1;
            }
            if e["type"] == "bead_finished" {
                now -= 1;
            }
            max = max.max(now);
        }
        max
    };
    assert_eq!(running_max, 2, "never more than --max-agents at once");

    // All closed, one squash commit per bead on main, with trailers.
    for (id, file) in [(&a, "alpha.txt"), (&b, "beta.txt"), (&c, "gamma.txt")] {
        let v = bead(&repo, id);
        assert_eq!(v["status"], "closed", "{v:#}");
        assert_eq!(v["metadata"]["loom"]["stage"], "done");
        let merged = commits_with(&repo, "main", &format!("Loom-Bead: {id}"))
            .into_iter()
            .filter(|c| {
                repo.git(&["show", "-s", "--format=%B", c])
                    .contains("Loom-Event: merged")
            })
            .collect::<Vec<_>>();
        assert_eq!(merged.len(), 1, "one squash commit for {id}");
        let msg = repo.git(&["show", "-s", "--format=%an%n%B", &merged[0]]);
        assert!(msg.starts_with("coder\n"), "authored by the agent: {msg}");
        for t in [
            "Loom-Agent: coder",
            "Loom-Model: test-model",
            "Co-authored-by: coder",
        ] {
            assert!(msg.contains(t), "{t} missing in {msg}");
        }
        let files = repo.git(&["show", "--name-only", "--format=", &merged[0]]);
        assert_eq!(
            files.trim(),
            file,
            "the squash holds only the bead's change"
        );
        assert_eq!(repo.read_string(file), "ok\n", "main's worktree has it");
        // The bead's own history: claimed and closed commits touching only .beads/.
        for event in ["Loom-Event: claimed", "Loom-Event: closed"] {
            let commits = commits_with(&repo, "main", event)
                .into_iter()
                .filter(|c| {
                    repo.git(&["show", "-s", "--format=%B", c])
                        .contains(&format!("Loom-Bead: {id}"))
                })
                .count();
            assert!(commits >= 1, "{event} for {id}");
        }
    }
    assert_clean(&repo);
    let s = summary(&events);
    assert_eq!(s["exit_code"], 0);
    assert_eq!(s["beads"].as_array().unwrap().len(), 3);
    assert!(
        s["beads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["outcome"] == "merged" && b["rounds"] == 1),
        "{s:#}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 3, "{xml}");
    assert!(
        xml.contains("failures=\"0\"") && !xml.contains("<failure"),
        "{xml}"
    );
    for id in [&a, &b, &c] {
        assert!(xml.contains(&format!("name=\"{id}: ")), "{xml}");
    }
    // The key went nowhere.
    assert!(!out.stdout.contains(KEY) && !out.stderr.contains(KEY));
    let log = repo.git(&["log", "--all", "-p"]);
    assert!(!log.contains(KEY));
}

#[test]
fn failing_tests_escalate_to_one_decision_and_decide_unblocks() {
    // The repository's own notify_command is not trusted; the user's runs, without the key.
    let repo = project(
        "test_command: ./test.sh\nbudget:\n  max_verify_rounds: 2\nnotify_command: touch PWNED\n",
    );
    let told = repo.config_dir().join("told.txt");
    repo.user_config(&format!(
        "notify_command: cat > '{}'; env >> '{}'\n",
        told.display(),
        told.display()
    ));
    let id = repo.create("Make notes say ok", &[]);
    let server = LlmServer::start();
    for attempt in ["nope\n", "still no\n"] {
        codes(&server, &id, "notes.txt", attempt);
    }
    let (out, events) = run(&repo, &server, &[]);
    assert_eq!(
        out.code, 3,
        "waiting on a decision\n{}\n{}",
        out.stdout, out.stderr
    );
    // The failure went back to the coder.
    let chats = server.chats();
    assert_eq!(chats.len(), 4, "two rounds of write + done, no review");
    assert!(
        chats[2].body.contains("FAIL: notes.txt does not say ok"),
        "the test output reached the model"
    );
    assert_eq!(of_type(&events, "test_output").len(), 2);

    let v = bead(&repo, &id);
    assert_eq!(v["status"], "blocked");
    assert_eq!(v["metadata"]["loom"]["stage"], "escalated");
    let said = std::fs::read_to_string(&told).expect("notify_command ran");
    let note: serde_json::Value = serde_json::from_str(said.lines().next().unwrap()).unwrap();
    assert_eq!(note["type"], "decision_needed");
    assert_eq!(note["bead"], id.as_str());
    assert!(!said.contains(KEY), "no secret in its input or environment");
    assert!(
        !repo.path().join("PWNED").exists(),
        "a repository cannot set notify_command"
    );
    let decisions = repo.json(&["list", "-t", "decision"]);
    let decisions = decisions.as_array().unwrap();
    assert_eq!(decisions.len(), 1, "exactly one decision bead");
    let d = decisions[0]["id"].as_str().unwrap().to_owned();
    assert!(
        decisions[0]["title"]
            .as_str()
            .unwrap()
            .contains("tests still fail")
    );
    let deps = v["dependencies"].as_array().unwrap();
    assert!(
        deps.iter()
            .any(|x| x["depends_on_id"] == d.as_str() && x["type"] == "blocks")
    );
    assert!(
        commits_with(&repo, "main", "Loom-Event: merged").is_empty(),
        "nothing merged"
    );
    assert_eq!(summary(&events)["pending_decisions"], json!([d]));
    assert_clean_worktrees(&repo);

    // A second run does not dispatch the decision, nor spawn another one: still exit 3.
    let (out2, _) = run(&repo, &server, &[]);
    assert_eq!(out2.code, 3, "{}", out2.stderr);
    assert_eq!(server.chats().len(), 4, "nothing was dispatched");
    assert_eq!(
        repo.json(&["list", "-t", "decision"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    repo.ok(&["decide", &d, "answer", "Write", "exactly", "ok"]);
    let v = bead(&repo, &id);
    assert_eq!(v["status"], "open", "{v:#}");
    assert_eq!(v["metadata"]["loom"]["dispatches"], 0);
    assert!(v["comments"].to_string().contains("Write exactly ok"));
    assert_eq!(bead(&repo, &d)["status"], "closed");
    let ready = crate::support::ids(&repo.json(&["ready"]));
    assert_eq!(ready, [id.clone()]);
}

/// A person denies a decision by its option number: the bead is dropped, and `loom worktrees
/// --sweep` deletes its unmerged branch (any other unmerged branch stays).
#[test]
fn a_denied_bead_s_branch_is_swept() {
    let repo = project("test_command: ./test.sh\nbudget:\n  max_verify_rounds: 1\n");
    let id = repo.create("Make notes say ok", &[]);
    let server = LlmServer::start();
    codes(&server, &id, "notes.txt", "nope\n");
    let (out, _) = run(&repo, &server, &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let branch = format!("loom/{id}");
    assert!(repo.git(&["branch", "--list", &branch]).contains(&branch));
    let decisions = repo.json(&["list", "-t", "decision"]);
    let d = decisions[0]["id"].as_str().unwrap().to_owned();
    // Option 2 of a failed bead's decision is "deny: drop the bead".
    let said = repo.ok(&["decide", &d, "2"]);
    assert!(said.contains("deny") && !said.contains("✓ ✓"), "{said}");
    let v = bead(&repo, &id);
    assert_eq!(v["status"], "closed", "{v:#}");
    assert_eq!(v["metadata"]["loom"]["stage"], "denied");
    repo.git(&["branch", "loom/t-other"]);
    let swept = repo.json(&["worktrees", "--sweep"]);
    assert_eq!(
        swept["branches_deleted"],
        json!([branch.clone()]),
        "{swept:#}"
    );
    assert!(repo.git(&["branch", "--list", &branch]).trim().is_empty());
    assert!(
        repo.git(&["branch", "--list", "loom/t-other"])
            .contains("loom/t-other")
    );
}

/// No worktree directories are left (branches with unmerged work may stay).
fn assert_clean_worktrees(repo: &TestRepo) {
    let trees = repo.git(&["worktree", "list", "--porcelain"]);
    assert_eq!(trees.matches("worktree ").count(), 1, "{trees}");
}

#[test]
fn review_requests_changes_once_then_approves() {
    let repo = project("test_command: ./test.sh\n");
    let id = repo.create("Add delta", &[]);
    let server = LlmServer::start();
    codes(&server, &id, "delta.txt", "ok\n");
    server.route(
        &[&id, REVIEWER],
        call(
            "request_changes",
            json!({"comments": "Also add delta2.txt saying ok."}),
        ),
    );
    codes(&server, &id, "delta2.txt", "ok\n");
    approves(&server, &id);
    let (out, events) = run(&repo, &server, &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let coder_rounds: Vec<u64> = of_type(&events, "agent_started")
        .iter()
        .filter(|e| e["persona"] == "coder")
        .map(|e| e["round"].as_u64().unwrap())
        .collect();
    assert_eq!(coder_rounds, [1, 2], "two implement rounds");
    let verdicts: Vec<bool> = of_type(&events, "review_verdict")
        .iter()
        .map(|e| e["approved"].as_bool().unwrap())
        .collect();
    assert_eq!(verdicts, [false, true]);
    // The coder's second round was told what the reviewer asked.
    let round2 = server
        .chats()
        .into_iter()
        .filter(|c| c.body.contains(CODER))
        .nth(2)
        .unwrap();
    assert!(round2.body.contains("Also add delta2.txt"));
    let merged = commits_with(&repo, "main", "Loom-Event: merged");
    assert_eq!(merged.len(), 1, "one merge");
    let files = repo.git(&["show", "--name-only", "--format=", &merged[0]]);
    assert_eq!(
        files.lines().collect::<Vec<_>>(),
        ["delta.txt", "delta2.txt"]
    );
    assert_eq!(summary(&events)["beads"][0]["rounds"], 2);
    assert_clean(&repo);
}

/// Runs a bead whose coder edits `shared.txt` while main changes the same line meanwhile;
/// `resolution` scripts the conflict round.
fn conflict(resolution: &[Reply]) -> (TestRepo, String, i32, Vec<Value>, LlmServer) {
    let repo = project("test_command: ./test.sh\nreview: false\n");
    repo.write("shared.txt", "ok\n");
    repo.git(&["add", "shared.txt"]);
    repo.git(&["commit", "-qm", "shared"]);
    let id = repo.create("Rewrite shared", &[]);
    let server = LlmServer::start();
    server.route(
        &[&id, CODER],
        call(
            "write_file",
            json!({"path": "shared.txt", "content": "ok\n# bead\n"}),
        )
        .with(Fault::SlowFirstByte(Duration::from_millis(600))),
    );
    server.route(
        &[&id, CODER],
        call("done", json!({"summary": "Annotated shared.txt."})),
    );
    for r in resolution {
        server.route(&[&id, "conflicted in"], r.clone());
    }
    let mut live = Live::start(&repo, &server, &[]);
    live.wait_for("agent_started", |e| e["type"] == "agent_started");
    // Meanwhile, someone changes the same line on main.
    repo.write("shared.txt", "ok\n# main\n");
    let mut tries = 0;
    while std::process::Command::new("git")
        .args(["commit", "-qm", "main edit", "--", "shared.txt"])
        .current_dir(repo.path())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        tries += 1;
        assert!(tries < 50, "cannot commit on main");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, events) = live.finish();
    (repo, id, code, events, server)
}

#[test]
fn a_conflict_goes_back_to_the_agent_once_and_merges() {
    let (repo, id, code, events, server) = conflict(&[
        call(
            "write_file",
            json!({"path": "shared.txt", "content": "ok\n# main\n# bead\n"}),
        ),
        call("done", json!({"summary": "Kept both notes."})),
    ]);
    assert_eq!(code, 0, "{events:#?}");
    assert_eq!(server.unused(), 0);
    assert!(
        of_type(&events, "merge_result")
            .iter()
            .any(|e| e["merged"] == false && e["detail"].as_str().unwrap().contains("shared.txt"))
    );
    assert_eq!(repo.read_string("shared.txt"), "ok\n# main\n# bead\n");
    assert_eq!(bead(&repo, &id)["status"], "closed");
    assert_eq!(commits_with(&repo, "main", "Loom-Event: merged").len(), 1);
    assert_clean(&repo);
}

#[test]
fn an_unresolved_conflict_escalates() {
    let (repo, id, code, events, _server) =
        conflict(&[call("done", json!({"summary": "Could not decide."}))]);
    assert_eq!(code, 3, "{events:#?}");
    assert_eq!(
        repo.read_string("shared.txt"),
        "ok\n# main\n",
        "main keeps its change"
    );
    let v = bead(&repo, &id);
    assert_eq!(v["status"], "blocked");
    assert!(
        v["metadata"]["loom"]["escalation"]
            .as_str()
            .unwrap()
            .contains("conflict")
    );
    assert_eq!(
        repo.json(&["list", "-t", "decision"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(commits_with(&repo, "main", "Loom-Event: merged").is_empty());
}

#[test]
fn uncommitted_user_edits_refuse_the_merge_and_keep_the_edits() {
    let repo = project("test_command: ./test.sh\nreview: false\n");
    repo.write("app.txt", "ok\n");
    repo.git(&["add", "app.txt"]);
    repo.git(&["commit", "-qm", "app"]);
    let id = repo.create("Extend app", &[]);
    let mine = "ok\n# my unsaved thoughts\r\n\u{1F600} trailing  \n";
    repo.write("app.txt", mine);
    let server = LlmServer::start();
    codes(&server, &id, "app.txt", "ok\n# the agent's line\n");
    let (out, events) = run(&repo, &server, &[]);
    assert_eq!(
        out.code, 3,
        "the bead waits for the user\n{}\n{}",
        out.stdout, out.stderr
    );
    assert_eq!(
        repo.read("app.txt"),
        mine.as_bytes(),
        "the user's edits, byte for byte"
    );
    let refused = of_type(&events, "merge_result");
    let note = refused[0]["detail"].as_str().unwrap();
    assert!(
        note.contains("uncommitted changes")
            && note.contains("app.txt")
            && note.contains("loom run"),
        "{note}"
    );
    let v = bead(&repo, &id);
    assert_eq!(v["status"], "open");
    assert_eq!(v["metadata"]["loom"]["stage"], "merge_waiting");
    assert!(commits_with(&repo, "main", "Loom-Event: merged").is_empty());
    assert_clean_worktrees(&repo);

    // Once the user commits their work elsewhere (here: sets it aside), the next run merges
    // without asking the model again.
    let chats = server.chats().len();
    repo.git(&["stash"]);
    let (out, _) = run(&repo, &server, &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(server.chats().len(), chats, "no new model calls");
    assert_eq!(repo.read_string("app.txt"), "ok\n# the agent's line\n");
    assert_eq!(bead(&repo, &id)["status"], "closed");
    assert_clean(&repo);
}

#[test]
fn killed_mid_agent_then_restarted_completes_once() {
    let repo = project("test_command: ./test.sh\n");
    let id = repo.create("Add epsilon", &[]);
    let server = LlmServer::start();
    // The first answer never comes in time: the run is killed while waiting for it.
    server.route(
        &[&id, CODER],
        call(
            "write_file",
            json!({"path": "never.txt", "content": "ok\n"}),
        )
        .with(Fault::SlowFirstByte(Duration::from_secs(600))),
    );
    let mut live = Live::start(&repo, &server, &[]);
    live.wait_for("agent_started", |e| e["type"] == "agent_started");
    // A second orchestrator is refused while the first holds the lock.
    let second = run_cmd(&repo, &server, &[]).output().unwrap();
    assert_eq!(second.status.code(), Some(2));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another orchestrator") && err.contains(&live.child.id().to_string()),
        "{err}"
    );
    live.child.kill().unwrap(); // SIGKILL
    live.child.wait().unwrap();
    let v = bead(&repo, &id);
    assert_eq!(v["status"], "in_progress");
    assert_eq!(v["metadata"]["loom"]["owner"]["pid"], live.child.id());

    codes(&server, &id, "epsilon.txt", "ok\n");
    approves(&server, &id);
    let (out, events) = run(&repo, &server, &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        of_type(&events, "stage_changed")
            .iter()
            .any(|e| e["bead"] == id.as_str() && e["stage"] == "recovered")
    );
    let v = bead(&repo, &id);
    assert_eq!(v["status"], "closed");
    assert_eq!(v["metadata"]["loom"]["dispatches"], 2);
    assert_eq!(
        commits_with(&repo, "main", "Loom-Event: merged").len(),
        1,
        "merged once"
    );
    assert!(!repo.path().join("never.txt").exists());
    assert_clean(&repo);
}

#[test]
fn endpoint_down_for_a_while_pauses_and_resumes() {
    let repo = project("test_command: ./test.sh\nreview: false\n");
    repo.user_config("provider:\n  max_attempts: 2\n  down_limit_secs: 60\n");
    let id = repo.create("Add zeta", &[]);
    let server = LlmServer::start();
    server.route(
        &[&id, CODER],
        call("write_file", json!({"path": "zeta.txt", "content": "ok\n"}))
            .with(Fault::SlowFirstByte(Duration::from_millis(300))),
    );
    server.route(
        &[&id, CODER],
        call("done", json!({"summary": "Wrote zeta.txt."})),
    );
    let mut live = Live::start(&repo, &server, &[]);
    live.wait_for("agent_started", |e| e["type"] == "agent_started");
    server.set_down(true); // the answer in flight still arrives; the next request is refused
    live.wait_for("paused", |e| {
        e["type"] == "agent_notice" && e["kind"] == "paused"
    });
    std::thread::sleep(Duration::from_millis(1500));
    server.set_down(false);
    let (code, events) = live.finish();
    assert_eq!(code, 0, "{events:#?}");
    assert!(
        of_type(&events, "agent_notice")
            .iter()
            .any(|e| e["kind"] == "resumed")
    );
    let health: Vec<&str> = of_type(&events, "provider_health")
        .iter()
        .map(|e| e["health"]["health"].as_str().unwrap())
        .collect();
    assert!(
        health.contains(&"down") && health.last() == Some(&"healthy"),
        "{health:?}"
    );
    assert_eq!(bead(&repo, &id)["status"], "closed");
    assert!(
        of_type(&events, "bead_finished")
            .iter()
            .all(|e| e["outcome"] == "merged")
    );
}

/// Health is judged by chat requests: an endpoint whose model list answers while every
/// completion fails is never reported healthy or "answering again", and the run gives up.
#[test]
fn a_model_list_that_answers_is_not_health_while_completions_fail() {
    let repo = project("review: false\n");
    repo.user_config("provider:\n  max_attempts: 2\n  down_limit_secs: 3\n");
    let id = repo.create("Add theta", &[]);
    // Nothing scripted: every chat request gets a 500; GET /models answers.
    let server = LlmServer::start();
    let (out, events) = run(&repo, &server, &["--timeout", "90s"]);
    assert_eq!(out.code, 4, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(summary(&events)["stopped"], "endpoint_down");
    let health: Vec<&Value> = of_type(&events, "provider_health")
        .iter()
        .map(|e| &e["health"])
        .collect();
    assert!(health.iter().any(|h| h["health"] == "down"), "{health:#?}");
    assert!(
        health.iter().all(|h| h["health"] != "healthy"),
        "reported healthy while completions failed: {health:#?}"
    );
    assert!(!out.stderr.contains("answering again"), "{}", out.stderr);
    assert!(server.chats().len() >= 2, "the trial asked again");
    assert_eq!(bead(&repo, &id)["status"], "open");
}

#[test]
fn endpoint_down_past_the_limit_exits_4_and_gives_the_bead_back() {
    let repo = project("review: false\n");
    repo.user_config("provider:\n  max_attempts: 2\n  down_limit_secs: 2\n");
    let id = repo.create("Add eta", &[]);
    let server = LlmServer::start();
    server.set_down(true);
    let started = Instant::now();
    let (out, events) = run(&repo, &server, &[]);
    assert_eq!(out.code, 4, "{}\n{}", out.stdout, out.stderr);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(summary(&events)["stopped"], "endpoint_down");
    let v = bead(&repo, &id);
    assert_eq!(v["status"], "open", "given back for the next run: {v:#}");
    assert_eq!(v["metadata"]["loom"]["stage"], "interrupted");
    assert!(v["metadata"]["loom"].get("owner").is_none());
    assert_eq!(
        repo.json(&["list", "-t", "decision"])
            .as_array()
            .unwrap()
            .len(),
        0,
        "no decision for an outage"
    );
    assert_clean_worktrees(&repo);
}

#[test]
fn timeout_gives_running_beads_back() {
    let repo = project("review: false\n");
    let id = repo.create("Add theta", &[]);
    let server = LlmServer::start();
    server.route(
        &[&id, CODER],
        call("done", json!({"summary": "never arrives"}))
            .with(Fault::SlowFirstByte(Duration::from_secs(600))),
    );
    let started = Instant::now();
    let (out, events) = run(&repo, &server, &["--timeout", "2s"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(started.elapsed() < Duration::from_secs(30));
    let s = summary(&events);
    assert_eq!(s["stopped"], "timeout");
    assert_eq!(s["beads"][0]["outcome"], "interrupted");
    let v = bead(&repo, &id);
    assert_eq!(v["status"], "open");
    assert_eq!(v["metadata"]["loom"]["stage"], "interrupted");
    assert_clean_worktrees(&repo);
}

/// Benchmark (run by scripts/bench.sh): peak memory of `loom run` with 16 agents streaming at
/// once from the test server.
#[test]
#[ignore = "benchmark: cargo test --release --test it bench_peak_rss -- --ignored --nocapture"]
fn bench_peak_rss_16_agents_streaming() {
    let repo = project("review: false\n");
    let server = LlmServer::start();
    let n: usize = std::env::var("RSS_AGENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let ids: Vec<String> = (0..n)
        .map(|i| repo.create(&format!("Stream {i}"), &[]))
        .collect();
    let content = "ok\n".repeat(1500); // ~4.5 KB of arguments, ~500 fragments per stream
    for id in &ids {
        server.route(
            &[id, CODER],
            call(
                "write_file",
                json!({"path": format!("{id}.txt"), "content": content}),
            )
            .with(Fault::EventDelay(Duration::from_millis(3))),
        );
        server.route(&[id, CODER], call("done", json!({"summary": "streamed"})));
    }
    let (out, events) = run(&repo, &server, &["--max-agents", &n.to_string()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    if std::env::var_os("RSS_STDERR").is_some() {
        eprintln!("{}", out.stderr);
    }
    let s = summary(&events);
    let started_before_first_finish = {
        let first = position(&events, |e| e["type"] == "bead_finished");
        events[..first]
            .iter()
            .filter(|e| e["type"] == "agent_started")
            .count()
    };
    let kb = s["peak_rss_kb"].as_u64().unwrap();
    println!(
        "peak RSS of loom run with 16 agents streaming: {:.1} MiB ({} agents were streaming at once; run took {} ms)",
        kb as f64 / 1024.0,
        started_before_first_finish,
        s["duration_ms"]
    );
    assert_eq!(started_before_first_finish, n, "all streamed at once");
    assert!(kb < 150 * 1024, "goal: under 150 MB");
}

#[test]
fn a_bead_over_its_dispatch_budget_goes_to_a_person_not_an_agent() {
    let repo = project("review: false\n");
    let id = repo.create("Tried too often", &[]);
    let file = format!(".beads/beads/{id}.yaml");
    let text = repo.read_string(&file);
    repo.write(
        &file,
        format!("{text}metadata:\n  loom:\n    dispatches: 3\n"),
    );
    repo.git(&["commit", "-qam", "three earlier attempts"]);
    let server = LlmServer::start();
    let (out, events) = run(&repo, &server, &[]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert!(server.chats().is_empty(), "no agent was started");
    assert!(of_type(&events, "agent_started").is_empty());
    let v = bead(&repo, &id);
    assert_eq!(v["status"], "blocked");
    let d = v["metadata"]["loom"]["decision"]
        .as_str()
        .unwrap()
        .to_owned();
    let decision = bead(&repo, &d);
    assert_eq!(decision["issue_type"], "decision");
    assert!(
        decision["title"]
            .as_str()
            .unwrap()
            .contains("dispatched 3 times")
    );
    assert_clean_worktrees(&repo);
    // Approving gives it a fresh budget.
    repo.ok(&["decide", &d, "approve"]);
    assert_eq!(bead(&repo, &id)["metadata"]["loom"]["dispatches"], 0);
    assert_eq!(bead(&repo, &id)["status"], "open");
}

/// The run's token budget counts model calls as they happen, running beads included: a bead
/// that still works but has used the budget stops the next dispatch.
#[test]
fn the_token_budget_counts_running_beads() {
    let server = LlmServer::start();
    let repo = project("review: false\nmax_agents: 2\n");
    let a = repo.create("Bead A", &["-p", "0"]);
    let b = repo.create("Bead B", &["-p", "1"]);
    let c = repo.create("Bead C", &["-p", "2"]);
    // A finishes first and uses nothing that counts; B has used 150 tokens by then (its first
    // call is at once, A's answer takes 2.5 s) and still works.
    server.route(
        &[&a, CODER],
        Reply::tool("done", json!({"summary": "Nothing to do."}))
            .with(Fault::SlowFirstByte(Duration::from_millis(2500))),
    );
    server.route(
        &[&b, CODER],
        call("write_file", json!({"path": "b.txt", "content": "ok\n"})),
    );
    server.route(
        &[&b, CODER],
        Reply::tool("done", json!({"summary": "Wrote b.txt."}))
            .with(Fault::SlowFirstByte(Duration::from_millis(4000))),
    );
    codes(&server, &c, "c.txt", "ok\n");
    let (out, events) = run(&repo, &server, &["--max-tokens", "100"]);
    let started: Vec<&str> = of_type(&events, "agent_started")
        .iter()
        .filter_map(|e| e["bead"].as_str())
        .collect();
    assert!(
        started.contains(&a.as_str()) && started.contains(&b.as_str()),
        "{started:?}"
    );
    assert!(
        !started.contains(&c.as_str()),
        "C must not start once B used the budget: {started:?}\n{}",
        out.stderr
    );
    assert_eq!(summary(&events)["stopped"], "max_tokens");
}

/// An epic closes by itself once the run has closed its last child bead.
#[test]
fn an_epic_closes_when_its_children_are_done() {
    let server = LlmServer::start();
    let repo = project("review: false\n");
    let epic = repo.create("Notes, all of them", &["-t", "epic"]);
    let one = repo.create("First note", &["--parent", &epic]);
    let two = repo.create("Second note", &["--parent", &epic]);
    codes(&server, &one, "one.txt", "ok\n");
    codes(&server, &two, "two.txt", "ok\n");
    let (out, events) = run(&repo, &server, &["--bead", &one, "--bead", &two]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let e = bead(&repo, &epic);
    assert_eq!(e["status"], "closed", "{e}");
    assert_eq!(e["close_reason"], "all its child beads are closed");
    assert!(
        events
            .iter()
            .any(|ev| ev["type"] == "stage_changed" && ev["bead"] == epic.as_str()),
        "the closing is announced"
    );
    let subjects = repo.git(&["log", "--format=%s"]);
    assert!(
        subjects.contains(&format!("loom: {epic} open → closed")),
        "{subjects}"
    );
}

/// The planner splits an epic into child beads (`<epic>.N`, parent-child, in its order: the
/// second waits for the first); the run builds them; the epic closes.
#[test]
fn a_planned_epic_closes_when_the_run_has_built_its_children() {
    const PLANNER: &str = "You are the planner";
    let server = LlmServer::start();
    let repo = project("review: false\nmax_agents: 2\n");
    let epic = repo.create("Notes, all of them", &["-t", "epic"]);
    let (first, second) = (format!("{epic}.1"), format!("{epic}.2"));
    server.route(
        &[&epic, PLANNER],
        call(
            "create_bead",
            json!({"title": "Write one.txt", "description": "one.txt says ok"}),
        ),
    );
    server.route(
        &[&epic, PLANNER],
        call(
            "create_bead",
            json!({"title": "Write two.txt", "description": "two.txt says ok", "depends_on": [first]}),
        ),
    );
    // The planner ends after its children are built (they run alongside it): the epic
    // still closes.
    server.route(
        &[&epic, PLANNER],
        call("done", json!({"summary": "Split into two beads."}))
            .with(Fault::SlowFirstByte(Duration::from_secs(4))),
    );
    // The children's coders (routed on their titles).
    for (title, file) in [("Write one.txt", "one.txt"), ("Write two.txt", "two.txt")] {
        server.route(
            &[title, CODER],
            call("write_file", json!({"path": file, "content": "ok\n"})),
        );
        server.route(
            &[title, CODER],
            call("done", json!({"summary": format!("Wrote {file}.")})),
        );
    }
    let (out, events) = run(&repo, &server, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let one = bead(&repo, &first);
    let two = bead(&repo, &second);
    assert_eq!(one["title"], "Write one.txt");
    assert_eq!(two["title"], "Write two.txt");
    assert_eq!(
        (one["status"].as_str(), two["status"].as_str()),
        (Some("closed"), Some("closed"))
    );
    assert_eq!(one["dependencies"][0]["type"], "parent-child", "{one}");
    assert_eq!(one["dependencies"][0]["depends_on_id"], epic.as_str());
    let deps: Vec<(String, String)> = two["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["depends_on_id"].as_str().unwrap().to_owned(),
                d["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(deps.contains(&(first.clone(), "blocks".into())), "{deps:?}");
    // The order is kept: the second is claimed after the first closed (git's order).
    let subjects: Vec<String> = repo
        .git(&["log", "--format=%s", "--reverse"])
        .lines()
        .map(str::to_owned)
        .collect();
    let at = |needle: &str| {
        subjects
            .iter()
            .position(|s| s.starts_with(needle))
            .unwrap_or_else(|| panic!("no commit {needle:?} in {subjects:#?}"))
    };
    assert!(
        at(&format!("loom: {first} in_progress → closed"))
            < at(&format!("loom: {second} open → in_progress")),
        "{subjects:#?}"
    );
    let merged_two = position(&events, |e| {
        e["type"] == "bead_finished" && e["bead"] == second.as_str()
    });
    let planned = position(&events, |e| {
        e["type"] == "bead_finished" && e["bead"] == epic.as_str()
    });
    assert!(
        merged_two < planned,
        "the children were done first: {events:#?}"
    );
    let e = bead(&repo, &epic);
    assert_eq!(e["status"], "closed", "{e}");
    assert_eq!(e["close_reason"], "all its child beads are closed");
}

/// A planner that files no child bead has not planned: the epic waits on a person instead of
/// ending "completed".
#[test]
fn an_epic_planned_without_children_asks_a_person() {
    const PLANNER: &str = "You are the planner";
    let server = LlmServer::start();
    let repo = project("review: false\n");
    let epic = repo.create("Everything at once", &["-t", "epic"]);
    server.route(
        &[&epic, PLANNER],
        call("done", json!({"summary": "Looks fine as it is."})),
    );
    let (out, events) = run(&repo, &server, &[]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let finished = of_type(&events, "bead_finished");
    assert!(
        finished.iter().all(|e| e["outcome"] != "completed"),
        "{finished:#?}"
    );
    assert_eq!(of_type(&events, "decision_needed").len(), 1);
    let e = bead(&repo, &epic);
    assert_eq!(e["status"], "blocked", "{e}");
}
