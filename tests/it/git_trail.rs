//! The git audit trail: one commit per change, only `.beads/` paths, trailers, the user's
//! own work untouched, and the history read back by `loom log`.

use crate::support::TestRepo;

fn last_message(repo: &TestRepo) -> String {
    repo.git(&["log", "-1", "--format=%B"])
}

fn last_paths(repo: &TestRepo) -> Vec<String> {
    repo.git(&["show", "--name-only", "--format=", "HEAD"])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_change_is_a_commit_of_beads_paths_with_trailers() {
    let repo = TestRepo::new();
    // No commits yet: init makes the first one.
    repo.ok(&["init", "--prefix", "t"]);
    assert_eq!(repo.commit_count(), 1);
    let id = repo.create("Audit me", &[]);
    assert_eq!(repo.commit_count(), 2);
    let msg = last_message(&repo);
    assert!(
        msg.starts_with(&format!("loom: {id} created \"Audit me\"")),
        "{msg}"
    );
    assert!(msg.contains(&format!("\nLoom-Bead: {id}\n")), "{msg}");
    assert!(msg.contains("\nLoom-Actor: Test User\n"), "{msg}");
    assert!(msg.contains("\nLoom-Event: created\n"), "{msg}");
    assert_eq!(last_paths(&repo), [format!(".beads/beads/{id}.yaml")]);

    repo.ok(&["update", &id, "-s", "in_progress", "--actor", "robo-coder"]);
    let msg = last_message(&repo);
    assert!(
        msg.starts_with(&format!("loom: {id} open → in_progress")),
        "{msg}"
    );
    assert!(msg.contains("Loom-Actor: robo-coder"), "{msg}");
    assert_eq!(
        repo.git(&["status", "--porcelain"]),
        "",
        "nothing left uncommitted"
    );

    let log = repo.json(&["log", &id]);
    let events: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["updated", "created"]);
    assert_eq!(log[0]["actor"], "robo-coder");
    assert_eq!(log[1]["actor"], "Test User");
    let head = repo.git(&["rev-parse", "HEAD"]);
    assert_eq!(log[0]["commit"].as_str().unwrap(), head.trim());
    assert!(log[0]["time"].as_str().unwrap().starts_with("20"));
    let text = repo.ok(&["log", &id]);
    assert!(
        text.contains("robo-coder") && text.contains("updated"),
        "{text}"
    );
}

#[test]
fn users_staged_and_unstaged_changes_are_left_alone() {
    let repo = TestRepo::with_loom("jsonl");
    repo.write("src/a.txt", "one\n");
    repo.write("src/b.txt", "two\n");
    repo.git(&["add", "src"]);
    repo.git(&["commit", "-qm", "user work"]);
    // Staged change, unstaged change, untracked file.
    repo.write("src/a.txt", "one staged\n");
    repo.git(&["add", "src/a.txt"]);
    repo.write("src/a.txt", "one staged then edited\n");
    repo.write("src/b.txt", "two unstaged\n");
    repo.write("notes.txt", "untracked\n");
    let cached = repo.git(&["diff", "--cached"]);
    let unstaged = repo.git(&["diff"]);
    let status = repo.git(&["status", "--porcelain"]);

    let id = repo.create("Does not touch your work", &[]);
    repo.ok(&["update", &id, "-p", "0"]);

    assert_eq!(repo.git(&["diff", "--cached"]), cached);
    assert_eq!(repo.git(&["diff"]), unstaged);
    assert_eq!(repo.git(&["status", "--porcelain"]), status);
    assert_eq!(repo.read_string("src/a.txt"), "one staged then edited\n");
    assert_eq!(last_paths(&repo), [".beads/issues.jsonl"]);
    // The user's staged change is still only staged, not committed.
    let committed = repo.git(&["show", "HEAD:src/a.txt"]);
    assert_eq!(committed, "one\n");
}

