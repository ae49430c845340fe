//! The JSONL backend's document: the file's bytes, split into lines, each line either a bead,
//! blank, or kept verbatim (malformed, a duplicate id, or a non-issue record such as bd's
//! `{"_type":"memory"}`).
//!
//! Writing re-emits every line Loom did not change byte for byte (terminator included) and
//! serializes only changed and new beads, so `git diff` shows exactly what changed.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

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
        let mut lines = split_lines(&bytes);
        let results = parse_all(&bytes, &lines, light);
        let mut problems = Vec::new();
        let mut beads = Vec::with_capacity(lines.len());
        let mut line_of = Vec::with_capacity(lines.len());
        let mut first_line: FastMap<String, usize> =
            FastMap::with_capacity_and_hasher(lines.len(), Default::default());
        let mut ids = Vec::with_capacity(lines.len());
        for (n, (line, result)) in lines.iter_mut().zip(results).enumerate() {
            let number = n + 1;
            let problem = |message: String, id: Option<String>, severity| Problem {
                path: path.to_path_buf(),
                line: Some(number),
                id,
                severity,
                message,
            };
            match result {
                Parsed::Blank => line.kind = LineKind::Blank,
                Parsed::Foreign => line.kind = LineKind::Kept,
                Parsed::Bad(message) => {
                    line.kind = LineKind::Kept;
                    let id = sniff_id(&bytes[line.range.clone()]);
                    problems.push(problem(
                        format!("{message}; the line is kept as it is"),
                        id,
                        Severity::Error,
                    ));
                }
                Parsed::Bead(bead) => {
                    if let Some(&first) = first_line.get(&bead.id) {
                        line.kind = LineKind::Kept;
                        problems.push(problem(
                            format!(
                                "duplicate id {} (first on line {first}); this later record is ignored and kept as it is",
                                bead.id
                            ),
                            Some(bead.id.clone()),
                            Severity::Error,
                        ));
                        continue;
                    }
                    first_line.insert(bead.id.clone(), number);
                    line.kind = LineKind::Bead(beads.len());
                    ids.push(bead.id.clone());
                    beads.push(*bead);
                    line_of.push(number);
                }
            }
        }
        (
            JsonlDoc {
                bytes,
                lines,
                beads,
                line_of,
                ids,
            },
            problems,
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

/// A UTF-8 byte order mark, which some editors put first: tolerated and kept.
const BOM: &[u8] = b"\xef\xbb\xbf";

fn split_lines(bytes: &[u8]) -> Vec<Line> {
    let mut lines = Vec::with_capacity(bytes.len() / 512 + 1);
    let mut start = if bytes.starts_with(BOM) { BOM.len() } else { 0 };
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
