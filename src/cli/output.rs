//! Human and JSON output: colour only when stdout is a terminal (and `NO_COLOR` is unset),
//! aligned columns measured in display width, and JSON in bd's shapes.

use std::io::{self, IsTerminal, Write};

use crossterm::style::{Color, Stylize};
use serde::Serialize;
use unicode_width::UnicodeWidthStr;

use crate::bead::Bead;
use crate::bead::json::write_go_json;
use crate::error::{Error, Result};

/// `--color`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stdout is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    Always,
    Never,
}

/// Decides and applies colour.
#[derive(Clone, Copy, Debug)]
pub struct Painter {
    pub color: bool,
}

impl Painter {
    /// For stdout.
    pub fn new(choice: ColorChoice) -> Painter {
        Self::for_stream(choice, io::stdout().is_terminal())
    }

    /// For stderr (progress lines).
    pub fn for_stderr(choice: ColorChoice) -> Painter {
        Self::for_stream(choice, io::stderr().is_terminal())
    }

    fn for_stream(choice: ColorChoice, terminal: bool) -> Painter {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                terminal
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var("TERM").map_or(true, |t| t != "dumb")
            }
        };
        Painter { color }
    }

    // Painted text is often data (a title, an id): it is made inert first, so the only
    // escape sequences in a painted string are the painter's own.
    pub fn paint(&self, text: &str, color: Color) -> String {
        let text = crate::text::inert(text);
        if self.color {
            text.with(color).to_string()
        } else {
            text.into_owned()
        }
    }

    pub fn dim(&self, text: &str) -> String {
        let text = crate::text::inert(text);
        if self.color {
            text.dim().to_string()
        } else {
            text.into_owned()
        }
    }

    pub fn bold(&self, text: &str) -> String {
        let text = crate::text::inert(text);
        if self.color {
            text.bold().to_string()
        } else {
            text.into_owned()
        }
    }

    /// `P0`…`P4`, coloured by urgency.
    pub fn priority(&self, p: i64) -> String {
        let text = format!("P{p}");
        match p {
            0 => self.paint(&text, Color::Red),
            1 => self.paint(&text, Color::Yellow),
            2 => text,
            _ => self.dim(&text),
        }
    }

    /// A status, coloured by meaning.
    pub fn status(&self, s: &str) -> String {
        let s = &crate::text::inert(s);
        match s.as_ref() {
            "open" => self.paint(s, Color::Green),
            "in_progress" => self.paint(s, Color::Cyan),
            "blocked" => self.paint(s, Color::Red),
            "closed" | "tombstone" => self.dim(s),
            "deferred" | "pinned" | "hooked" => self.paint(s, Color::Magenta),
            _ => s.to_string(),
        }
    }

    pub fn ok(&self, text: &str) -> String {
        format!("{} {text}", self.paint("✓", Color::Green))
    }
}

/// Rows of cells printed with aligned columns (the last column is not padded).
#[derive(Default)]
pub struct Table {
    rows: Vec<Vec<(String, usize)>>,
}

/// Display width of text that may contain ANSI colour sequences.
fn visible_width(s: &str) -> usize {
    let mut plain = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    UnicodeWidthStr::width(plain.as_str())
}

