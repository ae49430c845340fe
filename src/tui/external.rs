//! Editing a bead in `$VISUAL`/`$EDITOR`: the bead is written as YAML to a temp file (either
//! backend), the editor runs with the terminal handed over, and the result is checked on
//! return — a file that does not parse or breaks a rule goes back to the editor with the
//! reason on top, so nothing typed is lost; an empty or unchanged file cancels.

use std::path::Path;
use std::process::Command;

use crate::bead::{self, Bead};
use crate::error::{Error, Result};
use crate::store::yaml;

/// What came back from the editor.
#[derive(Debug, PartialEq)]
pub enum Edited {
    /// Left as it was (or emptied): nothing to do.
    Unchanged,
    /// A valid bead with the same id.
    Changed(Box<Bead>),
    /// Why the text is not a bead Loom can write (shown in the file on the next round).
    Invalid(String),
}

/// The editor command: `$VISUAL`, then `$EDITOR`, then `vi`.
pub fn editor() -> String {
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "vi".to_owned())
}

/// The first text shown in the editor.
pub fn initial_text(b: &Bead) -> Result<String> {
    Ok(format!(
        "# Editing {} — save and quit to apply; empty the file to cancel.\n{}",
        b.id,
        yaml::render(b)?
    ))
}

/// The text for another round: the reason on top, then what the user wrote (without an
/// earlier reason).
pub fn retry_text(reason: &str, text: &str) -> String {
    let body: Vec<&str> = text
        .lines()
        .skip_while(|l| l.starts_with("# loom:"))
        .collect();
    let mut out = String::new();
    for line in reason.lines() {
        out.push_str("# loom: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("# loom: fix it and save, or empty the file to cancel.\n");
    out.push_str(&body.join("\n"));
    out.push('\n');
    out
}

/// Checks what came back for bead `original`.
pub fn check(original: &Bead, before: &str, after: &str) -> Edited {
    let meaningful = |t: &str| {
        t.lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    if meaningful(after).is_empty() || meaningful(after) == meaningful(before) {
        return Edited::Unchanged;
    }
    let shown = Path::new("the edited bead");
    let b = match yaml::parse(after.as_bytes(), shown, shown) {
        Ok(b) => b,
        Err(p) => return Edited::Invalid(p.message),
    };
    if b.id != original.id {
        return Edited::Invalid(format!(
            "the id changed from {} to {}; ids cannot be edited",
            original.id, b.id
        ));
    }
    if let Err(problems) = bead::validate(&b) {
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Edited::Invalid(text.join("\n"));
    }
    if &b == original {
        return Edited::Unchanged;
    }
    Edited::Changed(Box::new(b))
}

/// Runs the editor on `path` and waits for it (the terminal must be handed over).
pub fn run_editor(path: &Path) -> Result<()> {
    let cmd = editor();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{cmd} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .map_err(|e| Error::Other(format!("cannot start the editor `{cmd}`: {e}")))?;
    if !status.success() {
        return Err(Error::Other(format!(
            "the editor `{cmd}` exited with {status}; nothing was changed (set $EDITOR to the editor you use)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bead() -> Bead {
        let now = crate::bead::Timestamp::now();
        Bead {
            created_at: Some(now.clone()),
            updated_at: Some(now),
            id: "t-1".into(),
            title: "A title".into(),
            status: "open".into(),
            priority: 2,
            issue_type: "task".into(),
            ..Bead::default()
        }
    }

    #[test]
    fn what_comes_back_from_the_editor() {
        let b = bead();
        let before = initial_text(&b).unwrap();
        assert_eq!(check(&b, &before, &before), Edited::Unchanged);
        assert_eq!(check(&b, &before, ""), Edited::Unchanged, "emptied: cancel");
        let changed = before.replace("A title", "Another title");
        match check(&b, &before, &changed) {
            Edited::Changed(n) => assert_eq!(n.title, "Another title"),
            other => panic!("{other:?}"),
        }
        let bad = before.replace("priority: 2", "priority: 9");
        match check(&b, &before, &bad) {
            Edited::Invalid(why) => assert!(why.contains("priority"), "{why}"),
            other => panic!("{other:?}"),
        }
        let broken = before.replace("title: A title", "title: [unclosed");
        assert!(matches!(check(&b, &before, &broken), Edited::Invalid(_)));
        let renamed = before.replace("id: t-1", "id: t-2");
        match check(&b, &before, &renamed) {
            Edited::Invalid(why) => assert!(why.contains("ids cannot be edited"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn another_round_keeps_the_text_and_replaces_the_reason() {
        let first = retry_text("priority: is 9", "id: t-1\npriority: 9\n");
        assert!(first.starts_with("# loom: priority: is 9\n"));
        let second = retry_text("title: must not be empty", &first);
        assert!(!second.contains("is 9"), "{second}");
        assert!(second.ends_with("id: t-1\npriority: 9\n"), "{second}");
    }
}
