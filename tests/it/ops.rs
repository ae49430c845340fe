//! The operations layer as every front end uses it: one typed change per edit, its commit
//! event in the trailer, applied to real beads in a real repository.

use loom::ops::change::{self, Change, Patch};

use crate::support::TestRepo;
use crate::tui::workspace;

fn last_event(repo: &TestRepo) -> String {
    repo.git(&["log", "-1", "--format=%(trailers:key=Loom-Event,valueonly)"])
        .trim()
        .to_owned()
}

#[test]
fn each_change_names_its_commit_event() {
    let repo = TestRepo::with_loom("yaml");
    let a = repo.create("A", &[]);
    let b = repo.create("B", &[]);
    let ws = workspace(&repo);
    let ids = std::slice::from_ref(&a);
    let cases = [
        (
            Change::Label {
                add: vec!["ui".into()],
                remove: vec![],
            },
            "labeled",
        ),
        (
            Change::Label {
                add: vec![],
                remove: vec!["ui".into()],
            },
            "unlabeled",
        ),
        (Change::blocked_by(b.clone()), "dep_added"),
        (
            Change::Undepend {
                on: b.clone(),
                dep_type: None,
            },
            "dep_removed",
        ),
        (
            Change::Comment {
                author: "tester".into(),
                text: "looks fine".into(),
            },
            "commented",
        ),
        (
            Change::Close {
                reason: "done".into(),
                force: false,
            },
            "closed",
        ),
        (Change::Reopen { reason: None }, "reopened"),
    ];
    for (c, event) in cases {
        assert_eq!(c.commit_kind().as_str(), event);
        change::edit(&ws, ids, &c).unwrap();
        assert_eq!(last_event(&repo), event, "{c:?}");
    }
}

#[test]
fn a_patch_sets_only_what_it_names_and_blockers_exactly() {
    let repo = TestRepo::with_loom("yaml");
    let a = repo.create("A", &["-d", "keep me", "-l", "x"]);
    let b = repo.create("B", &[]);
    let c = repo.create("C", &[]);
    let ws = workspace(&repo);
    let ids = std::slice::from_ref(&a);
    let set = |p: Patch| change::edit(&ws, ids, &Change::Update(Box::new(p))).unwrap();
    set(Patch {
        blockers: Some(vec![b.clone()]),
        priority: Some(0),
        ..Patch::default()
    });
    set(Patch {
        blockers: Some(vec![c.clone()]),
        append_notes: Some("second thought".into()),
        ..Patch::default()
    });
    let v = repo.json(&["show", &a]);
    let bead = if v.is_array() { &v[0] } else { &v };
    assert_eq!(bead["priority"], 0);
    assert_eq!(bead["description"], "keep me");
    assert_eq!(bead["labels"], serde_json::json!(["x"]));
    assert_eq!(bead["notes"], "second thought");
    let on: Vec<&str> = bead["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["depends_on_id"].as_str().unwrap())
        .collect();
    assert_eq!(on, [c.as_str()], "the blockers are exactly the last set");
}

#[test]
fn an_agent_run_is_recorded_and_counted_in_loom_metadata() {
    let repo = TestRepo::with_loom("yaml");
    let a = repo.create("A", &[]);
    let ws = workspace(&repo);
    for n in 1..=2 {
        let mut record = serde_json::Map::new();
        record.insert("terminal".into(), "done".into());
        change::edit_as(&ws, &a, "coder", &Change::AgentRun { record }).unwrap();
        let v = repo.json(&["show", &a]);
        let bead = if v.is_array() { &v[0] } else { &v };
        assert_eq!(bead["metadata"]["loom"]["runs"], n);
        assert_eq!(bead["metadata"]["loom"]["terminal"], "done");
        assert_eq!(last_event(&repo), "agent_run");
    }
}

#[test]
fn undo_puts_beads_back_but_never_over_later_work() {
    let repo = TestRepo::with_loom("yaml");
    let a = repo.create("A", &["-p", "2"]);
    let ws = workspace(&repo);
    let ids = std::slice::from_ref(&a);
    let set = |p: i64| {
        let patch = Patch {
            priority: Some(p),
            ..Patch::default()
        };
        change::edit(&ws, ids, &Change::Update(Box::new(patch))).unwrap()
    };
    let first = set(0);
    let undone = loom::ops::undo::undo(&ws, &first.applied.changes).unwrap();
    assert_eq!(undone.value, [a.clone()]);
    assert_eq!(last_event(&repo), "undone");
    let v = repo.json(&["show", &a]);
    let bead = if v.is_array() { &v[0] } else { &v };
    assert_eq!(bead["priority"], 2, "back as it was");
    // A change someone else made after: not thrown away.
    let second = set(1);
    repo.ok(&["update", &a, "-p", "3"]);
    let err = loom::ops::undo::undo(&ws, &second.applied.changes).unwrap_err();
    assert!(err.to_string().contains("changed again since"), "{err}");
    let v = repo.json(&["show", &a]);
    let bead = if v.is_array() { &v[0] } else { &v };
    assert_eq!(bead["priority"], 3);
}
