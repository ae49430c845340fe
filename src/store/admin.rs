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

const GITIGNORE: &str = "# Loom's temporary files (left only if a write or a conversion was interrupted)\n.loom-*.tmp\n.loom-convert\n.loom.lock\n";

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
        finish_conversion(&self.layout)?;
        let from = Layout::at(&self.layout.root)?.format;
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
            let bytes = fsio::read_with_fingerprint(&path)?
                .map(|(b, _)| b)
                .unwrap_or_default();
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
        if to == Format::Yaml {
            for b in &beads {
                if !layout::id_is_file_safe(&b.id) {
                    return Err(Error::Usage(format!(
                        "bead id {:?} cannot be a file name; rename it before converting",
                        b.id
                    )));
                }
            }
        }
        // Crash-safe: a journal names the target; the new backend is built under a staging
        // name and renamed into place in one step; only then is the old one removed. A kill
        // at any point leaves the old backend or the new one in use (`Layout::at` reads the
        // journal), and the next write clears what is left over (`finish_conversion`).
        let beads_dir = self.layout.beads_dir.clone();
        let journal = beads_dir.join(layout::CONVERT_JOURNAL);
        write_synced(&journal, to.name().as_bytes())?;
        let mut paths = Vec::new();
        match to {
            Format::Yaml => {
                let staging = beads_dir.join(STAGING_YAML);
                if staging.exists() {
                    std::fs::remove_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
                }
                std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
                for b in &beads {
                    let path = staging.join(format!("{}.yaml", b.id));
                    write_synced(&path, yaml::render(b)?.as_bytes())?;
                    paths.push(target.relative(&target.yaml_path(&b.id)));
                }
                fsio::sync_dir(&staging)?;
                let dir = target.yaml_dir();
                std::fs::rename(&staging, &dir).map_err(|e| Error::io(&dir, e))?;
                fsio::sync_dir(&beads_dir)?;
                let old = self.layout.jsonl_path();
                std::fs::remove_file(&old).map_err(|e| Error::io(&old, e))?;
                paths.push(self.layout.relative(&old));
            }
            Format::Jsonl => {
                let path = target.beads_dir.join(layout::JSONL_FILE);
                let bytes = jsonl::render_all(beads.iter().copied())
                    .map_err(|e| Error::Other(format!("cannot serialize beads: {e}")))?;
                let staging = beads_dir.join(STAGING_JSONL);
                write_synced(&staging, &bytes)?;
                if path.exists() {
                    return Err(Error::Contended { path, attempts: 1 });
                }
                std::fs::rename(&staging, &path).map_err(|e| Error::io(&path, e))?;
                fsio::sync_dir(&beads_dir)?;
                paths.push(target.relative(&path));
                let dir = self.layout.yaml_dir();
                paths.extend(
                    remove_yaml_dir(&dir)?
                        .iter()
                        .map(|f| self.layout.relative(f)),
                );
            }
        }
        std::fs::remove_file(&journal).map_err(|e| Error::io(&journal, e))?;
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

/// Where `convert` builds the new YAML backend before renaming it into place.
const STAGING_YAML: &str = ".loom-convert-yaml.tmp";
/// Where `convert` writes the new JSONL file before renaming it into place.
const STAGING_JSONL: &str = ".loom-convert-jsonl.tmp";

/// Writes `bytes` to a new file at `path` and flushes it to disk.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

/// Removes the bead files of a YAML directory (and the directory if nothing else is in it);
/// returns the files removed.
fn remove_yaml_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for file in yaml::list(dir)? {
        std::fs::remove_file(&file).map_err(|e| Error::io(&file, e))?;
        removed.push(file);
    }
    let keep = dir.join(".gitkeep");
    if keep.exists() {
        std::fs::remove_file(&keep).map_err(|e| Error::io(&keep, e))?;
        removed.push(keep);
    }
    // Only an empty directory goes; anything else the user put there stays.
    let _ = std::fs::remove_dir(dir);
    Ok(removed)
}

/// Clears what an interrupted `loom convert` left (under the store lock): the backend no
/// longer in use, the staging copy, the journal. Nothing to do without a journal.
pub fn finish_conversion(layout: &Layout) -> Result<()> {
    let beads_dir = &layout.beads_dir;
    let journal = beads_dir.join(layout::CONVERT_JOURNAL);
    if layout::conversion_journal(beads_dir).is_none() {
        if journal.exists() {
            let _ = std::fs::remove_file(&journal);
        }
        return Ok(());
    }
    let now = Layout::at(&layout.root)?;
    match now.format {
        Format::Yaml => {
            for f in [layout::JSONL_FILE, layout::JSONL_FALLBACK] {
                let p = beads_dir.join(f);
                if p.is_file() {
                    std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                }
            }
            let staging = beads_dir.join(STAGING_JSONL);
            let _ = std::fs::remove_file(staging);
        }
        Format::Jsonl => {
            let staging = beads_dir.join(STAGING_YAML);
            if staging.exists() {
                std::fs::remove_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
            }
            if now.yaml_dir().is_dir() {
                remove_yaml_dir(&now.yaml_dir())?;
            }
        }
    }
    std::fs::remove_file(&journal).map_err(|e| Error::io(&journal, e))
}
