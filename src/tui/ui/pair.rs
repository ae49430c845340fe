//! The pair pane: the conversation (who said what, the reply as it streams, tool actions with
//! their diff and the question `apply? [y]es [n]o [a]lways`), then the input box.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::fit;
use super::markdown;
use crate::tui::app::App;
use crate::tui::pair::{Entry, PairView, Phase, ToolState};
use crate::tui::theme::{Role, Theme};

/// Width of the speaker column.
const GUTTER: usize = 8;
/// Widest a tool box gets (inside).
const BOX_WIDTH: usize = 96;
/// Most rows the input grows to.
const INPUT_ROWS: u16 = 6;

pub fn draw(f: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &app.theme;
    let Some(p) = &app.pair else { return };
    let mut tail = Vec::new();
    if let Some(persona) = &p.persona {
        tail.push(Span::styled(format!(" · {persona}"), t.style(Role::Agent)));
    }
    if let Some(branch) = &p.branch {
        tail.push(Span::styled(
            format!(" · worktree {branch}"),
            t.style(Role::Muted),
        ));
    }
    if p.always {
        tail.push(Span::styled(" · edits allowed", t.style(Role::Warning)));
    }
    let head = format!(" Pair · {} ", p.bead);
    let fixed = head.width() + tail.iter().map(|s| s.content.width()).sum::<usize>() + 5;
    let room = (area.width as usize).saturating_sub(fixed);
    let mut title = vec![
        Span::styled(head, t.style(Role::Title)),
        Span::styled(fit(&p.title, room.max(8)), t.style(Role::Title)),
    ];
    title.append(&mut tail);
    title.push(Span::raw(" "));
    let hint = match p.phase {
        Phase::Asking => " y apply · n skip · a always this session · ctrl+c stop reply ",
        Phase::Replying => " ctrl+c stop reply · pgup/pgdn scroll · esc back (the reply goes on) ",
        _ => " enter send · shift+enter newline · tab persona · esc back · f1 help ",
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.style(Role::BorderFocus))
        .title(Line::from(fitted(
            title,
            area.width.saturating_sub(4) as usize,
        )))
        .title_bottom(Span::styled(
            fit(hint, area.width.saturating_sub(4) as usize),
            t.style(Role::Muted),
        ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let rows = (p.input.lines().len() as u16).clamp(1, INPUT_ROWS);
    let [talk, rule, input] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(rows),
    ])
    .areas(inner);
    let talk = talk.inner(ratatui::layout::Margin::new(1, 0));
    let height = talk.height as usize;
    // Only what can be seen is laid out: entries from the end until the screen (and the
    // scroll) is filled.
    let (lines, all) = transcript(p, t, talk.width as usize, height + p.scroll);
    let len = lines.len();
    let scroll = p.scroll.min(len.saturating_sub(height));
    p.max_scroll.set(if all {
        len.saturating_sub(height)
    } else {
        usize::MAX
    });
    let end = len - scroll;
    let start = end.saturating_sub(height);
    f.render_widget(Paragraph::new(lines[start..end].to_vec()), talk);
    let above = start > 0 || !all;
    let more = match (above, len - end) {
        (false, 0) => None,
        (true, 0) => Some(" ↑ more (pgup) ".to_owned()),
        (false, n) => Some(format!(" ↓ {n} more (pgdn) ")),
        (true, n) => Some(format!(" ↑ more · ↓ {n} more ")),
    };
    if let Some(more) = more {
        let w = more.width() as u16;
        if talk.width > w {
            let r = Rect::new(talk.x + talk.width - w, talk.y, w, 1);
            f.render_widget(Paragraph::new(Span::styled(more, t.style(Role::Muted))), r);
        }
    }
    // The rule joins the frame: ├───┤.
    let joint = Rect::new(area.x, rule.y, area.width, 1);
    f.render_widget(
        Paragraph::new(Span::styled(
            format!("├{}┤", "─".repeat(area.width.saturating_sub(2) as usize)),
            t.style(Role::BorderFocus),
        )),
        joint,
    );
    let [prompt, text] = Layout::horizontal([Constraint::Length(2), Constraint::Fill(1)])
        .areas(input.inner(ratatui::layout::Margin::new(1, 0)));
    let ready = p.phase == Phase::Ready;
    f.render_widget(
        Paragraph::new(Span::styled(
            "> ",
            t.style(if ready { Role::Accent } else { Role::Muted }),
        )),
        prompt,
    );
    f.render_widget(&p.input, text);
}

