//! File primitives the store is built on: identity fingerprints, atomic replace with a last
//! check for foreign writers, and the advisory lock that serialises Loom processes.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Prefix of Loom's temporary files (in `.beads/`); a crash can leave one behind, the next
/// write under the lock removes it.
pub const TEMP_PREFIX: &str = ".loom-";
pub const TEMP_SUFFIX: &str = ".tmp";

/// Who a file is, as far as `stat` can tell: a rename gives a new inode, an in-place write a
/// new mtime/ctime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Fingerprint {
    fn of(meta: &std::fs::Metadata) -> Self {
        Fingerprint {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        }
    }
}

/// The fingerprint of `path`, `None` if it does not exist.
pub fn fingerprint(path: &Path) -> Result<Option<Fingerprint>> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(Fingerprint::of(&m))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Reads `path` with the fingerprint of the very file read; `None` if it does not exist.
pub fn read_with_fingerprint(path: &Path) -> Result<Option<(Vec<u8>, Fingerprint)>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    // Fingerprint after reading, so an in-place write during the read shows up as a change.
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    Ok(Some((bytes, Fingerprint::of(&meta))))
}

/// Outcome of [`replace`].
#[derive(Debug)]
pub enum Replaced {
    /// Written; the file now has this fingerprint.
    Done(Fingerprint),
    /// Someone changed `path` since it was read (its fingerprint is no longer `expected`);
    /// nothing was written.
    Conflict,
}

/// Atomically replaces `path` with `bytes`: a temp file in `temp_dir` (same filesystem), fsync,
/// a last check that `path` still has the `expected` fingerprint (`None` = must not exist),
/// rename, fsync of the directory. A reader sees the old or the new file, never a torn one.
pub fn replace(
    path: &Path,
    temp_dir: &Path,
    bytes: &[u8],
    expected: Option<Fingerprint>,
) -> Result<Replaced> {
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(temp_dir)
        .map_err(|e| Error::io(temp_dir, e))?;
    // Keep the mode of the file we replace; a new file gets what the umask allows.
    let mode = match std::fs::metadata(path) {
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(_) => 0o666 & !umask(),
    };
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(temp.path(), e))?;
    temp.write_all(bytes)
        .map_err(|e| Error::io(temp.path(), e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| Error::io(temp.path(), e))?;
    let written = Fingerprint::of(
        &temp
            .as_file()
            .metadata()
            .map_err(|e| Error::io(temp.path(), e))?,
    );
    if fingerprint(path)? != expected {
        return Ok(Replaced::Conflict); // the temp file is removed on drop
    }
    temp.persist(path).map_err(|e| Error::io(path, e.error))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    // rename keeps the inode and times; ctime may move on some filesystems, so re-read it.
    Ok(Replaced::Done(fingerprint(path)?.unwrap_or(written)))
}

/// Removes `path` if it still has the `expected` fingerprint.
pub fn remove(path: &Path, expected: Option<Fingerprint>) -> Result<Replaced> {
    if fingerprint(path)? != expected {
        return Ok(Replaced::Conflict);
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path, e)),
    }
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(Replaced::Done(Fingerprint {
        dev: 0,
        ino: 0,
        size: 0,
        mtime_ns: 0,
        ctime_ns: 0,
    }))
}

/// The process umask, read from `/proc/self/status` (Linux); 022 where unavailable.
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

fn sync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|e| Error::io(dir, e))?;
    d.sync_all().map_err(|e| Error::io(dir, e))
}

/// Removes Loom temp files left in `dir` by a process that died mid-write. Call only while
/// holding the store lock (no live Loom writer has one open then).
pub fn sweep_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX) {
            // Best effort: a temp that cannot be removed is harmless.
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// An exclusive advisory lock on a file; released on drop (and by the kernel if the process
/// dies, so a crash never leaves a stale lock).
#[derive(Debug)]
pub struct LockGuard {
    file: File,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Takes the exclusive lock at `path`, waiting up to `timeout` for another holder.
pub fn lock(path: &Path, timeout: Duration) -> Result<LockGuard> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(LockGuard { file }),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
        }
        if Instant::now() >= deadline {
            return Err(Error::Other(format!(
                "{} is held by another Loom process for more than {}s; if none is running, \
                 the lock is stale only while that process lives — check `ps` for loom",
                path.display(),
                timeout.as_secs()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

/// A path for messages: relative to `root` when inside it.
pub fn shown(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}
