//! The usage view: the session's spend by agent, bead or model (`←/→` picks), one row each
//! with a bar of its share, its tokens and cost and a sparkline of its tokens per minute; then
//! tokens and cost per minute over the session, and the run's throughput (beads finished per
//! minute and how they ended). Only the rows on screen are built.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline};

use super::{fit, tokens};
use crate::tui::app::{App, UsageGroup};
use crate::tui::live::{Live, Spend};
use crate::tui::theme::{Role, Theme};

/// `values` (the last `width` of them) as a line of block characters scaled to their maximum.
pub fn spark(values: &[u64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let tail = &values[values.len().saturating_sub(width)..];
    let max = tail.iter().copied().max().unwrap_or(0);
    tail.iter()
        .map(|&v| {
            if v == 0 || max == 0 {
                ' '
            } else {
                BARS[((v * 7).div_ceil(max) as usize).min(7)]
            }
        })
        .collect()
}

/// A bar `width` wide, `share` of it filled.
fn bar(share: f64, width: usize) -> String {
    let filled = ((share.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

fn money(c: f64) -> String {
    if c > 0.0 {
        format!("${c:.3}")
    } else {
        "-".into()
    }
}

/// The rows of the group shown, most tokens first.
pub fn rows(live: &Live, group: UsageGroup) -> Vec<(&String, &Spend, &[u64])> {
    let (spend, trend) = match group {
        UsageGroup::Agent => (&live.by_agent, &live.trend.agent),
        UsageGroup::Bead => (&live.by_bead, &live.trend.bead),
        UsageGroup::Model => (&live.by_model, &live.trend.model),
    };
    let mut rows: Vec<(&String, &Spend, &[u64])> = spend
        .iter()
        .map(|(k, s)| (k, s, trend.get(k).map_or(&[][..], Vec::as_slice)))
        .collect();
    rows.sort_by(|a, b| b.1.tokens.cmp(&a.1.tokens).then(a.0.cmp(b.0)));
    rows
}

pub fn draw(f: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &app.theme;
    let live = &app.live;
    let total = live.total;
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.style(Role::BorderFocus))
        .title(Line::from(vec![
            Span::styled(" Usage ", t.style(Role::Title)),
            Span::styled(
                format!(
                    "· this session: {} tokens{} ",
                    tokens(total.tokens),
                    if total.cost > 0.0 {
                        format!(" · ${:.4}", total.cost)
                    } else {
                        String::new()
                    }
                ),
                t.style(Role::Muted),
            ),
        ]));
    let inner = block.inner(area);
    f.render_widget(block, area);
    // Three charts (of 3 rows, 5 on a tall screen), or only tokens on a short one.
    let each = if inner.height >= 36 { 5 } else { 3 };
    let charts = if inner.height >= 16 { each * 3 } else { 3 };
    let [tabs, table, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(2),
        Constraint::Length(charts),
    ])
    .areas(inner);
    f.render_widget(Paragraph::new(group_tabs(t, app.usage_group)), tabs);
    draw_rows(f, table, app);
    if charts == 3 {
        chart(
            f,
            bottom,
            t,
            "tokens per minute",
            &live.per_minute,
            Role::Accent,
        );
    } else {
        let [a, b, c] = Layout::vertical([Constraint::Length(each); 3]).areas(bottom);
        chart(f, a, t, "tokens per minute", &live.per_minute, Role::Accent);
        // Cost in tenths of a cent, as the sparkline wants integers.
        let cost: Vec<u64> = live
            .cost_per_minute
            .iter()
            .map(|c| (c * 1000.0).round() as u64)
            .collect();
        let max = live.cost_per_minute.iter().copied().fold(0.0, f64::max);
        chart(
            f,
            b,
            t,
            &format!("cost per minute (max {})", money(max)),
            &cost,
            Role::Warning,
        );
        let done: u64 = live.finished_per_minute.iter().sum();
        let minutes = live.finished_per_minute.len().max(1) as f64;
        let how: Vec<String> = live
            .outcomes
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        let title = if done == 0 {
            "throughput: no bead finished yet".to_owned()
        } else {
            format!(
                "throughput: {} · {:.1} beads/h",
                how.join(" · "),
                done as f64 * 60.0 / minutes
            )
        };
        chart(f, c, t, &title, &live.finished_per_minute, Role::Success);
    }
}

fn group_tabs(t: &Theme, group: UsageGroup) -> Line<'static> {
    let mut spans = Vec::new();
    for g in UsageGroup::ALL {
        let name = g.name();
        if g == group {
            spans.push(Span::styled(format!("[{name}]"), t.style(Role::Selection)));
        } else {
            spans.push(Span::styled(format!(" {name} "), t.style(Role::Muted)));
        }
    }
    spans.push(Span::styled(
        "  ←/→ by agent, bead or model",
        t.style(Role::Muted),
    ));
    Line::from(spans)
}

fn draw_rows(f: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &app.theme;
    let rows = rows(&app.live, app.usage_group);
    if rows.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled("no model calls yet", t.style(Role::Muted))),
            area,
        );
        return;
    }
    let w = area.width as usize;
    let name_w = 14.min(w / 4);
    let bar_w = (w / 4).clamp(4, 40);
    let spark_w = w.saturating_sub(name_w + 1 + bar_w + 8 + 9 + 1).max(1);
    let max = rows.first().map_or(1, |r| r.1.tokens.max(1));
    let shown = area.height as usize;
    let first = app.usage_row.saturating_sub(shown.saturating_sub(1));
    let lines: Vec<Line<'static>> = rows
        .iter()
        .enumerate()
        .skip(first)
        .take(shown)
        .map(|(i, (name, s, trend))| {
            let line = Line::from(vec![
                Span::raw(format!("{:<name_w$} ", fit(name, name_w))),
                Span::styled(
                    bar(s.tokens as f64 / max as f64, bar_w),
                    t.style(Role::Accent),
                ),
                Span::raw(format!(" {:>7}", tokens(s.tokens))),
                Span::styled(format!(" {:>8}", money(s.cost)), t.style(Role::Muted)),
                Span::raw(" "),
                Span::styled(spark(trend, spark_w), t.style(Role::Accent)),
            ]);
            if i == app.usage_row {
                line.style(t.style(Role::Selection))
            } else {
                line
            }
        })
        .collect();
    f.render_widget(Paragraph::new(lines), area);
}

fn chart(f: &mut Frame<'_>, area: Rect, t: &Theme, title: &str, data: &[u64], role: Role) {
    let block = Block::default()
        .borders(Borders::TOP)
        .border_style(t.style(Role::Border))
        .title(Span::styled(format!(" {title} "), t.style(Role::Muted)));
    let c = block.inner(area);
    f.render_widget(block, area);
    if data.iter().all(|v| *v == 0) {
        f.render_widget(
            Paragraph::new(Line::styled("nothing yet", t.style(Role::Muted))),
            c,
        );
        return;
    }
    let start = data.len().saturating_sub(c.width as usize);
    f.render_widget(
        Sparkline::default()
            .data(&data[start..])
            .style(t.style(role)),
        c,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparks_and_bars_scale_to_their_maximum() {
        assert_eq!(spark(&[0, 1, 2, 4, 8], 10), " ▂▃▅█");
        assert_eq!(spark(&[5, 0, 10], 2), " █", "the last `width` values");
        assert_eq!(spark(&[], 4), "");
        assert_eq!(bar(0.5, 4), "██░░");
        assert_eq!(bar(2.0, 3), "███");
    }
}
