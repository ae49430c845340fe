//! The log: what agents and the orchestrator do, one entry per line, bounded (the oldest go
//! first). A tool call and its result share an entry (folded; `enter` shows the arguments);
//! test runs keep their output behind `enter` too. Model text streams in whole lines, paced.
//! The view follows new entries until you scroll up, and shows all beads or one.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::event::{Event, EventKind, render};
use crate::text::clock;

use super::pacing::{LineStream, Pacing};

/// Entries kept.
pub const CAPACITY: usize = 100_000;

/// What an entry is (the shared renderer's topic).
pub use crate::event::render::Topic as Kind;

/// One line of the log.
#[derive(Clone, Debug)]
pub struct Entry {
    /// `HH:MM:SS`.
    pub time: String,
    pub bead: String,
    /// The agent, or `loom`.
    pub who: String,
    pub kind: Kind,
    pub text: String,
    /// `Some(ok)` once a tool call or test has a result.
    pub ok: Option<bool>,
    /// Shown on `enter`: arguments, output.
    pub detail: Option<String>,
    pub expanded: bool,
}

impl From<render::Line> for Entry {
    fn from(l: render::Line) -> Entry {
        let text = l.body();
        Entry {
            time: l.clock,
            bead: l.bead,
            who: l.who,
            kind: l.topic,
            text,
            ok: l.ok,
            detail: l.detail,
            expanded: false,
        }
    }
}

/// Which past run a log shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunLabel {
    /// 1 the run before the last; higher older.
    pub index: usize,
    pub total: usize,
    /// When it started (RFC 3339).
    pub started: String,
}

/// The log and how it is viewed.
#[derive(Debug)]
pub struct Logs {
    /// A past run's log (read back), or `None` for the live one.
    pub run: Option<RunLabel>,
    pub entries: VecDeque<Entry>,
    /// Entries dropped from the front so far (keeps indices stable for the view).
    pub dropped: usize,
    /// Only this bead (`None`: all).
    pub only: Option<String>,
    /// Selected entry (absolute index: `dropped + position`), when not following.
    pub cursor: usize,
    pub follow: bool,
    pub search: Option<String>,
    streams: HashMap<(String, String), LineStream>,
    /// When each stream last received text (the event's clock time).
    stream_at: HashMap<(String, String), String>,
    /// The open tool call of each (bead, agent): its absolute index.
    open_calls: HashMap<(String, String), usize>,
    pacing: Pacing,
}

impl Default for Logs {
    fn default() -> Self {
        Logs {
            run: None,
            entries: VecDeque::new(),
            dropped: 0,
            only: None,
            cursor: 0,
            follow: true,
            search: None,
            streams: HashMap::new(),
            stream_at: HashMap::new(),
            open_calls: HashMap::new(),
            pacing: Pacing::default(),
        }
    }
}

impl Logs {
    fn push(&mut self, e: Entry) {
        self.entries.push_back(e);
        if self.entries.len() > CAPACITY {
            self.entries.pop_front();
            self.dropped += 1;
        }
    }

