//! Drawing: the header (repository, branch, endpoint, agents, ready, spend), the current view,
//! the footer (the keys that matter here, or the last message), and any overlay. Pure
//! functions of the [`App`]; they never block.

pub(crate) mod board;
mod deps;
mod detail;
mod form;
mod list;
pub(crate) mod markdown;
mod overlays;
mod pair;
mod panes;
pub(crate) mod usage;
mod work;

use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use super::app::{App, View};
use super::keys::Action;
use super::theme::Role;
use crate::llm::Health;

/// How long a message stays in the footer.
pub const MESSAGE_TTL: Duration = Duration::from_secs(8);

/// The board shows a strip of logs under it from this height of the main area; below it, from
/// [`LINE_FROM`], the last log line in a box of its own (so 80×24 still shows what happens).
const STRIP_FROM: u16 = 26;
const STRIP_HEIGHT: u16 = 8;
const LINE_FROM: u16 = 14;
const LINE_HEIGHT: u16 = 3;

/// Draws the whole screen.
pub fn draw(f: &mut Frame<'_>, app: &App, now: Instant) {
    let message = footer_message(app, f.area().width, now);
    let footer_height = message.as_ref().map_or(1, |(_, lines)| lines.len() as u16);
    let [header, main, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(footer_height),
    ])
    .areas(f.area());
    draw_header(f, header, app);
    match app.view {
        View::Board if main.height >= LINE_FROM => {
            let strip = if main.height >= STRIP_FROM {
                STRIP_HEIGHT
            } else {
                LINE_HEIGHT
            };
            let [top, strip] =
                Layout::vertical([Constraint::Fill(1), Constraint::Length(strip)]).areas(main);
            board::draw(f, top, app, now);
            panes::logs_strip(f, strip, app);
        }
        View::Board => board::draw(f, main, app, now),
        View::Detail => detail::draw(f, main, app),
        View::Logs => panes::logs(f, main, app),
        View::Agents => panes::agents(f, main, app, now),
        View::Decisions => panes::decisions(f, main, app),
        View::Usage => usage::draw(f, main, app),
        View::Pair => pair::draw(f, main, app),
        View::Work => work::draw(f, main, app),
        View::List => list::draw(f, main, app),
        View::Deps => deps::draw(f, main, app),
    }
    match message {
        Some((error, lines)) => draw_message(f, footer, app, error, lines),
        None => draw_footer(f, footer, app),
    }
    overlays::draw(f, f.area(), app);
}

pub use crate::text::fit;

/// Tokens as people read them: 950, 12.3k, 1.2M.
pub fn tokens(n: u64) -> String {
    match n {
        0..=999 => n.to_string(),
        1_000..=999_999 => format!("{:.1}k", n as f64 / 1000.0).replace(".0k", "k"),
        _ => format!("{:.1}M", n as f64 / 1_000_000.0).replace(".0M", "M"),
    }
}

/// Elapsed time as `0m41s`, `2h05m`.
pub fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

