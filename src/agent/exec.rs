//! Doing what a tool call asks, inside the sandbox: file tools on the worktree, commands through
//! the sandbox runner, bead tools on the repository's store. Every result is text for the model
//! (with the real exit code and both output streams for commands) plus a one-line summary for
//! the log.

use std::collections::BTreeSet;
use std::io::{BufRead, Read};
use std::sync::Arc;
use std::time::Duration;

use crate::ops::desk::{AgentDesk, Filed, FollowUp};

use super::beneath::{self, Beneath, Walked};
use super::quota::Quota;
use super::sandbox::Sandbox;
use super::tools::Action;

/// Largest file `read_file` returns whole (larger ones need a line range), and the most text
/// one read returns.
const MAX_READ_BYTES: usize = 96 * 1024;
/// Longest line `read_file` shows; the rest is cut with a marker.
const MAX_LINE: usize = 4000;
/// Files up to this size are scanned to the end to count their lines.
const COUNT_LINES_UP_TO: u64 = 8 * 1024 * 1024;
/// The most bytes one `read_file` looks through (a sparse file of terabytes with no newline
/// would otherwise be scanned for hours).
const MAX_SCAN: u64 = 256 * 1024 * 1024;
/// Largest file `edit_file` edits and `search_text` searches.
const MAX_EDIT_BYTES: u64 = 8 * 1024 * 1024;
const MAX_SEARCH_BYTES: u64 = 2 * 1024 * 1024;
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
    Done {
        summary: String,
    },
    Escalated {
        question: String,
        decision: String,
    },
    Approved {
        summary: String,
    },
    ChangesRequested {
        comments: String,
    },
    /// A command broke the sandbox's promises (the worktree's `.git` was replaced): the bead
    /// stops and nothing from it is merged.
    Tampered {
        reason: String,
    },
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
    /// The worktree, for file tools (every path resolved beneath it by the kernel).
    pub files: Beneath,
    /// Where the agent's bead requests go (the repository's store locally, not the worktree).
    pub desk: Arc<dyn AgentDesk>,
    pub bead_id: String,
    /// The agent's name (recorded as the actor of its bead changes).
    pub agent: String,
    pub stats: Stats,
    /// What `git_diff` compares the worktree with (default `HEAD`): the fork point from the
    /// target, so committed rounds of work show too.
    pub diff_base: Option<String>,
    /// What is left of the bead's time budget (caps command timeouts); set by the loop.
    pub time_left: Option<Duration>,
    /// How many beads agents may still file.
    pub quota: Arc<Quota>,
    /// The worktree (for Loom's own git in it: `git_diff`); `None` outside one (tests).
    pub worktree: Option<crate::git::worktree::Worktree>,
}

impl ToolContext {
    /// Tools over `sandbox`'s worktree, filing beads through `desk` as `agent`.
    pub fn new(
        sandbox: Sandbox,
        desk: Arc<dyn AgentDesk>,
        bead_id: &str,
        agent: &str,
    ) -> std::io::Result<ToolContext> {
        Ok(ToolContext {
            files: Beneath::open(sandbox.root())?,
            sandbox,
            desk,
            bead_id: bead_id.to_owned(),
            agent: agent.to_owned(),
            stats: Stats::default(),
            diff_base: None,
            time_left: None,
            quota: Arc::new(Quota::default()),
            worktree: None,
        })
    }

