//! What the agents did on one bead, as the Work view (`w`) shows it: the branch's diff against
//! its fork point, per file; the last test run (command, exit code, output); and the agent's
//! transcript — what it said in full, each tool call folded to one line (`enter` unfolds the
//! arguments and result). Pure: the worker hands in git's diff text and the run's events; the
//! text is made inert here (controls shown visibly, tabs expanded), so nothing a model wrote
//! reaches the terminal as an escape.

use std::collections::HashSet;

use crate::event::{Event, EventKind};
use crate::text::inert;

/// How a line of a diff reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffKind {
    /// `index …`, `new file mode`, `rename from`, `Binary files … differ`.
    Meta,
    /// `@@ -1,4 +1,5 @@`.
    Hunk,
    Added,
    Removed,
    Context,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffLine {
    pub kind: DiffKind,
    /// Without the `+`/`-`/` ` column; inert, tabs expanded.
    pub text: String,
    /// Syntax colouring: where each run of `text` ends (a byte offset) and what it is; empty
    /// when the file's language is unknown or the line was not highlighted.
    pub tones: Vec<(usize, Tone)>,
}

/// What a run of code is, for its colour (a theme role, so light, dark and `NO_COLOR` hold).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Keyword,
    Str,
    Comment,
    Number,
    Type,
    Function,
}

/// One file of a diff.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileDiff {
    pub path: String,
    pub added: usize,
    pub removed: usize,
    pub lines: Vec<DiffLine>,
}

/// The most diff lines kept (per file); the rest is counted, not shown.
pub const MAX_LINES: usize = 20_000;

/// Text as the terminal may show it: controls visible, tabs as four spaces.
fn clean(s: &str) -> String {
    inert(s).replace('\t', "    ")
}

/// A file's path from `diff --git a/x b/x` (the `b/` side; quoted paths as git wrote them).
fn path_of(header: &str) -> String {
    let rest = header.trim_start_matches("diff --git ");
    match rest.rfind(" b/") {
        Some(i) => rest[i + 3..].to_owned(),
        None => rest.to_owned(),
    }
}

/// Splits `git diff` output into files.
pub fn parse_diff(text: &str) -> Vec<FileDiff> {
    let mut files: Vec<FileDiff> = Vec::new();
    for raw in text.lines() {
        if raw.starts_with("diff --git ") {
            files.push(FileDiff {
                path: clean(&path_of(raw)),
                ..FileDiff::default()
            });
            continue;
        }
        let Some(file) = files.last_mut() else {
            continue;
        };
        let (kind, body) = if let Some(rest) = raw.strip_prefix("+++ ") {
            if let Some(p) = rest.strip_prefix("b/") {
                file.path = clean(p);
            }
            continue;
        } else if raw.starts_with("--- ") {
            continue;
        } else if raw.starts_with("@@") {
            (DiffKind::Hunk, raw)
        } else if let Some(rest) = raw.strip_prefix('+') {
            file.added += 1;
            (DiffKind::Added, rest)
        } else if let Some(rest) = raw.strip_prefix('-') {
            file.removed += 1;
            (DiffKind::Removed, rest)
        } else if let Some(rest) = raw.strip_prefix(' ') {
            (DiffKind::Context, rest)
        } else {
            (DiffKind::Meta, raw)
        };
        if file.lines.len() < MAX_LINES {
            file.lines.push(DiffLine {
                kind,
                text: clean(body),
                tones: Vec::new(),
            });
        }
    }
    files
}

/// Lines longer than this are not highlighted (a pathological line must not stall the worker).
const HIGHLIGHT_LINE: usize = 400;

/// The most time highlighting one diff may take; later lines stay plain.
const HIGHLIGHT_BUDGET: std::time::Duration = std::time::Duration::from_millis(300);

fn syntaxes() -> &'static syntect::parsing::SyntaxSet {
    static SET: std::sync::OnceLock<syntect::parsing::SyntaxSet> = std::sync::OnceLock::new();
    SET.get_or_init(syntect::parsing::SyntaxSet::load_defaults_newlines)
}

