//! The other views: logs (live, folded tool calls, expandable output, follow mode), agents
//! (what each is doing, for how long, at what cost), decisions (what people are asked, with
//! the options), usage (tokens and cost per agent, bead and model, and per minute as a chart).

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap};

use super::{elapsed, fit, markdown, tokens};
use crate::tui::app::App;
use crate::tui::logs::Kind;
use crate::tui::theme::{Role, Theme};

fn frame_block<'a>(t: &Theme, title: Line<'a>) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(t.style(Role::BorderFocus))
        .title(title)
}

pub fn logs(f: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &app.theme;
    let l = &app.logs;
    let scope = l.only.clone().unwrap_or_else(|| "all beads".into());
    let mode = match &l.run {
        Some(r) => format!(
            "run {} of {} · started {} · ] newer",
            r.index + 1,
            r.total,
            crate::text::clock(&r.started)
        ),
        None if l.follow => "following".into(),
        None => "paused · G follows".into(),
    };
    let block = frame_block(
        t,
        Line::from(vec![
            Span::styled(" Logs ", t.style(Role::Title)),
            Span::styled(format!("· {scope} · {mode} "), t.style(Role::Muted)),
        ]),
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    let height = inner.height as usize;
    if height == 0 {
        return;
    }
    let selected = l.selected();
    // Entries up to the selection (or the end): at most a screenful (expanded ones take more).
    let last = match selected {
        Some(s) if !l.follow => s,
        _ => l.end().saturating_sub(1),
    };
    let indices = l.visible_until(last, height);
    if indices.is_empty() {
        let hint = if l.entries.is_empty() {
            "Nothing yet: agents' actions, tests, reviews and merges appear here."
        } else {
            "Nothing for this bead yet."
        };
        f.render_widget(
            Paragraph::new(Line::styled(hint, t.style(Role::Muted))),
            inner,
        );
        return;
    }
    let w = inner.width as usize;
    let mut rows: Vec<Line<'static>> = Vec::new();
    for i in indices.iter().rev() {
        let Some(e) = l.get(*i) else { continue };
        let chosen = !l.follow && Some(*i) == selected;
        let mut block = entry_lines(t, e, w, chosen);
        if e.expanded
            && let Some(d) = &e.detail
        {
            for dl in d.lines().take(200) {
                block.push(Line::styled(
                    format!("      │ {}", fit(dl, w.saturating_sub(8))),
                    t.style(Role::Muted),
                ));
            }
        }
        for line in block.into_iter().rev() {
            rows.push(line);
        }
        if rows.len() >= height {
            break;
        }
    }
    rows.truncate(height);
    rows.reverse();
    f.render_widget(Paragraph::new(rows), inner);
}

/// The most lines one log entry's text wraps to in the logs pane (`enter` shows details).
const ENTRY_LINES: usize = 6;

/// One log entry, its text wrapped under itself (at most [`ENTRY_LINES`] lines).
fn entry_lines(
    t: &Theme,
    e: &crate::tui::logs::Entry,
    w: usize,
    chosen: bool,
) -> Vec<Line<'static>> {
    let indent = 8 + 1 + 9 + 1 + 8 + 1 + 3;
    let room = w.saturating_sub(indent).max(10);
    let mut parts = crate::text::wrap(&e.text, room);
    if parts.len() <= 1 {
        return vec![entry_line(t, e, w, chosen)];
    }
    if parts.len() > ENTRY_LINES {
        parts.truncate(ENTRY_LINES);
        if let Some(last) = parts.last_mut() {
            *last = format!("{} …", fit(last, room.saturating_sub(2)));
        }
    }
    let first = crate::tui::logs::Entry {
        text: parts[0].clone(),
        ..e.clone()
    };
    let mut out = vec![entry_line(t, &first, w, chosen)];
    for p in &parts[1..] {
        out.push(Line::from(vec![
            Span::raw(" ".repeat(indent)),
            Span::raw(p.clone()),
        ]));
    }
    out
}

