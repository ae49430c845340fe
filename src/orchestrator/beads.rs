//! The orchestrator's changes to beads: claiming with an owner record, stage updates, releasing,
//! escalating to exactly one decision bead, closing after a merge, recovering beads whose owner
//! died, and resolving decisions (`loom decide`).
//!
//! Claims, escalations and closes are commits; intermediate stage updates are written without
//! committing (the next commit carries them), so a bead's history reads claim → close rather
//! than a commit per stage.

use serde_json::{Map, Value, json};

use crate::bead::{self, Bead, Dependency, Timestamp, dep_type, issue_type, status};
use crate::error::{Error, Result};
use crate::store::TxOptions;
use crate::workspace::Workspace;

use super::lock::Owner;

/// Pipeline stages as they show in `metadata.loom.stage`.
pub mod stage {
    pub const CLAIMED: &str = "claimed";
    pub const IMPLEMENTING: &str = "implementing";
    pub const VERIFYING: &str = "verifying";
    pub const REVIEWING: &str = "reviewing";
    pub const MERGING: &str = "merging";
    /// Waiting for a person to approve the merge (`merge: approve`).
    pub const AWAITING_APPROVAL: &str = "awaiting_approval";
    /// The merge was refused (the user's uncommitted changes); the next run retries it.
    pub const MERGE_WAITING: &str = "merge_waiting";
    /// Done and left on its branch (`merge: none`).
    pub const COMPLETED: &str = "completed";
    pub const DONE: &str = "done";
    pub const ESCALATED: &str = "escalated";
    pub const RECOVERED: &str = "recovered";
    pub const INTERRUPTED: &str = "interrupted";
}

/// `metadata.loom` of a bead, created if missing.
pub fn loom_mut(b: &mut Bead) -> &mut Map<String, Value> {
    let meta = b.metadata.get_or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({"previous": meta.clone()});
    }
    let obj = meta.as_object_mut();
    // Both unwraps are guarded by the lines above; fall back to a throwaway map to stay total.
    match obj {
        Some(o) => {
            let l = o.entry("loom").or_insert_with(|| json!({}));
            if !l.is_object() {
                *l = json!({});
            }
            match l.as_object_mut() {
                Some(m) => m,
                None => unreachable_map(),
            }
        }
        None => unreachable_map(),
    }
}

#[allow(clippy::mut_from_ref)]
fn unreachable_map() -> &'static mut Map<String, Value> {
    Box::leak(Box::new(Map::new()))
}

/// A value of `metadata.loom`.
pub fn loom_get<'a>(b: &'a Bead, key: &str) -> Option<&'a Value> {
    b.loom_metadata()?.get(key)
}

/// How a claim went.
#[derive(Debug)]
pub enum Claim {
    Claimed {
        bead: Box<Bead>,
        dispatches: u32,
    },
    /// Not claimable now (the reason).
    Skipped(String),
}

/// Claims an open bead for `owner` (status `in_progress`, owner record, dispatch count).
pub fn claim(ws: &Workspace, id: &str, owner: &Owner) -> Result<Claim> {
    let now = Timestamp::now();
    let m = ws.mutate("claimed", TxOptions::default(), |tx| {
        let b = tx.get_mut(id)?;
        if b.status != status::OPEN {
            return Ok(Claim::Skipped(format!("it is {}", b.status)));
        }
        if b.issue_type == issue_type::DECISION {
            return Ok(Claim::Skipped("decision beads are for people".into()));
        }
        bead::set_status(b, status::IN_PROGRESS, &now, None);
        let l = loom_mut(b);
        let dispatches = l.get("dispatches").and_then(Value::as_u64).unwrap_or(0) as u32 + 1;
        l.insert("dispatches".into(), json!(dispatches));
        l.insert("owner".into(), json!(owner));
        l.insert("stage".into(), json!(stage::CLAIMED));
        l.insert("claimed_at".into(), json!(now.as_str()));
        Ok(Claim::Claimed {
            bead: Box::new(b.clone()),
            dispatches,
        })
    })?;
    Ok(m.value)
}

/// Records the stage (without a commit of its own).
pub fn set_stage(ws: &Workspace, id: &str, stage: &str, extra: &[(&str, Value)]) -> Result<()> {
    ws.write_only(TxOptions::default(), |tx| {
        let b = tx.get_mut(id)?;
        let l = loom_mut(b);
        l.insert("stage".into(), json!(stage));
        for (k, v) in extra {
            l.insert((*k).to_owned(), v.clone());
        }
        Ok(())
    })
}

