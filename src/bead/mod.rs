//! The bead data model: records, ids, validation, and the dependency graph with bd's ready and
//! blocked rules. Pure: no I/O, no clock except where a caller passes `now`.

pub(crate) mod change;
pub mod graph;
pub(crate) mod id;
pub mod json;
pub mod keys;
mod model;
pub(crate) mod time;

pub use model::{Bead, Comment, Dependency, IndexBead};

/// A hash map with a fast (non-DoS-resistant) hasher, for ids read from local files.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// A hash set with a fast hasher.
pub type FastSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;
pub use time::Timestamp;

/// Built-in statuses. The set is open: any non-empty string loads and displays.
pub mod status {
    pub const OPEN: &str = "open";
    pub const IN_PROGRESS: &str = "in_progress";
    pub const BLOCKED: &str = "blocked";
    pub const DEFERRED: &str = "deferred";
    pub const CLOSED: &str = "closed";
    pub const PINNED: &str = "pinned";
    pub const HOOKED: &str = "hooked";
    /// Deleted: hidden, never a blocker, kept on write.
    pub const TOMBSTONE: &str = "tombstone";

    pub const BUILTIN: &[&str] = &[
        OPEN,
        IN_PROGRESS,
        BLOCKED,
        DEFERRED,
        CLOSED,
        PINNED,
        HOOKED,
        TOMBSTONE,
    ];

    /// A dependency on a bead in this status no longer holds anything up.
    pub fn resolves_blockers(status: &str) -> bool {
        matches!(status, CLOSED | PINNED | TOMBSTONE)
    }
}

/// Built-in issue types. The set is open.
pub mod issue_type {
    pub const BUG: &str = "bug";
    pub const FEATURE: &str = "feature";
    pub const TASK: &str = "task";
    pub const EPIC: &str = "epic";
    pub const CHORE: &str = "chore";
    pub const DECISION: &str = "decision";

    pub const BUILTIN: &[&str] = &[
        BUG,
        FEATURE,
        TASK,
        EPIC,
        CHORE,
        DECISION,
        "message",
        "molecule",
        "gate",
        "agent",
        "spike",
        "story",
        "milestone",
    ];

    /// Types that are never ready work (bd's infrastructure types).
    pub const NOT_WORK: &[&str] = &[
        "merge-request",
        "gate",
        "molecule",
        "message",
        "agent",
        "role",
        "rig",
    ];
}

/// Built-in dependency types. The set is open; only these carry meaning.
pub mod dep_type {
    pub const BLOCKS: &str = "blocks";
    pub const CONDITIONAL_BLOCKS: &str = "conditional-blocks";
    pub const PARENT_CHILD: &str = "parent-child";
    pub const WAITS_FOR: &str = "waits-for";
    pub const RELATED: &str = "related";
    pub const RELATES_TO: &str = "relates-to";
    pub const DISCOVERED_FROM: &str = "discovered-from";
    pub const TRACKS: &str = "tracks";

    pub const BUILTIN: &[&str] = &[
        BLOCKS,
        CONDITIONAL_BLOCKS,
        PARENT_CHILD,
        WAITS_FOR,
        RELATED,
        RELATES_TO,
        DISCOVERED_FROM,
        TRACKS,
        "replies-to",
        "duplicates",
        "supersedes",
    ];

    /// Edges whose target holds the source back directly (`blocks` and friends).
    pub fn blocks_directly(t: &str) -> bool {
        matches!(t, BLOCKS | CONDITIONAL_BLOCKS)
    }

    /// Edges that can form a blocking cycle (the source can never become ready).
    pub fn forms_cycle(t: &str) -> bool {
        matches!(t, BLOCKS | CONDITIONAL_BLOCKS | PARENT_CHILD)
    }
}

/// Moves `bead` to `new_status`, keeping bd's invariants: `closed_at` is set exactly while the
/// status is `closed` (with `reason` as `close_reason`), and cleared with the reason on leaving.
pub fn set_status(bead: &mut Bead, new_status: &str, now: &Timestamp, reason: Option<&str>) {
    if new_status == status::CLOSED {
        if bead.status != status::CLOSED || bead.closed_at.is_none() {
            bead.closed_at = Some(now.clone());
        }
        if let Some(r) = reason {
            bead.close_reason = Some(r.to_owned());
        }
    } else {
        bead.closed_at = None;
        bead.close_reason = None;
    }
    bead.status = new_status.to_owned();
}

/// The longest title Loom writes, in characters.
pub const MAX_TITLE_CHARS: usize = 500;

/// Parses a priority the way bd does: `2`, `P2`, `p2` (0 = critical … 4 = backlog).
pub fn parse_priority(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let digits = t.strip_prefix(['P', 'p']).unwrap_or(t);
    match digits.parse::<i64>() {
        Ok(p) if (0..=4).contains(&p) => Ok(p),
        _ => Err(format!(
            "invalid priority {text:?}: expected 0-4 or P0-P4 (0 = critical, 4 = backlog)"
        )),
    }
}

