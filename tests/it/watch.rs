//! The live watcher: changes on disk by anyone else become events within a second; Loom's own
//! writes are not echoed.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use loom::event::{Event, EventKind};
use loom::store::{Layout, Store, TxOptions, watch};

use crate::support::TestRepo;

/// Generous bound for one event on a loaded CI machine (the debounce is 150 ms).
const WAIT: Duration = Duration::from_secs(5);

fn store_of(repo: &TestRepo) -> Store {
    let layout = Layout::discover(repo.path()).unwrap();
    Store::new(layout, repo.path().join(".git/loom/beads.lock"))
}

/// Loom's own write through `store` (no commit): bead `id` gets priority 0.
fn loom_sets_priority_0(store: &Store, id: &str) {
    store
        .transact(
            TxOptions::default(),
            |t| {
                t.get_mut(id)?.priority = 0;
                Ok(())
            },
            |_| Ok(()),
        )
        .unwrap();
}

fn next(rx: &mpsc::Receiver<Event>) -> Event {
    rx.recv_timeout(WAIT).expect("no event within the bound")
}

fn external_edit(repo: &TestRepo, rel: &str, from: &str, to: &str) {
    let text = repo.read_string(rel).replace(from, to);
    // An editor's save: write a temp file, rename over.
    let tmp = repo.path().join(format!("{rel}.swp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, repo.path().join(rel)).unwrap();
}

fn run(format: &str) {
    let repo = TestRepo::with_loom(format);
    let id = repo.create("Watch me", &[]);
    let store = store_of(&repo);
    let (tx, rx) = mpsc::channel();
    let _w = watch::watch(&store, move |e| {
        let _ = tx.send(loom::event::Event::from(e));
    })
    .unwrap();

    // Loom's own write through this store…
    loom_sets_priority_0(&store, &id);
    // …then someone else's. The first event must be theirs: ours is not echoed.
    let rel = match format {
        "yaml" => format!(".beads/beads/{id}.yaml"),
        _ => ".beads/issues.jsonl".to_owned(),
    };
    let (from, to) = match format {
        "yaml" => ("title: Watch me", "title: Edited outside"),
        _ => ("\"title\":\"Watch me\"", "\"title\":\"Edited outside\""),
    };
    external_edit(&repo, &rel, from, to);
    match next(&rx).kind {
        EventKind::BeadChanged { bead, changes, .. } => {
            assert_eq!(bead.id, id);
            assert_eq!(bead.title, "Edited outside");
            assert_eq!(changes.len(), 1, "{changes:?}");
            assert_eq!(changes[0].field, "title");
        }
        other => panic!("expected a change, got {other:?}"),
    }

    // Another process's create and a deletion are seen too.
    let other = repo.create("From another process", &[]);
    match next(&rx).kind {
        EventKind::BeadCreated { bead, .. } => assert_eq!(bead.id, other),
        e => panic!("expected a create, got {e:?}"),
    }
    if format == "yaml" {
        std::fs::remove_file(repo.path().join(format!(".beads/beads/{other}.yaml"))).unwrap();
        match next(&rx).kind {
            EventKind::BeadDeleted { id: gone, .. } => assert_eq!(gone, other),
            e => panic!("expected a delete, got {e:?}"),
        }
        // A file broken by an editor is reported, not taken for a deletion.
        repo.write(&rel, "id: [oops\n");
        match next(&rx).kind {
            EventKind::StoreProblem { problem, .. } => {
                assert!(problem.path.ends_with(format!("{id}.yaml")))
            }
            e => panic!("expected a problem, got {e:?}"),
        }
    }
}

#[test]
fn watcher_reports_external_yaml_changes_only() {
    run("yaml");
}

#[test]
fn watcher_reports_external_jsonl_changes_only() {
    run("jsonl");
}

#[test]
fn loom_watch_prints_ndjson_within_a_second() {
    let repo = TestRepo::with_loom("yaml");
    let id = repo.create("Watched", &[]);
    let mut child = repo
        .command(&["watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Ready once it says it is watching.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("Watching"), "{line}");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let _ = tx.send((Instant::now(), l.unwrap()));
        }
    });
    let rel = format!(".beads/beads/{id}.yaml");
    let written = Instant::now();
    external_edit(&repo, &rel, "priority: 2", "priority: 1");
    let (at, json) = rx.recv_timeout(WAIT).expect("no line from loom watch");
    let _ = child.kill();
    let _ = child.wait();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["type"], "bead_changed");
    assert_eq!(v["origin"], "external");
    assert_eq!(v["bead"]["id"], id.as_str());
    assert_eq!(v["changes"][0]["field"], "priority");
    let latency = at.duration_since(written);
    eprintln!("loom watch latency: {latency:?}");
    assert!(latency < Duration::from_secs(1), "took {latency:?}");
}

