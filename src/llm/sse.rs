//! An incremental Server-Sent Events parser for chat-completion streams.
//!
//! Bytes arrive in arbitrary pieces; complete events come out. Lines end with LF, CRLF or CR;
//! `data:` lines accumulate and an empty line dispatches them; `event:`, `id:`, `retry:` and
//! comment lines are accepted and ignored. Being lenient where real servers differ (a missing
//! blank line between two JSON `data:` lines, no final blank line), it is strict where a stream
//! is broken: a line that is no SSE field, or bytes that are not UTF-8, are errors.

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SseEvent {
    /// The event's data (several `data:` lines joined with `\n`).
    Data(String),
    /// `data: [DONE]`: the stream is complete.
    Done,
}

/// A stream that is not valid SSE.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SseError(pub String);

/// Longest line accepted (a single chunk of a very long tool-call argument fits easily).
const MAX_LINE: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line being received.
    line: Vec<u8>,
    /// The previous byte was a CR (so a following LF belongs to the same line end).
    after_cr: bool,
    /// Data lines of the event being received.
    data: Option<String>,
}

fn excerpt(line: &str) -> String {
    let mut s: String = line.chars().take(80).collect();
    if line.chars().count() > 80 {
        s.push('…');
    }
    format!("{s:?}")
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds bytes; appends completed events to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'\n' if self.after_cr => {
                    self.after_cr = false;
                    start = i + 1;
                }
                b'\n' | b'\r' => {
                    self.line.extend_from_slice(&bytes[start..i]);
                    self.after_cr = b == b'\r';
                    start = i + 1;
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&line, out)?;
                    self.line = line;
                    self.line.clear();
                }
                _ => self.after_cr = false,
            }
        }
        self.line.extend_from_slice(&bytes[start..]);
        if self.line.len() > MAX_LINE {
            return Err(SseError(format!(
                "a stream line is longer than {} MiB",
                MAX_LINE >> 20
            )));
        }
        Ok(())
    }

    /// The stream ended: dispatches what is pending.
    /// Whether the bytes so far end in the middle of a line (a stream cut there may have lost
    /// the rest of that line).
    pub fn mid_line(&self) -> bool {
        !self.line.is_empty()
    }

    pub fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if let Some(data) = self.data.take() {
            if data.trim() == "[DONE]" {
                out.push(SseEvent::Done);
            } else {
                out.push(SseEvent::Data(data));
            }
        }
    }

    fn line_done(&mut self, raw: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let line = std::str::from_utf8(raw).map_err(|e| {
            SseError(format!(
                "the stream sent bytes that are not UTF-8 (at byte {} of a line)",
                e.valid_up_to()
            ))
        })?;
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(()); // comment (keep-alive)
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                // Lenient: a server that omits the blank line between two JSON events.
                if let Some(prev) = &self.data
                    && (value.starts_with('{') || value.trim() == "[DONE]")
                    && serde_json::from_str::<serde::de::IgnoredAny>(prev).is_ok()
                {
                    self.dispatch(out);
                }
                match &mut self.data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => self.data = Some(value.to_owned()),
                }
                Ok(())
            }
            "event" | "id" | "retry" => Ok(()),
            _ => Err(SseError(format!(
                "malformed stream line (not an SSE field): {}",
                excerpt(line)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &[u8], piece: usize) -> Result<Vec<SseEvent>, SseError> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for part in input.chunks(piece.max(1)) {
            p.push(part, &mut out)?;
        }
        p.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn events_come_out_whatever_the_split() {
        let input = b"data: {\"a\":1}\n\n: keep-alive\r\n\r\nevent: message\ndata: {\"b\":\r\ndata: 2}\r\n\r\ndata: [DONE]\n\n";
        let want = vec![
            SseEvent::Data("{\"a\":1}".into()),
            SseEvent::Data("{\"b\":\n2}".into()),
            SseEvent::Done,
        ];
        for piece in 1..input.len() {
            assert_eq!(
                parse_in_pieces(input, piece).unwrap(),
                want,
                "piece {piece}"
            );
        }
    }

    #[test]
    fn lenient_where_servers_differ() {
        // No blank lines between JSON events, CR-only line ends, no final newline.
        let out = parse_in_pieces(b"data: {\"a\":1}\rdata: {\"b\":2}\rdata: [DONE]", 3).unwrap();
        assert_eq!(
            out,
            [
                SseEvent::Data("{\"a\":1}".into()),
                SseEvent::Data("{\"b\":2}".into()),
                SseEvent::Done
            ]
        );
        assert_eq!(
            parse_in_pieces(b"data:{\"x\":0}\n\n", 5).unwrap(),
            [SseEvent::Data("{\"x\":0}".into())]
        );
    }

    #[test]
    fn broken_streams_are_errors() {
        let err = parse_in_pieces(b"data: {}\n\nGARBAGE here\n\n", 4).unwrap_err();
        assert!(
            err.0.contains("malformed stream line") && err.0.contains("GARBAGE"),
            "{err}"
        );
        let err = parse_in_pieces(b"data: \xff\xfe\n\n", 2).unwrap_err();
        assert!(err.0.contains("UTF-8"), "{err}");
    }
}
