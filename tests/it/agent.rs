//! Agents end to end: `loom agent` as a process against the scripted model server, in real temp
//! repositories. The model's replies are scripted tool calls; the assertions look at what the
//! model was sent next, at the worktree branch, and at the bead.

use serde_json::{Value, json};

use crate::llm_server::{Fault, LlmServer, Reply, tool_call_events};
use crate::support::{Out, TestRepo};

const KEY: &str = "tokenhub_agent_93d1_secret";

/// A streamed reply calling one tool.
fn call(name: &str, args: Value) -> Reply {
    Reply::stream(tool_call_events(&[("call_1", name, &args.to_string())], 7))
}

fn text(t: &str) -> Reply {
    Reply::text(&[t])
}

/// A repository with a config file, a test script that checks it, and one bead.
fn project() -> (TestRepo, String) {
    let repo = TestRepo::with_loom("yaml");
    repo.write("config.txt", "answer=41\n");
    repo.write(
        "test.sh",
        "#!/bin/sh\nif grep -q '^answer=42$' config.txt; then echo PASS; exit 0; fi\necho \"FAIL: expected answer=42, got $(cat config.txt)\" >&2\nexit 1\n",
    );
    repo.write("README.md", "# Calc\nRun ./test.sh to check.\n");
    std::process::Command::new("chmod")
        .args(["+x", "test.sh"])
        .current_dir(repo.path())
        .status()
        .unwrap();
    repo.git(&["add", "."]);
    repo.git(&["commit", "-qm", "project"]);
    let id = repo.create(
        "Make the answer 42",
        &[
            "-d",
            "config.txt holds the answer.",
            "--acceptance",
            "./test.sh passes",
        ],
    );
    (repo, id)
}

