//! The Work view: a line of section tabs (diff with its file and line counts, tests with
//! their verdict, transcript with its steps), then the section. The diff shows one file at a
//! time, `+`/`-` lines coloured (and marked, so colour is not needed); tests show their output
//! ending at the cursor (the end first: that is where failures are); the transcript shows what
//! the agent said in full and each tool call folded to a line. Only the lines on screen are
//! built, so a 5,000-line diff draws as fast as a short one.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::fit;
use crate::text::wrap;
use crate::tui::app::App;
use crate::tui::theme::{Role, Theme};
use crate::tui::work::{DiffKind, Section, Step, Tone, Work, WorkView};

pub fn draw(f: &mut Frame<'_>, area: Rect, app: &App) {
    let t = &app.theme;
    let v = &app.work;
    let source = v.loaded().map(|w| w.source.as_str()).unwrap_or("loading…");
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.style(Role::BorderFocus))
        .title(Line::from(vec![
            Span::styled(format!(" Work · {} ", v.id), t.style(Role::Title)),
            Span::styled(
                fit(
                    &format!("· {source} "),
                    area.width.saturating_sub(14) as usize,
                ),
                t.style(Role::Muted),
            ),
        ]));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(w) = v.loaded() else {
        f.render_widget(
            Paragraph::new(Line::styled(
                "reading git and the run logs…",
                t.style(Role::Muted),
            )),
            inner,
        );
        return;
    };
    let [tabs, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
    f.render_widget(Paragraph::new(tab_line(t, v, w, tabs.width)), tabs);
    let lines = match v.section {
        Section::Diff => diff(t, v, w, body),
        Section::Tests => tests(t, v, w, body),
        Section::Transcript => transcript(t, v, w, body),
    };
    f.render_widget(Paragraph::new(lines), body);
}

fn tab_line(t: &Theme, v: &WorkView, w: &Work, width: u16) -> Line<'static> {
    let (added, removed) = w
        .files
        .iter()
        .fold((0, 0), |(a, r), f| (a + f.added, r + f.removed));
    let tests = match &w.tests {
        None => "no test run".to_owned(),
        Some(r) if r.passed => "passed".to_owned(),
        Some(r) => format!(
            "failed, exit {}",
            r.exit_code.map_or("?".into(), |c| c.to_string())
        ),
    };
    let label = |s: Section| match s {
        Section::Diff => format!("Diff {} files +{added} −{removed}", w.files.len()),
        Section::Tests => format!("Tests {tests}"),
        Section::Transcript => format!("Transcript {} steps", w.steps.len()),
    };
    let mut spans = Vec::new();
    for s in Section::ALL {
        let text = label(s);
        if s == v.section {
            spans.push(Span::styled(format!("[{text}]"), t.style(Role::Selection)));
        } else {
            let role = match (s, &w.tests) {
                (Section::Tests, Some(r)) if !r.passed => Role::Error,
                _ => Role::Muted,
            };
            spans.push(Span::styled(format!(" {text} "), t.style(role)));
        }
        spans.push(Span::raw(" "));
    }
    let used: usize = spans.iter().map(|s| s.width()).sum();
    let keys = "←/→ switch";
    if used + keys.len() < width as usize {
        spans.push(Span::styled(keys, t.style(Role::Muted)));
    }
    Line::from(spans)
}

/// A message in place of an empty section.
fn empty(t: &Theme, text: &str) -> Vec<Line<'static>> {
    vec![Line::styled(text.to_owned(), t.style(Role::Muted))]
}

fn diff(t: &Theme, v: &WorkView, w: &Work, area: Rect) -> Vec<Line<'static>> {
    let Some(file) = w.files.get(v.file) else {
        return empty(t, &format!("No diff: {}.", w.source));
    };
    let width = area.width as usize;
    let mut out = vec![Line::from(vec![
        Span::styled(
            fit(&file.path, width.saturating_sub(24)),
            t.style(Role::Accent),
        ),
        Span::styled(
            format!("  +{} −{}  ", file.added, file.removed),
            t.style(Role::Muted),
        ),
        Span::styled(
            format!("file {}/{} · [ ]", v.file + 1, w.files.len()),
            t.style(Role::Muted),
        ),
    ])];
    let rows = (area.height as usize).saturating_sub(1);
    for l in file.lines.iter().skip(v.scroll).take(rows) {
        let (mark, role) = match l.kind {
            DiffKind::Added => ("+", Role::Success),
            DiffKind::Removed => ("-", Role::Error),
            DiffKind::Context => (" ", Role::Text),
            DiffKind::Hunk => ("", Role::Accent),
            DiffKind::Meta => ("", Role::Muted),
        };
        if l.tones.is_empty() {
            out.push(Line::styled(
                fit(&format!("{mark}{}", l.text), width),
                t.style(role),
            ));
        } else {
            out.push(coloured(t, mark, role, &l.text, &l.tones, width));
        }
    }
    out
}

