//! Ready/blocked parity with bd: one table row per rule, plus the three sort orders and a check
//! against a real bd export.

use loom::bead::graph::{Direction, Graph, ReadyFilter, SortPolicy};
use loom::bead::{Bead, Dependency, Timestamp};

fn now() -> jiff::Timestamp {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

fn bead(id: &str) -> Bead {
    Bead {
        id: id.into(),
        title: format!("title of {id}"),
        status: "open".into(),
        issue_type: "task".into(),
        priority: 2,
        created_at: Some(Timestamp::parse("2026-01-01T00:00:00Z")),
        updated_at: Some(Timestamp::parse("2026-01-01T00:00:00Z")),
        ..Bead::default()
    }
}

fn dep(from: &str, to: &str, kind: &str) -> Dependency {
    Dependency {
        issue_id: from.into(),
        depends_on_id: to.into(),
        dep_type: kind.into(),
        ..Dependency::default()
    }
}

fn with_dep(mut b: Bead, to: &str, kind: &str) -> Bead {
    let d = dep(&b.id, to, kind);
    b.dependencies.push(d);
    b
}

fn with_status(mut b: Bead, status: &str) -> Bead {
    b.status = status.into();
    b
}

fn ready_ids(beads: &[Bead]) -> Vec<String> {
    Graph::new(beads)
        .ready(&ReadyFilter::default(), SortPolicy::Priority, now())
        .into_iter()
        .map(|b| b.id.clone())
        .collect()
}

fn blocked_ids(beads: &[Bead]) -> Vec<String> {
    Graph::new(beads)
        .blocked()
        .into_iter()
        .map(|b| b.bead.id.clone())
        .collect()
}

#[test]
fn each_dependency_type_against_each_target_status() {
    let statuses = [
        "open",
        "in_progress",
        "blocked",
        "deferred",
        "closed",
        "pinned",
        "hooked",
        "tombstone",
        "custom-review",
    ];
    let types = [
        ("blocks", true),
        ("conditional-blocks", true),
        ("related", false),
        ("relates-to", false),
        ("discovered-from", false),
        ("tracks", false),
        ("duplicates", false),
        ("some-custom-type", false),
    ];
    for (kind, blocking) in types {
        for target_status in statuses {
            let beads = vec![
                with_dep(bead("t-a"), "t-b", kind),
                with_status(bead("t-b"), target_status),
            ];
            let resolved = matches!(target_status, "closed" | "pinned" | "tombstone");
            let expect_blocked = blocking && !resolved;
            let ready = ready_ids(&beads).contains(&"t-a".to_string());
            assert_eq!(
                ready, !expect_blocked,
                "a --{kind}--> b({target_status}): ready should be {}",
                !expect_blocked
            );
            assert_eq!(
                blocked_ids(&beads).contains(&"t-a".to_string()),
                expect_blocked,
                "a --{kind}--> b({target_status}) in blocked list"
            );
        }
    }
}

#[test]
fn missing_targets_never_block() {
    let beads = vec![with_dep(bead("t-a"), "t-gone", "blocks")];
    assert_eq!(ready_ids(&beads), ["t-a"]);
    assert!(blocked_ids(&beads).is_empty());
}

#[test]
fn parent_blocking_propagates_several_levels_down_but_not_up() {
    // root is blocked by an open blocker; child, grandchild, great-grandchild inherit it.
    let beads = vec![
        bead("t-blocker"),
        with_dep(bead("t-root"), "t-blocker", "blocks"),
        with_dep(bead("t-root.1"), "t-root", "parent-child"),
        with_dep(bead("t-root.1.1"), "t-root.1", "parent-child"),
        with_dep(bead("t-root.1.1.1"), "t-root.1.1", "parent-child"),
        // A closed child does not pass the block on.
        with_status(
            with_dep(bead("t-root.2"), "t-root", "parent-child"),
            "closed",
        ),
        with_dep(bead("t-root.2.1"), "t-root.2", "parent-child"),
    ];
    assert_eq!(ready_ids(&beads), ["t-blocker", "t-root.2.1"]);
    let blocked = Graph::new(&beads).blocked();
    let by: Vec<(String, Vec<String>)> = blocked
        .iter()
        .map(|b| {
            (
                b.bead.id.clone(),
                b.blocked_by.iter().map(|s| s.to_string()).collect(),
            )
        })
        .collect();
    assert!(by.contains(&("t-root".into(), vec!["t-blocker".into()])));
    assert!(by.contains(&("t-root.1".into(), vec!["t-root".into()])));
    assert!(by.contains(&("t-root.1.1.1".into(), vec!["t-root.1.1".into()])));
    assert_eq!(by.len(), 4);

    // Children never block parents: an open child leaves its parent ready.
    let beads = vec![
        bead("t-epic"),
        with_dep(bead("t-epic.1"), "t-epic", "parent-child"),
    ];
    assert_eq!(ready_ids(&beads), ["t-epic", "t-epic.1"]);
}

#[test]
fn unblocked_when_the_blocker_closes() {
    let mut beads = vec![with_dep(bead("t-a"), "t-b", "blocks"), bead("t-b")];
    assert_eq!(ready_ids(&beads), ["t-b"]);
    beads[1].status = "closed".into();
    beads[1].closed_at = Some(Timestamp::now());
    assert_eq!(ready_ids(&beads), ["t-a"]);
}

#[test]
fn waits_for_holds_while_the_spawner_has_open_children() {
    let spawner = bead("t-s");
    let child = with_dep(bead("t-s.1"), "t-s", "parent-child");
    let waiter = with_dep(bead("t-w"), "t-s", "waits-for");
    let beads = vec![spawner.clone(), child.clone(), waiter.clone()];
    assert!(!ready_ids(&beads).contains(&"t-w".to_string()));
    let beads = vec![
        spawner.clone(),
        with_status(child, "closed"),
        waiter.clone(),
    ];
    assert!(ready_ids(&beads).contains(&"t-w".to_string()));
    // No children: nothing to wait for.
    let beads = vec![spawner, waiter];
    assert!(ready_ids(&beads).contains(&"t-w".to_string()));
}

#[test]
fn only_open_status_is_ready() {
    for s in [
        "in_progress",
        "blocked",
        "deferred",
        "closed",
        "pinned",
        "hooked",
        "tombstone",
        "custom",
    ] {
        assert!(
            ready_ids(&[with_status(bead("t-a"), s)]).is_empty(),
            "{s} must not be ready"
        );
    }
    assert_eq!(ready_ids(&[bead("t-a")]), ["t-a"]);
}

#[test]
fn deferred_ephemeral_pinned_and_excluded_types() {
    let mut deferred = bead("t-def");
    deferred.defer_until = Some(Timestamp::parse("2026-07-01T00:00:00Z"));
    let mut past_defer = bead("t-past");
    past_defer.defer_until = Some(Timestamp::parse("2026-05-01T00:00:00Z"));
    let child_of_deferred = with_dep(bead("t-def.1"), "t-def", "parent-child");
    let mut ephemeral = bead("t-eph");
    ephemeral.ephemeral = Some(true);
    let mut pinned_flag = bead("t-pin");
    pinned_flag.pinned = Some(true);
    let mut beads = vec![
        deferred,
        past_defer,
        child_of_deferred,
        ephemeral,
        pinned_flag,
    ];
    for t in [
        "merge-request",
        "gate",
        "molecule",
        "message",
        "agent",
        "role",
        "rig",
    ] {
        let mut b = bead(&format!("t-{t}"));
        b.issue_type = t.into();
        beads.push(b);
    }
    for t in ["bug", "feature", "epic", "chore", "decision", "convoy"] {
        let mut b = bead(&format!("t-{t}"));
        b.issue_type = t.into();
        beads.push(b);
    }
    let mut got = ready_ids(&beads);
    got.sort();
    assert_eq!(
        got,
        [
            "t-bug",
            "t-chore",
            "t-convoy",
            "t-decision",
            "t-epic",
            "t-feature",
            "t-past"
        ]
    );

    let g = Graph::new(&beads);
    let include = ReadyFilter {
        include_deferred: true,
        include_ephemeral: true,
        ..ReadyFilter::default()
    };
    let ids: Vec<&str> = g
        .ready(&include, SortPolicy::Priority, now())
        .iter()
        .map(|b| b.id.as_str())
        .collect();
    assert!(ids.contains(&"t-def") && ids.contains(&"t-def.1") && ids.contains(&"t-eph"));
    // An explicit type filter lifts the exclusion.
    let gates = ReadyFilter {
        issue_type: Some("gate".into()),
        ..ReadyFilter::default()
    };
    let ids: Vec<&str> = g
        .ready(&gates, SortPolicy::Priority, now())
        .iter()
        .map(|b| b.id.as_str())
        .collect();
    assert_eq!(ids, ["t-gate"]);
}

fn at(id: &str, priority: i64, created: &str) -> Bead {
    let mut b = bead(id);
    b.priority = priority;
    b.created_at = Some(Timestamp::parse(created));
    b
}

#[test]
fn three_sort_orders() {
    // now = 2026-06-01T12:00Z; "recent" = within 48 hours.
    let beads = vec![
        at("t-old-p0", 0, "2026-01-01T00:00:00Z"),
        at("t-old-p3", 3, "2025-12-01T00:00:00Z"),
        at("t-new-p2", 2, "2026-06-01T10:00:00Z"),
        at("t-new-p1", 1, "2026-05-31T10:00:00Z"),
        at("t-new-p1b", 1, "2026-05-31T10:00:00Z"),
        at("t-mid-p1", 1, "2026-05-20T00:00:00Z"),
    ];
    let g = Graph::new(&beads);
    let order = |p| -> Vec<&str> {
        g.ready(&ReadyFilter::default(), p, now())
            .iter()
            .map(|b| b.id.as_str())
            .collect()
    };
    assert_eq!(
        order(SortPolicy::Priority),
        [
            "t-old-p0",
            "t-new-p1",
            "t-new-p1b",
            "t-mid-p1",
            "t-new-p2",
            "t-old-p3"
        ]
    );
    assert_eq!(
        order(SortPolicy::Oldest),
        [
            "t-old-p3",
            "t-old-p0",
            "t-mid-p1",
            "t-new-p1",
            "t-new-p1b",
            "t-new-p2"
        ]
    );
    assert_eq!(
        order(SortPolicy::Hybrid),
        [
            "t-new-p1",
            "t-new-p1b",
            "t-new-p2",
            "t-old-p3",
            "t-old-p0",
            "t-mid-p1"
        ]
    );
}

#[test]
fn filters() {
    let mut a = bead("t-a");
    a.assignee = Some("ann".into());
    a.labels = vec!["ui".into(), "fast".into()];
    let mut b = bead("t-b");
    b.priority = 1;
    b.labels = vec!["ui".into()];
    let beads = vec![a, b];
    let g = Graph::new(&beads);
    let run = |f: ReadyFilter| -> Vec<String> {
        g.ready(&f, SortPolicy::Priority, now())
            .iter()
            .map(|b| b.id.clone())
            .collect()
    };
    assert_eq!(
        run(ReadyFilter {
            assignee: Some("ann".into()),
            ..Default::default()
        }),
        ["t-a"]
    );
    assert_eq!(
        run(ReadyFilter {
            unassigned: true,
            ..Default::default()
        }),
        ["t-b"]
    );
    assert_eq!(
        run(ReadyFilter {
            priority: Some(1),
            ..Default::default()
        }),
        ["t-b"]
    );
    assert_eq!(
        run(ReadyFilter {
            labels: vec!["ui".into(), "fast".into()],
            ..Default::default()
        }),
        ["t-a"]
    );
    assert_eq!(
        run(ReadyFilter {
            labels_any: vec!["fast".into(), "zzz".into()],
            ..Default::default()
        }),
        ["t-a"]
    );
}

#[test]
fn cycles_and_trees() {
    let beads = vec![
        with_dep(bead("t-a"), "t-b", "blocks"),
        with_dep(bead("t-b"), "t-c", "blocks"),
        with_dep(bead("t-c"), "t-d", "related"),
        bead("t-d"),
    ];
    let g = Graph::new(&beads);
    assert_eq!(
        g.cycle_if_added("t-c", "t-a", "blocks"),
        Some(vec!["t-c".into(), "t-a".into(), "t-b".into(), "t-c".into()])
    );
    assert_eq!(g.cycle_if_added("t-c", "t-a", "related"), None);
    assert_eq!(g.cycle_if_added("t-d", "t-a", "blocks"), None);
    assert!(g.cycle_if_added("t-a", "t-a", "related").is_some());

    let tree: Vec<(&str, usize, &str)> = g
        .tree("t-a", Direction::Down, 50)
        .iter()
        .map(|n| (n.bead.id.as_str(), n.depth, n.parent_id))
        .collect();
    assert_eq!(
        tree,
        [
            ("t-a", 0, ""),
            ("t-b", 1, "t-a"),
            ("t-c", 2, "t-b"),
            ("t-d", 3, "t-c")
        ]
    );
    assert_eq!(g.tree("t-a", Direction::Down, 2).len(), 2);
    let up: Vec<&str> = g
        .tree("t-d", Direction::Up, 50)
        .iter()
        .map(|n| n.bead.id.as_str())
        .collect();
    assert_eq!(up, ["t-d", "t-c", "t-b", "t-a"]);
}

/// The ready list bd computes on the shared real export (bd v0.57 era), in priority order.
#[test]
fn matches_bd_on_real_export() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/beads/issues.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipping: {} not found", path.display());
        return;
    };
    let beads: Vec<Bead> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let g = Graph::new(&beads);
    let ready: Vec<&str> = g
        .ready(
            &ReadyFilter::default(),
            SortPolicy::Priority,
            jiff::Timestamp::now(),
        )
        .iter()
        .map(|b| b.id.as_str())
        .collect();
    assert_eq!(
        ready,
        [
            "offlinebrew-3d0",
            "offlinebrew-3d0.1",
            "aap-4ar",
            "bd-abc12",
            "bd-xyz99",
            "cr-xyz99",
            "hq-abc12",
            "hq-cv-d46qe",
            "hq-cv-ivmue",
            "bd-1lc",
            "bd-019",
            "bd-o4c",
            "bd-17p"
        ]
    );
    assert_eq!(g.blocked().len(), 238);
}
