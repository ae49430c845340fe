//! Lessons: short notes Loom writes after a run goes wrong (the loop gave up, edits missed,
//! tests were left failing) into `.loom/lessons.md` in the repository, so later agents read
//! them in their system prompt. The file is bounded: the oldest lessons go first.

use std::path::{Path, PathBuf};

use super::exec::Stats;
use super::run::{LoopEnd, Terminal};

/// Where lessons live, relative to the repository root.
pub const LESSONS_FILE: &str = ".loom/lessons.md";
/// Most bytes kept in the file.
pub const MAX_BYTES: usize = 12 * 1024;
/// Most bytes of lessons put in a prompt.
pub const PROMPT_BYTES: usize = 3 * 1024;

const HEADER: &str = "# Lessons\n\nNotes Loom keeps from agent runs that went wrong; agents read the latest ones.\n\n";

/// What went wrong in a run, as one line, if anything worth remembering did.
pub fn lesson(
    bead: &str,
    persona: &str,
    end: &LoopEnd,
    stats: &Stats,
    date: &str,
) -> Option<String> {
    let mut notes = Vec::new();
    match end.terminal {
        Terminal::RepeatedAction => notes.push(format!(
            "looped on one action ({}); change approach after a repeat",
            end.detail
        )),
        Terminal::MaxIterations => {
            notes.push("ran out of iterations; split the work or read less, act sooner".to_owned())
        }
        Terminal::TokenBudget | Terminal::TimeBudget => {
            notes.push(format!("ran out of budget: {}", end.detail))
        }
        Terminal::Unparseable => notes.push(
            "replies could not be parsed as tool calls; reply with exactly one tool call"
                .to_owned(),
        ),
        Terminal::NoToolCall => notes
            .push("stopped without calling `done`; finish with `done` and a summary".to_owned()),
        _ => {}
    }
    if end.failed_edits >= 2 {
        notes.push(format!(
            "{} edit_file calls missed; read the lines right before editing and copy `old` exactly",
            end.failed_edits
        ));
    }
    if let Some((cmd, code)) = &stats.last_command
        && *code != Some(0)
        && !end.terminal.is_success()
    {
        let cmd: String = cmd.chars().take(80).collect();
        notes.push(format!(
            "left `{cmd}` failing ({})",
            code.map_or("killed".into(), |c| format!("exit {c}"))
        ));
    }
    (!notes.is_empty()).then(|| format!("- {date} {bead} ({persona}): {}", notes.join("; ")))
}

/// The file's lessons, newest last, cut to `max` bytes from the end.
pub fn tail(root: &Path, max: usize) -> Option<String> {
    let text = crate::store::fsio::read_small(&root.join(LESSONS_FILE), 1 << 20)
        .ok()
        .flatten()?;
    let lessons: Vec<&str> = text.lines().filter(|l| l.starts_with("- ")).collect();
    let mut out = Vec::new();
    let mut size = 0;
    for l in lessons.iter().rev() {
        size += l.len() + 1;
        if size > max {
            break;
        }
        out.push(*l);
    }
    out.reverse();
    (!out.is_empty()).then(|| out.join("\n"))
}

/// `text` of the lessons file with `line` appended, the oldest lessons dropped to fit.
pub fn appended(existing: Option<&str>, line: &str) -> String {
    let mut lessons: Vec<String> = existing
        .unwrap_or("")
        .lines()
        .filter(|l| l.starts_with("- "))
        .map(str::to_owned)
        .collect();
    lessons.push(line.replace('\n', " "));
    while !lessons.is_empty()
        && HEADER.len() + lessons.iter().map(|l| l.len() + 1).sum::<usize>() > MAX_BYTES
    {
        lessons.remove(0);
    }
    format!("{HEADER}{}\n", lessons.join("\n"))
}

/// The lessons file of a repository.
pub fn path(root: &Path) -> PathBuf {
    root.join(LESSONS_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_newest_kept() {
        let mut text = None::<String>;
        for i in 0..500 {
            let next = appended(
                text.as_deref(),
                &format!("- lesson {i:03} {}", "x".repeat(40)),
            );
            text = Some(next);
        }
        let text = text.unwrap();
        assert!(text.len() <= MAX_BYTES);
        assert!(text.starts_with("# Lessons"));
        assert!(text.contains("lesson 499") && !text.contains("lesson 000"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".loom")).unwrap();
        std::fs::write(path(dir.path()), &text).unwrap();
        let t = tail(dir.path(), 200).unwrap();
        assert!(t.ends_with(&format!("lesson 499 {}", "x".repeat(40))));
        assert!(t.len() <= 200);
    }
}
