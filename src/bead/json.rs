//! JSON exactly as bd's Go encoder writes it: compact, `<`, `>`, `&`, U+2028 and U+2029
//! escaped as `\u003c`-style sequences, other characters raw UTF-8.

use std::io;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};

/// serde_json's compact output plus Go's HTML-safe escapes.
#[derive(Clone, Copy, Debug, Default)]
pub struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, ch) in fragment.char_indices() {
            let escape = match ch {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escape.as_bytes())?;
            start = i + ch.len_utf8();
        }
        CompactFormatter.write_string_fragment(writer, &fragment[start..])
    }
}

/// Appends `value` as one compact, Go-escaped JSON document to `out`.
pub fn write_go_json<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(out, GoFormatter);
    value.serialize(&mut ser)
}

/// `value` as one compact, Go-escaped JSON string.
pub fn to_go_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(512);
    write_go_json(&mut out, value)?;
    // The serializer only ever emits UTF-8.
    String::from_utf8(out).map_err(|e| serde_json::Error::io(io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        let s = "a<b>&c\u{2028}\u{2029}\"\\\n\t\u{1}é/\u{7f}";
        assert_eq!(
            to_go_json(s).unwrap(),
            r#""a\u003cb\u003e\u0026c\u2028\u2029\"\\\n\t\u0001é/"#.to_owned() + "\u{7f}\""
        );
    }
}