/// Scope prefixes and their tones, most specific first.
fn tone_table() -> &'static [(syntect::parsing::Scope, Tone)] {
    static TABLE: std::sync::OnceLock<Vec<(syntect::parsing::Scope, Tone)>> =
        std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        [
            ("comment", Tone::Comment),
            ("string", Tone::Str),
            ("constant.numeric", Tone::Number),
            ("constant.language", Tone::Number),
            ("entity.name.function", Tone::Function),
            ("support.function", Tone::Function),
            ("entity.name.type", Tone::Type),
            ("support.type", Tone::Type),
            ("storage.type", Tone::Keyword),
            ("storage.modifier", Tone::Keyword),
            ("keyword", Tone::Keyword),
        ]
        .iter()
        .filter_map(|(s, t)| syntect::parsing::Scope::new(s).ok().map(|s| (s, *t)))
        .collect()
    })
}

/// The tone of the innermost scope that has one.
fn tone_of(stack: &syntect::parsing::ScopeStack) -> Tone {
    for scope in stack.as_slice().iter().rev() {
        if let Some((_, t)) = tone_table().iter().find(|(p, _)| p.is_prefix_of(*scope)) {
            return *t;
        }
    }
    Tone::Plain
}

/// Colours the code lines of `files` by their language (from the file's extension), each hunk
/// parsed from its start, within [`HIGHLIGHT_BUDGET`]. Files of an unknown language, long
/// lines and whatever the budget does not reach stay plain.
pub fn highlight(files: &mut [FileDiff]) {
    use syntect::parsing::{ParseState, ScopeStack};
    let set = syntaxes();
    let started = std::time::Instant::now();
    for file in files {
        let ext = file.path.rsplit('.').next().unwrap_or_default();
        let Some(syntax) = set.find_syntax_by_extension(ext) else {
            continue;
        };
        let mut state = ParseState::new(syntax);
        let mut stack = ScopeStack::new();
        for line in &mut file.lines {
            if started.elapsed() > HIGHLIGHT_BUDGET {
                return;
            }
            match line.kind {
                DiffKind::Hunk | DiffKind::Meta => {
                    state = ParseState::new(syntax);
                    stack = ScopeStack::new();
                    continue;
                }
                _ if line.text.len() > HIGHLIGHT_LINE => continue,
                _ => {}
            }
            let text = format!("{}\n", line.text);
            let Ok(ops) = state.parse_line(&text, set) else {
                continue;
            };
            let mut tones: Vec<(usize, Tone)> = Vec::new();
            let mut at = 0;
            for (pos, op) in ops {
                let pos = pos.min(line.text.len());
                if pos > at {
                    tones.push((pos, tone_of(&stack)));
                    at = pos;
                }
                let _ = stack.apply(&op);
            }
            if at < line.text.len() {
                tones.push((line.text.len(), tone_of(&stack)));
            }
            // Runs of one tone merge.
            tones.dedup_by(|b, a| {
                if a.1 == b.1 {
                    a.0 = b.0;
                    true
                } else {
                    false
                }
            });
            line.tones = tones;
        }
    }
}

/// The last test run of a bead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRun {
    pub round: u32,
    pub command: String,
    pub exit_code: Option<i32>,
    pub passed: bool,
    /// The end of the output, inert, one string per line.
    pub output: Vec<String>,
}

/// One step of an agent's transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// What the model said (streamed pieces joined).
    Said { who: String, text: String },
    /// A tool call and (once it came) its result.
    Tool {
        who: String,
        tool: String,
        /// The arguments, pretty JSON.
        arguments: String,
        ok: Option<bool>,
        summary: String,
    },
    /// An agent started, a test ran, a review came back.
    Note { text: String },
}

