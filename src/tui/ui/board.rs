//! The kanban: columns Ready, Blocked, Deferred (only when it holds something), In progress,
//! Review and Done (folded to a count until opened), cards of three lines (id, priority, type; the title; what it waits on or
//! what its agent is doing). Only the cards in view are drawn, so a board of 10,000 beads costs
//! what a board of 30 does.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::merge::MergeStrategy;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::{elapsed, fit, tokens};
use crate::tui::app::App;
use crate::tui::model::{COLUMNS, Card, Column};
use crate::tui::theme::{Role, Theme};

/// Width of an empty column (its title and count).
const EMPTY_WIDTH: u16 = 16;

/// Lines per card, the blank line after it included.
pub const CARD: u16 = 4;

fn column_role(c: Column) -> Role {
    match c {
        Column::Ready => Role::ColumnReady,
        Column::Blocked => Role::ColumnBlocked,
        Column::Deferred => Role::Muted,
        Column::InProgress => Role::ColumnInProgress,
        Column::Review => Role::ColumnReview,
        Column::Done => Role::ColumnDone,
    }
}

/// The first card to show so that `selected` is in view, moving as little as possible.
pub fn scroll_for(selected: usize, previous: usize, visible: usize, len: usize) -> usize {
    if visible == 0 || len <= visible {
        return 0;
    }
    let max = len - visible;
    let s = if selected < previous {
        selected
    } else if selected >= previous + visible {
        selected + 1 - visible
    } else {
        previous
    };
    s.min(max)
}

pub fn draw(f: &mut Frame<'_>, area: Rect, app: &App, now: Instant) {
    let t = &app.theme;
    if !app.loaded {
        f.render_widget(
            Paragraph::new(Line::styled(" Loading beads…", t.style(Role::Muted))),
            area,
        );
        return;
    }
    let folded = app.done_shut();
    let done_width = if folded { 12 } else { 0 };
    let shown: Vec<Column> = Column::ALL
        .into_iter()
        .filter(|c| app.board.shown(*c))
        .collect();
    // An empty column (but Ready, and the one the cursor is in) narrows to its title, leaving
    // the room to the columns with cards.
    let narrow = |c: Column| c != Column::Ready && c.index() != app.col && app.board.count(c) == 0;
    let constraints: Vec<Constraint> = shown
        .iter()
        .map(|c| match (c, folded) {
            (Column::Done, true) => Constraint::Length(done_width),
            (c, _) if narrow(*c) => Constraint::Length(EMPTY_WIDTH),
            _ => Constraint::Fill(1),
        })
        .collect();
    // Neighbours share a border line, joined where they meet.
    let split = Layout::horizontal(constraints).spacing(-1).split(area);
    let mut areas = [Rect::default(); COLUMNS];
    for (c, r) in shown.iter().zip(split.iter()) {
        areas[c.index()] = *r;
    }
    let mut scroll = app.scroll.get();
    let mut inners = [Rect::default(); COLUMNS];
    for (i, c) in Column::ALL.iter().enumerate() {
        if !app.board.shown(*c) {
            continue;
        }
        let cards = app.board.column(*c);
        let focused = app.col == i;
        let border = if focused {
            t.style(Role::BorderFocus)
        } else {
            t.style(Role::Border)
        };
        let title = Line::from(vec![
            Span::styled(format!(" {} ", c.title()), t.style(column_role(*c))),
            Span::styled(format!("{} ", app.board.count(*c)), t.style(Role::Muted)),
        ]);
        let block = Block::default()
            .borders(Borders::ALL)
            .merge_borders(MergeStrategy::Exact)
            .border_style(border)
            .title(title);
        let inner = block.inner(areas[i]);
        inners[i] = inner;
        f.render_widget(block, areas[i]);
        if *c == Column::Done && folded {
            let hint = format!(
                "{} to open",
                app.keys.hint(crate::tui::keys::Action::ToggleDone)
            );
            f.render_widget(
                Paragraph::new(vec![
                    Line::styled(format!("▸ {}", app.board.count(*c)), t.style(Role::Muted)),
                    Line::styled(fit(&hint, inner.width as usize), t.style(Role::Muted)),
                ]),
                inner,
            );
            continue;
        }
        if cards.is_empty() {
            let empty = match c {
                Column::Ready => "nothing ready",
                Column::InProgress if !narrow(*c) => "no agent at work",
                _ => "",
            };
            f.render_widget(
                Paragraph::new(Line::styled(empty, t.style(Role::Muted))),
                inner,
            );
            continue;
        }
        let room = inner.height.saturating_sub(1); // the last line: "…N more"
        let visible = usize::from((room / CARD).max(1));
        let selected = app.rows[i].min(cards.len() - 1);
        let first = scroll_for(selected, scroll[i], visible, cards.len());
        scroll[i] = first;
        let mut lines: Vec<Line<'static>> = Vec::new();
        for (k, card) in cards.iter().enumerate().skip(first).take(visible) {
            let chosen = focused && k == selected;
            lines.extend(card_lines(card, app, t, inner.width, chosen, now));
            lines.push(Line::default());
        }
        let more = app.board.count(*c).saturating_sub(first + visible);
        if more > 0 {
            lines.push(Line::styled(format!(" …{more} more"), t.style(Role::Muted)));
        }
        f.render_widget(Paragraph::new(lines), inner);
    }
    app.scroll.set(scroll);
    app.column_areas.set(inners);
}

