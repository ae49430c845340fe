//! Edits to existing beads as one typed [`Change`]: what to do, which commit event it is, and
//! one function that applies it inside a transaction ([`apply`]) or as its own commit over
//! several beads ([`edit`]). The CLI's update/close/reopen/dep/label/comment commands, the
//! TUI's forms and editor rounds and the agents' tools all edit beads through here.

use crate::bead::{Bead, Comment, Timestamp, dep_type};
use crate::error::Result;
use crate::git::CommitKind;
use crate::store::{Tx, TxOptions};
use crate::workspace::{Mutation, Workspace};

use super::edit;

/// Fields to set; `None` leaves a field as it is. For optional text, `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct Patch {
    /// Assign to the actor and set `in_progress` (refused if someone else holds it).
    pub claim: bool,
    pub status: Option<String>,
    pub title: Option<String>,
    pub priority: Option<i64>,
    pub issue_type: Option<String>,
    pub assignee: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub design: Option<Option<String>>,
    pub acceptance_criteria: Option<Option<String>>,
    pub notes: Option<Option<String>>,
    pub external_ref: Option<Option<String>>,
    /// A paragraph added to the notes.
    pub append_notes: Option<String>,
    pub due_at: Option<Option<Timestamp>>,
    pub defer_until: Option<Option<Timestamp>>,
    /// Replace all labels.
    pub labels: Option<Vec<String>>,
    pub add_labels: Vec<String>,
    pub remove_labels: Vec<String>,
    /// Exactly these beads block it (its other `blocks` and `conditional-blocks` dependencies
    /// go; other types, the parent among them, stay).
    pub blockers: Option<Vec<String>>,
    /// Make it a child of this bead (its `parent-child` dependency replaced), or of none.
    pub parent: Option<Option<String>>,
}

/// One edit to existing beads.
#[derive(Clone, Debug)]
pub enum Change {
    Update(Box<Patch>),
    /// The whole bead as a person edited it (the TUI's `$EDITOR` round); its `updated_at` is
    /// the store's to set.
    Replace(Box<Bead>),
    Close {
        reason: String,
        /// Close even if open beads still block it.
        force: bool,
    },
    Reopen {
        /// Recorded as a comment.
        reason: Option<String>,
    },
    /// Make it wait on `on` (resolved from a prefix).
    Depend {
        on: String,
        dep_type: String,
    },
    /// Remove its dependency on `on` (of `dep_type`, or any).
    Undepend {
        on: String,
        dep_type: Option<String>,
    },
    Label {
        add: Vec<String>,
        remove: Vec<String>,
    },
    Comment {
        author: String,
        text: String,
    },
    /// What an agent run did, recorded in `metadata.loom` (these keys set, `runs` counted).
    AgentRun {
        record: serde_json::Map<String, serde_json::Value>,
    },
}

impl Change {
    /// The commit event of this change.
    pub fn commit_kind(&self) -> CommitKind {
        match self {
            Change::Update(_) | Change::Replace(_) => CommitKind::Updated,
            Change::Close { .. } => CommitKind::Closed,
            Change::Reopen { .. } => CommitKind::Reopened,
            Change::Depend { .. } => CommitKind::DepAdded,
            Change::Undepend { .. } => CommitKind::DepRemoved,
            Change::Label { add, .. } if !add.is_empty() => CommitKind::Labeled,
            Change::Label { .. } => CommitKind::Unlabeled,
            Change::Comment { .. } => CommitKind::Commented,
            Change::AgentRun { .. } => CommitKind::AgentRun,
        }
    }

    /// A blocking dependency on `on`.
    pub fn blocked_by(on: impl Into<String>) -> Change {
        Change::Depend {
            on: on.into(),
            dep_type: dep_type::BLOCKS.to_owned(),
        }
    }
}

/// What a change did to one bead.
#[derive(Clone, Debug, Default)]
pub struct Edited {
    pub id: String,
    /// The other bead of a dependency change (resolved).
    pub other: Option<String>,
    /// Nothing to do: the dependency existed already.
    pub unchanged: bool,
    /// The comment added.
    pub comment: Option<Comment>,
}

/// Applies `change` to bead `id` (a full id) inside a transaction, by `actor`.
pub fn apply(
    tx: &mut Tx,
    id: &str,
    change: &Change,
    actor: &str,
    now: &Timestamp,
) -> Result<Edited> {
    let mut out = Edited {
        id: id.to_owned(),
        ..Edited::default()
    };
    match change {
        Change::Update(p) => update(tx, id, p, actor, now)?,
        Change::Replace(b) => {
            let cur = tx.get_mut(id)?;
            let mut next = (**b).clone();
            next.updated_at = cur.updated_at.clone();
            *cur = next;
        }
        Change::Close { reason, force } => edit::close(tx, id, reason, *force, now)?,
        Change::Reopen { reason } => edit::reopen(tx, id, reason.as_deref(), actor, now)?,
        Change::Depend { on, dep_type } => {
            let on = tx.resolve(on)?;
            out.unchanged = edit::add_dependency(tx, id, &on, dep_type, actor, now)?;
            out.other = Some(on);
        }
        Change::Undepend { on, dep_type } => {
            // A dependency on a bead that is gone can still be removed by its id.
            let on = tx.resolve(on).unwrap_or_else(|_| on.trim().to_owned());
            edit::remove_dependency(tx, id, &on, dep_type.as_deref())?;
            out.other = Some(on);
        }
        Change::Label { add, remove } => edit::labels(tx, id, add, remove)?,
        Change::Comment { author, text } => {
            out.comment = Some(edit::comment(tx, id, author, text, now)?);
        }
        Change::AgentRun { record } => {
            let l = tx.get_mut(id)?.loom_mut();
            let runs = l
                .get("runs")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
                + 1;
            for (k, v) in record {
                l.insert(k.clone(), v.clone());
            }
            l.insert("runs".into(), runs.into());
        }
    }
    Ok(out)
}

