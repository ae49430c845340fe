//! The JSONL backend's document: the file's bytes, split into lines, each line either a bead,
//! blank, or kept verbatim (malformed, a duplicate id, or a non-issue record such as bd's
//! `{"_type":"memory"}`).
//!
//! Writing re-emits every line Loom did not change byte for byte (terminator included) and
//! serializes only changed and new beads, so `git diff` shows exactly what changed.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use crate::bead::json::write_go_json;
use crate::bead::{Bead, FastMap, IndexBead};

use super::{Problem, Severity};

/// How a line ended on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Terminator {
    None,
    Lf,
    CrLf,
}

#[derive(Clone, Debug)]
enum LineKind {
    Blank,
    /// Index into [`JsonlDoc::beads`].
    Bead(usize),
    /// Not loaded; written back exactly as read.
    Kept,
}

#[derive(Clone, Debug)]
struct Line {
    /// Content without its terminator.
    range: Range<usize>,
    terminator: Terminator,
    kind: LineKind,
}

/// A parsed JSONL file.
#[derive(Clone, Debug, Default)]
pub struct JsonlDoc {
    bytes: Vec<u8>,
    lines: Vec<Line>,
    /// The loaded beads in file order (first occurrence of each id).
    pub beads: Vec<Bead>,
    /// 1-based line number of each bead in `beads`.
    pub line_of: Vec<usize>,
    /// The id of each bead in `beads` (kept when the beads are moved out).
    ids: Vec<String>,
}

/// Lines per parallel chunk below which splitting is not worth a thread.
const MIN_LINES_PER_THREAD: usize = 2_000;

impl JsonlDoc {
    /// Parses `bytes` (the file at `path`, for messages), collecting problems.
    pub fn parse(bytes: Vec<u8>, path: &Path) -> (JsonlDoc, Vec<Problem>) {
        Self::parse_as(bytes, path, false)
    }

    /// Like [`JsonlDoc::parse`], but reads only what listings and the dependency graph need
    /// (see [`IndexBead`]); [`JsonlDoc::full`] reads a bead completely later.
    pub fn parse_index(bytes: Vec<u8>, path: &Path) -> (JsonlDoc, Vec<Problem>) {
        Self::parse_as(bytes, path, true)
    }

    /// The complete bead `i` (re-read from its line).
    pub fn full(&self, i: usize) -> Option<Bead> {
        let line = self.line_of.get(i)?.checked_sub(1)?;
        let range = self.lines.get(line)?.range.clone();
        serde_json::from_slice(&self.bytes[range]).ok()
    }

    fn parse_as(bytes: Vec<u8>, path: &Path, light: bool) -> (JsonlDoc, Vec<Problem>) {
        let mut lines = split_lines(&bytes, true);
        let results = parse_all(&bytes, &lines, light);
        let mut found = Collector::new(path, lines.len());
        let mut ids = Vec::with_capacity(lines.len());
        for (n, (line, result)) in lines.iter_mut().zip(results).enumerate() {
            line.kind = found.add(n + 1, result, &bytes[line.range.clone()]);
            if let LineKind::Bead(i) = line.kind {
                ids.push(found.beads[i].id.clone());
            }
        }
        (
            JsonlDoc {
                bytes,
                lines,
                beads: found.beads,
                line_of: found.line_of,
                ids,
            },
            found.problems,
        )
    }

    /// The file's original bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether the file holds merge-conflict markers (`<<<<<<<` … `>>>>>>>` lines): it must
    /// not be written or committed until a person resolves the merge.
    pub fn has_conflict_markers(&self) -> bool {
        super::conflict_markers(&self.bytes)
    }

