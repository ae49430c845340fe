//! Where the beads of a repository live and which backend holds them.
//!
//! `.beads/beads/` (one YAML file per bead) means YAML; `.beads/issues.jsonl` (else
//! `.beads/beads.jsonl`) means JSONL. Having both is refused: a repository uses exactly one
//! backend. A `.beads/` with neither (a fresh bd checkout backed by a database) is JSONL.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The two on-disk formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// One JSON object per line in `.beads/issues.jsonl`, bd-compatible.
    Jsonl,
    /// One YAML file per bead in `.beads/beads/<id>.yaml`.
    Yaml,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Yaml => "yaml",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "jsonl" | "json" => Ok(Format::Jsonl),
            "yaml" | "yml" => Ok(Format::Yaml),
            other => Err(Error::Usage(format!(
                "unknown format {other:?}: use yaml or jsonl"
            ))),
        }
    }
}

pub const BEADS_DIR: &str = ".beads";
pub const YAML_DIR: &str = "beads";
pub const JSONL_FILE: &str = "issues.jsonl";
pub const JSONL_FALLBACK: &str = "beads.jsonl";
pub const CONFIG_FILE: &str = "config.yaml";

/// Paths of one repository's bead store.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The directory that contains `.beads/` (usually the worktree root).
    pub root: PathBuf,
    /// `<root>/.beads`.
    pub beads_dir: PathBuf,
    pub format: Format,
}

impl Layout {
    /// Finds `.beads/` in `start` or the nearest directory above it.
    pub fn discover(start: &Path) -> Result<Layout> {
        let mut dir = Some(start);
        while let Some(d) = dir {
            let candidate = d.join(BEADS_DIR);
            if candidate.is_dir() {
                return Layout::at(d);
            }
            // Stop at the top of a git worktree: beads of an enclosing repository are not ours.
            if d.join(".git").exists() {
                break;
            }
            dir = d.parent();
        }
        Err(Error::NoBeadsDir {
            start: start.to_path_buf(),
        })
    }

    /// The layout of `<root>/.beads`, detecting the format. A `.beads` (or `.beads/beads`)
    /// that is a symlink leading out of `root` is refused: its files would be read into
    /// commits. An interrupted `loom convert` leaves a journal naming its target; the backend
    /// it had switched to (or not yet) is the one in use (see [`conversion_journal`]).
    pub fn at(root: &Path) -> Result<Layout> {
        let beads_dir = root.join(BEADS_DIR);
        for dir in [beads_dir.clone(), beads_dir.join(YAML_DIR)] {
            refuse_outside_symlink(root, &dir)?;
        }
        let yaml = beads_dir.join(YAML_DIR).is_dir();
        // Anything under the JSONL name means JSONL (a FIFO or a symlink there is refused when
        // read, not silently taken for an empty YAML store).
        let present = |name: &str| std::fs::symlink_metadata(beads_dir.join(name)).is_ok();
        let jsonl = present(JSONL_FILE) || present(JSONL_FALLBACK);
        let format = match (conversion_journal(&beads_dir), yaml, jsonl) {
            (Some(Format::Yaml), true, _) | (Some(Format::Jsonl), true, false) => Format::Yaml,
            (Some(Format::Jsonl), _, true) | (Some(Format::Yaml), false, _) => Format::Jsonl,
            (None, true, true) => {
                return Err(Error::Config(format!(
                    "{} holds both {YAML_DIR}/ and a JSONL file; a repository uses one backend. \
                     Move one of them away, or run `loom convert --to yaml|jsonl` after removing the stale one",
                    beads_dir.display()
                )));
            }
            (_, true, false) => Format::Yaml,
            (_, false, true) => Format::Jsonl,
            // An empty .beads/: bd's markers mean JSONL, anything else the default.
            (_, false, false) => {
                let bd_markers = ["metadata.json", "dolt", "beads.db"]
                    .iter()
                    .any(|m| beads_dir.join(m).exists());
                if bd_markers {
                    Format::Jsonl
                } else {
                    Format::Yaml
                }
            }
        };
        Ok(Layout {
            root: root.to_path_buf(),
            beads_dir,
            format,
        })
    }

