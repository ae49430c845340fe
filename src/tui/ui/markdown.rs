//! A bead's Markdown, rendered to styled lines: headings, emphasis, code, lists, quotes and
//! links as text (the terminal wraps it).

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use crate::tui::theme::{Role, Theme};

/// `text` as lines.
pub fn render(text: &str, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut current: Vec<Span<'static>> = Vec::new();
    let mut styles: Vec<Style> = vec![Style::new()];
    let mut list_depth: Vec<Option<u64>> = Vec::new();
    let mut in_code = false;
    let mut quote = 0usize;
    let flush = |lines: &mut Vec<Line<'static>>, current: &mut Vec<Span<'static>>, quote: usize| {
        if !current.is_empty() {
            let mut spans = Vec::new();
            if quote > 0 {
                spans.push(Span::styled("│ ".repeat(quote), theme.style(Role::Muted)));
            }
            spans.append(current);
            lines.push(Line::from(spans));
        }
    };
    let style_now = |styles: &Vec<Style>| styles.last().copied().unwrap_or_default();
    for ev in Parser::new_ext(
        text,
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS,
    ) {
        match ev {
            Event::Start(tag) => match tag {
                Tag::Heading { level, .. } => {
                    flush(&mut lines, &mut current, quote);
                    if !lines.is_empty() {
                        lines.push(Line::default());
                    }
                    let s = match level {
                        HeadingLevel::H1 | HeadingLevel::H2 => theme.style(Role::Accent),
                        _ => theme.style(Role::Title),
                    };
                    styles.push(s);
                }
                Tag::Paragraph => flush(&mut lines, &mut current, quote),
                Tag::Emphasis => styles.push(style_now(&styles).add_modifier(Modifier::ITALIC)),
                Tag::Strong => styles.push(style_now(&styles).add_modifier(Modifier::BOLD)),
                Tag::Strikethrough => {
                    styles.push(style_now(&styles).add_modifier(Modifier::CROSSED_OUT))
                }
                Tag::Link { .. } => {
                    styles.push(style_now(&styles).add_modifier(Modifier::UNDERLINED))
                }
                Tag::CodeBlock(kind) => {
                    flush(&mut lines, &mut current, quote);
                    in_code = true;
                    if let CodeBlockKind::Fenced(lang) = kind
                        && !lang.is_empty()
                    {
                        lines.push(Line::styled(
                            format!("  ┌ {lang}"),
                            theme.style(Role::Muted),
                        ));
                    }
                }
                Tag::List(start) => {
                    flush(&mut lines, &mut current, quote);
                    list_depth.push(start);
                }
                Tag::Item => {
                    flush(&mut lines, &mut current, quote);
                    let indent = "  ".repeat(list_depth.len().saturating_sub(1));
                    let bullet = match list_depth.last_mut() {
                        Some(Some(n)) => {
                            let b = format!("{indent}{n}. ");
                            *n += 1;
                            b
                        }
                        _ => format!("{indent}• "),
                    };
                    current.push(Span::styled(bullet, theme.style(Role::Muted)));
                }
                Tag::BlockQuote(_) => {
                    flush(&mut lines, &mut current, quote);
                    quote += 1;
                }
                _ => {}
            },
            Event::End(tag) => match tag {
                TagEnd::Heading(_) => {
                    flush(&mut lines, &mut current, quote);
                    styles.pop();
                }
                TagEnd::Paragraph => {
                    flush(&mut lines, &mut current, quote);
                    if list_depth.is_empty() {
                        lines.push(Line::default());
                    }
                }
                TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough | TagEnd::Link => {
                    styles.pop();
                }
                TagEnd::CodeBlock => {
                    in_code = false;
                    lines.push(Line::default());
                }
                TagEnd::List(_) => {
                    flush(&mut lines, &mut current, quote);
                    list_depth.pop();
                    if list_depth.is_empty() {
                        lines.push(Line::default());
                    }
                }
                TagEnd::Item => flush(&mut lines, &mut current, quote),
                TagEnd::BlockQuote(_) => {
                    flush(&mut lines, &mut current, quote);
                    quote = quote.saturating_sub(1);
                }
                _ => {}
            },
            Event::Text(t) if in_code => {
                for l in t.lines() {
                    lines.push(Line::styled(format!("  │ {l}"), theme.style(Role::Key)));
                }
            }
            Event::Text(t) => current.push(Span::styled(t.into_string(), style_now(&styles))),
            Event::Code(c) => current.push(Span::styled(c.into_string(), theme.style(Role::Key))),
            Event::SoftBreak => current.push(Span::raw(" ")),
            Event::HardBreak => flush(&mut lines, &mut current, quote),
            Event::TaskListMarker(done) => {
                current.push(Span::raw(if done { "[x] " } else { "[ ] " }))
            }
            Event::Rule => {
                flush(&mut lines, &mut current, quote);
                lines.push(Line::styled("────────", theme.style(Role::Muted)));
            }
            Event::Html(h) | Event::InlineHtml(h) => current.push(Span::raw(h.into_string())),
            _ => {}
        }
    }
    flush(&mut lines, &mut current, quote);
    while lines.last().is_some_and(|l| l.width() == 0) {
        lines.pop();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(lines: &[Line<'_>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    #[test]
    fn renders_the_common_shapes() {
        let md = "# Title\n\nSome *em* and **strong** and `code`.\n\n- one\n- two\n  1. nested\n\n```sh\nmake test\n```\n\n> quoted\n";
        let lines = render(md, &Theme::default_theme());
        let text = plain(&lines);
        assert_eq!(text[0], "Title");
        assert!(
            text.contains(&"Some em and strong and code.".to_owned()),
            "{text:?}"
        );
        assert!(text.contains(&"• one".to_owned()));
        assert!(text.contains(&"  1. nested".to_owned()), "{text:?}");
        assert!(text.contains(&"  │ make test".to_owned()));
        assert!(text.contains(&"│ quoted".to_owned()), "{text:?}");
        assert!(render("", &Theme::default_theme()).is_empty());
    }
}
