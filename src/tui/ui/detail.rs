//! One bead in full: its fields, the Markdown description and acceptance criteria, comments,
//! dependencies both ways (selectable; `enter` follows one), `metadata.loom`, and its history
//! from git (loaded in the background). Wide terminals get two columns.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use serde_json::Value;

use super::{fit, markdown};
use crate::tui::app::{App, Detail};
use crate::tui::theme::{Role, Theme};

pub fn draw(f: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &app.theme;
    let d = &app.detail;
    let title = Line::from(vec![
        Span::styled(format!(" {} ", d.id), t.style(Role::Title)),
        Span::styled(
            d.detail
                .as_ref()
                .map(|x| {
                    fit(
                        &x.bead.title,
                        area.width.saturating_sub(d.id.len() as u16 + 6) as usize,
                    )
                })
                .unwrap_or_default(),
            t.style(Role::Text),
        ),
        Span::raw(" "),
    ]);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.style(Role::BorderFocus))
        .title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(detail) = &d.detail else {
        f.render_widget(
            Paragraph::new(Line::styled("Loading…", t.style(Role::Muted))),
            inner,
        );
        return;
    };
    let main = main_lines(detail, t);
    let side = side_lines(detail, app, t);
    if inner.width >= 110 {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
                .areas(inner);
        f.render_widget(
            Paragraph::new(main)
                .wrap(Wrap { trim: false })
                .scroll((d.scroll, 0)),
            left,
        );
        let block = Block::default()
            .borders(Borders::LEFT)
            .border_style(t.style(Role::Border));
        let r = block.inner(right);
        f.render_widget(block, right);
        f.render_widget(Paragraph::new(side).wrap(Wrap { trim: false }), r);
    } else {
        let mut all = main;
        all.push(Line::default());
        all.extend(side);
        f.render_widget(
            Paragraph::new(all)
                .wrap(Wrap { trim: false })
                .scroll((d.scroll, 0)),
            inner,
        );
    }
}

fn heading(text: &str, t: &Theme) -> Line<'static> {
    Line::styled(text.to_owned(), t.style(Role::Accent))
}

fn main_lines(d: &Detail, t: &Theme) -> Vec<Line<'static>> {
    let b = &d.bead;
    let muted = t.style(Role::Muted);
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!("P{}", b.priority),
            t.style(Role::priority(b.priority)),
        ),
        Span::styled(format!("  {}  ", b.issue_type), muted),
        Span::styled(b.status.clone(), t.style(Role::Title)),
        Span::styled(
            b.assignee
                .as_ref()
                .map(|a| format!("  @{a}"))
                .unwrap_or_default(),
            muted,
        ),
        Span::styled(
            if b.labels.is_empty() {
                String::new()
            } else {
                format!("  [{}]", b.labels.join(", "))
            },
            muted,
        ),
    ])];
    let when = |label: &str, v: Option<String>| -> Option<Line<'static>> {
        v.map(|v| {
            Line::from(vec![
                Span::styled(format!("{label:<8}"), muted),
                Span::raw(v.get(..16).unwrap_or(&v).replace('T', " ")),
            ])
        })
    };
    lines.extend(when(
        "created",
        b.created_at
            .as_ref()
            .map(|c| format!("{} {}", c.as_str(), b.created_by.as_deref().unwrap_or(""))),
    ));
    lines.extend(when(
        "updated",
        b.updated_at.as_ref().map(|c| c.as_str().to_owned()),
    ));
    if let Some(c) = &b.closed_at {
        lines.push(Line::from(vec![
            Span::styled("closed  ", muted),
            Span::raw(c.as_str().get(..16).unwrap_or(c.as_str()).replace('T', " ")),
            Span::styled(
                b.close_reason
                    .as_ref()
                    .map(|r| format!("  {r}"))
                    .unwrap_or_default(),
                muted,
            ),
        ]));
    }
    for (name, text) in [
        ("Description", &b.description),
        ("Design", &b.design),
        ("Acceptance criteria", &b.acceptance_criteria),
        ("Notes", &b.notes),
    ] {
        if let Some(text) = text.as_deref().filter(|s| !s.trim().is_empty()) {
            lines.push(Line::default());
            lines.push(heading(name, t));
            lines.extend(markdown::render(text, t));
        }
    }
    if !b.comments.is_empty() {
        lines.push(Line::default());
        lines.push(heading(&format!("Comments ({})", b.comments.len()), t));
        for c in &b.comments {
            lines.push(Line::from(vec![
                Span::styled(c.author.clone(), t.style(Role::Title)),
                Span::styled(
                    format!(
                        "  {}",
                        c.created_at
                            .as_ref()
                            .map(|x| x.as_str().get(..16).unwrap_or(x.as_str()).replace('T', " "))
                            .unwrap_or_default()
                    ),
                    muted,
                ),
            ]));
            lines.extend(markdown::render(&c.text, t));
        }
    }
    lines
}

