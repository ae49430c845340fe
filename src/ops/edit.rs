//! Changes to existing beads, each a function over a transaction: status (validated), claim,
//! close, reopen, dependencies (with the cycle check), labels, comments, and closing finished
//! epics. The caller names the commit ([`super::CommitKind`]) and keeps its own output.

use crate::bead::Timestamp;

use crate::bead::graph::Graph;
use crate::bead::{self, Comment, Dependency, dep_type, status};
use crate::error::{Error, Result};

use crate::store::Tx;

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

/// bd's built-in statuses (what `update --status` accepts besides `status.custom`).
pub const BD_STATUSES: &[&str] = &[
    status::OPEN,
    status::IN_PROGRESS,
    status::BLOCKED,
    status::DEFERRED,
    status::CLOSED,
    status::PINNED,
    status::HOOKED,
];

/// Whether `value` is one of bd's built-in statuses or one of `custom` (`status.custom`).
pub fn is_known_status(custom: &[String], value: &str) -> bool {
    BD_STATUSES.contains(&value) || custom.iter().any(|c| c == value)
}

/// Refuses a status that is neither one of bd's built-ins nor configured in
/// `.beads/config.yaml` (`status.custom`), naming the valid ones.
pub fn check_status(tx: &Tx, value: &str) -> Result<()> {
    let custom = tx.layout().custom_statuses()?;
    if is_known_status(&custom, value) {
        return Ok(());
    }
    let custom_text = if custom.is_empty() {
        "no custom statuses; add them as status.custom in .beads/config.yaml, e.g. status.custom: \"in_review,qa\"".to_owned()
    } else {
        format!("custom: {}", custom.join(", "))
    };
    Err(Error::Usage(format!(
        "invalid status {value:?} (built-in: {}; {custom_text})",
        BD_STATUSES.join(", ")
    )))
}

/// Sets `id`'s status to `value` (validated; `closed` records `reason`).
pub fn set_status(
    tx: &mut Tx,
    id: &str,
    value: &str,
    reason: Option<&str>,
    now: &Timestamp,
) -> Result<()> {
    check_status(tx, value)?;
    let b = tx.get_mut(id)?;
    if b.status != value {
        bead::set_status(b, value, now, reason);
    }
    Ok(())
}

/// Claims `id` for `actor`: assignee and `in_progress` in one change, as bd's `update --claim`.
/// Refused when someone else holds it (naming them) or the bead is not open; claiming one's
/// own claim again changes nothing. Whether it changed the bead.
pub fn claim(tx: &mut Tx, id: &str, actor: &str, now: &Timestamp) -> Result<bool> {
    let b = tx.get_mut(id)?;
    if let Some(holder) = b
        .assignee
        .as_deref()
        .filter(|a| !a.is_empty() && *a != actor)
    {
        return Err(Error::Refused(format!(
            "{id} is already claimed by {holder}; ask them, or take it over with `loom update {id} -a {actor} -s in_progress`"
        )));
    }
    if b.status == status::IN_PROGRESS && b.assignee.as_deref() == Some(actor) {
        return Ok(false);
    }
    if b.status != status::OPEN {
        return Err(Error::Refused(format!(
            "{id} cannot be claimed: its status is {} (only open beads can be claimed)",
            b.status
        )));
    }
    b.assignee = Some(actor.to_owned());
    bead::set_status(b, status::IN_PROGRESS, now, None);
    Ok(true)
}

/// Adds and removes labels on `id` (adding one it has, or removing one it lacks, is no change).
pub fn labels(tx: &mut Tx, id: &str, add: &[String], remove: &[String]) -> Result<()> {
    let b = tx.get_mut(id)?;
    for l in add {
        if !b.labels.contains(l) {
            b.labels.push(l.clone());
        }
    }
    b.labels.retain(|l| !remove.contains(l));
    Ok(())
}

/// Labels as typed: comma-separated, trimmed; empty or `provides:` ones refused (bd's rule).
pub fn parse_labels(values: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for l in values.iter().flat_map(|v| v.split(',')).map(str::trim) {
        if l.is_empty() {
            continue;
        }
        if l.starts_with("provides:") {
            return Err(Error::Usage(format!(
                "{l:?}: labels starting with provides: are reserved"
            )));
        }
        if !out.iter().any(|o| o == l) {
            out.push(l.to_owned());
        }
    }
    Ok(out)
}

/// Adds a comment by `author` to `id`; the comment.
pub fn comment(
    tx: &mut Tx,
    id: &str,
    author: &str,
    text: &str,
    now: &Timestamp,
) -> Result<Comment> {
    let b = tx.get_mut(id)?;
    let c = b.new_comment(author, text, now);
    b.comments.push(c.clone());
    Ok(c)
}

/// Removes `from`'s dependency on `to` (of `kind`, or of any type); refused if there is none.
pub fn remove_dependency(tx: &mut Tx, from: &str, to: &str, kind: Option<&str>) -> Result<()> {
    let b = tx.get_mut(from)?;
    let before = b.dependencies.len();
    b.dependencies
        .retain(|d| !(d.depends_on_id == to && kind.is_none_or(|t| d.dep_type == t)));
    if b.dependencies.len() == before {
        return Err(Error::Refused(format!("{from} does not depend on {to}")));
    }
    Ok(())
}