/// The transcript of `events` (one bead's, in order).
pub fn transcript(events: &[Event]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for e in events {
        let who = e.agent.clone().unwrap_or_else(|| "loom".into());
        match &e.kind {
            EventKind::ModelText { text } => match steps.last_mut() {
                Some(Step::Said { who: w, text: t }) if *w == who => t.push_str(&clean(text)),
                _ => steps.push(Step::Said {
                    who,
                    text: clean(text),
                }),
            },
            EventKind::ToolCall {
                tool, arguments, ..
            } => steps.push(Step::Tool {
                who,
                tool: clean(tool),
                arguments: clean(
                    &serde_json::to_string_pretty(arguments)
                        .unwrap_or_else(|_| arguments.to_string()),
                ),
                ok: None,
                summary: String::new(),
            }),
            EventKind::ToolResult {
                tool, ok, summary, ..
            } => {
                let open = steps.iter_mut().rev().find_map(|s| match s {
                    Step::Tool {
                        who: w,
                        tool: t,
                        ok: o @ None,
                        summary: sm,
                        ..
                    } if *w == who && t == tool => Some((o, sm)),
                    _ => None,
                });
                if let Some((o, sm)) = open {
                    *o = Some(*ok);
                    *sm = clean(summary);
                }
            }
            EventKind::AgentStarted {
                persona,
                model,
                round,
            } => steps.push(Step::Note {
                text: clean(&format!("{persona} started on {model} (round {round})")),
            }),
            EventKind::TestOutput {
                command,
                exit_code,
                passed,
                ..
            } => steps.push(Step::Note {
                text: clean(&format!(
                    "tests {} · `{command}` exit {}",
                    if *passed { "passed" } else { "failed" },
                    exit_code.map_or("?".into(), |c| c.to_string())
                )),
            }),
            EventKind::ReviewVerdict { verdict, comments } => steps.push(Step::Note {
                text: clean(&format!("review: {} — {comments}", verdict.as_str())),
            }),
            _ => {}
        }
    }
    steps
}

/// The last test run in `events`.
pub fn last_tests(events: &[Event]) -> Option<TestRun> {
    events.iter().rev().find_map(|e| match &e.kind {
        EventKind::TestOutput {
            round,
            command,
            exit_code,
            passed,
            output,
        } => Some(TestRun {
            round: *round,
            command: clean(command),
            exit_code: *exit_code,
            passed: *passed,
            output: output.lines().map(clean).collect(),
        }),
        _ => None,
    })
}

/// Everything the Work view shows of a bead.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Work {
    pub id: String,
    /// Where the diff comes from (`loom/x since 1a2b3c4 on main`, `merged in 1a2b3c4`), or why
    /// there is none.
    pub source: String,
    pub files: Vec<FileDiff>,
    pub tests: Option<TestRun>,
    pub steps: Vec<Step>,
    /// When the run the tests and transcript come from started (`None`: no run found).
    pub run: Option<String>,
}

/// The Work view's parts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Section {
    #[default]
    Diff,
    Tests,
    Transcript,
}

impl Section {
    pub const ALL: [Section; 3] = [Section::Diff, Section::Tests, Section::Transcript];

    pub fn title(self) -> &'static str {
        match self {
            Section::Diff => "Diff",
            Section::Tests => "Tests",
            Section::Transcript => "Transcript",
        }
    }

    /// The next (or previous) section.
    pub fn step(self, forward: bool) -> Section {
        let i = Section::ALL.iter().position(|s| *s == self).unwrap_or(0);
        let n = Section::ALL.len();
        Section::ALL[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }]
    }
}

/// The Work view's state.
#[derive(Debug, Default)]
pub struct WorkView {
    pub id: String,
    /// `None` while loading.
    pub work: Option<Work>,
    pub section: Section,
    /// The file shown (Diff).
    pub file: usize,
    /// Lines scrolled (Diff, Tests) or the selected step (Transcript).
    pub scroll: usize,
    /// Unfolded transcript steps.
    pub open: HashSet<usize>,
}

impl WorkView {
    pub fn new(id: &str) -> WorkView {
        WorkView {
            id: id.to_owned(),
            ..WorkView::default()
        }
    }

