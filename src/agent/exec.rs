//! Doing what a tool call asks, inside the sandbox: file tools on the worktree, commands through
//! the sandbox runner, bead tools on the repository's store. Every result is text for the model
//! (with the real exit code and both output streams for commands) plus a one-line summary for
//! the log.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::bead::{Bead, Dependency, Timestamp, dep_type, issue_type, status};
use crate::store::TxOptions;
use crate::workspace::Workspace;

use super::sandbox::Sandbox;
use super::tools::Action;

/// Largest file `read_file` returns whole (larger ones need a line range).
const MAX_READ_BYTES: usize = 96 * 1024;
/// Most entries `list_files` returns.
const MAX_LIST: usize = 1000;
/// Most matches `search_text` returns.
const MAX_MATCHES: usize = 100;

/// What a non-terminal tool produced.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolResult {
    pub ok: bool,
    /// What the model reads.
    pub text: String,
    /// One line for the log (`edit_file src/a.rs +3 −1`).
    pub summary: String,
    /// For commands: the exit code (`None` if killed).
    pub exit_code: Option<Option<i32>>,
}

/// How a terminal tool ends the loop.
#[derive(Clone, Debug, PartialEq)]
pub enum Finish {
    Done { summary: String },
    Escalated { question: String, decision: String },
    Approved { summary: String },
    ChangesRequested { comments: String },
}

/// The outcome of one call.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Result(ToolResult),
    Finish(Finish),
}

/// Counters behind the progress header.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub files_read: BTreeSet<String>,
    pub files_written: BTreeSet<String>,
    /// The last command and its exit code.
    pub last_command: Option<(String, Option<i32>)>,
}

/// Everything tools act on.
pub struct ToolContext {
    pub sandbox: Sandbox,
    /// The repository's bead store (beads the agent files go there, not into the worktree).
    pub workspace: Workspace,
    pub bead_id: String,
    /// The agent's name (recorded as the actor of its bead changes).
    pub agent: String,
    pub stats: Stats,
    /// What `git_diff` compares the worktree with (default `HEAD`): the fork point from the
    /// target, so committed rounds of work show too.
    pub diff_base: Option<String>,
}

fn ok(text: String, summary: String) -> Outcome {
    Outcome::Result(ToolResult {
        ok: true,
        text,
        summary,
        exit_code: None,
    })
}

fn fail(text: impl Into<String>, summary: String) -> Outcome {
    let text = text.into();
    Outcome::Result(ToolResult {
        ok: false,
        text: format!("error: {text}"),
        summary: format!("{summary}  ✗ {}", first_line(&text)),
        exit_code: None,
    })
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    let mut out: String = line.chars().take(100).collect();
    if line.chars().count() > 100 {
        out.push('…');
    }
    out
}

fn is_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(8192).any(|&b| b == 0)
}

impl ToolContext {
    /// The one-line header sent before each result.
    pub fn progress(&self, iteration: u32, max: u32) -> String {
        let last = match &self.stats.last_command {
            Some((cmd, code)) => format!(
                " · last command `{}` {}",
                first_line(cmd),
                code.map_or("killed".into(), |c| format!("exit {c}"))
            ),
            None => String::new(),
        };
        format!(
            "[iteration {iteration}/{max} · files read {} · written {}{last}]",
            self.stats.files_read.len(),
            self.stats.files_written.len()
        )
    }

    /// Runs one call.
    pub async fn execute(&mut self, action: &Action) -> Outcome {
        match action {
            Action::ReadFile {
                path,
                start_line,
                end_line,
            } => self.read_file(path, *start_line, *end_line),
            Action::ListFiles { path } => self.list_files(path.as_deref().unwrap_or(".")),
            Action::SearchText { pattern, path } => {
                self.search(pattern, path.as_deref().unwrap_or("."))
            }
            Action::EditFile { path, old, new } => self.edit(path, old, new),
            Action::WriteFile { path, content } => self.write(path, content),
            Action::RunCommand { command, timeout_s } => {
                self.run(command, timeout_s.map(Duration::from_secs)).await
            }
            Action::GitDiff => self.diff().await,
            Action::CreateBead {
                title,
                description,
                issue_type,
                priority,
            } => self.create_bead(
                title,
                description.as_deref(),
                issue_type.as_deref(),
                *priority,
            ),
            Action::Comment { text } => self.comment(text),
            Action::Done { summary } => Outcome::Finish(Finish::Done {
                summary: summary.clone(),
            }),
            Action::Escalate { question, options } => self.escalate(question, options),
            Action::Approve { summary } => Outcome::Finish(Finish::Approved {
                summary: summary.clone(),
            }),
            Action::RequestChanges { comments } => Outcome::Finish(Finish::ChangesRequested {
                comments: comments.clone(),
            }),
        }
    }

