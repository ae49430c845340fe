//! A transaction: the latest beads on disk, read under the store lock, changed in memory, then
//! written back with a last check that nobody else wrote in between.
//!
//! JSONL loads the whole file (it is one file); YAML loads bead files on demand, so changing one
//! bead in a 10,000-bead repository reads one file.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use crate::bead::{self, Bead, Timestamp, id as bead_id};
use crate::error::{Error, Result};

use super::fsio::{self, Fingerprint, Replaced};
use super::jsonl::JsonlDoc;
use super::layout::{Format, Layout, id_is_file_safe};
use super::{Applied, Change, Problem, yaml};

enum Backing {
    Jsonl {
        path: PathBuf,
        doc: JsonlDoc,
        fingerprint: Option<Fingerprint>,
    },
    Yaml {
        /// Where each loaded bead came from, and the fingerprint it had.
        files: HashMap<String, (PathBuf, Option<Fingerprint>)>,
        all_loaded: bool,
    },
}

/// Options of a transaction.
#[derive(Clone, Copy, Debug, Default)]
pub struct TxOptions {
    /// Keep `updated_at` as the caller set it (import of newer records, convert); otherwise
    /// every changed bead gets a new, strictly later `updated_at`.
    pub keep_updated_at: bool,
    /// The write gets no commit of its own (the next commit carries it).
    pub uncommitted: bool,
}

/// The beads as they are on disk now, open for change.
pub struct Tx {
    layout: Layout,
    backing: Backing,
    beads: Vec<Bead>,
    /// Beads read for indexing only (JSONL); read completely when first asked for.
    index_only: Vec<bool>,
    index: HashMap<String, usize>,
    /// Records that exist on disk but cannot be read, by id.
    kept: HashMap<String, Problem>,
    /// The first version of each touched bead (`None`: inserted in this transaction).
    before: HashMap<String, Option<Bead>>,
    touched: Vec<String>,
    options: TxOptions,
    /// A bead file read in this transaction holds merge-conflict markers.
    conflicted: Option<PathBuf>,
    /// Beads deleted in this transaction.
    removed: HashSet<String>,
}

pub(super) enum Outcome {
    Done(Applied, Vec<(PathBuf, Fingerprint)>),
    Conflict,
}

impl Tx {
    pub(super) fn begin(layout: &Layout, options: TxOptions) -> Result<Tx> {
        let mut tx = Tx {
            layout: layout.clone(),
            backing: Backing::Yaml {
                files: HashMap::new(),
                all_loaded: false,
            },
            beads: Vec::new(),
            index_only: Vec::new(),
            index: HashMap::new(),
            kept: HashMap::new(),
            before: HashMap::new(),
            touched: Vec::new(),
            options,
            conflicted: None,
            removed: HashSet::new(),
        };
        if layout.format == Format::Jsonl {
            let path = layout.jsonl_path();
            let (bytes, fingerprint) = match fsio::read_with_fingerprint(&path)? {
                Some((b, f)) => (b, Some(f)),
                None => (Vec::new(), None),
            };
            let shown = layout.relative(&path);
            if super::conflict_markers(&bytes) {
                return Err(conflicted(&shown));
            }
            // Untouched lines are written back verbatim, so only the beads a change touches
            // need reading completely (see `Tx::complete`).
            let (mut doc, problems) = JsonlDoc::parse_index(bytes, &shown);
            tx.beads = std::mem::take(&mut doc.beads);
            tx.index_only = vec![true; tx.beads.len()];
            for p in problems {
                if let Some(id) = p.id.clone() {
                    tx.kept.entry(id).or_insert(p);
                }
            }
            tx.reindex();
            tx.backing = Backing::Jsonl {
                path,
                doc,
                fingerprint,
            };
        }
        Ok(tx)
    }

    fn reindex(&mut self) {
        self.index.clear();
        for (i, b) in self.beads.iter().enumerate() {
            self.index.entry(b.id.clone()).or_insert(i);
        }
    }

