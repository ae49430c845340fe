//! The bead form (`n` new, `e` edit): every field of a bead on one screen — title, type,
//! priority, status, assignee, labels (completed from the labels the store uses), parent and
//! blockers (typed ids, or `enter` for a fuzzy picker), description, design, acceptance
//! criteria and notes. `ctrl+s` checks what it can here and says what is wrong; what only the
//! store can check comes back as a refusal and reopens the form with everything typed.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui_textarea::TextArea;

use super::{LineInput, Outcome, PickItem, Picker};
use crate::bead::{issue_type, status};

/// The fields, in tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Title,
    Type,
    Priority,
    Status,
    Assignee,
    Labels,
    Parent,
    Dependencies,
    Description,
    Design,
    Acceptance,
    Notes,
}

impl Field {
    pub const ALL: [Field; 12] = [
        Field::Title,
        Field::Type,
        Field::Priority,
        Field::Status,
        Field::Assignee,
        Field::Labels,
        Field::Parent,
        Field::Dependencies,
        Field::Description,
        Field::Design,
        Field::Acceptance,
        Field::Notes,
    ];

    /// The multi-line fields, in the order of [`BeadForm::texts`].
    pub const TEXTS: [Field; 4] = [
        Field::Description,
        Field::Design,
        Field::Acceptance,
        Field::Notes,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Field::Title => "Title",
            Field::Type => "Type",
            Field::Priority => "Priority",
            Field::Status => "Status",
            Field::Assignee => "Assignee",
            Field::Labels => "Labels",
            Field::Parent => "Parent",
            Field::Dependencies => "Blocked by",
            Field::Description => "Description",
            Field::Design => "Design",
            Field::Acceptance => "Acceptance",
            Field::Notes => "Notes",
        }
    }

    /// Its index in [`BeadForm::texts`], for a multi-line field.
    pub fn text_index(self) -> Option<usize> {
        Field::TEXTS.iter().position(|f| *f == self)
    }

    /// What `enter` and the keys do here, for the form's hint line.
    pub fn hint(self) -> &'static str {
        match self {
            Field::Type | Field::Priority | Field::Status => "←/→ choose",
            Field::Labels => "comma-separated · tab completes",
            Field::Parent => "an id, or enter to pick · empty for none",
            Field::Dependencies => "ids, or enter to pick one",
            Field::Title | Field::Assignee => "enter saves",
            _ => "enter adds a line",
        }
    }
}

/// The types offered (←/→ cycle); a bead's own other type is added when editing it.
pub const TYPES: [&str; 6] = [
    issue_type::TASK,
    issue_type::BUG,
    issue_type::FEATURE,
    issue_type::CHORE,
    issue_type::EPIC,
    issue_type::DECISION,
];

/// The statuses offered; a bead's own other status is added when editing it.
pub const STATUSES: [&str; 5] = [
    status::OPEN,
    status::IN_PROGRESS,
    status::BLOCKED,
    status::DEFERRED,
    status::CLOSED,
];

/// What the form produces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BeadDraft {
    pub title: String,
    pub issue_type: String,
    pub priority: i64,
    pub status: String,
    /// Empty: nobody.
    pub assignee: String,
    pub labels: Vec<String>,
    /// Id or prefix; empty: none.
    pub parent: String,
    /// Ids (or prefixes) it is blocked by.
    pub depends_on: Vec<String>,
    pub description: String,
    pub design: String,
    pub acceptance: String,
    pub notes: String,
}

impl BeadDraft {
    /// A new bead's starting point.
    pub fn fresh() -> BeadDraft {
        BeadDraft {
            issue_type: issue_type::TASK.into(),
            priority: 2,
            status: status::OPEN.into(),
            ..BeadDraft::default()
        }
    }
}

/// What the form knows of the store: the labels in use (for completion) and the beads (for
/// the parent and blocker pickers).
#[derive(Clone, Debug, Default)]
pub struct Known {
    pub labels: Vec<String>,
    pub beads: Vec<PickItem>,
}

