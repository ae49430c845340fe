//! The pair-programming pane's state: the conversation about one bead (the log so far, then
//! this session's turns), the reply streaming in paced lines, tool actions inline with their
//! confirmation, and the multi-line input. [`PairView::key`] and [`PairView::event`] are pure;
//! the worker (`worker/pair.rs`) talks to the model.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui_textarea::TextArea;

use crate::agent::run::Confirm;
use crate::store::ConversationEntry;

use super::pacing::{LineStream, Pacing};

/// What happened in the background session.
#[derive(Clone, Debug)]
pub enum PairEvent {
    /// The session is open: who talks, on which branch, and what was said before.
    Opened {
        persona: String,
        personas: Vec<String>,
        branch: String,
        history: Vec<ConversationEntry>,
        /// Lines of the log that could not be read (skipped).
        unreadable: usize,
    },
    /// The session cannot open (no endpoint, no repository, …); what was said before is shown.
    Failed {
        message: String,
        history: Vec<ConversationEntry>,
    },
    /// Reply text, as it streams.
    Text(String),
    /// The agent called a tool.
    ToolCall(String),
    /// The agent wants to write or run something: may it?
    Ask {
        title: String,
        preview: Vec<String>,
    },
    ToolResult {
        ok: bool,
        summary: String,
    },
    /// A note from the session (retries, pauses).
    Note(String),
    /// The session broke (it is closed); why.
    Lost(String),
    /// The reply ended (or was stopped): a summary line (model, tokens, commit) or what went
    /// wrong.
    Finished {
        ok: bool,
        summary: String,
    },
}

/// Where a tool action stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolState {
    Running,
    /// Waiting for `y`/`n`/`a`.
    Asking,
    Done {
        ok: bool,
        summary: String,
    },
}

/// One thing in the conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    You(String),
    Agent {
        who: String,
        text: String,
    },
    Tool {
        title: String,
        preview: Vec<String>,
        state: ToolState,
    },
    Note {
        error: bool,
        text: String,
    },
}

/// What the pane is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Setting up the worktree and reading the log.
    Opening,
    Ready,
    Replying,
    /// A reply waits for a confirmation.
    Asking,
    /// The session could not open; only the history is shown.
    Unavailable,
}

/// What a key asks the app to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PairKey {
    Nothing,
    Send(String),
    Answer(Confirm),
    Stop,
    Back,
    ChoosePersona,
    Help,
    Quit,
    /// Tell the person why not.
    Say(&'static str),
}

/// The pane.
#[derive(Debug)]
pub struct PairView {
    /// The app's number for this session (events of other sessions are not for it).
    pub session: u64,
    pub bead: String,
    pub title: String,
    pub persona: Option<String>,
    pub personas: Vec<String>,
    pub branch: Option<String>,
    pub entries: Vec<Entry>,
    pub phase: Phase,
    /// Edits and commands allowed without asking, for the rest of this session.
    pub always: bool,
    pub input: TextArea<'static>,
    /// Lines scrolled up from the end (0: follow the end), and the most that makes sense
    /// (known once the whole conversation was laid out; set while drawing).
    pub scroll: usize,
    pub max_scroll: std::cell::Cell<usize>,
    stream: LineStream,
}

impl PairView {
    pub fn new(session: u64, bead: &str, title: &str) -> PairView {
        PairView {
            session,
            bead: bead.to_owned(),
            title: title.to_owned(),
            persona: None,
            personas: Vec::new(),
            branch: None,
            entries: Vec::new(),
            phase: Phase::Opening,
            always: false,
            input: TextArea::default(),
            scroll: 0,
            max_scroll: std::cell::Cell::new(usize::MAX),
            stream: LineStream::new(Pacing::default()),
        }
    }

    /// Whether reply text has come that is not shown yet (an unfinished line).
    pub fn writing(&self) -> bool {
        !self.stream.is_empty()
    }

    /// Whether a reply is under way.
    pub fn busy(&self) -> bool {
        matches!(self.phase, Phase::Replying | Phase::Asking)
    }

    fn load(&mut self, history: &[ConversationEntry]) {
        self.entries.clear();
        for e in history {
            match e.role.as_str() {
                "user" => self.entries.push(Entry::You(e.content.clone())),
                "assistant" => self.entries.push(Entry::Agent {
                    who: e.author.clone().unwrap_or_else(|| "agent".into()),
                    text: e.content.clone(),
                }),
                _ => {}
            }
        }
    }

