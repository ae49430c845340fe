//! The list view: one row per bead — mark, id, priority, type, status, assignee, labels,
//! updated, title — with the sort column named in the title. Columns that do not fit drop
//! (labels, then assignee, then updated); only the rows on screen are built.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

use super::fit;
use crate::tui::app::App;
use crate::tui::theme::{Role, Theme};

pub fn draw(f: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &app.theme;
    let l = &app.list;
    let order = if l.reversed { ", reversed" } else { "" };
    let marked = if app.marked.is_empty() {
        String::new()
    } else {
        format!(" · {} marked", app.marked.len())
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.style(Role::BorderFocus))
        .title(Line::from(vec![
            Span::styled(format!(" List {} ", l.order.len()), t.style(Role::Title)),
            Span::styled(
                format!(
                    "· by {}{order}{marked} · o sort · O reverse ",
                    l.sort.name()
                ),
                t.style(Role::Muted),
            ),
        ]));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if l.order.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled(
                "No beads here: n creates one, esc clears a filter.",
                t.style(Role::Muted),
            )),
            inner,
        );
        return;
    }
    let w = inner.width;
    // Optional columns by how much room there is.
    let (updated, assignee, labels) = (w >= 70, w >= 90, w >= 120);
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(12),
        Constraint::Length(2),
        Constraint::Length(8),
        Constraint::Length(11),
    ];
    let mut header = vec!["", "id", "P", "type", "status"];
    if assignee {
        widths.push(Constraint::Length(10));
        header.push("assignee");
    }
    if labels {
        widths.push(Constraint::Length(18));
        header.push("labels");
    }
    if updated {
        widths.push(Constraint::Length(10));
        header.push("updated");
    }
    widths.push(Constraint::Fill(1));
    header.push("title");
    let rows_shown = inner.height.saturating_sub(1) as usize;
    let first = l.row.saturating_sub(rows_shown.saturating_sub(1));
    let rows: Vec<Row<'static>> = (first..l.order.len())
        .take(rows_shown)
        .filter_map(|r| {
            let c = l.card(&app.board, r)?;
            let mark = if app.marked.contains(&c.id) {
                "●"
            } else {
                " "
            };
            let mut cells = vec![
                Cell::from(Span::styled(mark, t.style(Role::Accent))),
                Cell::from(Span::styled(c.id.clone(), t.style(Role::Title))),
                Cell::from(Span::styled(
                    c.priority.to_string(),
                    t.style(Role::priority(c.priority)),
                )),
                Cell::from(Span::styled(c.issue_type.clone(), t.style(Role::Muted))),
                Cell::from(Span::styled(c.status.clone(), status_role(t, &c.status))),
            ];
            if assignee {
                cells.push(Cell::from(c.assignee.clone().unwrap_or_default()));
            }
            if labels {
                cells.push(Cell::from(Span::styled(
                    fit(&c.labels.join(","), 18),
                    t.style(Role::Muted),
                )));
            }
            if updated {
                cells.push(Cell::from(Span::styled(
                    c.updated.get(..10).unwrap_or(&c.updated).to_owned(),
                    t.style(Role::Muted),
                )));
            }
            cells.push(Cell::from(c.title.clone()));
            let row = Row::new(cells);
            Some(if r == l.row {
                row.style(t.style(Role::Selection))
            } else {
                row
            })
        })
        .collect();
    let head = Row::new(header).style(t.style(Role::Muted));
    f.render_widget(
        Table::new(rows, widths).header(head).column_spacing(1),
        inner,
    );
}

fn status_role(t: &Theme, status: &str) -> ratatui::style::Style {
    t.style(match status {
        "closed" => Role::ColumnDone,
        "in_progress" => Role::ColumnInProgress,
        "blocked" => Role::ColumnBlocked,
        _ => Role::Muted,
    })
}
