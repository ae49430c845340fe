//! Decision beads: the one way Loom asks a person. Escalating blocks a bead on exactly one open
//! decision bead (an existing one is reused, a decision bead never spawns another); resolving it
//! (`loom decide <id> approve|deny|answer "…"`) reopens or closes the beads it blocked.

use serde_json::{Value, json};

use crate::bead::{self, Bead, Timestamp, dep_type, issue_type, status};
use crate::error::{Error, Result};
use crate::event::Stage;
use crate::ops::{self, NewBead};
use crate::store::{Tx, TxOptions};
use crate::workspace::Workspace;

/// What a person is asked.
#[derive(Clone, Debug, Default)]
pub struct Question {
    /// One line: the decision's title.
    pub title: String,
    /// Context and the question in full.
    pub body: String,
    pub options: Vec<String>,
    /// Why the bead stopped (recorded in its `metadata.loom.escalation`).
    pub reason: String,
    /// The stage the blocked bead shows (`None`: escalated; or awaiting approval).
    pub stage: Option<Stage>,
    /// A comment left on the blocked bead in the same commit (e.g. why it was stopped).
    pub comment: Option<String>,
}

/// The open decision bead already blocking `b`, if any.
fn open_decision(tx: &mut Tx, b: &Bead) -> Result<Option<String>> {
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

/// A new open decision bead asking `q` (its id), inside a transaction.
fn new_decision(
    tx: &mut Tx,
    q: &Question,
    fallback_title: &str,
    priority: i64,
    actor: &str,
    now: &Timestamp,
) -> Result<String> {
    let title: String = q.title.trim().chars().take(200).collect();
    let title = if title.is_empty() {
        fallback_title.to_owned()
    } else {
        title
    };
    let mut description = format!("{}\n", q.body.trim());
    if !q.options.is_empty() {
        description.push_str("\nOptions:\n");
        for (i, o) in q.options.iter().enumerate() {
            description.push_str(&format!("{}. {o}\n", i + 1));
        }
    }
    let mut new = NewBead::new(title, actor);
    new.description = Some(description);
    new.priority = priority;
    new.issue_type = issue_type::DECISION.into();
    let did = ops::create(tx, &new, now)?;
    let d = tx.get_mut(&did)?;
    if let Some(text) = d.description.as_mut() {
        text.push_str(&format!(
            "\nResolve with `loom decide {did} approve`, `loom decide {did} deny`, \
             `loom decide {did} answer \"…\"`, or an option by its number \
             (`loom decide {did} 1`).\n"
        ));
    }
    Ok(did)
}

/// The options a decision bead's description lists (`Options:` then `1. …` lines).
pub fn options(description: &str) -> Vec<String> {
    let mut lines = description.lines().skip_while(|l| l.trim() != "Options:");
    lines.next();
    lines
        .map(str::trim)
        .map_while(|l| {
            let (n, rest) = l.split_once(". ")?;
            n.parse::<usize>().ok().map(|_| rest.trim().to_owned())
        })
        .collect()
}

/// Files a decision about the run itself (a run-wide limit reached): it blocks no bead (one
/// commit). Returns its id.
pub fn file_for_run(ws: &Workspace, actor: &str, q: &Question) -> Result<String> {
    let now = Timestamp::now();
    let m = ws.mutate(ops::CommitKind::Escalated, TxOptions::default(), |tx| {
        new_decision(tx, q, "Decide how the run continues", 1, actor, &now)
    })?;
    Ok(m.value)
}

/// Blocks `id` on one decision bead asking `q`, inside a transaction. Returns the decision's id
/// and whether it was created (`None`, and nothing changed, when `id` is itself a decision).
pub fn escalate_in(
    tx: &mut Tx,
    id: &str,
    actor: &str,
    q: &Question,
    now: &Timestamp,
) -> Result<Option<(String, bool)>> {
    let b = tx
        .get(id)?
        .cloned()
        .ok_or_else(|| Error::NotFound(id.to_owned()))?;
    if b.issue_type == issue_type::DECISION {
        return Ok(None); // a decision never spawns another
    }
    let (decision, created) = match open_decision(tx, &b)? {
        Some(d) => (d, false),
        None => {
            let did = new_decision(
                tx,
                q,
                &format!("Decide how to continue {id}"),
                b.priority.min(1),
                actor,
                now,
            )?;
            tx.get_mut(id)?.dependencies.push(ops::edit::dependency(
                id,
                &did,
                dep_type::BLOCKS,
                now,
                actor,
            ));
            (did, true)
        }
    };
    if let Some(text) = &q.comment {
        ops::edit::comment(tx, id, actor, text, now)?;
    }
    let bm = tx.get_mut(id)?;
    bead::set_status(bm, status::BLOCKED, now, None);
    let l = bm.loom_mut();
    l.remove("owner");
    l.remove("merge_approved");
    let stage = q.stage.unwrap_or(Stage::Escalated);
    l.insert("stage".into(), json!(stage));
    if !q.reason.is_empty() {
        l.insert(
            "escalation".into(),
            json!(q.reason.chars().take(500).collect::<String>()),
        );
    }
    l.insert("decision".into(), json!(decision));
    Ok(Some((decision, created)))
}

/// Blocks `id` on exactly one decision bead (one commit). See [`escalate_in`].
pub fn escalate(ws: &Workspace, id: &str, actor: &str, q: &Question) -> Result<Option<String>> {
    let now = Timestamp::now();
    let m = ws.mutate(ops::CommitKind::Escalated, TxOptions::default(), |tx| {
        escalate_in(tx, id, actor, q, &now)
    })?;
    Ok(m.value.map(|(d, _)| d))
}

/// A person's answer to a decision bead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Deny,
    Answer(String),
}