/// A code line: its `+`/`-` mark in the diff's colour, the code in its syntax's, cut to
/// `width`.
fn coloured(
    t: &Theme,
    mark: &'static str,
    role: Role,
    text: &str,
    tones: &[(usize, Tone)],
    width: usize,
) -> Line<'static> {
    let mut spans = vec![Span::styled(mark, t.style(role))];
    let mut room = width.saturating_sub(1);
    let mut from = 0;
    for &(end, tone) in tones {
        let Some(part) = text.get(from..end) else {
            break;
        };
        from = end;
        if room == 0 {
            break;
        }
        let shown = fit(part, room);
        room = room.saturating_sub(unicode_width::UnicodeWidthStr::width(shown.as_str()));
        let style = match tone {
            Tone::Plain => t.style(Role::Text),
            Tone::Keyword => t.style(Role::Accent),
            Tone::Str => t.style(Role::Success),
            Tone::Comment => t.style(Role::Muted),
            Tone::Number => t.style(Role::Warning),
            Tone::Type => t.style(Role::Title),
            Tone::Function => t.style(Role::Agent),
        };
        spans.push(Span::styled(shown, style));
    }
    Line::from(spans)
}

fn tests(t: &Theme, v: &WorkView, w: &Work, area: Rect) -> Vec<Line<'static>> {
    let Some(r) = &w.tests else {
        return empty(
            t,
            "No test run recorded for this bead (tests run after an agent's changes).",
        );
    };
    let width = area.width as usize;
    let verdict = if r.passed { "passed" } else { "failed" };
    let mut out = vec![Line::from(vec![
        Span::styled(
            format!("{verdict} "),
            t.style(if r.passed { Role::Success } else { Role::Error }),
        ),
        Span::styled(
            fit(
                &format!(
                    "`{}` · exit {} · round {}",
                    r.command,
                    r.exit_code.map_or("?".into(), |c| c.to_string()),
                    r.round
                ),
                width.saturating_sub(8),
            ),
            t.style(Role::Muted),
        ),
    ])];
    let rows = (area.height as usize).saturating_sub(1);
    // The output up to the cursor line, a screenful.
    let end = (v.scroll + 1).min(r.output.len());
    let start = end.saturating_sub(rows);
    for line in &r.output[start..end] {
        let lower = line.to_lowercase();
        let role = if lower.contains("fail") || lower.contains("error") || lower.contains("panic") {
            Role::Error
        } else {
            Role::Text
        };
        out.push(Line::styled(fit(line, width), t.style(role)));
    }
    out
}

fn transcript(t: &Theme, v: &WorkView, w: &Work, area: Rect) -> Vec<Line<'static>> {
    if w.steps.is_empty() {
        return empty(t, "No transcript: no run log mentions this bead.");
    }
    let width = (area.width as usize).max(20);
    let rows = area.height as usize;
    // Lines of each step from the selected one back, until the screen is full; then the
    // steps after it.
    let render = |i: usize, s: &Step| -> Vec<Line<'static>> {
        let selected = i == v.scroll;
        let bar = Span::styled(if selected { "▌" } else { " " }, t.style(Role::Accent));
        let mut lines: Vec<Line<'static>> = match s {
            Step::Said { who, text } => {
                let mut out = Vec::new();
                for (n, l) in wrap(text.trim(), width.saturating_sub(12))
                    .into_iter()
                    .enumerate()
                {
                    let head = if n == 0 { fit(who, 10) } else { String::new() };
                    out.push(Line::from(vec![
                        bar.clone(),
                        Span::styled(format!("{head:<10} "), t.style(Role::Agent)),
                        Span::raw(l),
                    ]));
                }
                out
            }
            Step::Tool {
                who,
                tool,
                arguments,
                ok,
                summary,
            } => {
                let (mark, role) = match ok {
                    Some(true) => ("✓", Role::Success),
                    Some(false) => ("✗", Role::Error),
                    None => ("…", Role::Muted),
                };
                let folded = arguments.split_whitespace().collect::<Vec<_>>().join(" ");
                let mut out = vec![Line::from(vec![
                    bar.clone(),
                    Span::styled(format!("{:<10} ", fit(who, 10)), t.style(Role::Muted)),
                    Span::styled(format!("{mark} {tool} "), t.style(role)),
                    Span::styled(
                        fit(
                            &format!("{folded}  {summary}"),
                            width.saturating_sub(14 + tool.len()),
                        ),
                        t.style(Role::Muted),
                    ),
                ])];
                if v.open.contains(&i) {
                    for l in arguments.lines().chain(summary.lines()) {
                        out.push(Line::from(vec![
                            Span::raw(" ".repeat(13)),
                            Span::raw(fit(l, width.saturating_sub(13))),
                        ]));
                    }
                }
                out
            }
            Step::Note { text } => vec![Line::from(vec![
                bar.clone(),
                Span::styled(
                    fit(&format!("── {text}"), width.saturating_sub(1)),
                    t.style(Role::Muted),
                ),
            ])],
        };
        if selected && let Some(first) = lines.first_mut() {
            *first = first.clone().style(t.style(Role::Selection));
        }
        lines
    };
    let mut before: Vec<Line<'static>> = Vec::new();
    for i in (0..=v.scroll.min(w.steps.len() - 1)).rev() {
        let mut l = render(i, &w.steps[i]);
        l.append(&mut before);
        before = l;
        if before.len() >= rows {
            break;
        }
    }
    // Keep the selected step's first line on screen.
    let selected_lines = render(
        v.scroll.min(w.steps.len() - 1),
        &w.steps[v.scroll.min(w.steps.len() - 1)],
    )
    .len();
    let keep_from = before.len().saturating_sub(rows.max(selected_lines));
    let mut out: Vec<Line<'static>> = before.split_off(keep_from);
    for (i, s) in w.steps.iter().enumerate().skip(v.scroll + 1) {
        if out.len() >= rows {
            break;
        }
        out.extend(render(i, s));
    }
    out.truncate(rows);
    out
}