/// One log entry on one line: time, bead, who, outcome, fold marker, text.
fn entry_line(t: &Theme, e: &crate::tui::logs::Entry, w: usize, chosen: bool) -> Line<'static> {
    let (mark, mark_style) = match e.ok {
        Some(true) => ("✓", t.style(Role::Success)),
        Some(false) => ("✗", t.style(Role::Error)),
        None => (" ", Style::new()),
    };
    let who_style = match e.kind {
        Kind::Error => t.style(Role::Error),
        Kind::Decision => t.style(Role::Warning),
        Kind::Text => t.style(Role::Agent),
        _ => t.style(Role::Muted),
    };
    let text_style = match e.kind {
        Kind::Stage | Kind::Finished => t.style(Role::Muted),
        Kind::Error => t.style(Role::Error),
        _ => Style::new(),
    };
    let fold = if e.detail.is_some() {
        if e.expanded { "▾" } else { "▸" }
    } else {
        " "
    };
    let prefix = format!("{} {:<9} ", e.time, fit(&e.bead, 9));
    let who = format!("{:<8} ", fit(&e.who, 8));
    let room = w.saturating_sub(prefix.chars().count() + who.chars().count() + 4);
    let line = Line::from(vec![
        Span::styled(prefix, t.style(Role::Muted)),
        Span::styled(who, who_style),
        Span::styled(mark, mark_style),
        Span::styled(fold, t.style(Role::Muted)),
        Span::raw(" "),
        Span::styled(fit(&e.text, room), text_style),
    ]);
    if chosen {
        line.style(t.style(Role::Selection))
    } else {
        line
    }
}

/// The strip under the board: the latest entries of the selected bead (all beads when it has
/// none yet).
pub fn logs_strip(f: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &app.theme;
    let l = &app.logs;
    let id = app.selected().map(|c| c.id.clone());
    let height = area.height.saturating_sub(2) as usize;
    let mut scope = "all beads".to_owned();
    let mut picked: Vec<&crate::tui::logs::Entry> = Vec::new();
    if let Some(id) = &id {
        picked = l
            .entries
            .iter()
            .rev()
            .filter(|e| e.bead == *id)
            .take(height)
            .collect();
        if !picked.is_empty() {
            scope.clone_from(id);
        }
    }
    if picked.is_empty() {
        picked = l.entries.iter().rev().take(height).collect();
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.style(Role::Border))
        .title(Line::from(vec![
            Span::styled(" Logs ", t.style(Role::Title)),
            Span::styled(format!("· {scope} "), t.style(Role::Muted)),
        ]));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if picked.is_empty() {
        let hint = format!(
            "Agents' actions appear here · {} start an agent on the selected bead · {} all logs",
            app.keys.hint(crate::tui::keys::Action::StartStop),
            app.keys.hint(crate::tui::keys::Action::Logs)
        );
        f.render_widget(
            Paragraph::new(Line::styled(
                fit(&hint, inner.width as usize),
                t.style(Role::Muted),
            )),
            inner,
        );
        return;
    }
    let rows: Vec<Line<'static>> = picked
        .iter()
        .rev()
        .map(|e| entry_line(t, e, inner.width as usize, false))
        .collect();
    f.render_widget(Paragraph::new(rows), inner);
}