fn side_lines(d: &Detail, app: &App, t: &Theme) -> Vec<Line<'static>> {
    let muted = t.style(Role::Muted);
    let mut lines = Vec::new();
    let mut index = 0usize;
    let mut link =
        |lines: &mut Vec<Line<'static>>, arrow: &str, x: &(String, String, String, String)| {
            let chosen = index == app.detail.link;
            index += 1;
            let style = if chosen {
                t.style(Role::Selection)
            } else {
                ratatui::style::Style::new()
            };
            lines.push(
                Line::from(vec![
                    Span::styled(if chosen { "▌" } else { " " }, t.style(Role::Accent)),
                    Span::styled(format!("{arrow} {}", x.0), t.style(Role::Title)),
                    Span::styled(format!("  {} · {}", x.1, x.2), muted),
                    Span::raw(format!("  {}", x.3)),
                ])
                .style(style),
            );
        };
    lines.push(heading("Depends on", t));
    if d.depends_on.is_empty() {
        lines.push(Line::styled("  nothing", muted));
    }
    for x in &d.depends_on {
        link(&mut lines, "→", x);
    }
    lines.push(Line::default());
    lines.push(heading("Needed by", t));
    if d.dependents.is_empty() {
        lines.push(Line::styled("  nothing", muted));
    }
    for x in &d.dependents {
        link(&mut lines, "←", x);
    }
    if let Some(l) = d.bead.loom_metadata() {
        lines.push(Line::default());
        lines.push(heading("Loom", t));
        let show = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for key in [
            "stage",
            "dispatches",
            "persona",
            "model",
            "branch",
            "iterations",
            "tokens",
            "cost_usd",
            "merged_commit",
            "decision",
            "escalation",
            "note",
        ] {
            if let Some(v) = l.get(key) {
                let v = match (key, v) {
                    ("tokens", Value::Object(o)) => {
                        o.get("total").map(show).unwrap_or_else(|| show(v))
                    }
                    _ => show(v),
                };
                lines.push(Line::from(vec![
                    Span::styled(format!("  {key:<13}"), muted),
                    Span::raw(v),
                ]));
            }
        }
    }
    lines.push(Line::default());
    lines.push(heading("History", t));
    match &app.detail.history {
        None => lines.push(Line::styled("  loading…", muted)),
        Some(Err(e)) => lines.push(Line::styled(format!("  {e}"), t.style(Role::Error))),
        Some(Ok(entries)) if entries.is_empty() => {
            lines.push(Line::styled("  no commits yet", muted))
        }
        Some(Ok(entries)) => {
            let id = app.detail.id.as_str();
            for e in entries.iter().take(30) {
                lines.push(Line::from(vec![
                    Span::styled(
                        format!(
                            "  {} ",
                            e.time.get(..16).unwrap_or(&e.time).replace('T', " ")
                        ),
                        muted,
                    ),
                    Span::styled(format!("{:<8}", e.event), t.style(Role::Key)),
                    Span::raw(format!(" {}", e.actor)),
                    Span::styled(
                        format!("  {}", e.commit.get(..8).unwrap_or(&e.commit)),
                        muted,
                    ),
                    Span::raw(match what_it_did(&e.subject, id, &e.event) {
                        w if w.is_empty() => w,
                        w => format!("  {w}"),
                    }),
                ]));
            }
        }
    }
    lines
}

/// What a commit did to bead `id`, from its subject, without what the line says already:
/// `loom: t-a priority 2 → 1` says `priority 2 → 1`; `loom: t-a commented` (event
/// `commented`) says nothing more; a commit about several beads, or an agent's code, says its
/// subject.
fn what_it_did(subject: &str, id: &str, event: &str) -> String {
    let rest = subject.strip_prefix("loom: ").unwrap_or(subject);
    let rest = rest
        .strip_prefix(id)
        .filter(|r| r.starts_with(' '))
        .map_or(rest, str::trim_start);
    let rest = rest
        .strip_prefix(event)
        .filter(|r| r.is_empty() || r.starts_with(' '))
        .map_or(rest, str::trim_start);
    crate::text::one_line(rest, 48)
}

#[cfg(test)]
mod tests {
    use super::what_it_did;

    #[test]
    fn history_says_what_each_change_did() {
        assert_eq!(
            what_it_did("loom: t-a priority 2 → 1", "t-a", "updated"),
            "priority 2 → 1"
        );
        assert_eq!(what_it_did("loom: t-a commented", "t-a", "commented"), "");
        assert_eq!(
            what_it_did("loom: closed 3 beads", "t-a", "closed"),
            "3 beads"
        );
        assert_eq!(
            what_it_did("loom: t-ab priority 2 → 1", "t-a", "updated"),
            "t-ab priority 2 → 1",
            "another bead's id that starts the same is kept"
        );
        assert_eq!(
            what_it_did("Fix subtraction (t-a)", "t-a", "code"),
            "Fix subtraction (t-a)"
        );
    }
}