    /// How many lines are kept verbatim (malformed, duplicate or non-bead records).
    pub fn kept_count(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| matches!(l.kind, LineKind::Kept))
            .count()
    }

    /// The file after applying `changed` (id → new version, `None` = remove) and appending
    /// `added`. Untouched lines keep their bytes.
    pub fn render(
        &self,
        changed: &HashMap<String, Option<Bead>>,
        added: &[Bead],
    ) -> serde_json::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.bytes.len() + 1024 * (added.len() + 1));
        if self.bytes.starts_with(BOM) {
            out.extend_from_slice(BOM);
        }
        let mut open_line = false; // the last thing written lacks a newline
        for line in &self.lines {
            if let LineKind::Bead(i) = line.kind
                && let Some(new) = changed.get(&self.ids[i])
            {
                if let Some(bead) = new {
                    write_go_json(&mut out, bead)?;
                    out.push(b'\n');
                    open_line = false;
                }
                continue;
            }
            if open_line {
                out.push(b'\n');
            }
            out.extend_from_slice(&self.bytes[line.range.clone()]);
            match line.terminator {
                Terminator::None => open_line = true,
                Terminator::Lf => {
                    out.push(b'\n');
                    open_line = false;
                }
                Terminator::CrLf => {
                    out.extend_from_slice(b"\r\n");
                    open_line = false;
                }
            }
        }
        for bead in added {
            if open_line {
                out.push(b'\n');
                open_line = false;
            }
            write_go_json(&mut out, bead)?;
            out.push(b'\n');
        }
        Ok(out)
    }
}

/// Renders a whole file from beads alone (export, convert).
pub fn render_all<'a>(beads: impl IntoIterator<Item = &'a Bead>) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::new();
    for bead in beads {
        write_go_json(&mut out, bead)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Turns parsed lines into beads and problems, in file order: the first record of each id
/// wins; later duplicates, malformed and foreign lines are kept verbatim.
struct Collector<'p> {
    path: &'p Path,
    beads: Vec<Bead>,
    line_of: Vec<usize>,
    /// The first bead whose id hashes to a value (ids are compared on a hit); ids whose hash
    /// another id holds go to `collided`. Smaller than a map of owned ids (100k beads: 2 MB).
    first: FastMap<u64, usize>,
    collided: FastMap<String, usize>,
    hasher: foldhash::fast::FixedState,
    problems: Vec<Problem>,
}

impl<'p> Collector<'p> {
    fn new(path: &'p Path, capacity: usize) -> Self {
        Collector {
            path,
            beads: Vec::with_capacity(capacity),
            line_of: Vec::with_capacity(capacity),
            first: FastMap::with_capacity_and_hasher(capacity, Default::default()),
            collided: FastMap::default(),
            hasher: foldhash::fast::FixedState::default(),
            problems: Vec::new(),
        }
    }

    /// The index of the bead already loaded with this id, or records `next` as its index.
    fn first_of(&mut self, id: &str, next: usize) -> Option<usize> {
        use std::hash::BuildHasher;
        let h = self.hasher.hash_one(id);
        match self.first.get(&h) {
            None => {
                self.first.insert(h, next);
                None
            }
            Some(&i) if self.beads[i].id == id => Some(i),
            Some(_) => match self.collided.get(id) {
                Some(&i) => Some(i),
                None => {
                    self.collided.insert(id.to_owned(), next);
                    None
                }
            },
        }
    }

    fn reserve(&mut self, more: usize) {
        self.beads.reserve(more);
        self.line_of.reserve(more);
        self.first.reserve(more);
    }

    /// Takes line `number` (1-based), parsed as `result` from `raw`; what the line is.
    fn add(&mut self, number: usize, result: Parsed, raw: &[u8]) -> LineKind {
        let mut problem = |message: String, id: Option<String>| {
            self.problems.push(Problem {
                path: self.path.to_path_buf(),
                line: Some(number),
                id,
                severity: Severity::Error,
                message,
            });
        };
        match result {
            Parsed::Blank => LineKind::Blank,
            Parsed::Foreign => LineKind::Kept,
            Parsed::Bad(message) => {
                problem(
                    format!("{message}; the line is kept as it is"),
                    sniff_id(raw),
                );
                LineKind::Kept
            }
            Parsed::Bead(bead) => {
                if let Some(i) = self.first_of(&bead.id, self.beads.len()) {
                    let first = self.line_of[i];
                    self.problems.push(Problem {
                        path: self.path.to_path_buf(),
                        line: Some(number),
                        id: Some(bead.id.clone()),
                        severity: Severity::Error,
                        message: format!(
                            "duplicate id {} (first on line {first}); this later record is ignored and kept as it is",
                            bead.id
                        ),
                    });
                    return LineKind::Kept;
                }
                self.beads.push(*bead);
                self.line_of.push(number);
                LineKind::Bead(self.beads.len() - 1)
            }
        }
    }
}

