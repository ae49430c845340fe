//! Worktree safety: created under Loom's directory, reused for the same bead, setup files copied
//! but never committed, and the orphan sweep removes only merged, clean worktrees.

use loom::git::Repo;
use loom::git::worktree::{Identity, WorktreeFile, Worktrees};

use crate::support::TestRepo;

fn setup() -> (TestRepo, tempfile::TempDir, Worktrees) {
    let repo = TestRepo::new();
    repo.write("src.txt", "v1\n");
    repo.write(".env", "SECRET_SETTING=1\n");
    repo.write(".gitignore", "");
    repo.git(&["add", "src.txt", ".gitignore"]);
    repo.git(&["commit", "-qm", "start"]);
    let base = tempfile::tempdir().unwrap();
    let r = Repo::require(repo.path()).unwrap();
    let trees = Worktrees::new(
        r,
        base.path().join("worktrees"),
        WorktreeFile {
            copy: vec![".env".into()],
            setup: Some("echo ready > .setup-done".into()),
            pool: None,
        },
    );
    (repo, base, trees)
}

fn agent() -> Identity {
    Identity {
        name: "coder".into(),
        email: "coder@agents.loom.invalid".into(),
    }
}

#[test]
fn create_reuse_copy_and_commit() {
    let (repo, base, trees) = setup();
    let (wt, created) = trees.add("t-abc", "main").unwrap();
    assert!(created);
    assert!(
        wt.path
            .starts_with(std::fs::canonicalize(base.path()).unwrap())
    );
    assert_eq!(wt.branch, "loom/t-abc");
    assert_eq!(
        std::fs::read_to_string(wt.path.join(".env")).unwrap(),
        "SECRET_SETTING=1\n"
    );
    assert!(
        !wt.path.join(".setup-done").exists(),
        "the setup command is the agent layer's (sandboxed), not git's"
    );
    let (again, created) = trees.add("t-abc", "main").unwrap();
    assert!(!created);
    assert_eq!(again.path, wt.path);

    std::fs::write(wt.path.join("src.txt"), "v2\n").unwrap();
    let commit = trees
        .commit(&again, "t-abc: work\n\nLoom-Bead: t-abc\n", &agent(), None)
        .unwrap();
    assert!(commit.is_some());
    let files = repo.git(&["show", "--name-only", "--format=", "loom/t-abc"]);
    assert_eq!(
        files.trim(),
        "src.txt",
        "the copied .env is never committed"
    );
    assert_eq!(
        repo.git(&["log", "-1", "--format=%an <%ae>", "loom/t-abc"])
            .trim(),
        "coder <coder@agents.loom.invalid>"
    );
    assert!(
        trees
            .commit(&again, "nothing", &agent(), None)
            .unwrap()
            .is_none(),
        "nothing left to commit"
    );
}

#[test]
fn the_sweep_keeps_dirty_and_unmerged_work_and_removes_merged() {
    let (repo, base, trees) = setup();
    let (dirty, _) = trees.add("t-dirty", "main").unwrap();
    std::fs::write(dirty.path.join("src.txt"), "uncommitted\n").unwrap();

    let (unmerged, _) = trees.add("t-unmerged", "main").unwrap();
    std::fs::write(unmerged.path.join("src.txt"), "branch work\n").unwrap();
    trees.commit(&unmerged, "work", &agent(), None).unwrap();

    let (merged, _) = trees.add("t-merged", "main").unwrap();
    std::fs::write(merged.path.join("new.txt"), "done\n").unwrap();
    trees.commit(&merged, "work", &agent(), None).unwrap();
    repo.git(&["merge", "-q", "--ff-only", "loom/t-merged"]);

    let stray = base.path().join("worktrees/not-a-worktree");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("precious.txt"), "keep me").unwrap();

    let report = trees.sweep("main", &[]).unwrap();
    let removed: Vec<String> = report
        .removed
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(removed, ["t-merged"]);
    let kept = |name: &str| {
        report
            .kept
            .iter()
            .find(|(p, _)| p.ends_with(name))
            .map(|(_, r)| r.clone())
    };
    assert!(kept("t-dirty").unwrap().contains("uncommitted"));
    assert!(kept("t-unmerged").unwrap().contains("not merged"));
    assert!(
        kept("not-a-worktree")
            .unwrap()
            .contains("not a registered worktree")
    );
    assert!(
        dirty.path.join("src.txt").exists()
            && unmerged.path.exists()
            && stray.join("precious.txt").exists()
    );
    assert!(!merged.path.exists());
    let branches = repo.git(&["branch", "--list", "loom/*"]);
    assert!(
        branches.contains("loom/t-unmerged")
            && branches.contains("loom/t-dirty")
            && !branches.contains("loom/t-merged")
    );

    // Abandoning an unmerged, clean worktree removes it but keeps its branch.
    assert_eq!(trees.remove(&unmerged, "main", true).unwrap(), None);
    assert!(!unmerged.path.exists());
    assert!(
        repo.git(&["branch", "--list", "loom/*"])
            .contains("loom/t-unmerged")
    );
    // A dirty one is kept even when abandoned.
    assert!(
        trees
            .remove(&dirty, "main", true)
            .unwrap()
            .unwrap()
            .contains("uncommitted")
    );
    // A re-created worktree picks the kept branch up again.
    let (back, created) = trees.add("t-unmerged", "main").unwrap();
    assert!(created);
    assert_eq!(
        std::fs::read_to_string(back.path.join("src.txt")).unwrap(),
        "branch work\n"
    );
}