/// Spans cut to `width` columns.
fn fitted(spans: Vec<Span<'static>>, width: usize) -> Vec<Span<'static>> {
    let mut used = 0;
    let mut out = Vec::new();
    for s in spans {
        let w = s.content.width();
        if used + w > width {
            let room = width.saturating_sub(used);
            if room > 1 {
                out.push(Span::styled(fit(&s.content, room), s.style));
            }
            break;
        }
        used += w;
        out.push(s);
    }
    out
}

/// The end of the conversation as lines `width` wide: at least `rows` of them when there are
/// that many; and whether that is all of it.
fn transcript(p: &PairView, t: &Theme, width: usize, rows: usize) -> (Vec<Line<'static>>, bool) {
    let body = width.saturating_sub(GUTTER).max(10);
    let tail = status(p, t);
    let mut blocks: Vec<Vec<Line<'static>>> = Vec::new();
    let mut count = tail.len();
    let mut first = p.entries.len();
    while first > 0 && count < rows {
        first -= 1;
        let block = entry_lines(p, first, t, body);
        count += block.len();
        blocks.push(block);
    }
    let mut out = Vec::with_capacity(count);
    for b in blocks.into_iter().rev() {
        out.extend(b);
    }
    out.extend(tail);
    (out, first == 0)
}

/// Who spoke last before entry `i` (you or a persona), if anyone.
fn speaker_before(p: &PairView, i: usize) -> Option<&str> {
    p.entries[..i].iter().rev().find_map(|e| match e {
        Entry::You(_) => Some("you"),
        Entry::Agent { who, .. } => Some(who.as_str()),
        _ => None,
    })
}

/// Entry `i` as lines (with the blank line that separates speakers).
fn entry_lines(p: &PairView, i: usize, t: &Theme, body: usize) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let Some(e) = p.entries.get(i) else {
        return out;
    };
    match e {
        Entry::You(text) => {
            if i > 0 {
                out.push(Line::default());
            }
            let lines: Vec<Line<'static>> = text.lines().map(|l| Line::raw(l.to_owned())).collect();
            speak(&mut out, "you", t.style(Role::You), &lines, body);
        }
        Entry::Agent { who, text } => {
            let same = speaker_before(p, i) == Some(who.as_str());
            if i > 0 && !same {
                out.push(Line::default());
            }
            let name = if same { "" } else { who.as_str() };
            speak(
                &mut out,
                name,
                t.style(Role::Agent),
                &markdown::render(text, t),
                body,
            );
        }
        Entry::Tool {
            title,
            preview,
            state,
        } => tool(&mut out, t, title, preview, state, body),
        Entry::Note { error, text } => {
            let (mark, role) = if *error {
                ("✗ ", Role::Error)
            } else {
                ("— ", Role::Muted)
            };
            let line = Line::from(Span::styled(format!("{mark}{text}"), t.style(role)));
            speak(&mut out, "", Style::new(), &[line], body);
        }
    }
    out
}

/// What the pane is doing, under the conversation.
fn status(p: &PairView, t: &Theme) -> Vec<Line<'static>> {
    let line = match p.phase {
        Phase::Opening => "opening the bead's worktree…".to_owned(),
        Phase::Replying => {
            let who = p.persona.as_deref().unwrap_or("agent");
            let doing = if p.writing() { "writing" } else { "working" };
            format!("{}{who} is {doing}…", " ".repeat(GUTTER))
        }
        Phase::Ready if p.entries.is_empty() => "Ask about this bead: the agent reads its worktree, and asks before it edits or runs anything.".to_owned(),
        _ => return Vec::new(),
    };
    vec![Line::styled(line, t.style(Role::Muted))]
}