/// Where each bead of an index-only read sits in the file, to read it completely later.
#[derive(Clone, Debug)]
pub struct Spans {
    file: Arc<File>,
    spans: Vec<Range<u64>>,
}

impl Spans {
    /// Bead `i` complete, read again from its line; `None` if the file no longer holds a
    /// readable record there (changed since).
    pub fn full(&self, i: usize) -> Option<Bead> {
        use std::os::unix::fs::FileExt;
        let span = self.spans.get(i)?;
        let mut buf = vec![0; usize::try_from(span.end - span.start).ok()?];
        self.file.read_exact_at(&mut buf, span.start).ok()?;
        serde_json::from_slice(&buf).ok()
    }
}

/// An index-only read of a JSONL file (see [`read_index`]).
pub struct Indexed {
    pub beads: Vec<Bead>,
    /// 1-based line number of each bead.
    pub line_of: Vec<usize>,
    pub spans: Spans,
    pub problems: Vec<Problem>,
}

/// Bytes read per step by [`read_index`].
const INDEX_CHUNK: usize = 8 << 20;

/// Reads `file` (shown as `path`) for listings: index-only beads (see [`IndexBead`]), a chunk
/// at a time, so the file is never in memory whole — on 100,000 beads that is most of the
/// peak memory of a read command.
pub fn read_index(file: File, path: &Path) -> std::io::Result<Indexed> {
    read_index_by(file, path, INDEX_CHUNK)
}

fn read_index_by(file: File, path: &Path, chunk: usize) -> std::io::Result<Indexed> {
    use std::os::unix::fs::FileExt;
    let size = file.metadata()?.len();
    let mut found = Collector::new(path, 0);
    let mut spans: Vec<Range<u64>> = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(chunk);
    // File offset of `buf[0]`, and of the first byte not yet read.
    let (mut base, mut next) = (0u64, 0u64);
    let mut number = 0;
    loop {
        let at_start = base == 0;
        // Fill to a chunk (more if one line is longer).
        let want = chunk.max(buf.len() * 2);
        let old = buf.len();
        buf.resize(want, 0);
        let mut filled = old;
        while filled < want {
            let n = file.read_at(&mut buf[filled..], next)?;
            if n == 0 {
                break;
            }
            filled += n;
            next += n as u64;
        }
        buf.truncate(filled);
        let eof = next >= size || filled < want;
        let complete = if eof {
            buf.len()
        } else {
            match memchr::memrchr(b'\n', &buf) {
                Some(nl) => nl + 1,
                None => continue, // a line longer than the buffer: read more
            }
        };
        let part = &buf[..complete];
        let lines = split_lines(part, at_start);
        if found.beads.capacity() == 0 && !lines.is_empty() {
            // Room for the whole file, estimated generously from its first lines: growing a
            // vector this size later would copy it (twice the memory for a moment), while
            // reserved room that stays unused is never touched, so it costs no memory.
            let per_line = (complete / lines.len()).max(2) as u64 / 2;
            found.reserve(usize::try_from(size / per_line).unwrap_or(0) + 64);
        }
        let results = parse_all(part, &lines, true);
        for (line, result) in lines.iter().zip(results) {
            number += 1;
            let raw = &part[line.range.clone()];
            if let LineKind::Bead(_) = found.add(number, result, raw) {
                spans.push(base + line.range.start as u64..base + line.range.end as u64);
            }
        }
        buf.drain(..complete);
        base += complete as u64;
        if eof && buf.is_empty() {
            break;
        }
    }
    Ok(Indexed {
        beads: found.beads,
        line_of: found.line_of,
        spans: Spans {
            file: Arc::new(file),
            spans,
        },
        problems: found.problems,
    })
}

