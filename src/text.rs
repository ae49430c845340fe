//! Text for terminals: measured in columns (wide characters count two), folded to one line,
//! times shortened to the clock — for tables, logs and the TUI — and made inert: control
//! characters from data (C0, C1, escape sequences, bidi overrides) shown as visible marks, or
//! stripped from commit subjects.

use unicode_width::UnicodeWidthStr;

/// `s` cut to `width` columns, with `…` when cut.
/// `n` and `noun`, the noun in the plural unless `n` is 1: `1 round`, `2 rounds`.
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `text` word-wrapped to `width` columns: its own line breaks kept, words longer than a line
/// broken, never a word cut elsewhere.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    // Ids and paths keep their hyphens: lines break at spaces only (a word longer than the
    // line is broken).
    let options =
        textwrap::Options::new(width.max(1)).word_splitter(textwrap::WordSplitter::NoHyphenation);
    text.lines()
        .flat_map(|l| {
            let out: Vec<String> = textwrap::wrap(l, &options)
                .into_iter()
                .map(|c| c.into_owned())
                .collect();
            if out.is_empty() {
                vec![String::new()]
            } else {
                out
            }
        })
        .collect()
}

/// `s` on one line of `width` columns, cut at a word boundary with `…` when it is longer.
pub fn fit_words(s: &str, width: usize) -> String {
    if UnicodeWidthStr::width(s) <= width {
        return s.to_owned();
    }
    let first = wrap(&one_line(s, usize::MAX), width.saturating_sub(1).max(1));
    format!(
        "{}…",
        first.first().map(String::as_str).unwrap_or("").trim_end()
    )
}

pub fn fit(s: &str, width: usize) -> String {
    if UnicodeWidthStr::width(s) <= width {
        return s.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

/// `s` on one line (runs of whitespace, newlines included, become one space), cut to `max`
/// characters with `…` when cut.
pub fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

/// The `HH:MM:SS` of an RFC 3339 time (the text itself when it is not one).
pub fn clock(at: &str) -> &str {
    at.get(11..19).unwrap_or(at)
}

/// The last `max` bytes of `text` (on a character boundary), marked when cut.
pub fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[… {} bytes before]\n{}", start, &text[start..])
}

/// At most `max` bytes of `text` (on a character boundary), with a note of what was cut.
pub fn fit_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}\n… [{} more bytes]", &text[..cut], text.len() - cut)
}

/// Whether `c` is a character that changes how a terminal shows what follows: C0 controls
/// (newline and tab aside), DEL, C1 controls, and the bidirectional overrides and isolates.
pub fn is_unsafe_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// How an unsafe character is shown: C0 controls as their Unicode control pictures (`␛` for
/// ESC, `␍` for a carriage return), the rest as `<U+XXXX>`.
pub fn visible_char(c: char, out: &mut String) {
    match c as u32 {
        n @ 0..=0x1f => out.push(char::from_u32(0x2400 + n).unwrap_or('?')),
        0x7f => out.push('␡'),
        n => out.push_str(&format!("<U+{n:04X}>")),
    }
}

/// `s` with every unsafe character (see [`is_unsafe_char`]) shown visibly: safe to print on a
/// terminal whatever a bead, a commit or a model put in it.
pub fn inert(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(is_unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe_char(c) {
            visible_char(c, &mut out);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `s` without unsafe characters (for commit messages; newlines and tabs stay).
pub fn strip_unsafe(s: &str) -> String {
    s.chars().filter(|c| !is_unsafe_char(*c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_or_go() {
        let evil = "a\u{1b}]52;c;Zm9v\u{7}b\r\u{9b}2J\u{202e}txt.exe";
        assert_eq!(inert(evil), "a␛]52;c;Zm9v␇b␍<U+009B>2J<U+202E>txt.exe");
        assert_eq!(inert("plain\ttext\nnext"), "plain\ttext\nnext");
        assert!(matches!(inert("ok"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(strip_unsafe("fix \u{1b}[31mred\u{7}"), "fix [31mred");
    }

    #[test]
    fn one_line_and_clock() {
        assert_eq!(one_line("a  b\n\tc", 10), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(clock("2026-11-21T10:41:07.123Z"), "10:41:07");
        assert_eq!(clock("soon"), "soon");
    }
}