fn card_lines(
    card: &Card,
    app: &App,
    t: &Theme,
    width: u16,
    chosen: bool,
    now: Instant,
) -> Vec<Line<'static>> {
    let w = width as usize;
    let base = if chosen {
        t.style(Role::Selection)
    } else {
        Style::new()
    };
    let marker = if chosen {
        Span::styled("▌", t.style(Role::Accent))
    } else {
        Span::raw(" ")
    };
    let pad = |line: Line<'static>| -> Line<'static> {
        // Paint the selection across the card's width.
        let used = line.width();
        let mut line = line;
        if chosen && used < w {
            line.spans.push(Span::raw(" ".repeat(w - used)));
        }
        line.style(base)
    };
    let mark = if app.marked.contains(&card.id) {
        Span::styled("● ", t.style(Role::Accent))
    } else {
        Span::raw("")
    };
    let head = Line::from(vec![
        marker.clone(),
        mark,
        Span::styled(card.id.clone(), t.style(Role::Title)),
        Span::raw("  "),
        Span::styled(
            format!("P{}", card.priority),
            t.style(Role::priority(card.priority)),
        ),
        Span::styled(format!(" {}", card.issue_type), t.style(Role::Muted)),
    ]);
    let title = Line::from(vec![
        Span::raw(" "),
        Span::raw(fit(&card.title, w.saturating_sub(1))),
    ]);
    let third = third_line(card, app, t, w.saturating_sub(1), now);
    vec![
        pad(head),
        pad(title),
        pad(Line::from([vec![Span::raw(" ")], third].concat())),
    ]
}

/// What the card says about where it is: its agent at work, what it waits on, how it ended.
fn third_line(card: &Card, app: &App, t: &Theme, w: usize, now: Instant) -> Vec<Span<'static>> {
    if let Some(a) = app.live.agents.get(&card.id)
        && a.outcome.is_none()
    {
        let who = if a.persona.is_empty() {
            "agent"
        } else {
            a.persona.as_str()
        };
        let text = format!(
            "⚙ {who} · {} · {} it · {} tok · {}",
            a.stage,
            a.iteration,
            tokens(a.tokens),
            elapsed(now.saturating_duration_since(a.since))
        );
        return vec![Span::styled(fit(&text, w), t.style(Role::ColumnInProgress))];
    }
    if let Some(stage) = &card.stage
        && card.status == "in_progress"
    {
        let who = card.agent.as_deref().unwrap_or("agent");
        return vec![Span::styled(
            fit(&format!("⚙ {who} · {stage}"), w),
            t.style(Role::Muted),
        )];
    }
    if let Some(note) = &card.note {
        let role = if note.starts_with('⚑') {
            Role::Warning
        } else {
            Role::Muted
        };
        return vec![Span::styled(fit(note, w), t.style(role))];
    }
    if let Some(a) = &card.assignee {
        return vec![Span::styled(fit(&format!("@{a}"), w), t.style(Role::Muted))];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrolling_keeps_the_selection_in_view() {
        assert_eq!(scroll_for(0, 0, 5, 3), 0, "everything fits");
        assert_eq!(scroll_for(4, 0, 5, 20), 0);
        assert_eq!(scroll_for(5, 0, 5, 20), 1, "one past the bottom");
        assert_eq!(scroll_for(2, 4, 5, 20), 2, "above the top");
        assert_eq!(scroll_for(7, 4, 5, 20), 4, "still in view: stay");
        assert_eq!(scroll_for(19, 4, 5, 20), 15);
        assert_eq!(scroll_for(3, 18, 5, 6), 1, "the list shrank");
    }
}
