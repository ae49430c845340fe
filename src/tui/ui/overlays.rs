//! Boxes over the view: help (every key), the bead form, the dependency picker, and the
//! one-line prompts (priority, filter, search, close reason, answer).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::fit;
use crate::tui::app::{App, Overlay, help_entries, who};
use crate::tui::forms::{LineInput, Picker};
use crate::tui::theme::{Role, Theme};

/// A centred box `w`×`h` (clamped to the screen).
pub(super) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

pub(super) fn boxed<'a>(t: &Theme, title: &str, hint: &str) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(t.style(Role::BorderFocus))
        .title(Span::styled(format!(" {title} "), t.style(Role::Title)))
        .title_bottom(Span::styled(format!(" {hint} "), t.style(Role::Muted)))
}

pub fn draw(f: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &app.theme;
    match &app.overlay {
        None => {}
        Some(Overlay::Help {
            scroll,
            search,
            searching,
        }) => help(f, area, app, *scroll, search, *searching),
        Some(Overlay::Message { scroll }) => message(f, area, app, *scroll),
        Some(Overlay::Form(form)) => super::form::draw(f, area, t, form),
        Some(Overlay::Picker(p) | Overlay::Persona(p) | Overlay::Palette(p)) => {
            picker(f, area, t, p)
        }
        Some(Overlay::Priority(ids)) => {
            let r = centered(area, 44, 3);
            f.render_widget(Clear, r);
            f.render_widget(
                Paragraph::new(Line::from(vec![
                    Span::styled("0", t.style(Role::P0)),
                    Span::raw(" "),
                    Span::styled("1", t.style(Role::P1)),
                    Span::raw(" "),
                    Span::styled("2", t.style(Role::P2)),
                    Span::raw(" "),
                    Span::styled("3", t.style(Role::P3)),
                    Span::raw(" "),
                    Span::styled("4", t.style(Role::P4)),
                    Span::styled("   (0 is the most urgent)", t.style(Role::Muted)),
                ]))
                .block(boxed(
                    t,
                    &format!("Priority of {}", who(ids)),
                    "esc cancel",
                )),
                r,
            );
        }
        Some(Overlay::Filter(input)) => prompt(
            f,
            area,
            t,
            "Filter",
            "words · label: · type: · assignee:   enter keep · esc clear",
            input,
        ),
        Some(Overlay::Search(input)) => prompt(
            f,
            area,
            t,
            "Search the log",
            "enter find · esc cancel",
            input,
        ),
        Some(Overlay::Close { ids, reason }) => prompt(
            f,
            area,
            t,
            &format!("Close {}: why?", who(ids)),
            "enter close · esc cancel",
            reason,
        ),
        Some(Overlay::Labels { ids, input }) => prompt(
            f,
            area,
            t,
            &format!("Labels of {}", who(ids)),
            "name adds · -name removes · enter apply · esc cancel",
            input,
        ),
        Some(Overlay::Status { picker: p, .. }) => picker(f, area, t, p),
        Some(Overlay::Answer { decision, text }) => prompt(
            f,
            area,
            t,
            &format!("Answer {decision}"),
            "enter send · esc cancel",
            text,
        ),
    }
}

/// The last message or error, whole, wrapped to the box.
fn message(f: &mut Frame<'_>, area: Rect, app: &App, scroll: u16) {
    let t = &app.theme;
    let Some((error, text)) = app.full_message() else {
        return;
    };
    let w = area.width.saturating_sub(4).clamp(20, 100);
    let lines = crate::text::wrap(text, usize::from(w.saturating_sub(4)));
    let h = (lines.len() as u16 + 2).clamp(3, area.height.saturating_sub(2).max(3));
    let r = centered(area, w, h);
    f.render_widget(Clear, r);
    let (title, style) = if error {
        ("Error", t.style(Role::Error))
    } else {
        ("Message", Style::new())
    };
    let block = boxed(t, title, "↑↓ scroll · esc close");
    let inner = block.inner(r);
    f.render_widget(block, r);
    let max = (lines.len() as u16).saturating_sub(inner.height);
    let body: Vec<Line<'static>> = lines
        .into_iter()
        .skip(usize::from(scroll.min(max)))
        .map(|l| Line::styled(format!(" {l}"), style))
        .collect();
    f.render_widget(Paragraph::new(body), inner);
}

fn prompt(f: &mut Frame<'_>, area: Rect, t: &Theme, title: &str, hint: &str, input: &LineInput) {
    let r = Rect {
        x: area.x + 2,
        y: area.y + area.height.saturating_sub(5),
        width: area.width.saturating_sub(4).min(100),
        height: 3.min(area.height),
    };
    f.render_widget(Clear, r);
    let block = boxed(t, title, hint);
    let inner = block.inner(r);
    f.render_widget(block, r);
    f.render_widget(&input.area, inner);
}

/// Rows `text` takes when word-wrapped to `width`.
fn wrapped_rows(text: &str, width: usize) -> u16 {
    u16::try_from(crate::text::wrap(text, width).len()).unwrap_or(u16::MAX)
}

