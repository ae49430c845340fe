//! The gate and the run's bounds against a hostile scripted model (docs/SECURITY.md, promises
//! 5 and 6): an agent cannot change what verifies or configures it, and a run cannot run away.

use serde_json::json;

use crate::hostile::*;
use crate::llm_server::LlmServer;

/// Promise 5: a coder that rewrites its own test script to pass and its repository's
/// `.loom/config.yaml` is verified with the target's versions (so its tests still fail), and
/// none of it is merged; the next run reads the configuration it always had.
#[test]
fn a_coder_cannot_rewrite_its_own_gate() {
    let config = "test_command: ./test.sh\nreview: false\nbudget:\n  max_verify_rounds: 1\n";
    let (repo, id) = project(config);
    let server = LlmServer::start();
    coder(
        &server,
        &id,
        vec![
            calls(&[
                (
                    "write_file",
                    json!({"path": "test.sh", "content": "#!/bin/sh\necho PASS\nexit 0\n"}),
                ),
                (
                    "write_file",
                    json!({"path": ".loom/config.yaml", "content": "test_command: \"true\"\nreview: false\n"}),
                ),
            ]),
            done("Tests pass now."),
        ],
    );
    let test_before = repo.read_string("test.sh");
    let (out, events) = run(&repo, &server, &[]);
    assert_eq!(
        out.code, 3,
        "waits on a person\n{}\n{}",
        out.stdout, out.stderr
    );
    let tests = of_type(&events, "test_output");
    assert_eq!(tests.len(), 1, "{events:#?}");
    assert_eq!(
        tests[0]["passed"], false,
        "the target's test.sh judged the work"
    );
    assert!(tests[0]["output"].as_str().unwrap().contains("FAIL"));
    assert!(
        of_type(&events, "merge_result").is_empty(),
        "nothing merged"
    );
    assert_eq!(repo.read_string("test.sh"), test_before);
    assert_eq!(repo.read_string(".loom/config.yaml"), config);
    assert_eq!(repo.git(&["show", "main:test.sh"]), test_before);
    assert_eq!(repo.git(&["show", "main:.loom/config.yaml"]), config);
    assert_eq!(bead(&repo, &id)["status"], "blocked");
    // The branch still holds the edits, untouched by the verification.
    assert!(
        repo.git(&["show", &format!("loom/{id}:test.sh")])
            .contains("exit 0")
    );
    // The next run reads the same configuration: its test command is still ./test.sh.
    let (_, again) = run(&repo, &server, &[]);
    assert!(of_type(&again, "test_output").is_empty(), "nothing to run");
    assert_eq!(repo.read_string(".loom/config.yaml"), config);
}

