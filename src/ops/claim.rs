//! A run's hold on beads: claiming with an owner record, stage updates, releasing,
//! closing after a merge, and recovering beads whose owner died (escalation and decisions are
//! in [`crate::ops::decision`]).
//!
//! Claims, releases and closes are commits; intermediate stage updates are written without
//! committing (the next commit carries them), so a bead's history reads claim → close rather
//! than a commit per stage.

use serde_json::{Value, json};

use crate::bead::{self, Bead, Timestamp, issue_type, status};
use crate::error::Result;
use crate::event::Stage;
use crate::store::{Tx, TxOptions};
use crate::workspace::Workspace;

use super::owner::Owner;

/// How a claim went.
#[derive(Debug)]
pub enum Claim {
    Claimed {
        bead: Box<Bead>,
        dispatches: u32,
        /// `metadata.loom.stage` before the claim (where an earlier run left it).
        previous_stage: Option<Stage>,
        /// A person approved merging it (the approval is used up by this claim).
        merge_approved: bool,
    },
    /// Not claimable now (the reason).
    Skipped(String),
}

/// Claims an open bead for `owner` (status `in_progress`, owner record, dispatch count).
pub fn claim(ws: &Workspace, id: &str, owner: &Owner) -> Result<Claim> {
    let now = Timestamp::now();
    let m = ws.mutate(
        crate::git::CommitKind::Claimed,
        TxOptions::default(),
        |tx| {
            let b = tx.get_mut(id)?;
            if b.status != status::OPEN {
                return Ok(Claim::Skipped(format!("it is {}", b.status)));
            }
            if b.issue_type == issue_type::DECISION {
                return Ok(Claim::Skipped("decision beads are for people".into()));
            }
            let previous_stage = b
                .loom_get("stage")
                .and_then(Value::as_str)
                .map(Stage::parse);
            bead::set_status(b, status::IN_PROGRESS, &now, None);
            let l = b.loom_mut();
            let merge_approved = l.remove("merge_approved") == Some(json!(true));
            let dispatches = l.get("dispatches").and_then(Value::as_u64).unwrap_or(0) as u32 + 1;
            l.insert("dispatches".into(), json!(dispatches));
            l.insert("owner".into(), json!(owner));
            l.insert("stage".into(), json!(Stage::Claimed));
            l.insert("claimed_at".into(), json!(now.as_str()));
            Ok(Claim::Claimed {
                bead: Box::new(b.clone()),
                dispatches,
                previous_stage,
                merge_approved,
            })
        },
    )?;
    Ok(m.value)
}

/// Records the stage (without a commit of its own).
pub fn set_stage(ws: &Workspace, id: &str, stage: Stage, extra: &[(&str, Value)]) -> Result<()> {
    ws.write_only(TxOptions::default(), |tx| {
        let b = tx.get_mut(id)?;
        let l = b.loom_mut();
        l.insert("stage".into(), json!(stage));
        for (k, v) in extra {
            l.insert((*k).to_owned(), v.clone());
        }
        Ok(())
    })
}

/// Gives a claimed bead back: status `status`, no owner, the stage recorded (a commit).
pub fn release(ws: &Workspace, id: &str, to_status: &str, stage: Stage, note: &str) -> Result<()> {
    hand_back(ws, id, to_status, stage, note, false)
}

/// Gives an interrupted bead back for the next run (status open, stage `interrupted`); the
/// dispatch does not count against its budget, since the bead was not at fault.
pub fn give_back(ws: &Workspace, id: &str, why: &str) -> Result<()> {
    hand_back(ws, id, status::OPEN, Stage::Interrupted, why, true)
}

fn hand_back(
    ws: &Workspace,
    id: &str,
    to_status: &str,
    stage: Stage,
    note: &str,
    uncount: bool,
) -> Result<()> {
    let now = Timestamp::now();
    ws.mutate(
        crate::git::CommitKind::Released,
        TxOptions::default(),
        |tx| {
            let b = tx.get_mut(id)?;
            if b.status != to_status {
                bead::set_status(b, to_status, &now, None);
            }
            let l = b.loom_mut();
            l.remove("owner");
            l.insert("stage".into(), json!(stage));
            if !note.is_empty() {
                l.insert(
                    "note".into(),
                    json!(note.chars().take(500).collect::<String>()),
                );
            }
            if uncount {
                let n = l.get("dispatches").and_then(Value::as_u64).unwrap_or(0);
                l.insert("dispatches".into(), json!(n.saturating_sub(1)));
            }
            Ok(())
        },
    )?;
    Ok(())
}

/// Closes a bead whose work was merged as `commit` (`None`: it needed no code change).
pub fn close_merged(ws: &Workspace, id: &str, summary: &str, commit: Option<&str>) -> Result<()> {
    ws.mutate(crate::git::CommitKind::Closed, TxOptions::default(), |tx| {
        close_merged_in(tx, id, summary, commit)
    })?;
    Ok(())
}

/// [`close_merged`] as a change to a transaction (for a close that rides in the squash
/// commit itself).
pub fn close_merged_in(tx: &mut Tx, id: &str, summary: &str, commit: Option<&str>) -> Result<()> {
    let now = Timestamp::now();
    let reason: String = summary.trim().chars().take(500).collect();
    let reason = if reason.is_empty() {
        "Merged".to_owned()
    } else {
        reason
    };
    let b = tx.get_mut(id)?;
    bead::set_status(b, status::CLOSED, &now, Some(&reason));
    let l = b.loom_mut();
    l.remove("owner");
    l.insert("stage".into(), json!(Stage::Done));
    if let Some(c) = commit {
        l.insert("merged_commit".into(), json!(c));
    }
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
            let owner: Owner = serde_json::from_value(full.loom_get("owner")?.clone()).ok()?;
            (owner != *me && !owner.is_alive()).then(|| b.id.clone())
        })
        .collect();
    if stale.is_empty() {
        return Ok(stale);
    }
    let now = Timestamp::now();
    ws.mutate(
        crate::git::CommitKind::Recovered,
        TxOptions::default(),
        |tx| {
            for id in &stale {
                let b = tx.get_mut(id)?;
                bead::set_status(b, status::OPEN, &now, None);
                let l = b.loom_mut();
                l.remove("owner");
                l.insert("stage".into(), json!(Stage::Recovered));
            }
            Ok(())
        },
    )?;
    Ok(stale)
}

/// Puts back a change of this run that another program undid — unless git did it (the file is
/// as HEAD has it, or a merge or rebase is under way: the user's own history), or the bead was
/// removed (YAML: someone deleted its file), or it changed again since.
pub fn restore(ws: &Workspace, lost: &crate::store::Lost) -> Result<crate::store::watch::Restored> {
    use crate::store::watch::Restored;
    let repo = ws.require_repo()?;
    let yaml = ws.layout().format == crate::store::Format::Yaml;
    if lost.now.is_none() && yaml {
        return Ok(Restored::Removed);
    }
    let file = match ws.bead_file(&lost.after.id) {
        Some(f) => f,
        None => {
            let jsonl = ws.layout().jsonl_path();
            match jsonl.strip_prefix(&repo.workdir) {
                Ok(rel) => rel.to_path_buf(),
                Err(_) => return Ok(Restored::ChangedSince),
            }
        }
    };
    if repo.in_operation() || repo.matches_head(&file)? {
        return Ok(Restored::ByGit);
    }
    let done = ws.mutate(
        crate::git::CommitKind::Restored,
        crate::store::TxOptions::default(),
        |tx| crate::store::restore(tx, lost),
    )?;
    Ok(if done.value {
        Restored::Applied
    } else {
        Restored::ChangedSince
    })
}
