//! What the model is told: the persona, the tool protocol and the repository's context (file
//! tree, README, AGENTS.md/CONTRIBUTING, lessons) in the system prompt; the bead itself (with its
//! comments and dependency summaries) as the first user message. Also the history policy that
//! keeps the conversation under the model's context window.

use std::path::Path;

use crate::bead::Bead;
use crate::bead::graph::Graph;
use crate::llm::{Message, Role};

use super::persona::Persona;
use super::tools;

/// Whether tools go to the model as native definitions or as a text protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolMode {
    /// Native tool calls (a JSON-in-text call is accepted too).
    #[default]
    Native,
    /// Tools described in the prompt, called by replying with JSON.
    Text,
}

fn head(text: &str, lines: usize) -> String {
    let mut out: Vec<&str> = text.lines().take(lines).collect();
    if text.lines().count() > lines {
        out.push("…");
    }
    out.join("\n")
}

/// The top of the repository: each entry, directories with their file count.
pub fn file_tree(root: &Path) -> String {
    let mut top: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .require_git(false)
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    for entry in walker.flatten() {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        let mut comps = rel.components();
        let Some(first) = comps.next() else { continue };
        let name = first.as_os_str().to_string_lossy().into_owned();
        let key = if comps.next().is_some() {
            format!("{name}/")
        } else {
            name
        };
        *top.entry(key).or_default() += 1;
    }
    let mut lines: Vec<String> = top
        .into_iter()
        .map(|(k, n)| {
            if k.ends_with('/') {
                format!("{k} ({n} files)")
            } else {
                k
            }
        })
        .collect();
    if lines.len() > 60 {
        let more = lines.len() - 60;
        lines.truncate(60);
        lines.push(format!("… and {more} more entries"));
    }
    lines.join("\n")
}

fn read_head(root: &Path, names: &[&str], lines: usize) -> Option<(String, String)> {
    names.iter().find_map(|n| {
        // The worktree is the agent's: a plain file only (a symlink could point at a key, a
        // FIFO would block), and only its head.
        let file = crate::store::fsio::open_regular(&root.join(n)).ok()??;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(file, 64 * 1024), &mut bytes).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        (!text.trim().is_empty()).then(|| ((*n).to_owned(), head(&text, lines)))
    })
}

/// The system prompt.
pub fn system_prompt(
    persona: &Persona,
    mode: ToolMode,
    worktree: &Path,
    lessons: Option<&str>,
) -> String {
    let mut s = persona.body.trim().to_owned();
    s.push_str("\n\n## How you act\n");
    s.push_str(
        "You work in a git worktree of the repository, on a branch of your own. Paths are relative to its root. \
         You cannot write into .git/ or .beads/. Commands run with `sh -c` in the root, with a timeout and without \
         secrets in the environment. Each tool result starts with a progress line. Loom commits your changes when \
         you finish; do not run git commit yourself.\n",
    );
    match mode {
        ToolMode::Native => s.push_str(
            "Act by calling the tools you are given. When the work is complete, call `done`; when you need a \
             person to decide something, call `escalate`. A reply without a tool call ends your turn.\n",
        ),
        ToolMode::Text => s.push_str(&tools::text_protocol(&persona.tools)),
    }
    s.push_str("\n## The repository\n");
    s.push_str(&file_tree(worktree));
    s.push('\n');
    for (names, lines) in [
        (&["README.md", "README", "README.rst", "readme.md"][..], 40),
        (&["AGENTS.md", "CLAUDE.md"][..], 60),
        (&["CONTRIBUTING.md"][..], 40),
    ] {
        if let Some((name, text)) = read_head(worktree, names, lines) {
            s.push_str(&format!("\n### {name} (start)\n{text}\n"));
        }
    }
    if let Some(l) = lessons.filter(|l| !l.trim().is_empty()) {
        s.push_str("\n## Lessons from earlier runs in this repository\n");
        s.push_str(l.trim());
        s.push('\n');
    }
    s
}

/// The bead as the first user message: its fields, latest comments and dependencies.
pub fn bead_message(bead: &Bead, graph: Option<&Graph<'_>>) -> String {
    let mut s = bead_facts(bead, graph);
    s.push_str("\nWork on this bead now.");
    s
}

/// The bead's fields, latest comments and (with a graph) dependencies both ways, as text.
pub fn bead_facts(bead: &Bead, graph: Option<&Graph<'_>>) -> String {
    let mut s = format!(
        "Bead {}: {}\nType: {} · Priority: P{} · Status: {}\n",
        bead.id, bead.title, bead.issue_type, bead.priority, bead.status
    );
    for (name, text) in [
        ("Description", &bead.description),
        ("Design", &bead.design),
        ("Acceptance criteria", &bead.acceptance_criteria),
        ("Notes", &bead.notes),
    ] {
        if let Some(t) = text.as_deref().filter(|t| !t.trim().is_empty()) {
            s.push_str(&format!("\n{name}:\n{}\n", t.trim_end()));
        }
    }
    if !bead.comments.is_empty() {
        s.push_str("\nComments (latest last):\n");
        let skip = bead.comments.len().saturating_sub(8);
        for c in bead.comments.iter().skip(skip) {
            s.push_str(&format!("- {}: {}\n", c.author, c.text.trim()));
        }
    }
    if let Some(g) = graph {
        let describe = |id: &str| match g.get(id) {
            Some(b) => format!("{id} [{}] {}", b.status, b.title),
            None => format!("{id} (not found)"),
        };
        if !bead.dependencies.is_empty() {
            s.push_str("\nDepends on:\n");
            for d in &bead.dependencies {
                s.push_str(&format!(
                    "- ({}) {}\n",
                    d.dep_type,
                    describe(&d.depends_on_id)
                ));
            }
        }
        let dependents = g.dependents(&bead.id);
        if !dependents.is_empty() {
            s.push_str("\nNeeded by:\n");
            for (b, d) in dependents.iter().take(10) {
                s.push_str(&format!(
                    "- ({}) {} [{}] {}\n",
                    d.dep_type, b.id, b.status, b.title
                ));
            }
        }
    }
    s
}