/// Gives a claimed bead back: status `status`, no owner, the stage recorded (a commit).
pub fn release(ws: &Workspace, id: &str, to_status: &str, stage: &str, note: &str) -> Result<()> {
    let now = Timestamp::now();
    ws.mutate("released", TxOptions::default(), |tx| {
        let b = tx.get_mut(id)?;
        if b.status != to_status {
            bead::set_status(b, to_status, &now, None);
        }
        let l = loom_mut(b);
        l.remove("owner");
        l.insert("stage".into(), json!(stage));
        if !note.is_empty() {
            l.insert(
                "note".into(),
                json!(note.chars().take(500).collect::<String>()),
            );
        }
        Ok(())
    })?;
    Ok(())
}

/// The open decision bead already blocking `b`, if any.
fn open_decision(tx: &mut crate::store::Tx, b: &Bead) -> Result<Option<String>> {
    for d in b
        .dependencies
        .iter()
        .filter(|d| dep_type::blocks_directly(&d.dep_type))
    {
        if let Some(t) = tx.get(&d.depends_on_id)?
            && t.issue_type == issue_type::DECISION
            && !status::resolves_blockers(&t.status)
        {
            return Ok(Some(t.id.clone()));
        }
    }
    Ok(None)
}

/// Blocks bead `id` on exactly one decision bead asking `question` (an existing open one is
/// reused). Returns the decision's id; `None` for a decision bead itself (it never spawns one).
pub fn escalate(
    ws: &Workspace,
    id: &str,
    question: &str,
    options: &[&str],
    reason: &str,
) -> Result<Option<String>> {
    let now = Timestamp::now();
    let actor = ws.actor.clone();
    let m = ws.mutate("escalated", TxOptions::default(), |tx| {
        let b = tx.get(id)?.cloned().ok_or_else(|| Error::NotFound(id.to_owned()))?;
        if b.issue_type == issue_type::DECISION {
            let bm = tx.get_mut(id)?;
            bead::set_status(bm, status::BLOCKED, &now, None);
            loom_mut(bm).remove("owner");
            return Ok(None);
        }
        let decision = match open_decision(tx, &b)? {
            Some(d) => d,
            None => {
                let title: String = question.lines().next().unwrap_or(question).chars().take(200).collect();
                let mut description = format!("{question}\n");
                if !options.is_empty() {
                    description.push_str("\nOptions:\n");
                    for o in options {
                        description.push_str(&format!("- {o}\n"));
                    }
                }
                let did = tx.new_id(&title, &description, &actor, &now)?;
                description.push_str(&format!(
                    "\nResolve with `loom decide {did} approve`, `loom decide {did} deny` or `loom decide {did} answer \"…\"`.\n"
                ));
                tx.insert(Bead {
                    id: did.clone(),
                    title,
                    description: Some(description),
                    status: status::OPEN.into(),
                    priority: b.priority.min(1),
                    issue_type: issue_type::DECISION.into(),
                    created_at: Some(now.clone()),
                    created_by: Some(actor.clone()),
                    updated_at: Some(now.clone()),
                    ..Bead::default()
                })?;
                let bm = tx.get_mut(id)?;
                bm.dependencies.push(Dependency {
                    issue_id: id.to_owned(),
                    depends_on_id: did.clone(),
                    dep_type: dep_type::BLOCKS.into(),
                    created_at: Some(now.clone()),
                    created_by: Some(actor.clone()),
                    ..Dependency::default()
                });
                did
            }
        };
        let bm = tx.get_mut(id)?;
        bead::set_status(bm, status::BLOCKED, &now, None);
        let l = loom_mut(bm);
        l.remove("owner");
        l.insert("stage".into(), json!(stage::ESCALATED));
        l.insert("escalation".into(), json!(reason));
        l.insert("decision".into(), json!(decision));
        Ok(Some(decision))
    })?;
    Ok(m.value)
}

/// Closes a bead whose work was merged as `commit`.
pub fn close_merged(ws: &Workspace, id: &str, summary: &str, commit: &str) -> Result<()> {
    let now = Timestamp::now();
    let reason: String = summary.trim().chars().take(500).collect();
    let reason = if reason.is_empty() {
        "Merged".to_owned()
    } else {
        reason
    };
    ws.mutate("closed", TxOptions::default(), |tx| {
        let b = tx.get_mut(id)?;
        bead::set_status(b, status::CLOSED, &now, Some(&reason));
        let l = loom_mut(b);
        l.remove("owner");
        l.insert("stage".into(), json!(stage::DONE));
        l.insert("merged_commit".into(), json!(commit));
        Ok(())
    })?;
    Ok(())
}

