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

    /// The layout of `<root>/.beads`, detecting the format.
    pub fn at(root: &Path) -> Result<Layout> {
        let beads_dir = root.join(BEADS_DIR);
        let yaml = beads_dir.join(YAML_DIR).is_dir();
        let jsonl =
            beads_dir.join(JSONL_FILE).is_file() || beads_dir.join(JSONL_FALLBACK).is_file();
        let format = match (yaml, jsonl) {
            (true, true) => {
                return Err(Error::Config(format!(
                    "{} holds both {YAML_DIR}/ and a JSONL file; a repository uses one backend. \
                     Move one of them away, or run `loom convert --to yaml|jsonl` after removing the stale one",
                    beads_dir.display()
                )));
            }
            (true, false) => Format::Yaml,
            (false, true) => Format::Jsonl,
            // An empty .beads/: bd's markers mean JSONL, anything else the default.
            (false, false) => {
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

    /// `issue-prefix` from `.beads/config.yaml`, if set.
    pub fn configured_prefix(&self) -> Result<Option<String>> {
        let path = self.beads_dir.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let value: serde_json::Value = serde_norway::from_str(&text)
            .map_err(|e| Error::Config(format!("{}: {e}", self.relative(&path).display())))?;
        Ok(value
            .get("issue-prefix")
            .and_then(|v| v.as_str())
            .map(|s| s.trim().trim_end_matches('-').to_owned())
            .filter(|s| !s.is_empty()))
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