    /// A layout for `root` with an explicit format (for `init` and `convert`).
    pub fn with_format(root: &Path, format: Format) -> Layout {
        Layout {
            root: root.to_path_buf(),
            beads_dir: root.join(BEADS_DIR),
            format,
        }
    }

    /// The JSONL file: `issues.jsonl`, or `beads.jsonl` when only that exists.
    pub fn jsonl_path(&self) -> PathBuf {
        let primary = self.beads_dir.join(JSONL_FILE);
        let fallback = self.beads_dir.join(JSONL_FALLBACK);
        if !primary.exists() && fallback.exists() {
            fallback
        } else {
            primary
        }
    }

    /// The directory of YAML bead files.
    pub fn yaml_dir(&self) -> PathBuf {
        self.beads_dir.join(YAML_DIR)
    }

    /// The file that holds bead `id` in the YAML backend.
    pub fn yaml_path(&self, id: &str) -> PathBuf {
        self.yaml_dir().join(format!("{id}.yaml"))
    }

    /// `path` relative to the root, for messages and git.
    pub fn relative(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| path.to_path_buf())
    }

    /// `.beads/config.yaml` (bd's settings file) as a value; `Null` when there is none.
    fn bd_config(&self) -> Result<serde_json::Value> {
        let path = self.beads_dir.join(CONFIG_FILE);
        let Some(text) = super::fsio::read_small(&path, 1 << 20)? else {
            return Ok(serde_json::Value::Null);
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        serde_norway::from_str(text)
            .map_err(|e| Error::Config(format!("{}: {e}", self.relative(&path).display())))
    }

    /// `issue-prefix` from `.beads/config.yaml`, if set.
    pub fn configured_prefix(&self) -> Result<Option<String>> {
        Ok(self
            .bd_config()?
            .get("issue-prefix")
            .and_then(|v| v.as_str())
            .map(|s| s.trim().trim_end_matches('-').to_owned())
            .filter(|s| !s.is_empty()))
    }

    /// Custom statuses from `.beads/config.yaml` (bd's `status.custom`: a list or a
    /// comma-separated string of `name` or `name:category`, written as a dotted key or nested
    /// under `status:`); their names.
    pub fn custom_statuses(&self) -> Result<Vec<String>> {
        let config = self.bd_config()?;
        let value = config
            .get("status.custom")
            .or_else(|| config.get("status").and_then(|s| s.get("custom")));
        let entries: Vec<String> = match value {
            Some(serde_json::Value::String(s)) => s.split(',').map(str::to_owned).collect(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        Ok(entries
            .iter()
            .map(|e| e.split(':').next().unwrap_or("").trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect())
    }
}

/// The journal an interrupted `loom convert` leaves in `.beads/`: it names the target format.
pub const CONVERT_JOURNAL: &str = ".loom-convert";

/// The format a conversion under way was switching to, if one is.
pub fn conversion_journal(beads_dir: &Path) -> Option<Format> {
    let text = super::fsio::read_small(&beads_dir.join(CONVERT_JOURNAL), 64)
        .ok()
        .flatten()?;
    text.trim().parse().ok()
}

/// Refuses `dir` if it is a symlink whose target is not inside `root`.
fn refuse_outside_symlink(root: &Path, dir: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return Ok(());
    };
    if !meta.file_type().is_symlink() {
        return Ok(());
    }
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    match std::fs::canonicalize(dir) {
        Ok(target) if target.starts_with(&root) => Ok(()),
        Ok(target) => Err(Error::Refused(format!(
            "{} is a symlink to {}, outside the repository; Loom does not read or commit beads from there. Replace the symlink with the directory itself",
            dir.display(),
            target.display()
        ))),
        Err(_) => Err(Error::Refused(format!(
            "{} is a symlink that leads nowhere; remove it or point it inside the repository",
            dir.display()
        ))),
    }
}

/// Whether `id` can name a file: Loom refuses ids that could escape `.beads/beads/`.
pub fn id_is_file_safe(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '+'))
}
