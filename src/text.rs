//! Text for terminals: measured in columns (wide characters count two), folded to one line,
//! times shortened to the clock — for tables, logs and the TUI.

use unicode_width::UnicodeWidthStr;

/// `s` cut to `width` columns, with `…` when cut.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_and_clock() {
        assert_eq!(one_line("a  b\n\tc", 10), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(clock("2026-11-21T10:41:07.123Z"), "10:41:07");
        assert_eq!(clock("soon"), "soon");
    }
}