    /// The repository layout this transaction works on.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn push_loaded(&mut self, file: yaml::YamlFile) {
        match file.bead {
            Ok(bead) => {
                if self.index.contains_key(&bead.id) {
                    return; // duplicate id in another file: the first one read wins
                }
                if let Backing::Yaml { files, .. } = &mut self.backing {
                    files.insert(bead.id.clone(), (file.path, file.fingerprint));
                }
                self.index.insert(bead.id.clone(), self.beads.len());
                self.beads.push(bead);
                self.index_only.push(false);
            }
            Err(problem) => {
                if problem.message == super::yaml::CONFLICTED {
                    self.conflicted.get_or_insert_with(|| problem.path.clone());
                }
                if let Some(id) = problem.id.clone() {
                    self.kept.entry(id).or_insert(problem);
                }
            }
        }
    }

    /// Loads bead `id` if it is not loaded yet (YAML).
    fn load(&mut self, id: &str) -> Result<()> {
        if self.index.contains_key(id) || self.kept.contains_key(id) {
            return Ok(());
        }
        let Backing::Yaml { all_loaded, .. } = &self.backing else {
            return Ok(());
        };
        if *all_loaded {
            return Ok(());
        }
        if id_is_file_safe(id) {
            let path = self.layout.yaml_path(id);
            if let Some(file) = yaml::read(&path, &self.layout.relative(&path))? {
                self.push_loaded(file);
                if self.index.contains_key(id) || self.kept.contains_key(id) {
                    return Ok(());
                }
            }
        }
        // Not under its own name: it may live in a file named otherwise.
        self.load_all()
    }

    fn load_all(&mut self) -> Result<()> {
        let Backing::Yaml { all_loaded, files } = &self.backing else {
            return Ok(());
        };
        if *all_loaded {
            return Ok(());
        }
        let loaded_paths: HashSet<PathBuf> = files.values().map(|(p, _)| p.clone()).collect();
        let paths: Vec<PathBuf> = yaml::list(&self.layout.yaml_dir())?
            .into_iter()
            .filter(|p| !loaded_paths.contains(p))
            .collect();
        let root = self.layout.root.clone();
        let mut files = yaml::read_all(&paths, &|p| fsio::shown(&root, p))?;
        yaml::prefer_named(&mut files);
        for file in files {
            self.push_loaded(file);
        }
        if let Backing::Yaml { all_loaded, .. } = &mut self.backing {
            *all_loaded = true;
        }
        Ok(())
    }

    /// Reads bead `i` completely if only its index fields were read.
    fn complete(&mut self, i: usize) -> Result<()> {
        if !self.index_only.get(i).copied().unwrap_or(false) {
            return Ok(());
        }
        if let Backing::Jsonl { doc, path, .. } = &self.backing {
            let full = doc.full(i).ok_or_else(|| {
                Error::Other(format!(
                    "{}: the record of {} could not be re-read",
                    path.display(),
                    self.beads[i].id
                ))
            })?;
            self.beads[i] = full;
        }
        self.index_only[i] = false;
        Ok(())
    }

    /// Every bead (loads all of them). For JSONL these may carry only the fields listings and
    /// the dependency graph use; [`Tx::get`] gives one completely.
    pub fn all(&mut self) -> Result<&[Bead]> {
        self.load_all()?;
        Ok(&self.beads)
    }

    /// Every id in the store, including records that cannot be read.
    pub fn ids(&mut self) -> Result<Vec<String>> {
        let mut ids: Vec<String> = match &self.backing {
            Backing::Yaml {
                all_loaded: false, ..
            } => yaml::list(&self.layout.yaml_dir())?
                .iter()
                .filter_map(|p| yaml::id_from_path(p))
                .collect(),
            _ => Vec::new(),
        };
        ids.extend(self.index.keys().cloned());
        ids.extend(self.kept.keys().cloned());
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// The bead with this exact id, complete.
    pub fn get(&mut self, id: &str) -> Result<Option<&Bead>> {
        if self.removed.contains(id) {
            return Ok(None);
        }
        self.load(id)?;
        let Some(&i) = self.index.get(id) else {
            return Ok(None);
        };
        self.complete(i)?;
        Ok(Some(&self.beads[i]))
    }

    /// Whether a record with this id exists (readable or not).
    pub fn exists(&mut self, id: &str) -> Result<bool> {
        self.load(id)?;
        Ok(self.index.contains_key(id) || self.kept.contains_key(id))
    }

    /// The bead with this exact id, for change. Errors if it is missing or unreadable.
    pub fn get_mut(&mut self, id: &str) -> Result<&mut Bead> {
        if self.removed.contains(id) {
            return Err(Error::NotFound(id.to_owned()));
        }
        self.load(id)?;
        let Some(&i) = self.index.get(id) else {
            return Err(self.missing(id));
        };
        self.complete(i)?;
        if !self.before.contains_key(id) {
            self.before
                .insert(id.to_owned(), Some(self.beads[i].clone()));
            self.touched.push(id.to_owned());
        }
        Ok(&mut self.beads[i])
    }

    fn missing(&self, id: &str) -> Error {
        match self.kept.get(id) {
            Some(p) => Error::Malformed {
                id: id.to_owned(),
                location: p.location(),
                message: p.message.clone(),
            },
            None => Error::NotFound(id.to_owned()),
        }
    }

    /// Deletes the bead with this exact id; its last version. Until the transaction ends the
    /// bead stays in [`Tx::all`] as a tombstone (never a blocker, never ready), and
    /// [`Tx::get`] no longer finds it.
    pub fn remove(&mut self, id: &str) -> Result<Bead> {
        let last = self.get_mut(id)?.clone();
        if let Some(&i) = self.index.get(id) {
            bead::set_status(
                &mut self.beads[i],
                bead::status::TOMBSTONE,
                &Timestamp::now(),
                None,
            );
        }
        self.removed.insert(id.to_owned());
        Ok(last)
    }

    /// Adds a new bead. Errors if the id is taken.
    pub fn insert(&mut self, bead: Bead) -> Result<()> {
        if self.exists(&bead.id)? {
            return Err(Error::Exists(bead.id));
        }
        if self.layout.format == Format::Yaml && !id_is_file_safe(&bead.id) {
            return Err(Error::Usage(format!(
                "{:?} cannot be a bead id: use letters, digits, '-', '_' and '.'",
                bead.id
            )));
        }
        self.before.insert(bead.id.clone(), None);
        self.touched.push(bead.id.clone());
        self.index.insert(bead.id.clone(), self.beads.len());
        self.beads.push(bead);
        self.index_only.push(false);
        Ok(())
    }

    /// Resolves a full or partial id (`bd-a1b2`, `a1b2`, `a1b`) to exactly one bead id.
    pub fn resolve(&mut self, query: &str) -> Result<String> {
        let query = query.trim();
        if query.is_empty() {
            return Err(Error::Usage("an empty bead id was given".into()));
        }
        if self.exists(query)? {
            return Ok(query.to_owned());
        }
        let ids = self.ids()?;
        bead_id::resolve(ids.iter().map(String::as_str), query)
            .map_err(|candidates| resolve_error(query, candidates))
    }

    /// The id prefix for new beads: `.beads/config.yaml`, else the most common one in use, else
    /// the repository directory's name.
    pub fn prefix(&mut self) -> Result<String> {
        if let Some(p) = self.layout.configured_prefix()? {
            return Ok(p);
        }
        let ids = self.ids()?;
        if let Some(p) = bead_id::infer_prefix(ids.iter().map(String::as_str)) {
            return Ok(p);
        }
        let name = self
            .layout
            .root
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "bd".to_owned());
        Ok(bead_id::prefix_from_dir_name(&name))
    }

    /// A fresh top-level id for a bead with this content (bd's scheme: the prefix, a hash of
    /// the content and creation time, as short as the number of beads allows).
    pub fn new_id(
        &mut self,
        title: &str,
        description: &str,
        creator: &str,
        created: &Timestamp,
    ) -> Result<String> {
        let prefix = self.prefix()?;
        let ids = self.ids()?;
        let existing = ids
            .iter()
            .filter(|id| bead_id::is_top_level_under(id, &prefix))
            .count();
        let seed = bead_id::IdSeed {
            prefix: &prefix,
            title,
            description,
            creator,
            created_at_nanos: created.sort_key(),
        };
        let taken: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        bead_id::generate(&seed, existing, |id| taken.contains(id))
            .ok_or_else(|| Error::Other(format!("could not find a free id under prefix {prefix}")))
    }

    /// Problems with unreadable records met so far.
    pub fn unreadable(&self) -> impl Iterator<Item = &Problem> {
        self.kept.values()
    }

    /// The files [`Tx::commit`] may write (touched beads' files; JSONL: the one file), before
    /// it writes them.
    pub(super) fn pending_paths(&self) -> Vec<PathBuf> {
        if self.touched.is_empty() {
            return Vec::new();
        }
        match &self.backing {
            Backing::Jsonl { path, .. } => vec![path.clone()],
            Backing::Yaml { files, .. } => self
                .touched
                .iter()
                .map(|id| match files.get(id) {
                    Some((p, _)) => p.clone(),
                    None => self.layout.yaml_path(id),
                })
                .collect(),
        }
    }

    /// Writes the changes. `Conflict` means another program wrote first: start over.
    pub(super) fn commit(mut self) -> Result<Outcome> {
        if let Some(path) = &self.conflicted {
            return Err(conflicted(path));
        }
        let mut changes = Vec::new();
        let mut removed = Vec::new();
        for id in std::mem::take(&mut self.touched) {
            let Some(&i) = self.index.get(&id) else {
                continue;
            };
            let before = self.before.remove(&id).flatten();
            if self.removed.contains(&id) {
                // Deleting a bead made in this same transaction leaves nothing to write.
                removed.extend(before);
                continue;
            }
            if before.as_ref() == Some(&self.beads[i]) {
                continue;
            }
            let after = &mut self.beads[i];
            if !self.options.keep_updated_at || after.updated_at.is_none() {
                let previous = before.as_ref().and_then(|b| b.updated_at.clone());
                let floor = previous.max(after.updated_at.clone());
                after.updated_at = Some(match (&before, floor) {
                    (None, Some(t)) => t, // a new bead keeps the time it was made
                    (_, floor) => Timestamp::now_after(floor.as_ref()),
                });
            }
            bead::validate(after).map_err(|problems| Error::Invalid {
                id: id.clone(),
                problems,
            })?;
            changes.push(Change {
                id,
                before,
                after: after.clone(),
            });
        }
        if changes.is_empty() && removed.is_empty() {
            return Ok(Outcome::Done(Applied::default(), Vec::new()));
        }
        let temp_dir = self.layout.beads_dir.clone();
        std::fs::create_dir_all(&temp_dir).map_err(|e| Error::io(&temp_dir, e))?;
        let mut written = Vec::new();
        let mut paths = Vec::new();
        match &self.backing {
            Backing::Jsonl {
                path,
                doc,
                fingerprint,
            } => {
                let mut changed = HashMap::new();
                let mut added = Vec::new();
                for c in &changes {
                    if c.before.is_some() {
                        changed.insert(c.id.clone(), Some(c.after.clone()));
                    } else {
                        added.push(c.after.clone());
                    }
                }
                for gone in &removed {
                    changed.insert(gone.id.clone(), None);
                }
                let bytes = doc
                    .render(&changed, &added)
                    .map_err(|e| Error::Other(format!("cannot serialize beads: {e}")))?;
                match fsio::replace(path, &temp_dir, &bytes, *fingerprint)? {
                    Replaced::Conflict => return Ok(Outcome::Conflict),
                    Replaced::Done(fp) => written.push((path.clone(), fp)),
                }
                paths.push(self.layout.relative(path));
            }
            Backing::Yaml { files, .. } => {
                let dir = self.layout.yaml_dir();
                std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                for c in &changes {
                    let (path, expected) = match files.get(&c.id) {
                        Some((p, f)) => (p.clone(), *f),
                        None => (self.layout.yaml_path(&c.id), None),
                    };
                    let text = yaml::render(&c.after)?;
                    match fsio::replace(&path, &temp_dir, text.as_bytes(), expected)? {
                        // Files already replaced stay: the retry re-applies the change to the
                        // latest state, which then includes them.
                        Replaced::Conflict => return Ok(Outcome::Conflict),
                        Replaced::Done(fp) => written.push((path.clone(), fp)),
                    }
                    paths.push(self.layout.relative(&path));
                }
                for gone in &removed {
                    let Some((path, expected)) = files.get(&gone.id) else {
                        continue;
                    };
                    if let Replaced::Conflict = fsio::remove(path, *expected)? {
                        return Ok(Outcome::Conflict);
                    }
                    paths.push(self.layout.relative(path));
                }
            }
        }
        Ok(Outcome::Done(
            Applied {
                changes,
                removed,
                paths,
            },
            written,
        ))
    }
}

/// The error for a query that matched no bead or several.
pub fn resolve_error(query: &str, candidates: Vec<String>) -> Error {
    if candidates.is_empty() {
        Error::NotFound(query.to_owned())
    } else {
        Error::Ambiguous {
            query: query.to_owned(),
            candidates,
        }
    }
}

/// The refusal to write a store with merge-conflict markers.
fn conflicted(path: &std::path::Path) -> Error {
    Error::Refused(format!(
        "resolve the merge in {} first: it holds merge-conflict markers (<<<<<<< … >>>>>>>). \
         Loom writes and commits nothing in the bead store until they are gone",
        path.display()
    ))
}
