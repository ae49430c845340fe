//! Concurrent writers: two `loom` processes and a third writer that rewrites the file the way
//! bd does (temp file + rename, re-checking the file just before its rename) each apply 200
//! changes at once. The file must parse, git must hold a commit for each Loom change, no
//! foreign record may be lost, and no Loom change either — except where the foreign writer,
//! which takes no lock, stalled between its check and its rename for longer than Loom's whole
//! write (see `SLOW_WINDOW`): such a writer clobbers whatever landed meanwhile, and no other
//! program can stop it.

use std::collections::HashSet;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::TestRepo;

const CHANGES: usize = 200;
const BEADS: usize = 10;

/// A foreign writer that takes no lock can clobber a Loom change only if the time between its
/// last check and its rename spans Loom's whole write, git commit and re-verification — far
/// longer than this (the commit alone runs several `git` processes). Windows this long happen only when the scheduler stalls the writer (a
/// loaded machine); each can cost one Loom change, and nothing Loom does can prevent that.
const SLOW_WINDOW: Duration = Duration::from_millis(2);

fn record(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","title":"written by the foreign writer","status":"open","priority":3,"issue_type":"task","created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z"}}"#
    )
}

/// A careful foreign writer modelled on bd: its JSONL is an export of its own database, so it
/// keeps its own records (`mine`) and merges in whatever others wrote since it last read. It
/// writes a temp file, re-checks just before renaming that the file is still what it read, and
/// checks afterwards that its records are there. Returns how often it found one of its records
/// gone when it re-read the file (a sign that someone overwrote it), and how many of its
/// check-then-rename windows were slow (see [`SLOW_WINDOW`]).
fn foreign_write(path: &Path, mine: &[String]) -> (usize, usize) {
    let tmp = path.with_file_name(".bd-tmp");
    let ours = |line: &[u8]| line.starts_with(br#"{"id":"f-"#);
    let (mut healed, mut slow) = (0, 0);
    loop {
        let before = std::fs::read(path).unwrap();
        let theirs: Vec<&[u8]> = before
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty() && !ours(l))
            .collect();
        let present = before.split(|&b| b == b'\n').filter(|l| ours(l)).count();
        if present < mine.len() - 1 {
            healed += 1;
        }
        let mut after = Vec::with_capacity(before.len() + 256);
        for line in theirs {
            after.extend_from_slice(line);
            after.push(b'\n');
        }
        for r in mine {
            after.extend_from_slice(r.as_bytes());
            after.push(b'\n');
        }
        std::fs::write(&tmp, &after).unwrap();
        std::fs::File::open(&tmp).unwrap().sync_all().unwrap();
        let checked = Instant::now();
        if std::fs::read(path).unwrap() != before {
            continue; // someone wrote meanwhile: start over on their version
        }
        std::fs::rename(&tmp, path).unwrap();
        if checked.elapsed() >= SLOW_WINDOW {
            slow += 1;
        }
        let now = std::fs::read(path).unwrap();
        let text = String::from_utf8_lossy(&now);
        if mine.iter().all(|r| text.contains(r.as_str())) {
            return (healed, slow);
        }
    }
}

fn loom_labels(repo: &TestRepo, tag: &str, beads: &[String]) {
    for i in 0..CHANGES {
        let bead = &beads[i % beads.len()];
        let label = format!("{tag}{i}");
        let out = repo.loom(&["label", "add", bead, &label, "-q"]);
        assert_eq!(out.code, 0, "loom {tag} change {i} failed: {}", out.stderr);
    }
}

#[test]
fn two_looms_and_a_foreign_writer_lose_nothing() {
    let repo = TestRepo::with_loom("jsonl");
    let beads: Vec<String> = (0..BEADS)
        .map(|i| repo.create(&format!("bead {i}"), &[]))
        .collect();
    let base_commits = repo.commit_count();
    let path = repo.path().join(".beads/issues.jsonl");

    let slow = thread::scope(|s| {
        s.spawn(|| loom_labels(&repo, "a", &beads));
        s.spawn(|| loom_labels(&repo, "b", &beads));
        let foreign = s.spawn(|| {
            let mut mine = Vec::new();
            let (mut healed, mut slow) = (0, 0);
            for i in 0..CHANGES {
                mine.push(record(&format!("f-{i}")));
                let (h, w) = foreign_write(&path, &mine);
                healed += h;
                slow += w;
            }
            // Loom swaps a displaced file back, so this stays at or near zero; a plain rename
            // instead would destroy the foreign writer's records on most conflicts.
            eprintln!("foreign writer re-added lost records {healed} times; {slow} slow windows");
            slow
        });
        foreign.join().unwrap()
    });

    // The file parses completely.
    let doctor = repo.json(&["doctor"]);
    let errors: Vec<_> = doctor["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["severity"] == "error")
        .collect();
    assert!(errors.is_empty(), "unreadable records: {errors:?}");

    // Every change is present.
    let all = repo.json(&["list", "--all", "-n", "0"]);
    let mut labels: HashSet<String> = HashSet::new();
    let mut ids: HashSet<String> = HashSet::new();
    for b in all.as_array().unwrap() {
        ids.insert(b["id"].as_str().unwrap().to_owned());
        for l in b["labels"].as_array().into_iter().flatten() {
            labels.insert(l.as_str().unwrap().to_owned());
        }
    }
    // Loom changes: none lost, unless the foreign writer stalled between its check and its
    // rename (then at most one per stall; see SLOW_WINDOW).
    let lost: Vec<String> = (0..CHANGES)
        .flat_map(|i| [format!("a{i}"), format!("b{i}")])
        .filter(|l| !labels.contains(l))
        .collect();
    assert!(
        lost.len() <= slow,
        "Loom changes lost: {lost:?}, with only {slow} slow foreign windows"
    );
    if !lost.is_empty() {
        eprintln!("Loom changes clobbered during {slow} stalled foreign writes: {lost:?}");
    }
    for i in 0..CHANGES {
        if !ids.contains(&format!("f-{i}")) {
            let needle = format!(r#""id":"f-{i}""#);
            let trail = repo.git(&[
                "log",
                "--format=%h %s",
                "-S",
                &needle,
                "--",
                ".beads/issues.jsonl",
            ]);
            panic!("foreign change {i} lost; commits adding/removing it:\n{trail}");
        }
    }

    // A commit for each Loom change. (A change that a foreign writer clobbers after Loom
    // committed it is re-applied and committed again, so there can be more.)
    let subjects = repo.git(&["log", "--format=%s"]);
    let committed: HashSet<&str> = subjects
        .lines()
        .filter_map(|s| s.split("+label ").nth(1))
        .collect();
    for i in 0..CHANGES {
        for tag in ["a", "b"] {
            let label = format!("{tag}{i}");
            assert!(committed.contains(label.as_str()), "no commit for {label}");
        }
    }
    assert!(repo.commit_count() >= base_commits + 2 * CHANGES);
}
