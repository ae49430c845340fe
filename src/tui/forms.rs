//! Text entry: the bead form (`n` new, `e` edit: title, type, priority, description,
//! dependencies), the fuzzy picker (`d` add a dependency), and one-line prompts (filter, close
//! reason, answers). Each takes raw keys and says what became of them.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher};
use ratatui_textarea::TextArea;

use crate::bead::issue_type;

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

/// The fields of the bead form, in tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Title,
    Type,
    Priority,
    Description,
    Dependencies,
}

impl Field {
    pub const ALL: [Field; 5] = [
        Field::Title,
        Field::Type,
        Field::Priority,
        Field::Description,
        Field::Dependencies,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Field::Title => "Title",
            Field::Type => "Type",
            Field::Priority => "Priority",
            Field::Description => "Description",
            Field::Dependencies => "Blocked by",
        }
    }
}

/// The types offered in the form (←/→ cycle).
pub const TYPES: [&str; 6] = [
    issue_type::TASK,
    issue_type::BUG,
    issue_type::FEATURE,
    issue_type::CHORE,
    issue_type::EPIC,
    issue_type::DECISION,
];

/// What the form produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BeadDraft {
    pub title: String,
    pub issue_type: String,
    pub priority: i64,
    pub description: String,
    /// Ids (or prefixes) it is blocked by.
    pub depends_on: Vec<String>,
}

/// The new/edit bead form.
#[derive(Debug)]
pub struct BeadForm {
    /// `None`: a new bead; `Some(id)`: editing it.
    pub editing: Option<String>,
    pub focus: Field,
    pub title: LineInput,
    pub type_index: usize,
    pub priority: i64,
    pub description: TextArea<'static>,
    pub deps: LineInput,
    /// Why the last submit was refused.
    pub error: Option<String>,
}

impl BeadForm {
    pub fn new_bead() -> BeadForm {
        BeadForm {
            editing: None,
            focus: Field::Title,
            title: LineInput::default(),
            type_index: 0,
            priority: 2,
            description: TextArea::default(),
            deps: LineInput::default(),
            error: None,
        }
    }

    pub fn edit(id: &str, d: &BeadDraft) -> BeadForm {
        BeadForm {
            editing: Some(id.to_owned()),
            focus: Field::Title,
            title: LineInput::new(&d.title),
            type_index: TYPES.iter().position(|t| *t == d.issue_type).unwrap_or(0),
            priority: d.priority.clamp(0, 4),
            description: TextArea::new(d.description.lines().map(str::to_owned).collect()),
            deps: LineInput::new(&d.depends_on.join(" ")),
            error: None,
        }
    }

    pub fn draft(&self) -> BeadDraft {
        BeadDraft {
            title: self.title.text().trim().to_owned(),
            issue_type: TYPES
                .get(self.type_index)
                .copied()
                .unwrap_or("task")
                .to_owned(),
            priority: self.priority,
            description: self.description.lines().join("\n").trim_end().to_owned(),
            depends_on: self
                .deps
                .text()
                .split([' ', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    fn move_focus(&mut self, forward: bool) {
        let i = Field::ALL
            .iter()
            .position(|f| *f == self.focus)
            .unwrap_or(0);
        let n = Field::ALL.len();
        self.focus = Field::ALL[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }];
    }

    /// Tab/shift-tab move between fields, ctrl+s or Enter on a one-line field submits, Esc
    /// cancels; ←/→ (or space) change the type and priority; digits 0–4 set the priority.
    pub fn key(&mut self, k: KeyEvent) -> Outcome {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Esc => return Outcome::Cancel,
            KeyCode::Tab => {
                self.move_focus(true);
                return Outcome::Editing;
            }
            KeyCode::BackTab => {
                self.move_focus(false);
                return Outcome::Editing;
            }
            KeyCode::Char('s') if ctrl => return self.submit(),
            _ => {}
        }
        match self.focus {
            Field::Title => match self.title.key(k) {
                Outcome::Submit => return self.submit(),
                o => return o,
            },
            Field::Dependencies => match self.deps.key(k) {
                Outcome::Submit => return self.submit(),
                o => return o,
            },
            Field::Type => match k.code {
                KeyCode::Left | KeyCode::Char('h') => {
                    self.type_index = (self.type_index + TYPES.len() - 1) % TYPES.len()
                }
                KeyCode::Right | KeyCode::Char('l') | KeyCode::Char(' ') => {
                    self.type_index = (self.type_index + 1) % TYPES.len()
                }
                KeyCode::Enter => return self.submit(),
                _ => {}
            },
            Field::Priority => match k.code {
                KeyCode::Left | KeyCode::Char('h') => self.priority = (self.priority - 1).max(0),
                KeyCode::Right | KeyCode::Char('l') | KeyCode::Char(' ') => {
                    self.priority = (self.priority + 1).min(4)
                }
                KeyCode::Char(c @ '0'..='4') => self.priority = i64::from(c as u8 - b'0'),
                KeyCode::Enter => return self.submit(),
                _ => {}
            },
            Field::Description => {
                self.description.input(k);
            }
        }
        Outcome::Editing
    }

    fn submit(&mut self) -> Outcome {
        let d = self.draft();
        if d.title.is_empty() {
            self.error = Some("the title cannot be empty".into());
            self.focus = Field::Title;
            return Outcome::Editing;
        }
        if d.title.chars().count() > 500 {
            self.error = Some("the title is longer than 500 characters".into());
            return Outcome::Editing;
        }
        Outcome::Submit
    }

    pub fn paste(&mut self, text: &str) {
        match self.focus {
            Field::Title => self.title.paste(text),
            Field::Dependencies => self.deps.paste(text),
            Field::Description => {
                self.description.insert_str(text);
            }
            _ => {}
        }
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
    fn the_form_moves_edits_and_validates() {
        let mut f = BeadForm::new_bead();
        assert_eq!(
            f.key(key(KeyCode::Enter)),
            Outcome::Editing,
            "empty title refused"
        );
        assert!(f.error.as_deref().unwrap().contains("empty"));
        for k in typed("Fix rounding") {
            f.key(k);
        }
        f.key(key(KeyCode::Tab));
        f.key(key(KeyCode::Right)); // task -> bug
        f.key(key(KeyCode::Tab));
        f.key(key(KeyCode::Char('1')));
        f.key(key(KeyCode::Tab));
        for k in typed("line one") {
            f.key(k);
        }
        f.key(key(KeyCode::Enter)); // a newline in the description
        for k in typed("two") {
            f.key(k);
        }
        f.key(key(KeyCode::Tab));
        for k in typed("t-a1, t-b2") {
            f.key(k);
        }
        assert_eq!(f.key(key(KeyCode::Enter)), Outcome::Submit);
        let d = f.draft();
        assert_eq!(d.title, "Fix rounding");
        assert_eq!(d.issue_type, "bug");
        assert_eq!(d.priority, 1);
        assert_eq!(d.description, "line one\ntwo");
        assert_eq!(d.depends_on, ["t-a1", "t-b2"]);
        let mut again = BeadForm::edit("t-x", &d);
        assert_eq!(again.draft(), d, "editing starts from the bead");
        assert_eq!(again.key(key(KeyCode::Esc)), Outcome::Cancel);
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