    /// Tools in `wt` (Loom's git there uses the git dir Loom made for it).
    pub fn in_worktree(mut self, wt: &crate::git::worktree::Worktree) -> ToolContext {
        self.worktree = Some(wt.clone());
        self
    }
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
                depends_on,
            } => self.create_bead(
                title,
                description.as_deref(),
                issue_type.as_deref(),
                *priority,
                depends_on,
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
        let opened = match self.files.open_file(path) {
            Ok(o) => o,
            Err(e) => return fail(e, label),
        };
        let len = opened.len;
        let mut reader = std::io::BufReader::with_capacity(64 * 1024, opened.file);
        let binary = match reader.fill_buf() {
            Ok(head) => is_binary(head),
            Err(e) => return fail(format!("cannot read `{path}`: {e}"), label),
        };
        if binary {
            return fail(format!("`{path}` is a binary file ({len} bytes)"), label);
        }
        self.stats.files_read.insert(path.to_owned());
        let whole = start.is_none() && end.is_none();
        if whole && len <= MAX_READ_BYTES as u64 {
            let mut bytes = Vec::with_capacity(len as usize);
            if let Err(e) = reader.take(MAX_READ_BYTES as u64).read_to_end(&mut bytes) {
                return fail(format!("cannot read `{path}`: {e}"), label);
            }
            let text = String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            let total = text.lines().count();
            return ok(
                format!("{path} ({total} lines):\n{text}"),
                format!("{label} ({total} lines)"),
            );
        }
        let (from, to) = if whole {
            (1, 200)
        } else {
            (
                start.unwrap_or(1).max(1),
                end.unwrap_or(u64::MAX).max(start.unwrap_or(1)),
            )
        };
        let slice = read_lines(&mut reader, from, to, len <= COUNT_LINES_UP_TO);
        let slice = match slice {
            Ok(s) => s,
            Err(e) => return fail(format!("cannot read `{path}`: {e}"), label),
        };
        let of = match slice.total {
            Some(t) => format!("{t}"),
            None => format!("at least {}", slice.last),
        };
        if slice.last < from {
            return fail(
                format!("lines {from}-{to} do not exist: `{path}` has {of} lines"),
                label,
            );
        }
        let shown_to = slice.last;
        let more = if slice.truncated {
            "\n… [output cut at the read limit; ask for fewer lines at a time]"
        } else {
            ""
        };
        if whole {
            return ok(
                format!(
                    "{path} has {of} lines ({len} bytes), too many to return whole. Lines 1-{shown_to}:\n{}\
                     … ask again with start_line and end_line for the rest.{more}",
                    slice.text
                ),
                format!("{label} (1-{shown_to} of {of})"),
            );
        }
        ok(
            format!(
                "{path} (lines {from}-{shown_to} of {of}):\n{}{more}",
                slice.text
            ),
            format!("{label} ({from}-{shown_to})"),
        )
    }

    fn list_files(&mut self, path: &str) -> Outcome {
        let label = format!("list_files {path}");
        let mut files = Vec::new();
        let mut more = 0usize;
        let walked = self.files.walk(path, &mut |w| {
            if let Walked::File { rel, .. } = w {
                if files.len() < MAX_LIST {
                    files.push(rel.to_owned());
                } else {
                    more += 1;
                }
            }
            true
        });
        if let Err(e) = walked {
            return fail(e, label);
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
        let re = match regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
        {
            Ok(r) => r,
            Err(e) => return fail(format!("invalid regular expression: {e}"), label),
        };
        let mut hits = Vec::new();
        let mut more = 0usize;
        let walked = self.files.walk(path, &mut |w| {
            let Walked::File { rel, dir, name } = w else {
                return true;
            };
            let Some(opened) = beneath::open_entry(dir, name) else {
                return true;
            };
            if opened.len > MAX_SEARCH_BYTES {
                return true;
            }
            let mut bytes = Vec::new();
            if opened
                .file
                .take(MAX_SEARCH_BYTES)
                .read_to_end(&mut bytes)
                .is_err()
                || is_binary(&bytes)
            {
                return true;
            }
            let text = String::from_utf8_lossy(&bytes);
            for (n, line) in text.lines().enumerate() {
                if re.is_match(line) {
                    if hits.len() < MAX_MATCHES {
                        let shown: String = line.trim().chars().take(200).collect();
                        hits.push(format!("{rel}:{}: {shown}", n + 1));
                    } else {
                        more += 1;
                    }
                }
            }
            true
        });
        if let Err(e) = walked {
            return fail(e, label);
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
        let opened = match self.files.open_file(path) {
            Ok(o) => o,
            Err(e) => {
                return fail(format!("{e}; use write_file to create a file"), label);
            }
        };
        if opened.len > MAX_EDIT_BYTES {
            return fail(
                format!(
                    "`{path}` is {} bytes, too large for edit_file; use write_file or a command",
                    opened.len
                ),
                label,
            );
        }
        let mut text = String::new();
        if let Err(e) = opened.file.take(MAX_EDIT_BYTES).read_to_string(&mut text) {
            return fail(format!("cannot read `{path}` as text: {e}"), label);
        }
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
        if let Err(e) = self.files.write(path, updated.as_bytes()) {
            return fail(e, label);
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
        if let Err(e) = self.files.write(path, content.as_bytes()) {
            return fail(e, label);
        }
        self.stats.files_written.insert(path.to_owned());
        let n = content.lines().count();
        ok(
            format!("wrote {path} ({n} lines)"),
            format!("{label} ({n} lines)"),
        )
    }

    async fn run(&mut self, command: &str, requested: Option<Duration>) -> Outcome {
        if command.trim().is_empty() {
            return fail("`command` is empty", "run_command".into());
        }
        let timeout = self.sandbox.timeout_for(requested, self.time_left);
        let out = self.sandbox.run(command, Some(timeout)).await;
        self.stats.last_command = Some((command.to_owned(), out.exit_code));
        if let Some(reason) = out.tampered {
            return Outcome::Finish(Finish::Tampered {
                reason: format!("after `{}`: {reason}", first_line(command)),
            });
        }
        let status = match (out.exit_code, out.timed_out) {
            (_, true) => {
                let capped = requested.is_some_and(|r| r > timeout);
                format!(
                    "killed after {}s (timeout){}",
                    timeout.as_secs(),
                    if capped {
                        "; that is the most this command may take here"
                    } else {
                        "; raise timeout_s if it needs longer"
                    }
                )
            }
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
        // Loom's own git (hardened, through the git dir Loom made for the worktree).
        let base = self.diff_base.clone().unwrap_or_else(|| "HEAD".into());
        let root = self.sandbox.root().to_path_buf();
        let wt = self.worktree.clone();
        const CAP: usize = 64 * 1024;
        let diffed = tokio::task::spawn_blocking(move || {
            let place = match &wt {
                Some(wt) => wt.place(),
                None => crate::git::safe::Place::Repo(&root),
            };
            crate::git::worktree_diff(place, &base, CAP)
        })
        .await;
        let (stat, body, omitted) = match diffed {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => return fail(format!("cannot run git diff: {e}"), "git_diff".into()),
            Err(e) => return fail(format!("cannot run git diff: {e}"), "git_diff".into()),
        };
        if stat.trim().is_empty() {
            return ok("no changes yet".into(), "git_diff (no changes)".into());
        }
        let mut text = format!("{stat}\n{body}");
        if omitted > 0 {
            text.push_str(&format!(
                "\n… [{omitted} more bytes of diff; read the files for the rest]"
            ));
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
        after: &[String],
    ) -> Outcome {
        let label = format!("create_bead {title:?}");
        if let Err(why) = self.quota.reserve(&self.bead_id) {
            return fail(
                format!("{why}; no more beads can be filed now — mention the rest in your summary"),
                label,
            );
        }
        let f = FollowUp {
            title: title.to_owned(),
            description: description.map(str::to_owned),
            issue_type: kind.map(str::to_owned),
            priority,
            after: after.to_vec(),
        };
        // Known to the run before the file exists: the dispatcher, woken by the watcher as
        // soon as it does, must already see it as a follow-up.
        let quota = Arc::clone(&self.quota);
        let noted = move |filed: &Filed| quota.created(&filed.id, !filed.child);
        match self.desk.file(&self.bead_id, &self.agent, &f, &noted) {
            Ok(filed) => ok(
                format!(
                    "created bead {} ({} {})",
                    filed.id,
                    if filed.child {
                        "a child of"
                    } else {
                        "discovered from"
                    },
                    self.bead_id
                ),
                format!("{label} → {}", filed.id),
            ),
            Err(e) => {
                self.quota.release(&self.bead_id);
                fail(e.with_hint(), label)
            }
        }
    }

    fn comment(&mut self, text: &str) -> Outcome {
        let label = "comment".to_owned();
        if text.trim().is_empty() {
            return fail("the comment is empty", label);
        }
        match self.desk.comment(&self.bead_id, &self.agent, text) {
            Ok(_) => ok(
                format!("comment added to {}", self.bead_id),
                format!("comment: {}", first_line(text)),
            ),
            Err(e) => fail(e.with_hint(), label),
        }
    }

    fn escalate(&mut self, question: &str, options: &[String]) -> Outcome {
        let (blocked, agent) = (self.bead_id.clone(), self.agent.clone());
        let q = crate::ops::decision::Question {
            title: question.lines().next().unwrap_or(question).to_owned(),
            body: format!("{agent} needs a decision to continue {blocked}.\n\n{question}"),
            options: options.to_vec(),
            reason: format!("{agent} escalated: {question}"),
            stage: None,
            comment: None,
        };
        match self.desk.escalate(&blocked, &agent, &q) {
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

/// Lines `from..=to` (1-based) of a reader, each cut at [`MAX_LINE`] bytes, at most
/// [`MAX_READ_BYTES`] in all: memory stays bounded whatever the file holds (a 2 GB line costs
/// a buffer). With `count`, the rest is scanned (not kept) to count the lines.
struct LineSlice {
    text: String,
    /// The last line number shown (0: none).
    last: u64,
    /// Lines in the file, when scanned to the end.
    total: Option<u64>,
    truncated: bool,
}

fn read_lines(
    reader: &mut impl BufRead,
    from: u64,
    to: u64,
    count: bool,
) -> std::io::Result<LineSlice> {
    let mut out = LineSlice {
        text: String::new(),
        last: 0,
        total: None,
        truncated: false,
    };
    let mut line_no = 1u64;
    let mut line = Vec::new();
    let mut cut = false;
    let mut at_line_start = true;
    let mut scanned = 0u64;
    loop {
        if scanned > MAX_SCAN {
            // Too far to look: say what was found, without a total.
            if !at_line_start {
                finish_line(&mut out, &mut line, &mut cut, line_no, from, to);
            }
            out.truncated = true;
            return Ok(out);
        }
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            if !at_line_start {
                finish_line(&mut out, &mut line, &mut cut, line_no, from, to);
                line_no += 1;
            }
            out.total = Some(line_no - 1);
            return Ok(out);
        }
        let (part, consumed, ends) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        if (from..=to).contains(&line_no) && !out.truncated {
            let room = MAX_LINE.saturating_sub(line.len());
            line.extend_from_slice(&part[..part.len().min(room)]);
            cut |= part.len() > room;
        }
        at_line_start = ends;
        scanned += consumed as u64;
        reader.consume(consumed);
        if ends {
            finish_line(&mut out, &mut line, &mut cut, line_no, from, to);
            line_no += 1;
            if line_no > to && (!count || out.truncated) {
                return Ok(out);
            }
        }
    }
}

fn finish_line(
    out: &mut LineSlice,
    line: &mut Vec<u8>,
    cut: &mut bool,
    n: u64,
    from: u64,
    to: u64,
) {
    if !(from..=to).contains(&n) || out.truncated {
        return;
    }
    if out.text.len() + line.len() > MAX_READ_BYTES {
        out.truncated = true;
        return;
    }
    let text = String::from_utf8_lossy(line);
    out.text.push_str(text.trim_end_matches('\r'));
    if std::mem::take(cut) {
        out.text.push_str(" … [line cut]");
    }
    out.text.push('\n');
    out.last = n;
    line.clear();
}

/// Where `old` nearly matches: the window of lines most like it, with line numbers.
fn no_match_hint(text: &str, old: &str, path: &str) -> String {
    let file: Vec<&str> = text.lines().collect();
    let want: Vec<&str> = old.lines().collect();
    // The search compares every window: bounded, so a huge file and a huge `old` cannot keep
    // Loom busy for hours.
    if file.len().saturating_mul(want.len()) > 20_000_000 {
        return format!(
            "`old` was not found in `{path}`; the file and `old` are too large to look for a near match. Read the part you want to change again and copy it exactly"
        );
    }
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
mod tests;