    fn read_file(&mut self, path: &str, start: Option<u64>, end: Option<u64>) -> Outcome {
        let label = format!("read_file {path}");
        let full = match self.sandbox.resolve_read(path) {
            Ok(p) => p,
            Err(e) => return fail(e, label),
        };
        let bytes = match std::fs::read(&full) {
            Ok(b) => b,
            Err(e) if full.is_dir() => {
                return fail(
                    format!("`{path}` is a directory; use list_files ({e})"),
                    label,
                );
            }
            Err(e) => return fail(format!("cannot read `{path}`: {e}"), label),
        };
        if is_binary(&bytes) {
            return fail(
                format!("`{path}` is a binary file ({} bytes)", bytes.len()),
                label,
            );
        }
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let total = lines.len();
        self.stats.files_read.insert(path.to_owned());
        if start.is_none() && end.is_none() {
            if bytes.len() > MAX_READ_BYTES {
                let head: String = lines.iter().take(200).map(|l| format!("{l}\n")).collect();
                return ok(
                    format!(
                        "{path} has {total} lines ({} bytes), too many to return whole. Lines 1-200:\n{head}\
                         … ask again with start_line and end_line for the rest.",
                        bytes.len()
                    ),
                    format!("{label} (1-200 of {total})"),
                );
            }
            return ok(
                format!("{path} ({total} lines):\n{text}"),
                format!("{label} ({total} lines)"),
            );
        }
        let from = start.unwrap_or(1).max(1) as usize;
        let to = end.map_or(total, |e| e as usize).min(total);
        if from > total.max(1) || from > to {
            return fail(
                format!("lines {from}-{to} do not exist: `{path}` has {total} lines"),
                label,
            );
        }
        let body: String = lines[from - 1..to]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect();
        ok(
            format!("{path} (lines {from}-{to} of {total}):\n{body}"),
            format!("{label} ({from}-{to})"),
        )
    }

    fn walker(&self, dir: &std::path::Path) -> ignore::Walk {
        ignore::WalkBuilder::new(dir)
            .hidden(false)
            .git_ignore(true)
            .git_exclude(true)
            .require_git(false)
            .filter_entry(|e| e.file_name() != ".git")
            .sort_by_file_path(|a, b| a.cmp(b))
            .build()
    }

    fn rel(&self, p: &std::path::Path) -> String {
        p.strip_prefix(self.sandbox.root())
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    }

    fn list_files(&mut self, path: &str) -> Outcome {
        let label = format!("list_files {path}");
        let dir = match self.sandbox.resolve_read(path) {
            Ok(p) => p,
            Err(e) => return fail(e, label),
        };
        if !dir.exists() {
            return fail(format!("`{path}` does not exist"), label);
        }
        let mut files = Vec::new();
        let mut more = 0usize;
        for entry in self.walker(&dir).flatten() {
            if entry.file_type().is_some_and(|t| t.is_file()) {
                if files.len() < MAX_LIST {
                    files.push(self.rel(entry.path()));
                } else {
                    more += 1;
                }
            }
        }
        let n = files.len() + more;
        let mut text = files.join("\n");
        if more > 0 {
            text.push_str(&format!(
                "\n… and {more} more files; list a subdirectory to see them"
            ));
        }
        ok(text, format!("{label} ({n} files)"))
    }