/// Note left where an old tool output was removed.
pub const ELIDED: &str = "[output elided to keep the conversation within the model's context window; run the tool again if you need it]";

/// Rough token count of messages (4 bytes a token).
pub fn estimate_tokens(messages: &[Message]) -> u64 {
    messages
        .iter()
        .map(|m| {
            m.content.as_deref().map_or(0, str::len)
                + m.tool_calls
                    .iter()
                    .map(|c| c.function.arguments.len() + 32)
                    .sum::<usize>()
                + 8
        })
        .sum::<usize>() as u64
        / 4
}

fn is_tool_output(m: &Message) -> bool {
    m.role == Role::Tool
        || (m.role == Role::User
            && m.content
                .as_deref()
                .is_some_and(|c| c.starts_with("Result of ")))
}

/// Shrinks `messages` to `budget` tokens by replacing the oldest tool outputs with a note
/// (never the system prompt, the bead, or the last `keep_recent` messages). Returns how many
/// outputs were elided.
pub fn fit_history(messages: &mut [Message], budget: u64, keep_recent: usize) -> usize {
    let mut elided = 0;
    let protected_from = messages.len().saturating_sub(keep_recent);
    let mut i = 2;
    while estimate_tokens(messages) > budget && i < protected_from {
        let m = &mut messages[i];
        if is_tool_output(m) && m.content.as_deref() != Some(ELIDED) {
            m.content = Some(ELIDED.to_owned());
            elided += 1;
        }
        i += 1;
    }
    elided
}

/// Answers every tool call of the last assistant turn that has no result yet with `note`, so
/// the conversation can be continued (a loop that ended on `done` leaves that call open).
pub fn close_open_calls(messages: &mut Vec<Message>, note: &str) {
    let Some(pos) = messages
        .iter()
        .rposition(|m| m.role == Role::Assistant && !m.tool_calls.is_empty())
    else {
        return;
    };
    let answered: Vec<String> = messages[pos + 1..]
        .iter()
        .filter_map(|m| m.tool_call_id.clone())
        .collect();
    let open: Vec<String> = messages[pos]
        .tool_calls
        .iter()
        .map(|c| c.id.clone())
        .filter(|id| !answered.contains(id))
        .collect();
    // Results must directly follow their call turn: insert before any later text.
    let first = pos + 1 + answered.len();
    for (at, id) in (first..).zip(open) {
        messages.insert(at.min(messages.len()), Message::tool_result(id, note));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_calls_are_answered_in_place() {
        use crate::llm::ToolCall;
        let calls = [
            ToolCall::new("a".into(), "read_file".into(), "{}".into()),
            ToolCall::new("b".into(), "done".into(), "{}".into()),
        ];
        let mut msgs = vec![
            Message::user("bead"),
            Message::assistant_calls(None, &calls),
            Message::tool_result("a", "contents"),
        ];
        close_open_calls(&mut msgs, "recorded");
        assert_eq!(msgs.len(), 4);
        assert_eq!(msgs[3].tool_call_id.as_deref(), Some("b"));
        close_open_calls(&mut msgs, "again");
        assert_eq!(msgs.len(), 4, "nothing left open");
        let mut plain = vec![Message::user("x")];
        close_open_calls(&mut plain, "n");
        assert_eq!(plain.len(), 1);
    }

    #[test]
    fn history_fits_by_eliding_oldest_tool_outputs_first() {
        let big = "x".repeat(4000); // ~1000 tokens
        let mut msgs = vec![
            Message::system("persona"),
            Message::user("the bead"),
            Message::assistant("calling"),
            Message::tool_result("c1", &big),
            Message::tool_result("c2", &big),
            Message::user(format!("Result of read_file:\n{big}")),
            Message::tool_result("c4", &big),
        ];
        let before = estimate_tokens(&msgs);
        assert!(before > 4000);
        let n = fit_history(&mut msgs, 2500, 2);
        assert_eq!(n, 2, "the two oldest outputs go first");
        assert_eq!(msgs[3].content.as_deref(), Some(ELIDED));
        assert_eq!(msgs[4].content.as_deref(), Some(ELIDED));
        assert_ne!(msgs[5].content.as_deref(), Some(ELIDED));
        assert!(estimate_tokens(&msgs) <= 2500);
        // The system prompt, the bead and recent messages are never touched, even if over.
        let n = fit_history(&mut msgs, 10, 1);
        assert_eq!(n, 1);
        assert_eq!(msgs[5].content.as_deref(), Some(ELIDED));
        assert_eq!(msgs[0].content.as_deref(), Some("persona"));
        assert_eq!(msgs[6].content.as_deref(), Some(big.as_str()));
    }
}
