//! Bead edits every front end makes the same way (the CLI's `close`, `reopen`, `dep add`, the
//! TUI's keys), as functions over a transaction so each caller keeps its own commit message and
//! output.

use crate::bead::Timestamp;

use crate::bead::graph::Graph;
use crate::bead::{self, Dependency, dep_type, status};
use crate::error::{Error, Result};

use super::Tx;

/// A dependency record `from` → `to` of `kind`, made now by `actor`.
pub fn dependency(from: &str, to: &str, kind: &str, now: &Timestamp, actor: &str) -> Dependency {
    Dependency {
        issue_id: from.to_owned(),
        depends_on_id: to.to_owned(),
        dep_type: kind.to_owned(),
        created_at: Some(now.clone()),
        created_by: Some(actor.to_owned()),
        ..Dependency::default()
    }
}

/// Targets of `id`'s blocking dependencies that are still unresolved.
pub fn open_blockers(tx: &mut Tx, id: &str) -> Result<Vec<String>> {
    let deps: Vec<String> = tx
        .get(id)?
        .map(|b| {
            b.dependencies
                .iter()
                .filter(|d| dep_type::blocks_directly(&d.dep_type))
                .map(|d| d.depends_on_id.clone())
                .collect()
        })
        .unwrap_or_default();
    let mut open = Vec::new();
    for t in deps {
        if let Some(target) = tx.get(&t)?
            && !status::resolves_blockers(&target.status)
        {
            open.push(t);
        }
    }
    Ok(open)
}

/// Closes `id` with `reason`; refused while open beads block it, unless `force`.
pub fn close(tx: &mut Tx, id: &str, reason: &str, force: bool, now: &Timestamp) -> Result<()> {
    if !force {
        let open = open_blockers(tx, id)?;
        if !open.is_empty() {
            return Err(Error::Refused(format!(
                "cannot close {id}: blocked by open beads {}; use --force to close anyway",
                open.join(", ")
            )));
        }
    }
    let b = tx.get_mut(id)?;
    if b.status != status::CLOSED {
        bead::set_status(b, status::CLOSED, now, Some(reason));
    }
    Ok(())
}

/// Reopens `id`; a reason becomes a comment by `actor`.
pub fn reopen(
    tx: &mut Tx,
    id: &str,
    reason: Option<&str>,
    actor: &str,
    now: &Timestamp,
) -> Result<()> {
    let b = tx.get_mut(id)?;
    if b.status != status::OPEN {
        bead::set_status(b, status::OPEN, now, None);
        if let Some(r) = reason {
            let c = b.new_comment(actor, &format!("Reopened: {r}"), now);
            b.comments.push(c);
        }
    }
    Ok(())
}

/// Makes `from` depend on `to` (`kind`), refusing self-dependencies and cycles. Returns whether
/// the dependency existed already.
pub fn add_dependency(
    tx: &mut Tx,
    from: &str,
    to: &str,
    kind: &str,
    actor: &str,
    now: &Timestamp,
) -> Result<bool> {
    if from == to {
        return Err(Error::Usage(format!("{from} cannot depend on itself")));
    }
    let exists = tx.get(from)?.is_some_and(|b| {
        b.dependencies
            .iter()
            .any(|d| d.depends_on_id == to && d.dep_type == kind)
    });
    if !exists {
        let beads = tx.all()?;
        if let Some(cycle) = Graph::new(beads).cycle_if_added(from, to, kind) {
            return Err(Error::Refused(format!(
                "adding {from} → {to} ({kind}) would create a dependency cycle: {}",
                cycle.join(" → ")
            )));
        }
        let b = tx.get_mut(from)?;
        b.dependencies.push(dependency(from, to, kind, now, actor));
    }
    Ok(exists)
}

/// The reason an epic is closed with once its child beads are.
pub const EPIC_DONE: &str = "all its child beads are closed";

/// Epics still in play (open, in progress or blocked — not deferred, pinned or deleted) that
/// have child beads (`parent-child` dependents, deleted ones aside), all of them closed
/// (bd's "eligible for closure").
pub fn finished_epics(beads: &[bead::Bead]) -> Vec<String> {
    let g = Graph::new(beads);
    beads
        .iter()
        .filter(|b| {
            b.issue_type == bead::issue_type::EPIC
                && [status::OPEN, status::IN_PROGRESS, status::BLOCKED].contains(&b.status.as_str())
        })
        .filter(|e| {
            let kids: Vec<_> = g
                .dependents(&e.id)
                .into_iter()
                .filter(|(k, d)| {
                    d.dep_type == dep_type::PARENT_CHILD && k.status != status::TOMBSTONE
                })
                .collect();
            !kids.is_empty() && kids.iter().all(|(k, _)| k.status == status::CLOSED)
        })
        .map(|e| e.id.clone())
        .collect()
}

/// Closes the finished epics (see [`finished_epics`]) that nothing else holds open (an epic
/// with open blockers of its own stays, as does one in `busy`: its planner still works), then
/// their parents that this finished in turn; their ids.
pub fn close_finished_epics(tx: &mut Tx, busy: &[String], now: &Timestamp) -> Result<Vec<String>> {
    let mut closed = Vec::new();
    loop {
        let mut more = false;
        for id in finished_epics(tx.all()?) {
            if !busy.contains(&id) && !closed.contains(&id) && open_blockers(tx, &id)?.is_empty() {
                close(tx, &id, EPIC_DONE, false, now)?;
                closed.push(id);
                more = true;
            }
        }
        if !more {
            return Ok(closed);
        }
    }
}

/// Puts back a change of this process that another program undid (see
/// [`super::OwnWrites::undone`]), if the bead is still as that program left it; whether it did.
pub fn restore(tx: &mut Tx, lost: &super::Lost) -> Result<bool> {
    let id = lost.after.id.clone();
    let now = tx.get(&id)?.map(super::content_hash);
    if now != lost.now {
        return Ok(false);
    }
    match now {
        Some(_) => *tx.get_mut(&id)? = lost.after.clone(),
        None => tx.insert(lost.after.clone())?,
    }
    Ok(true)
}