#[test]
fn the_bead_store_stays_out_of_agent_checkouts() {
    let repo = TestRepo::with_loom("yaml");
    repo.write("src.txt", "v1\n");
    repo.git(&["add", "src.txt"]);
    repo.git(&["commit", "-qm", "code"]);
    let id = repo.create("A bead", &[]);
    let config_before = repo.read_string(".git/config");
    let base = tempfile::tempdir().unwrap();
    let trees = Worktrees::new(
        Repo::require(repo.path()).unwrap(),
        base.path().join("worktrees"),
        WorktreeFile::default(),
    )
    .leaving_out(".beads");
    let (wt, created) = trees.add(&id, "main").unwrap();
    assert!(created);
    assert!(wt.path.join("src.txt").exists());
    assert!(!wt.path.join(".beads").exists(), "no copy of the store");
    assert_eq!(
        repo.read_string(".git/config"),
        config_before,
        "the repository's configuration is untouched"
    );
    // Work commits only what the agent changed; git status stays clean about the store.
    std::fs::write(wt.path.join("src.txt"), "v2\n").unwrap();
    let c = trees
        .commit(&wt, "work", &agent(), None)
        .unwrap()
        .expect("a commit");
    let files = repo.git(&["show", "--name-only", "--format=", &c]);
    assert_eq!(files.trim(), "src.txt");
    // The target's bead commits merge in without materialising the store.
    repo.ok(&["update", &id, "-p", "0"]);
    let author = agent();
    let merged = loom::git::merge::integrate(&wt, "main", &author, None).unwrap();
    assert_eq!(merged, loom::git::merge::Integrated::Merged);
    let status = std::process::Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(&wt.path)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&status.stdout).trim().is_empty());
    // A worktree holding nothing but left-out files still commits (nothing) without error.
    assert_eq!(trees.commit(&wt, "nothing", &author, None).unwrap(), None);
}

/// Warm worktrees: a slot given back is switched to the next bead's branch at its base with
/// only the changed files rewritten, ignored build caches kept; a slot holding uncommitted
/// work is neither given back nor taken; an earlier branch of the bead is checked out as it
/// is; two takers never share a slot; the sweep leaves the pool alone.
#[test]
fn pooled_worktrees_are_reused_warm_and_never_reset_over_work() {
    let (repo, _base, trees) = setup();
    repo.write(".gitignore", "target/\n");
    repo.git(&["add", ".gitignore"]);
    repo.git(&["commit", "-qm", "ignore target"]);
    let first_base = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();

    let a = trees.take_pooled("t-a", &first_base).unwrap();
    assert_eq!(a.branch, "loom/t-a");
    assert!(a.path.ends_with(".pool/slot-0"), "{}", a.path.display());
    assert_eq!(
        std::fs::read_to_string(a.path.join(".env")).unwrap(),
        "SECRET_SETTING=1\n"
    );
    std::fs::create_dir_all(a.path.join("target")).unwrap();
    std::fs::write(a.path.join("target/cache"), "warm").unwrap();
    std::fs::write(a.path.join("src.txt"), "a's work\n").unwrap();
    assert!(
        !trees.give_back(&a).unwrap(),
        "uncommitted work is not given back"
    );
    // Meanwhile a second taker gets another slot.
    let b = trees.take_pooled("t-b", &first_base).unwrap();
    assert!(b.path.ends_with(".pool/slot-1"));
    assert!(trees.give_back(&b).unwrap());
    trees
        .commit(&a, "a's work", &agent(), None)
        .unwrap()
        .unwrap();
    assert!(trees.give_back(&a).unwrap());

    // The target moves on; the next bead starts from there in a warm slot.
    repo.write("src.txt", "v2\n");
    repo.git(&["commit", "-qam", "v2"]);
    let second_base = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let c = trees.take_pooled("t-c", &second_base).unwrap();
    assert!(
        c.path.ends_with(".pool/slot-0"),
        "the first free slot is reused"
    );
    assert_eq!(
        std::fs::read_to_string(c.path.join("src.txt")).unwrap(),
        "v2\n"
    );
    assert_eq!(
        std::fs::read_to_string(c.path.join("target/cache")).unwrap(),
        "warm",
        "ignored build caches stay"
    );
    assert!(trees.give_back(&c).unwrap());

    // A retry of t-a gets its branch back as it was, commits and all.
    let again = trees.take_pooled("t-a", &second_base).unwrap();
    assert_eq!(
        std::fs::read_to_string(again.path.join("src.txt")).unwrap(),
        "a's work\n"
    );
    assert!(trees.give_back(&again).unwrap());

    // An untracked file in a free slot (someone worked there by hand): skipped, not cleaned.
    std::fs::write(again.path.join("notes.txt"), "mine").unwrap();
    let d = trees.take_pooled("t-d", &second_base).unwrap();
    assert_ne!(d.path, again.path);
    assert_eq!(
        std::fs::read_to_string(again.path.join("notes.txt")).unwrap(),
        "mine"
    );
    let swept = trees.sweep("main", &[]).unwrap();
    assert!(
        swept.kept.iter().all(|(p, _)| !p.ends_with(".pool")),
        "the sweep leaves the pool alone: {swept:?}"
    );
    assert!(d.path.exists() && again.path.exists());
}