/// A rule a bead breaks; Loom refuses to write it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub reason: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// The rules that bind what Loom writes (not what it reads: real files break them).
pub fn validate(bead: &Bead) -> Result<(), Vec<Invalid>> {
    let mut problems = Vec::new();
    let mut bad = |field, reason: String| problems.push(Invalid { field, reason });
    if bead.id.trim().is_empty() {
        bad("id", "must not be empty".into());
    }
    let title_chars = bead.title.chars().count();
    if bead.title.trim().is_empty() {
        bad("title", "must not be empty".into());
    } else if title_chars > MAX_TITLE_CHARS {
        bad(
            "title",
            format!("is {title_chars} characters long; the limit is {MAX_TITLE_CHARS}"),
        );
    }
    if !(0..=4).contains(&bead.priority) {
        bad(
            "priority",
            format!("is {}; it must be 0-4 (P0-P4)", bead.priority),
        );
    }
    if bead.status.trim().is_empty() {
        bad("status", "must not be empty".into());
    }
    if bead.issue_type.trim().is_empty() {
        bad("issue_type", "must not be empty".into());
    }
    let closed = bead.status == status::CLOSED;
    match (closed, bead.closed_at.is_some()) {
        (true, false) => bad("closed_at", "must be set when status is closed".into()),
        (false, true) => bad(
            "closed_at",
            format!("must be empty when status is {}", bead.status),
        ),
        _ => {}
    }
    for t in [
        ("created_at", &bead.created_at),
        ("updated_at", &bead.updated_at),
    ] {
        match t.1 {
            None => bad(t.0, "must be set".into()),
            Some(ts) if ts.instant().is_none() => bad(
                t.0,
                format!("{:?} is not an RFC 3339 timestamp", ts.as_str()),
            ),
            Some(_) => {}
        }
    }
    for dep in &bead.dependencies {
        if dep.depends_on_id.trim().is_empty() {
            bad("dependencies", "a dependency has an empty target".into());
        }
        if dep.depends_on_id == bead.id {
            bad(
                "dependencies",
                format!("{} cannot depend on itself", bead.id),
            );
        }
        if dep.dep_type.trim().is_empty() {
            bad("dependencies", "a dependency has an empty type".into());
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Warnings about a bead as read: things that load fine but break the write rules.
pub fn lint(bead: &Bead) -> Vec<Invalid> {
    let mut out = validate(bead).err().unwrap_or_default();
    // Timestamps that are missing are bd's business when reading; only flag unparsable ones.
    out.retain(|p| p.reason != "must be set");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Bead {
        Bead {
            id: "bd-1".into(),
            title: "Fix it".into(),
            status: status::OPEN.into(),
            issue_type: issue_type::TASK.into(),
            priority: 2,
            created_at: Some(Timestamp::parse("2025-01-01T00:00:00Z")),
            updated_at: Some(Timestamp::parse("2025-01-01T00:00:00Z")),
            ..Bead::default()
        }
    }

    #[test]
    fn priority_accepts_bd_forms() {
        assert_eq!(parse_priority("2"), Ok(2));
        assert_eq!(parse_priority("P2"), Ok(2));
        assert_eq!(parse_priority("p0"), Ok(0));
        assert_eq!(parse_priority(" 4 "), Ok(4));
        for bad in ["9", "P5", "-1", "high", "", "2x", "P"] {
            let err = parse_priority(bad).unwrap_err();
            assert!(err.contains("expected 0-4"), "{bad}: {err}");
        }
    }

    #[test]
    fn validation_rules() {
        assert_eq!(validate(&good()), Ok(()));
        let fields = |b: Bead| -> Vec<&'static str> {
            validate(&b)
                .unwrap_err()
                .into_iter()
                .map(|i| i.field)
                .collect()
        };
        assert_eq!(
            fields(Bead {
                title: " ".into(),
                ..good()
            }),
            ["title"]
        );
        assert_eq!(
            fields(Bead {
                title: "x".repeat(501),
                ..good()
            }),
            ["title"]
        );
        assert_eq!(
            validate(&Bead {
                title: "é".repeat(500),
                ..good()
            }),
            Ok(())
        );
        assert_eq!(
            fields(Bead {
                priority: 9,
                ..good()
            }),
            ["priority"]
        );
        assert_eq!(
            fields(Bead {
                status: status::CLOSED.into(),
                ..good()
            }),
            ["closed_at"]
        );
        assert_eq!(
            fields(Bead {
                closed_at: Some(Timestamp::now()),
                ..good()
            }),
            ["closed_at"]
        );
    }
}