    fn note(&mut self, error: bool, text: impl Into<String>) {
        self.entries.push(Entry::Note {
            error,
            text: text.into(),
        });
    }

    /// Appends paced lines to the agent's current turn.
    fn commit_lines(&mut self, lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        let who = self.persona.clone().unwrap_or_else(|| "agent".into());
        let joined = lines.join("\n");
        match self.entries.last_mut() {
            Some(Entry::Agent { who: w, text }) if *w == who => {
                text.push('\n');
                text.push_str(&joined);
            }
            _ => self.entries.push(Entry::Agent { who, text: joined }),
        }
    }

    /// Everything streamed so far, shown now (before a tool line, at the end).
    fn flush(&mut self) {
        let lines = self.stream.finish();
        self.commit_lines(lines);
    }

    /// Lets paced reply lines out; returns when to look again.
    pub fn pump(&mut self, now: Instant) -> Option<Duration> {
        let (lines, next) = self.stream.take(now);
        self.commit_lines(lines);
        next
    }

    fn last_tool(&mut self) -> Option<(&mut String, &mut Vec<String>, &mut ToolState)> {
        self.entries.iter_mut().rev().find_map(|e| match e {
            Entry::Tool {
                title,
                preview,
                state,
            } => Some((title, preview, state)),
            _ => None,
        })
    }

    /// A question or tool left open by a stop is no longer asked or running.
    fn close_questions(&mut self) {
        for e in &mut self.entries {
            if let Entry::Tool { state, .. } = e
                && matches!(state, ToolState::Running | ToolState::Asking)
            {
                *state = ToolState::Done {
                    ok: false,
                    summary: "stopped".into(),
                };
            }
        }
    }

    /// An event of the session; returns when to look again (paced text).
    pub fn event(&mut self, e: PairEvent, now: Instant) -> Option<Duration> {
        match e {
            PairEvent::Opened {
                persona,
                personas,
                branch,
                history,
                unreadable,
            } => {
                self.load(&history);
                if unreadable > 0 {
                    self.note(
                        true,
                        format!("{unreadable} lines of the conversation log could not be read; they were skipped"),
                    );
                }
                self.persona = Some(persona);
                self.personas = personas;
                self.branch = Some(branch);
                self.phase = Phase::Ready;
            }
            PairEvent::Failed { message, history } => {
                self.load(&history);
                self.note(true, message);
                self.phase = Phase::Unavailable;
            }
            PairEvent::Text(t) => {
                self.stream.push(now, &t);
                return self.pump(now);
            }
            PairEvent::ToolCall(title) => {
                self.flush();
                self.entries.push(Entry::Tool {
                    title,
                    preview: Vec::new(),
                    state: ToolState::Running,
                });
            }
            PairEvent::Ask { title, preview } => {
                self.flush();
                self.phase = Phase::Asking;
                self.scroll = 0;
                match self.last_tool() {
                    Some((t, p, s)) if *s == ToolState::Running => {
                        *t = title;
                        *p = preview;
                        *s = ToolState::Asking;
                    }
                    _ => self.entries.push(Entry::Tool {
                        title,
                        preview,
                        state: ToolState::Asking,
                    }),
                }
            }
            PairEvent::ToolResult { ok, summary } => {
                if let Some((_, _, s)) = self.last_tool() {
                    *s = ToolState::Done { ok, summary };
                }
            }
            PairEvent::Note(text) => {
                self.flush();
                self.note(false, text);
            }
            PairEvent::Lost(why) => {
                self.flush();
                self.close_questions();
                self.note(true, why);
                self.phase = Phase::Unavailable;
            }
            PairEvent::Finished { ok, summary } => {
                self.flush();
                self.close_questions();
                self.note(!ok, summary);
                self.phase = Phase::Ready;
            }
        }
        None
    }

    /// The text typed so far.
    pub fn text(&self) -> String {
        self.input.lines().join("\n")
    }

    pub fn paste(&mut self, text: &str) {
        self.input.insert_str(text.replace("\r\n", "\n"));
    }

