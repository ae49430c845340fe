//! The bead commands as a user (or a script) sees them: output, JSON shapes, flags, errors.

use serde_json::Value;

use crate::support::{TestRepo, ids};

#[test]
fn create_prints_the_id_and_quiet_prints_only_it() {
    let repo = TestRepo::with_loom("yaml");
    let out = repo.ok(&["create", "Fix the login", "-t", "bug", "-p", "P1"]);
    let id = out
        .split_whitespace()
        .find(|w| w.starts_with("t-"))
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    assert!(out.contains("Fix the login"), "{out}");
    let quiet = repo.ok(&["create", "Second", "-q"]);
    assert!(
        quiet.trim().starts_with("t-") && quiet.trim().lines().count() == 1,
        "{quiet}"
    );
    let bead = repo.json(&["show", &id]);
    assert!(bead.is_object(), "show of one id is an object");
    assert_eq!(bead["issue_type"], "bug");
    assert_eq!(bead["priority"], 1);
    assert_eq!(bead["status"], "open");
    // Files are YAML, one per bead, named by id.
    assert!(repo.path().join(format!(".beads/beads/{id}.yaml")).exists());
    let created = repo.json(&["create", "Third", "-d", "body"]);
    assert_eq!(created["title"], "Third");
    assert_eq!(created["description"], "body");
}

#[test]
fn ids_are_short_hashes_that_grow_children_get_dotted_ids() {
    let repo = TestRepo::with_loom("jsonl");
    let epic = repo.create("Epic", &["-t", "epic"]);
    let hash = epic.strip_prefix("t-").unwrap();
    assert_eq!(hash.len(), 3, "{epic}");
    assert!(
        hash.chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
    );
    let c1 = repo.create("Child one", &["--parent", &epic]);
    let c2 = repo.create("Child two", &["--parent", &epic]);
    assert_eq!(c1, format!("{epic}.1"));
    assert_eq!(c2, format!("{epic}.2"));
    let child = repo.json(&["show", &c1]);
    assert_eq!(child["dependencies"][0]["type"], "parent-child");
    assert_eq!(child["dependencies"][0]["depends_on_id"], epic.as_str());
    // Partial ids resolve.
    let shown = repo.json(&["show", hash]);
    assert_eq!(shown["id"], epic.as_str());
}

