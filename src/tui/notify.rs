//! Telling a person a decision waits, when their eyes are elsewhere: the terminal bell and,
//! with `tui.notify: true`, a desktop notification by escape sequence (OSC 9, understood by
//! iTerm2, kitty, WezTerm, Windows Terminal, foot; and OSC 777, by VTE terminals and urxvt).
//! The text comes from beads (a model may have written it): it is stripped of every control
//! character so nothing in it can end the sequence early or start another.

/// How this window tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// Ring the bell (`tui.bell`, default on).
    pub bell: bool,
    /// Send a desktop notification (`tui.notify`, default off).
    pub desktop: bool,
}

impl Default for Style {
    fn default() -> Style {
        Style {
            bell: true,
            desktop: false,
        }
    }
}

/// Longest text put in a notification (characters).
const MAX: usize = 200;

/// `s` safe inside an OSC string: no control characters, no `;` (OSC 777's separator), short.
fn clean(s: &str) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() || c == ';' { ' ' } else { c })
        .collect();
    let words: Vec<&str> = one.split_whitespace().collect();
    let joined = words.join(" ");
    match joined.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &joined[..i]),
        None => joined,
    }
}

/// The bytes that tell of `title`/`body` in `style` (empty: nothing to send).
pub fn sequences(style: Style, title: &str, body: &str) -> String {
    let mut out = String::new();
    if style.desktop {
        let (t, b) = (clean(title), clean(body));
        out.push_str(&format!("\x1b]9;{t}: {b}\x07"));
        out.push_str(&format!("\x1b]777;notify;{t};{b}\x07"));
    }
    if style.bell {
        out.push('\x07');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bell_by_default_desktop_when_asked() {
        assert_eq!(sequences(Style::default(), "Loom", "x"), "\x07");
        let both = Style {
            bell: true,
            desktop: true,
        };
        assert_eq!(
            sequences(both, "Loom: decision", "Which way?"),
            "\x1b]9;Loom: decision: Which way?\x07\x1b]777;notify;Loom: decision;Which way?\x07\x07"
        );
        let none = Style {
            bell: false,
            desktop: false,
        };
        assert!(sequences(none, "a", "b").is_empty());
    }

    #[test]
    fn text_from_beads_cannot_break_out_of_the_sequence() {
        let hostile = "ok\x07\x1b]52;c;ZXZpbA==\x07\x1b[2J; rm -rf";
        let s = sequences(
            Style {
                bell: false,
                desktop: true,
            },
            "t",
            hostile,
        );
        assert_eq!(
            s.matches('\x1b').count(),
            2,
            "only our two sequences: {s:?}"
        );
        assert_eq!(s.matches('\x07').count(), 2, "{s:?}");
        let long = "w ".repeat(500);
        assert!(clean(&long).chars().count() <= MAX + 1);
    }
}