    /// The entry at absolute index `i`.
    pub fn get(&self, i: usize) -> Option<&Entry> {
        self.entries.get(i.checked_sub(self.dropped)?)
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut Entry> {
        self.entries.get_mut(i.checked_sub(self.dropped)?)
    }

    /// The last absolute index (or `dropped` when empty).
    pub fn end(&self) -> usize {
        self.dropped + self.entries.len()
    }

    /// Whether entry `e` is in view (the bead filter).
    pub fn visible(&self, e: &Entry) -> bool {
        self.only.as_ref().is_none_or(|b| e.bead == *b)
    }

    /// Folds an event in; returns when to look again for paced text (`None`: nothing waits).
    /// Lines are worded by [`render::line`]; the log only streams model text and folds a tool
    /// call with its result.
    pub fn apply(&mut self, ev: &Event, now: Instant) -> Option<Duration> {
        let (bead, agent) = (ev.bead_or_empty(), ev.agent_or_empty());
        match &ev.kind {
            EventKind::ModelText { text } => {
                let key = (bead.to_owned(), agent.to_owned());
                self.stream_at.insert(key.clone(), clock(&ev.at).to_owned());
                let pacing = self.pacing;
                self.streams
                    .entry(key)
                    .or_insert_with(|| LineStream::new(pacing))
                    .push(now, text);
                return self.pump(now);
            }
            EventKind::ToolCall { .. } => self.flush_stream(bead, agent, &ev.at),
            EventKind::ToolResult { tool, ok, .. } => {
                let open = self.open_calls.remove(&(bead.to_owned(), agent.to_owned()));
                if let Some(e) = open.and_then(|i| self.get_mut(i))
                    && let Some(l) = render::line(ev)
                {
                    e.ok = Some(*ok);
                    e.text = l.text;
                    return None;
                }
                if let Some(mut l) = render::line(ev) {
                    l.text = format!("{tool}: {}", l.text);
                    self.push(Entry::from(l));
                }
                return None;
            }
            _ => {}
        }
        let l = render::line(ev)?;
        if matches!(l.topic, Kind::Store | Kind::Run | Kind::Health) {
            return None;
        }
        let call = l.topic == Kind::Tool;
        self.push(Entry::from(l));
        if call {
            self.open_calls
                .insert((bead.to_owned(), agent.to_owned()), self.end() - 1);
        }
        None
    }

    /// The log of a run read back whole: no pacing, its text all there at once.
    pub fn replayed(events: &[Event]) -> Logs {
        let mut l = Logs::default();
        let now = Instant::now();
        for e in events {
            l.apply(e, now);
        }
        let open: Vec<((String, String), String)> = l
            .stream_at
            .iter()
            .map(|(k, at)| (k.clone(), at.clone()))
            .collect();
        for ((bead, agent), time) in open {
            let lines = l
                .streams
                .get_mut(&(bead.clone(), agent.clone()))
                .map(LineStream::finish)
                .unwrap_or_default();
            for text in lines.into_iter().filter(|t| !t.trim().is_empty()) {
                l.push(Entry {
                    time: time.clone(),
                    bead: bead.clone(),
                    who: agent.clone(),
                    kind: Kind::Text,
                    text,
                    ok: None,
                    detail: None,
                    expanded: false,
                });
            }
        }
        l.streams.clear();
        l
    }

    /// Lets paced model text out; returns when to look again.
    pub fn pump(&mut self, now: Instant) -> Option<Duration> {
        let mut next: Option<Duration> = None;
        let mut out = Vec::new();
        for ((bead, agent), s) in &mut self.streams {
            let (lines, again) = s.take(now);
            let time = self
                .stream_at
                .get(&(bead.clone(), agent.clone()))
                .cloned()
                .unwrap_or_default();
            for l in lines.into_iter().filter(|l| !l.trim().is_empty()) {
                out.push((bead.clone(), agent.clone(), time.clone(), l));
            }
            if let Some(a) = again {
                next = Some(next.map_or(a, |n| n.min(a)));
            }
        }
        for (bead, who, time, text) in out {
            self.push(Entry {
                time,
                bead,
                who,
                kind: Kind::Text,
                text,
                ok: None,
                detail: None,
                expanded: false,
            });
        }
        next
    }

    fn flush_stream(&mut self, bead: &str, agent: &str, at: &str) {
        let Some(s) = self.streams.get_mut(&(bead.to_owned(), agent.to_owned())) else {
            return;
        };
        let lines = s.finish();
        for l in lines.into_iter().filter(|l| !l.trim().is_empty()) {
            self.push(Entry {
                time: clock(at).to_owned(),
                bead: bead.to_owned(),
                who: agent.to_owned(),
                kind: Kind::Text,
                text: l,
                ok: None,
                detail: None,
                expanded: false,
            });
        }
    }

    /// Visible entries' absolute indices, oldest first (bounded to the last `max`).
    pub fn visible_indices(&self, max: usize) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for (pos, e) in self.entries.iter().enumerate().rev() {
            if self.visible(e) {
                out.push(self.dropped + pos);
                if out.len() >= max {
                    break;
                }
            }
        }
        out.reverse();
        out
    }

    /// Up to `max` visible entries ending with absolute index `last` (inclusive), oldest first.
    pub fn visible_until(&self, last: usize, max: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let end = (last + 1).min(self.end());
        for i in (self.dropped..end).rev() {
            if out.len() >= max {
                break;
            }
            if self.get(i).is_some_and(|e| self.visible(e)) {
                out.push(i);
            }
        }
        out.reverse();
        out
    }

    fn step(&self, from: usize, forward: bool) -> Option<usize> {
        if forward {
            (from + 1..self.end()).find(|i| self.get(*i).is_some_and(|e| self.visible(e)))
        } else {
            (self.dropped..from)
                .rev()
                .find(|i| self.get(*i).is_some_and(|e| self.visible(e)))
        }
    }

    /// The selected entry (the last visible one while following).
    pub fn selected(&self) -> Option<usize> {
        if self.follow {
            self.visible_indices(1).first().copied()
        } else {
            Some(self.cursor)
        }
    }

    /// Moves the selection by `n` (negative: up); moving up stops following, reaching the end
    /// follows again.
    pub fn move_by(&mut self, n: isize) {
        let Some(mut at) = self.selected() else {
            return;
        };
        for _ in 0..n.unsigned_abs() {
            match self.step(at, n > 0) {
                Some(i) => at = i,
                None => break,
            }
        }
        self.cursor = at;
        self.follow = n > 0 && self.step(at, true).is_none();
    }

