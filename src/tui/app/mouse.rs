//! The mouse: the wheel scrolls whatever the view shows (cards, log lines, the bead, the
//! conversation, rows), a click on a card selects it and a click on the selected card opens
//! it. Where the cards are comes from the last frame (`column_areas`, `scroll`).

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Position;

use super::super::keys::Action;
use super::super::model::Column;
use super::super::ui::board::CARD;
use super::{App, Command, View};

/// Lines one wheel notch scrolls text.
const WHEEL_LINES: u16 = 3;
const WHEEL_STEP: isize = WHEEL_LINES as isize;

impl App {
    /// A mouse event.
    pub fn mouse(&mut self, m: MouseEvent) -> Vec<Command> {
        if self.overlay.is_some() {
            return Vec::new();
        }
        let up = match m.kind {
            MouseEventKind::ScrollUp => true,
            MouseEventKind::ScrollDown => false,
            MouseEventKind::Down(MouseButton::Left) if self.view == View::Board => {
                return self.click_card(m.column, m.row);
            }
            _ => return Vec::new(),
        };
        let step = if up { Action::Up } else { Action::Down };
        match self.view {
            View::Board => {
                if let Some(i) = self.column_at(m.column, m.row) {
                    self.col = i;
                }
                self.board_action(step)
            }
            View::Logs => {
                self.logs.move_by(if up { -WHEEL_STEP } else { WHEEL_STEP });
                Vec::new()
            }
            View::List => {
                self.list.move_by(if up { -WHEEL_STEP } else { WHEEL_STEP });
                Vec::new()
            }
            View::Deps => {
                self.deps.move_by(if up { -WHEEL_STEP } else { WHEEL_STEP });
                Vec::new()
            }
            View::Work => {
                let n = WHEEL_LINES as isize;
                self.work.scroll_by(if up { -n } else { n });
                Vec::new()
            }
            View::Detail => {
                let s = &mut self.detail.scroll;
                *s = if up {
                    s.saturating_sub(WHEEL_LINES)
                } else {
                    s.saturating_add(WHEEL_LINES)
                };
                Vec::new()
            }
            View::Pair => {
                if let Some(p) = &mut self.pair {
                    let n = usize::from(WHEEL_LINES);
                    p.scroll = if up {
                        p.scroll.saturating_add(n).min(p.max_scroll.get())
                    } else {
                        p.scroll.saturating_sub(n)
                    };
                }
                Vec::new()
            }
            View::Agents => self.agents_action(step),
            View::Decisions => self.decisions_action(step),
            View::Usage => Vec::new(),
        }
    }

    /// The board column at a screen position.
    fn column_at(&self, x: u16, y: u16) -> Option<usize> {
        self.column_areas
            .get()
            .iter()
            .position(|r| r.contains(Position { x, y }))
    }

    fn click_card(&mut self, x: u16, y: u16) -> Vec<Command> {
        let Some(i) = self.column_at(x, y) else {
            return Vec::new();
        };
        let area = self.column_areas.get()[i];
        if Column::ALL[i] == Column::Done && self.done_shut() {
            self.col = i;
            self.done_folded = false;
            return Vec::new();
        }
        let row = self.scroll.get()[i] + usize::from((y - area.y) / CARD);
        if row >= self.board.column(Column::ALL[i]).len() {
            return Vec::new();
        }
        if self.col == i && self.rows[i] == row {
            return self.board_action(Action::Open);
        }
        self.col = i;
        self.rows[i] = row;
        self.remember();
        Vec::new()
    }
}
