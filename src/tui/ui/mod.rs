//! Drawing: the header (repository, branch, endpoint, agents, ready, spend), the current view,
//! the footer (the keys that matter here, or the last message), and any overlay. Pure
//! functions of the [`App`]; they never block.

pub(crate) mod board;
mod detail;
pub(crate) mod markdown;
mod overlays;
mod pair;
mod panes;

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

/// The board shows a strip of logs under it from this height of the main area.
const STRIP_FROM: u16 = 26;
const STRIP_HEIGHT: u16 = 8;

/// Draws the whole screen.
pub fn draw(f: &mut Frame<'_>, app: &App, now: Instant) {
    let [header, main, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_header(f, header, app);
    match app.view {
        View::Board if main.height >= STRIP_FROM => {
            let [top, strip] =
                Layout::vertical([Constraint::Fill(1), Constraint::Length(STRIP_HEIGHT)])
                    .areas(main);
            board::draw(f, top, app, now);
            panes::logs_strip(f, strip, app);
        }
        View::Board => board::draw(f, main, app, now),
        View::Detail => detail::draw(f, main, app),
        View::Logs => panes::logs(f, main, app),
        View::Agents => panes::agents(f, main, app, now),
        View::Decisions => panes::decisions(f, main, app),
        View::Usage => panes::usage(f, main, app),
        View::Pair => pair::draw(f, main, app),
    }
    draw_footer(f, footer, app, now);
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
    let mut spans = vec![
        Span::styled(" loom ", t.style(Role::Accent)),
        Span::raw(" "),
        Span::styled(app.repo.name.clone(), t.style(Role::Title)),
        Span::styled(format!("  {}", app.repo.branch), muted),
        Span::raw("  "),
        Span::styled(dot, health_style),
        Span::styled(format!(" {health}"), muted),
        Span::styled(format!("  {agents}"), muted),
        Span::styled(format!("  ready {}", app.board.ready), muted),
    ];
    if app.auto {
        spans.push(Span::styled("  auto", t.style(Role::Warning)));
    }
    let spend = &app.live.total;
    if spend.tokens > 0 {
        let cost = if spend.cost > 0.0 {
            format!("${:.2} · ", spend.cost)
        } else {
            String::new()
        };
        spans.push(Span::styled(
            format!("  {cost}{} tok", tokens(spend.tokens)),
            muted,
        ));
    }
    if !app.live.watcher_ok {
        spans.push(Span::styled("  watcher off", t.style(Role::Warning)));
    }
    let help = format!("{} help ", app.keys.hint(Action::Help));
    let used: usize = spans.iter().map(|s| s.content.width()).sum();
    let pad = (area.width as usize).saturating_sub(used + help.width());
    spans.push(Span::raw(" ".repeat(pad)));
    spans.push(Span::styled(help, t.style(Role::Key)));
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Key hints: (action, label).
fn hints(app: &App) -> Vec<(Action, &'static str)> {
    match app.view {
        View::Board => vec![
            (Action::Open, "open"),
            (Action::New, "new"),
            (Action::StartStop, "start"),
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
        View::Usage => vec![(Action::Back, "board")],
        // The pane says its own keys (text input takes the rest).
        View::Pair => Vec::new(),
    }
}

fn draw_footer(f: &mut Frame<'_>, area: Rect, app: &App, now: Instant) {
    let t = &app.theme;
    if let Some((error, text, at)) = &app.message
        && now.saturating_duration_since(*at) < MESSAGE_TTL
    {
        let style = if *error {
            t.style(Role::Error)
        } else {
            t.style(Role::Success)
        };
        let mark = if *error { "✗ " } else { "✓ " };
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(format!(" {mark}"), style),
                Span::styled(fit(text, area.width.saturating_sub(4) as usize), style),
            ])),
            area,
        );
        return;
    }
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
            spans.push(Span::styled(fit(err, room), t.style(Role::Error)));
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
