//! The bead form, drawn over the whole screen: the one-line fields first (label left, value
//! right), then the four texts sharing the rest — the focused one gets the most room. Only
//! the focused field shows a cursor; the last line says what the field takes, what labels
//! complete, or why the save was refused.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::fit;
use super::overlays::{boxed, picker};
use crate::tui::forms::{BeadForm, Field, LineInput};
use crate::tui::theme::{Role, Theme};

/// The label column's width.
const LABEL: u16 = 13;

pub fn draw(f: &mut Frame<'_>, area: Rect, t: &Theme, form: &BeadForm) {
    f.render_widget(Clear, area);
    let title = match &form.editing {
        Some(id) => format!("Edit {id}"),
        None => "New bead".to_owned(),
    };
    let block = boxed(t, &title, "tab next · ctrl+s save · esc cancel");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let lines = Field::ALL.len() - Field::TEXTS.len();
    let hint = hint_lines(t, form, inner.width);
    let [top, texts, bottom] = Layout::vertical([
        Constraint::Length(lines as u16),
        Constraint::Min(Field::TEXTS.len() as u16),
        Constraint::Length(hint.len() as u16),
    ])
    .areas(inner);
    for (i, field) in Field::ALL.iter().take(lines).enumerate() {
        let row = Rect {
            y: top.y + i as u16,
            height: 1,
            ..top
        };
        if row.y < top.bottom() {
            one_line(f, row, t, form, *field);
        }
    }
    let weights = Field::TEXTS.map(|x| Constraint::Fill(if x == form.focus { 3 } else { 1 }));
    let rows = Layout::vertical(weights).split(texts);
    for (field, r) in Field::TEXTS.iter().zip(rows.iter()) {
        multi_line(f, *r, t, form, *field);
    }
    f.render_widget(Paragraph::new(hint), bottom);
    if let Some(p) = &form.picker {
        picker(f, area, t, p);
    }
}

fn label(t: &Theme, form: &BeadForm, field: Field) -> Span<'static> {
    let style = if form.focus == field {
        t.style(Role::Accent)
    } else {
        t.style(Role::Muted)
    };
    let mark = if form.focus == field { "▌" } else { " " };
    Span::styled(
        format!("{mark}{:<w$}", field.label(), w = LABEL as usize - 1),
        style,
    )
}

fn split(r: Rect) -> [Rect; 2] {
    Layout::horizontal([Constraint::Length(LABEL), Constraint::Min(1)]).areas(r)
}

/// A one-line field: an input (with its cursor only when focused) or a row of choices.
fn one_line(f: &mut Frame<'_>, row: Rect, t: &Theme, form: &BeadForm, field: Field) {
    let [l, v] = split(row);
    f.render_widget(Paragraph::new(Line::from(label(t, form, field))), l);
    let mut input = |i: &LineInput, extra: Option<&str>| {
        if form.focus == field {
            f.render_widget(&i.area, v);
        } else {
            let mut spans = vec![Span::raw(fit(&i.text(), v.width as usize))];
            if let Some(x) = extra {
                spans.push(Span::styled(format!("  {x}"), t.style(Role::Muted)));
            }
            f.render_widget(Paragraph::new(Line::from(spans)), v);
        }
    };
    match field {
        Field::Title => input(&form.title, None),
        Field::Assignee => input(&form.assignee, None),
        Field::Labels => input(&form.labels, None),
        Field::Parent => input(&form.parent, form.parent_title()),
        Field::Dependencies => input(&form.deps, None),
        Field::Type => choices(f, v, t, &form.types, form.type_index),
        Field::Status => choices(f, v, t, &form.statuses, form.status_index),
        Field::Priority => {
            let ps: Vec<String> = (0..=4).map(|p| format!("P{p}")).collect();
            choices(f, v, t, &ps, form.priority.clamp(0, 4) as usize)
        }
        _ => {}
    }
}

/// The options in a row; brackets mark the choice without colour too.
fn choices(f: &mut Frame<'_>, r: Rect, t: &Theme, options: &[String], at: usize) {
    let spans: Vec<Span<'static>> = options
        .iter()
        .enumerate()
        .map(|(i, o)| {
            if i == at {
                Span::styled(format!("[{o}]"), t.style(Role::Selection))
            } else {
                Span::styled(format!(" {o} "), t.style(Role::Muted))
            }
        })
        .collect();
    f.render_widget(Paragraph::new(Line::from(spans)), r);
}

fn multi_line(f: &mut Frame<'_>, r: Rect, t: &Theme, form: &BeadForm, field: Field) {
    let Some(i) = field.text_index() else {
        return;
    };
    let [l, v] = split(r);
    f.render_widget(Paragraph::new(Line::from(label(t, form, field))), l);
    let area = &form.texts[i];
    if form.focus == field {
        f.render_widget(area, v);
    } else if area.is_empty() {
        f.render_widget(Paragraph::new(Line::styled("—", t.style(Role::Muted))), v);
    } else {
        let lines: Vec<Line<'static>> = area.lines().iter().map(|x| Line::raw(x.clone())).collect();
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), v);
    }
}

/// The refusal if there is one (wrapped, up to three lines), else what the focused field
/// takes (and, on labels, what completes).
fn hint_lines(t: &Theme, form: &BeadForm, width: u16) -> Vec<Line<'static>> {
    if let Some(e) = &form.error {
        let mut lines = crate::text::wrap(&format!(" {e}"), width.max(1) as usize);
        lines.truncate(3);
        return lines
            .into_iter()
            .map(|l| Line::styled(l, t.style(Role::Error)))
            .collect();
    }
    let mut text = format!(" {}: {}", form.focus.label(), form.focus.hint());
    if form.focus == Field::Labels {
        let known = form.label_completions();
        if !known.is_empty() {
            text.push_str(" · ");
            text.push_str(&known.join(" "));
        }
    }
    vec![Line::styled(
        fit(&text, width as usize),
        t.style(Role::Muted),
    )]
}
