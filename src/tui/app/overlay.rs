//! Keys while an overlay is open: help, the bead form, pickers (dependency, persona),
//! priority, filter, log search, close reason, decision answer.

use crossterm::event::{KeyCode, KeyEvent};

use crate::ops::decision::Verdict;

use super::super::forms::LineInput;
use super::super::forms::{BeadForm, Outcome};
use super::super::keys::Action;
use super::super::model::Filter;
use super::{App, Bulk, Command, Mutation, Overlay, help_entries, mutation_for};

impl App {
    /// A key while an overlay is open: it goes to the overlay.
    pub(super) fn overlay_key(&mut self, k: KeyEvent) -> Vec<Command> {
        let Some(overlay) = self.overlay.take() else {
            return Vec::new();
        };
        let (keep, commands) = match overlay {
            Overlay::Help {
                scroll,
                mut search,
                searching: true,
            } => {
                let searching = match search.key(k) {
                    Outcome::Editing => true,
                    Outcome::Submit => false,
                    Outcome::Cancel => {
                        search = LineInput::default();
                        false
                    }
                };
                let scroll = if searching { 0 } else { scroll };
                (
                    Some(Overlay::Help {
                        scroll,
                        search,
                        searching,
                    }),
                    Vec::new(),
                )
            }
            Overlay::Help { scroll, search, .. } => {
                let action = self.keys.action(&k);
                let n = help_entries(&self.keys, &search.text()).len();
                let at = |by: isize| {
                    (scroll as isize + by).clamp(0, n.saturating_sub(1) as isize) as usize
                };
                let next = match (k.code, action) {
                    (KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('?'), _)
                    | (_, Some(Action::Help)) => None,
                    (KeyCode::Char('/'), _) | (_, Some(Action::Filter)) => {
                        return {
                            self.overlay = Some(Overlay::Help {
                                scroll: 0,
                                search,
                                searching: true,
                            });
                            Vec::new()
                        };
                    }
                    (_, Some(Action::Down)) => Some(at(1)),
                    (_, Some(Action::Up)) => Some(at(-1)),
                    (_, Some(Action::PageDown)) => Some(at(10)),
                    (_, Some(Action::PageUp)) => Some(at(-10)),
                    (_, Some(Action::Top)) => Some(0),
                    (_, Some(Action::Bottom)) => Some(at(isize::MAX / 2)),
                    _ => Some(scroll),
                };
                (
                    next.map(|scroll| Overlay::Help {
                        scroll,
                        search,
                        searching: false,
                    }),
                    Vec::new(),
                )
            }
            Overlay::Message { scroll } => {
                let action = self.keys.action(&k);
                let next = match (k.code, action) {
                    (KeyCode::Esc | KeyCode::Char('q'), _) | (_, Some(Action::Message)) => None,
                    (_, Some(Action::Down)) => Some(scroll.saturating_add(1)),
                    (_, Some(Action::Up)) => Some(scroll.saturating_sub(1)),
                    (_, Some(Action::PageDown)) => Some(scroll.saturating_add(10)),
                    (_, Some(Action::PageUp)) => Some(scroll.saturating_sub(10)),
                    _ => Some(scroll),
                };
                (next.map(|scroll| Overlay::Message { scroll }), Vec::new())
            }
            Overlay::Priority(ids) => match k.code {
                KeyCode::Char(c @ '0'..='4') => (
                    None,
                    self.bulk(ids, Bulk::Priority(i64::from(c as u8 - b'0'))),
                ),
                KeyCode::Esc => (None, Vec::new()),
                _ => (Some(Overlay::Priority(ids)), Vec::new()),
            },
            Overlay::Labels { ids, mut input } => match input.key(k) {
                Outcome::Editing => (Some(Overlay::Labels { ids, input }), Vec::new()),
                Outcome::Cancel => (None, Vec::new()),
                Outcome::Submit => {
                    let (mut add, mut remove) = (Vec::new(), Vec::new());
                    for word in input.text().split([',', ' ']).map(str::trim) {
                        match word.strip_prefix('-') {
                            Some(l) if !l.is_empty() => remove.push(l.to_owned()),
                            Some(_) => {}
                            None if !word.is_empty() => add.push(word.to_owned()),
                            None => {}
                        }
                    }
                    if add.is_empty() && remove.is_empty() {
                        (Some(Overlay::Labels { ids, input }), Vec::new())
                    } else {
                        (None, self.bulk(ids, Bulk::Labels { add, remove }))
                    }
                }
            },
            Overlay::Status { ids, mut picker } => match picker.key(k) {
                Outcome::Editing => (Some(Overlay::Status { ids, picker }), Vec::new()),
                Outcome::Cancel => (None, Vec::new()),
                Outcome::Submit => match picker.chosen().map(|i| i.id.clone()) {
                    Some(status) => (None, self.bulk(ids, Bulk::Status(status))),
                    None => (Some(Overlay::Status { ids, picker }), Vec::new()),
                },
            },
            Overlay::Form(mut f) => match f.key(k) {
                Outcome::Editing => (Some(Overlay::Form(f)), Vec::new()),
                Outcome::Cancel => (None, Vec::new()),
                Outcome::Submit => {
                    let draft = Box::new(f.draft());
                    let m = match (f.editing.clone(), f.was.clone()) {
                        (Some(id), Some(was)) => Mutation::Update {
                            id,
                            draft,
                            was: Box::new(was),
                        },
                        _ => Mutation::Create(draft),
                    };
                    (None, vec![Command::Mutate(m)])
                }
            },
            Overlay::Picker(mut p) => match p.key(k) {
                Outcome::Editing => (Some(Overlay::Picker(p)), Vec::new()),
                Outcome::Cancel => (None, Vec::new()),
                Outcome::Submit => match p.chosen() {
                    Some(item) => (
                        None,
                        vec![Command::Mutate(Mutation::AddDependency {
                            id: p.for_bead.clone(),
                            on: item.id.clone(),
                        })],
                    ),
                    None => (Some(Overlay::Picker(p)), Vec::new()),
                },
            },
            Overlay::Palette(mut p) => match p.key(k) {
                Outcome::Editing => (Some(Overlay::Palette(p)), Vec::new()),
                Outcome::Cancel => (None, Vec::new()),
                Outcome::Submit => match p.chosen().map(|i| i.id.clone()) {
                    // The choice runs with the palette closed (it may open another overlay).
                    Some(id) => return self.palette_choice(&id),
                    None => (Some(Overlay::Palette(p)), Vec::new()),
                },
            },
            Overlay::Persona(mut p) => match p.key(k) {
                Outcome::Editing => (Some(Overlay::Persona(p)), Vec::new()),
                Outcome::Cancel => (None, Vec::new()),
                Outcome::Submit => match (p.chosen().map(|i| i.id.clone()), &mut self.pair) {
                    (Some(name), Some(view)) => {
                        self.pair_sessions += 1;
                        view.reopen(self.pair_sessions, &name);
                        (
                            None,
                            vec![
                                Command::PairClose,
                                Command::PairOpen {
                                    session: self.pair_sessions,
                                    bead: view.bead.clone(),
                                    persona: Some(name),
                                },
                            ],
                        )
                    }
                    _ => (None, Vec::new()),
                },
            },
            Overlay::Filter(mut input) => {
                let outcome = input.key(k);
                let text = input.text();
                let commands = if text != self.filter.text {
                    self.filter = Filter {
                        text,
                        sort: self.filter.sort,
                    };
                    vec![Command::SetFilter(self.filter.clone())]
                } else {
                    Vec::new()
                };
                match outcome {
                    Outcome::Editing => (Some(Overlay::Filter(input)), commands),
                    Outcome::Submit => (None, commands),
                    Outcome::Cancel => {
                        self.filter.text.clear();
                        (None, vec![Command::SetFilter(self.filter.clone())])
                    }
                }
            }
            Overlay::Search(mut input) => match input.key(k) {
                Outcome::Editing => (Some(Overlay::Search(input)), Vec::new()),
                Outcome::Cancel => (None, Vec::new()),
                Outcome::Submit => {
                    self.logs.search = Some(input.text());
                    if !self.logs.search_next() {
                        self.say(false, format!("no match for {:?}", input.text()));
                    }
                    (None, Vec::new())
                }
            },
            Overlay::Close { ids, mut reason } => match reason.key(k) {
                Outcome::Editing => (Some(Overlay::Close { ids, reason }), Vec::new()),
                Outcome::Cancel => (None, Vec::new()),
                Outcome::Submit => {
                    let text = reason.text().trim().to_owned();
                    let reason = if text.is_empty() {
                        "Closed".to_owned()
                    } else {
                        text
                    };
                    (None, self.bulk(ids, Bulk::Close { reason }))
                }
            },
            Overlay::Answer { decision, mut text } => match text.key(k) {
                Outcome::Editing => (Some(Overlay::Answer { decision, text }), Vec::new()),
                Outcome::Cancel => (None, Vec::new()),
                Outcome::Submit if text.text().trim().is_empty() => {
                    (Some(Overlay::Answer { decision, text }), Vec::new())
                }
                Outcome::Submit => (
                    None,
                    vec![Command::Decide {
                        id: decision,
                        verdict: Verdict::Answer(text.text().trim().to_owned()),
                    }],
                ),
            },
        };
        self.overlay = keep;
        commands
    }
}

impl App {
    /// Applies `change` to `ids`; a bulk edit clears the marks it used.
    fn bulk(&mut self, ids: Vec<String>, change: Bulk) -> Vec<Command> {
        if ids.len() > 1 || ids.iter().any(|i| self.marked.contains(i)) {
            self.marked.clear();
        }
        vec![Command::Mutate(mutation_for(ids, change))]
    }

    /// Brings back a form whose save the store refused, with what was typed and why.
    pub(super) fn reopen_form(&mut self, m: Mutation, message: String) {
        let form = match m {
            Mutation::Create(draft) => BeadForm::open(None, None, &draft, self.known()),
            Mutation::Update { id, draft, was } => {
                BeadForm::open(Some(id), Some(*was), &draft, self.known())
            }
            _ => return self.say(false, message),
        };
        if self.overlay.is_some() {
            // Something else is open: the refusal is told, the typing is not thrown at it.
            return self.say(false, format!("not saved: {message}"));
        }
        let mut form = Box::new(form);
        form.error = Some(format!("not saved: {message}"));
        self.overlay = Some(Overlay::Form(form));
    }
}