pub fn agents(f: &mut Frame<'_>, area: Rect, app: &App, now: Instant) {
    let t = &app.theme;
    let live = &app.live;
    let state = if live.orchestrating {
        format!("{} busy of {}", live.busy(), live.max_agents.max(1))
    } else {
        "no orchestrator in this window".to_owned()
    };
    let block = frame_block(
        t,
        Line::from(vec![
            Span::styled(" Agents ", t.style(Role::Title)),
            Span::styled(format!("· {state} "), t.style(Role::Muted)),
        ]),
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    if live.agents.is_empty() {
        let key = app.keys.hint(crate::tui::keys::Action::StartStop);
        let auto = app.keys.hint(crate::tui::keys::Action::Auto);
        f.render_widget(
            Paragraph::new(Line::styled(
                format!("No agent has run yet. `{key}` on a card starts one; `{auto}` dispatches ready beads as they come."),
                t.style(Role::Muted),
            ))
            .wrap(Wrap { trim: false }),
            inner,
        );
        return;
    }
    let header = Row::new([
        "BEAD", "AGENT", "STAGE", "ROUND", "IT", "TOKENS", "COST", "ELAPSED", "STATE",
    ])
    .style(t.style(Role::Muted));
    let rows: Vec<Row<'static>> = live
        .agents
        .values()
        .enumerate()
        .map(|(i, a)| {
            let state = match a.outcome {
                None => Cell::from(Span::styled("working", t.style(Role::ColumnInProgress))),
                Some(o) => {
                    let role = match o {
                        crate::event::Outcome::Merged | crate::event::Outcome::Completed => {
                            Role::Success
                        }
                        crate::event::Outcome::Waiting => Role::Warning,
                        _ => Role::Error,
                    };
                    Cell::from(Span::styled(o.as_str(), t.style(role)))
                }
            };
            let row = Row::new(vec![
                Cell::from(a.bead.clone()),
                Cell::from(a.persona.clone()),
                Cell::from(a.stage.as_str()),
                Cell::from(a.round.to_string()),
                Cell::from(a.iteration.to_string()),
                Cell::from(tokens(a.tokens)),
                Cell::from(if a.cost > 0.0 {
                    format!("${:.3}", a.cost)
                } else {
                    "-".into()
                }),
                Cell::from(if a.outcome.is_none() {
                    elapsed(now.saturating_duration_since(a.since))
                } else {
                    "-".into()
                }),
                state,
            ]);
            if i == app.agents_row {
                row.style(t.style(Role::Selection))
            } else {
                row
            }
        })
        .collect();
    let widths = [
        Constraint::Length(12),
        Constraint::Length(10),
        Constraint::Min(12),
        Constraint::Length(5),
        Constraint::Length(4),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(11),
    ];
    f.render_widget(Table::new(rows, widths).header(header), inner);
}

pub fn decisions(f: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &app.theme;
    let ds = &app.board.decisions;
    let block = frame_block(
        t,
        Line::from(vec![
            Span::styled(" Decisions ", t.style(Role::Title)),
            Span::styled(format!("· {} pending ", ds.len()), t.style(Role::Muted)),
        ]),
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    if ds.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled("Nothing to decide.", t.style(Role::Muted))),
            inner,
        );
        return;
    }
    let [list, body] = if inner.width >= 100 {
        Layout::horizontal([Constraint::Percentage(38), Constraint::Percentage(62)]).areas(inner)
    } else {
        Layout::vertical([
            Constraint::Length((ds.len() as u16 + 1).min(inner.height / 2)),
            Constraint::Min(3),
        ])
        .areas(inner)
    };
    let lines: Vec<Line<'static>> = ds
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let chosen = i == app.decisions_row;
            let l = Line::from(vec![
                Span::styled(if chosen { "▌" } else { " " }, t.style(Role::Accent)),
                Span::styled(format!("{} ", d.id), t.style(Role::Warning)),
                Span::raw(fit(
                    &d.title,
                    list.width.saturating_sub(d.id.len() as u16 + 3) as usize,
                )),
            ]);
            if chosen {
                l.style(t.style(Role::Selection))
            } else {
                l
            }
        })
        .collect();
    f.render_widget(Paragraph::new(lines), list);
    if let Some(d) = ds.get(app.decisions_row) {
        let mut text = vec![
            Line::styled(d.title.clone(), t.style(Role::Title)),
            Line::styled(
                if d.blocks.is_empty() {
                    "blocks nothing".to_owned()
                } else {
                    format!("blocks {}", d.blocks.join(", "))
                },
                t.style(Role::Muted),
            ),
            Line::default(),
        ];
        text.extend(markdown::render(&d.description, t));
        text.push(Line::default());
        let k = |a| app.keys.hint(a);
        use crate::tui::keys::Action;
        text.push(Line::from(vec![
            Span::styled(k(Action::Approve), t.style(Role::Key)),
            Span::styled(" approve   ", t.style(Role::Muted)),
            Span::styled(k(Action::Deny), t.style(Role::Key)),
            Span::styled(" deny   ", t.style(Role::Muted)),
            Span::styled(k(Action::Answer), t.style(Role::Key)),
            Span::styled(" answer", t.style(Role::Muted)),
        ]));
        let block = Block::default()
            .borders(if inner.width >= 100 {
                Borders::LEFT
            } else {
                Borders::TOP
            })
            .border_style(t.style(Role::Border));
        let b = block.inner(body);
        f.render_widget(block, body);
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }), b);
    }
}
