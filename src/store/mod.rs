//! Reading and writing `.beads/`: the JSONL and YAML backends behind one transaction API,
//! advisory locking, atomic writes with foreign-writer detection, and the live watcher.
//!
//! Every write follows the same path ([`Store::transact`]): take the lock, re-read what is on
//! disk, apply the change to that latest version, write atomically with a last check that no
//! other program replaced the file meanwhile (else start over), verify the result after the
//! rename, and only then run the caller's follow-up (the git commit) and acknowledge.

mod admin;
pub(crate) mod conversation;
pub(crate) mod fsio;
pub mod jsonl;
pub(crate) mod layout;
mod tx;
pub mod watch;
pub mod yaml;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::bead::{self, Bead};
use crate::error::{Error, Result};

pub use admin::{Converted, Initialized, init};
pub use conversation::ConversationEntry;
pub use layout::{Format, Layout};
pub use tx::{Tx, TxOptions, resolve_error};

/// How long a write waits for another Loom process to release the lock.
const LOCK_TIMEOUT: Duration = Duration::from_secs(60);
/// How many times a write starts over because another program wrote first.
const MAX_ATTEMPTS: usize = 50;

/// How serious a [`Problem`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The record could not be loaded; it is kept on disk untouched.
    Error,
    /// The record loaded but breaks a rule Loom enforces on write.
    Warning,
}

/// Something wrong with what is on disk, located precisely.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// Relative to the repository root.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The bead concerned, when it can be made out.
    pub id: Option<String>,
    pub severity: Severity,
    pub message: String,
}

impl Problem {
    /// `path:line` (or just `path`).
    pub fn location(&self) -> String {
        match self.line {
            Some(l) => format!("{}:{l}", self.path.display()),
            None => self.path.display().to_string(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.location())?;
        if let Some(id) = &self.id {
            write!(f, "{id}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Where a loaded bead lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// Shared by every bead of one file (a JSONL store has one for all).
    pub path: Arc<Path>,
    pub line: Option<usize>,
}

/// Everything in the store at one moment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub format: Format,
    /// Complete beads, or index-only ones (see [`Store::load_index`]).
    pub beads: Vec<Bead>,
    /// Parallel to `beads`.
    pub locations: Vec<Location>,
    pub problems: Vec<Problem>,
    /// For an index-only snapshot: where each bead is in the file, to read it completely on
    /// demand.
    index_of: Option<jsonl::Spans>,
}

impl Snapshot {
    fn empty(format: Format) -> Snapshot {
        Snapshot {
            format,
            beads: Vec::new(),
            locations: Vec::new(),
            problems: Vec::new(),
            index_of: None,
        }
    }

    /// `bead` (one of `self.beads`) with every field: itself, or its record read again from
    /// the file when the snapshot is index-only (itself if the file changed meanwhile).
    pub fn full<'a>(&'a self, bead: &'a Bead) -> std::borrow::Cow<'a, Bead> {
        let Some(doc) = &self.index_of else {
            return std::borrow::Cow::Borrowed(bead);
        };
        // Its position, from its address within `beads` (no search).
        let base = self.beads.as_ptr() as usize;
        let offset = (bead as *const Bead as usize).wrapping_sub(base);
        let i = offset / std::mem::size_of::<Bead>().max(1);
        let found = self.beads.get(i).filter(|b| std::ptr::eq(*b, bead));
        match found.and_then(|_| doc.full(i)) {
            Some(b) if b.id == bead.id => std::borrow::Cow::Owned(b),
            _ => std::borrow::Cow::Borrowed(bead),
        }
    }
}

/// One bead changed by a transaction.
#[derive(Clone, Debug)]
pub struct Change {
    pub id: String,
    /// `None`: created.
    pub before: Option<Bead>,
    pub after: Bead,
}

impl Change {
    /// A short description: `created "Title"` or `open → closed, priority 2 → 1`.
    pub fn summary(&self) -> String {
        match &self.before {
            None => format!("created {:?}", self.after.title),
            Some(b) => bead::change::summarize(&bead::change::diff(b, &self.after)),
        }
    }
}

/// What a transaction wrote.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    pub changes: Vec<Change>,
    /// Beads deleted, as they were last.
    pub removed: Vec<Bead>,
    /// Files written, relative to the repository root.
    pub paths: Vec<PathBuf>,
}

impl Applied {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.removed.is_empty()
    }
}

/// How often a transaction's `prepare` may act before the write goes ahead regardless.
pub const PREPARE_ROUNDS: usize = 3;

/// Loom's own acknowledged writes, so the watcher does not report them as external changes
/// (and diffs a later external edit against what Loom wrote, not against an older version).
#[derive(Debug, Default)]
pub struct OwnWrites {
    /// Counts acknowledged writes: a reader notes it before reading, so it can tell a write
    /// acknowledged while it read (its copy may predate it) from one that came before.
    seq: std::sync::atomic::AtomicU64,
    /// Which write last touched each bead (its `seq`).
    last_seq: Mutex<HashMap<String, u64>>,
    written: Mutex<HashMap<String, (u64, Bead)>>,
    /// Changes acknowledged in the last [`RESTORE_WINDOW`]: what the bead was before (its
    /// content hash; `None`: Loom created it) and what Loom wrote.
    recent: Mutex<HashMap<String, Recent>>,
}

#[derive(Debug)]
struct Recent {
    /// Every version it had before Loom's changes in the window (`None`: Loom created it).
    befores: Vec<Option<u64>>,
    after: Bead,
    at: std::time::Instant,
    /// Loom already put this change back once.
    restored: bool,
}

/// How long after a write Loom watches for another program undoing it (a writer that takes
/// no lock and renames a file it read before Loom's write). A bead put back exactly as it was
/// before Loom's change, within this window, is taken as that — not as a person's decision.
pub const RESTORE_WINDOW: Duration = Duration::from_secs(60);

/// A change of this process that another program undid.
#[derive(Clone, Debug)]
pub struct Lost {
    /// The bead's content hash as the other program left it (`None`: it removed the bead).
    pub now: Option<u64>,
    /// What Loom had written.
    pub after: Bead,
    /// Loom had already put this change back once: it is undone again.
    pub again: bool,
}

impl OwnWrites {
    fn record(&self, applied: &Applied) {
        let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if let Ok(mut s) = self.last_seq.lock() {
            for c in &applied.changes {
                s.insert(c.id.clone(), seq);
            }
        }
        if let Ok(mut w) = self.written.lock() {
            for c in &applied.changes {
                w.insert(c.id.clone(), (content_hash(&c.after), c.after.clone()));
            }
        }
        if let Ok(mut r) = self.recent.lock() {
            let now = std::time::Instant::now();
            r.retain(|_, e| now.duration_since(e.at) < RESTORE_WINDOW);
            for c in &applied.changes {
                // Several changes in a row: going back to any version before them undoes them.
                let mut befores = r.remove(&c.id).map(|e| e.befores).unwrap_or_default();
                let before = c.before.as_ref().map(content_hash);
                if !befores.contains(&before) {
                    befores.push(before);
                }
                r.insert(
                    c.id.clone(),
                    Recent {
                        befores,
                        after: c.after.clone(),
                        at: now,
                        restored: false,
                    },
                );
            }
        }
    }