/// A UTF-8 byte order mark, which some editors put first: tolerated and kept.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// `bytes` split into lines; `file_start`: they begin the file (a BOM is skipped).
fn split_lines(bytes: &[u8], file_start: bool) -> Vec<Line> {
    let mut lines = Vec::with_capacity(bytes.len() / 512 + 1);
    let mut start = if file_start && bytes.starts_with(BOM) {
        BOM.len()
    } else {
        0
    };
    for nl in memchr::memchr_iter(b'\n', bytes) {
        let (end, terminator) = if nl > start && bytes[nl - 1] == b'\r' {
            (nl - 1, Terminator::CrLf)
        } else {
            (nl, Terminator::Lf)
        };
        lines.push(Line {
            range: start..end,
            terminator,
            kind: LineKind::Blank,
        });
        start = nl + 1;
    }
    if start < bytes.len() {
        lines.push(Line {
            range: start..bytes.len(),
            terminator: Terminator::None,
            kind: LineKind::Blank,
        });
    }
    lines
}

enum Parsed {
    Blank,
    Foreign,
    Bad(String),
    Bead(Box<Bead>),
}

/// The nesting serde_json accepts.
const MAX_DEPTH: usize = 128;

/// Whether a JSON record nests arrays or objects deeper than [`MAX_DEPTH`] (brackets inside
/// strings do not count). Cheap for ordinary records: only a line with that many brackets
/// at all is scanned.
fn too_deep(raw: &[u8]) -> bool {
    if memchr::memchr2_iter(b'[', b'{', raw)
        .nth(MAX_DEPTH)
        .is_none()
    {
        return false;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in raw {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

fn parse_line(raw: &[u8], light: bool) -> Parsed {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Parsed::Blank;
    }
    let text = match std::str::from_utf8(raw) {
        Ok(t) => t,
        Err(e) => {
            return Parsed::Bad(format!(
                "invalid UTF-8 at byte {} of the line",
                e.valid_up_to() + 1
            ));
        }
    };
    let parsed = if light {
        // The light parse skips long fields without a depth limit: a record the full parse
        // would refuse (nested past serde_json's 128 levels) is refused here too.
        if too_deep(raw) {
            return Parsed::Bad(format!(
                "values nested deeper than {MAX_DEPTH} levels; the record is kept as it is"
            ));
        }
        serde_json::from_str::<IndexBead>(text).map(|b| b.0)
    } else {
        serde_json::from_str::<Bead>(text)
    };
    match parsed {
        Ok(bead) => {
            match bead.extra.get("_type").and_then(|t| t.as_str()) {
                Some(t) if t != "issue" => return Parsed::Foreign,
                _ => {}
            }
            if bead.id.trim().is_empty() {
                return Parsed::Bad("the record has an empty id".into());
            }
            Parsed::Bead(Box::new(bead))
        }
        Err(e) => Parsed::Bad(describe_json_error(&e, text)),
    }
}

fn describe_json_error(e: &serde_json::Error, text: &str) -> String {
    use serde_json::error::Category;
    let at = format!("column {}", e.column());
    // Field errors are wrapped with the field's name, which hides the EOF category.
    let truncated = e.classify() == Category::Eof || e.to_string().contains("EOF while parsing");
    if truncated {
        return format!("the record is cut off at {at} (truncated JSON)");
    }
    match e.classify() {
        Category::Eof => format!("the record is cut off at {at} (truncated JSON)"),
        Category::Syntax => format!("invalid JSON at {at}: {e}"),
        Category::Data => {
            let msg = e.to_string();
            // serde_json appends " at line 1 column N"; keep the field-specific part.
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
            if text.trim_start().starts_with('{') {
                format!("{msg} ({at})")
            } else {
                format!("expected a JSON object, found {msg}")
            }
        }
        Category::Io => format!("read error: {e}"),
    }
}

fn parse_all(bytes: &[u8], lines: &[Line], light: bool) -> Vec<Parsed> {
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .min(lines.len() / MIN_LINES_PER_THREAD)
        .max(1);
    if threads == 1 {
        return lines
            .iter()
            .map(|l| parse_line(&bytes[l.range.clone()], light))
            .collect();
    }
    let chunk = lines.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = lines
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|l| parse_line(&bytes[l.range.clone()], light))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(lines.len());
        for (h, part) in handles.into_iter().zip(lines.chunks(chunk)) {
            match h.join() {
                Ok(parsed) => out.extend(parsed),
                // A panicking parser thread is a bug; keep going with the lines marked bad.
                Err(_) => out.extend(
                    part.iter()
                        .map(|_| Parsed::Bad("internal parser error".into())),
                ),
            }
        }
        out
    })
}

