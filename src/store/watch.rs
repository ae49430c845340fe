//! The live watcher: notices beads created, changed or deleted on disk by anyone else (an
//! editor, `git pull`, bd, another Loom) and reports them as [`StoreChange`]s, debounced. The
//! layers above wrap them in their own events (`event::Event` for the orchestrator, the TUI
//! and `loom watch`).
//!
//! It keeps a baseline of every bead's content hash and diffs against it on each batch of file
//! events: JSONL reloads the one file, YAML re-reads only the files that changed. Changes this
//! process wrote itself (recorded in [`OwnWrites`]) update the baseline silently.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};

use crate::bead::Bead;
use crate::bead::change;
use crate::bead::change::FieldChange;
use crate::error::{Error, Result};

use super::{Format, Lost, OwnWrites, Store, content_hash, fsio, yaml};

/// What the watcher saw another program do to the store.
#[derive(Clone, Debug)]
pub enum StoreChange {
    Created(Box<Bead>),
    Changed {
        changes: Vec<FieldChange>,
        bead: Box<Bead>,
    },
    Deleted(String),
    /// A file under `.beads/` changed into something Loom cannot read.
    Problem(super::Problem),
    /// The watcher itself failed (e.g. the OS ran out of watches).
    WatchFailed(String),
    /// Another program undid a change this process had just made (what became of it).
    Undone {
        bead: String,
        message: String,
    },
}

/// How long the file system must be quiet before a batch of events is processed.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// A batch is handed over after this long at the latest, even while writes go on.
const MAX_BATCH_WAIT: Duration = Duration::from_secs(1);

/// A running watcher; dropping it stops watching (and ends its thread).
pub struct Watcher {
    _watcher: RecommendedWatcher,
}

struct Baseline {
    store: Store,
    own: Arc<OwnWrites>,
    /// id → (content hash, bead)
    beads: HashMap<String, (u64, Bead)>,
    /// YAML: file → id it held.
    files: HashMap<PathBuf, String>,
    /// Changes of this process that another program undid (since the last batch).
    lost: Vec<Lost>,
    /// [`OwnWrites::seq`] when the batch being processed started reading.
    read_seq: u64,
}

/// Whether an event can mean changed content. Reads (open, access, close after reading) do
/// not — and must be skipped: re-reading a file on its own open event would wake the watcher
/// again, for ever.
fn changes_content(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Starts watching `store`'s `.beads/`; `sink` receives each event (on the watcher's thread).
pub fn watch(store: &Store, sink: impl FnMut(StoreChange) + Send + 'static) -> Result<Watcher> {
    watch_with(store, DEBOUNCE, sink)
}

/// [`watch`] with another quiet period (the orchestrator reacts faster than `loom watch`).
pub fn watch_with(
    store: &Store,
    debounce: Duration,
    sink: impl FnMut(StoreChange) + Send + 'static,
) -> Result<Watcher> {
    watch_restoring(store, debounce, sink, None)
}

/// Puts back a change of this process that another program undid, or says why not.
pub type Restore = Box<dyn FnMut(&Lost) -> Result<Restored> + Send>;

/// What became of an undone change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restored {
    /// Applied again (a new commit).
    Applied,
    /// The bead changed again since: left as it is.
    ChangedSince,
    /// Git did it (a checkout, reset, revert, rebase: the file is as HEAD has it, or an
    /// operation is under way): the repository's own history, left alone and not reported.
    ByGit,
    /// The bead was removed: Loom does not recreate a bead someone may have deleted on purpose.
    Removed,
}

/// [`watch_with`] that also notices when another program undoes a recent change of this
/// process (a writer that takes no lock renaming a file it read before Loom's write): it
/// reports that loudly (an `error` event) and, given `restore`, applies the change again.
pub fn watch_restoring(
    store: &Store,
    debounce: Duration,
    sink: impl FnMut(StoreChange) + Send + 'static,
    restore: Option<Restore>,
) -> Result<Watcher> {
    arm(store)?.start(debounce, sink, restore, Seed::Now)
}

/// What a started watcher compares the disk with first.
pub enum Seed {
    /// The beads read now, before `start` returns (an error is returned).
    Now,
    /// The beads read on the watcher's thread (a failure is reported to the sink); the
    /// complete snapshot is handed to the callback, for a caller that can use it too.
    Background(Box<dyn FnOnce(Arc<super::Snapshot>) + Send>),
}