/// The pair pane's own keys (its input takes all others).
const PAIR_KEYS: [(&str, &str); 6] = [
    ("enter", "send"),
    ("shift+enter/ctrl+j", "new line"),
    ("y/n/a", "apply, skip, always"),
    ("ctrl+c", "stop the reply"),
    ("tab", "persona"),
    ("esc", "back"),
];

fn help(
    f: &mut Frame<'_>,
    area: Rect,
    app: &App,
    scroll: usize,
    search: &LineInput,
    searching: bool,
) {
    let t = &app.theme;
    let r = centered(area, 96, area.height.saturating_sub(2));
    f.render_widget(Clear, r);
    let rows = help_entries(&app.keys, &search.text());
    let total = crate::tui::keys::ACTIONS.len();
    let hint = if searching {
        "type to search · enter keep · esc clear".to_owned()
    } else {
        format!(
            "{} of {total} · ↑↓ scroll · / search · esc close · keys: config tui.keys",
            rows.len()
        )
    };
    let block = boxed(t, "Keys", &hint);
    let inner = block.inner(r);
    f.render_widget(block, r);
    let query = search.text();
    let [search_row, inner] = if searching || !query.is_empty() {
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(inner)
    } else {
        [Rect::default(), inner]
    };
    if searching {
        let [l, v] =
            Layout::horizontal([Constraint::Length(8), Constraint::Fill(1)]).areas(search_row);
        f.render_widget(
            Paragraph::new(Span::styled("search ", t.style(Role::Accent))),
            l,
        );
        f.render_widget(&search.area, v);
    } else if !query.is_empty() {
        f.render_widget(
            Paragraph::new(Span::styled(
                format!("search {query}"),
                t.style(Role::Muted),
            )),
            search_row,
        );
    }
    let pair: Vec<Span<'static>> =
        std::iter::once(Span::styled("In the pair pane: ", t.style(Role::Title)))
            .chain(PAIR_KEYS.iter().enumerate().flat_map(|(i, (k, what))| {
                [
                    Span::styled(*k, t.style(Role::Key)),
                    Span::raw(format!(
                        " {what}{}",
                        if i + 1 < PAIR_KEYS.len() { " · " } else { "" }
                    )),
                ]
            }))
            .collect();
    let text: String = pair.iter().map(|s| s.content.as_ref()).collect();
    let pair_rows = if query.is_empty() {
        wrapped_rows(&text, inner.width as usize).min(inner.height / 3)
    } else {
        0
    };
    let pair = Paragraph::new(Line::from(pair)).wrap(Wrap { trim: true });
    let [inner, pair_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(pair_rows)]).areas(inner);
    f.render_widget(pair, pair_area);
    if rows.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled("no key matches", t.style(Role::Muted))),
            inner,
        );
        return;
    }
    let per_col = rows.len().div_ceil(2);
    // Two columns when everything fits; else one, scrolled.
    let two = inner.width >= 60 && inner.height as usize >= per_col;
    let col_width = if two { inner.width / 2 } else { inner.width } as usize;
    let key_width = 13.min(col_width / 3);
    let entries: Vec<Line<'static>> = rows
        .iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(
                    format!("{:<key_width$} ", fit(keys, key_width)),
                    t.style(Role::Key),
                ),
                Span::raw(fit(what, col_width.saturating_sub(key_width + 2))),
            ])
        })
        .collect();
    if two {
        let [l, r2] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(inner);
        f.render_widget(Paragraph::new(entries[..per_col].to_vec()), l);
        f.render_widget(Paragraph::new(entries[per_col..].to_vec()), r2);
    } else {
        let first = scroll.min(entries.len().saturating_sub(inner.height as usize));
        f.render_widget(Paragraph::new(entries[first..].to_vec()), inner);
    }
}

pub(super) fn picker(f: &mut Frame<'_>, area: Rect, t: &Theme, p: &Picker) {
    let r = centered(area, 72, area.height.saturating_sub(4).min(20));
    f.render_widget(Clear, r);
    let keys = format!("type to search · ↑↓ choose · enter {} · esc cancel", p.verb);
    let block = boxed(t, &p.title, &keys);
    let inner = block.inner(r);
    f.render_widget(block, r);
    let [q, list] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
    f.render_widget(&p.query.area, q);
    let rows = list.height as usize;
    let first = p.selected.saturating_sub(rows.saturating_sub(1));
    let lines: Vec<Line<'static>> = (first..p.shown.len())
        .take(rows)
        .filter_map(|i| {
            let item = p.item(i)?;
            let chosen = i == p.selected;
            let l = Line::from(vec![
                Span::styled(if chosen { "▌" } else { " " }, t.style(Role::Accent)),
                Span::raw(fit(&item.label, list.width.saturating_sub(1) as usize)),
            ]);
            Some(if chosen {
                l.style(t.style(Role::Selection))
            } else {
                l
            })
        })
        .collect();
    if lines.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled("nothing matches", t.style(Role::Muted))),
            list,
        );
    } else {
        f.render_widget(Paragraph::new(lines), list);
    }
}