    fn search(&mut self, pattern: &str, path: &str) -> Outcome {
        let label = format!("search_text {pattern:?}");
        let re = match regex::Regex::new(pattern) {
            Ok(r) => r,
            Err(e) => return fail(format!("invalid regular expression: {e}"), label),
        };
        let dir = match self.sandbox.resolve_read(path) {
            Ok(p) => p,
            Err(e) => return fail(e, label),
        };
        let mut hits = Vec::new();
        let mut more = 0usize;
        for entry in self.walker(&dir).flatten() {
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            let Ok(bytes) = std::fs::read(entry.path()) else {
                continue;
            };
            if bytes.len() > 2 * 1024 * 1024 || is_binary(&bytes) {
                continue;
            }
            let text = String::from_utf8_lossy(&bytes);
            for (n, line) in text.lines().enumerate() {
                if re.is_match(line) {
                    if hits.len() < MAX_MATCHES {
                        let shown: String = line.trim().chars().take(200).collect();
                        hits.push(format!("{}:{}: {shown}", self.rel(entry.path()), n + 1));
                    } else {
                        more += 1;
                    }
                }
            }
        }
        let n = hits.len() + more;
        if n == 0 {
            return ok(
                format!("no matches for {pattern:?}"),
                format!("{label} (0 matches)"),
            );
        }
        let mut text = hits.join("\n");
        if more > 0 {
            text.push_str(&format!(
                "\n… and {more} more matches; narrow the pattern or the path"
            ));
        }
        ok(text, format!("{label} ({n} matches)"))
    }

    fn edit(&mut self, path: &str, old: &str, new: &str) -> Outcome {
        let label = format!("edit_file {path}");
        let full = match self.sandbox.resolve_write(path) {
            Ok(p) => p,
            Err(e) => return fail(e, label),
        };
        let text = match std::fs::read_to_string(&full) {
            Ok(t) => t,
            Err(e) => {
                return fail(
                    format!("cannot read `{path}`: {e}; use write_file to create a file"),
                    label,
                );
            }
        };
        if old.is_empty() {
            return fail("`old` is empty: give the exact text to replace", label);
        }
        let count = text.matches(old).count();
        match count {
            1 => {}
            0 => return fail(no_match_hint(&text, old, path), label),
            n => {
                let lines: Vec<String> = text
                    .match_indices(old)
                    .map(|(i, _)| (text[..i].matches('\n').count() + 1).to_string())
                    .collect();
                return fail(
                    format!(
                        "`old` occurs {n} times in `{path}` (at lines {}); include more surrounding lines so it is unique",
                        lines.join(", ")
                    ),
                    label,
                );
            }
        }
        let updated = text.replacen(old, new, 1);
        if let Err(e) = std::fs::write(&full, &updated) {
            return fail(format!("cannot write `{path}`: {e}"), label);
        }
        self.stats.files_written.insert(path.to_owned());
        let (minus, plus) = (old.lines().count(), new.lines().count());
        ok(
            format!("edited {path}: replaced {minus} line(s) with {plus}"),
            format!("{label}  +{plus} −{minus}"),
        )
    }