impl Table {
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| {
                    let w = visible_width(&c);
                    (c, w)
                })
                .collect(),
        );
    }

    pub fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; cols];
        for row in &self.rows {
            for (i, (_, w)) in row.iter().enumerate() {
                widths[i] = widths[i].max(*w);
            }
        }
        for row in &self.rows {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i + 1 < row.len() {
                    line.extend(std::iter::repeat_n(' ', widths[i] - w));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// Cuts `s` to `max` display columns, with `…` when cut; only the first line is kept (marked
/// as cut when there are more).
pub fn truncate(s: &str, max: usize) -> String {
    let first = s.lines().next().unwrap_or("");
    if !s.contains('\n') {
        return crate::text::fit(first, max);
    }
    let mut out = crate::text::fit(first, max.saturating_sub(1));
    if !out.ends_with('…') {
        out.push('…');
    }
    out
}

/// Writes beads as a bare JSON array, one compact bead per line.
pub fn write_bead_array<'a>(
    out: &mut impl Write,
    beads: impl IntoIterator<Item = &'a Bead>,
) -> Result<()> {
    write_json_array(out, beads)
}

/// Writes values as a bare JSON array, one compact value per line.
pub fn write_json_array<T: Serialize>(
    out: &mut impl Write,
    items: impl IntoIterator<Item = T>,
) -> Result<()> {
    let mut buf = Vec::with_capacity(1 << 16);
    buf.push(b'[');
    let mut first = true;
    for item in items {
        buf.extend_from_slice(if first { b"\n" } else { b",\n" });
        first = false;
        write_go_json(&mut buf, &item).map_err(|e| Error::Other(e.to_string()))?;
        if buf.len() > (1 << 20) {
            out.write_all(&buf).map_err(stdout_err)?;
            buf.clear();
        }
    }
    buf.extend_from_slice(if first { b"]\n" } else { b"\n]\n" });
    out.write_all(&buf).map_err(stdout_err)
}

/// Writes one value as compact JSON and a newline.
pub fn write_json<T: Serialize + ?Sized>(out: &mut impl Write, value: &T) -> Result<()> {
    let mut buf = Vec::new();
    write_go_json(&mut buf, value).map_err(|e| Error::Other(e.to_string()))?;
    buf.push(b'\n');
    out.write_all(&buf).map_err(stdout_err)
}

/// A bead as a JSON object with extra fields appended (bd's `blocked_by`, tree `depth`, …).
pub fn bead_with(bead: &Bead, extra: &[(&str, serde_json::Value)]) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(bead).map_err(|e| Error::Other(e.to_string()))?;
    if let Some(map) = v.as_object_mut() {
        for (k, x) in extra {
            map.insert((*k).to_owned(), x.clone());
        }
    }
    Ok(v)
}

/// A time for people: `2026-12-06 23:54 UTC (3 hours ago)`; the text as stored when it does
/// not parse.
pub fn readable_time(t: &crate::bead::Timestamp, now: jiff::Timestamp) -> String {
    let Some(at) = t.instant() else {
        return t.as_str().to_owned();
    };
    let clock = at.strftime("%Y-%m-%d %H:%M UTC");
    let secs = now.as_second() - at.as_second();
    let (n, unit) = match secs.unsigned_abs() {
        s if s < 60 => return format!("{clock} (just now)"),
        s if s < 3_600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3_600, "hour"),
        s if s < 86_400 * 60 => (s / 86_400, "day"),
        s if s < 86_400 * 730 => (s / (86_400 * 30), "month"),
        s => (s / (86_400 * 365), "year"),
    };
    let span = crate::text::count(n, unit);
    if secs >= 0 {
        format!("{clock} ({span} ago)")
    } else {
        format!("{clock} (in {span})")
    }
}

/// Errors writing to stdout (a closed pipe included).
pub fn stdout_err(e: io::Error) -> Error {
    Error::io("<stdout>", e)
}

#[cfg(test)]
mod tests {
    use super::readable_time;
    use crate::bead::Timestamp;

    #[test]
    fn times_read_as_a_date_and_how_long_ago() {
        let now: jiff::Timestamp = "2026-12-06T12:00:00Z".parse().unwrap();
        let t = |s: &str| readable_time(&Timestamp::parse(s), now);
        assert_eq!(t("2026-12-06T11:59:30Z"), "2026-12-06 11:59 UTC (just now)");
        assert_eq!(
            t("2026-12-06T09:00:00.123456789+00:00"),
            "2026-12-06 09:00 UTC (3 hours ago)"
        );
        assert_eq!(
            t("2026-12-05T13:00:00+02:00"),
            "2026-12-05 11:00 UTC (1 day ago)"
        );
        assert_eq!(
            t("2026-12-20T12:00:00Z"),
            "2026-12-20 12:00 UTC (in 14 days)"
        );
        assert_eq!(t("not a time"), "not a time");
    }
}
