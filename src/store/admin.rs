//! Whole-store operations: creating `.beads/` and converting between backends.

use std::path::{Path, PathBuf};

use crate::bead::Bead;
use crate::error::{Error, Result};

use super::fsio::{self, Replaced};
use super::layout::{self, Format, Layout};
use super::{LOCK_TIMEOUT, Severity, Store, jsonl, yaml};

/// What `init` created.
#[derive(Clone, Debug)]
pub struct Initialized {
    pub layout: Layout,
    pub prefix: String,
    /// Files written, relative to the root.
    pub paths: Vec<PathBuf>,
}

const GITIGNORE: &str =
    "# Loom's temporary files (left only if a write was interrupted)\n.loom-*.tmp\n.loom.lock\n";

fn write_new(path: &Path, temp_dir: &Path, text: &str) -> Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    match fsio::replace(path, temp_dir, text.as_bytes(), None)? {
        Replaced::Done(_) => Ok(true),
        Replaced::Conflict => Ok(false), // someone created it meanwhile: theirs stays
    }
}

/// Creates `.beads/` under `root` in `format` with `prefix`. Refuses if a store is already
/// there; keeps an existing `config.yaml` and `.gitignore`.
pub fn init(root: &Path, format: Format, prefix: &str, lock_path: &Path) -> Result<Initialized> {
    let _guard = fsio::lock(lock_path, LOCK_TIMEOUT)?;
    let beads_dir = root.join(layout::BEADS_DIR);
    if beads_dir.is_dir() {
        let existing = Layout::at(root)?;
        let has_store = existing.yaml_dir().is_dir() || existing.jsonl_path().is_file();
        if has_store {
            return Err(Error::Usage(format!(
                "{} already holds a {} bead store; use `loom convert --to {}` to switch formats",
                beads_dir.display(),
                existing.format.name(),
                if existing.format == Format::Yaml {
                    "jsonl"
                } else {
                    "yaml"
                }
            )));
        }
    }
    std::fs::create_dir_all(&beads_dir).map_err(|e| Error::io(&beads_dir, e))?;
    let layout = Layout::with_format(root, format);
    let mut paths = Vec::new();
    let config = beads_dir.join(layout::CONFIG_FILE);
    let config_text = format!(
        "# Bead store settings, shared with the bd CLI.\n# New bead ids start with this prefix.\nissue-prefix: \"{prefix}\"\n"
    );
    if write_new(&config, &beads_dir, &config_text)? {
        paths.push(layout.relative(&config));
    }
    let ignore = beads_dir.join(".gitignore");
    if write_new(&ignore, &beads_dir, GITIGNORE)? {
        paths.push(layout.relative(&ignore));
    }
    match format {
        Format::Yaml => {
            let dir = layout.yaml_dir();
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let keep = dir.join(".gitkeep");
            if write_new(&keep, &beads_dir, "")? {
                paths.push(layout.relative(&keep));
            }
        }
        Format::Jsonl => {
            let file = beads_dir.join(layout::JSONL_FILE);
            if write_new(&file, &beads_dir, "")? {
                paths.push(layout.relative(&file));
            }
        }
    }
    let prefix = layout
        .configured_prefix()?
        .unwrap_or_else(|| prefix.to_owned());
    Ok(Initialized {
        layout,
        prefix,
        paths,
    })
}

/// What `convert` did.
#[derive(Clone, Debug)]
pub struct Converted {
    pub from: Format,
    pub to: Format,
    pub beads: usize,
    pub layout: Layout,
    /// Files written or removed, relative to the root.
    pub paths: Vec<PathBuf>,
}

impl Store {
    /// Moves every bead to the other backend, losslessly; `after` runs under the lock (the git
    /// commit). Refuses while any record is unreadable (it would be lost).
    pub fn convert(
        &self,
        to: Format,
        after: impl FnOnce(&Converted) -> Result<()>,
    ) -> Result<Converted> {
        let _guard = fsio::lock(&self.lock_path, LOCK_TIMEOUT)?;
        let from = self.layout.format;
        if from == to {
            return Err(Error::Usage(format!(
                "the beads are already stored as {}",
                to.name()
            )));
        }
        let snap = self.load()?;
        let unreadable: Vec<String> = snap
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(ToString::to_string)
            .collect();
        if !unreadable.is_empty() {
            return Err(Error::Usage(format!(
                "{} record(s) cannot be read and would be lost by converting; fix them first:\n  {}",
                unreadable.len(),
                unreadable.join("\n  ")
            )));
        }
        if from == Format::Jsonl {
            let path = self.layout.jsonl_path();
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let (doc, _) = jsonl::JsonlDoc::parse(bytes, &path);
            // Malformed lines were refused above, so anything kept is a foreign record.
            if doc.kept_count() > 0 {
                return Err(Error::Usage(format!(
                    "{} holds records that are not beads (e.g. bd memories); YAML cannot hold them. \
                     Remove them (bd export without --include-memories) and convert again",
                    path.display()
                )));
            }
        }
        let mut beads: Vec<&Bead> = snap.beads.iter().collect();
        beads.sort_by(|a, b| a.id.cmp(&b.id));
        let target = Layout::with_format(&self.layout.root, to);
        let temp_dir = self.layout.beads_dir.clone();
        let mut paths = Vec::new();
        match to {
            Format::Yaml => {
                for b in &beads {
                    if !layout::id_is_file_safe(&b.id) {
                        return Err(Error::Usage(format!(
                            "bead id {:?} cannot be a file name; rename it before converting",
                            b.id
                        )));
                    }
                }
                let dir = target.yaml_dir();
                std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                for b in &beads {
                    let path = target.yaml_path(&b.id);
                    let expected = fsio::fingerprint(&path)?;
                    if let Replaced::Conflict =
                        fsio::replace(&path, &temp_dir, yaml::render(b)?.as_bytes(), expected)?
                    {
                        return Err(Error::Contended { path, attempts: 1 });
                    }
                    paths.push(target.relative(&path));
                }
                let old = self.layout.jsonl_path();
                std::fs::remove_file(&old).map_err(|e| Error::io(&old, e))?;
                paths.push(self.layout.relative(&old));
            }
            Format::Jsonl => {
                let path = target.beads_dir.join(layout::JSONL_FILE);
                let bytes = jsonl::render_all(beads.iter().copied())
                    .map_err(|e| Error::Other(format!("cannot serialize beads: {e}")))?;
                if let Replaced::Conflict = fsio::replace(&path, &temp_dir, &bytes, None)? {
                    return Err(Error::Contended { path, attempts: 1 });
                }
                paths.push(target.relative(&path));
                let dir = self.layout.yaml_dir();
                for file in yaml::list(&dir)? {
                    std::fs::remove_file(&file).map_err(|e| Error::io(&file, e))?;
                    paths.push(self.layout.relative(&file));
                }
                let keep = dir.join(".gitkeep");
                if keep.exists() {
                    std::fs::remove_file(&keep).map_err(|e| Error::io(&keep, e))?;
                    paths.push(self.layout.relative(&keep));
                }
                // Only an empty directory goes; anything else the user put there stays.
                let _ = std::fs::remove_dir(&dir);
            }
        }
        let done = Converted {
            from,
            to,
            beads: beads.len(),
            layout: target,
            paths,
        };
        after(&done)?;
        Ok(done)
    }
}
