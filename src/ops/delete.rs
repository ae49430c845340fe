//! bd's `delete`: beads go for good (git keeps their history). Links other beads had to them
//! are removed, and those beads' texts that mention a deleted id say `[deleted:<id>]`
//! instead. `--cascade` takes every bead that depends on a deleted one along, recursively;
//! otherwise such beads are left without the link ("orphaned").

use std::collections::BTreeSet;

use crate::bead::graph::Graph;
use crate::bead::{Bead, FastSet};
use crate::error::Result;
use crate::store::Tx;

/// What a deletion takes and touches, worked out before anything changes (the preview).
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// The beads to delete, with their titles: those asked for first, then cascaded ones.
    pub beads: Vec<(String, String)>,
    /// Links that go with them: `(from, to, type)`.
    pub links: Vec<(String, String, String)>,
    /// Beads left behind that link to a deleted one (their links are removed).
    pub connected: Vec<(String, String)>,
    /// Connected beads whose text mentions a deleted id.
    pub referencing: Vec<String>,
}

impl Plan {
    /// Connected beads that depended on a deleted bead (bd's "orphaned").
    pub fn orphans(&self) -> Vec<String> {
        let gone: FastSet<&str> = self.beads.iter().map(|(id, _)| id.as_str()).collect();
        let mut out: BTreeSet<String> = BTreeSet::new();
        for (from, to, _) in &self.links {
            if gone.contains(to.as_str()) && !gone.contains(from.as_str()) {
                out.insert(from.clone());
            }
        }
        out.into_iter().collect()
    }
}

/// The outcome (bd's JSON counts).
#[derive(Clone, Debug, Default)]
pub struct Deleted {
    pub deleted: Vec<String>,
    pub dependencies_removed: usize,
    pub references_updated: usize,
    pub orphaned: Vec<String>,
}

/// Works out what deleting `ids` (exact ids) takes.
pub fn plan(tx: &mut Tx, ids: &[String], cascade: bool) -> Result<Plan> {
    let beads = tx.all()?;
    let graph = Graph::new(beads);
    let mut order: Vec<String> = Vec::new();
    let mut seen: FastSet<String> = FastSet::default();
    for id in ids {
        if seen.insert(id.clone()) {
            order.push(id.clone());
        }
    }
    if cascade {
        let mut i = 0;
        while i < order.len() {
            for (dependent, _) in graph.dependents(&order[i]) {
                if seen.insert(dependent.id.clone()) {
                    order.push(dependent.id.clone());
                }
            }
            i += 1;
        }
    }
    let mut plan = Plan::default();
    let mut connected: BTreeSet<String> = BTreeSet::new();
    for id in &order {
        let Some(b) = graph.get(id) else { continue };
        plan.beads.push((id.clone(), b.title.clone()));
        for d in &b.dependencies {
            plan.links
                .push((id.clone(), d.depends_on_id.clone(), d.dep_type.clone()));
            if !seen.contains(&d.depends_on_id) && graph.get(&d.depends_on_id).is_some() {
                connected.insert(d.depends_on_id.clone());
            }
        }
        for (dependent, d) in graph.dependents(id) {
            if !seen.contains(&dependent.id) {
                plan.links
                    .push((dependent.id.clone(), id.clone(), d.dep_type.clone()));
                connected.insert(dependent.id.clone());
            }
        }
    }
    for c in connected {
        let Some(b) = tx.get(&c)? else { continue };
        let title = b.title.clone();
        if order.iter().any(|id| mentions(b, id)) {
            plan.referencing.push(c.clone());
        }
        plan.connected.push((c, title));
    }
    Ok(plan)
}

/// Carries out `plan`.
pub fn delete(tx: &mut Tx, plan: &Plan) -> Result<Deleted> {
    let gone: Vec<String> = plan.beads.iter().map(|(id, _)| id.clone()).collect();
    let mut out = Deleted {
        deleted: gone.clone(),
        dependencies_removed: plan.links.len(),
        references_updated: 0,
        orphaned: plan.orphans(),
    };
    for (id, _) in &plan.connected {
        let b = tx.get_mut(id)?;
        b.dependencies.retain(|d| !gone.contains(&d.depends_on_id));
        let mut rewritten = false;
        for field in [
            &mut b.description,
            &mut b.design,
            &mut b.acceptance_criteria,
            &mut b.notes,
        ] {
            if let Some(text) = field.as_mut() {
                for g in &gone {
                    if let Some(new) = replace_word(text, g, &format!("[deleted:{g}]")) {
                        *text = new;
                        rewritten = true;
                    }
                }
            }
        }
        out.references_updated += usize::from(rewritten);
    }
    for id in &gone {
        tx.remove(id)?;
    }
    Ok(out)
}

fn mentions(b: &Bead, id: &str) -> bool {
    [&b.description, &b.design, &b.acceptance_criteria, &b.notes]
        .into_iter()
        .flatten()
        .any(|t| replace_word(t, id, "").is_some())
}

/// bd's id characters: an occurrence of an id counts only between other characters.
fn id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// `text` with whole-word occurrences of `word` replaced; `None` if there are none.
fn replace_word(text: &str, word: &str, with: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut last: Option<char> = None;
    let mut found = false;
    while let Some(at) = rest.find(word) {
        let before = rest[..at].chars().next_back().or(last);
        let after = rest[at + word.len()..].chars().next();
        out.push_str(&rest[..at]);
        if before.is_none_or(|c| !id_char(c)) && after.is_none_or(|c| !id_char(c)) {
            out.push_str(with);
            found = true;
        } else {
            out.push_str(word);
        }
        last = word.chars().next_back();
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::replace_word;

    #[test]
    fn only_whole_ids_are_replaced() {
        assert_eq!(
            replace_word(
                "see bd-1, not bd-12 or xbd-1; (bd-1)",
                "bd-1",
                "[deleted:bd-1]"
            )
            .as_deref(),
            Some("see [deleted:bd-1], not bd-12 or xbd-1; ([deleted:bd-1])")
        );
        assert_eq!(replace_word("bd-12", "bd-1", "x"), None);
        assert_eq!(replace_word("bd-1", "bd-1", "x").as_deref(), Some("x"));
        assert_eq!(replace_word("bd-1.2", "bd-1", "x").as_deref(), Some("x.2"));
    }
}