fn draw_header(f: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &app.theme;
    let muted = t.style(Role::Muted);
    let (dot, health_style, health) = match app.live.health {
        Health::Healthy => ("●", t.style(Role::Success), "ok"),
        Health::Degraded => ("●", t.style(Role::Warning), "degraded"),
        Health::Down => ("●", t.style(Role::Error), "down"),
        Health::Unknown => ("○", muted, "idle"),
    };
    let agents = if app.live.orchestrating {
        format!("agents {}/{}", app.live.busy(), app.live.max_agents.max(1))
    } else {
        "agents —".to_owned()
    };
    // (how much it matters, gap before, what): when the line is too narrow the least important
    // go first.
    let mut parts: Vec<(u8, &str, Span<'static>)> = vec![
        (9, "", Span::styled(" loom ", t.style(Role::Accent))),
        (
            9,
            " ",
            Span::styled(app.repo.name.clone(), t.style(Role::Title)),
        ),
        (3, "", Span::styled(format!("  {}", app.repo.branch), muted)),
        (8, "  ", Span::styled(dot, health_style)),
        (6, "", Span::styled(format!(" {health}"), muted)),
        (5, "", Span::styled(format!("  {agents}"), muted)),
        (
            7,
            "",
            Span::styled(format!("  ready {}", app.board.ready), muted),
        ),
    ];
    if app.board.glimpse {
        parts.push((6, "  ", Span::styled("reading the store…", muted)));
    }
    // The view's state, always in sight: what the filter hides, the order; esc clears them.
    let view = view_state(app);
    if !view.is_empty() {
        parts.push((10, "  ", Span::styled(view, t.style(Role::Warning))));
    }
    if app.auto {
        parts.push((4, "  ", Span::styled("auto", t.style(Role::Warning))));
    }
    let spend = &app.live.total;
    if spend.tokens > 0 {
        let cost = if spend.cost > 0.0 {
            format!("${:.2} · ", spend.cost)
        } else {
            String::new()
        };
        parts.push((
            2,
            "",
            Span::styled(format!("  {cost}{} tok", tokens(spend.tokens)), muted),
        ));
    }
    if !app.live.watcher_ok {
        parts.push((8, "  ", Span::styled("watcher off", t.style(Role::Warning))));
    }
    let help = format!("{} help ", app.keys.hint(Action::Help));
    let room = (area.width as usize).saturating_sub(help.width());
    let width = |parts: &[(u8, &str, Span<'static>)]| -> usize {
        parts
            .iter()
            .map(|(_, g, s)| g.len() + s.content.width())
            .sum()
    };
    while width(&parts) > room {
        let Some(least) = parts
            .iter()
            .enumerate()
            .min_by_key(|(i, (p, _, _))| (*p, usize::MAX - i))
            .map(|(i, _)| i)
        else {
            break;
        };
        if parts[least].0 >= 9 {
            break; // what is left must show, cut at the edge
        }
        parts.remove(least);
    }
    let used = width(&parts);
    let mut spans: Vec<Span<'static>> = Vec::new();
    for (_, gap, span) in parts {
        if !gap.is_empty() {
            spans.push(Span::raw(gap));
        }
        spans.push(span);
    }
    let pad = (area.width as usize).saturating_sub(used + help.width());
    spans.push(Span::raw(" ".repeat(pad)));
    spans.push(Span::styled(help, t.style(Role::Key)));
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The active filter and sort, as the header says them (`""`: the default view).
pub fn view_state(app: &App) -> String {
    let f = &app.filter;
    let mut parts = Vec::new();
    if f.filters() {
        parts.push(format!(
            "filter {} ({} hidden)",
            f.text.trim(),
            app.board.hidden
        ));
    }
    if f.sort != crate::tui::model::Sort::Priority {
        parts.push(format!("sort {}", f.sort.name()));
    }
    if !app.marked.is_empty() {
        parts.insert(0, format!("{} marked", app.marked.len()));
    }
    if parts.is_empty() {
        return String::new();
    }
    format!(
        "{} · {} clears",
        parts.join(" · "),
        app.keys.hint(Action::Back)
    )
}

/// Key hints: (action, label).
fn hints(app: &App) -> Vec<(Action, &'static str)> {
    match app.view {
        View::Board => vec![
            (Action::Open, "open"),
            (Action::New, "new"),
            (Action::StartStop, "start"),
            (Action::Work, "work"),
            (Action::Close, "close"),
            (Action::Filter, "filter"),
            (Action::Logs, "logs"),
            (Action::Agents, "agents"),
            (Action::Decisions, "decisions"),
            (Action::Usage, "usage"),
            (Action::Quit, "quit"),
        ],
        View::Detail => vec![
            (Action::Back, "back"),
            (Action::Open, "follow link"),
            (Action::Edit, "edit"),
            (Action::Priority, "priority"),
            (Action::AddDependency, "depend"),
            (Action::Deps, "deps"),
            (Action::Work, "work"),
            (Action::StartStop, "start"),
            (Action::Close, "close"),
            (Action::Reopen, "reopen"),
        ],
        View::Logs => vec![
            (Action::Back, "board"),
            (Action::Open, "expand"),
            (Action::Filter, "all/one bead"),
            (Action::Search, "search"),
            (Action::SearchNext, "next"),
            (Action::Bottom, "follow"),
            (Action::Older, "older run"),
            (Action::Newer, "newer"),
        ],
        View::Deps => vec![
            (Action::Back, "back"),
            (Action::Open, "re-root"),
            (Action::Work, "work"),
            (Action::Edit, "edit"),
            (Action::StartStop, "start"),
        ],
        View::List => vec![
            (Action::Open, "open"),
            (Action::Mark, "mark"),
            (Action::Sort, "sort"),
            (Action::Reverse, "reverse"),
            (Action::Close, "close"),
            (Action::Status, "status"),
            (Action::Label, "label"),
            (Action::List, "board"),
        ],
        View::Work => vec![
            (Action::Back, "back"),
            (Action::Right, "diff/tests/transcript"),
            (Action::Newer, "next file"),
            (Action::Older, "previous"),
            (Action::Open, "unfold"),
        ],
        View::Agents => vec![
            (Action::Back, "board"),
            (Action::StartStop, "stop/restart"),
            (Action::Open, "open"),
            (Action::Auto, "auto"),
        ],
        View::Decisions => vec![
            (Action::Back, "board"),
            (Action::Approve, "approve"),
            (Action::Deny, "deny"),
            (Action::Answer, "answer"),
            (Action::Open, "open"),
        ],
        View::Usage => vec![
            (Action::Back, "board"),
            (Action::Right, "agent/bead/model"),
            (Action::Open, "open the bead"),
        ],
        // The pane says its own keys (text input takes the rest).
        View::Pair => Vec::new(),
    }
}

/// Footer lines the current message takes: wrapped at words to the width, at most
/// [`MESSAGE_LINES`]; what does not fit ends in a pointer to the whole text.
fn footer_message(app: &App, width: u16, now: Instant) -> Option<(bool, Vec<String>)> {
    let (error, text, at) = app.message.as_ref()?;
    if now.saturating_duration_since(*at) >= MESSAGE_TTL {
        return None;
    }
    let room = usize::from(width.saturating_sub(4)).max(10);
    let mut lines = crate::text::wrap(text, room);
    if lines.len() > MESSAGE_LINES {
        let more = format!(" … {} shows all", app.keys.hint(Action::Message));
        lines.truncate(MESSAGE_LINES);
        if let Some(last) = lines.last_mut() {
            let keep = room.saturating_sub(more.width());
            let cut = crate::text::wrap(last, keep.max(1));
            *last = format!("{}{more}", cut.first().cloned().unwrap_or_default());
        }
    }
    Some((*error, lines))
}

/// Lines a message may take in the footer.
const MESSAGE_LINES: usize = 3;

fn draw_message(f: &mut Frame<'_>, area: Rect, app: &App, error: bool, lines: Vec<String>) {
    let t = &app.theme;
    let style = if error {
        t.style(Role::Error)
    } else {
        t.style(Role::Success)
    };
    let mark = if error { "✗ " } else { "✓ " };
    let body: Vec<Line<'static>> = lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let lead = if i == 0 {
                format!(" {mark}")
            } else {
                "   ".to_owned()
            };
            Line::from(vec![Span::styled(lead, style), Span::styled(l, style)])
        })
        .collect();
    f.render_widget(Paragraph::new(body), area);
}