/// What resolving a decision did.
#[derive(Debug, serde::Serialize)]
pub struct Decided {
    pub decision: String,
    pub verdict: String,
    /// Beads it blocked and what happened to each: `reopened`, `closed`, or `still blocked`.
    pub beads: Vec<DecidedBead>,
}

#[derive(Debug, serde::Serialize)]
pub struct DecidedBead {
    pub id: String,
    pub result: String,
}

/// Resolves decision bead `id`: approve or answer reopens the beads it blocked with a fresh
/// dispatch budget (an answer is added to them as a comment; approving a merge marks it
/// approved); deny closes them.
pub fn decide(ws: &Workspace, id: &str, verdict: &Verdict) -> Result<Decided> {
    let now = Timestamp::now();
    let actor = ws.actor.clone();
    let m = ws.mutate(ops::CommitKind::Decided, TxOptions::default(), |tx| {
        let d = tx
            .get(id)?
            .cloned()
            .ok_or_else(|| Error::NotFound(id.to_owned()))?;
        if d.issue_type != issue_type::DECISION {
            return Err(Error::Usage(format!(
                "{id} is a {}, not a decision bead; `loom decide` resolves decisions (see `loom list -t decision`)",
                d.issue_type
            )));
        }
        if status::resolves_blockers(&d.status) {
            return Err(Error::Refused(format!("{id} is already {}", d.status)));
        }
        let (reason, word) = match verdict {
            Verdict::Approve => (format!("Approved by {actor}"), "approve"),
            Verdict::Deny => (format!("Denied by {actor}"), "deny"),
            Verdict::Answer(a) => (format!("Answered by {actor}: {a}"), "answer"),
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
            let result = resolve_blocked(tx, &bid, id, verdict, &actor, &now)?;
            done.push(DecidedBead { id: bid, result });
        }
        Ok(Decided {
            decision: id.to_owned(),
            verdict: word.to_owned(),
            beads: done,
        })
    })?;
    Ok(m.value)
}

fn resolve_blocked(
    tx: &mut Tx,
    bid: &str,
    decision: &str,
    verdict: &Verdict,
    actor: &str,
    now: &Timestamp,
) -> Result<String> {
    let b = tx.get_mut(bid)?;
    if status::resolves_blockers(&b.status) {
        return Ok(format!("already {}", b.status));
    }
    if *verdict == Verdict::Deny {
        bead::set_status(
            b,
            status::CLOSED,
            now,
            Some(&format!("Not pursued: decision {decision} was denied")),
        );
        let l = b.loom_mut();
        l.remove("owner");
        l.insert("stage".into(), json!(Stage::Denied));
        return Ok("closed".into());
    }
    if let Verdict::Answer(text) = verdict {
        let c = b.new_comment(actor, &format!("Decision {decision}: {text}"), now);
        b.comments.push(c);
    }
    let awaiting = b
        .loom_get("stage")
        .and_then(Value::as_str)
        .map(Stage::parse)
        == Some(Stage::AwaitingApproval);
    let l = b.loom_mut();
    l.insert("dispatches".into(), json!(0));
    l.remove("escalation");
    if awaiting && *verdict == Verdict::Approve {
        l.insert("merge_approved".into(), json!(true));
    }
    l.insert("stage".into(), json!(Stage::Decided));
    // Other open blockers keep it blocked; `blocked` is only the status Loom set.
    let other_blockers = {
        let deps: Vec<String> = b
            .dependencies
            .iter()
            .filter(|x| dep_type::blocks_directly(&x.dep_type) && x.depends_on_id != decision)
            .map(|x| x.depends_on_id.clone())
            .collect();
        let mut open = false;
        for d in deps {
            if let Some(t) = tx.get(&d)?
                && !status::resolves_blockers(&t.status)
            {
                open = true;
            }
        }
        open
    };
    let b = tx.get_mut(bid)?;
    if b.status == status::BLOCKED {
        bead::set_status(b, status::OPEN, now, None);
    }
    Ok(if other_blockers {
        "reopened (other blockers remain)".into()
    } else {
        "reopened".into()
    })
}
