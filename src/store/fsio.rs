//! File primitives the store is built on: identity fingerprints, atomic replace with a last
//! check for foreign writers, and the advisory lock that serialises Loom processes.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::RenameFlags;
use rustix::io::Errno;

use crate::error::{Error, Result};

/// Prefix of Loom's temporary files (in `.beads/`); a crash can leave one behind, the next
/// write under the lock removes it.
pub const TEMP_PREFIX: &str = ".loom-";
pub const TEMP_SUFFIX: &str = ".tmp";

/// Who a file is, as far as `stat` can tell: a rename gives a new inode, an in-place write a
/// new size or mtime. (Not ctime: renaming a file moves its ctime.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl Fingerprint {
    fn of(meta: &std::fs::Metadata) -> Self {
        Fingerprint {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
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

/// Opens a store file for reading: a plain file only. A symlink is refused (it could point
/// anywhere, and what it points at would end up in a commit), and so are FIFOs, sockets and
/// devices — without blocking on them. `None` if it does not exist.
pub fn open_regular(path: &Path) -> Result<Option<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(Error::Refused(format!(
                "{} is a symlink; bead files must be plain files in the repository (a symlink could point anywhere). Replace it with the file it points to",
                path.display()
            )));
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            use std::os::unix::fs::FileTypeExt;
            let t = meta.file_type();
            if t.is_fifo() {
                "a FIFO"
            } else if t.is_socket() {
                "a socket"
            } else {
                "a device"
            }
        };
        return Err(Error::Refused(format!(
            "{} is {what}, not a file; remove it from the bead store",
            path.display()
        )));
    }
    Ok(Some(file))
}