    /// The number of writes acknowledged so far (note it before reading the store).
    pub fn seq(&self) -> u64 {
        self.seq.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether this process acknowledged a write of `id` after `seq` was noted: a copy read
    /// since may be older than that write, so it says nothing about the bead now.
    pub fn written_since(&self, id: &str, seq: u64) -> bool {
        self.last_seq
            .lock()
            .is_ok_and(|s| s.get(id).is_some_and(|&at| at > seq))
    }

    /// Whether bead `id`, now with content hash `now` (`None`: gone), is back to what it was
    /// before a recent change of this process: that change was undone by another program.
    pub fn undone(&self, id: &str, now: Option<u64>) -> Option<Lost> {
        let mut r = self.recent.lock().ok()?;
        let e = r.get(id)?;
        if e.at.elapsed() >= RESTORE_WINDOW || !e.befores.contains(&now) {
            return None;
        }
        let e = r.remove(id)?;
        Some(Lost {
            now,
            after: e.after,
            again: e.restored,
        })
    }

    /// Loom just put back its change to `id`: if it is undone once more, it is only reported.
    pub fn restored(&self, id: &str) {
        if let Ok(mut r) = self.recent.lock()
            && let Some(e) = r.get_mut(id)
        {
            e.restored = true;
        }
    }

    /// The version Loom itself last wrote for `id`, if the watcher has not seen it yet (and
    /// forget it), with its content hash.
    pub fn take(&self, id: &str) -> Option<(u64, Bead)> {
        self.written.lock().ok()?.remove(id)
    }
}

/// A hash of a bead's content (its serialized form).
pub fn content_hash(bead: &Bead) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match bead::json::to_go_json(bead) {
        Ok(s) => s.hash(&mut h),
        Err(_) => bead.id.hash(&mut h),
    }
    h.finish()
}

/// A repository's bead store.
#[derive(Clone, Debug)]
pub struct Store {
    layout: Layout,
    lock_path: PathBuf,
    own: Arc<OwnWrites>,
    /// Files this process wrote without a commit (the orchestrator's stages), as written:
    /// the next commit carries them, and they are not mistaken for edits made elsewhere.
    uncommitted: Arc<Mutex<HashMap<PathBuf, fsio::Fingerprint>>>,
}

impl Store {
    /// A store over `layout`; writers serialise on the lock file at `lock_path`.
    pub fn new(layout: Layout, lock_path: PathBuf) -> Store {
        Store {
            layout,
            lock_path,
            own: Arc::new(OwnWrites::default()),
            uncommitted: Arc::default(),
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The same store with its own record of writes: a watcher on it reports every change,
    /// including those written through `self` (a front end watching its own orchestrator).
    pub fn detached(&self) -> Store {
        Store::new(self.layout.clone(), self.lock_path.clone())
    }

    /// Whether `path` (absolute) is as this process last wrote it without a commit.
    pub fn uncommitted_own(&self, path: &Path) -> bool {
        let Ok(pending) = self.uncommitted.lock() else {
            return false;
        };
        pending
            .get(path)
            .is_some_and(|fp| fsio::fingerprint(path).ok().flatten() == Some(*fp))
    }

    /// This store's record of its own writes (shared with its watcher).
    pub fn own_writes(&self) -> Arc<OwnWrites> {
        Arc::clone(&self.own)
    }

    /// Reads everything (no lock: writes are atomic renames, so a reader never sees a torn
    /// file). Malformed records are reported in `problems` and left out.
    pub fn load(&self) -> Result<Snapshot> {
        let mut snap = match self.layout.format {
            Format::Jsonl => self.load_jsonl(false)?,
            Format::Yaml => self.load_yaml()?,
        };
        lint(&mut snap);
        Ok(snap)
    }

    /// Like [`Store::load`], but for reading only: JSONL beads carry just what listings and
    /// the dependency graph need (metadata, but no long texts, comments or unknown keys), which
    /// makes large stores several times faster to query. [`Snapshot::full`] gives a complete
    /// bead. YAML snapshots are always complete.
    pub fn load_index(&self) -> Result<Snapshot> {
        let mut snap = match self.layout.format {
            Format::Jsonl => self.load_jsonl(true)?,
            Format::Yaml => self.load_yaml()?,
        };
        lint(&mut snap);
        Ok(snap)
    }

    fn load_jsonl(&self, index_only: bool) -> Result<Snapshot> {
        let path = self.layout.jsonl_path();
        let shown = self.layout.relative(&path);
        let shared: Arc<Path> = Arc::from(shown.as_path());
        let locations = |line_of: &[usize]| {
            line_of
                .iter()
                .map(|&l| Location {
                    path: Arc::clone(&shared),
                    line: Some(l),
                })
                .collect()
        };
        if index_only {
            let Some(file) = fsio::open_regular(&path)? else {
                return Ok(Snapshot::empty(Format::Jsonl));
            };
            let read = jsonl::read_index(file, &shown).map_err(|e| Error::io(&path, e))?;
            return Ok(Snapshot {
                format: Format::Jsonl,
                locations: locations(&read.line_of),
                beads: read.beads,
                problems: read.problems,
                index_of: Some(read.spans),
            });
        }
        let bytes = match fsio::read_with_fingerprint(&path)? {
            Some((b, _)) => b,
            None => Vec::new(),
        };
        let (mut doc, problems) = jsonl::JsonlDoc::parse(bytes, &shown);
        Ok(Snapshot {
            format: Format::Jsonl,
            locations: locations(&doc.line_of),
            beads: std::mem::take(&mut doc.beads),
            problems,
            index_of: None,
        })
    }

    fn load_yaml(&self) -> Result<Snapshot> {
        let paths = yaml::list(&self.layout.yaml_dir())?;
        let root = self.layout.root.clone();
        let mut files = yaml::read_all(&paths, &|p| fsio::shown(&root, p))?;
        yaml::prefer_named(&mut files);
        let mut beads = Vec::with_capacity(files.len());
        let mut locations = Vec::with_capacity(files.len());
        let mut problems = Vec::new();
        let mut first: HashMap<String, PathBuf> = HashMap::new();
        for file in files {
            let shown = self.layout.relative(&file.path);
            match file.bead {
                Ok(b) => {
                    if let Some(other) = first.get(&b.id) {
                        problems.push(Problem {
                            path: shown,
                            line: None,
                            id: Some(b.id.clone()),
                            severity: Severity::Error,
                            message: format!(
                                "duplicate id {} (also in {}); this file is ignored and kept as it is",
                                b.id,
                                other.display()
                            ),
                        });
                        continue;
                    }
                    if yaml::id_from_path(&file.path).as_deref() != Some(b.id.as_str()) {
                        problems.push(Problem {
                            path: shown.clone(),
                            line: None,
                            id: Some(b.id.clone()),
                            severity: Severity::Warning,
                            message: format!(
                                "the file name does not match the bead's id {}; rename it to {}.yaml",
                                b.id, b.id
                            ),
                        });
                    }
                    first.insert(b.id.clone(), shown.clone());
                    beads.push(b);
                    locations.push(Location {
                        path: Arc::from(shown.as_path()),
                        line: None,
                    });
                }
                Err(p) => problems.push(p),
            }
        }
        Ok(Snapshot {
            format: Format::Yaml,
            beads,
            locations,
            problems,
            index_of: None,
        })
    }

    /// Applies `change` to the latest beads on disk and writes the result; `after` runs once the
    /// write is verified, still under the lock (the git commit). Both may run more than once
    /// (when another program writes meanwhile), so `change` must only read and change the
    /// transaction, and `after` must be safe to repeat.
    pub fn transact<T>(
        &self,
        options: TxOptions,
        change: impl FnMut(&mut Tx) -> Result<T>,
        after: impl FnMut(&Applied) -> Result<()>,
    ) -> Result<(T, Applied)> {
        self.transact_with(options, change, |_, _| Ok(false), after)
    }

    /// [`Store::transact`] with `prepare`, which runs under the lock before anything is
    /// written, given the files that may be (absolute paths) and whether it may still act;
    /// when it returns `true` (it did something to them, e.g. committed them) the attempt
    /// starts over on what is on disk now. It may act [`PREPARE_ROUNDS`] times.
    pub fn transact_with<T>(
        &self,
        options: TxOptions,
        mut change: impl FnMut(&mut Tx) -> Result<T>,
        mut prepare: impl FnMut(&[PathBuf], bool) -> Result<bool>,
        mut after: impl FnMut(&Applied) -> Result<()>,
    ) -> Result<(T, Applied)> {
        let _guard = fsio::lock(&self.lock_path, LOCK_TIMEOUT)?;
        admin::finish_conversion(&self.layout)?;
        fsio::sweep_temps(&self.layout.beads_dir);
        let mut prepared = 0;
        for _ in 0..MAX_ATTEMPTS {
            let mut tx = Tx::begin(&self.layout, options)?;
            let out = change(&mut tx)?;
            if prepare(&tx.pending_paths(), prepared < PREPARE_ROUNDS)? {
                prepared += 1;
                continue;
            }
            let (applied, written) = match tx.commit()? {
                tx::Outcome::Conflict => continue,
                tx::Outcome::Done(a, w) => (a, w),
            };
            if applied.is_empty() {
                return Ok((out, applied));
            }
            // A writer that takes no lock may replace the file between our last check and our
            // rename: check again now, and once more after the (slow) follow-up, so a change we
            // acknowledge is one that is on disk. If it vanished, apply it again to the latest.
            if !self.verify(&applied, &written)? {
                continue;
            }
            after(&applied)?;
            if !self.verify(&applied, &written)? {
                continue;
            }
            self.own.record(&applied);
            if let Ok(mut pending) = self.uncommitted.lock() {
                for (path, fp) in written {
                    if options.uncommitted {
                        pending.insert(path, fp);
                    } else {
                        pending.remove(&path);
                    }
                }
            }
            return Ok((out, applied));
        }
        let path = match self.layout.format {
            Format::Jsonl => self.layout.jsonl_path(),
            Format::Yaml => self.layout.yaml_dir(),
        };
        Err(Error::Contended {
            path,
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Runs `look` on a transaction over the latest beads and writes nothing (dry runs).
    pub fn preview<T>(
        &self,
        options: TxOptions,
        look: impl FnOnce(&mut Tx) -> Result<T>,
    ) -> Result<T> {
        let mut tx = Tx::begin(&self.layout, options)?;
        look(&mut tx)
    }

    /// After the rename: is every change still on disk? (A writer that takes no lock may have
    /// replaced the file between our last check and our rename.)
    fn verify(&self, applied: &Applied, written: &[(PathBuf, fsio::Fingerprint)]) -> Result<bool> {
        let mut untouched = true;
        for (path, fp) in written {
            if fsio::fingerprint(path)? != Some(*fp) {
                untouched = false;
            }
        }
        if untouched {
            return Ok(true);
        }
        let snap = self.load()?;
        let on_disk: HashMap<&str, &Bead> = snap.beads.iter().map(|b| (b.id.as_str(), b)).collect();
        Ok(applied
            .changes
            .iter()
            .all(|c| on_disk.get(c.id.as_str()) == Some(&&c.after))
            && applied
                .removed
                .iter()
                .all(|b| !on_disk.contains_key(b.id.as_str())))
    }
}

/// Adds warnings for beads that load but break write rules, and for dangling dependencies.
fn lint(snap: &mut Snapshot) {
    let ids: bead::FastSet<&str> = snap.beads.iter().map(|b| b.id.as_str()).collect();
    for (b, loc) in snap.beads.iter().zip(&snap.locations) {
        let warn = |message: String| Problem {
            path: loc.path.to_path_buf(),
            line: loc.line,
            id: Some(b.id.clone()),
            severity: Severity::Warning,
            message,
        };
        for invalid in bead::lint(b) {
            snap.problems.push(warn(invalid.to_string()));
        }
        for d in &b.dependencies {
            let target = d.depends_on_id.as_str();
            if !target.is_empty() && !target.starts_with("external:") && !ids.contains(target) {
                snap.problems.push(warn(format!(
                    "depends on {target} ({}), which does not exist; the dependency is ignored",
                    d.dep_type
                )));
            }
        }
    }
    snap.problems
        .sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
}

/// Resolves `path` against `base` unless absolute.
pub fn absolutize(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Whether `bytes` hold merge-conflict markers: a line starting `<<<<<<< ` and one starting
/// `>>>>>>> ` (or exactly `<<<<<<<`/`>>>>>>>`).
pub fn conflict_markers(bytes: &[u8]) -> bool {
    let at_line_start = |marker: &[u8]| {
        memchr::memmem::find_iter(bytes, marker).any(|i| {
            (i == 0 || bytes[i - 1] == b'\n')
                && matches!(
                    bytes.get(i + marker.len()),
                    None | Some(b' ' | b'\n' | b'\r')
                )
        })
    };
    at_line_start(b"<<<<<<<") && at_line_start(b">>>>>>>")
}

/// Puts back a change of this process that another program undid (see
/// [`OwnWrites::undone`]), if the bead is still as that program left it; whether it did.
pub fn restore(tx: &mut Tx, lost: &Lost) -> Result<bool> {
    let id = lost.after.id.clone();
    let now = tx.get(&id)?.map(content_hash);
    if now != lost.now {
        return Ok(false);
    }
    match now {
        Some(_) => *tx.get_mut(&id)? = lost.after.clone(),
        None => tx.insert(lost.after.clone())?,
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bead(id: &str, priority: i64) -> Bead {
        Bead {
            id: id.into(),
            title: "t".into(),
            priority,
            ..Bead::default()
        }
    }

    fn change(before: Option<Bead>, after: Bead) -> Applied {
        Applied {
            changes: vec![Change {
                id: after.id.clone(),
                before,
                after,
            }],
            removed: Vec::new(),
            paths: Vec::new(),
        }
    }

    #[test]
    fn an_undone_change_is_told_from_other_edits() {
        let own = OwnWrites::default();
        let (p2, p1, p0) = (bead("t-1", 2), bead("t-1", 1), bead("t-1", 0));
        own.record(&change(Some(p2.clone()), p1.clone()));
        own.record(&change(Some(p1.clone()), p0.clone()));
        assert!(
            own.undone("t-1", Some(content_hash(&bead("t-1", 3))))
                .is_none(),
            "someone's own edit"
        );
        let lost = own.undone("t-1", Some(content_hash(&p1))).unwrap();
        assert_eq!(lost.after, p0, "an intermediate version undoes too");
        assert!(!lost.again);
        assert!(own.undone("t-1", Some(content_hash(&p2))).is_none(), "once");
        // Loom puts it back (a write from p1 to p0), marks it; undone again: `again`.
        own.record(&change(Some(p1.clone()), p0.clone()));
        own.restored("t-1");
        let twice = own.undone("t-1", Some(content_hash(&p1))).unwrap();
        assert!(twice.again, "a second undo is only reported");
        own.record(&change(None, bead("t-2", 1)));
        assert!(
            own.undone("t-2", None).is_some(),
            "a bead Loom created that vanished"
        );
    }
}