/// A watch on `.beads/` whose events wait for [`Armed::start`]. Arming first and reading the
/// beads after means no change between the two is missed: a window can read the beads once,
/// show them, and then give the same snapshot to the watcher as its baseline.
pub struct Armed {
    store: Store,
    watcher: RecommendedWatcher,
    rx: mpsc::Receiver<notify::Result<notify::Event>>,
}

/// Registers the watch on `store`'s `.beads/` (events queue until [`Armed::start`]).
pub fn arm(store: &Store) -> Result<Armed> {
    let beads_dir = store.layout().beads_dir.clone();
    let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>();
    let mut watcher = notify::recommended_watcher(move |e| {
        let _ = tx.send(e);
    })
    .map_err(|e| Error::Other(format!("cannot start the file watcher: {e}")))?;
    watcher
        .watch(&beads_dir, RecursiveMode::Recursive)
        .map_err(|e| {
            Error::Other(format!(
                "cannot watch {}: {e} (on Linux, raise fs.inotify.max_user_watches)",
                beads_dir.display()
            ))
        })?;
    Ok(Armed {
        store: store.clone(),
        watcher,
        rx,
    })
}

impl Armed {
    /// Starts reporting changes to `sink`, against the beads `seed` says. Seeding other than
    /// [`Seed::Now`] happens on the watcher's thread, so the caller is not held up.
    pub fn start(
        self,
        debounce: Duration,
        mut sink: impl FnMut(StoreChange) + Send + 'static,
        mut restore: Option<Restore>,
        seed: Seed,
    ) -> Result<Watcher> {
        let Armed { store, watcher, rx } = self;
        let mut base = Baseline::new(&store);
        if matches!(seed, Seed::Now) {
            base.reset()?;
        }
        let own = store.own_writes();
        // One thread: it sleeps until the first event of a batch (no wake-ups while nothing
        // happens), then collects until the file system is quiet for `debounce`.
        std::thread::Builder::new()
        .name("loom-watch".into())
        .spawn(move || {
            match seed {
                Seed::Now => {}
                Seed::Background(then) => match base.store.load() {
                    Ok(snap) => {
                        base.seed(&snap);
                        then(Arc::new(snap));
                    }
                    Err(e) => sink(StoreChange::WatchFailed(format!(
                        "cannot read the beads to watch them: {e}"
                    ))),
                },
            }
            while let Some(batch) = next_batch(&rx, debounce) {
                let mut paths: Vec<PathBuf> = Vec::new();
                let mut rescan = false;
                for e in batch {
                    match e {
                        Ok(e) if changes_content(&e.kind) => {
                            rescan |= e.need_rescan();
                            paths.extend(e.paths);
                        }
                        Ok(_) => {}
                        Err(e) => sink(StoreChange::WatchFailed(e.to_string())),
                    }
                }
                paths.sort();
                paths.dedup();
                for ev in base.update(&paths, rescan) {
                    sink(ev);
                }
                for lost in std::mem::take(&mut base.lost) {
                    let id = lost.after.id.clone();
                    let what = format!(
                        "{id}: another program put back an older version over a change Loom had just made"
                    );
                    let outcome = match restore.as_mut() {
                        Some(r) if !lost.again => Some(r(&lost)),
                        _ => None,
                    };
                    let message = match outcome {
                        Some(Ok(Restored::ByGit)) => continue,
                        Some(Ok(Restored::Applied)) => {
                            own.restored(&id);
                            format!("{what}; Loom applied its change again")
                        }
                        Some(Ok(Restored::ChangedSince)) => {
                            format!("{what}; it has changed again since, so it was left as it is")
                        }
                        Some(Ok(Restored::Removed)) => format!(
                            "{id}: removed right after Loom created it; Loom does not recreate it"
                        ),
                        Some(Err(e)) => format!("{what}; applying it again failed: {e}"),
                        None if lost.again => format!(
                            "{what} again; Loom leaves it (a program keeps writing an older version)"
                        ),
                        None => format!("{what}; that change is lost — make it again"),
                    };
                    sink(StoreChange::Undone { bead: id, message });
                }
            }
        })
        .map_err(|e| Error::Other(format!("cannot start the file watcher thread: {e}")))?;
        Ok(Watcher { _watcher: watcher })
    }
}