    /// A key press in the pane.
    pub fn key(&mut self, k: KeyEvent) -> PairKey {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let newline = k
            .modifiers
            .intersects(KeyModifiers::SHIFT | KeyModifiers::ALT);
        match k.code {
            KeyCode::Char('c') if ctrl => {
                if self.busy() {
                    return PairKey::Stop;
                }
                if !self.text().is_empty() {
                    self.input = TextArea::default();
                    return PairKey::Nothing;
                }
                return PairKey::Quit;
            }
            KeyCode::Esc => return PairKey::Back,
            KeyCode::F(1) => return PairKey::Help,
            KeyCode::PageUp => {
                self.scroll = self.scroll.saturating_add(10).min(self.max_scroll.get());
                return PairKey::Nothing;
            }
            KeyCode::PageDown => {
                self.scroll = self.scroll.saturating_sub(10);
                return PairKey::Nothing;
            }
            _ => {}
        }
        if self.phase == Phase::Asking {
            return match k.code {
                KeyCode::Char('y') => PairKey::Answer(Confirm::Yes),
                KeyCode::Char('n') => PairKey::Answer(Confirm::No),
                KeyCode::Char('a') => {
                    self.always = true;
                    PairKey::Answer(Confirm::Always)
                }
                _ => PairKey::Say("answer the question first: y yes, n no, a always"),
            };
        }
        match k.code {
            KeyCode::Enter if newline => {
                self.input.insert_newline();
            }
            KeyCode::Char('j') if ctrl => {
                self.input.insert_newline();
            }
            KeyCode::Enter => {
                let text = self.text();
                if text.trim().is_empty() {
                    return PairKey::Nothing;
                }
                return match self.phase {
                    Phase::Ready => {
                        self.input = TextArea::default();
                        self.scroll = 0;
                        self.entries.push(Entry::You(text.trim_end().to_owned()));
                        self.phase = Phase::Replying;
                        PairKey::Send(text)
                    }
                    Phase::Opening => PairKey::Say("the session is still opening"),
                    Phase::Unavailable => PairKey::Say("this session cannot talk (see above)"),
                    Phase::Replying | Phase::Asking => {
                        PairKey::Say("a reply is still coming (ctrl+c stops it)")
                    }
                };
            }
            KeyCode::Tab => {
                return if self.busy() || self.personas.is_empty() {
                    PairKey::Nothing
                } else {
                    PairKey::ChoosePersona
                };
            }
            _ => {
                self.input.input(k);
            }
        }
        PairKey::Nothing
    }

    /// A new answer was given to the question on screen.
    pub fn answered(&mut self) {
        if self.phase == Phase::Asking {
            self.phase = Phase::Replying;
            if let Some((_, _, s)) = self.last_tool()
                && *s == ToolState::Asking
            {
                *s = ToolState::Running;
            }
        }
    }