#[test]
fn prefix_comes_from_config_then_existing_ids_then_directory() {
    let repo = TestRepo::new();
    repo.write(".beads/issues.jsonl", r#"{"id":"shop-x1y","title":"t","status":"open","priority":2,"issue_type":"task","created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z"}"#.to_owned() + "\n");
    assert!(repo.create("New", &[]).starts_with("shop-"));
    repo.write(".beads/config.yaml", "issue-prefix: \"cfg\"\n");
    assert!(repo.create("New", &[]).starts_with("cfg-"));
    let fresh = TestRepo::new();
    fresh.ok(&["init"]);
    let dir = fresh
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(fresh.create("New", &[]).starts_with(&format!("{dir}-")));
}

#[test]
fn list_hides_closed_unless_all_or_status_and_limits() {
    let repo = TestRepo::with_loom("jsonl");
    let mut made = Vec::new();
    for i in 0..55 {
        made.push(repo.create(&format!("bead {i}"), &[]));
    }
    repo.ok(&["close", &made[0], "-r", "done"]);
    let listed = repo.json(&["list"]);
    assert_eq!(listed.as_array().unwrap().len(), 50, "default limit 50");
    let all = repo.json(&["list", "-n", "0"]);
    assert_eq!(all.as_array().unwrap().len(), 54, "closed hidden");
    assert!(!ids(&all).contains(&made[0]));
    let with_closed = repo.json(&["list", "--all"]);
    assert_eq!(with_closed.as_array().unwrap().len(), 55);
    let closed = repo.json(&["list", "-s", "closed"]);
    assert_eq!(ids(&closed), [made[0].clone()]);
    assert_eq!(closed[0]["close_reason"], "done");
    assert!(closed[0]["closed_at"].is_string());
    // A truncated human list says so on stderr.
    let out = repo.loom(&["list"]);
    assert!(out.stderr.contains("Showing 50 of 54"), "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 50);
}

#[test]
fn ready_limit_and_filters() {
    let repo = TestRepo::with_loom("yaml");
    for i in 0..105 {
        repo.write(
            &format!(".beads/beads/t-{i:03}.yaml"),
            format!("id: t-{i:03}\ntitle: bead {i}\nstatus: open\npriority: 2\nissue_type: task\ncreated_at: 2025-01-01T00:00:{:02}Z\nupdated_at: 2025-01-01T00:00:00Z\n", i % 60),
        );
    }
    assert_eq!(repo.json(&["ready"]).as_array().unwrap().len(), 100);
    assert_eq!(
        repo.json(&["ready", "-n", "0"]).as_array().unwrap().len(),
        105
    );
    assert_eq!(
        repo.json(&["ready", "-n", "7"]).as_array().unwrap().len(),
        7
    );
    repo.ok(&["update", "t-001", "-a", "ann", "-p", "0"]);
    assert_eq!(ids(&repo.json(&["ready", "-a", "ann"])), ["t-001"]);
    assert_eq!(ids(&repo.json(&["ready", "-p", "P0"])), ["t-001"]);
    assert_eq!(
        repo.json(&["ready", "-n", "0", "-u"])
            .as_array()
            .unwrap()
            .len(),
        104
    );
    let oldest = repo.json(&["ready", "-n", "1", "-s", "oldest"]);
    assert_eq!(oldest[0]["created_at"], "2025-01-01T00:00:00Z");
    let err = repo.fails(&["ready", "-s", "newest"], 2);
    assert!(err.contains("hybrid, priority, oldest"), "{err}");
}

#[test]
fn dependencies_block_and_cycles_are_refused_with_the_cycle() {
    let repo = TestRepo::with_loom("yaml");
    let a = repo.create("A", &[]);
    let b = repo.create("B", &[]);
    let c = repo.create("C", &[]);
    repo.ok(&["dep", "add", &a, &b]);
    repo.ok(&["dep", "add", &b, &c]);
    assert_eq!(ids(&repo.json(&["ready"])), [c.clone()]);
    let blocked = repo.json(&["blocked"]);
    let first = blocked
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == a.as_str())
        .unwrap();
    assert_eq!(first["blocked_by"], serde_json::json!([b.clone()]));
    assert_eq!(first["blocked_by_count"], 1);

    let err = repo.fails(&["dep", "add", &c, &a], 1);
    assert!(err.contains(&format!("{c} → {a} → {b} → {c}")), "{err}");
    let err = repo.fails(&["dep", "add", &a, &a], 2);
    assert!(err.contains("itself"), "{err}");
    // Non-blocking types never close a cycle.
    repo.ok(&["dep", "add", &c, &a, "-t", "related"]);

    let tree = repo.json(&["dep", "tree", &a]);
    let depths: Vec<(String, u64)> = tree
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap().to_owned(),
                n["depth"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(depths, [(a.clone(), 0), (b.clone(), 1), (c.clone(), 2)]);
    assert_eq!(tree[1]["parent_id"], a.as_str());
    assert_eq!(tree[1]["edge_from_parent"], "blocks");
    let text = repo.ok(&["dep", "tree", &a]);
    assert!(text.contains("└── "), "{text}");
    assert!(text.contains("[BLOCKED]"), "{text}");

    // Closing the blocker unblocks; closing a blocked bead needs --force.
    let err = repo.fails(&["close", &b], 1);
    assert!(err.contains("--force"), "{err}");
    repo.ok(&["close", &c]);
    assert_eq!(ids(&repo.json(&["ready"])), [b.clone()]);
    repo.ok(&["dep", "remove", &a, &b]);
    let ready = ids(&repo.json(&["ready"]));
    assert!(ready.contains(&a) && ready.contains(&b));
}

#[test]
fn update_close_reopen_labels_comments() {
    let repo = TestRepo::with_loom("jsonl");
    let id = repo.create("Work", &["-l", "a,b"]);
    let before = repo.json(&["show", &id]);
    repo.ok(&[
        "update",
        &id,
        "-s",
        "in_progress",
        "--title",
        "Work well",
        "--add-label",
        "c",
        "--remove-label",
        "a",
    ]);
    let after = repo.json(&["show", &id]);
    assert_eq!(after["status"], "in_progress");
    assert_eq!(after["title"], "Work well");
    assert_eq!(after["labels"], serde_json::json!(["b", "c"]));
    assert!(after["updated_at"].as_str() > before["updated_at"].as_str());

    repo.ok(&["close", &id, "-r", "shipped"]);
    let closed = repo.json(&["show", &id]);
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["close_reason"], "shipped");
    repo.ok(&["reopen", &id]);
    let reopened = repo.json(&["show", &id]);
    assert_eq!(reopened["status"], "open");
    assert!(reopened.get("closed_at").is_none() && reopened.get("close_reason").is_none());

    let labels = repo.json(&["label", "add", &id, "urgent"]);
    assert_eq!(labels[0]["status"], "added");
    repo.ok(&["label", "remove", &id, "b"]);
    assert_eq!(
        repo.json(&["show", &id])["labels"],
        serde_json::json!(["c", "urgent"])
    );

    let c = repo.json(&["comment", &id, "looks", "good"]);
    assert_eq!(c["text"], "looks good");
    assert_eq!(c["author"], "Test User");
    assert_eq!(
        repo.json(&["show", &id])["comments"][0]["text"],
        "looks good"
    );

    // --parent reparents (one parent-child dependency) and "" removes it.
    let epic = repo.create("Epic", &["-t", "epic"]);
    let other = repo.create("Other epic", &["-t", "epic"]);
    let parents = |repo: &TestRepo| -> Vec<String> {
        repo.json(&["show", &id])["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["type"] == "parent-child")
            .map(|d| d["depends_on_id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    repo.ok(&["update", &id, "--parent", &epic]);
    assert_eq!(parents(&repo), [epic.clone()]);
    repo.ok(&["update", &id, "--parent", &other]);
    assert_eq!(parents(&repo), [other.clone()], "replaced, not added");
    repo.ok(&["update", &id, "--parent", ""]);
    assert!(parents(&repo).is_empty());
    let err = repo.fails(&["update", &id, "--parent", &id], 1);
    assert!(err.contains("own parent"), "{err}");

    // Bad values are refused with what to do, and nothing is written.
    let head = repo.commit_count();
    let err = repo.fails(&["update", &id, "-p", "9"], 2);
    assert!(err.contains("0-4"), "{err}");
    let err = repo.fails(&["update", &id, "--title", ""], 1);
    assert!(err.contains("title"), "{err}");
    let err = repo.fails(&["update", "t-nope", "-p", "1"], 1);
    assert!(err.contains("t-nope") && err.contains("hint"), "{err}");
    assert_eq!(repo.commit_count(), head);
}

#[test]
fn stats_import_export() {
    let repo = TestRepo::with_loom("yaml");
    let a = repo.create("A", &[]);
    let b = repo.create("B", &[]);
    repo.ok(&["dep", "add", &a, &b]);
    let stats = repo.json(&["stats"]);
    assert_eq!(stats["summary"]["total_issues"], 2);
    assert_eq!(stats["summary"]["blocked_issues"], 1);
    assert_eq!(stats["summary"]["ready_issues"], 1);

    let exported = repo.ok(&["export"]);
    assert_eq!(exported.lines().count(), 2);
    let other = TestRepo::with_loom("jsonl");
    other.write("in.jsonl", &exported);
    let summary = other.json(&["import", "-i", "in.jsonl"]);
    assert_eq!(summary["created"], 2);
    let again = other.json(&["import", "in.jsonl"]);
    assert_eq!(again["created"], 0);
    assert_eq!(again["skipped"], 2);
    assert_eq!(ids(&other.json(&["ready"])), [b.clone()]);
}

#[test]
fn output_is_plain_when_piped_or_no_color() {
    let repo = TestRepo::with_loom("yaml");
    repo.create("Plain", &["-p", "0"]);
    let out = repo.ok(&["list"]);
    assert!(
        !out.contains('\u{1b}'),
        "no escape codes when piped: {out:?}"
    );
    let forced = repo.ok(&["list", "--color", "always"]);
    assert!(forced.contains('\u{1b}'), "--color always colours");
    // Columns line up.
    repo.create("A much longer title here", &[]);
    let out = repo.ok(&["list"]);
    let starts: Vec<usize> = out.lines().map(|l| l.find("task").unwrap()).collect();
    assert!(starts.windows(2).all(|w| w[0] == w[1]), "{out}");
}

#[test]
fn json_everywhere() {
    let repo = TestRepo::with_loom("yaml");
    let a = repo.create("A", &[]);
    for args in [
        vec!["list"],
        vec!["ready"],
        vec!["blocked"],
        vec!["log"],
        vec!["dep", "tree", a.as_str()],
    ] {
        let v = repo.json(&args);
        assert!(v.is_array(), "{args:?} gives an array");
    }
    for args in [
        vec!["show", a.as_str()],
        vec!["stats"],
        vec!["update", a.as_str(), "-p", "1"],
        vec!["doctor"],
    ] {
        let v: Value = repo.json(&args);
        assert!(v.is_object(), "{args:?} gives an object");
    }
}

#[test]
fn completions_for_each_shell_name_the_commands() {
    let repo = TestRepo::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = repo.ok(&["completions", shell]);
        for cmd in ["create", "ready", "pair", "demo"] {
            assert!(out.contains(cmd), "{shell} completions lack {cmd}");
        }
    }
    // The bash script parses.
    let script = repo.path().join("loom.bash");
    std::fs::write(&script, repo.ok(&["completions", "bash"])).unwrap();
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let bad = repo.loom(&["completions", "tcsh"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("possible values"), "{}", bad.stderr);
}
