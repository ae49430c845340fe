//! bd's behaviour, command by command, as bd v1.x documents and implements it: `--deps`
//! directions, atomic claims, validated statuses, `delete`, `search`, `count`, `children`,
//! `list --parent`, `epic status`, `stale`, `dep cycles`, `label list`, `comments`.

use std::process::Stdio;

use serde_json::Value;

use crate::support::{TestRepo, ids};

fn deps_of(repo: &TestRepo, id: &str) -> Vec<(String, String)> {
    let b = repo.json(&["show", id]);
    b["dependencies"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    (
                        d["depends_on_id"].as_str().unwrap().to_owned(),
                        d["type"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[test]
fn create_deps_follow_bds_directions() {
    for format in ["yaml", "jsonl"] {
        let repo = TestRepo::with_loom(format);
        let x = repo.create("X", &[]);
        let y = repo.create("Y", &[]);
        // A bare id and blocked-by: the new bead waits.
        let a = repo.create("A", &["--deps", &x]);
        assert_eq!(deps_of(&repo, &a), vec![pair(&x, "blocks")]);
        let b = repo.create("B", &["--deps", &format!("blocked-by:{x}")]);
        assert_eq!(deps_of(&repo, &b), vec![pair(&x, "blocks")]);
        // blocks: the target waits for the new bead.
        let c = repo.create("C", &["--deps", &format!("blocks:{y}")]);
        assert!(deps_of(&repo, &c).is_empty());
        assert_eq!(deps_of(&repo, &y), vec![pair(&c, "blocks")]);
        let ready = ids(&repo.json(&["ready"]));
        assert!(!ready.contains(&y), "{y} waits for {c}: {ready:?}");
        assert!(ready.contains(&c) && !ready.contains(&a), "{ready:?}");
        // Other types keep the new → target direction; several specs, comma-separated.
        let d = repo.create("D", &["--deps", &format!("discovered-from:{x},{y}")]);
        assert_eq!(
            deps_of(&repo, &d),
            vec![pair(&x, "discovered-from"), pair(&y, "blocks")]
        );
        // A missing target refuses the whole create.
        let err = repo.fails(&["create", "E", "--deps", "blocks:t-nope"], 1);
        assert!(err.contains("t-nope"), "{err}");
        assert_eq!(ids(&repo.json(&["list", "--all"])).len(), 6);
    }
}

#[test]
fn claim_is_atomic_and_names_who_holds_the_bead() {
    let repo = TestRepo::with_loom("jsonl");
    let id = repo.create("Take me", &[]);
    let mine = repo.json(&["update", &id, "--claim", "--actor", "ann"]);
    assert_eq!(mine["assignee"], "ann");
    assert_eq!(mine["status"], "in_progress");
    // Claiming one's own claim again is no change; someone else is refused, by name.
    repo.ok(&["update", &id, "--claim", "--actor", "ann"]);
    let err = repo.fails(&["update", &id, "--claim", "--actor", "bob"], 1);
    assert!(err.contains("already claimed by ann"), "{err}");
    assert_eq!(repo.json(&["show", &id])["assignee"], "ann");
    // Only open beads can be claimed.
    let closed = repo.create("Done", &[]);
    repo.ok(&["close", &closed]);
    let err = repo.fails(&["update", &closed, "--claim", "--actor", "bob"], 1);
    assert!(err.contains("closed"), "{err}");
}

#[test]
fn two_concurrent_claims_exactly_one_wins() {
    for format in ["yaml", "jsonl"] {
        let repo = TestRepo::with_loom(format);
        for round in 0..5 {
            let id = repo.create(&format!("Race {round}"), &[]);
            let mut a = repo.command(&["update", &id, "--claim", "--actor", "ann"]);
            let mut b = repo.command(&["update", &id, "--claim", "--actor", "bob"]);
            for cmd in [&mut a, &mut b] {
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
            let (pa, pb) = (a.spawn().unwrap(), b.spawn().unwrap());
            let (oa, ob) = (
                pa.wait_with_output().unwrap(),
                pb.wait_with_output().unwrap(),
            );
            let won: Vec<&str> = [("ann", &oa), ("bob", &ob)]
                .iter()
                .filter(|(_, o)| o.status.success())
                .map(|(who, _)| *who)
                .collect();
            assert_eq!(won.len(), 1, "{format} round {round}: {won:?}");
            let loser = if won[0] == "ann" { &ob } else { &oa };
            let err = String::from_utf8_lossy(&loser.stderr);
            assert!(
                err.contains(&format!("already claimed by {}", won[0])),
                "{err}"
            );
            assert_eq!(repo.json(&["show", &id])["assignee"], won[0]);
        }
    }
}

#[test]
fn statuses_are_bds_or_configured_ones() {
    let repo = TestRepo::with_loom("yaml");
    let id = repo.create("Status", &[]);
    let err = repo.fails(&["update", &id, "-s", "in_reveiw"], 2);
    for valid in [
        "open",
        "in_progress",
        "blocked",
        "deferred",
        "closed",
        "pinned",
        "hooked",
    ] {
        assert!(err.contains(valid), "{err}");
    }
    assert!(err.contains("status.custom"), "{err}");
    let err = repo.fails(&["list", "-s", "bogus"], 2);
    assert!(err.contains("invalid status"), "{err}");
    for status in ["hooked", "deferred", "open"] {
        repo.ok(&["update", &id, "-s", status]);
    }
    // bd's key, as a comma-separated string with categories, or as a list.
    let config = repo.read_string(".beads/config.yaml");
    repo.write(
        ".beads/config.yaml",
        format!("{config}status.custom: \"in_review:active,qa:wip\"\n"),
    );
    assert_eq!(
        repo.json(&["update", &id, "-s", "in_review"])["status"],
        "in_review"
    );
    assert_eq!(
        ids(&repo.json(&["list", "-s", "in_review"])),
        vec![id.clone()]
    );
    repo.write(
        ".beads/config.yaml",
        format!("{config}status:\n  custom: [qa]\n"),
    );
    repo.ok(&["update", &id, "-s", "qa"]);
    let err = repo.fails(&["update", &id, "-s", "in_review"], 2);
    assert!(err.contains("custom: qa"), "{err}");
}

#[test]
fn delete_previews_then_removes_links_and_mentions() {
    for format in ["yaml", "jsonl"] {
        let repo = TestRepo::with_loom(format);
        let gone = repo.create("Old idea", &[]);
        let waits = repo.create(
            "Waits",
            &[
                "--deps",
                &gone,
                "-d",
                &format!("After {gone}; not {gone}x."),
            ],
        );
        let other = repo.create("Other", &[]);
        let commits = repo.commit_count();
        // Without --force: a preview, nothing changes.
        let preview = repo.ok(&["delete", &gone]);
        assert!(
            preview.contains("PREVIEW") && preview.contains("--force"),
            "{preview}"
        );
        assert!(preview.contains(&waits), "{preview}");
        assert_eq!(repo.commit_count(), commits);
        assert_eq!(repo.json(&["show", &gone])["id"], gone.as_str());
        // With it: one commit; the bead is gone, the link too, the mention rewritten.
        let out = repo.json(&["delete", &gone, "--force"]);
        assert_eq!(out["deleted"], gone.as_str());
        assert_eq!(out["dependencies_removed"], 1);
        assert_eq!(out["references_updated"], 1);
        assert_eq!(repo.commit_count(), commits + 1);
        let subject = repo.git(&["log", "-1", "--format=%s%n%b"]);
        assert!(
            subject.starts_with(&format!("loom: delete {gone}")),
            "{subject}"
        );
        assert!(subject.contains("Loom-Event: deleted"), "{subject}");
        repo.fails(&["show", &gone], 1);
        let w = repo.json(&["show", &waits]);
        assert!(
            w.get("dependencies")
                .is_none_or(|d| d.as_array().unwrap().is_empty()),
            "{w}"
        );
        assert_eq!(
            w["description"],
            format!("After [deleted:{gone}]; not {gone}x.").as_str()
        );
        if format == "yaml" {
            assert!(
                !repo
                    .path()
                    .join(format!(".beads/beads/{gone}.yaml"))
                    .exists()
            );
        } else {
            assert!(
                !repo
                    .read_string(".beads/issues.jsonl")
                    .contains(&format!("\"id\":\"{gone}\""))
            );
        }
        assert!(ids(&repo.json(&["ready"])).contains(&waits));
        // Several at once, cascading to dependents: bd's batch shape.
        let root = repo.create("Root", &[]);
        let kid = repo.create("Kid", &["--deps", &root]);
        let grandkid = repo.create("Grandkid", &["--deps", &kid]);
        let out = repo.json(&["delete", &root, &other, "--cascade", "--force"]);
        let mut deleted: Vec<String> = serde_json::from_value(out["deleted"].clone()).unwrap();
        deleted.sort();
        let mut want = vec![root, other, kid, grandkid];
        want.sort();
        assert_eq!(deleted, want);
        assert_eq!(out["deleted_count"], 4);
        assert_eq!(ids(&repo.json(&["list", "--all"])), vec![waits.clone()]);
    }
}

#[test]
fn search_matches_titles_and_ids_like_bd() {
    let repo = TestRepo::with_loom("jsonl");
    let login = repo.create("Fix the LOGIN page", &["-p", "1"]);
    let other = repo.create("Logout button", &[]);
    let closed = repo.create("Old login bug", &[]);
    repo.ok(&["close", &closed]);
    let found = repo.json(&["search", "login"]);
    assert_eq!(ids(&found), vec![login.clone()]);
    assert!(found[0]["created_at"].is_string(), "whole beads: {found}");
    // bd's IssueWithCounts.
    assert_eq!(found[0]["dependency_count"], 0);
    assert_eq!(found[0]["dependent_count"], 0);
    assert_eq!(found[0]["comment_count"], 0);
    let all = ids(&repo.json(&["search", "login", "-s", "all"]));
    assert_eq!(all.len(), 2, "{all:?}");
    // An id-like query matches by id prefix.
    assert_eq!(ids(&repo.json(&["search", &other])), vec![other.clone()]);
    assert_eq!(repo.json(&["search", "nothing here"]), Value::Array(vec![]));
    let text = repo.ok(&["search", "login"]);
    assert!(
        text.starts_with("Found 1 issue matching 'login':"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{login} [P1] [task] open - Fix the LOGIN page")),
        "{text}"
    );
    assert!(
        repo.ok(&["search", "zzz"])
            .contains("No issues found matching 'zzz'")
    );
    repo.fails(&["search"], 2);
}

#[test]
fn count_totals_and_groups_like_bd() {
    let repo = TestRepo::with_loom("yaml");
    let a = repo.create("A", &["-p", "0", "-l", "ui,fast"]);
    repo.create("B", &["-t", "bug", "-l", "ui", "-a", "ann"]);
    repo.create("C", &[]);
    repo.ok(&["close", &a]);
    assert_eq!(
        repo.json(&["count"]),
        serde_json::json!({"count": 3, "schema_version": 1})
    );
    assert_eq!(repo.ok(&["count"]).trim(), "3");
    assert_eq!(repo.json(&["count", "-s", "open"])["count"], 2);
    let by = repo.json(&["count", "--by-status"]);
    assert_eq!(by["total"], 3);
    assert_eq!(
        by["groups"],
        serde_json::json!([{"count": 1, "group": "closed"}, {"count": 2, "group": "open"}])
    );
    let by = repo.json(&["count", "--by-priority"]);
    assert_eq!(
        by["groups"][0],
        serde_json::json!({"count": 1, "group": "P0"})
    );
    let by = repo.json(&["count", "--by-label"]);
    assert_eq!(by["total"], 3, "a bead counts once in the total");
    assert_eq!(
        by["groups"],
        serde_json::json!([
            {"count": 1, "group": "(no labels)"},
            {"count": 1, "group": "fast"},
            {"count": 2, "group": "ui"}
        ])
    );
    let by = repo.json(&["count", "--by-assignee"]);
    assert_eq!(by["groups"][0]["group"], "(unassigned)");
    assert!(
        repo.ok(&["count", "--by-type"])
            .starts_with("Total: 3\n\nbug: 1\ntask: 2\n")
    );
    repo.fails(&["count", "--by-type", "--by-status"], 2);
}

#[test]
fn children_and_list_parent_give_direct_children() {
    let repo = TestRepo::with_loom("jsonl");
    let epic = repo.create("Epic", &["-t", "epic"]);
    let one = repo.create("One", &["--parent", &epic]);
    let two = repo.create("Two", &["--parent", &epic]);
    let _grandchild = repo.create("Deeper", &["--parent", &one]);
    repo.ok(&["close", &two]);
    let mut kids = ids(&repo.json(&["children", &epic]));
    kids.sort();
    assert_eq!(kids, vec![one.clone(), two.clone()]);
    // list --parent keeps list's status default (closed hidden).
    assert_eq!(
        ids(&repo.json(&["list", "--parent", &epic])),
        vec![one.clone()]
    );
    assert_eq!(repo.json(&["children", &two]), Value::Array(vec![]));
}

#[test]
fn epic_status_counts_children() {
    let repo = TestRepo::with_loom("yaml");
    let epic = repo.create("Epic", &["-t", "epic"]);
    let done = repo.create("Epic done", &["-t", "epic"]);
    repo.create("Lonely epic", &["-t", "epic"]);
    let a = repo.create("A", &["--parent", &epic]);
    repo.create("B", &["--parent", &epic]);
    let c = repo.create("C", &["--parent", &done]);
    repo.ok(&["close", &a, &c]);
    let st = repo.json(&["epic", "status"]);
    let rows = st.as_array().unwrap();
    assert_eq!(rows.len(), 2, "epics without children are left out: {st}");
    let row = rows
        .iter()
        .find(|r| r["epic"]["id"] == epic.as_str())
        .unwrap();
    assert_eq!(row["total_children"], 2);
    assert_eq!(row["closed_children"], 1);
    assert_eq!(row["eligible_for_close"], false);
    let eligible = repo.json(&["epic", "status", "--eligible-only"]);
    assert_eq!(eligible.as_array().unwrap().len(), 1);
    assert_eq!(eligible[0]["epic"]["id"], done.as_str());
    let text = repo.ok(&["epic", "status"]);
    assert!(
        text.contains("Progress: 1/2 children closed (50%)"),
        "{text}"
    );
    assert!(text.contains("Eligible for closure"), "{text}");
}

fn record(id: &str, status: &str, updated: &str, extra: &str) -> String {
    format!(
        r#"{{"id":"{id}","title":"Bead {id}","status":"{status}","priority":2,"issue_type":"task","created_at":"2025-01-01T00:00:00Z","updated_at":"{updated}"{extra}}}"#
    ) + "\n"
}

#[test]
fn stale_lists_old_open_work_oldest_first() {
    let repo = TestRepo::with_loom("jsonl");
    let mut file = String::new();
    file += &record("t-a", "open", "2025-03-01T00:00:00Z", "");
    file += &record("t-b", "in_progress", "2025-02-01T00:00:00Z", "");
    file += &record("t-c", "blocked", "2025-01-15T00:00:00Z", "");
    file += &record(
        "t-d",
        "closed",
        "2025-01-10T00:00:00Z",
        r#","closed_at":"2025-01-10T00:00:00Z""#,
    );
    repo.write(".beads/issues.jsonl", file);
    let fresh = repo.create("Fresh", &[]);
    assert_eq!(ids(&repo.json(&["stale"])), vec!["t-b", "t-a"]);
    assert_eq!(ids(&repo.json(&["stale", "-s", "blocked"])), vec!["t-c"]);
    assert_eq!(ids(&repo.json(&["stale", "-n", "1"])), vec!["t-b"]);
    assert!(!ids(&repo.json(&["stale", "-d", "1"])).contains(&fresh));
    let err = repo.fails(&["stale", "-s", "closed"], 2);
    assert!(
        err.contains("open, in_progress, blocked, deferred"),
        "{err}"
    );
    repo.fails(&["stale", "-d", "0"], 2);
    let text = repo.ok(&["stale"]);
    assert!(text.contains("1. [P2] t-b: Bead t-b"), "{text}");
}

#[test]
fn dep_cycles_lists_each_cycle_once() {
    let repo = TestRepo::with_loom("jsonl");
    let dep = |on: &str| {
        format!(r#","dependencies":[{{"issue_id":"x","depends_on_id":"{on}","type":"blocks"}}]"#)
    };
    let mut file = String::new();
    file += &record("t-a", "open", "2025-03-01T00:00:00Z", &dep("t-b"));
    file += &record("t-b", "open", "2025-03-01T00:00:00Z", &dep("t-a"));
    file += &record("t-c", "open", "2025-03-01T00:00:00Z", &dep("t-a"));
    repo.write(".beads/issues.jsonl", file);
    let cycles = repo.json(&["dep", "cycles"]);
    let cycles = cycles.as_array().unwrap();
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    let mut members = ids(&cycles[0]);
    members.sort();
    assert_eq!(members, vec!["t-a", "t-b"]);
    assert!(
        repo.ok(&["dep", "cycles"])
            .contains("Found 1 dependency cycle:")
    );
    let clean = TestRepo::with_loom("yaml");
    assert_eq!(clean.json(&["dep", "cycles"]), Value::Array(vec![]));
    assert!(
        clean
            .ok(&["dep", "cycles"])
            .contains("No dependency cycles")
    );
}

#[test]
fn labels_add_comma_separated_and_list() {
    let repo = TestRepo::with_loom("yaml");
    let a = repo.create("A", &["-l", "ui"]);
    let b = repo.create("B", &[]);
    let added = repo.json(&["label", "add", &a, &b, "backend, urgent"]);
    assert_eq!(added.as_array().unwrap().len(), 4, "{added}");
    assert_eq!(
        added[0],
        serde_json::json!({"issue_id": a, "label": "backend", "status": "added"})
    );
    assert_eq!(
        repo.json(&["label", "list", &a]),
        serde_json::json!(["backend", "ui", "urgent"])
    );
    assert_eq!(
        repo.json(&["label", "list-all"]),
        serde_json::json!([
            {"label": "backend", "count": 2},
            {"label": "ui", "count": 1},
            {"label": "urgent", "count": 2}
        ])
    );
    repo.ok(&["label", "remove", &a, "ui,urgent"]);
    assert_eq!(
        repo.json(&["label", "list", &a]),
        serde_json::json!(["backend"])
    );
    let c = repo.create("C", &[]);
    assert_eq!(repo.json(&["label", "list", &c]), serde_json::json!([]));
}

#[test]
fn comments_list_and_add() {
    let repo = TestRepo::with_loom("jsonl");
    let id = repo.create("Talk", &[]);
    assert_eq!(repo.json(&["comments", &id]), Value::Array(vec![]));
    assert!(
        repo.ok(&["comments", &id])
            .contains(&format!("No comments on {id}"))
    );
    repo.ok(&["comments", "add", &id, "first note", "--author", "ann"]);
    repo.ok(&["comment", &id, "second"]);
    let list = repo.json(&["comments", &id]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["author"], "ann");
    assert_eq!(list[0]["text"], "first note");
    assert_eq!(list[0]["issue_id"], id.as_str());
    assert!(list[1]["created_at"].is_string() && list[1]["id"].is_number());
    let text = repo.ok(&["comments", &id]);
    assert!(
        text.contains("[ann] at ") && text.contains("  first note"),
        "{text}"
    );
}
