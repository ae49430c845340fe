//! Bounded capture of a command's output: the first and last bytes of each stream, however
//! much it prints (a newline-free flood of gigabytes costs the cap, not the flood), and the
//! complete lines as they come, for live logs.

use std::collections::VecDeque;

/// Longest line handed to a live-log callback; the rest of a longer line is dropped there
/// (the capture keeps its head and tail as for any output).
const MAX_LINE: usize = 8 * 1024;

/// Captured output of one stream: the first and last bytes, and how many there were.
#[derive(Clone, Debug, Default)]
pub struct Captured {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: usize,
    cap: usize,
}

impl Captured {
    pub(crate) fn new(cap: usize) -> Captured {
        Captured {
            cap: cap.max(2),
            ..Captured::default()
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.total = self.total.saturating_add(bytes.len());
        let half = self.cap / 2;
        let mut rest = bytes;
        if self.head.len() < half {
            let take = (half - self.head.len()).min(rest.len());
            self.head.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        let keep = self.cap - half;
        if rest.len() >= keep {
            self.tail.clear();
            rest = &rest[rest.len() - keep..];
        }
        self.tail.extend(rest);
        let over = self.tail.len().saturating_sub(keep);
        self.tail.drain(..over);
    }

    /// Total bytes the stream produced.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The text, head and tail, with a marker where bytes were dropped.
    pub fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.head).into_owned();
        let kept = self.head.len() + self.tail.len();
        if self.total > kept {
            s.push_str(&format!("\n… [{} bytes omitted] …\n", self.total - kept));
        }
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        s.push_str(&String::from_utf8_lossy(&tail));
        s
    }
}

/// Splits output into lines for a live callback, holding at most [`MAX_LINE`] bytes of an
/// unfinished line.
#[derive(Debug, Default)]
pub(crate) struct Lines {
    pending: Vec<u8>,
    /// The current line passed [`MAX_LINE`]: the rest of it is dropped.
    overlong: bool,
}

impl Lines {
    /// Calls `on_line` for every line `bytes` completes.
    pub fn push(&mut self, bytes: &[u8], on_line: &mut (dyn FnMut(&str) + Send)) {
        let mut rest = bytes;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            self.take(&rest[..nl]);
            self.emit(on_line);
            rest = &rest[nl + 1..];
        }
        self.take(rest);
    }

    fn take(&mut self, part: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.pending.len());
        if part.len() > room {
            self.overlong = true;
        }
        self.pending
            .extend_from_slice(&part[..part.len().min(room)]);
    }

    fn emit(&mut self, on_line: &mut (dyn FnMut(&str) + Send)) {
        let mut line = String::from_utf8_lossy(&self.pending).into_owned();
        if line.ends_with('\r') {
            line.pop();
        }
        if std::mem::take(&mut self.overlong) {
            line.push_str(" …");
        }
        on_line(&line);
        self.pending.clear();
    }

    /// Hands over an unfinished last line.
    pub fn finish(&mut self, on_line: &mut (dyn FnMut(&str) + Send)) {
        if !self.pending.is_empty() || self.overlong {
            self.emit(on_line);
        }
    }
}

/// The two streams of one command as they arrive: each captured (bounded) and split into
/// lines for the live callback.
pub(crate) struct Output {
    stdout: Captured,
    stderr: Captured,
    out_lines: Lines,
    err_lines: Lines,
}

impl Output {
    pub fn new(cap: usize) -> Output {
        Output {
            stdout: Captured::new(cap),
            stderr: Captured::new(cap),
            out_lines: Lines::default(),
            err_lines: Lines::default(),
        }
    }

    /// Takes one chunk from [`forward`]'s channel.
    pub fn take(
        &mut self,
        (is_err, bytes): (bool, Vec<u8>),
        on_line: &mut (dyn FnMut(&str) + Send),
    ) {
        let (cap, lines) = if is_err {
            (&mut self.stderr, &mut self.err_lines)
        } else {
            (&mut self.stdout, &mut self.out_lines)
        };
        cap.push(&bytes);
        lines.push(&bytes, on_line);
    }

    /// Once the command has ended: what is still buffered, for at most two seconds (a process
    /// that escaped the ending could keep a pipe open forever).
    pub async fn drain(
        &mut self,
        rx: &mut tokio::sync::mpsc::Receiver<(bool, Vec<u8>)>,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) {
        let grace = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        while let Ok(Some(c)) = tokio::time::timeout_at(grace, rx.recv()).await {
            self.take(c, on_line);
        }
    }

    /// Hands over unfinished last lines; the captures of stdout and stderr.
    pub fn finish(mut self, on_line: &mut (dyn FnMut(&str) + Send)) -> (Captured, Captured) {
        self.out_lines.finish(on_line);
        self.err_lines.finish(on_line);
        (self.stdout, self.stderr)
    }
}

/// Reads stdout and stderr (each `None` if absent) into one channel of `(is_stderr, bytes)`,
/// which closes when both reach their end.
pub(crate) fn forward<O, E>(
    stdout: Option<O>,
    stderr: Option<E>,
) -> tokio::sync::mpsc::Receiver<(bool, Vec<u8>)>
where
    O: tokio::io::AsyncRead + Unpin + Send + 'static,
    E: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    if let Some(s) = stdout {
        tokio::spawn(pump(false, s, tx.clone()));
    }
    if let Some(s) = stderr {
        tokio::spawn(pump(true, s, tx));
    }
    rx
}

async fn pump(
    is_err: bool,
    mut stream: impl tokio::io::AsyncRead + Unpin,
    tx: tokio::sync::mpsc::Sender<(bool, Vec<u8>)>,
) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx.send((is_err, buf[..n].to_vec())).await.is_err() {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_output_keeps_head_and_tail() {
        let mut c = Captured::new(10);
        c.push(b"0123456789abcdefghij");
        assert_eq!(c.total(), 20);
        assert_eq!(c.text(), "01234\n… [10 bytes omitted] …\nfghij");
        let mut small = Captured::new(10);
        small.push(b"hi");
        assert_eq!(small.text(), "hi");
        let mut chunks = Captured::new(10);
        for b in b"0123456789abcdefghij".chunks(3) {
            chunks.push(b);
        }
        assert_eq!(chunks.text(), c.text());
    }

    #[test]
    fn a_flood_costs_the_cap() {
        let mut c = Captured::new(64);
        let chunk = vec![b'x'; 1 << 16];
        for _ in 0..1000 {
            c.push(&chunk);
        }
        assert_eq!(c.total(), 1000 << 16);
        assert!(c.tail.len() <= 32 && c.head.len() == 32);
    }

    #[test]
    fn lines_are_split_and_bounded() {
        let mut got = Vec::new();
        let mut l = Lines::default();
        let mut f = |s: &str| got.push(s.to_owned());
        l.push(b"one\r\ntw", &mut f);
        l.push(b"o\n", &mut f);
        l.push(&vec![b'z'; MAX_LINE * 3], &mut f);
        l.push(b"\nlast", &mut f);
        l.finish(&mut f);
        assert_eq!(got[0], "one");
        assert_eq!(got[1], "two");
        assert_eq!(got[2].len(), MAX_LINE + " …".len());
        assert_eq!(got[3], "last");
    }
}
