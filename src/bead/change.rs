//! What changed between two versions of a bead, in words a person (or a commit subject) can
//! use: `open → in_progress`, `priority 2 → 1`, `+label ui`.

use serde::Serialize;

use super::Bead;

/// One field that differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FieldChange {
    pub field: String,
    /// Short rendering of the old value (`None`: absent).
    pub before: Option<String>,
    /// Short rendering of the new value (`None`: absent).
    pub after: Option<String>,
}

const SHORT: usize = 40;

fn short(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    let mut out: String = line.chars().take(SHORT).collect();
    if line.chars().count() > SHORT || s.lines().nth(1).is_some() {
        out.push('…');
    }
    out
}

/// The end of `s` (its last line's last [`SHORT`] characters), for values whose beginnings
/// are the same.
fn short_end(s: &str) -> String {
    let line = s.lines().last().unwrap_or("");
    let n = line.chars().count();
    if n <= SHORT && s.lines().nth(1).is_none() {
        return line.to_owned();
    }
    let tail: String = line.chars().skip(n.saturating_sub(SHORT)).collect();
    format!("…{tail}")
}

fn opt(s: &Option<String>) -> Option<String> {
    s.as_deref().map(short)
}

/// The fields that differ between `before` and `after`, in bd's key order.
pub fn diff(before: &Bead, after: &Bead) -> Vec<FieldChange> {
    let mut out = Vec::new();
    // Compared whole, shown short: two values may differ only past what `short` keeps (then
    // their ends are shown), and a change must never read as no change.
    let mut push = |field: &str, b: Option<String>, a: Option<String>| {
        if b != a {
            let (mut sb, mut sa) = (b.as_deref().map(short), a.as_deref().map(short));
            if sb == sa {
                (sb, sa) = (b.as_deref().map(short_end), a.as_deref().map(short_end));
            }
            out.push(FieldChange {
                field: field.to_owned(),
                before: sb,
                after: sa,
            });
        }
    };
    push(
        "title",
        Some(before.title.clone()),
        Some(after.title.clone()),
    );
    // Long text fields: report that they changed, not their whole text.
    // (Compared whole: two texts may differ only past what `short` keeps.)
    let mut long = Vec::new();
    for (name, b, a) in [
        ("description", &before.description, &after.description),
        ("design", &before.design, &after.design),
        (
            "acceptance_criteria",
            &before.acceptance_criteria,
            &after.acceptance_criteria,
        ),
        ("notes", &before.notes, &after.notes),
    ] {
        if b != a {
            long.push(FieldChange {
                field: name.to_owned(),
                before: opt(b),
                after: opt(a),
            });
        }
    }
    push(
        "status",
        Some(before.status.clone()),
        Some(after.status.clone()),
    );
    push(
        "priority",
        Some(before.priority.to_string()),
        Some(after.priority.to_string()),
    );
    push(
        "issue_type",
        Some(before.issue_type.clone()),
        Some(after.issue_type.clone()),
    );
    push("assignee", before.assignee.clone(), after.assignee.clone());
    push("owner", before.owner.clone(), after.owner.clone());
    push(
        "close_reason",
        before.close_reason.clone(),
        after.close_reason.clone(),
    );
    let time = |t: &Option<super::Timestamp>| t.as_ref().map(|t| t.as_str().to_owned());
    push("due_at", time(&before.due_at), time(&after.due_at));
    push(
        "defer_until",
        time(&before.defer_until),
        time(&after.defer_until),
    );
    push(
        "external_ref",
        before.external_ref.clone(),
        after.external_ref.clone(),
    );
    for l in after.labels.iter().filter(|l| !before.labels.contains(l)) {
        push("labels", None, Some(l.clone()));
    }
    for l in before.labels.iter().filter(|l| !after.labels.contains(l)) {
        push("labels", Some(l.clone()), None);
    }
    let edge = |d: &super::Dependency| format!("{} ({})", d.depends_on_id, d.dep_type);
    let has = |list: &[super::Dependency], d: &super::Dependency| {
        list.iter()
            .any(|e| e.depends_on_id == d.depends_on_id && e.dep_type == d.dep_type)
    };
    for d in after
        .dependencies
        .iter()
        .filter(|d| !has(&before.dependencies, d))
    {
        push("dependencies", None, Some(edge(d)));
    }
    for d in before
        .dependencies
        .iter()
        .filter(|d| !has(&after.dependencies, d))
    {
        push("dependencies", Some(edge(d)), None);
    }
    if after.comments.len() > before.comments.len() {
        let added = after.comments.len() - before.comments.len();
        push(
            "comments",
            None,
            Some(format!("{added} new comment{}", plural(added))),
        );
    }
    if before.metadata != after.metadata {
        push("metadata", None, Some("changed".into()));
    }
    for (k, v) in &after.extra {
        if before.extra.get(k) != Some(v) {
            push(
                k,
                before.extra.get(k).map(|v| short(&v.to_string())),
                Some(short(&v.to_string())),
            );
        }
    }
    for k in before
        .extra
        .keys()
        .filter(|k| !after.extra.contains_key(*k))
    {
        push(k, Some("set".into()), None);
    }
    // The long fields come right after the title, in bd's key order.
    let at = usize::from(out.first().is_some_and(|c| c.field == "title"));
    out.splice(at..at, long);
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A one-line summary of `changes`, for commit subjects and watch output.
pub fn summarize(changes: &[FieldChange]) -> String {
    let parts: Vec<String> = changes
        .iter()
        .map(|c| match (c.field.as_str(), &c.before, &c.after) {
            ("status", Some(b), Some(a)) => format!("{b} → {a}"),
            ("labels", None, Some(a)) => format!("+label {a}"),
            ("labels", Some(b), None) => format!("-label {b}"),
            ("dependencies", None, Some(a)) => format!("+dep {a}"),
            ("dependencies", Some(b), None) => format!("-dep {b}"),
            ("comments", _, Some(a)) => a.clone(),
            ("priority", Some(b), Some(a)) => format!("priority {b} → {a}"),
            ("description" | "design" | "acceptance_criteria" | "notes" | "metadata", _, _) => {
                format!("{} edited", c.field)
            }
            (f, Some(b), Some(a)) => format!("{f} {b:?} → {a:?}"),
            (f, None, Some(a)) => format!("{f} {a:?}"),
            (f, Some(_), None) => format!("{f} cleared"),
            (f, None, None) => f.to_owned(),
        })
        .collect();
    if parts.is_empty() {
        "no change".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {

    /// A change past the first 40 characters is still a change, shown by the ends.
    #[test]
    fn long_values_that_differ_late_are_a_change() {
        let before = Bead {
            title: "Split orchestrator/dispatch.rs (948 lines) and cli/read.rs (708)".into(),
            ..Bead::default()
        };
        let after = Bead {
            title: "Split orchestrator/dispatch.rs (948 lines) into policy and epic files".into(),
            ..Bead::default()
        };
        let d = diff(&before, &after);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_ne!(d[0].before, d[0].after);
        assert!(
            d[0].after
                .as_deref()
                .is_some_and(|a| a.ends_with("policy and epic files"))
        );
        assert_ne!(summarize(&d), "no change");
    }
    use super::*;
    use crate::bead::Dependency;

    #[test]
    fn summarizes_common_edits() {
        let a = Bead {
            id: "x-1".into(),
            title: "T".into(),
            status: "open".into(),
            priority: 2,
            ..Bead::default()
        };
        let mut b = a.clone();
        b.status = "in_progress".into();
        b.priority = 1;
        b.labels.push("ui".into());
        b.dependencies.push(Dependency {
            issue_id: "x-1".into(),
            depends_on_id: "x-2".into(),
            dep_type: "blocks".into(),
            ..Dependency::default()
        });
        assert_eq!(
            summarize(&diff(&a, &b)),
            "open → in_progress, priority 2 → 1, +label ui, +dep x-2 (blocks)"
        );
        assert_eq!(summarize(&diff(&a, &a)), "no change");
        let mut long = a.clone();
        long.notes = Some(format!("{}\n\nmore", "x".repeat(200)));
        let mut longer = long.clone();
        longer.notes = Some(format!("{}\n\nmore and more", "x".repeat(200)));
        assert_eq!(
            summarize(&diff(&long, &longer)),
            "notes edited",
            "texts that differ past their first line"
        );
    }
}