/// Reopens beads claimed by an owner that is no longer running. Returns their ids.
pub fn recover(ws: &Workspace, me: &Owner) -> Result<Vec<String>> {
    let snap = ws.store.load_index()?;
    let stale: Vec<String> = snap
        .beads
        .iter()
        .filter(|b| b.status == status::IN_PROGRESS)
        .filter_map(|b| {
            let full = snap.full(b);
            let owner: Owner = serde_json::from_value(loom_get(&full, "owner")?.clone()).ok()?;
            (owner != *me && !owner.is_alive()).then(|| b.id.clone())
        })
        .collect();
    if stale.is_empty() {
        return Ok(stale);
    }
    let now = Timestamp::now();
    ws.mutate("recovered", TxOptions::default(), |tx| {
        for id in &stale {
            let b = tx.get_mut(id)?;
            bead::set_status(b, status::OPEN, &now, None);
            let l = loom_mut(b);
            l.remove("owner");
            l.insert("stage".into(), json!(stage::RECOVERED));
        }
        Ok(())
    })?;
    Ok(stale)
}

/// A person's answer to a decision bead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Deny,
    Answer(String),
}

/// What `decide` did.
#[derive(Debug, serde::Serialize)]
pub struct Decided {
    pub decision: String,
    /// Beads it blocked, and what happened to each (`reopened` or `closed`).
    pub beads: Vec<(String, String)>,
}

/// Resolves decision bead `id`: approve or answer reopens the beads it blocked (with a fresh
/// dispatch budget; an answer is added to them as a comment); deny closes them.
pub fn decide(ws: &Workspace, id: &str, verdict: &Verdict) -> Result<Decided> {
    let now = Timestamp::now();
    let actor = ws.actor.clone();
    let m = ws.mutate("decided", TxOptions::default(), |tx| {
        let d = tx
            .get(id)?
            .cloned()
            .ok_or_else(|| Error::NotFound(id.to_owned()))?;
        if d.issue_type != issue_type::DECISION {
            return Err(Error::Usage(format!(
                "{id} is a {}, not a decision bead",
                d.issue_type
            )));
        }
        if status::resolves_blockers(&d.status) {
            return Err(Error::Refused(format!("{id} is already {}", d.status)));
        }
        let reason = match verdict {
            Verdict::Approve => format!("Approved by {actor}"),
            Verdict::Deny => format!("Denied by {actor}"),
            Verdict::Answer(a) => format!("Answered by {actor}: {a}"),
        };
        let blocked: Vec<String> = tx
            .all()?
            .iter()
            .filter(|b| {
                b.dependencies
                    .iter()
                    .any(|x| x.depends_on_id == id && dep_type::blocks_directly(&x.dep_type))
            })
            .map(|b| b.id.clone())
            .collect();
        let dm = tx.get_mut(id)?;
        bead::set_status(dm, status::CLOSED, &now, Some(&reason));
        let mut done = Vec::new();
        for bid in blocked {
            let b = tx.get_mut(&bid)?;
            match verdict {
                Verdict::Deny => {
                    bead::set_status(
                        b,
                        status::CLOSED,
                        &now,
                        Some(&format!("Not pursued: decision {id} denied")),
                    );
                    loom_mut(b).insert("stage".into(), json!("denied"));
                    done.push((bid, "closed".to_owned()));
                }
                Verdict::Approve | Verdict::Answer(_) => {
                    if let Verdict::Answer(text) = verdict {
                        let c = b.new_comment(&actor, &format!("Decision {id}: {text}"), &now);
                        b.comments.push(c);
                    }
                    let waiting_merge = loom_get(b, "stage").and_then(Value::as_str)
                        == Some(stage::AWAITING_APPROVAL);
                    if b.status == status::BLOCKED {
                        bead::set_status(b, status::OPEN, &now, None);
                    }
                    let l = loom_mut(b);
                    l.insert("dispatches".into(), json!(0));
                    if waiting_merge && *verdict == Verdict::Approve {
                        l.insert("merge_approved".into(), json!(true));
                    }
                    done.push((bid, "reopened".to_owned()));
                }
            }
        }
        Ok(Decided {
            decision: id.to_owned(),
            beads: done,
        })
    })?;
    Ok(m.value)
}
