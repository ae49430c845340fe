//! New beads: the id (given, `<parent>.N`, or bd's hash), the record, its parent and the
//! dependencies `--deps` names, in bd's directions.

use crate::bead::id as bead_id;
use crate::bead::{Bead, Timestamp, dep_type, issue_type, status};
use crate::error::{Error, Result};
use crate::store::Tx;

use super::edit;

/// One `--deps` entry: `id` or `blocked-by:id` (the new bead waits for `id`), `blocks:id`
/// (`id` waits for the new bead), `<type>:id` (the new bead → `id` with that type).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepSpec {
    pub kind: String,
    /// The target as given (a full or partial id).
    pub target: String,
    /// The edge runs from the target to the new bead (`blocks:`).
    pub reverse: bool,
}

impl DepSpec {
    /// Parses one entry the way bd does.
    pub fn parse(spec: &str) -> Result<DepSpec> {
        let spec = spec.trim();
        let (kind, target) = match spec.split_once(':') {
            Some((k, t)) => (k.trim(), t.trim()),
            None => ("", spec),
        };
        if target.is_empty() {
            return Err(Error::Usage(format!(
                "--deps {spec:?}: no bead id; write `id`, `blocked-by:id`, `blocks:id` or `<type>:id`"
            )));
        }
        let (kind, reverse) = match kind {
            "" | "blocked-by" | "depends-on" => (dep_type::BLOCKS, false),
            "blocks" => (dep_type::BLOCKS, true),
            other => (other, false),
        };
        Ok(DepSpec {
            kind: kind.to_owned(),
            target: target.to_owned(),
            reverse,
        })
    }
}

/// What a new bead is made of. `NewBead::new` gives bd's defaults (a task, priority 2).
#[derive(Clone, Debug)]
pub struct NewBead {
    pub title: String,
    pub description: Option<String>,
    pub design: Option<String>,
    pub acceptance_criteria: Option<String>,
    pub notes: Option<String>,
    pub external_ref: Option<String>,
    pub issue_type: String,
    pub priority: i64,
    pub assignee: Option<String>,
    pub labels: Vec<String>,
    /// Make it a child of this bead (full or partial id): id `<parent>.N` unless `id` is
    /// given, and a `parent-child` dependency.
    pub parent: Option<String>,
    pub deps: Vec<DepSpec>,
    /// Use this id instead of a generated one.
    pub id: Option<String>,
    pub due_at: Option<Timestamp>,
    pub defer_until: Option<Timestamp>,
    pub ephemeral: bool,
    /// Who creates it (`created_by`, and the creator in bd's id hash).
    pub created_by: String,
}

impl NewBead {
    pub fn new(title: impl Into<String>, created_by: impl Into<String>) -> NewBead {
        NewBead {
            title: title.into(),
            description: None,
            design: None,
            acceptance_criteria: None,
            notes: None,
            external_ref: None,
            issue_type: issue_type::TASK.to_owned(),
            priority: 2,
            assignee: None,
            labels: Vec::new(),
            parent: None,
            deps: Vec::new(),
            id: None,
            due_at: None,
            defer_until: None,
            ephemeral: false,
            created_by: created_by.into(),
        }
    }
}

/// Creates `new` in `tx`; its id.
pub fn create(tx: &mut Tx, new: &NewBead, now: &Timestamp) -> Result<String> {
    let parent = new.parent.as_deref().map(|p| tx.resolve(p)).transpose()?;
    let id = match (&new.id, &parent) {
        (Some(id), _) => {
            let id = id.trim().to_owned();
            if tx.exists(&id)? {
                return Err(Error::Exists(id));
            }
            id
        }
        (None, Some(p)) => bead_id::next_child(p, tx.ids()?.iter().map(String::as_str)),
        (None, None) => tx.new_id(
            &new.title,
            new.description.as_deref().unwrap_or(""),
            &new.created_by,
            now,
        )?,
    };
    let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let mut bead = Bead {
        id: id.clone(),
        title: new.title.clone(),
        description: nonempty(&new.description),
        design: nonempty(&new.design),
        acceptance_criteria: nonempty(&new.acceptance_criteria),
        notes: nonempty(&new.notes),
        status: status::OPEN.to_owned(),
        priority: new.priority,
        issue_type: new.issue_type.trim().to_owned(),
        assignee: nonempty(&new.assignee),
        created_at: Some(now.clone()),
        created_by: Some(new.created_by.clone()),
        updated_at: Some(now.clone()),
        due_at: new.due_at.clone(),
        defer_until: new.defer_until.clone(),
        external_ref: nonempty(&new.external_ref),
        ephemeral: new.ephemeral.then_some(true),
        ..Bead::default()
    };
    for l in &new.labels {
        if !bead.labels.contains(l) {
            bead.labels.push(l.clone());
        }
    }
    if let Some(p) = &parent {
        bead.dependencies.push(edit::dependency(
            &id,
            p,
            dep_type::PARENT_CHILD,
            now,
            &new.created_by,
        ));
    }
    tx.insert(bead)?;
    for spec in &new.deps {
        let target = tx.resolve(&spec.target)?;
        let (from, to) = if spec.reverse {
            (target.as_str(), id.as_str())
        } else {
            (id.as_str(), target.as_str())
        };
        edit::add_dependency(tx, from, to, &spec.kind, &new.created_by, now)?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deps_follow_bds_directions() {
        let p = |s| DepSpec::parse(s).unwrap();
        assert_eq!(
            p("bd-1"),
            DepSpec {
                kind: "blocks".into(),
                target: "bd-1".into(),
                reverse: false
            }
        );
        assert!(!p("blocked-by:bd-1").reverse);
        assert_eq!(p("blocked-by:bd-1").kind, "blocks");
        assert!(p("blocks:bd-1").reverse);
        let d = p("discovered-from: bd-2");
        assert_eq!(
            (d.kind.as_str(), d.target.as_str(), d.reverse),
            ("discovered-from", "bd-2", false)
        );
        assert!(DepSpec::parse("blocks:").is_err());
    }
}
