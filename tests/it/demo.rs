//! `loom demo`: it runs offline and quickly, and ends with the three beads merged. The shipped
//! recording (`demo/tape.jsonl`) is made by the ignored test below, which runs the demo against
//! the scripted model server with `--record`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::llm_server::LlmServer;
use crate::orchestrate::call;
use crate::support::{isolate, loom_bin};

const CODER: &str = "You are the coder";
const REVIEWER: &str = "You are the reviewer";

/// What the agents do in the demo, per bead and persona.
fn script(server: &LlmServer) {
    let coder = |id: &str, name: &str, args: serde_json::Value| {
        server.route(&[id, CODER], call(name, args));
    };
    let reviewer = |id: &str, name: &str, args: serde_json::Value| {
        server.route(&[id, REVIEWER], call(name, args));
    };
    // demo-1: the bug.
    coder("demo-1", "run_command", json!({"command": "./test.sh"}));
    coder("demo-1", "read_file", json!({"path": "calc.sh"}));
    coder(
        "demo-1",
        "edit_file",
        json!({"path": "calc.sh", "old": "  sub) echo $(($2 + $3)) ;;", "new": "  sub) echo $(($2 - $3)) ;;"}),
    );
    coder("demo-1", "run_command", json!({"command": "./test.sh"}));
    coder(
        "demo-1",
        "done",
        json!({"summary": "sub added its operands instead of subtracting them; it now prints A-B and ./test.sh passes."}),
    );
    reviewer("demo-1", "git_diff", json!({}));
    reviewer(
        "demo-1",
        "approve",
        json!({"summary": "One-character fix in the sub case; the existing check covers it and passes."}),
    );
    // demo-2: the feature, with one round of review changes.
    coder("demo-2", "read_file", json!({"path": "calc.sh"}));
    coder(
        "demo-2",
        "edit_file",
        json!({"path": "calc.sh", "old": "  sub) echo $(($2 - $3)) ;;", "new": "  sub) echo $(($2 - $3)) ;;\n  mul) echo $(($2 * $3)) ;;"}),
    );
    // The checks live in tests/checks.sh; test.sh (what the test command runs) is protected.
    coder(
        "demo-2",
        "edit_file",
        json!({"path": "tests/checks.sh", "old": "check 2 sub 5 3", "new": "check 2 sub 5 3\ncheck 12 mul 4 3"}),
    );
    coder("demo-2", "run_command", json!({"command": "./test.sh"}));
    coder(
        "demo-2",
        "done",
        json!({"summary": "Added mul (A times B) with a check in tests/checks.sh; all checks pass."}),
    );
    reviewer("demo-2", "git_diff", json!({}));
    reviewer(
        "demo-2",
        "request_changes",
        json!({"comments": "The usage line still reads add|sub; the bead asks to name mul there too."}),
    );
    coder(
        "demo-2",
        "edit_file",
        json!({"path": "calc.sh", "old": "usage: calc.sh add|sub A B", "new": "usage: calc.sh add|sub|mul A B"}),
    );
    coder(
        "demo-2",
        "done",
        json!({"summary": "Added mul (A times B) with a check in tests/checks.sh, and the usage line names it."}),
    );
    reviewer("demo-2", "git_diff", json!({}));
    reviewer(
        "demo-2",
        "approve",
        json!({"summary": "mul works, is tested, and the usage line lists it."}),
    );
    // demo-3: the docs.
    coder("demo-3", "read_file", json!({"path": "README.md"}));
    coder(
        "demo-3",
        "edit_file",
        json!({"path": "README.md", "old": "Run the tests with `./test.sh`.", "new": "## Commands\n\n- `./calc.sh add 2 3` prints 5\n- `./calc.sh sub 5 3` prints 2\n\nRun the tests with `./test.sh`."}),
    );
    coder(
        "demo-3",
        "done",
        json!({"summary": "README.md now has a Commands section with an example for add and sub."}),
    );
    reviewer(
        "demo-3",
        "approve",
        json!({"summary": "The examples match what calc.sh prints."}),
    );
}

fn demo_command(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(loom_bin());
    cmd.arg("demo").args(args);
    isolate(&mut cmd, config);
    cmd
}

#[test]
#[ignore = "regenerates demo/tape.jsonl: cargo test --test it demo::record_the_demo_tape -- --ignored"]
fn record_the_demo_tape() {
    let server = LlmServer::start();
    script(&server);
    let config = tempfile::tempdir().unwrap();
    let tape = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/tape.jsonl");
    let out = demo_command(config.path(), &["--record", tape.to_str().unwrap()])
        .env("TOKENHUB_URL", server.url())
        .env("TOKENHUB_API_KEY", "tokenhub_demo_recording")
        .env("LOOM_MODEL", "demo-model")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.unused(), 0, "every scripted reply was used");
    let text = std::fs::read_to_string(&tape).unwrap();
    assert!(!text.contains("tokenhub_demo_recording"));
}

#[test]
fn the_demo_runs_offline_in_under_a_minute() {
    let config = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = demo_command(config.path(), &["--keep"])
        // An endpoint that does not exist: the demo must not need one.
        .env("TOKENHUB_URL", "http://127.0.0.1:9")
        .env("TOKENHUB_API_KEY", "tokenhub_should_not_be_used")
        .output()
        .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert!(stdout.contains("3 merged"), "{stdout}");
    let kept = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Kept: "))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no kept path in {stdout}"));
    let repo = kept.join("calc");
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let merged = git(&["log", "main", "--format=%s", "--grep", "Loom-Event: merged"]);
    assert_eq!(merged.lines().count(), 3, "{merged}");
    let calc = |args: &[&str]| {
        let o = Command::new("./calc.sh")
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    assert_eq!(calc(&["sub", "5", "3"]), "2");
    assert_eq!(calc(&["mul", "4", "3"]), "12");
    let test = Command::new("./test.sh")
        .current_dir(&repo)
        .status()
        .unwrap();
    assert!(test.success());
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    assert!(readme.contains("## Commands"));
    let mut list = Command::new(loom_bin());
    list.args(["list", "--all", "--json"]).current_dir(&repo);
    isolate(&mut list, config.path());
    let beads: serde_json::Value = serde_json::from_slice(&list.output().unwrap().stdout).unwrap();
    assert!(
        beads
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["status"] == "closed"),
        "{beads:#}"
    );
    let trees = git(&["worktree", "list"]);
    assert_eq!(trees.lines().count(), 1, "{trees}");
    std::fs::remove_dir_all(&kept).unwrap();
}
