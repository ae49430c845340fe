//! The pair pane's keys and opening it: the view's own state is `tui::pair`; here the app
//! numbers sessions, keeps one per bead, and turns the pane's answers into commands.

use crossterm::event::KeyEvent;

use super::super::forms::{PickItem, Picker};
use super::super::pair::{PairKey, PairView, Phase};
use super::{App, Command, Overlay, View};

impl App {
    /// Opens the pair pane on bead `id`: the session is kept if it is the same bead (and it
    /// could open); another bead's session is closed (a reply under way is stopped and
    /// recorded).
    pub(super) fn open_pair(&mut self, id: String) -> Vec<Command> {
        if self.view != View::Pair && self.view != View::Detail {
            self.back = self.view;
        }
        if self.live.running(&id) {
            self.say(
                false,
                format!("an agent works on {id} in its worktree now; stop it first (s) or wait"),
            );
            return Vec::new();
        }
        self.view = View::Pair;
        if self
            .pair
            .as_ref()
            .is_some_and(|p| p.bead == id && p.phase != Phase::Unavailable)
        {
            return Vec::new();
        }
        let title = self
            .board
            .find(&id)
            .and_then(|(c, i)| self.board.column(c).get(i))
            .map(|c| c.title.clone())
            .unwrap_or_default();
        let mut commands = Vec::new();
        if let Some(old) = &self.pair {
            if old.busy() {
                let text = format!("the reply on {} was stopped (what came is kept)", old.bead);
                self.say(true, text);
            }
            commands.push(Command::PairClose);
        }
        self.pair_sessions += 1;
        self.pair = Some(PairView::new(self.pair_sessions, &id, &title));
        commands.push(Command::PairOpen {
            session: self.pair_sessions,
            bead: id,
            persona: None,
        });
        commands
    }

    pub(super) fn pair_key(&mut self, k: KeyEvent) -> Vec<Command> {
        let Some(p) = &mut self.pair else {
            self.view = View::Board;
            return Vec::new();
        };
        match p.key(k) {
            PairKey::Nothing => Vec::new(),
            PairKey::Send(text) => vec![Command::PairSend(text)],
            PairKey::Answer(c) => {
                p.answered();
                vec![Command::PairAnswer(c)]
            }
            PairKey::Stop => vec![Command::PairStop],
            PairKey::Back => {
                self.view = match self.back {
                    View::Pair | View::Detail => View::Board,
                    v => v,
                };
                Vec::new()
            }
            PairKey::ChoosePersona => {
                let items = p
                    .personas
                    .iter()
                    .map(|name| PickItem {
                        id: name.clone(),
                        label: name.clone(),
                    })
                    .collect();
                let title = format!("Pair on {} with…", p.bead);
                self.overlay = Some(Overlay::Persona(Box::new(
                    Picker::new(&p.bead, items).asking(title, "talk"),
                )));
                Vec::new()
            }
            PairKey::Help => {
                self.overlay = Some(Overlay::help());
                Vec::new()
            }
            PairKey::Quit => {
                self.quit = true;
                vec![Command::Quit]
            }
            PairKey::Say(text) => {
                self.say(false, text);
                Vec::new()
            }
        }
    }
}