#[test]
fn hooks_do_not_run_for_bead_commits() {
    let repo = TestRepo::with_loom("yaml");
    let hooks = repo.path().join(".git/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    for hook in ["pre-commit", "commit-msg", "post-commit"] {
        let p = hooks.join(hook);
        std::fs::write(
            &p,
            format!("#!/bin/sh\ntouch \"$(git rev-parse --git-dir)/{hook}-ran\"\nexit 1\n"),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    repo.create("No hooks", &[]);
    for hook in ["pre-commit", "commit-msg", "post-commit"] {
        assert!(
            !repo.path().join(format!(".git/{hook}-ran")).exists(),
            "{hook} ran"
        );
    }
}

#[test]
fn outside_git_mutations_say_to_run_git_init_and_reads_work() {
    let dir = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(crate::support::loom_bin());
        cmd.args(args).current_dir(dir.path());
        crate::support::isolate(&mut cmd, config.path());
        cmd.output().unwrap()
    };
    let out = run(&["init"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("git init"));
    std::fs::create_dir_all(dir.path().join(".beads/beads")).unwrap();
    std::fs::write(
        dir.path().join(".beads/beads/x-1.yaml"),
        "id: x-1\ntitle: readable\nstatus: open\npriority: 1\nissue_type: task\n",
    )
    .unwrap();
    assert!(run(&["list"]).status.success());
    for args in [
        vec!["create", "nope"],
        vec!["update", "x-1", "-p", "2"],
        vec!["close", "x-1"],
        vec!["label", "add", "x-1", "l"],
        vec!["comment", "x-1", "hi"],
    ] {
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("git init"), "{args:?}: {err}");
    }
    assert!(
        String::from_utf8_lossy(&std::fs::read(dir.path().join(".beads/beads/x-1.yaml")).unwrap())
            .contains("priority: 1")
    );
}

#[test]
fn auto_commit_can_be_turned_off() {
    let repo = TestRepo::with_loom("yaml");
    let base = repo.commit_count();
    repo.write(".loom/config.yaml", "auto_commit: false\n");
    let id = repo.create("Uncommitted", &[]);
    assert_eq!(repo.commit_count(), base);
    assert!(
        repo.git(&["status", "--porcelain"])
            .contains(&format!(".beads/beads/{id}.yaml"))
    );
    std::fs::remove_file(repo.path().join(".loom/config.yaml")).unwrap();
    repo.ok(&["create", "Also uncommitted", "--no-commit"]);
    assert_eq!(repo.commit_count(), base);
    // The next committed change sweeps its own file in only.
    repo.create("Committed", &[]);
    assert_eq!(repo.commit_count(), base + 1);
    assert_eq!(last_paths(&repo).len(), 1);
}

/// Bead commits build the new tree from HEAD's (only the trees on the way to the changed files
/// are touched): everything else stays as it was, the objects are sound, and a file git must
/// hash itself (CRLF text) takes the plumbing path with the same result.
#[test]
fn bead_commits_change_only_their_files_in_deep_trees() {
    for format in ["yaml", "jsonl"] {
        let repo = TestRepo::with_loom(format);
        for d in 0..5 {
            repo.write(&format!("src/m{d}/deep/file.rs"), format!("// {d}\n"));
        }
        repo.write_executable("tools/run.sh", "#!/bin/sh\necho run\n");
        repo.git(&["add", "."]);
        repo.git(&["commit", "-qm", "project"]);
        let before = repo.git(&["ls-tree", "-r", "HEAD", "--", "src", "tools"]);
        let id = repo.create("Deep", &[]);
        repo.ok(&["update", &id, "-p", "0"]);
        repo.ok(&["label", "add", &id, "x"]);
        assert_eq!(
            repo.git(&["ls-tree", "-r", "HEAD", "--", "src", "tools"]),
            before,
            "{format}: the rest of the tree is untouched"
        );
        assert!(before.contains("100755"), "modes kept: {before}");
        assert_eq!(repo.git(&["status", "--porcelain"]), "", "{format}");
        let fsck = repo.git(&["fsck", "--strict"]);
        assert!(!fsck.contains("error"), "{fsck}");
        assert!(
            repo.git(&["log", "-1", "--format=%s"]).contains("+label x"),
            "{format}"
        );
    }
    // A foreign JSONL line with CRLF: git hashes the file (attributes and all).
    let repo = TestRepo::with_loom("jsonl");
    let id = repo.create("Crlf", &[]);
    let path = ".beads/issues.jsonl";
    let mut text = repo.read_string(path);
    text.push_str("{\"id\":\"f-1\",\"title\":\"foreign\",\"status\":\"open\",\"priority\":2,\"issue_type\":\"task\",\"created_at\":\"2025-01-01T00:00:00Z\",\"updated_at\":\"2025-01-01T00:00:00Z\"}\r\n");
    repo.write(path, text);
    repo.ok(&["update", &id, "-p", "1"]);
    assert_eq!(
        repo.git(&["show", &format!("HEAD:{path}")]),
        repo.read_string(path),
        "committed as on disk"
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

/// A bead's history includes commits from outside Loom that changed its file (YAML: one file
/// per bead), marked `external`; other commits stay out.
#[test]
fn a_bead_s_log_shows_outside_commits_to_its_file() {
    let repo = TestRepo::with_loom("yaml");
    let id = repo.create("Edited by hand", &[]);
    let rel = format!(".beads/beads/{id}.yaml");
    let text = repo
        .read_string(&rel)
        .replace("Edited by hand", "Edited by hand, twice");
    repo.write(&rel, text);
    repo.git(&["commit", "-qam", "tweak the title by hand"]);
    repo.write("other.txt", "x\n");
    repo.git(&["add", "other.txt"]);
    repo.git(&["commit", "-qm", "unrelated work"]);
    let log = repo.json(&["log", &id]);
    let entries = log.as_array().unwrap();
    let subjects: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["subject"].as_str())
        .collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert_eq!(entries[0]["subject"], "tweak the title by hand");
    assert_eq!(entries[0]["event"], "external");
    assert!(!subjects.contains(&"unrelated work"));
    let all = repo.json(&["log"]);
    assert!(
        !all.to_string().contains("tweak the title by hand"),
        "the whole-store log stays Loom's"
    );
}

/// A commit describes its own diff: edits to a bead file nobody committed (an editor, bd,
/// `--no-commit`) are committed first, as they were, marked `external`; Loom's change follows
/// in a commit of its own whose diff is exactly what its subject says.
#[test]
fn uncommitted_bead_edits_get_their_own_commit_first() {
    for format in ["yaml", "jsonl"] {
        let repo = TestRepo::with_loom(format);
        let a = repo.create("Alpha", &[]);
        let b = repo.create("Beta", &[]);
        let file = if format == "yaml" {
            format!(".beads/beads/{a}.yaml")
        } else {
            ".beads/issues.jsonl".to_owned()
        };
        let text = repo.read_string(&file);
        repo.write(&file, text.replace("Alpha", "Alpha (edited by hand)"));
        let base = repo.commit_count();
        // YAML: a change to the edited bead's own file; JSONL: any change shares the file.
        let target = if format == "yaml" { &a } else { &b };
        repo.ok(&["update", target, "-p", "0"]);
        assert_eq!(repo.commit_count(), base + 2, "{format}");
        let external = repo.git(&["log", "-1", "--skip=1", "--format=%B"]);
        assert!(
            external.starts_with(&format!("loom: record uncommitted edits to {file}")),
            "{external}"
        );
        assert!(external.contains("Loom-Event: external"), "{external}");
        let ours = repo.git(&["show", "-U0", "--format=%s", "HEAD"]);
        assert!(ours.contains("priority 2 → 0"), "{ours}");
        assert!(
            !ours.contains("edited by hand"),
            "{format}: folded in: {ours}"
        );
        let theirs = repo.git(&["show", "-U0", "--format=%s", "HEAD~1"]);
        assert!(
            theirs.contains("edited by hand") && !theirs.contains("\"priority\":0"),
            "{theirs}"
        );
        assert!(repo.git(&["status", "--porcelain"]).trim().is_empty());
        // Nothing left uncommitted: the next change is one commit.
        repo.ok(&["update", target, "-p", "1"]);
        assert_eq!(repo.commit_count(), base + 3);
    }
}
