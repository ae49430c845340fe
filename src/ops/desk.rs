//! [`AgentDesk`]: the narrow set of bead operations an agent's tools may ask for — file a
//! follow-up bead, comment on its own bead, escalate it to a person. The tools see only this
//! trait: locally the [`Workspace`] carries the requests out; a remote worker's desk sends the
//! same requests to the machine that owns the repository.

use crate::bead::{Timestamp, dep_type, issue_type};
use crate::error::Result;
use crate::store::TxOptions;
use crate::workspace::Workspace;

use super::change::{self, Change};
use super::decision::{self, Question};
use super::{CommitKind, DepSpec, NewBead};

/// A bead an agent files while working on `from`.
#[derive(Clone, Debug, Default)]
pub struct FollowUp {
    pub title: String,
    pub description: Option<String>,
    pub issue_type: Option<String>,
    pub priority: Option<i64>,
    /// Beads it waits on (its order among siblings).
    pub after: Vec<String>,
}

/// What filing did: the new id, and whether it is a child of an epic (else discovered from the
/// bead being worked on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filed {
    pub id: String,
    pub child: bool,
}

/// The bead operations open to an agent's tools.
pub trait AgentDesk: Send + Sync {
    /// Files `f` from bead `from` as `agent`; `noted` hears of the new id before the bead is
    /// visible to others (so a run counts it as its own follow-up).
    fn file(&self, from: &str, agent: &str, f: &FollowUp, noted: &dyn Fn(&Filed)) -> Result<Filed>;
    /// Comments on `bead` as `agent`.
    fn comment(&self, bead: &str, agent: &str, text: &str) -> Result<()>;
    /// Blocks `bead` on a decision asking `q`; the decision's id (`None`: `bead` is itself a
    /// decision, which never spawns another).
    fn escalate(&self, bead: &str, agent: &str, q: &Question) -> Result<Option<String>>;
}

impl AgentDesk for Workspace {
    fn file(&self, from: &str, agent: &str, f: &FollowUp, noted: &dyn Fn(&Filed)) -> Result<Filed> {
        let now = Timestamp::now();
        let m = self.mutate(CommitKind::Created, TxOptions::default(), |tx| {
            // An epic's planner files its children (the epic closes when they are done); any
            // other agent files what it discovered.
            let child = tx
                .get(from)?
                .is_some_and(|b| b.issue_type == issue_type::EPIC);
            let mut new = NewBead::new(&f.title, agent.to_owned());
            new.description = f.description.clone();
            new.priority = f.priority.unwrap_or(2);
            new.issue_type = f
                .issue_type
                .clone()
                .unwrap_or_else(|| issue_type::TASK.to_owned());
            if child {
                new.parent = Some(from.to_owned());
            } else {
                new.deps = vec![DepSpec {
                    kind: dep_type::DISCOVERED_FROM.to_owned(),
                    target: from.to_owned(),
                    reverse: false,
                }];
            }
            new.deps.extend(f.after.iter().map(|on| DepSpec {
                kind: dep_type::BLOCKS.to_owned(),
                target: on.clone(),
                reverse: false,
            }));
            let filed = Filed {
                id: super::create(tx, &new, &now)?,
                child,
            };
            noted(&filed);
            Ok(filed)
        })?;
        Ok(m.value)
    }

    fn comment(&self, bead: &str, agent: &str, text: &str) -> Result<()> {
        let c = Change::Comment {
            author: agent.to_owned(),
            text: text.to_owned(),
        };
        change::edit_as(self, bead, agent, &c).map(drop)
    }

    fn escalate(&self, bead: &str, agent: &str, q: &Question) -> Result<Option<String>> {
        decision::escalate(self, bead, agent, q)
    }
}