    fn write(&mut self, path: &str, content: &str) -> Outcome {
        let label = format!("write_file {path}");
        let full = match self.sandbox.resolve_write(path) {
            Ok(p) => p,
            Err(e) => return fail(e, label),
        };
        if let Some(dir) = full.parent()
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            return fail(
                format!("cannot create the directory of `{path}`: {e}"),
                label,
            );
        }
        if full.is_dir() {
            return fail(format!("`{path}` is a directory"), label);
        }
        if let Err(e) = std::fs::write(&full, content) {
            return fail(format!("cannot write `{path}`: {e}"), label);
        }
        self.stats.files_written.insert(path.to_owned());
        let n = content.lines().count();
        ok(
            format!("wrote {path} ({n} lines)"),
            format!("{label} ({n} lines)"),
        )
    }

    async fn run(&mut self, command: &str, timeout: Option<Duration>) -> Outcome {
        if command.trim().is_empty() {
            return fail("`command` is empty", "run_command".into());
        }
        let out = self.sandbox.run(command, timeout).await;
        self.stats.last_command = Some((command.to_owned(), out.exit_code));
        let status = match (out.exit_code, out.timed_out) {
            (_, true) => format!(
                "killed after {}s (timeout); raise timeout_s if it needs longer",
                timeout.unwrap_or(self.sandbox.timeout).as_secs()
            ),
            (Some(c), _) => format!("exit code {c}"),
            (None, _) => "killed by a signal".to_owned(),
        };
        let text = format!(
            "$ {command}\n{status}\n--- stdout ({} bytes) ---\n{}\n--- stderr ({} bytes) ---\n{}",
            out.stdout.total(),
            out.stdout.text().trim_end(),
            out.stderr.total(),
            out.stderr.text().trim_end()
        );
        let summary = format!("run_command {}   {status}", first_line(command));
        Outcome::Result(ToolResult {
            ok: out.exit_code == Some(0),
            text,
            summary,
            exit_code: Some(out.exit_code),
        })
    }

    async fn diff(&mut self) -> Outcome {
        // Loom's own git (not the agent's command, so not sandboxed): intent-to-add makes new
        // files show, in the worktree's own index only.
        let root = self.sandbox.root().to_path_buf();
        let git = |args: Vec<&str>| {
            let mut cmd = tokio::process::Command::new("git");
            cmd.args(args).current_dir(&root).env("LC_ALL", "C");
            async move { cmd.output().await }
        };
        let base = self.diff_base.as_deref().unwrap_or("HEAD");
        let _ = git(vec!["add", "-A", "--intent-to-add", "."]).await;
        let stat = git(vec!["diff", base, "--stat", "--", ".", ":(exclude).beads"]).await;
        let full = git(vec!["diff", base, "--", ".", ":(exclude).beads"]).await;
        let (Ok(stat), Ok(full)) = (stat, full) else {
            return fail("cannot run git diff", "git_diff".into());
        };
        let stat = String::from_utf8_lossy(&stat.stdout).into_owned();
        let body = String::from_utf8_lossy(&full.stdout).into_owned();
        if stat.trim().is_empty() {
            return ok("no changes yet".into(), "git_diff (no changes)".into());
        }
        let mut text = format!(
            "{stat}
"
        );
        const CAP: usize = 64 * 1024;
        if body.len() > CAP {
            let mut cut = CAP;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            text.push_str(&body[..cut]);
            text.push_str(&format!(
                "\n… [{} more bytes of diff; read the files for the rest]",
                body.len() - cut
            ));
        } else {
            text.push_str(&body);
        }
        let files = stat.lines().count().saturating_sub(1);
        ok(text, format!("git_diff ({files} files)"))
    }

    fn create_bead(
        &mut self,
        title: &str,
        description: Option<&str>,
        kind: Option<&str>,
        priority: Option<i64>,
    ) -> Outcome {
        let label = format!("create_bead {title:?}");
        let now = Timestamp::now();
        let parent = self.bead_id.clone();
        let agent = self.agent.clone();
        let result = self
            .workspace
            .mutate("created", TxOptions::default(), |tx| {
                // An epic's planner files its children (the epic closes when they are done);
                // any other agent files what it discovered.
                let from_epic = tx
                    .get(&parent)?
                    .is_some_and(|b| b.issue_type == issue_type::EPIC);
                let link = if from_epic {
                    dep_type::PARENT_CHILD
                } else {
                    dep_type::DISCOVERED_FROM
                };
                let id = tx.new_id(title, description.unwrap_or(""), &agent, &now)?;
                let bead = Bead {
                    id: id.clone(),
                    title: title.to_owned(),
                    description: description.map(str::to_owned),
                    status: status::OPEN.into(),
                    priority: priority.unwrap_or(2),
                    issue_type: kind.unwrap_or(issue_type::TASK).to_owned(),
                    created_at: Some(now.clone()),
                    created_by: Some(agent.clone()),
                    updated_at: Some(now.clone()),
                    dependencies: vec![Dependency {
                        issue_id: id.clone(),
                        depends_on_id: parent.clone(),
                        dep_type: link.into(),
                        created_at: Some(now.clone()),
                        created_by: Some(agent.clone()),
                        ..Dependency::default()
                    }],
                    ..Bead::default()
                };
                tx.insert(bead)?;
                Ok((id, from_epic))
            });
        match result {
            Ok(m) => ok(
                format!(
                    "created bead {} ({} {})",
                    m.value.0,
                    if m.value.1 {
                        "a child of"
                    } else {
                        "discovered from"
                    },
                    self.bead_id
                ),
                format!("{label} → {}", m.value.0),
            ),
            Err(e) => fail(e.with_hint(), label),
        }
    }

    fn comment(&mut self, text: &str) -> Outcome {
        let label = "comment".to_owned();
        if text.trim().is_empty() {
            return fail("the comment is empty", label);
        }
        let now = Timestamp::now();
        let (id, agent) = (self.bead_id.clone(), self.agent.clone());
        let result = self
            .workspace
            .mutate("commented", TxOptions::default(), |tx| {
                let b = tx.get_mut(&id)?;
                let c = b.new_comment(&agent, text, &now);
                b.comments.push(c);
                Ok(())
            });
        match result {
            Ok(_) => ok(
                format!("comment added to {}", self.bead_id),
                format!("comment: {}", first_line(text)),
            ),
            Err(e) => fail(e.with_hint(), label),
        }
    }

    fn escalate(&mut self, question: &str, options: &[String]) -> Outcome {
        let (blocked, agent) = (self.bead_id.clone(), self.agent.clone());
        let q = crate::decision::Question {
            title: question.lines().next().unwrap_or(question).to_owned(),
            body: format!("{agent} needs a decision to continue {blocked}.\n\n{question}"),
            options: options.to_vec(),
            reason: format!("{agent} escalated: {question}"),
            stage: String::new(),
        };
        match crate::decision::escalate(&self.workspace, &blocked, &agent, &q) {
            Ok(Some(decision)) => Outcome::Finish(Finish::Escalated {
                question: question.to_owned(),
                decision,
            }),
            Ok(None) => fail(
                "a decision bead cannot escalate to another decision; answer with a comment",
                "escalate".into(),
            ),
            Err(e) => fail(e.with_hint(), "escalate".into()),
        }
    }
}

