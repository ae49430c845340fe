//! The dependency view: the bead, what it waits on as a tree (its critical path marked ◆),
//! what waits on it, the critical path spelled out (where to start) and any cycles (⟳). Only
//! the lines on screen are built.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::fit;
use crate::tui::app::App;
use crate::tui::deps::{DepLine, Deps};
use crate::tui::theme::{Role, Theme};

pub fn draw(f: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &app.theme;
    let v = &app.deps;
    let summary = match &v.deps {
        None => "loading…".to_owned(),
        Some(d) => {
            let cycles = match d.cycles.len() {
                0 => String::new(),
                1 => " · 1 cycle".into(),
                n => format!(" · {n} cycles"),
            };
            format!(
                "· {} waits on {} open bead{}{cycles} ",
                v.root,
                d.critical.len().saturating_sub(1),
                if d.critical.len() == 2 { "" } else { "s" }
            )
        }
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.style(Role::BorderFocus))
        .title(Line::from(vec![
            Span::styled(" Dependencies ", t.style(Role::Title)),
            Span::styled(summary, t.style(Role::Muted)),
        ]));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(d) = &v.deps else {
        return;
    };
    let foot = footer(t, d, inner.width);
    let [tree, bottom] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(foot.len().min(usize::from(inner.height / 3)) as u16),
    ])
    .areas(inner);
    let rows = tree.height as usize;
    let first = v.row.saturating_sub(rows.saturating_sub(1));
    let w = tree.width as usize;
    let mut lines: Vec<Line<'static>> = Vec::with_capacity(rows);
    let mut heading_shown = d.lines.iter().take(first).any(|l| l.dependent);
    for (i, l) in d.lines.iter().enumerate().skip(first) {
        if lines.len() >= rows {
            break;
        }
        if l.dependent && !heading_shown {
            heading_shown = true;
            lines.push(Line::styled(
                format!("what waits on {}", d.root),
                t.style(Role::Muted),
            ));
        }
        lines.push(line(t, l, w, i == v.row));
    }
    lines.truncate(rows);
    f.render_widget(Paragraph::new(lines), tree);
    f.render_widget(Paragraph::new(foot).wrap(Wrap { trim: false }), bottom);
}

fn line(t: &Theme, l: &DepLine, w: usize, chosen: bool) -> Line<'static> {
    let indent = "  ".repeat(l.depth);
    let branch = if l.depth == 0 {
        "▶ "
    } else if l.dependent {
        "↑ "
    } else {
        "└ "
    };
    let edge = if l.edge.is_empty() {
        String::new()
    } else {
        format!("{} ", l.edge)
    };
    let mark = match (l.critical, l.in_cycle) {
        (_, true) => Span::styled("⟳ ", t.style(Role::Error)),
        (true, _) => Span::styled("◆ ", t.style(Role::Warning)),
        _ => Span::raw("  "),
    };
    let status_role = match l.status.as_str() {
        "closed" => Role::ColumnDone,
        "in_progress" => Role::ColumnInProgress,
        "blocked" => Role::ColumnBlocked,
        _ => Role::Muted,
    };
    let head = format!("{indent}{branch}{edge}");
    let used = head.chars().count() + 2 + l.id.len() + 1 + l.status.len() + 1;
    let line = Line::from(vec![
        Span::styled(head, t.style(Role::Muted)),
        mark,
        Span::styled(l.id.clone(), t.style(Role::Title)),
        Span::raw(" "),
        Span::styled(l.status.clone(), t.style(status_role)),
        Span::raw(" "),
        Span::raw(fit(&l.title, w.saturating_sub(used))),
    ]);
    if chosen {
        line.style(t.style(Role::Selection))
    } else {
        line
    }
}

/// The critical path (where to start) and the cycles, in words.
fn footer(t: &Theme, d: &Deps, width: u16) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    if d.critical.len() > 1 {
        let first = d.critical.last().cloned().unwrap_or_default();
        // A long chain shows its ends: where it goes and where to start.
        let n = d.critical.len();
        let path = if n > 8 {
            format!(
                "{} ← … {} more … ← {}",
                d.critical[..3].join(" ← "),
                n - 6,
                d.critical[n - 3..].join(" ← ")
            )
        } else {
            d.critical.join(" ← ")
        };
        out.push(Line::from(vec![
            Span::styled("◆ critical path: ", t.style(Role::Warning)),
            Span::raw(path),
            Span::styled(format!("  (start with {first})"), t.style(Role::Muted)),
        ]));
    } else {
        out.push(Line::styled(
            format!("{} waits on nothing open", d.root),
            t.style(Role::Muted),
        ));
    }
    for c in &d.cycles {
        let mut ids = c.clone();
        if let Some(first) = c.first() {
            ids.push(first.clone());
        }
        out.push(Line::from(vec![
            Span::styled("⟳ cycle: ", t.style(Role::Error)),
            Span::raw(fit(&ids.join(" → "), width.saturating_sub(10) as usize)),
            Span::styled("  (remove one of these dependencies)", t.style(Role::Muted)),
        ]));
    }
    out
}