fn run_agent(repo: &TestRepo, server: &LlmServer, args: &[&str]) -> (Out, Vec<Value>) {
    let mut all = vec!["agent"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = repo
        .command(&all)
        .env("TOKENHUB_URL", server.url())
        .env("TOKENHUB_API_KEY", KEY)
        .output()
        .unwrap();
    let out = Out::from(out);
    let events = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (out, events)
}

fn finished(events: &[Value]) -> &Value {
    events
        .iter()
        .find(|e| e["type"] == "finished")
        .map(|e| &e["report"])
        .expect("no finished event")
}

/// The tool results the model received in request `n` (0-based), as text.
fn tool_results(server: &LlmServer, n: usize) -> String {
    let body = server.chats()[n].json();
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m["role"] == "tool"
                || m["content"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("Result of "))
        })
        .map(|m| m["content"].as_str().unwrap_or("").to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn reads_edits_tests_sees_the_failure_fixes_and_finishes() {
    let (repo, id) = project();
    let server = LlmServer::start();
    server.push(call("read_file", json!({"path": "config.txt"})));
    server.push(call(
        "edit_file",
        json!({"path": "config.txt", "old": "answer=41", "new": "answer=43"}),
    ));
    server.push(call("run_command", json!({"command": "./test.sh"})));
    server.push(call(
        "edit_file",
        json!({"path": "config.txt", "old": "answer=43", "new": "answer=42"}),
    ));
    server.push(call("run_command", json!({"command": "./test.sh"})));
    server.push(call(
        "done",
        json!({"summary": "Set the answer to 42; ./test.sh passes."}),
    ));
    let (out, events) = run_agent(&repo, &server, &[&id]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = finished(&events);
    assert_eq!(report["terminal"], "done");
    assert_eq!(report["iterations"], 6);
    assert_eq!(report["persona"], "coder");

    // What the model was told: the persona, the bead, the repository.
    let first = server.chats()[0].json();
    let system = first["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("You are the coder")
            && system.contains("test.sh")
            && system.contains("Run ./test.sh"),
        "{system}"
    );
    let bead_msg = first["messages"][1]["content"].as_str().unwrap();
    assert!(bead_msg.contains("Make the answer 42") && bead_msg.contains("./test.sh passes"));
    let tools: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        tools.contains(&"run_command") && tools.contains(&"done") && !tools.contains(&"approve")
    );

    // The failure reached the model with its real exit code and both streams…
    let after_fail = tool_results(&server, 3);
    assert!(after_fail.contains("exit code 1"), "{after_fail}");
    assert!(
        after_fail.contains("FAIL: expected answer=42, got answer=43"),
        "{after_fail}"
    );
    assert!(
        after_fail.contains(
            "[iteration 3/25 · files read 1 · written 1 · last command `./test.sh` exit 1]"
        ),
        "{after_fail}"
    );
    // …and so did the success.
    let after_pass = tool_results(&server, 5);
    assert!(
        after_pass.contains("exit code 0") && after_pass.contains("PASS"),
        "{after_pass}"
    );

    // The branch has the work, committed as the agent with the trailers.
    let branch = format!("loom/{id}");
    assert_eq!(
        repo.git(&["show", &format!("{branch}:config.txt")]),
        "answer=42\n"
    );
    let msg = repo.git(&["log", "-1", "--format=%B", &branch]);
    for t in [
        format!("Loom-Bead: {id}"),
        "Loom-Agent: coder".into(),
        "Loom-Model: test-model".into(),
        "Co-authored-by: coder (test-model)".into(),
    ] {
        assert!(msg.contains(&t), "{t} missing from:\n{msg}");
    }
    assert!(msg.contains("./test.sh passes"), "{msg}");
    assert_eq!(
        repo.git(&["log", "-1", "--format=%an|%cn", &branch]).trim(),
        "coder|Test User"
    );
    // The user's checkout is untouched.
    assert_eq!(repo.read_string("config.txt"), "answer=41\n");

    // The bead records how it went.
    let bead = repo.json(&["show", &id]);
    let loom = &bead["metadata"]["loom"];
    assert_eq!(loom["terminal"], "done");
    assert_eq!(loom["iterations"], 6);
    assert_eq!(loom["branch"], branch.as_str());
    assert_eq!(loom["runs"], 1);
    assert!(loom["commit"].as_str().is_some());
}

fn terminal_of(repo: &TestRepo, server: &LlmServer, args: &[&str]) -> (i32, Value) {
    let (out, events) = run_agent(repo, server, args);
    (out.code, finished(&events).clone())
}

#[test]
fn escalate_creates_a_decision_bead_and_blocks() {
    let (repo, id) = project();
    let server = LlmServer::start();
    server.push(call(
        "escalate",
        json!({"question": "Should the answer be 42 or 43?", "options": ["42", "43"]}),
    ));
    let (code, report) = terminal_of(&repo, &server, &[&id]);
    assert_eq!(code, 3, "waiting on a person");
    assert_eq!(report["terminal"], "escalated");
    let decision = report["decision"].as_str().unwrap().to_owned();
    let d = repo.json(&["show", &decision]);
    assert_eq!(d["issue_type"], "decision");
    assert!(d["description"].as_str().unwrap().contains("1. 42"));
    let b = repo.json(&["show", &id]);
    assert_eq!(b["status"], "blocked");
    assert!(
        b["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["depends_on_id"] == decision.as_str())
    );
}

#[test]
fn a_reply_without_a_tool_call_ends_the_loop() {
    let (repo, id) = project();
    let server = LlmServer::start();
    server.push(text("I think this is fine as it is."));
    let (code, report) = terminal_of(&repo, &server, &[&id]);
    assert_eq!(
        (code, report["terminal"].as_str()),
        (1, Some("no_tool_call"))
    );
    // A lesson is left for the next agent.
    assert!(
        repo.read_string(".loom/lessons.md")
            .contains("stopped without calling `done`")
    );
}

#[test]
fn max_iterations_ends_the_loop() {
    let (repo, id) = project();
    repo.write(".loom/config.yaml", "agent:\n  max_iterations: 3\n");
    let server = LlmServer::start();
    for path in ["config.txt", "test.sh", "README.md"] {
        server.push(call("read_file", json!({"path": path})));
    }
    let (code, report) = terminal_of(&repo, &server, &[&id]);
    assert_eq!(
        (code, report["terminal"].as_str()),
        (1, Some("max_iterations"))
    );
    assert_eq!(report["iterations"], 3);
    assert_eq!(server.chats().len(), 3);
}

#[test]
fn two_unparseable_replies_end_the_loop_after_a_correction() {
    let (repo, id) = project();
    let server = LlmServer::start();
    server.push(text(
        "{\"tool\": \"read_file\", \"args\": {\"path\": \"config.txt\"",
    ));
    server.push(text("{\"tool\": \"read_file\" \"args\": {}}"));
    let (code, report) = terminal_of(&repo, &server, &[&id]);
    assert_eq!(
        (code, report["terminal"].as_str()),
        (1, Some("unparseable"))
    );
    let second = server.chats()[1].json();
    let last = second["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(last.contains("could not be read as a tool call"), "{last}");
    // Parse failures are never filed as beads.
    assert_eq!(repo.json(&["list", "--all"]).as_array().unwrap().len(), 1);
}

#[test]
fn the_same_call_five_times_ends_the_loop() {
    let (repo, id) = project();
    let server = LlmServer::start();
    for _ in 0..5 {
        server.push(call("read_file", json!({"path": "config.txt"})));
    }
    let (code, report) = terminal_of(&repo, &server, &[&id]);
    assert_eq!(
        (code, report["terminal"].as_str()),
        (1, Some("repeated_action"))
    );
    assert_eq!(report["iterations"], 5);
}

#[test]
fn the_token_budget_ends_the_loop() {
    let (repo, id) = project();
    repo.write(".loom/config.yaml", "agent:\n  max_tokens: 100\n");
    let server = LlmServer::start();
    let mut events = tool_call_events(&[("c", "read_file", r#"{"path":"config.txt"}"#)], 50);
    events.insert(
        events.len() - 1,
        json!({"choices": [], "usage": {"prompt_tokens": 90, "completion_tokens": 20}}).to_string(),
    );
    server.push(Reply::stream(events));
    let (code, report) = terminal_of(&repo, &server, &[&id]);
    assert_eq!(
        (code, report["terminal"].as_str()),
        (1, Some("token_budget"))
    );
    assert_eq!(report["usage"]["total_tokens"], 110);
}

#[test]
fn the_time_budget_ends_the_loop() {
    let (repo, id) = project();
    repo.write(".loom/config.yaml", "agent:\n  max_minutes: 0.01\n"); // 0.6 s
    let server = LlmServer::start();
    server.push(
        call("read_file", json!({"path": "config.txt"}))
            .with(Fault::SlowFirstByte(std::time::Duration::from_millis(800))),
    );
    let (code, report) = terminal_of(&repo, &server, &[&id]);
    assert_eq!(
        (code, report["terminal"].as_str()),
        (1, Some("time_budget"))
    );
}

#[test]
fn an_unusable_endpoint_ends_the_loop() {
    let (repo, id) = project();
    let server = LlmServer::start();
    server.push(Reply::status(401, "bad key"));
    let (code, report) = terminal_of(&repo, &server, &[&id]);
    assert_eq!((code, report["terminal"].as_str()), (4, Some("llm_error")));
    assert!(report["detail"].as_str().unwrap().contains("HTTP 401"));
}

#[test]
fn reviewer_verdicts_end_the_loop() {
    let (repo, id) = project();
    let server = LlmServer::start();
    server.push(call("git_diff", json!({})));
    server.push(call("approve", json!({"summary": "Nothing to change."})));
    let (code, report) = terminal_of(&repo, &server, &[&id, "--persona", "reviewer"]);
    assert_eq!((code, report["terminal"].as_str()), (0, Some("approved")));
    assert!(tool_results(&server, 1).contains("no changes yet"));
    server.push(call(
        "request_changes",
        json!({"comments": "config.txt:1 should be 42"}),
    ));
    let (code, report) = terminal_of(&repo, &server, &[&id, "--persona", "reviewer"]);
    assert_eq!(
        (code, report["terminal"].as_str()),
        (1, Some("changes_requested"))
    );
    // A reviewer cannot write.
    server.push(call("write_file", json!({"path": "x", "content": "y"})));
    server.push(call("approve", json!({"summary": "ok"})));
    terminal_of(&repo, &server, &[&id, "--persona", "reviewer"]);
    assert!(
        tool_results(&server, server.chats().len() - 1)
            .contains("`write_file` is not available to you")
    );
}

/// Runs one tool call and returns what the model was told about it.
fn one_call(repo: &TestRepo, id: &str, name: &str, args: Value) -> String {
    let server = LlmServer::start();
    server.push(call(name, args));
    server.push(call("done", json!({"summary": "stop"})));
    let (out, _) = run_agent(repo, &server, &[id]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    tool_results(&server, 1)
}

#[test]
fn escape_with_dot_dot_is_refused() {
    let (repo, id) = project();
    let r = one_call(&repo, &id, "read_file", json!({"path": "../../etc/passwd"}));
    assert!(
        r.contains("error: `../../etc/passwd`: `..` is not allowed"),
        "{r}"
    );
}

#[test]
fn escape_with_an_absolute_path_is_refused() {
    let (repo, id) = project();
    let r = one_call(&repo, &id, "read_file", json!({"path": "/etc/passwd"}));
    assert!(r.contains("absolute paths are not allowed"), "{r}");
    assert!(!r.contains("root:x:0"), "{r}");
}

#[test]
fn escape_through_a_symlink_is_refused() {
    let (repo, id) = project();
    std::os::unix::fs::symlink("/etc", repo.path().join("sys-etc")).unwrap();
    repo.git(&["add", "sys-etc"]);
    repo.git(&["commit", "-qm", "a link out"]);
    let r = one_call(&repo, &id, "read_file", json!({"path": "sys-etc/passwd"}));
    assert!(r.contains("symlink"), "{r}");
    assert!(!r.contains("root:x:0"), "{r}");
}

#[test]
fn writing_git_config_is_refused() {
    let (repo, id) = project();
    let r = one_call(
        &repo,
        &id,
        "write_file",
        json!({"path": ".git/config", "content": "[core]\n"}),
    );
    assert!(r.contains(".git/ and .beads/ are not writable"), "{r}");
}

#[test]
fn writing_beads_is_refused() {
    let (repo, id) = project();
    let r = one_call(
        &repo,
        &id,
        "write_file",
        json!({"path": ".beads/x.yaml", "content": "id: x\n"}),
    );
    assert!(r.contains(".git/ and .beads/ are not writable"), "{r}");
}

#[test]
fn a_command_past_its_timeout_is_killed_with_its_children() {
    let (repo, id) = project();
    let r = one_call(
        &repo,
        &id,
        "run_command",
        json!({"command": "sleep 30 & echo $! > kid.pid; sleep 30", "timeout_s": 1}),
    );
    assert!(r.contains("killed after 1s (timeout)"), "{r}");
    let wt = repo.config_dir().join("data");
    let pidfile = walk_find(&wt, "kid.pid").expect("kid.pid in the worktree");
    let pid = std::fs::read_to_string(pidfile).unwrap().trim().to_owned();
    let alive =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "));
    assert!(!alive, "the background child {pid} survived");
}

fn walk_find(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
        if p.is_dir()
            && !p.ends_with(".git")
            && let Some(found) = walk_find(&p, name)
        {
            return Some(found);
        }
    }
    None
}

#[test]
fn commands_cannot_see_the_api_key() {
    let (repo, id) = project();
    let r = one_call(
        &repo,
        &id,
        "run_command",
        json!({"command": "env; echo KEYCHECK=$TOKENHUB_API_KEY"}),
    );
    assert!(r.contains("KEYCHECK="), "the command ran: {r}");
    assert!(
        !r.contains(KEY) && !r.contains("TOKENHUB_API_KEY="),
        "the key leaked:\n{r}"
    );
}

#[test]
fn landlock_keeps_commands_from_writing_outside_when_the_kernel_has_it() {
    let probe = std::process::Command::new(crate::support::loom_bin())
        .args(["__sandbox-exec", "--probe"])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&probe.stdout).trim().to_owned();
    if status != "fully_enforced" {
        eprintln!("notice: Landlock is {status} on this kernel; skipping the write check");
        return;
    }
    let (repo, id) = project();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("escaped.txt");
    let cmd = format!(
        "echo inside > inside.txt && echo ok; echo x > {}",
        target.display()
    );
    let r = one_call(&repo, &id, "run_command", json!({"command": cmd}));
    assert!(r.contains("ok") && r.contains("Permission denied"), "{r}");
    assert!(
        !target.exists(),
        "Landlock let a command write outside the worktree"
    );
}

#[test]
fn the_external_runner_does_the_work() {
    let (repo, id) = project();
    repo.write_executable(
        "fake-agent.sh",
        "#!/bin/sh\necho \"starting on $1\"\nhead -c 200 \"$1\" | grep -q 'Make the answer 42' || { echo 'no prompt' >&2; exit 9; }\nsed -i 's/41/42/' config.txt\necho 'edited config.txt'\n./test.sh\n",
    );
    repo.write(
        ".loom/personas/ext.md",
        "---\nname: ext\ndescription: Another coding-agent CLI\nrunner: {command: ./fake-agent.sh, args: [\"{prompt_file}\"], prompt: file}\n---\nYou are a fake agent.\n",
    );
    repo.git(&["add", "."]);
    repo.git(&["commit", "-qm", "fake agent"]);
    // A repository's persona may name a program to run only in a repository the user trusts.
    let refused = repo
        .command(&["agent", &id, "--persona", "ext", "--json"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no persona named \"ext\""),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    repo.user_config(&format!("trusted_repos: [{}]\n", repo.path().display()));
    // No endpoint is needed for a runner persona.
    let out = repo
        .command(&["agent", &id, "--persona", "ext", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let printed: Vec<&str> = lines
        .iter()
        .filter(|e| e["type"] == "runner_output")
        .map(|e| e["line"].as_str().unwrap())
        .collect();
    assert!(
        printed.contains(&"edited config.txt") && printed.contains(&"PASS"),
        "{printed:?}"
    );
    assert_eq!(finished(&lines)["terminal"], "done");
    assert_eq!(
        repo.git(&["show", &format!("loom/{id}:config.txt")]),
        "answer=42\n"
    );

    repo.write(".loom/personas/bad.md", "---\nname: bad\ndescription: fails\nrunner: {command: sh, args: [\"-c\", \"echo oops >&2; exit 3\"]}\n---\n");
    let out = repo
        .command(&["agent", &id, "--persona", "bad", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let report = finished(&lines);
    assert_eq!(report["terminal"], "runner_failed");
    assert!(
        report["detail"].as_str().unwrap().contains("code 3")
            && report["detail"].as_str().unwrap().contains("oops")
    );
}

#[test]
fn personas_and_worktrees_commands() {
    let (repo, id) = project();
    repo.write(".loom/personas/coder.md", "---\nname: coder\ndescription: This repo's coder\nmax_iterations: 9\n---\nWork carefully.\n");
    let personas = repo.json(&["personas"]);
    let coder = personas
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "coder")
        .unwrap();
    assert_eq!(coder["max_iterations"], 9);
    assert_eq!(coder["source"]["kind"], "repo");
    assert_eq!(personas.as_array().unwrap().len(), 5);

    let server = LlmServer::start();
    server.push(call(
        "write_file",
        json!({"path": "config.txt", "content": "answer=42\n"}),
    ));
    server.push(call("done", json!({"summary": "fixed"})));
    run_agent(&repo, &server, &[&id]);
    let list = repo.json(&["worktrees"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["worktree"]["bead_id"], id.as_str());
    assert_eq!(list[0]["merged"], false);
    assert_eq!(list[0]["dirty"], false);
    let kept = repo.json(&["worktrees", "--sweep"]);
    assert_eq!(
        kept["removed"].as_array().unwrap().len(),
        0,
        "unmerged work stays"
    );
    // Main moved on meanwhile (the run's record is a bead commit), so this is a real merge.
    repo.git(&["merge", "-q", "--no-edit", &format!("loom/{id}")]);
    let swept = repo.json(&["worktrees", "--sweep"]);
    assert_eq!(swept["removed"].as_array().unwrap().len(), 1);
    assert_eq!(repo.json(&["worktrees"]).as_array().unwrap().len(), 0);
}

#[test]
fn context_overflow_elides_old_output_and_retries() {
    let (repo, id) = project();
    // A small window, and a large file read early on.
    repo.write(".loom/config.yaml", "agent:\n  context_length: 6000\n");
    let big: String = (0..600)
        .map(|i| format!("line {i}: some long content here\n"))
        .collect();
    repo.write("big.txt", &big);
    repo.git(&["add", "."]);
    repo.git(&["commit", "-qm", "big file"]);
    let server = LlmServer::start();
    server.set_models(json!({"object": "list", "data": [{"id": "test-model"}]}));
    server.push(call("read_file", json!({"path": "big.txt"})));
    server.push(call("read_file", json!({"path": "config.txt"})));
    server.push(Reply::status(
        400,
        "This model's maximum context length is 6000 tokens",
    ));
    server.push(call("done", json!({"summary": "fine"})));
    let (out, events) = run_agent(&repo, &server, &[&id]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(finished(&events)["terminal"], "done");
    assert!(
        events.iter().any(|e| e["type"] == "history_elided"),
        "{events:?}"
    );
    // The retry after the overflow no longer carries the big file.
    let chats = server.chats();
    let retried = chats.last().unwrap().json().to_string();
    assert!(
        !retried.contains("line 599"),
        "the big output is still there"
    );
    assert!(
        retried
            .contains("output elided to keep the conversation within the model's context window")
    );
    assert!(
        chats[2].json().to_string().contains("line 599"),
        "it was there before the overflow"
    );
}

#[test]
fn context_overflow_with_nothing_to_elide_ends_the_loop() {
    let (repo, id) = project();
    let server = LlmServer::start();
    server.push(Reply::status(413, "Request Entity Too Large"));
    let (code, report) = terminal_of(&repo, &server, &[&id]);
    assert_eq!((code, report["terminal"].as_str()), (4, Some("llm_error")));
    assert!(
        report["detail"]
            .as_str()
            .unwrap()
            .contains("context window"),
        "{report}"
    );
    assert_eq!(
        server.chats().len(),
        1,
        "the same request is not sent again"
    );
}
