//! The kinds of change Loom records in `Loom-Event:` trailers: one closed set, so a commit's
//! event is never a free string and `loom log` can say what each one means.

use std::fmt;

/// What a Loom commit records (the `Loom-Event:` trailer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommitKind {
    /// `loom init` made the store.
    Init,
    Created,
    Updated,
    Closed,
    Reopened,
    Deleted,
    DepAdded,
    DepRemoved,
    Labeled,
    Unlabeled,
    Commented,
    /// `update --claim`, or the orchestrator taking a bead.
    Claimed,
    /// The orchestrator gave a bead back (interrupted, stopped).
    Released,
    /// A bead was blocked on a decision.
    Escalated,
    /// A person resolved a decision.
    Decided,
    /// An agent's run ended; its outcome recorded on the bead.
    AgentRun,
    /// Beads of a crashed run reopened.
    Recovered,
    /// A change another program undid, applied again.
    Restored,
    Imported,
    Converted,
    /// A pair exchange appended to a conversation log.
    Pair,
    /// A lesson appended to `.loom/lessons.md`.
    Lesson,
    /// A bead's work squashed onto the target.
    Merged,
    /// Edits to bead files made outside Loom and not committed, recorded before Loom's own.
    External,
    /// A change taken back (the TUI's `u`): the beads as they were before it.
    Undone,
}

impl CommitKind {
    /// Every kind, in the order ARCHITECTURE.md lists them.
    pub const ALL: [CommitKind; 25] = [
        CommitKind::Init,
        CommitKind::Created,
        CommitKind::Updated,
        CommitKind::Closed,
        CommitKind::Reopened,
        CommitKind::Deleted,
        CommitKind::DepAdded,
        CommitKind::DepRemoved,
        CommitKind::Labeled,
        CommitKind::Unlabeled,
        CommitKind::Commented,
        CommitKind::Claimed,
        CommitKind::Released,
        CommitKind::Escalated,
        CommitKind::Decided,
        CommitKind::AgentRun,
        CommitKind::Recovered,
        CommitKind::Restored,
        CommitKind::Imported,
        CommitKind::Converted,
        CommitKind::Pair,
        CommitKind::Lesson,
        CommitKind::Merged,
        CommitKind::External,
        CommitKind::Undone,
    ];

    /// The trailer value.
    pub fn as_str(self) -> &'static str {
        match self {
            CommitKind::Init => "init",
            CommitKind::Created => "created",
            CommitKind::Updated => "updated",
            CommitKind::Closed => "closed",
            CommitKind::Reopened => "reopened",
            CommitKind::Deleted => "deleted",
            CommitKind::DepAdded => "dep_added",
            CommitKind::DepRemoved => "dep_removed",
            CommitKind::Labeled => "labeled",
            CommitKind::Unlabeled => "unlabeled",
            CommitKind::Commented => "commented",
            CommitKind::Claimed => "claimed",
            CommitKind::Released => "released",
            CommitKind::Escalated => "escalated",
            CommitKind::Decided => "decided",
            CommitKind::AgentRun => "agent_run",
            CommitKind::Recovered => "recovered",
            CommitKind::Restored => "restored",
            CommitKind::Imported => "imported",
            CommitKind::Converted => "converted",
            CommitKind::Pair => "pair",
            CommitKind::Lesson => "lesson",
            CommitKind::Merged => "merged",
            CommitKind::External => "external",
            CommitKind::Undone => "undone",
        }
    }

    /// The kind a trailer value names (history may hold values a newer Loom wrote: `None`).
    pub fn parse(text: &str) -> Option<CommitKind> {
        CommitKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for CommitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for k in CommitKind::ALL {
            assert_eq!(CommitKind::parse(k.as_str()), Some(k));
            assert!(seen.insert(k.as_str()), "{k} twice");
        }
        assert_eq!(CommitKind::parse("code"), None);
    }
}