/// Reads a small settings file (a plain file only, see [`open_regular`]) of at most `cap`
/// bytes: `None` if it does not exist; a larger one is refused (a repository could point it at
/// a device or fill it without end).
pub fn read_small(path: &Path, cap: u64) -> Result<Option<String>> {
    let Some(file) = open_regular(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > cap {
        return Err(Error::Refused(format!(
            "{} is larger than {cap} bytes; it is not read",
            path.display()
        )));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::Refused(format!("{} is not UTF-8 text", path.display())))
}

/// Reads `path` with the fingerprint of the very file read; `None` if it does not exist. Only
/// plain files are read (see [`open_regular`]).
pub fn read_with_fingerprint(path: &Path) -> Result<Option<(Vec<u8>, Fingerprint)>> {
    let Some(mut file) = open_regular(path)? else {
        return Ok(None);
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
/// a check that `path` still has the `expected` fingerprint (`None` = must not exist), the
/// swap, fsync of the directory. A reader sees the old or the new file, never a torn one.
///
/// On Linux the swap is `renameat2(RENAME_EXCHANGE)`, which hands back the file it displaced:
/// if that is not the one expected (another program renamed its own version in after our
/// check), it is swapped straight back and the caller starts over, so Loom never destroys
/// another writer's file. New files use `RENAME_NOREPLACE`. Filesystems without these fall
/// back to a plain rename right after the check.
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
    let ours = Fingerprint::of(
        &temp
            .as_file()
            .metadata()
            .map_err(|e| Error::io(temp.path(), e))?,
    );
    if fingerprint(path)? != expected {
        return Ok(Replaced::Conflict); // the temp file is removed on drop
    }
    let temp = temp.into_temp_path(); // removed on drop unless kept
    match swap_in(temp, path, expected, ours)? {
        Replaced::Conflict => Ok(Replaced::Conflict),
        Replaced::Done(_) => {
            if let Some(dir) = path.parent() {
                sync_dir(dir)?;
            }
            Ok(Replaced::Done(fingerprint(path)?.unwrap_or(ours)))
        }
    }
}

/// Moves the finished temp file `temp` (fingerprint `ours`) to `path`, provided `path` is
/// still the file `expected` (`None`: no file). If the exchange displaced another file, that
/// file is put back and the result is a conflict.
fn swap_in(
    temp: tempfile::TempPath,
    path: &Path,
    expected: Option<Fingerprint>,
    ours: Fingerprint,
) -> Result<Replaced> {
    let flags = if expected.is_none() {
        RenameFlags::NOREPLACE
    } else {
        RenameFlags::EXCHANGE
    };
    match swap(&temp, path, flags) {
        Swap::Done if expected.is_none() => {
            let _ = temp.keep();
        }
        Swap::Done => {
            // `temp` now names the file we displaced: was it the one we read?
            if fingerprint(&temp)? != expected {
                return undo_exchange(temp, path, ours);
            }
            // Dropping `temp` removes the displaced old version.
        }
        Swap::Exists => return Ok(Replaced::Conflict),
        Swap::Unsupported => {
            std::fs::rename(&temp, path).map_err(|e| Error::io(path, e))?;
            let _ = temp.keep();
        }
        Swap::Failed(e) => return Err(Error::io(path, e)),
    }
    Ok(Replaced::Done(ours))
}

enum Swap {
    Done,
    /// `NOREPLACE` found a file there (or `EXCHANGE` found none): someone wrote first.
    Exists,
    /// The filesystem cannot do it.
    Unsupported,
    Failed(std::io::Error),
}

fn swap(from: &Path, to: &Path, flags: RenameFlags) -> Swap {
    match rustix::fs::renameat_with(rustix::fs::CWD, from, rustix::fs::CWD, to, flags) {
        Ok(()) => Swap::Done,
        Err(Errno::EXIST | Errno::NOENT) => Swap::Exists,
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => Swap::Unsupported,
        Err(e) => Swap::Failed(e.into()),
    }
}

/// Our exchange displaced a file we did not expect: put it back and report a conflict.
fn undo_exchange(temp: tempfile::TempPath, path: &Path, ours: Fingerprint) -> Result<Replaced> {
    if let Swap::Failed(e) = swap(&temp, path, RenameFlags::EXCHANGE) {
        return Err(Error::io(path, e));
    }
    if fingerprint(&temp)? == Some(ours) {
        return Ok(Replaced::Conflict); // `temp` (our version) is removed on drop
    }
    // A third writer got in between our two swaps: never delete what we now hold.
    let rescue = path.with_extension("loom-rescued");
    std::fs::rename(&temp, &rescue).map_err(|e| Error::io(&rescue, e))?;
    let _ = temp.keep();
    Err(Error::Other(format!(
        "{} was replaced by other programs several times during one write; a displaced version \
         is saved as {} — compare it with the current file",
        path.display(),
        rescue.display()
    )))
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

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_with(dir: &Path, text: &str) -> (tempfile::TempPath, Fingerprint) {
        let mut t = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .tempfile_in(dir)
            .unwrap();
        t.write_all(text.as_bytes()).unwrap();
        let fp = Fingerprint::of(&t.as_file().metadata().unwrap());
        (t.into_temp_path(), fp)
    }

    #[test]
    fn replace_swaps_in_and_keeps_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let fp = fingerprint(&path).unwrap();
        assert!(matches!(
            replace(&path, dir.path(), b"new", fp).unwrap(),
            Replaced::Done(_)
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        // A stale expectation (someone wrote since) is a conflict and writes nothing.
        assert!(matches!(
            replace(&path, dir.path(), b"newer", fp).unwrap(),
            Replaced::Conflict
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        // A file that must not exist yet, but does.
        assert!(matches!(
            replace(&path, dir.path(), b"x", None).unwrap(),
            Replaced::Conflict
        ));
    }

    /// The race the pre-check cannot see: another program renames its file in after our check.
    /// The exchange hands that file back to us, we put it back, and nothing is lost.
    #[test]
    fn a_file_renamed_in_after_the_check_is_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "what we read").unwrap();
        let read = fingerprint(&path).unwrap();
        // A foreign writer replaces it (temp + rename) after our check.
        let foreign = dir.path().join("foreign");
        std::fs::write(&foreign, "their change").unwrap();
        std::fs::rename(&foreign, &path).unwrap();
        let (ours, ours_fp) = temp_with(dir.path(), "our change");
        let ours_path = ours.to_path_buf();
        assert!(matches!(
            swap_in(ours, &path, read, ours_fp).unwrap(),
            Replaced::Conflict
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "their change");
        assert!(!ours_path.exists(), "our temp file is cleaned up");
        // With the right expectation, the same swap goes through and the old file is removed.
        let current = fingerprint(&path).unwrap();
        let (ours, ours_fp) = temp_with(dir.path(), "our change");
        assert!(matches!(
            swap_in(ours, &path, current, ours_fp).unwrap(),
            Replaced::Done(_)
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "our change");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "only the file remains");
    }

    #[test]
    fn lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/lock");
        let held = lock(&p, Duration::from_secs(1)).unwrap();
        let err = lock(&p, Duration::from_millis(30)).unwrap_err();
        assert!(
            err.to_string().contains("held by another Loom process"),
            "{err}"
        );
        drop(held);
        assert!(lock(&p, Duration::from_millis(30)).is_ok());
    }
}
