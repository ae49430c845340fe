//! The live watcher: notices beads created, changed or deleted on disk by anyone else (an
//! editor, `git pull`, bd, another Loom) and reports them as [`Event`]s, debounced.
//!
//! It keeps a baseline of every bead's content hash and diffs against it on each batch of file
//! events: JSONL reloads the one file, YAML re-reads only the files that changed. Changes this
//! process wrote itself (recorded in [`OwnWrites`]) update the baseline silently.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify_debouncer_full::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

use crate::bead::Bead;
use crate::bead::change;
use crate::error::{Error, Result};
use crate::event::{self, Event, Origin};

use super::{Format, OwnWrites, Store, content_hash, fsio, yaml};

/// How long the file system must be quiet before a batch of events is processed.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// A running watcher; dropping it stops watching.
pub struct Watcher {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
}

struct Baseline {
    store: Store,
    own: Arc<OwnWrites>,
    /// id → (content hash, bead)
    beads: HashMap<String, (u64, Bead)>,
    /// YAML: file → id it held.
    files: HashMap<PathBuf, String>,
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
pub fn watch(store: &Store, sink: impl FnMut(Event) + Send + 'static) -> Result<Watcher> {
    watch_with(store, DEBOUNCE, sink)
}

/// [`watch`] with another quiet period (the orchestrator reacts faster than `loom watch`).
pub fn watch_with(
    store: &Store,
    debounce: Duration,
    mut sink: impl FnMut(Event) + Send + 'static,
) -> Result<Watcher> {
    let mut base = Baseline {
        store: store.clone(),
        own: store.own_writes(),
        beads: HashMap::new(),
        files: HashMap::new(),
    };
    base.reset()?;
    let beads_dir = store.layout().beads_dir.clone();
    let mut debouncer =
        new_debouncer(
            debounce,
            None,
            move |result: DebounceEventResult| match result {
                Ok(events) => {
                    let mut paths: Vec<PathBuf> = Vec::new();
                    let mut rescan = false;
                    for e in events.iter().filter(|e| changes_content(&e.kind)) {
                        rescan |= e.need_rescan();
                        paths.extend(e.paths.iter().cloned());
                    }
                    paths.sort();
                    paths.dedup();
                    for ev in base.update(&paths, rescan) {
                        sink(ev);
                    }
                }
                Err(errors) => {
                    for e in errors {
                        sink(Event::WatchError {
                            at: event::now(),
                            message: e.to_string(),
                        });
                    }
                }
            },
        )
        .map_err(|e| Error::Other(format!("cannot start the file watcher: {e}")))?;
    debouncer
        .watch(&beads_dir, RecursiveMode::Recursive)
        .map_err(|e| {
            Error::Other(format!(
                "cannot watch {}: {e} (on Linux, raise fs.inotify.max_user_watches)",
                beads_dir.display()
            ))
        })?;
    Ok(Watcher {
        _debouncer: debouncer,
    })
}

impl Baseline {
    fn reset(&mut self) -> Result<()> {
        let snap = self.store.load()?;
        self.beads.clear();
        self.files.clear();
        for (b, loc) in snap.beads.into_iter().zip(snap.locations) {
            if snap.format == Format::Yaml {
                self.files
                    .insert(self.store.layout().root.join(&loc.path), b.id.clone());
            }
            self.beads.insert(b.id.clone(), (content_hash(&b), b));
        }
        Ok(())
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
    fn update(&mut self, paths: &[PathBuf], rescan: bool) -> Vec<Event> {
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
                    Err(problem) => out.push(Event::StoreProblem {
                        at: event::now(),
                        problem,
                    }),
                },
                Ok(None) => {
                    if let Some(id) = self.files.remove(path.as_path()) {
                        out.extend(self.forget(&id));
                    }
                }
                Err(e) => out.push(Event::WatchError {
                    at: event::now(),
                    message: e.to_string(),
                }),
            }
        }
        out
    }

    fn reload_all(&mut self) -> Vec<Event> {
        let snap = match self.store.load() {
            Ok(s) => s,
            Err(e) => {
                return vec![Event::WatchError {
                    at: event::now(),
                    message: e.to_string(),
                }];
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
                out.push(Event::StoreProblem {
                    at: event::now(),
                    problem: p.clone(),
                });
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

    fn observe(&mut self, bead: Bead) -> Option<Event> {
        let hash = content_hash(&bead);
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
            Some((_, before)) => Some(Event::BeadChanged {
                at: event::now(),
                origin: Origin::External,
                changes: change::diff(&before, &bead),
                bead: Box::new(bead),
            }),
            None => Some(Event::BeadCreated {
                at: event::now(),
                origin: Origin::External,
                bead: Box::new(bead),
            }),
        }
    }

    fn forget(&mut self, id: &str) -> Option<Event> {
        self.beads.remove(id).map(|_| Event::BeadDeleted {
            at: event::now(),
            origin: Origin::External,
            id: id.to_owned(),
        })
    }
}
