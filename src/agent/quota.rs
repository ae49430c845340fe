//! How many beads agents may file: per bead (`budget.bead_created_beads`, default 5) and per
//! run (`budget.run_created_beads`, default 20). An agent that files a bead every session
//! would otherwise keep a run going for ever. The first refusal is remembered, so the
//! orchestrator stops dispatching and asks a person once. The beads filed are remembered too:
//! follow-ups wait for the next run unless `dispatch_followups` (an epic's planned children
//! are its plan, not follow-ups).

use std::collections::HashMap;
use std::sync::Mutex;

/// Default beads agents may file in one run.
pub const DEFAULT_RUN: u32 = 20;
/// Default beads agents may file while working one bead.
pub const DEFAULT_BEAD: u32 = 5;

#[derive(Debug, Default)]
struct State {
    run: u32,
    per_bead: HashMap<String, u32>,
    /// Beads filed, and whether each is a follow-up (anything but an epic's plan).
    created: Vec<(String, bool)>,
    hit: Option<String>,
}

/// Counts the beads agents file, shared by every agent of a run.
#[derive(Debug)]
pub struct Quota {
    run_limit: u32,
    bead_limit: u32,
    state: Mutex<State>,
}

impl Default for Quota {
    fn default() -> Quota {
        Quota::new(DEFAULT_RUN, DEFAULT_BEAD)
    }
}

impl Quota {
    pub fn new(run_limit: u32, bead_limit: u32) -> Quota {
        Quota {
            run_limit,
            bead_limit,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one bead of the quota for an agent working on `bead`, or says which limit is
    /// reached (and remembers it).
    pub fn reserve(&self, bead: &str) -> Result<(), String> {
        let mut s = self.state();
        let here = s.per_bead.get(bead).copied().unwrap_or(0);
        let refused = if here >= self.bead_limit {
            Some(format!(
                "agents working on {bead} already filed {here} beads (budget.bead_created_beads: {})",
                self.bead_limit
            ))
        } else if s.run >= self.run_limit {
            Some(format!(
                "agents already filed {} beads in this run (budget.run_created_beads: {})",
                s.run, self.run_limit
            ))
        } else {
            None
        };
        if let Some(why) = refused {
            s.hit.get_or_insert_with(|| why.clone());
            return Err(why);
        }
        s.run += 1;
        *s.per_bead.entry(bead.to_owned()).or_default() += 1;
        Ok(())
    }

    /// Gives back a reservation whose bead was not filed after all.
    pub fn release(&self, bead: &str) {
        let mut s = self.state();
        s.run = s.run.saturating_sub(1);
        if let Some(n) = s.per_bead.get_mut(bead) {
            *n = n.saturating_sub(1);
        }
    }

    /// Records a bead an agent filed: a follow-up, or a child in an epic's plan.
    pub fn created(&self, id: &str, followup: bool) {
        self.state().created.push((id.to_owned(), followup));
    }

    /// Whether `id` is a follow-up an agent of this run filed (not dispatched in the same run
    /// unless `dispatch_followups`).
    pub fn is_followup(&self, id: &str) -> bool {
        self.state().created.iter().any(|(c, f)| c == id && *f)
    }

    /// How many beads agents filed in this run.
    pub fn count(&self) -> u32 {
        self.state().run
    }

    /// The first limit an agent ran into, if any.
    pub fn hit(&self) -> Option<String> {
        self.state().hit.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_bead_and_per_run() {
        let q = Quota::new(3, 2);
        assert!(q.reserve("a").is_ok());
        assert!(q.reserve("a").is_ok());
        assert!(q.reserve("a").unwrap_err().contains("bead_created_beads"));
        assert!(q.hit().unwrap().contains("already filed 2 beads"));
        assert!(q.reserve("b").is_ok());
        assert!(q.reserve("c").unwrap_err().contains("run_created_beads"));
        q.release("b");
        assert!(q.reserve("c").is_ok());
        assert_eq!(q.count(), 3);
        q.created("x-1", true);
        q.created("x-2", false);
        assert!(q.is_followup("x-1") && !q.is_followup("x-2") && !q.is_followup("x-3"));
    }
}