/// The next batch of events: waits for one, then takes more until none came for `quiet` (or
/// [`MAX_BATCH_WAIT`] passed). `None` when the watcher is gone.
fn next_batch<T>(rx: &mpsc::Receiver<T>, quiet: Duration) -> Option<Vec<T>> {
    let mut batch = vec![rx.recv().ok()?];
    let until = Instant::now() + MAX_BATCH_WAIT;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Some(batch);
        }
        match rx.recv_timeout(quiet.min(left)) {
            Ok(e) => batch.push(e),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                return Some(batch);
            }
        }
    }
}

impl Baseline {
    fn new(store: &Store) -> Baseline {
        Baseline {
            store: store.clone(),
            own: store.own_writes(),
            beads: HashMap::new(),
            files: HashMap::new(),
            lost: Vec::new(),
            read_seq: 0,
        }
    }

    fn reset(&mut self) -> Result<()> {
        let snap = self.store.load()?;
        self.seed(&snap);
        Ok(())
    }

    /// The baseline is `snap`.
    fn seed(&mut self, snap: &super::Snapshot) {
        self.beads.clear();
        self.files.clear();
        for (b, loc) in snap.beads.iter().zip(&snap.locations) {
            if snap.format == Format::Yaml {
                self.files
                    .insert(self.store.layout().root.join(&*loc.path), b.id.clone());
            }
            self.beads
                .insert(b.id.clone(), (content_hash(b), b.clone()));
        }
    }

    fn relevant(&self, path: &Path) -> bool {
        let layout = self.store.layout();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(fsio::TEMP_PREFIX) {
            return false;
        }
        match layout.format {
            Format::Jsonl => path == layout.jsonl_path(),
            Format::Yaml => {
                path.parent() == Some(&layout.yaml_dir()) && yaml::id_from_path(path).is_some()
            }
        }
    }

    /// Diffs what changed on disk against the baseline and returns the events.
    fn update(&mut self, paths: &[PathBuf], rescan: bool) -> Vec<StoreChange> {
        // Before anything is read: a write this process acknowledges from now on may be newer
        // than what this batch reads (the file was opened before the rename).
        self.read_seq = self.own.seq();
        let layout = self.store.layout().clone();
        let relevant: Vec<&PathBuf> = paths.iter().filter(|p| self.relevant(p)).collect();
        if relevant.is_empty() && !rescan {
            return Vec::new();
        }
        if layout.format == Format::Jsonl || rescan {
            return self.reload_all();
        }
        let mut out = Vec::new();
        for path in relevant {
            let shown = layout.relative(path);
            match yaml::read(path, &shown) {
                Ok(Some(file)) => match file.bead {
                    Ok(bead) => {
                        if let Some(old_id) = self.files.get(path.as_path())
                            && *old_id != bead.id
                        {
                            let old_id = old_id.clone();
                            out.extend(self.forget(&old_id));
                        }
                        self.files.insert(path.clone(), bead.id.clone());
                        out.extend(self.observe(bead));
                    }
                    Err(problem) => out.push(StoreChange::Problem(problem)),
                },
                Ok(None) => {
                    if let Some(id) = self.files.remove(path.as_path()) {
                        out.extend(self.forget(&id));
                    }
                }
                Err(e) => out.push(StoreChange::WatchFailed(e.to_string())),
            }
        }
        out
    }

    fn reload_all(&mut self) -> Vec<StoreChange> {
        let snap = match self.store.load() {
            Ok(s) => s,
            Err(e) => {
                return vec![StoreChange::WatchFailed(e.to_string())];
            }
        };
        let mut out = Vec::new();
        // Records that turned unreadable are reported, not treated as deleted.
        let mut unreadable = std::collections::HashSet::new();
        for p in snap
            .problems
            .iter()
            .filter(|p| p.severity == super::Severity::Error)
        {
            if let Some(id) = &p.id {
                unreadable.insert(id.clone());
            }
            if p.id.as_ref().is_none_or(|id| self.beads.contains_key(id)) {
                out.push(StoreChange::Problem(p.clone()));
            }
        }
        let mut seen = std::collections::HashSet::new();
        if snap.format == Format::Yaml {
            self.files.clear();
        }
        for (bead, loc) in snap.beads.into_iter().zip(snap.locations) {
            seen.insert(bead.id.clone());
            if snap.format == Format::Yaml {
                let layout = self.store.layout();
                self.files
                    .insert(layout.root.join(&loc.path), bead.id.clone());
            }
            out.extend(self.observe(bead));
        }
        let gone: Vec<String> = self
            .beads
            .keys()
            .filter(|id| !seen.contains(*id) && !unreadable.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            out.extend(self.forget(&id));
        }
        out
    }