/// `lines` wrapped to `body` columns after a gutter naming the speaker on the first line.
fn speak(
    out: &mut Vec<Line<'static>>,
    who: &str,
    style: Style,
    lines: &[Line<'static>],
    body: usize,
) {
    let mut first = true;
    for line in lines {
        for piece in wrap(line, body) {
            let name = if first {
                fit(who, GUTTER - 1)
            } else {
                String::new()
            };
            first = false;
            let mut spans = vec![Span::styled(format!("{name:<GUTTER$}"), style)];
            spans.extend(piece.spans);
            out.push(Line::from(spans));
        }
    }
}

/// A tool action: a box with its diff and the question while it asks, then one line.
fn tool(
    out: &mut Vec<Line<'static>>,
    t: &Theme,
    title: &str,
    preview: &[String],
    state: &ToolState,
    body: usize,
) {
    let pad = " ".repeat(GUTTER);
    match state {
        ToolState::Running => out.push(Line::from(vec![
            Span::raw(pad),
            Span::styled(
                format!("⚙ {}", fit(title, body.saturating_sub(2))),
                t.style(Role::Muted),
            ),
        ])),
        ToolState::Done { ok, summary } => {
            let (mark, role) = if *ok {
                ("▸ ", Role::Muted)
            } else {
                ("✗ ", Role::Warning)
            };
            out.push(Line::from(vec![
                Span::raw(pad),
                Span::styled(
                    format!("{mark}{}", fit(summary, body.saturating_sub(2))),
                    t.style(role),
                ),
            ]));
        }
        ToolState::Asking => {
            let inner = body.saturating_sub(4).clamp(6, BOX_WIDTH);
            let border = t.style(Role::Warning);
            let rule = |left: &str, right: &str, text: &str| {
                let text = fit(text, inner);
                let fill = inner.saturating_sub(text.width());
                format!("{left} {text} {}{right}", "─".repeat(fill))
            };
            out.push(Line::from(vec![
                Span::raw(pad.clone()),
                Span::styled(rule("┌", "┐", title), border),
            ]));
            for l in preview {
                let role = match l.chars().next() {
                    Some('-') => Role::Error,
                    Some('+') => Role::Success,
                    Some('$') => Role::Accent,
                    _ => Role::Muted,
                };
                let text = fit(l, inner);
                let fill = inner.saturating_sub(text.width());
                out.push(Line::from(vec![
                    Span::raw(pad.clone()),
                    Span::styled("│ ", border),
                    Span::styled(text, t.style(role)),
                    Span::raw(" ".repeat(fill)),
                    Span::styled(" │", border),
                ]));
            }
            out.push(Line::from(vec![
                Span::raw(pad),
                Span::styled(
                    rule("└", "┘", "apply? [y]es  [n]o  [a]lways this session"),
                    border,
                ),
            ]));
        }
    }
}

/// `line` cut into pieces at most `width` columns wide, at a space where one is near.
fn wrap(line: &Line<'static>, width: usize) -> Vec<Line<'static>> {
    let cells: Vec<(char, Style)> = line
        .spans
        .iter()
        .flat_map(|s| {
            let style = line.style.patch(s.style);
            s.content.chars().map(move |c| (c, style))
        })
        .collect();
    if cells.is_empty() {
        return vec![Line::default()];
    }
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < cells.len() {
        let mut w = 0;
        let mut end = start;
        while end < cells.len() {
            let cw = cells[end].0.width().unwrap_or(0);
            if w + cw > width {
                break;
            }
            w += cw;
            end += 1;
        }
        if end == start {
            end = start + 1;
        }
        if end < cells.len() {
            // Break after the last space in the second half of the piece.
            if let Some(space) = (start + (end - start) / 2..end)
                .rev()
                .find(|&i| cells[i].0 == ' ')
            {
                end = space + 1;
            }
        }
        pieces.push(to_line(&cells[start..end]));
        start = end;
    }
    pieces
}

fn to_line(cells: &[(char, Style)]) -> Line<'static> {
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut text = String::new();
    let mut style = cells.first().map(|c| c.1).unwrap_or_default();
    for &(c, s) in cells {
        if s != style && !text.is_empty() {
            spans.push(Span::styled(std::mem::take(&mut text), style));
        }
        style = s;
        text.push(c);
    }
    let trimmed = text.trim_end().to_owned();
    if !trimmed.is_empty() {
        spans.push(Span::styled(trimmed, style));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(l: &Line<'_>) -> String {
        l.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn wraps_at_spaces_and_keeps_styles() {
        let line = Line::from(vec![
            Span::raw("round the "),
            Span::styled("amount", Style::new().bold()),
            Span::raw(" to minor units"),
        ]);
        let pieces: Vec<String> = wrap(&line, 12).iter().map(text).collect();
        assert_eq!(pieces, ["round the", "amount to", "minor units"]);
        assert!(
            wrap(&line, 12)[1].spans[0]
                .style
                .add_modifier
                .contains(ratatui::style::Modifier::BOLD)
        );
        let long: Vec<String> = wrap(&Line::raw("abcdefghij"), 4).iter().map(text).collect();
        assert_eq!(long, ["abcd", "efgh", "ij"]);
        assert_eq!(wrap(&Line::default(), 5).len(), 1);
        assert_eq!(
            wrap(&Line::raw("日本語"), 4)
                .iter()
                .map(text)
                .collect::<Vec<_>>(),
            ["日本", "語"]
        );
    }
}