    /// The loaded work, if any.
    pub fn loaded(&self) -> Option<&Work> {
        self.work.as_ref()
    }

    /// Takes the loaded work; with no diff but failing tests it opens on Tests (that is what
    /// the person came for).
    pub fn set(&mut self, work: Work) {
        let tests_first = self.work.is_none()
            && work.files.is_empty()
            && work.tests.as_ref().is_some_and(|t| !t.passed);
        self.work = Some(work);
        if tests_first {
            self.section = Section::Tests;
            self.to_end(true);
        }
        self.clamp();
    }

    /// Lines (or steps) in the section shown.
    fn len(&self) -> usize {
        let Some(w) = self.loaded() else { return 0 };
        match self.section {
            Section::Diff => w.files.get(self.file).map_or(0, |f| f.lines.len()),
            Section::Tests => w.tests.as_ref().map_or(0, |t| t.output.len()),
            Section::Transcript => w.steps.len(),
        }
    }

    fn clamp(&mut self) {
        let files = self.loaded().map_or(0, |w| w.files.len());
        self.file = self.file.min(files.saturating_sub(1));
        self.scroll = self.scroll.min(self.len().saturating_sub(1));
    }

    /// The next (or previous) section; test output opens at its end (where failures are).
    pub fn switch(&mut self, forward: bool) {
        self.section = self.section.step(forward);
        self.to_end(self.section == Section::Tests);
    }

    /// The next (or previous) file of the diff.
    pub fn next_file(&mut self, forward: bool) {
        let n = self.loaded().map_or(0, |w| w.files.len());
        if n == 0 {
            return;
        }
        self.file = if forward {
            (self.file + 1) % n
        } else {
            (self.file + n - 1) % n
        };
        self.scroll = 0;
    }

    /// Moves by `by` lines (or steps).
    pub fn scroll_by(&mut self, by: isize) {
        let last = self.len().saturating_sub(1) as isize;
        self.scroll = (self.scroll as isize + by).clamp(0, last.max(0)) as usize;
    }

    pub fn to_end(&mut self, end: bool) {
        self.scroll = if end { self.len().saturating_sub(1) } else { 0 };
    }

    /// Folds or unfolds the selected transcript step.
    pub fn toggle(&mut self) {
        if self.section == Section::Transcript && !self.open.remove(&self.scroll) {
            self.open.insert(self.scroll);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIFF: &str = "diff --git a/src/pay.rs b/src/pay.rs\nindex 1a2..3b4 100644\n--- a/src/pay.rs\n+++ b/src/pay.rs\n@@ -1,3 +1,3 @@\n fn pay() {\n-    old();\n+\tnew(); // \u{1b}[31mred\n }\ndiff --git a/README.md b/README.md\nnew file mode 100644\n--- /dev/null\n+++ b/README.md\n@@ -0,0 +1 @@\n+# Shop\n";

    #[test]
    fn code_is_coloured_by_its_language_and_unknown_files_stay_plain() {
        let mut files = parse_diff(DIFF);
        highlight(&mut files);
        let added = files[0]
            .lines
            .iter()
            .find(|l| l.kind == DiffKind::Added)
            .cloned()
            .unwrap_or_else(|| panic!("an added line"));
        assert_eq!(
            added.tones.last().map(|t| t.0),
            Some(added.text.len()),
            "the runs cover the line"
        );
        assert!(
            added.tones.iter().any(|t| t.1 == Tone::Comment),
            "the // comment: {:?}",
            added.tones
        );
        let first = files[0].lines.iter().find(|l| l.text.starts_with("fn pay"));
        assert!(
            first.is_some_and(|l| l.tones.iter().any(|t| t.1 == Tone::Keyword)),
            "`fn` is a keyword: {first:?}"
        );
        let mut other =
            parse_diff("diff --git a/x.unknownext b/x.unknownext\n@@ -1 +1 @@\n+hello\n");
        highlight(&mut other);
        assert!(other[0].lines.iter().all(|l| l.tones.is_empty()));
    }

    #[test]
    fn a_diff_splits_into_files_with_counts_and_inert_text() {
        let files = parse_diff(DIFF);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].path, "src/pay.rs");
        assert_eq!((files[0].added, files[0].removed), (1, 1));
        let added = files[0]
            .lines
            .iter()
            .find(|l| l.kind == DiffKind::Added)
            .map(|l| l.text.clone())
            .unwrap_or_default();
        assert_eq!(
            added, "    new(); // ␛[31mred",
            "tab expanded, escape shown"
        );
        assert_eq!(files[0].lines[0].kind, DiffKind::Meta);
        assert_eq!(files[0].lines[1].kind, DiffKind::Hunk);
        assert_eq!(files[1].path, "README.md");
        assert_eq!((files[1].added, files[1].removed), (1, 0));
        assert!(parse_diff("").is_empty());
        assert!(parse_diff("garbage\nwithout a header").is_empty());
    }

