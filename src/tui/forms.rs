//! Text entry: the fuzzy picker (`d` add a dependency, `:` the palette, the form's parent),
//! one-line prompts (filter, close reason, answers) and the bead form ([`bead`]). Each takes
//! raw keys and says what became of them.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher};
use ratatui_textarea::TextArea;

mod bead;

pub use bead::{BeadDraft, BeadForm, Field, Known, STATUSES};

/// What a key did to an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still editing.
    Editing,
    /// Done: submit.
    Submit,
    /// Given up.
    Cancel,
}

/// A one-line text input.
#[derive(Debug, Default)]
pub struct LineInput {
    pub area: TextArea<'static>,
}

impl LineInput {
    pub fn new(text: &str) -> LineInput {
        let mut area = TextArea::new(vec![text.to_owned()]);
        area.move_cursor(ratatui_textarea::CursorMove::End);
        LineInput { area }
    }

    pub fn text(&self) -> String {
        self.area.lines().join(" ")
    }

    /// Enter submits, Esc cancels, anything else edits (no newlines).
    pub fn key(&mut self, k: KeyEvent) -> Outcome {
        match k.code {
            KeyCode::Enter => Outcome::Submit,
            KeyCode::Esc => Outcome::Cancel,
            _ if k.code == KeyCode::Char('m') && k.modifiers.contains(KeyModifiers::CONTROL) => {
                Outcome::Submit
            }
            _ => {
                self.area.input(k);
                Outcome::Editing
            }
        }
    }

    pub fn paste(&mut self, text: &str) {
        self.area.insert_str(text.replace(['\n', '\r'], " "));
    }
}

/// An item the picker offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PickItem {
    pub id: String,
    /// What is matched and shown: `id  title`.
    pub label: String,
}

/// A fuzzy picker over beads (for `d`: the bead the selected one will depend on).
#[derive(Debug)]
pub struct Picker {
    /// The bead the choice is for.
    pub for_bead: String,
    /// What the picker asks, and the verb of `enter`.
    pub title: String,
    pub verb: &'static str,
    pub query: LineInput,
    items: Vec<PickItem>,
    /// Indices into `items`, best match first.
    pub shown: Vec<usize>,
    pub selected: usize,
}

impl Picker {
    pub fn new(for_bead: &str, items: Vec<PickItem>) -> Picker {
        let mut p = Picker {
            for_bead: for_bead.to_owned(),
            title: format!("{for_bead} depends on…"),
            verb: "add",
            query: LineInput::default(),
            shown: (0..items.len()).collect(),
            items,
            selected: 0,
        };
        p.refilter();
        p
    }

    /// The same picker asking something else.
    pub fn asking(mut self, title: String, verb: &'static str) -> Picker {
        self.title = title;
        self.verb = verb;
        self
    }

    fn refilter(&mut self) {
        let q = self.query.text();
        if q.trim().is_empty() {
            self.shown = (0..self.items.len()).collect();
        } else {
            let mut matcher = Matcher::new(Config::DEFAULT);
            let pattern = Pattern::parse(&q, CaseMatching::Ignore, Normalization::Smart);
            let labels: Vec<(usize, &str)> = self
                .items
                .iter()
                .enumerate()
                .map(|(i, it)| (i, it.label.as_str()))
                .collect();
            let mut scored: Vec<(usize, u32)> = labels
                .iter()
                .filter_map(|(i, label)| {
                    let mut buf = Vec::new();
                    let hay = nucleo_matcher::Utf32Str::new(label, &mut buf);
                    pattern.score(hay, &mut matcher).map(|s| (*i, s))
                })
                .collect();
            scored.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            self.shown = scored.into_iter().map(|(i, _)| i).collect();
        }
        self.selected = 0;
    }

    pub fn item(&self, shown_index: usize) -> Option<&PickItem> {
        self.items.get(*self.shown.get(shown_index)?)
    }

    pub fn chosen(&self) -> Option<&PickItem> {
        self.item(self.selected)
    }

    /// ↑/↓ choose, Enter picks, Esc cancels, typing narrows.
    pub fn key(&mut self, k: KeyEvent) -> Outcome {
        match k.code {
            KeyCode::Up => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down => {
                if self.selected + 1 < self.shown.len() {
                    self.selected += 1
                }
            }
            KeyCode::Enter if self.chosen().is_some() => return Outcome::Submit,
            KeyCode::Enter => {}
            KeyCode::Esc => return Outcome::Cancel,
            _ => {
                self.query.key(k);
                self.refilter();
            }
        }
        Outcome::Editing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn typed(s: &str) -> Vec<KeyEvent> {
        s.chars().map(|c| key(KeyCode::Char(c))).collect()
    }

    #[test]
    fn the_picker_narrows_fuzzily() {
        let items = [
            "t-aa1 Checkout rounding",
            "t-bb2 Refund flow",
            "t-cc3 Apple Pay button",
        ]
        .iter()
        .map(|l| PickItem {
            id: l.split(' ').next().unwrap().into(),
            label: (*l).into(),
        })
        .collect();
        let mut p = Picker::new("t-zz9", items);
        assert_eq!(p.shown.len(), 3);
        for k in typed("rfnd") {
            p.key(k);
        }
        assert_eq!(p.chosen().unwrap().id, "t-bb2");
        for k in typed("zzz") {
            p.key(k);
        }
        assert!(p.chosen().is_none());
        assert_eq!(
            p.key(key(KeyCode::Enter)),
            Outcome::Editing,
            "nothing to pick"
        );
        assert_eq!(p.key(key(KeyCode::Esc)), Outcome::Cancel);
    }
}
