//! Taking a change back: each bead it touched is put back as it was before — a new commit
//! (`Loom-Event: undone`), never a rewrite of history. A bead someone changed again since is
//! left alone and named: undoing must not throw away later work.

use crate::bead::{Bead, Timestamp};
use crate::error::{Error, Result};
use crate::store::{self, TxOptions};
use crate::workspace::{Mutation, Workspace};

use super::CommitKind;

/// Puts back what `changes` (one earlier change's) did; the ids undone.
pub fn undo(ws: &Workspace, changes: &[store::Change]) -> Result<Mutation<Vec<String>>> {
    let now = Timestamp::now();
    ws.mutate(CommitKind::Undone, TxOptions::default(), |tx| {
        let mut done = Vec::new();
        for c in changes {
            let current = tx.get(&c.id)?.cloned();
            match (current, &c.before) {
                (Some(cur), _) if !same(&cur, &c.after) => {
                    return Err(Error::Refused(format!(
                        "{} changed again since; nothing was undone (change it back by hand, or use `git log` and `loom update`)",
                        c.id
                    )));
                }
                (None, _) => {
                    return Err(Error::Refused(format!(
                        "{} is gone; nothing was undone",
                        c.id
                    )));
                }
                // It was created by the change: it goes again.
                (Some(_), None) => {
                    tx.remove(&c.id)?;
                }
                (Some(_), Some(before)) => {
                    let b = tx.get_mut(&c.id)?;
                    let mut back = before.clone();
                    back.updated_at = Some(now.clone());
                    *b = back;
                }
            }
            done.push(c.id.clone());
        }
        Ok(done)
    })
}

/// Whether `a` is `b` as far as people changed it (the store's own timestamp aside).
fn same(a: &Bead, b: &Bead) -> bool {
    let mut x = a.clone();
    x.updated_at.clone_from(&b.updated_at);
    x == *b
}