    fn ev(agent: &str, kind: EventKind) -> Event {
        Event::about("t-1", kind).by(agent)
    }

    #[test]
    fn a_transcript_joins_text_and_pairs_calls_with_results() {
        let events = vec![
            ev(
                "coder",
                EventKind::AgentStarted {
                    persona: "coder".into(),
                    model: "m".into(),
                    round: 1,
                },
            ),
            ev(
                "coder",
                EventKind::ModelText {
                    text: "I will ".into(),
                },
            ),
            ev(
                "coder",
                EventKind::ModelText {
                    text: "fix it.".into(),
                },
            ),
            ev(
                "coder",
                EventKind::ToolCall {
                    iteration: 1,
                    tool: "edit_file".into(),
                    arguments: serde_json::json!({"path": "src/pay.rs"}),
                },
            ),
            ev(
                "coder",
                EventKind::ToolResult {
                    iteration: 1,
                    tool: "edit_file".into(),
                    ok: true,
                    summary: "+1 −1".into(),
                },
            ),
            ev(
                "loom",
                EventKind::TestOutput {
                    round: 1,
                    command: "cargo test".into(),
                    exit_code: Some(101),
                    passed: false,
                    output: "running 2 tests\ntest pay ... FAILED".into(),
                },
            ),
        ];
        let steps = transcript(&events);
        assert_eq!(steps.len(), 4, "{steps:?}");
        assert_eq!(
            steps[1],
            Step::Said {
                who: "coder".into(),
                text: "I will fix it.".into()
            }
        );
        assert!(
            matches!(&steps[2], Step::Tool { ok: Some(true), summary, arguments, .. } if summary == "+1 −1" && arguments.contains("src/pay.rs"))
        );
        let tests = last_tests(&events).expect("a test run");
        assert!(!tests.passed);
        assert_eq!(tests.output, ["running 2 tests", "test pay ... FAILED"]);
    }

    #[test]
    fn the_view_moves_and_opens_on_failing_tests_without_a_diff() {
        let mut v = WorkView::new("t-1");
        v.set(Work {
            id: "t-1".into(),
            tests: Some(TestRun {
                round: 1,
                command: "make".into(),
                exit_code: Some(2),
                passed: false,
                output: vec!["a".into(), "b".into()],
            }),
            ..Work::default()
        });
        assert_eq!(v.section, Section::Tests);
        assert_eq!(v.scroll, 1, "test output opens at its end");
        v.scroll_by(-10);
        assert_eq!(v.scroll, 0);
        v.scroll_by(10);
        assert_eq!(v.scroll, 1, "clamped to the last line");
        v.switch(true);
        assert_eq!(v.section, Section::Transcript);
        v.next_file(true);
        assert_eq!(v.file, 0, "no files: nothing moves");
        let mut v = WorkView::new("t-2");
        v.set(Work {
            files: parse_diff(DIFF),
            ..Work::default()
        });
        assert_eq!(v.section, Section::Diff);
        v.next_file(true);
        assert_eq!(v.file, 1);
        v.next_file(true);
        assert_eq!(v.file, 0, "wraps around");
    }
}
