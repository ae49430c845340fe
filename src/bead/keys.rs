//! bd's JSON key order, and which keys Loom types.
//!
//! bd writes an issue with Go's `encoding/json`, so keys come in struct declaration order. The
//! table merges the orders of classic bd (≤ v0.30), the v0.5x releases and current bd, plus the
//! counters `bd list --json` adds, so any record Loom rewrites keeps the shape bd would give it.

/// Every key bd has written for an issue, in the order bd writes them.
pub const ORDER: &[&str] = &[
    "_type",
    "id",
    "title",
    "description",
    "design",
    "acceptance_criteria",
    "notes",
    "spec_id",
    "status",
    "priority",
    "issue_type",
    "assignee",
    "owner",
    "estimated_minutes",
    "created_at",
    "created_by",
    "updated_at",
    "started_at",
    "closed_at",
    "close_reason",
    "closed_by_session",
    "due_at",
    "defer_until",
    "external_ref",
    "source_system",
    "metadata",
    "compaction_level",
    "compacted_at",
    "compacted_at_commit",
    "original_size",
    "labels",
    "dependencies",
    "comments",
    "deleted_at",
    "deleted_by",
    "delete_reason",
    "original_type",
    "sender",
    "ephemeral",
    "replies_to",
    "relates_to",
    "duplicate_of",
    "superseded_by",
    "no_history",
    "wisp_type",
    "pinned",
    "is_template",
    "bonded_from",
    "creator",
    "validations",
    "quality_score",
    "crystallizes",
    "await_type",
    "await_id",
    "timeout",
    "waiters",
    "holder",
    "source_formula",
    "source_location",
    "hook_bead",
    "role_bead",
    "agent_state",
    "last_activity",
    "role_type",
    "rig",
    "mol_type",
    "work_type",
    "event_kind",
    "actor",
    "target",
    "payload",
    "dependency_count",
    "dependent_count",
    "comment_count",
    "parent",
];

/// Rank given to the first key bd does not know; later unknown keys count up from here.
pub const UNKNOWN_RANK: usize = 1 << 16;

/// The keys Loom reads into typed fields of [`super::Bead`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeadKey {
    Id,
    Title,
    Description,
    Design,
    AcceptanceCriteria,
    Notes,
    Status,
    Priority,
    IssueType,
    Assignee,
    Owner,
    CreatedAt,
    CreatedBy,
    UpdatedAt,
    ClosedAt,
    CloseReason,
    DueAt,
    DeferUntil,
    ExternalRef,
    Metadata,
    Labels,
    Dependencies,
    Comments,
    Ephemeral,
    Pinned,
}

impl BeadKey {
    pub const fn name(self) -> &'static str {
        match self {
            BeadKey::Id => "id",
            BeadKey::Title => "title",
            BeadKey::Description => "description",
            BeadKey::Design => "design",
            BeadKey::AcceptanceCriteria => "acceptance_criteria",
            BeadKey::Notes => "notes",
            BeadKey::Status => "status",
            BeadKey::Priority => "priority",
            BeadKey::IssueType => "issue_type",
            BeadKey::Assignee => "assignee",
            BeadKey::Owner => "owner",
            BeadKey::CreatedAt => "created_at",
            BeadKey::CreatedBy => "created_by",
            BeadKey::UpdatedAt => "updated_at",
            BeadKey::ClosedAt => "closed_at",
            BeadKey::CloseReason => "close_reason",
            BeadKey::DueAt => "due_at",
            BeadKey::DeferUntil => "defer_until",
            BeadKey::ExternalRef => "external_ref",
            BeadKey::Metadata => "metadata",
            BeadKey::Labels => "labels",
            BeadKey::Dependencies => "dependencies",
            BeadKey::Comments => "comments",
            BeadKey::Ephemeral => "ephemeral",
            BeadKey::Pinned => "pinned",
        }
    }
}

/// The typed key named `key`, if Loom types it.
pub fn bead_key(key: &str) -> Option<BeadKey> {
    Some(match key {
        "id" => BeadKey::Id,
        "title" => BeadKey::Title,
        "description" => BeadKey::Description,
        "design" => BeadKey::Design,
        "acceptance_criteria" => BeadKey::AcceptanceCriteria,
        "notes" => BeadKey::Notes,
        "status" => BeadKey::Status,
        "priority" => BeadKey::Priority,
        "issue_type" => BeadKey::IssueType,
        "assignee" => BeadKey::Assignee,
        "owner" => BeadKey::Owner,
        "created_at" => BeadKey::CreatedAt,
        "created_by" => BeadKey::CreatedBy,
        "updated_at" => BeadKey::UpdatedAt,
        "closed_at" => BeadKey::ClosedAt,
        "close_reason" => BeadKey::CloseReason,
        "due_at" => BeadKey::DueAt,
        "defer_until" => BeadKey::DeferUntil,
        "external_ref" => BeadKey::ExternalRef,
        "metadata" => BeadKey::Metadata,
        "labels" => BeadKey::Labels,
        "dependencies" => BeadKey::Dependencies,
        "comments" => BeadKey::Comments,
        "ephemeral" => BeadKey::Ephemeral,
        "pinned" => BeadKey::Pinned,
        _ => return None,
    })
}

/// Position of a bd key in [`ORDER`].
pub fn known_rank(key: &str) -> Option<usize> {
    ORDER.iter().position(|k| *k == key)
}

/// Position of a typed key in [`ORDER`].
pub fn rank_of(key: BeadKey) -> usize {
    // Every typed key is in ORDER (checked by a test); the fallback keeps the function total.
    known_rank(key.name()).unwrap_or(UNKNOWN_RANK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_typed_key_has_a_rank_and_round_trips() {
        let all = [
            BeadKey::Id,
            BeadKey::Title,
            BeadKey::Description,
            BeadKey::Design,
            BeadKey::AcceptanceCriteria,
            BeadKey::Notes,
            BeadKey::Status,
            BeadKey::Priority,
            BeadKey::IssueType,
            BeadKey::Assignee,
            BeadKey::Owner,
            BeadKey::CreatedAt,
            BeadKey::CreatedBy,
            BeadKey::UpdatedAt,
            BeadKey::ClosedAt,
            BeadKey::CloseReason,
            BeadKey::DueAt,
            BeadKey::DeferUntil,
            BeadKey::ExternalRef,
            BeadKey::Metadata,
            BeadKey::Labels,
            BeadKey::Dependencies,
            BeadKey::Comments,
            BeadKey::Ephemeral,
            BeadKey::Pinned,
        ];
        for k in all {
            assert!(known_rank(k.name()).is_some(), "{k:?} missing from ORDER");
            assert_eq!(bead_key(k.name()), Some(k));
        }
        let mut sorted = ORDER.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ORDER.len(), "ORDER has duplicates");
    }
}