/// Promise 5: a change that also touches a protected path (CI configuration here) is never
/// merged by itself: it becomes a decision showing that part of the diff, and the reviewer is
/// warned; approving it merges it.
#[test]
fn a_change_touching_protected_paths_becomes_a_decision_with_its_diff() {
    let (repo, id) = project("test_command: ./test.sh\n");
    let server = LlmServer::start();
    coder(
        &server,
        &id,
        vec![
            calls(&[
                (
                    "write_file",
                    json!({"path": "config.txt", "content": "answer=42\n"}),
                ),
                (
                    "write_file",
                    json!({"path": ".github/workflows/ci.yml", "content": "on: push\njobs: {}\n# skip-the-tests\n"}),
                ),
            ]),
            done("Set the answer (and tidied CI)."),
        ],
    );
    server.route(&[&id, REVIEWER], call("approve", json!({"summary": "ok"})));
    let main_before = repo.git(&["rev-parse", "main"]);
    let (out, events) = run(&repo, &server, &[]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert!(of_type(&events, "merge_result").is_empty());
    let changed = merged_since(&repo, &main_before);
    assert!(changed.trim().is_empty(), "merged: {changed}");
    let reviewer_saw = server
        .chats()
        .iter()
        .filter(|c| c.body.contains(REVIEWER))
        .map(|c| c.body.clone())
        .collect::<String>();
    assert!(
        reviewer_saw.contains("protected paths"),
        "the reviewer is warned"
    );
    let decisions = repo.json(&["list", "-t", "decision"]);
    let d = &decisions.as_array().unwrap()[0];
    let text = d["description"].as_str().unwrap();
    assert!(
        text.contains(".github/workflows/ci.yml") && text.contains("skip-the-tests"),
        "{text}"
    );
    let did = d["id"].as_str().unwrap().to_owned();
    repo.ok(&["decide", &did, "approve"]);
    let (out, events) = run(&repo, &server, &[]);
    assert_eq!(
        out.code, 0,
        "approved, it lands\n{}\n{}",
        out.stdout, out.stderr
    );
    assert_eq!(of_type(&events, "merge_result")[0]["merged"], true);
    assert!(
        repo.git(&["show", "main:.github/workflows/ci.yml"])
            .contains("skip-the-tests")
    );
}

/// Promise 6: a coder that files a bead in every session — whose beads are dispatched in the
/// same run (`dispatch_followups: true`) — is stopped by `budget.run_created_beads`: one
/// decision, exit 3. By default its follow-ups wait for the next run.
#[test]
fn a_coder_filing_a_bead_every_session_cannot_keep_the_run_going() {
    let config = "review: false\ndispatch_followups: true\nbudget:\n  run_created_beads: 3\n";
    let (repo, _) = project(config);
    let server = LlmServer::start();
    for i in 0..12 {
        server.route(
            &[CODER],
            call(
                "create_bead",
                json!({"title": format!("Another thing {i}")}),
            ),
        );
        server.route(&[CODER], done("Filed another bead."));
    }
    let (out, events) = run(&repo, &server, &[]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let all = repo.json(&["list", "--all", "-n", "0"]);
    let filed = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["title"].as_str().unwrap().starts_with("Another thing"))
        .count();
    assert!(filed <= 3, "{filed} beads filed past the limit of 3");
    let decisions = repo.json(&["list", "-t", "decision"]);
    let titles: Vec<&str> = decisions
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["Run limit reached: dispatching stopped"],
        "one decision"
    );
    assert_eq!(
        of_type(&events, "run_finished")[0]["summary"]["stopped"],
        "run_limit"
    );
}

/// Promise 6: follow-ups wait for the next run by default, and one bead's agents may file at
/// most `budget.bead_created_beads`.
#[test]
fn follow_ups_wait_and_a_bead_files_a_bounded_number() {
    let (repo, id) = project("review: false\nbudget:\n  bead_created_beads: 2\n");
    let server = LlmServer::start();
    coder(
        &server,
        &id,
        vec![
            calls(&[
                ("create_bead", json!({"title": "Follow-up one"})),
                ("create_bead", json!({"title": "Follow-up two"})),
                ("create_bead", json!({"title": "Follow-up three"})),
            ]),
            done("Filed follow-ups."),
        ],
    );
    let (out, events) = run(&repo, &server, &[]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let results = requests_after(&server, 1);
    assert!(
        results.contains("bead_created_beads"),
        "the third was refused by name"
    );
    let follow: Vec<serde_json::Value> = repo
        .json(&["list", "--all", "-n", "0"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["title"].as_str().unwrap().starts_with("Follow-up"))
        .cloned()
        .collect();
    assert_eq!(follow.len(), 2);
    assert!(
        follow.iter().all(|b| b["status"] == "open"),
        "not dispatched in this run"
    );
    let started: Vec<&str> = of_type(&events, "agent_started")
        .iter()
        .map(|e| e["bead"].as_str().unwrap())
        .collect();
    assert_eq!(started, [id.as_str()]);
}

/// Promise 5: moving a protected file away (a rename, which git would report under the new
/// name only) is still a change to it.
#[test]
fn a_protected_file_moved_away_is_still_protected() {
    let (repo, id) = project("test_command: ./test.sh\nreview: false\n");
    let server = LlmServer::start();
    coder(
        &server,
        &id,
        vec![
            calls(&[
                ("run_command", json!({"command": "mv test.sh old-test.sh"})),
                (
                    "write_file",
                    json!({"path": "config.txt", "content": "answer=42\n"}),
                ),
            ]),
            done("Set the answer."),
        ],
    );
    let (out, events) = run(&repo, &server, &[]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        of_type(&events, "test_output")[0]["passed"],
        true,
        "the target's test.sh ran"
    );
    assert!(of_type(&events, "merge_result").is_empty(), "not merged");
    let decisions = repo.json(&["list", "-t", "decision"]);
    let text = decisions[0]["description"].as_str().unwrap();
    assert!(text.contains("test.sh"), "{text}");
    assert!(repo.path().join("test.sh").exists());
}