    /// Talking to another persona: the pane opens again as session `session`.
    pub fn reopen(&mut self, session: u64, persona: &str) {
        self.session = session;
        self.persona = Some(persona.to_owned());
        self.phase = Phase::Opening;
        self.always = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn typed(v: &mut PairView, s: &str) {
        for c in s.chars() {
            v.key(key(KeyCode::Char(c)));
        }
    }

    fn entry(role: &str, content: &str, author: &str) -> ConversationEntry {
        ConversationEntry {
            role: role.into(),
            content: content.into(),
            time: "2026-11-21T10:00:00Z".into(),
            author: Some(author.into()),
            model: None,
            prompt_tokens: None,
            completion_tokens: None,
            cost_usd: None,
        }
    }

    fn opened(v: &mut PairView, now: Instant) {
        v.event(
            PairEvent::Opened {
                persona: "coder".into(),
                personas: vec!["coder".into(), "reviewer".into()],
                branch: "loom/t-1".into(),
                history: vec![
                    entry("user", "Where is rounding done?", "ann"),
                    entry("assistant", "In money.rs.", "coder"),
                ],
                unreadable: 0,
            },
            now,
        );
    }

    #[test]
    fn history_loads_and_a_message_is_sent_with_newlines() {
        let t = Instant::now();
        let mut v = PairView::new(1, "t-1", "Rounding");
        typed(&mut v, "hi");
        assert_eq!(
            v.key(key(KeyCode::Enter)),
            PairKey::Say("the session is still opening")
        );
        opened(&mut v, t);
        assert_eq!(v.entries.len(), 2);
        assert_eq!(v.phase, Phase::Ready);
        v.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::SHIFT));
        typed(&mut v, "there");
        v.key(KeyEvent::new(KeyCode::Char('j'), KeyModifiers::CONTROL));
        typed(&mut v, "!");
        assert_eq!(
            v.key(key(KeyCode::Enter)),
            PairKey::Send("hi\nthere\n!".into())
        );
        assert_eq!(v.text(), "", "the input is cleared");
        assert_eq!(v.phase, Phase::Replying);
        assert_eq!(v.entries.last(), Some(&Entry::You("hi\nthere\n!".into())));
        typed(&mut v, "more");
        assert!(matches!(v.key(key(KeyCode::Enter)), PairKey::Say(_)));
        assert_eq!(v.text(), "more", "kept while the reply comes");
    }

    #[test]
    fn a_reply_streams_and_tools_ask_inline() {
        let t = Instant::now();
        let mut v = PairView::new(1, "t-1", "Rounding");
        opened(&mut v, t);
        typed(&mut v, "fix it");
        v.key(key(KeyCode::Enter));
        v.event(PairEvent::Text("Looking at it.\nI'll ".into()), t);
        v.event(PairEvent::ToolCall("read_file src/money.rs".into()), t);
        v.event(
            PairEvent::ToolResult {
                ok: true,
                summary: "read_file src/money.rs (40 lines)".into(),
            },
            t,
        );
        v.event(PairEvent::ToolCall("edit_file".into()), t);
        v.event(
            PairEvent::Ask {
                title: "edit_file src/money.rs  +1 −1".into(),
                preview: vec!["- a".into(), "+ b".into()],
            },
            t,
        );
        assert_eq!(v.phase, Phase::Asking);
        assert_eq!(
            v.entries[3],
            Entry::Agent {
                who: "coder".into(),
                text: "Looking at it.\nI'll ".into()
            }
        );
        assert!(matches!(v.key(key(KeyCode::Char('x'))), PairKey::Say(_)));
        assert_eq!(
            v.key(key(KeyCode::Char('a'))),
            PairKey::Answer(Confirm::Always)
        );
        assert!(v.always);
        v.answered();
        assert_eq!(v.phase, Phase::Replying);
        v.event(
            PairEvent::ToolResult {
                ok: true,
                summary: "edited".into(),
            },
            t,
        );
        v.event(PairEvent::Text("Done.".into()), t);
        v.event(
            PairEvent::Finished {
                ok: true,
                summary: "m · 10 tokens".into(),
            },
            t,
        );
        assert_eq!(v.phase, Phase::Ready);
        let tools: Vec<&ToolState> = v
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Tool { state, .. } => Some(state),
                _ => None,
            })
            .collect();
        assert_eq!(tools.len(), 2);
        assert!(matches!(tools[1], ToolState::Done { ok: true, .. }));
        assert!(
            matches!(&v.entries[v.entries.len() - 2], Entry::Agent { text, .. } if text == "Done.")
        );
    }

    #[test]
    fn ctrl_c_stops_a_reply_then_clears_then_quits() {
        let t = Instant::now();
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        let mut v = PairView::new(1, "t-1", "Rounding");
        opened(&mut v, t);
        typed(&mut v, "go");
        v.key(key(KeyCode::Enter));
        assert_eq!(v.key(ctrl_c), PairKey::Stop);
        v.event(
            PairEvent::Ask {
                title: "run_command make".into(),
                preview: vec![],
            },
            t,
        );
        v.event(
            PairEvent::Finished {
                ok: true,
                summary: "stopped by hand".into(),
            },
            t,
        );
        assert!(
            v.entries.iter().any(|e| matches!(
                e,
                Entry::Tool {
                    state: ToolState::Done { ok: false, .. },
                    ..
                }
            )),
            "the open question is closed"
        );
        typed(&mut v, "draft");
        assert_eq!(v.key(ctrl_c), PairKey::Nothing);
        assert_eq!(v.text(), "");
        assert_eq!(v.key(ctrl_c), PairKey::Quit);
        assert_eq!(v.key(key(KeyCode::Esc)), PairKey::Back);
        assert_eq!(v.key(key(KeyCode::Tab)), PairKey::ChoosePersona);
    }

    #[test]
    fn failure_keeps_the_history_readable() {
        let mut v = PairView::new(1, "t-1", "Rounding");
        v.event(
            PairEvent::Failed {
                message: "no model endpoint is configured".into(),
                history: vec![entry("user", "hello", "ann")],
            },
            Instant::now(),
        );
        assert_eq!(v.phase, Phase::Unavailable);
        assert_eq!(v.entries.len(), 2);
        typed(&mut v, "x");
        assert!(matches!(v.key(key(KeyCode::Enter)), PairKey::Say(_)));
    }
}