/// Where `old` nearly matches: the window of lines most like it, with line numbers.
fn no_match_hint(text: &str, old: &str, path: &str) -> String {
    let file: Vec<&str> = text.lines().collect();
    let want: Vec<&str> = old.lines().collect();
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let n = want.len().max(1);
    let mut best = (0usize, 0usize); // (score, start)
    for start in 0..file.len() {
        let score: usize = want
            .iter()
            .enumerate()
            .filter_map(|(i, w)| file.get(start + i).map(|f| (w, f)))
            .map(|(w, f)| {
                if norm(w) == norm(f) {
                    3
                } else if !w.trim().is_empty()
                    && (f.contains(w.trim()) || w.contains(f.trim()) && !f.trim().is_empty())
                {
                    1
                } else {
                    0
                }
            })
            .sum();
        if score > best.0 {
            best = (score, start);
        }
    }
    if best.0 == 0 {
        return format!(
            "`old` was not found in `{path}` and no similar lines exist; read the file again and copy the text exactly"
        );
    }
    let (start, end) = (best.1, (best.1 + n).min(file.len()));
    let window: String = (start..end)
        .map(|i| format!("{:>5}| {}\n", i + 1, file[i]))
        .collect();
    let whitespace_only = norm(&file[start..end].join("\n")) == norm(old);
    format!(
        "`old` was not found in `{path}`.{} The closest text is at lines {}-{}:\n{window}Copy it exactly (without the line numbers) and try again.",
        if whitespace_only {
            " It differs only in whitespace or indentation."
        } else {
            ""
        },
        start + 1,
        end
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_miss_points_at_the_closest_lines() {
        let text = "fn a() {\n    let x = 1;\n    x + 1\n}\nfn b() {}\n";
        let hint = no_match_hint(text, "let x = 1;\nx + 2", "a.rs");
        assert!(hint.contains("lines 2-3"), "{hint}");
        assert!(hint.contains("    2|     let x = 1;"), "{hint}");
        let ws = no_match_hint(text, "let x = 1;\n  x + 1", "a.rs");
        assert!(ws.contains("only in whitespace"), "{ws}");
        assert!(no_match_hint(text, "zzz", "a.rs").contains("no similar lines"));
    }
}