/// The new/edit bead form.
#[derive(Debug)]
pub struct BeadForm {
    /// `None`: a new bead; `Some(id)`: editing it.
    pub editing: Option<String>,
    /// The bead as it was when the edit began (only what changed is written).
    pub was: Option<BeadDraft>,
    pub focus: Field,
    pub title: LineInput,
    pub types: Vec<String>,
    pub type_index: usize,
    pub priority: i64,
    pub statuses: Vec<String>,
    pub status_index: usize,
    pub assignee: LineInput,
    pub labels: LineInput,
    pub parent: LineInput,
    pub deps: LineInput,
    /// Description, design, acceptance criteria, notes (see [`Field::TEXTS`]).
    pub texts: [TextArea<'static>; 4],
    /// A picker open over the form, for the parent or a blocker.
    pub picker: Option<Box<Picker>>,
    known: Known,
    /// Why the last save was refused.
    pub error: Option<String>,
}

/// `options` with `current` added when it is not among them, and where `current` is.
fn choices(options: &[&str], current: &str) -> (Vec<String>, usize) {
    let mut all: Vec<String> = options.iter().map(|s| (*s).to_owned()).collect();
    let at = match all.iter().position(|o| o == current) {
        Some(i) => i,
        None if current.trim().is_empty() => 0,
        None => {
            all.push(current.to_owned());
            all.len() - 1
        }
    };
    (all, at)
}

fn text_area(text: &str) -> TextArea<'static> {
    TextArea::new(text.lines().map(str::to_owned).collect())
}

impl BeadForm {
    pub fn new_bead(known: Known) -> BeadForm {
        BeadForm::open(None, None, &BeadDraft::fresh(), known)
    }

    pub fn edit(id: &str, d: &BeadDraft, known: Known) -> BeadForm {
        BeadForm::open(Some(id.to_owned()), Some(d.clone()), d, known)
    }

    /// The form showing `d` (a bead, or what was typed before a refused save).
    pub fn open(
        editing: Option<String>,
        was: Option<BeadDraft>,
        d: &BeadDraft,
        known: Known,
    ) -> BeadForm {
        let (types, type_index) = choices(&TYPES, &d.issue_type);
        let (statuses, status_index) = choices(&STATUSES, &d.status);
        BeadForm {
            editing,
            was,
            focus: Field::Title,
            title: LineInput::new(&d.title),
            types,
            type_index,
            priority: d.priority.clamp(0, 4),
            statuses,
            status_index,
            assignee: LineInput::new(&d.assignee),
            labels: LineInput::new(&d.labels.join(", ")),
            parent: LineInput::new(&d.parent),
            deps: LineInput::new(&d.depends_on.join(" ")),
            texts: [
                text_area(&d.description),
                text_area(&d.design),
                text_area(&d.acceptance),
                text_area(&d.notes),
            ],
            picker: None,
            known,
            error: None,
        }
    }