/// A program that takes no lock puts back the file it read before Loom's write: the watcher of
/// a long-running Loom notices that its change was undone, says so, and applies it again.
#[test]
fn an_undone_change_is_noticed_and_applied_again() {
    for format in ["yaml", "jsonl"] {
        let repo = TestRepo::with_loom(format);
        let id = repo.create("Keep my change", &[]);
        let rel = match format {
            "yaml" => format!(".beads/beads/{id}.yaml"),
            _ => ".beads/issues.jsonl".to_owned(),
        };
        let store = store_of(&repo);
        let restorer = store.clone();
        let (tx, rx) = mpsc::channel();
        let restore: watch::Restore = Box::new(move |lost| {
            restorer
                .transact(
                    TxOptions::default(),
                    |t| loom::store::restore(t, lost),
                    |_| Ok(()),
                )
                .map(|(put_back, _)| {
                    if put_back {
                        watch::Restored::Applied
                    } else {
                        watch::Restored::ChangedSince
                    }
                })
        });
        let _w = watch::watch_restoring(
            &store,
            watch::DEBOUNCE,
            move |e| {
                let _ = tx.send(loom::event::Event::from(e));
            },
            Some(restore),
        )
        .unwrap();
        let stale = repo.read_string(&rel);
        loom_sets_priority_0(&store, &id);
        // Right after Loom's write (the same batch or the next), the stale rename.
        let tmp = repo.path().join(".beads/stale.tmp");
        std::fs::write(&tmp, &stale).unwrap();
        std::fs::rename(&tmp, repo.path().join(&rel)).unwrap();
        let deadline = Instant::now() + WAIT * 2;
        let said = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Event {
                    kind: EventKind::Error { message },
                    ..
                }) => break message,
                Ok(_) => continue,
                Err(_) => panic!("{format}: the undone change was not noticed"),
            }
        };
        assert!(
            said.contains("applied its change again"),
            "{format}: {said}"
        );
        let bead: serde_json::Value = repo.json(&["show", &id]);
        let shown = bead.to_string();
        assert!(
            !shown.contains("\"priority\":2"),
            "{format}: priority 0 again: {shown}"
        );
    }
}

/// The orchestrator's restore leaves git's doings alone: a bead put back by `git reset` (the
/// file as HEAD has it) is the user's history; one put back by a stale writer is applied again.
#[test]
fn restore_tells_a_stale_writer_from_git() {
    use loom::ops::claim::restore;
    use loom::store::{Lost, content_hash};
    let repo = TestRepo::with_loom("yaml");
    let id = repo.create("Mine", &[]);
    let ws = loom::workspace::Workspace::open(&loom::workspace::OpenOptions {
        dir: Some(repo.path().to_path_buf()),
        actor: Some("tester".into()),
        no_commit: false,
    })
    .unwrap();
    let rel = format!(".beads/beads/{id}.yaml");
    let stale_text = repo.read_string(&rel);
    let stale = ws.store.load().unwrap().beads[0].clone();
    let done = ws
        .mutate(loom::git::CommitKind::Updated, TxOptions::default(), |tx| {
            tx.get_mut(&id)?.priority = 0;
            Ok(tx.get(&id)?.cloned())
        })
        .unwrap();
    let after = done.value.unwrap();
    let lost = Lost {
        now: Some(content_hash(&stale)),
        after: after.clone(),
        again: false,
    };
    // A stale writer: the file differs from HEAD.
    repo.write(&rel, &stale_text);
    assert_eq!(restore(&ws, &lost).unwrap(), watch::Restored::Applied);
    assert!(repo.read_string(&rel).contains("priority: 0"));
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    // Git: the last commits (the update, the stale edit recorded, the restore) reset away.
    repo.git(&["reset", "-q", "--hard", "HEAD~3"]);
    let reset = ws.store.load().unwrap().beads[0].clone();
    let lost = Lost {
        now: Some(content_hash(&reset)),
        after,
        again: false,
    };
    assert_eq!(restore(&ws, &lost).unwrap(), watch::Restored::ByGit);
    assert!(!repo.read_string(&rel).contains("priority: 0"));
}

/// A window arms the watcher, reads the beads, shows them, and only then lets the watcher read
/// its own baseline in the background: a change made in between is neither lost nor reported
/// twice, and the watcher hands its complete snapshot back.
#[test]
fn a_watcher_seeded_in_the_background_misses_nothing() {
    let repo = TestRepo::with_loom("jsonl");
    let id = repo.create("Seed me", &[]);
    let store = store_of(&repo);
    let armed = watch::arm(&store).unwrap();
    // Between arming and the baseline: someone edits.
    external_edit(
        &repo,
        ".beads/issues.jsonl",
        "\"title\":\"Seed me\"",
        "\"title\":\"Seeded\"",
    );
    let (tx, rx) = mpsc::channel();
    let (snap_tx, snap_rx) = mpsc::channel();
    let _w = armed
        .start(
            watch::DEBOUNCE,
            move |e| {
                let _ = tx.send(Event::from(e));
            },
            None,
            watch::Seed::Background(Box::new(move |snap| {
                let _ = snap_tx.send(snap);
            })),
        )
        .unwrap();
    let snap = snap_rx.recv_timeout(WAIT).expect("the baseline snapshot");
    assert_eq!(snap.beads[0].title, "Seeded", "read after the edit");
    external_edit(
        &repo,
        ".beads/issues.jsonl",
        "\"title\":\"Seeded\"",
        "\"title\":\"Seeded again\"",
    );
    // The edit before the baseline is no news; the one after is reported.
    let e = next(&rx);
    match &e.kind {
        EventKind::BeadChanged { bead, .. } => {
            assert_eq!(
                (bead.id.as_str(), bead.title.as_str()),
                (id.as_str(), "Seeded again")
            )
        }
        other => panic!("expected the later change, got {other:?}"),
    }
}