    pub fn jump_to_end(&mut self) {
        self.follow = true;
    }

    pub fn jump_to_start(&mut self) {
        if let Some(first) =
            (self.dropped..self.end()).find(|i| self.get(*i).is_some_and(|e| self.visible(e)))
        {
            self.cursor = first;
            self.follow = false;
        }
    }

    /// Expands or folds the selected entry.
    pub fn toggle(&mut self) {
        if let Some(i) = self.selected()
            && let Some(e) = self.get_mut(i)
            && e.detail.is_some()
        {
            e.expanded = !e.expanded;
        }
    }

    /// Selects the next entry (after the selection, wrapping) containing the search text.
    pub fn search_next(&mut self) -> bool {
        let Some(q) = self
            .search
            .as_ref()
            .map(|s| s.to_lowercase())
            .filter(|s| !s.is_empty())
        else {
            return false;
        };
        let start = self.selected().unwrap_or(self.dropped);
        let matches = |e: &Entry| {
            e.text.to_lowercase().contains(&q)
                || e.detail
                    .as_deref()
                    .is_some_and(|d| d.to_lowercase().contains(&q))
        };
        let order = (start + 1..self.end()).chain(self.dropped..=start);
        for i in order {
            if let Some(e) = self.get(i)
                && self.visible(e)
                && matches(e)
            {
                self.cursor = i;
                self.follow = false;
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Stage;

    fn call(bead: &str, tool: &str) -> Event {
        Event::about(
            bead,
            EventKind::ToolCall {
                iteration: 1,
                tool: tool.into(),
                arguments: serde_json::json!({"path": "a.rs"}),
            },
        )
        .by("coder")
    }

    fn result(bead: &str, ok: bool) -> Event {
        Event::about(
            bead,
            EventKind::ToolResult {
                iteration: 1,
                tool: "read_file".into(),
                ok,
                summary: "read_file a.rs (1-40)".into(),
            },
        )
        .by("coder")
    }

    #[test]
    fn a_call_and_its_result_share_a_line_and_expand() {
        let t = Instant::now();
        let mut l = Logs::default();
        l.apply(&call("t-a", "read_file"), t);
        l.apply(&result("t-a", true), t);
        assert_eq!(l.entries.len(), 1);
        assert_eq!(l.entries[0].ok, Some(true));
        assert_eq!(l.entries[0].text, "read_file a.rs (1-40)");
        l.toggle();
        assert!(l.entries[0].expanded);
        assert!(l.entries[0].detail.as_deref().unwrap().contains("\"path\""));
    }

    #[test]
    fn model_text_arrives_in_paced_lines() {
        let t = Instant::now();
        let mut l = Logs::default();
        let text =
            |s: &str| Event::about("t-a", EventKind::ModelText { text: s.into() }).by("coder");
        assert!(l.apply(&text("Looking at the"), t).is_none());
        assert!(l.entries.is_empty(), "no whole line yet");
        let next = l.apply(&text(" code.\nSecond line\nthird"), t);
        assert_eq!(l.entries.len(), 1);
        assert!(next.is_some(), "another line waits");
        l.pump(t + Duration::from_millis(50));
        assert_eq!(l.entries.len(), 2);
        // A tool call flushes what is left of the text first.
        l.apply(&call("t-a", "read_file"), t);
        let texts: Vec<&str> = l.entries.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts[..3], ["Looking at the code.", "Second line", "third"]);
    }

    #[test]
    fn bounded_filtered_followed_and_searched() {
        let t = Instant::now();
        let mut l = Logs::default();
        for i in 0..(CAPACITY + 10) {
            let bead = if i % 2 == 0 { "t-a" } else { "t-b" };
            l.apply(
                &Event::about(
                    bead,
                    EventKind::StageChanged {
                        stage: Stage::Implementing,
                        detail: format!("s{i}."),
                    },
                ),
                t,
            );
        }
        assert_eq!(l.entries.len(), CAPACITY);
        assert_eq!(l.dropped, 10);
        l.only = Some("t-b".into());
        let v = l.visible_indices(3);
        assert!(v.iter().all(|i| l.get(*i).unwrap().bead == "t-b"));
        assert!(l.follow);
        l.move_by(-2);
        assert!(!l.follow, "scrolling up stops following");
        l.move_by(5);
        assert!(l.follow, "back at the end follows again");
        l.search = Some("s13.".into());
        assert!(l.search_next());
        assert_eq!(l.get(l.cursor).unwrap().text, "implementing · s13.");
        l.search = Some("s12.".into());
        assert!(!l.search_next(), "s12 is t-a's, filtered out");
    }
}
