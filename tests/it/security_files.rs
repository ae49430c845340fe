//! Hostile files and streams (docs/SECURITY.md, promises 8–10): bad bead files never leak,
//! corrupt or hang; terminal output is inert; a stream cut in the middle of a line is retried.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::hostile::*;
use crate::llm_server::{Fault, LlmServer, Reply};
use crate::support::TestRepo;

/// Promise 8: a `.beads` (or `.beads/beads`) that is a symlink out of the repository is
/// refused, and a bead file that is a symlink is reported, never read into a commit.
#[test]
fn a_symlinked_store_is_refused_and_never_committed() {
    let secret = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(secret.path().join("beads")).unwrap();
    std::fs::write(
        secret.path().join("beads/t-leak.yaml"),
        "id: t-leak\ntitle: outside secret 5f3a\nstatus: open\npriority: 2\nissue_type: task\n",
    )
    .unwrap();
    let repo = TestRepo::new();
    std::os::unix::fs::symlink(secret.path(), repo.path().join(".beads")).unwrap();
    let err = repo.fails(&["list"], 1);
    assert!(err.contains("outside the repository"), "{err}");
    let err = repo.fails(&["create", "x"], 1);
    assert!(err.contains("outside the repository"), "{err}");
    // Inside a real store, a bead file that is a symlink (to a file outside) is reported and
    // the other beads still load; writes never commit what it points to.
    let repo = TestRepo::with_loom("yaml");
    let id = repo.create("A plain bead", &[]);
    std::os::unix::fs::symlink(
        secret.path().join("beads/t-leak.yaml"),
        repo.path().join(".beads/beads/t-leak.yaml"),
    )
    .unwrap();
    let out = repo.loom(&["list", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(&id) && !out.stdout.contains("outside secret"));
    assert!(
        out.stderr.contains("t-leak.yaml") && out.stderr.contains("symlink"),
        "{}",
        out.stderr
    );
    repo.ok(&["update", &id, "-p", "1"]);
    repo.create("Another", &[]);
    let history = repo.git(&["log", "--all", "-p"]);
    assert!(
        !history.contains("outside secret"),
        "the symlink's target was committed"
    );
}

/// Promise 8: a bead file with merge-conflict markers makes writes refuse with "resolve the
/// merge in … first"; nothing is committed and the conflict stays unresolved in git.
#[test]
fn conflict_markers_make_writes_refuse() {
    // JSONL: one file, every write refuses.
    let repo = TestRepo::with_loom("jsonl");
    let id = repo.create("One", &[]);
    let path = repo.path().join(".beads/issues.jsonl");
    let line = std::fs::read_to_string(&path).unwrap();
    let conflicted = format!(
        "<<<<<<< HEAD\n{line}=======\n{}>>>>>>> theirs\n",
        line.replace("\"One\"", "\"Uno\"")
    );
    std::fs::write(&path, &conflicted).unwrap();
    let commits = repo.commit_count();
    for args in [
        vec!["create", "Two"],
        vec!["update", &id, "-p", "0"],
        vec!["close", &id],
    ] {
        let err = repo.fails(&args, 1);
        assert!(
            err.contains("resolve the merge in .beads/issues.jsonl first"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        conflicted,
        "untouched"
    );
    assert_eq!(repo.commit_count(), commits, "nothing committed");

    // YAML: a real merge conflict on one bead file.
    let repo = TestRepo::with_loom("yaml");
    let id = repo.create("Shared", &[]);
    repo.git(&["checkout", "-qb", "other"]);
    repo.ok(&["update", &id, "--title", "Theirs"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.ok(&["update", &id, "--title", "Ours"]);
    let mut merge = Command::new("git");
    merge
        .args(["merge", "-q", "other"])
        .current_dir(repo.path());
    crate::support::isolate(&mut merge, repo.config_dir());
    assert!(
        !merge.output().unwrap().status.success(),
        "the merge conflicts"
    );
    let commits = repo.commit_count();
    for args in [vec!["update", &id, "-p", "0"], vec!["create", "Fresh"]] {
        let err = repo.fails(&args, 1);
        assert!(err.contains("resolve the merge in"), "{args:?}: {err}");
    }
    assert_eq!(repo.commit_count(), commits);
    let unmerged = repo.git(&["ls-files", "-u"]);
    assert!(
        !unmerged.trim().is_empty(),
        "the conflict was marked resolved"
    );
    // Reads still work and say what is wrong.
    let out = repo.loom(&["list"]);
    assert!(
        out.stderr.contains("merge-conflict markers"),
        "{}",
        out.stderr
    );
}

/// Promise 8: `loom convert` killed at any point leaves one usable backend with every bead,
/// and finishes cleanly afterwards.
#[test]
fn a_convert_killed_at_any_point_leaves_one_usable_backend() {
    let repo = TestRepo::with_loom("jsonl");
    let mut lines = String::new();
    for i in 0..1500 {
        lines.push_str(&format!(
            "{{\"id\":\"t-{i:04}\",\"title\":\"Bead {i}\",\"status\":\"open\",\"priority\":2,\"issue_type\":\"task\",\"created_at\":\"2025-01-01T00:00:00Z\",\"updated_at\":\"2025-01-01T00:00:00Z\"}}\n"
        ));
    }
    repo.write(".beads/issues.jsonl", &lines);
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-qm", "beads"]);
    let count = || {
        let out = repo.loom(&["list", "--all", "-n", "0", "--json"]);
        assert_eq!(out.code, 0, "unusable after a kill: {}", out.stderr);
        serde_json::from_str::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    let mut to = "yaml";
    let mut kills = 0;
    for i in 0..40u64 {
        let mut child = repo.command(&["convert", "--to", to]).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(2_000 + i * 1_500));
        let killed = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        let _ = child.wait();
        kills += usize::from(killed);
        assert_eq!(count(), 1500, "after kill {i}");
        // Whichever backend is in use, writes work (and clear what the kill left).
        repo.ok(&["update", "t-0001", "-p", "1"]);
        let layout = if repo.path().join(".beads/beads").is_dir() {
            "yaml"
        } else {
            "jsonl"
        };
        to = if layout == "yaml" { "jsonl" } else { "yaml" };
    }
    assert!(
        kills > 5,
        "the kills landed mid-conversion only {kills} times"
    );
    let dir = repo.path().join(".beads");
    let both = dir.join("beads").is_dir() && dir.join("issues.jsonl").is_file();
    assert!(!both, "both backends left behind");
    assert!(
        !dir.join(".loom-convert").exists(),
        "the journal was cleared"
    );
}

/// Promise 8: deeply nested YAML or JSON is rejected quickly (the rest still loads); an
/// unreadable bead file is reported and the others listed; a leading BOM is fine; a FIFO in
/// `.beads/` never blocks a command that holds the lock.
#[test]
fn bad_bead_files_are_reported_never_hang() {
    let repo = TestRepo::with_loom("yaml");
    let good = repo.create("Still listed", &[]);
    let dir = repo.path().join(".beads/beads");
    let deep = format!(
        "id: t-deep\ntitle: x\nmetadata: {}{}\n",
        "[".repeat(200_000),
        "]".repeat(200_000)
    );
    std::fs::write(dir.join("t-deep.yaml"), deep).unwrap();
    std::fs::create_dir(dir.join("t-dir.yaml")).unwrap();
    let bom = "\u{feff}id: t-bom\ntitle: With a BOM\nstatus: open\npriority: 2\nissue_type: task\n";
    std::fs::write(dir.join("t-bom.yaml"), bom).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.join("t-fifo.yaml"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let out = bounded(repo.command(&["list", "--json"]), Duration::from_secs(20));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&good) && out.stdout.contains("t-bom"),
        "{}",
        out.stdout
    );
    for problem in ["t-deep.yaml", "t-dir.yaml", "t-fifo.yaml"] {
        assert!(
            out.stderr.contains(problem),
            "{problem} not reported: {}",
            out.stderr
        );
    }
    // A command holding the lock reads past the FIFO.
    let out = bounded(
        repo.command(&["create", "Written anyway", "-q"]),
        Duration::from_secs(20),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);

    // JSON: nested arrays in one record; a BOM before the first line; a FIFO as the store.
    let repo = TestRepo::with_loom("jsonl");
    let one = repo.create("First", &[]);
    let path = repo.path().join(".beads/issues.jsonl");
    let mut text = String::from("\u{feff}");
    text.push_str(&std::fs::read_to_string(&path).unwrap());
    text.push_str(&format!(
        "{{\"id\":\"t-deep\",\"title\":\"x\",\"metadata\":{}1{}}}\n",
        "[".repeat(200_000),
        "]".repeat(200_000)
    ));
    std::fs::write(&path, text).unwrap();
    let out = bounded(repo.command(&["list", "--json"]), Duration::from_secs(20));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(&one), "{}", out.stdout);
    assert!(
        out.stderr.contains("t-deep") || out.stderr.contains(":2:"),
        "{}",
        out.stderr
    );
    repo.ok(&["update", &one, "-p", "1"]);
    assert!(
        std::fs::read(&path)
            .unwrap()
            .starts_with("\u{feff}".as_bytes()),
        "the BOM is kept"
    );
    std::fs::remove_file(&path).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let out = bounded(
        repo.command(&["create", "Blocked?"]),
        Duration::from_secs(20),
    );
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("FIFO"), "{}", out.stderr);
}

/// Promise 9: escape sequences, OSC, C1 controls and bidi overrides in every bead field reach
/// no terminal through any human command, and commit subjects carry none.
#[test]
fn terminal_output_is_inert() {
    let repo = TestRepo::with_loom("yaml");
    let evil = "T\u{1b}]52;c;cHduZWQ=\u{7}i\u{1b}[2J\u{1b}]0;title\u{7}t\u{9b}31m\u{202e}le\r\u{1}";
    let blocker = repo.create("Blocker", &[]);
    let id = repo.create(
        evil,
        &[
            "-d",
            evil,
            "--design",
            evil,
            "--acceptance",
            evil,
            "--notes",
            evil,
            "-a",
            evil,
            "-l",
            "lab\u{1b}[31mel",
            "--deps",
            &blocker,
        ],
    );
    repo.ok(&["comment", &id, evil]);
    repo.ok(&["update", &id, "--title", &format!("{evil} again")]);
    let commands: Vec<Vec<&str>> = vec![
        vec!["list"],
        vec!["list", "--all"],
        vec!["ready"],
        vec!["blocked"],
        vec!["show", &id],
        vec!["dep", "tree", &id],
        vec!["log", &id],
        vec!["log"],
        vec!["stats"],
        vec!["doctor"],
    ];
    for args in commands {
        let out = repo.loom(&args);
        for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\r', '\u{1}'] {
                assert!(
                    !text.contains(bad),
                    "loom {args:?} wrote {bad:?} to {stream}: {text:?}"
                );
            }
        }
    }
    let shown = repo.ok(&["show", &id]);
    assert!(
        shown.contains('␛') && shown.contains("<U+202E>"),
        "shown visibly: {shown}"
    );
    let subjects = repo.git(&["log", "--format=%s%n%b"]);
    for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\r'] {
        assert!(
            !subjects.contains(bad),
            "a commit message holds {bad:?}: {subjects:?}"
        );
    }
    // With colour forced, Loom's own colours pass and the data's escapes still do not.
    let out = repo
        .command(&["show", &id, "--color", "always"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\u{1b}[1m"), "colour on: {text:?}");
    assert!(
        !text.contains("\u{1b}]") && !text.contains("\u{1b}[2J"),
        "{text:?}"
    );
}

/// Promise 9: what a model says reaches the terminal inert too (`loom agent`, `loom pair`,
/// `loom run` progress).
#[test]
fn model_text_is_inert_on_the_terminal() {
    let (repo, id) = project("review: false\n");
    let server = LlmServer::start();
    let evil = "ok\u{1b}]52;c;cHduZWQ=\u{7} \u{1b}[2J\u{202e}";
    server.push(Reply::text(&[evil]));
    let out = bounded(
        loom(&repo, &server, &["pair", &id, "-m", "hi"]),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("ok␛]52"), "{:?}", out.stdout);
    coder(&server, &id, vec![done(evil)]);
    let out = bounded(
        loom(&repo, &server, &["agent", &id]),
        Duration::from_secs(60),
    );
    let run_out = {
        coder(&server, &id, vec![done(evil)]);
        repo.ok(&["update", &id, "-s", "open"]);
        bounded(loom(&repo, &server, &["run"]), Duration::from_secs(60))
    };
    for o in [&out, &run_out] {
        for text in [&o.stdout, &o.stderr] {
            for bad in ['\u{1b}', '\u{7}', '\u{202e}'] {
                assert!(!text.contains(bad), "{bad:?} in {text:?}");
            }
        }
    }
}

/// Promise 10: a stream that ends in the middle of a line is retried like one cut between
/// events, and the reply arrives whole.
#[test]
fn a_stream_cut_mid_line_is_retried() {
    let (repo, id) = project("review: false\n");
    let server = LlmServer::start();
    server.push(Reply::text(&["Hello", " there", " friend"]).with(Fault::CutMidLine(2)));
    server.push(Reply::text(&["Hello", " there", " friend"]));
    let started = Instant::now();
    let out = bounded(
        loom(&repo, &server, &["pair", &id, "-m", "hi"]),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "Hello there friend");
    assert_eq!(server.chats().len(), 2, "retried once");
    assert!(started.elapsed() < Duration::from_secs(30));
}