/// Applies `change` to each of `ids` (full ids or unique prefixes) in one commit.
pub fn edit(ws: &Workspace, ids: &[String], change: &Change) -> Result<Mutation<Vec<Edited>>> {
    edit_by(ws, ids, &ws.actor, change)
}

/// [`edit`] of one bead, as the actor `actor` (an agent) rather than the workspace's.
pub fn edit_as(ws: &Workspace, id: &str, actor: &str, change: &Change) -> Result<Edited> {
    let m = edit_by(ws, &[id.to_owned()], actor, change)?;
    m.value
        .into_iter()
        .next()
        .ok_or_else(|| crate::error::Error::NotFound(id.to_owned()))
}

/// [`edit`] by `actor`.
fn edit_by(
    ws: &Workspace,
    ids: &[String],
    actor: &str,
    change: &Change,
) -> Result<Mutation<Vec<Edited>>> {
    let now = Timestamp::now();
    ws.mutate(change.commit_kind(), TxOptions::default(), |tx| {
        let mut out = Vec::with_capacity(ids.len());
        for q in ids {
            let id = tx.resolve(q)?;
            out.push(apply(tx, &id, change, actor, &now)?);
        }
        Ok(out)
    })
}

fn update(tx: &mut Tx, id: &str, p: &Patch, actor: &str, now: &Timestamp) -> Result<()> {
    if p.claim {
        edit::claim(tx, id, actor, now)?;
    }
    if let Some(s) = &p.status {
        edit::set_status(tx, id, s.trim(), None, now)?;
    }
    if let Some(labels) = &p.labels {
        tx.get_mut(id)?.labels = labels.clone();
    }
    edit::labels(tx, id, &p.add_labels, &p.remove_labels)?;
    if let Some(want) = &p.blockers {
        set_blockers(tx, id, want, actor, now)?;
    }
    if let Some(parent) = &p.parent {
        set_parent(tx, id, parent.as_deref(), actor, now)?;
    }
    let b = tx.get_mut(id)?;
    if let Some(v) = p.priority {
        b.priority = v;
    }
    if let Some(v) = &p.title {
        b.title = v.clone();
    }
    if let Some(v) = &p.issue_type {
        b.issue_type = v.trim().to_owned();
    }
    for (field, value) in [
        (&mut b.assignee, &p.assignee),
        (&mut b.description, &p.description),
        (&mut b.design, &p.design),
        (&mut b.acceptance_criteria, &p.acceptance_criteria),
        (&mut b.notes, &p.notes),
        (&mut b.external_ref, &p.external_ref),
    ] {
        if let Some(v) = value {
            *field = v.clone();
        }
    }
    if let Some(extra) = &p.append_notes {
        b.notes = Some(match b.notes.take().filter(|n| !n.is_empty()) {
            Some(n) => format!("{}\n\n{extra}", n.trim_end()),
            None => extra.clone(),
        });
    }
    if let Some(d) = &p.due_at {
        b.due_at = d.clone();
    }
    if let Some(d) = &p.defer_until {
        b.defer_until = d.clone();
    }
    Ok(())
}

/// Sets `id`'s blocking dependencies to exactly `want` (other types kept).
fn set_blockers(
    tx: &mut Tx,
    id: &str,
    want: &[String],
    actor: &str,
    now: &Timestamp,
) -> Result<()> {
    let want: Vec<String> = want.iter().map(|q| tx.resolve(q)).collect::<Result<_>>()?;
    tx.get_mut(id)?.dependencies.retain(|d| {
        !dep_type::blocks_directly(&d.dep_type)
            || d.dep_type == dep_type::PARENT_CHILD
            || want.contains(&d.depends_on_id)
    });
    for on in &want {
        edit::add_dependency(tx, id, on, dep_type::BLOCKS, actor, now)?;
    }
    Ok(())
}

/// Makes `parent` (full id or prefix) `id`'s only parent, or removes its parent.
fn set_parent(
    tx: &mut Tx,
    id: &str,
    parent: Option<&str>,
    actor: &str,
    now: &Timestamp,
) -> Result<()> {
    let parent = parent.map(|q| tx.resolve(q)).transpose()?;
    if parent.as_deref() == Some(id) {
        return Err(crate::error::Error::Refused(format!(
            "{id} cannot be its own parent; choose another bead or none"
        )));
    }
    tx.get_mut(id)?.dependencies.retain(|d| {
        d.dep_type != dep_type::PARENT_CHILD || parent.as_deref() == Some(d.depends_on_id.as_str())
    });
    if let Some(p) = &parent {
        edit::add_dependency(tx, id, p, dep_type::PARENT_CHILD, actor, now)?;
    }
    Ok(())
}
