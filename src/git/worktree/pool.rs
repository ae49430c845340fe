//! Warm worktrees: a pool of reusable checkouts per repository (`<worktrees>/.pool/slot-N`; no bead id starts with a dot).
//! Taking one for a bead switches a free slot to the bead's branch at the order's base
//! commit — git rewrites only the files that differ, so the cost follows the change, not the
//! repository — and leaves ignored files where they are, so build caches (`target/`,
//! `node_modules/`, …) stay warm for the verify step.
//!
//! Never destructive: a slot is taken only through an exclusive marker in its git dir (two
//! processes cannot take one slot), a slot with uncommitted changes (copied setup files
//! aside) or a tampered `.git` is skipped, never reset, and an existing branch of the bead
//! is checked out as it is (its commits kept), never re-pointed. Giving a slot back refuses
//! while it holds uncommitted work: the caller salvages (commits) first, as for any
//! worktree.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Worktree, Worktrees, branch_of};
use crate::error::{Error, Result};

/// The pool's directory under the worktrees' base.
pub(super) const POOL: &str = ".pool";
/// The marker in a slot's git dir while a bead holds it.
pub(crate) const TAKEN: &str = "loom-pool-taken";
/// Slots a pool grows to at most.
const MAX_SLOTS: usize = 256;

impl Worktrees {
    fn pool_dir(&self) -> Result<PathBuf> {
        let dir = self.base.join(POOL);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        std::fs::canonicalize(&dir).map_err(|e| Error::io(&dir, e))
    }

    /// A pooled worktree for bead `id` at commit `base` (module docs): a free slot switched to
    /// branch `loom/<id>`, or a new slot when none is free.
    pub fn take_pooled(&self, id: &str, base: &str) -> Result<Worktree> {
        if !crate::store::layout::id_is_file_safe(id) {
            return Err(Error::Usage(format!("{id:?} cannot name a worktree")));
        }
        let dir = self.pool_dir()?;
        for n in 0..MAX_SLOTS {
            let path = dir.join(format!("slot-{n}"));
            let fresh = !path.exists();
            if fresh {
                self.add_slot(&path, base)?;
            }
            let Ok(git_dir) = self.git_dir_of(&path) else {
                continue; // not a worktree git knows: not Loom's to touch
            };
            let mut wt = Worktree {
                bead_id: id.to_owned(),
                path: path.clone(),
                branch: branch_of(id),
                copied: self.copied_present(&path),
                git_dir,
            };
            if !mark_taken(&wt)? {
                continue;
            }
            if wt.tampered().is_some() || (!fresh && self.dirty(&wt)?) {
                release(&wt);
                continue;
            }
            if let Err(e) = self.switch(&wt, base) {
                release(&wt);
                return Err(e);
            }
            wt.copied.extend(self.copy_setup_files(&path)?);
            wt.copied.sort();
            wt.copied.dedup();
            return Ok(wt);
        }
        Err(Error::Other(format!(
            "all {MAX_SLOTS} pooled worktrees in {} are taken or hold work; give some back",
            dir.display()
        )))
    }

    /// Whether `wt` is one of the pool's slots (given back, not removed, when done).
    pub fn is_pooled(&self, wt: &Worktree) -> bool {
        wt.path.parent().and_then(Path::file_name) == Some(std::ffi::OsStr::new(POOL))
    }

    /// Returns `wt` to the pool; `false` (and it stays taken) while it holds uncommitted work.
    pub fn give_back(&self, wt: &Worktree) -> Result<bool> {
        if self.dirty(wt)? {
            return Ok(false);
        }
        // Detached, so the bead's branch can be checked out elsewhere (or deleted) meanwhile.
        self.git_in(wt, &["checkout", "-q", "--detach"], &[])?;
        release(wt);
        Ok(true)
    }

    fn add_slot(&self, path: &Path, base: &str) -> Result<()> {
        let p = path.to_string_lossy().into_owned();
        let flags: &[&str] = if self.leave_out.is_some() {
            &["worktree", "add", "-q", "--detach", "--no-checkout"]
        } else {
            &["worktree", "add", "-q", "--detach"]
        };
        let mut args = flags.to_vec();
        args.extend([p.as_str(), base]);
        self.repo.git_ok(&args, &[], None)?;
        if let Some(out) = &self.leave_out {
            let wt = Worktree {
                bead_id: String::new(),
                path: path.to_path_buf(),
                branch: String::new(),
                copied: Vec::new(),
                git_dir: self.git_dir_of(path)?,
            };
            self.check_out_sparse(&wt, out)?;
        }
        Ok(())
    }

    /// Checks out the bead's branch: as it is when it exists, else new at `base`.
    fn switch(&self, wt: &Worktree, base: &str) -> Result<()> {
        let exists = self.repo.tip(&wt.branch).is_ok();
        let mut args: Vec<&str> = Vec::new();
        if self.leave_out.is_some() {
            args.extend([
                "-c",
                "core.sparseCheckout=true",
                "-c",
                "core.sparseCheckoutCone=false",
            ]);
        }
        args.extend(["checkout", "-q"]);
        if exists {
            args.push(&wt.branch);
        } else {
            args.extend(["-b", &wt.branch, base]);
        }
        self.git_in(wt, &args, &[])?;
        Ok(())
    }
}

/// Takes the slot's marker; `false` if someone holds it.
fn mark_taken(wt: &Worktree) -> Result<bool> {
    let marker = wt.git_dir.join(TAKEN);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
    {
        Ok(mut f) => {
            let _ = writeln!(f, "{} {}", wt.bead_id, std::process::id());
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io(&marker, e)),
    }
}

fn release(wt: &Worktree) {
    let _ = std::fs::remove_file(wt.git_dir.join(TAKEN));
}