    pub fn draft(&self) -> BeadDraft {
        let text = |i: usize| self.texts[i].lines().join("\n").trim_end().to_owned();
        BeadDraft {
            title: self.title.text().trim().to_owned(),
            issue_type: self.types.get(self.type_index).cloned().unwrap_or_default(),
            priority: self.priority,
            status: self
                .statuses
                .get(self.status_index)
                .cloned()
                .unwrap_or_default(),
            assignee: self.assignee.text().trim().to_owned(),
            labels: split_labels(&self.labels.text()),
            parent: self.parent.text().trim().to_owned(),
            depends_on: self
                .deps
                .text()
                .split([' ', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            description: text(0),
            design: text(1),
            acceptance: text(2),
            notes: text(3),
        }
    }

    /// The title of the bead the parent field names (an id or a unique prefix of one).
    pub fn parent_title(&self) -> Option<&str> {
        find(&self.known.beads, self.parent.text().trim()).map(|b| b.label.as_str())
    }

    /// The labels typed before the last comma, and the one being typed.
    fn label_parts(&self) -> (Vec<String>, String) {
        let text = self.labels.text();
        match text.rfind(',') {
            Some(i) => (split_labels(&text[..i]), text[i + 1..].trim().to_owned()),
            None => (Vec::new(), text.trim().to_owned()),
        }
    }

    /// Known labels that complete the label being typed (not those already given).
    pub fn label_completions(&self) -> Vec<&str> {
        let (given, partial) = self.label_parts();
        let partial = partial.to_lowercase();
        self.known
            .labels
            .iter()
            .filter(|l| l.to_lowercase().starts_with(&partial) && !given.contains(l))
            .map(String::as_str)
            .collect()
    }

    /// Completes the label being typed (if any) with the first completion; whether it did.
    fn complete_label(&mut self) -> bool {
        let (mut given, partial) = self.label_parts();
        if partial.is_empty() {
            return false;
        }
        let Some(first) = self.label_completions().first().map(|s| (*s).to_owned()) else {
            return false;
        };
        given.push(first);
        self.labels = LineInput::new(&format!("{}, ", given.join(", ")));
        true
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

    /// Tab/shift-tab move between fields (tab completes a label first), ↑/↓ too outside the
    /// multi-line fields; ctrl+s saves (so does enter on the title and assignee); esc cancels;
    /// ←/→ (or space) change the type, priority and status, digits 0–4 set the priority;
    /// enter on the parent or blockers opens a picker.
    pub fn key(&mut self, k: KeyEvent) -> Outcome {
        if let Some(p) = self.picker.as_mut() {
            match p.key(k) {
                Outcome::Editing => {}
                Outcome::Cancel => self.picker = None,
                Outcome::Submit => {
                    let id = p.chosen().map(|i| i.id.clone()).unwrap_or_default();
                    self.picker = None;
                    self.picked(id);
                }
            }
            return Outcome::Editing;
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let multi_line = self.focus.text_index().is_some();
        match k.code {
            KeyCode::Esc => return Outcome::Cancel,
            KeyCode::Char('s') if ctrl => return self.submit(),
            KeyCode::Tab => {
                if !(self.focus == Field::Labels && self.complete_label()) {
                    self.move_focus(true);
                }
                return Outcome::Editing;
            }
            KeyCode::BackTab => {
                self.move_focus(false);
                return Outcome::Editing;
            }
            KeyCode::Up if !multi_line => {
                self.move_focus(false);
                return Outcome::Editing;
            }
            KeyCode::Down if !multi_line => {
                self.move_focus(true);
                return Outcome::Editing;
            }
            _ => {}
        }
        match self.focus {
            Field::Title | Field::Assignee | Field::Labels => {
                let input = match self.focus {
                    Field::Title => &mut self.title,
                    Field::Assignee => &mut self.assignee,
                    _ => &mut self.labels,
                };
                match input.key(k) {
                    Outcome::Submit => return self.submit(),
                    o => return o,
                }
            }
            Field::Parent | Field::Dependencies => {
                let input = if self.focus == Field::Parent {
                    &mut self.parent
                } else {
                    &mut self.deps
                };
                if input.key(k) == Outcome::Submit {
                    self.open_picker();
                }
            }
            Field::Type => cycle(&mut self.type_index, self.types.len(), k.code),
            Field::Status => cycle(&mut self.status_index, self.statuses.len(), k.code),
            Field::Priority => match k.code {
                KeyCode::Char(c @ '0'..='4') => self.priority = i64::from(c as u8 - b'0'),
                code => {
                    let mut i = self.priority.clamp(0, 4) as usize;
                    cycle(&mut i, 5, code);
                    self.priority = i as i64;
                }
            },
            f => {
                if let Some(i) = f.text_index() {
                    self.texts[i].input(k);
                }
            }
        }
        Outcome::Editing
    }

    fn open_picker(&mut self) {
        let me = self
            .editing
            .clone()
            .unwrap_or_else(|| "the new bead".into());
        let items: Vec<PickItem> = self
            .known
            .beads
            .iter()
            .filter(|b| Some(&b.id) != self.editing.as_ref())
            .cloned()
            .collect();
        let (title, verb) = if self.focus == Field::Parent {
            (format!("Parent of {me}…"), "choose")
        } else {
            (format!("{me} is blocked by…"), "add")
        };
        self.picker = Some(Box::new(Picker::new(&me, items).asking(title, verb)));
    }

    fn picked(&mut self, id: String) {
        if id.is_empty() {
            return;
        }
        if self.focus == Field::Parent {
            self.parent = LineInput::new(&id);
        } else {
            let mut ids = self.draft().depends_on;
            if !ids.contains(&id) {
                ids.push(id);
            }
            self.deps = LineInput::new(&ids.join(" "));
        }
    }

    /// Refuses, focused on `field`, saying why.
    fn refuse(&mut self, field: Field, why: String) -> Outcome {
        self.error = Some(why);
        self.focus = field;
        Outcome::Editing
    }

    fn submit(&mut self) -> Outcome {
        let d = self.draft();
        let me = self.editing.as_deref();
        if d.title.is_empty() {
            return self.refuse(Field::Title, "the title cannot be empty: type one".into());
        }
        if d.title.chars().count() > 500 {
            return self.refuse(
                Field::Title,
                format!(
                    "the title has {} characters; at most 500 fit — move the rest to the description",
                    d.title.chars().count()
                ),
            );
        }
        if let Some(l) = d.labels.iter().find(|l| l.starts_with("provides:")) {
            return self.refuse(
                Field::Labels,
                format!("label {l:?}: labels starting with provides: are reserved"),
            );
        }
        if let Some(l) = d.labels.iter().find(|l| l.chars().any(char::is_whitespace)) {
            return self.refuse(
                Field::Labels,
                format!("label {l:?} has a space; separate labels with commas"),
            );
        }
        if d.assignee.chars().any(char::is_control) {
            return self.refuse(
                Field::Assignee,
                "the assignee has control characters".into(),
            );
        }
        if me.is_some_and(|me| d.parent == me) {
            return self.refuse(Field::Parent, "a bead cannot be its own parent".into());
        }
        if !d.parent.is_empty() && d.depends_on.contains(&d.parent) {
            return self.refuse(
                Field::Dependencies,
                format!("{} is the parent; it cannot also block it", d.parent),
            );
        }
        if let Some(me) = me
            && d.depends_on.iter().any(|x| x == me)
        {
            return self.refuse(Field::Dependencies, format!("{me} cannot block itself"));
        }
        self.error = None;
        Outcome::Submit
    }

    pub fn paste(&mut self, text: &str) {
        match self.focus {
            Field::Title => self.title.paste(text),
            Field::Assignee => self.assignee.paste(text),
            Field::Labels => self.labels.paste(text),
            Field::Parent => self.parent.paste(text),
            Field::Dependencies => self.deps.paste(text),
            f => {
                if let Some(i) = f.text_index() {
                    self.texts[i].insert_str(text);
                }
            }
        }
    }
}

/// ←/h back, →/l/space forward through `n` choices.
fn cycle(i: &mut usize, n: usize, code: KeyCode) {
    if n == 0 {
        return;
    }
    match code {
        KeyCode::Left | KeyCode::Char('h') => *i = (*i + n - 1) % n,
        KeyCode::Right | KeyCode::Char('l') | KeyCode::Char(' ') => *i = (*i + 1) % n,
        _ => {}
    }
}

/// Comma-separated labels, trimmed, empty ones and repeats dropped.
fn split_labels(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in text.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        if !out.iter().any(|o| o == l) {
            out.push(l.to_owned());
        }
    }
    out
}

/// The bead `query` names: an exact id, else the only id it prefixes.
fn find<'a>(beads: &'a [PickItem], query: &str) -> Option<&'a PickItem> {
    if query.is_empty() {
        return None;
    }
    if let Some(b) = beads.iter().find(|b| b.id == query) {
        return Some(b);
    }
    let mut matches = beads.iter().filter(|b| b.id.starts_with(query));
    let first = matches.next()?;
    matches.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn typed(f: &mut BeadForm, s: &str) {
        for c in s.chars() {
            f.key(key(KeyCode::Char(c)));
        }
    }

    fn to(f: &mut BeadForm, field: Field) {
        while f.focus != field {
            f.key(key(KeyCode::BackTab));
        }
    }

    fn known() -> Known {
        Known {
            labels: vec!["backend".into(), "frontend".into(), "ux".into()],
            beads: ["t-aa1 Checkout epic", "t-bb2 Refund flow"]
                .iter()
                .map(|l| PickItem {
                    id: l.split(' ').next().unwrap_or_default().into(),
                    label: (*l).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn every_field_reaches_the_draft() {
        let mut f = BeadForm::new_bead(known());
        assert_eq!(f.key(key(KeyCode::Enter)), Outcome::Editing);
        assert!(f.error.as_deref().unwrap_or_default().contains("empty"));
        typed(&mut f, "Fix rounding");
        f.key(key(KeyCode::Tab));
        f.key(key(KeyCode::Right)); // task -> bug
        f.key(key(KeyCode::Down));
        f.key(key(KeyCode::Char('1')));
        f.key(key(KeyCode::Down));
        f.key(key(KeyCode::Right)); // open -> in_progress
        f.key(key(KeyCode::Down));
        typed(&mut f, "ada");
        f.key(key(KeyCode::Tab));
        typed(&mut f, "fr");
        f.key(key(KeyCode::Tab)); // completes "frontend, "
        typed(&mut f, "u");
        f.key(key(KeyCode::Tab)); // completes "ux, "
        assert_eq!(f.focus, Field::Labels, "tab completed rather than moved");
        f.key(key(KeyCode::Tab));
        assert_eq!(
            f.focus,
            Field::Parent,
            "nothing left to complete: tab moves"
        );
        f.key(key(KeyCode::Enter));
        typed(&mut f, "checkout");
        f.key(key(KeyCode::Enter));
        assert!(f.picker.is_none());
        assert_eq!(f.parent_title(), Some("t-aa1 Checkout epic"));
        f.key(key(KeyCode::Tab));
        typed(&mut f, "t-bb2");
        for field in Field::TEXTS {
            f.key(key(KeyCode::Tab));
            assert_eq!(f.focus, field);
            typed(&mut f, field.label());
            f.key(key(KeyCode::Enter));
            typed(&mut f, "more");
        }
        assert_eq!(f.key(ctrl('s')), Outcome::Submit);
        let d = f.draft();
        assert_eq!(
            d,
            BeadDraft {
                title: "Fix rounding".into(),
                issue_type: "bug".into(),
                priority: 1,
                status: "in_progress".into(),
                assignee: "ada".into(),
                labels: vec!["frontend".into(), "ux".into()],
                parent: "t-aa1".into(),
                depends_on: vec!["t-bb2".into()],
                description: "Description\nmore".into(),
                design: "Design\nmore".into(),
                acceptance: "Acceptance\nmore".into(),
                notes: "Notes\nmore".into(),
            }
        );
        let mut again = BeadForm::edit("t-x", &d, known());
        assert_eq!(again.draft(), d, "editing starts from the bead");
        assert_eq!(again.key(key(KeyCode::Esc)), Outcome::Cancel);
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    #[test]
    fn an_invalid_form_says_what_is_wrong_and_where() {
        let d = BeadDraft {
            title: "Refund".into(),
            ..BeadDraft::fresh()
        };
        let mut f = BeadForm::edit("t-bb2", &d, known());
        to(&mut f, Field::Parent);
        typed(&mut f, "t-bb2");
        assert_eq!(f.key(ctrl('s')), Outcome::Editing);
        assert_eq!(f.error.as_deref(), Some("a bead cannot be its own parent"));
        assert_eq!(f.focus, Field::Parent);
        to(&mut f, Field::Labels);
        typed(&mut f, "two words");
        f.parent = LineInput::default();
        assert_eq!(f.key(ctrl('s')), Outcome::Editing);
        assert!(
            f.error.as_deref().unwrap_or_default().contains("commas"),
            "{:?}",
            f.error
        );
        assert_eq!(f.focus, Field::Labels);
        f.labels = LineInput::new("provides:api");
        assert_eq!(f.key(ctrl('s')), Outcome::Editing);
        assert!(f.error.as_deref().unwrap_or_default().contains("reserved"));
        f.labels = LineInput::default();
        assert_eq!(f.key(ctrl('s')), Outcome::Submit);
        assert_eq!(f.error, None);
    }

    #[test]
    fn a_bead_keeps_its_own_type_and_status() {
        let d = BeadDraft {
            title: "Agent".into(),
            issue_type: "molecule".into(),
            status: "hooked".into(),
            ..BeadDraft::fresh()
        };
        let f = BeadForm::edit("t-m", &d, known());
        assert_eq!(f.draft(), d);
        assert!(f.types.iter().any(|t| t == "molecule"));
    }

    #[test]
    fn the_blocker_picker_adds_an_id() {
        let mut f = BeadForm::new_bead(known());
        to(&mut f, Field::Dependencies);
        typed(&mut f, "t-aa1");
        f.key(key(KeyCode::Enter));
        assert!(f.picker.is_some());
        typed(&mut f, "refund");
        f.key(key(KeyCode::Enter));
        assert_eq!(f.draft().depends_on, ["t-aa1", "t-bb2"]);
        f.key(key(KeyCode::Enter));
        f.key(key(KeyCode::Esc));
        assert!(f.picker.is_none(), "esc closes the picker, not the form");
        assert_eq!(f.focus, Field::Dependencies);
    }
}