    fn observe(&mut self, bead: Bead) -> Option<StoreChange> {
        if self.own.written_since(&bead.id, self.read_seq) {
            // Possibly read before this process's own latest write: not evidence of anything
            // (its own event brings the next batch). Taken for an older version put back, it
            // raised a false alarm during ordinary runs.
            return None;
        }
        let hash = content_hash(&bead);
        if let Some(lost) = self.own.undone(&bead.id, Some(hash)) {
            self.lost.push(lost);
        }
        let mut previous = self.beads.insert(bead.id.clone(), (hash, bead.clone()));
        if let Some((own_hash, own)) = self.own.take(&bead.id) {
            if own_hash == hash {
                return None; // exactly what this process wrote
            }
            // Someone changed it after our write: report their change, not ours.
            previous = Some((own_hash, own));
        }
        match previous {
            Some((h, _)) if h == hash => None,
            Some((_, before)) => Some(StoreChange::Changed {
                changes: change::diff(&before, &bead),
                bead: Box::new(bead),
            }),
            None => Some(StoreChange::Created(Box::new(bead))),
        }
    }

    fn forget(&mut self, id: &str) -> Option<StoreChange> {
        if self.own.written_since(id, self.read_seq) {
            return None;
        }
        if let Some(lost) = self.own.undone(id, None) {
            self.lost.push(lost);
        }
        self.beads
            .remove(id)
            .map(|_| StoreChange::Deleted(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_takes_what_came_together_and_ends_with_the_watcher() {
        let (tx, rx) = mpsc::channel();
        for i in 0..3 {
            tx.send(i).unwrap();
        }
        let batch = next_batch(&rx, Duration::from_millis(50));
        assert_eq!(batch, Some(vec![0, 1, 2]));
        tx.send(3).unwrap();
        drop(tx);
        assert_eq!(
            next_batch(&rx, Duration::from_secs(60)),
            Some(vec![3]),
            "no wait once the sender is gone"
        );
        assert_eq!(next_batch(&rx, Duration::from_secs(60)), None);
    }

    /// The race behind a false "another program put back an older version": the watcher
    /// opens a bead file, this process writes and acknowledges a change to it, then the
    /// watcher parses what it opened (the version before). That stale copy is no evidence.
    #[test]
    fn a_copy_read_before_an_own_write_is_not_an_undo() {
        let dir = tempfile::tempdir().unwrap();
        crate::store::init(dir.path(), Format::Yaml, "t", &dir.path().join("lock")).unwrap();
        let layout = super::super::Layout::discover(dir.path()).unwrap();
        let store = Store::new(layout, dir.path().join("lock"));
        let bead = Bead {
            id: "t-1".into(),
            title: "One".into(),
            status: "open".into(),
            issue_type: "task".into(),
            created_at: Some(crate::bead::Timestamp::now()),
            ..Bead::default()
        };
        let write = |title: &str| {
            store
                .transact(
                    crate::store::TxOptions::default(),
                    |tx| {
                        match tx.get_mut("t-1") {
                            Ok(b) => b.title = title.to_owned(),
                            Err(_) => tx.insert(bead.clone())?,
                        }
                        Ok(())
                    },
                    |_| Ok(()),
                )
                .unwrap()
        };
        write("One");
        let mut base = Baseline::new(&store);
        base.reset().unwrap();
        let _ = base.own.take("t-1");
        // The batch starts reading: it gets the current version…
        base.read_seq = base.own.seq();
        let stale = store.load().unwrap().beads[0].clone();
        // …while this process changes the bead and acknowledges it.
        write("Two");
        assert!(base.observe(stale.clone()).is_none());
        assert!(base.lost.is_empty(), "a false alarm: {:?}", base.lost);
        // The next batch reads the new version: ours, silent.
        base.read_seq = base.own.seq();
        let fresh = store.load().unwrap().beads[0].clone();
        assert!(base.observe(fresh).is_none());
        // Now a real undo: another program puts the old version back.
        base.read_seq = base.own.seq();
        assert!(base.observe(stale).is_some());
        assert_eq!(base.lost.len(), 1, "the undo is noticed");
    }
}
