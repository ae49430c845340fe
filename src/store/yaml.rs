//! The YAML backend: `.beads/beads/<id>.yaml`, one bead per file, the same field names as bd's
//! JSONL so converting is a change of container, not a translation.
//!
//! Parallel branches that touch different beads never conflict; an edit to one bead conflicts in
//! one small file a person can read.

use std::path::{Path, PathBuf};

use crate::bead::Bead;
use crate::error::{Error, Result};

use super::fsio::{self, Fingerprint};
use super::{Problem, Severity};

/// A bead file as read.
#[derive(Debug)]
pub struct YamlFile {
    pub path: PathBuf,
    pub fingerprint: Option<Fingerprint>,
    pub bead: std::result::Result<Bead, Problem>,
}

/// The bead text Loom writes.
pub fn render(bead: &Bead) -> Result<String> {
    serde_norway::to_string(bead)
        .map_err(|e| Error::Other(format!("cannot write bead {} as YAML: {e}", bead.id)))
}

/// Parses one bead file's bytes. `shown` is the path used in messages.
pub fn parse(bytes: &[u8], path: &Path, shown: &Path) -> std::result::Result<Bead, Problem> {
    let problem = |line: Option<usize>, message: String| Problem {
        path: shown.to_path_buf(),
        line,
        id: id_from_path(path),
        severity: Severity::Error,
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        problem(
            Some(line),
            "invalid UTF-8; the file is kept as it is".into(),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(problem(None, "the file is empty".into()));
    }
    if super::conflict_markers(text.as_bytes()) {
        return Err(problem(None, CONFLICTED.into()));
    }
    if let Some(line) = too_deep(text) {
        return Err(problem(
            Some(line),
            format!(
                "collections nested deeper than {MAX_FLOW_DEPTH} levels; the file is kept as it is"
            ),
        ));
    }
    let mut bead: Bead = serde_norway::from_str(text).map_err(|e| {
        let msg = e.to_string();
        // serde_norway appends " at line L column C"; the line is reported separately.
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
        // A wrong type inside the bead is reported at the mapping's start: point at the field.
        let line = field_line(text, &msg).or_else(|| e.location().map(|l| l.line()));
        problem(line, format!("{msg}; the file is kept as it is"))
    })?;
    if bead.id.is_empty() {
        match id_from_path(path) {
            Some(id) => bead.id = id,
            None => return Err(problem(None, "the bead has no id".into())),
        }
    }
    Ok(bead)
}

/// What a bead file with merge-conflict markers is told.
pub const CONFLICTED: &str = "it has merge-conflict markers: resolve the merge in this file first (Loom will not write or commit the store until then)";

/// Deepest flow nesting (`[[[…` or `{{{…`) accepted: the YAML parser's time grows with the
/// square of the depth, and no bead needs more.
const MAX_FLOW_DEPTH: usize = 512;

/// The line where flow collections nest deeper than [`MAX_FLOW_DEPTH`], if they do. Brackets
/// are counted everywhere (quoted text included), which only errs toward refusing absurd files.
fn too_deep(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut line = 1;
    for b in text.bytes() {
        match b {
            b'\n' => line += 1,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Some(line);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// The line of the top-level key named in a "field `key`: …" message.
fn field_line(text: &str, message: &str) -> Option<usize> {
    let key = message.strip_prefix("field `")?.split('`').next()?;
    text.lines()
        .position(|l| {
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}

/// The id a bead file's name implies (`bd-a1.yaml` → `bd-a1`).
pub fn id_from_path(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let stem = name
        .strip_suffix(".yaml")
        .or_else(|| name.strip_suffix(".yml"))?;
    (!stem.is_empty() && !stem.starts_with('.')).then(|| stem.to_owned())
}

/// The bead files in `dir`, sorted by name.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        // Not only plain files: a symlink, FIFO or directory under a bead's name is read (and
        // reported as unreadable), never silently skipped.
        if id_from_path(&path).is_some() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Reads and parses one file; `None` if it does not exist. A file that cannot be read (a
/// symlink, a FIFO, no permission) is a problem of its own: the other beads still load.
pub fn read(path: &Path, shown: &Path) -> Result<Option<YamlFile>> {
    let (bytes, fingerprint) = match fsio::read_with_fingerprint(path) {
        Ok(Some(read)) => read,
        Ok(None) => return Ok(None),
        Err(e) => {
            let message = match &e {
                Error::Io { source, .. } => format!("cannot be read: {source}"),
                other => other.to_string(),
            };
            return Ok(Some(YamlFile {
                path: path.to_path_buf(),
                // Present but unreadable: no fingerprint matches it, so nothing replaces it.
                fingerprint: fsio::fingerprint(path).ok().flatten(),
                bead: Err(Problem {
                    path: shown.to_path_buf(),
                    line: None,
                    id: id_from_path(path),
                    severity: Severity::Error,
                    message,
                }),
            }));
        }
    };
    Ok(Some(YamlFile {
        path: path.to_path_buf(),
        fingerprint: Some(fingerprint),
        bead: parse(&bytes, path, shown),
    }))
}

/// Orders files so that one named after its bead's id comes before stray copies of that id
/// (the first file read for an id is the one that counts).
pub fn prefer_named(files: &mut [YamlFile]) {
    files.sort_by_key(|f| match &f.bead {
        Ok(b) => id_from_path(&f.path).as_deref() != Some(b.id.as_str()),
        Err(_) => true,
    });
}

/// Reads every file in `paths`, in parallel for large stores. `shown` maps a path for messages.
pub fn read_all(
    paths: &[PathBuf],
    shown: &(dyn Fn(&Path) -> PathBuf + Sync),
) -> Result<Vec<YamlFile>> {
    const MIN_FILES_PER_THREAD: usize = 256;
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .min(paths.len() / MIN_FILES_PER_THREAD)
        .max(1);
    let read_part = |part: &[PathBuf]| -> Result<Vec<YamlFile>> {
        let mut out = Vec::with_capacity(part.len());
        for p in part {
            // A file removed between listing and reading is simply gone.
            if let Some(f) = read(p, &shown(p))? {
                out.push(f);
            }
        }
        Ok(out)
    };
    if threads == 1 {
        return read_part(paths);
    }
    let chunk = paths.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .chunks(chunk)
            .map(|part| s.spawn(move || read_part(part)))
            .collect();
        let mut out = Vec::with_capacity(paths.len());
        for h in handles {
            let part = h
                .join()
                .map_err(|_| Error::Other("a YAML reader thread panicked".into()))??;
            out.extend(part);
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bead::{Dependency, Timestamp};

    #[test]
    fn round_trips_with_unknown_keys_and_multiline_text() {
        let mut bead = Bead {
            id: "x-1".into(),
            title: "Title: with colon".into(),
            description: Some("line one\nline two\n".into()),
            status: "open".into(),
            issue_type: "task".into(),
            priority: 1,
            created_at: Some(Timestamp::parse("2025-12-14T14:25:28.448654-08:00")),
            labels: vec!["true".into(), "1".into()],
            ..Bead::default()
        };
        bead.dependencies.push(Dependency {
            issue_id: "x-1".into(),
            depends_on_id: "x-2".into(),
            dep_type: "blocks".into(),
            metadata: Some(serde_json::json!("{}")),
            ..Dependency::default()
        });
        bead.extra.insert(
            "weird".into(),
            serde_json::json!({"a": [1, null, "no"], "b": 1.5}),
        );
        let text = render(&bead).unwrap();
        assert!(text.contains("description: |"), "{text}");
        let back = parse(
            text.as_bytes(),
            Path::new("x-1.yaml"),
            Path::new("x-1.yaml"),
        )
        .unwrap();
        assert_eq!(back, bead);
    }

    #[test]
    fn wrong_types_name_the_field_and_line() {
        let text = "id: x-1\ntitle: t\npriority: high\n";
        let p = parse(
            text.as_bytes(),
            Path::new("x-1.yaml"),
            Path::new(".beads/beads/x-1.yaml"),
        )
        .unwrap_err();
        assert!(p.message.contains("priority"), "{}", p.message);
        assert_eq!(p.line, Some(3));
        assert_eq!(p.id.as_deref(), Some("x-1"));
    }

    #[test]
    fn missing_id_comes_from_the_file_name() {
        let b = parse(
            b"title: t\n",
            Path::new("d/x-9.yaml"),
            Path::new("x-9.yaml"),
        )
        .unwrap();
        assert_eq!(b.id, "x-9");
    }
}