fn draw_footer(f: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &app.theme;
    let mut spans: Vec<Span<'static>> = vec![Span::raw(" ")];
    let mut width = 1usize;
    for (action, label) in hints(app) {
        let key = app.keys.hint(action);
        let piece = key.width() + label.width() + 3;
        if width + piece > area.width as usize {
            break;
        }
        spans.push(Span::styled(key, t.style(Role::Key)));
        spans.push(Span::styled(format!(" {label}  "), t.style(Role::Muted)));
        width += piece;
    }
    if let Some(err) = &app.live.last_error {
        let room = (area.width as usize).saturating_sub(width + 2);
        if room > 12 {
            spans.push(Span::styled(
                crate::text::fit_words(err, room),
                t.style(Role::Error),
            ));
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)).style(Style::new()), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_text_as_people_read_them() {
        assert_eq!(tokens(950), "950");
        assert_eq!(tokens(12_345), "12.3k");
        assert_eq!(tokens(118_000), "118k");
        assert_eq!(tokens(1_250_000), "1.2M");
        assert_eq!(elapsed(Duration::from_secs(134)), "2m14s");
        assert_eq!(elapsed(Duration::from_secs(7500)), "2h05m");
        assert_eq!(fit("Checkout total rounds", 10), "Checkout …");
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("日本語テキスト", 7), "日本語…");
    }
}
