//! Human output that data cannot use to drive the terminal.
//!
//! Everything a human command prints goes through [`Inert`]: control characters (C0 but
//! newline and tab, DEL, C1), escape sequences and bidirectional overrides are shown as
//! visible marks (`␛`, `<U+202E>`), so a bead title, a commit message or a model's reply can
//! neither move the cursor, clear the screen, set the window title, write the clipboard (OSC
//! 52) nor reorder text. Loom's own colours are plain SGR sequences (`ESC [ … m`); they pass
//! only when colour is on, and nothing else does. JSON output is escaped by the JSON writer and
//! does not come through here.

use std::io::{self, Write};

use crate::text::{is_unsafe_char, visible_char};

/// The longest SGR sequence let through.
const MAX_SGR: usize = 32;

/// A writer that makes what passes through it inert.
pub struct Inert<W: Write> {
    inner: W,
    /// Let SGR colour sequences through (Loom paints only when colour is on).
    sgr: bool,
    /// Bytes held back: an incomplete UTF-8 character or escape sequence at the end of a write.
    pending: Vec<u8>,
}

impl<W: Write> Inert<W> {
    pub fn new(inner: W, sgr: bool) -> Inert<W> {
        Inert {
            inner,
            sgr,
            pending: Vec::new(),
        }
    }

    /// Makes `pending` inert and writes it, keeping back an incomplete tail unless `all`.
    fn drain(&mut self, all: bool) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.pending);
        // Fast path: nothing that could be unsafe.
        if !bytes
            .iter()
            .any(|&b| (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f || b >= 0xc2)
        {
            return self.inner.write_all(&bytes);
        }
        let (text, rest) = decode(&bytes, all);
        let (out, held) = make_inert(&text, self.sgr, all);
        self.inner.write_all(out.as_bytes())?;
        self.pending.extend_from_slice(held.as_bytes());
        self.pending.extend_from_slice(rest);
        Ok(())
    }
}

/// The text of `bytes` (invalid sequences replaced) and an incomplete character at the end,
/// held back unless `all`.
fn decode(bytes: &[u8], all: bool) -> (String, &[u8]) {
    let mut text = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                text.push_str(s);
                return (text, &[]);
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                text.push_str(std::str::from_utf8(good).unwrap_or_default());
                match e.error_len() {
                    None if !all => return (text, bad),
                    None => {
                        text.push('\u{fffd}');
                        return (text, &[]);
                    }
                    Some(n) => {
                        text.push('\u{fffd}');
                        rest = &bad[n..];
                    }
                }
            }
        }
    }
}

/// `text` made inert, and an escape sequence cut off at its end (held back unless `all`).
fn make_inert(text: &str, sgr: bool, all: bool) -> (String, String) {
    let mut out = String::with_capacity(text.len() + 16);
    let mut i = 0;
    while let Some(c) = text[i..].chars().next() {
        if c == '\u{1b}' && sgr {
            match sgr_len(&text[i..]) {
                Some(n) => {
                    out.push_str(&text[i..i + n]);
                    i += n;
                    continue;
                }
                None if !all && could_become_sgr(&text[i..]) => {
                    return (out, text[i..].to_owned());
                }
                None => {}
            }
        }
        if is_unsafe_char(c) {
            visible_char(c, &mut out);
        } else {
            out.push(c);
        }
        i += c.len_utf8();
    }
    (out, String::new())
}

/// The length of a complete SGR sequence (`ESC [ digits/semicolons m`) at the start of `s`.
fn sgr_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.get(1) != Some(&b'[') {
        return None;
    }
    for (j, &c) in b.iter().enumerate().skip(2).take(MAX_SGR) {
        match c {
            b'0'..=b'9' | b';' => {}
            b'm' => return Some(j + 1),
            _ => return None,
        }
    }
    None
}

/// Whether `s` (starting with ESC) is the start of an SGR sequence cut by the buffer's end.
fn could_become_sgr(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() < MAX_SGR
        && (b.len() == 1 || b[1] == b'[')
        && b.iter().skip(2).all(|c| c.is_ascii_digit() || *c == b';')
}

impl<W: Write> Write for Inert<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.drain(false)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain(true)?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for Inert<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// `line` made inert, for one `eprintln!` (colour sequences pass when `sgr`).
pub fn line(line: &str, sgr: bool) -> String {
    make_inert(line, sgr, true).0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(pieces: &[&[u8]], sgr: bool) -> String {
        let mut out = Vec::new();
        {
            let mut w = Inert::new(&mut out, sgr);
            for p in pieces {
                w.write_all(p).unwrap();
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn data_cannot_drive_the_terminal() {
        let evil: &[u8] =
            b"t-1  \x1b]0;pwned\x07 \x1b[2J\x1b[H \r hide \xc2\x9b31m \xe2\x80\xaeexe.txt\n";
        let shown = through(&[evil], false);
        assert!(!shown.contains('\u{1b}') && !shown.contains('\r') && !shown.contains('\u{202e}'));
        assert_eq!(
            shown,
            "t-1  ␛]0;pwned␇ ␛[2J␛[H ␍ hide <U+009B>31m <U+202E>exe.txt\n"
        );
    }

    #[test]
    fn loom_colours_pass_only_when_colour_is_on_even_across_writes() {
        let painted: [&[u8]; 3] = [b"\x1b[1", b"mbold\x1b[0m \xe2\x81", b"\xa6x\n"];
        assert_eq!(
            through(&painted, true),
            "\u{1b}[1mbold\u{1b}[0m <U+2066>x\n"
        );
        assert_eq!(through(&painted, false), "␛[1mbold␛[0m <U+2066>x\n");
        // A cursor movement is not a colour, even with colour on.
        assert_eq!(through(&[b"\x1b[2A up"], true), "␛[2A up");
        assert_eq!(through(&[b"ok \xff\n"], false), "ok \u{fffd}\n");
    }
}