/// The value of the first `"id": "…"` in a (possibly malformed) record, if one can be made out.
pub fn sniff_id(raw: &[u8]) -> Option<String> {
    let pos = memchr::memmem::find(raw, b"\"id\"")?;
    let mut rest = &raw[pos + 4..];
    let skip_ws = |r: &mut &[u8]| {
        while let Some((b, tail)) = r.split_first() {
            if b.is_ascii_whitespace() {
                *r = tail;
            } else {
                break;
            }
        }
    };
    skip_ws(&mut rest);
    rest = rest.strip_prefix(b":")?;
    skip_ws(&mut rest);
    rest = rest.strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', rest)?;
    let id = String::from_utf8_lossy(&rest[..end]).into_owned();
    (!id.is_empty() && id.len() <= 200).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &[u8]) -> (JsonlDoc, Vec<Problem>) {
        JsonlDoc::parse(text.to_vec(), Path::new("issues.jsonl"))
    }

    /// The chunked index read gives what the whole-file parse gives, wherever chunks end:
    /// a BOM, CRLF, blank, malformed and duplicate lines, a line longer than a chunk, no final
    /// newline; and each bead read again completely from its span.
    #[test]
    fn chunked_index_read_matches_the_whole_file_parse() {
        let long = format!(r#"{{"id":"b-long","title":"{}"}}"#, "x".repeat(300));
        let text = format!(
            "{bom}{{\"id\":\"b-1\",\"title\":\"One\",\"description\":\"text\"}}\r\n\n\
             not json\n{{\"id\":\"b-2\",\"title\":\"Two\",\"dependencies\":[{{\"depends_on_id\":\"b-1\"}}]}}\n\
             {{\"id\":\"b-1\",\"title\":\"Again\"}}\n{long}\n{{\"_type\":\"memory\",\"id\":\"m\"}}\n\
             {{\"id\":\"b-3\",\"title\":\"Last\"}}",
            bom = '\u{feff}'
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("issues.jsonl");
        std::fs::write(&file, &text).unwrap();
        let (whole, whole_problems) =
            JsonlDoc::parse_index(text.clone().into_bytes(), Path::new("x"));
        let (full, _) = JsonlDoc::parse(text.into_bytes(), Path::new("x"));
        for chunk in [1, 7, 16, 64, 100, 4096] {
            let read = read_index_by(File::open(&file).unwrap(), Path::new("x"), chunk).unwrap();
            assert_eq!(read.beads, whole.beads, "chunk {chunk}");
            assert_eq!(read.line_of, whole.line_of, "chunk {chunk}");
            let lines =
                |p: &[Problem]| p.iter().map(|p| (p.line, p.id.clone())).collect::<Vec<_>>();
            assert_eq!(
                lines(&read.problems),
                lines(&whole_problems),
                "chunk {chunk}"
            );
            for (i, b) in full.beads.iter().enumerate() {
                assert_eq!(
                    read.spans.full(i).as_ref(),
                    Some(b),
                    "chunk {chunk}, bead {i}"
                );
            }
        }
        assert_eq!(whole.beads.len(), 4);
    }

    #[test]
    fn untouched_lines_keep_their_bytes() {
        let text = b"{\"id\": \"a-1\", \"title\": \"A\", \"x\": {\"deep\": [1, 2]}}\r\n\n  \n{\"id\":\"a-2\",\"title\":\"B\"}";
        let (d, problems) = doc(text);
        assert!(problems.is_empty());
        assert_eq!(d.beads.len(), 2);
        assert_eq!(d.line_of, [1, 4]);
        assert_eq!(d.render(&HashMap::new(), &[]).unwrap(), text);
        // Appending adds the missing final newline first.
        let extra = Bead {
            id: "a-3".into(),
            title: "C".into(),
            status: "open".into(),
            issue_type: "task".into(),
            ..Bead::default()
        };
        let out = d.render(&HashMap::new(), &[extra]).unwrap();
        assert!(out.starts_with(text));
        assert_eq!(
            &out[text.len()..],
            b"\n{\"id\":\"a-3\",\"title\":\"C\",\"status\":\"open\",\"priority\":0,\"issue_type\":\"task\"}\n"
        );
    }

    #[test]
    fn changed_line_is_rewritten_in_bd_form_with_unknown_keys() {
        let text = b"{\"id\": \"a-1\", \"zz\": 1, \"title\": \"A & B\", \"status\": \"open\", \"priority\": 2}\n{\"id\": \"a-2\", \"title\": \"B\"}\n";
        let (d, _) = doc(text);
        let mut b = d.beads[0].clone();
        b.priority = 1;
        let changed = HashMap::from([(b.id.clone(), Some(b))]);
        let out = String::from_utf8(d.render(&changed, &[]).unwrap()).unwrap();
        let mut lines = out.lines();
        assert_eq!(
            lines.next().unwrap(),
            r#"{"id":"a-1","title":"A \u0026 B","status":"open","priority":1,"issue_type":"task","zz":1}"#
        );
        assert_eq!(lines.next().unwrap(), r#"{"id": "a-2", "title": "B"}"#);
        // Removing a bead drops only its line.
        let removed = HashMap::from([("a-1".to_string(), None)]);
        assert_eq!(
            d.render(&removed, &[]).unwrap(),
            b"{\"id\": \"a-2\", \"title\": \"B\"}\n"
        );
    }

    #[test]
    fn bad_lines_are_reported_and_kept() {
        let mut text = Vec::new();
        text.extend_from_slice(b"{\"id\":\"a-1\",\"title\":\"ok\"}\n");
        text.extend_from_slice(b"{\"id\":\"a-2\",\"title\":\"trunc\n");
        text.extend_from_slice(b"{\"id\":\"a-3\",\"title\":\"bad \xff utf8\"}\n");
        text.extend_from_slice(b"{\"id\":\"a-4\",\"title\":\"t\",\"priority\":\"high\"}\n");
        text.extend_from_slice(b"{\"id\":\"a-1\",\"title\":\"dup\"}\n");
        text.extend_from_slice(b"{\"_type\":\"memory\",\"key\":\"k\",\"value\":\"v\"}\n");
        text.extend_from_slice(b"[1,2]\n");
        let (d, problems) = doc(&text);
        assert_eq!(d.beads.len(), 1);
        let summary: Vec<(Option<usize>, Option<&str>)> =
            problems.iter().map(|p| (p.line, p.id.as_deref())).collect();
        assert_eq!(
            summary,
            [
                (Some(2), Some("a-2")),
                (Some(3), Some("a-3")),
                (Some(4), Some("a-4")),
                (Some(5), Some("a-1")),
                (Some(7), None)
            ]
        );
        assert!(
            problems[0].message.contains("truncated"),
            "{}",
            problems[0].message
        );
        assert!(
            problems[1].message.contains("UTF-8"),
            "{}",
            problems[1].message
        );
        assert!(
            problems[2].message.contains("priority"),
            "{}",
            problems[2].message
        );
        assert!(
            problems[3].message.contains("duplicate"),
            "{}",
            problems[3].message
        );
        assert_eq!(d.render(&HashMap::new(), &[]).unwrap(), text);
        let mut b = d.beads[0].clone();
        b.title = "changed".into();
        let out = d
            .render(&HashMap::from([(b.id.clone(), Some(b))]), &[])
            .unwrap();
        // Everything but the first line survives byte for byte.
        let first_nl = text.iter().position(|&c| c == b'\n').unwrap();
        let out_first_nl = out.iter().position(|&c| c == b'\n').unwrap();
        assert_eq!(&out[out_first_nl..], &text[first_nl..]);
    }

    #[test]
    fn sniffs_ids_from_broken_records() {
        assert_eq!(sniff_id(b"{\"id\" : \"x-1\", \"ti"), Some("x-1".into()));
        assert_eq!(sniff_id(b"{\"title\":\"no id\"}"), None);
    }
}
