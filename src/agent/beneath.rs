//! File access confined to a directory, in the same system call that opens each file.
//!
//! Every path an agent's file tool names is resolved by the kernel beneath the worktree root
//! (`openat2` with `RESOLVE_BENEATH`: no `..` above the root, no absolute symlink, no symlink
//! leading out, no magic links), so a process swapping a directory for a symlink between a
//! check and an open has nothing to race: there is no separate check. Directories are created
//! and walked one `openat` at a time from descriptors already beneath the root, and writes go
//! to a temporary file renamed over the target (so a hard link or symlink planted at the
//! target is replaced, never written through). Reads refuse FIFOs, sockets and devices without
//! blocking (`O_NONBLOCK`, then `fstat`). `.git` and `.beads` are never written.
//!
//! Kernels without `openat2` (before 5.6) get the same guarantees from a walk that opens each
//! component with `O_NOFOLLOW` (symlinks inside the tree are then refused rather than
//! followed).

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Directory names no tool may write into.
const PROTECTED: &[&str] = &[".git", ".beads"];

/// A directory and the descriptor every access starts from.
#[derive(Debug)]
pub struct Beneath {
    root: OwnedFd,
    path: PathBuf,
}

/// A regular file opened for reading, with its size.
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    pub len: u64,
}

/// What a walk reports for each entry.
#[derive(Debug)]
pub enum Walked<'a> {
    /// A regular file, its path relative to the root.
    File {
        rel: &'a str,
        dir: BorrowedFd<'a>,
        name: &'a CStr,
    },
    /// A directory that was entered.
    Dir { rel: &'a str },
}

fn errno_text(e: Errno) -> String {
    std::io::Error::from(e).to_string()
}

impl Beneath {
    /// Confines access to `root` (which must be a directory).
    pub fn open(root: &Path) -> std::io::Result<Beneath> {
        let fd = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Beneath {
            root: fd,
            path: root.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `raw` as a relative path: no `..`, not absolute; empty is the root itself.
    pub fn relative(raw: &str) -> Result<PathBuf, String> {
        let raw = raw.trim();
        let mut rel = PathBuf::new();
        for comp in Path::new(raw).components() {
            match comp {
                Component::Normal(c) => rel.push(c),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(format!(
                        "`{raw}`: `..` is not allowed; paths stay inside the repository"
                    ));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(format!(
                        "`{raw}`: absolute paths are not allowed; give a path relative to the repository root"
                    ));
                }
            }
        }
        if rel.as_os_str().as_bytes().contains(&0) {
            return Err(format!("`{raw}`: a path cannot contain a NUL byte"));
        }
        Ok(rel)
    }

    /// Opens `rel` beneath the root with `flags`, following symlinks only while they stay
    /// beneath it.
    fn open_at(&self, rel: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
        let target: &Path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let flags = flags | OFlags::CLOEXEC | OFlags::NOCTTY;
        match rustix::fs::openat2(
            &self.root,
            target,
            flags,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(Errno::NOSYS) => self.walk_open(rel, flags),
            other => other,
        }
    }

    /// The fallback of [`Beneath::open_at`]: one component at a time, never following a
    /// symlink.
    fn walk_open(&self, rel: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
        let comps: Vec<&OsStr> = rel.iter().collect();
        let Some((last, dirs)) = comps.split_last() else {
            return rustix::fs::openat(&self.root, ".", flags, Mode::empty());
        };
        let mut dir = rustix::fs::openat(
            &self.root,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        for c in dirs {
            dir = rustix::fs::openat(
                &dir,
                *c,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
        }
        rustix::fs::openat(&dir, *last, flags | OFlags::NOFOLLOW, Mode::empty())
    }

    fn describe_open_error(raw: &str, e: Errno) -> String {
        match e {
            Errno::XDEV | Errno::LOOP => {
                format!("`{raw}`: a symlink on this path points outside the repository (or loops)")
            }
            Errno::NOENT => format!("`{raw}` does not exist"),
            Errno::NOTDIR => format!("`{raw}`: a part of this path is not a directory"),
            other => format!("cannot open `{raw}`: {}", errno_text(other)),
        }
    }

    /// Opens a regular file for reading. FIFOs, sockets and devices are refused without
    /// blocking; a directory is named as one.
    pub fn open_file(&self, raw: &str) -> Result<Opened, String> {
        let rel = Self::relative(raw)?;
        let fd = self
            .open_at(&rel, OFlags::RDONLY | OFlags::NONBLOCK)
            .map_err(|e| Self::describe_open_error(raw, e))?;
        let st = rustix::fs::fstat(&fd)
            .map_err(|e| format!("cannot read `{raw}`: {}", errno_text(e)))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Ok(Opened {
                file: File::from(fd),
                len: u64::try_from(st.st_size).unwrap_or(0),
            }),
            FileType::Directory => Err(format!("`{raw}` is a directory; use list_files")),
            other => Err(format!(
                "`{raw}` is not a regular file ({}); only regular files can be read",
                kind_name(other)
            )),
        }
    }

    /// Opens a directory for walking.
    fn open_dir(&self, raw: &str) -> Result<OwnedFd, String> {
        let rel = Self::relative(raw)?;
        self.open_at(&rel, OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(|e| match e {
                Errno::NOTDIR => format!("`{raw}` is not a directory"),
                e => Self::describe_open_error(raw, e),
            })
    }

    /// Whether `rel` names something inside `.git` or `.beads` (or one of them).
    fn protected(rel: &Path) -> bool {
        rel.iter()
            .any(|c| PROTECTED.iter().any(|p| c == OsStr::new(p)))
    }

    /// The path of the directory `fd` relative to the root, as the kernel sees it now.
    fn where_is(&self, fd: &OwnedFd) -> Option<PathBuf> {
        let link = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(fd)
        ))
        .ok()?;
        let root = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&self.root)
        ))
        .ok()?;
        link.strip_prefix(root).ok().map(Path::to_path_buf)
    }

    /// The directory `rel` beneath the root, created (with its parents) if missing.
    fn make_dirs(&self, rel: &Path, raw: &str) -> Result<OwnedFd, String> {
        let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY;
        match self.open_at(rel, dir_flags) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {}
            Err(e) => return Err(Self::describe_open_error(raw, e)),
        }
        // The deepest part that exists (resolved beneath), then one new directory at a time.
        let comps: Vec<&OsStr> = rel.iter().collect();
        let mut have = comps.len();
        let mut dir = loop {
            have -= 1;
            let prefix: PathBuf = comps[..have].iter().collect();
            match self.open_at(&prefix, dir_flags) {
                Ok(fd) => break fd,
                Err(Errno::NOENT) if have > 0 => continue,
                Err(e) => return Err(Self::describe_open_error(raw, e)),
            }
        };
        for c in &comps[have..] {
            match rustix::fs::mkdirat(&dir, *c, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => {
                    return Err(format!(
                        "cannot create the directory of `{raw}`: {}",
                        errno_text(e)
                    ));
                }
            }
            dir = rustix::fs::openat(
                &dir,
                *c,
                dir_flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Self::describe_open_error(raw, e))?;
        }
        Ok(dir)
    }

    /// Writes `content` to `raw` (creating directories): a temporary file in the same
    /// directory, given the old file's permissions, renamed over it.
    pub fn write(&self, raw: &str, content: &[u8]) -> Result<(), String> {
        let rel = Self::relative(raw)?;
        let Some(name) = rel.file_name().map(OsStr::to_owned) else {
            return Err(format!("`{raw}`: name a file to write"));
        };
        if Self::protected(&rel) {
            return Err(format!(
                "`{raw}`: .git/ and .beads/ are not writable by tools"
            ));
        }
        let parent = rel.parent().unwrap_or(Path::new(""));
        // No symlink on the way: the directory is where its name says (checked above).
        // Otherwise, where it really is decides; if the kernel cannot say, the write is
        // refused rather than risked.
        let dir = match self.open_plain_dir(parent) {
            Some(dir) => dir,
            None => {
                let dir = self.make_dirs(parent, raw)?;
                if self.where_is(&dir).is_none_or(|p| Self::protected(&p)) {
                    return Err(format!(
                        "`{raw}`: this path leads into .git/ or .beads/, which tools may not write"
                    ));
                }
                dir
            }
        };
        // An existing plain file with one link is rewritten in place (its mode and inode
        // kept); anything else — a new file, a symlink or hard link planted at the name — is
        // replaced by a new file renamed over it, never written through.
        let existing = rustix::fs::openat(
            &dir,
            &name,
            OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        );
        if let Ok(fd) = existing {
            let st = rustix::fs::fstat(&fd)
                .map_err(|e| format!("cannot write `{raw}`: {}", errno_text(e)))?;
            if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && st.st_nlink == 1 {
                let mut file = File::from(fd);
                return file
                    .set_len(0)
                    .and_then(|()| file.write_all(content))
                    .map_err(|e| format!("cannot write `{raw}`: {e}"));
            }
        }
        self.replace(&dir, &name, raw, content)
    }

    /// Writes `content` to a new file in `dir` and renames it over `name`.
    fn replace(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        raw: &str,
        content: &[u8],
    ) -> Result<(), String> {
        let mode = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::RegularFile => Mode::from_raw_mode(st.st_mode & 0o7777),
                FileType::Directory => return Err(format!("`{raw}` is a directory")),
                _ => Mode::from_raw_mode(0o644),
            },
            Err(_) => Mode::from_raw_mode(0o644),
        };
        let tmp_name = format!(".loom-write-{}-{}", std::process::id(), nonce());
        let tmp = rustix::fs::openat(
            dir,
            tmp_name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| format!("cannot write `{raw}`: {}", errno_text(e)))?;
        let cleanup = |why: String| {
            let _ = rustix::fs::unlinkat(dir, tmp_name.as_str(), AtFlags::empty());
            why
        };
        let mut file = File::from(tmp);
        file.write_all(content)
            .map_err(|e| cleanup(format!("cannot write `{raw}`: {e}")))?;
        let _ = rustix::fs::fchmod(&file, mode);
        drop(file);
        rustix::fs::renameat(dir, tmp_name.as_str(), dir, name)
            .map_err(|e| cleanup(format!("cannot write `{raw}`: {}", errno_text(e))))
    }

    /// The directory `rel` if it exists and no symlink leads to it (its real place is its
    /// name, so no further check is needed).
    fn open_plain_dir(&self, rel: &Path) -> Option<OwnedFd> {
        let target: &Path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        rustix::fs::openat2(
            &self.root,
            target,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .ok()
    }

    /// Walks `raw` (a directory, or a single file) depth first in name order, skipping `.git`
    /// and what `.gitignore`/`.ignore` files exclude, never following a symlink. `visit`
    /// returns `false` to stop.
    pub fn walk(&self, raw: &str, visit: &mut dyn FnMut(Walked<'_>) -> bool) -> Result<(), String> {
        let rel = Self::relative(raw)?;
        let rel_text = rel.to_string_lossy().into_owned();
        let fd = match self.open_dir(raw) {
            Ok(fd) => fd,
            Err(e) => {
                // A single file: visit it alone.
                let file = self.open_file(raw).map_err(|_| e)?;
                drop(file);
                let parent = rel.parent().unwrap_or(Path::new(""));
                let dir = self
                    .open_at(parent, OFlags::RDONLY | OFlags::DIRECTORY)
                    .map_err(|e| Self::describe_open_error(raw, e))?;
                let name = std::ffi::CString::new(
                    rel.file_name().map(OsStr::as_bytes).unwrap_or_default(),
                )
                .map_err(|_| format!("`{raw}`: bad file name"))?;
                visit(Walked::File {
                    rel: &rel_text,
                    dir: dir.as_fd(),
                    name: &name,
                });
                return Ok(());
            }
        };
        let mut ignores = Vec::new();
        let mut walker = Walker {
            visit,
            budget: MAX_WALK,
        };
        walker.dir(fd, &rel_text, &mut ignores);
        Ok(())
    }
}

/// Most entries one walk looks at (a bound on huge trees).
const MAX_WALK: usize = 200_000;

struct Walker<'v> {
    visit: &'v mut dyn FnMut(Walked<'_>) -> bool,
    budget: usize,
}

impl Walker<'_> {
    /// Walks one directory; `false` when the walk should stop.
    fn dir(
        &mut self,
        fd: OwnedFd,
        rel: &str,
        ignores: &mut Vec<ignore::gitignore::Gitignore>,
    ) -> bool {
        let base = Path::new("/").join(rel);
        let pushed = match read_ignores(&fd, &base) {
            Some(g) => {
                ignores.push(g);
                true
            }
            None => false,
        };
        let keep_going = self.entries(&fd, rel, &base, ignores);
        if pushed {
            ignores.pop();
        }
        keep_going
    }

    fn entries(
        &mut self,
        fd: &OwnedFd,
        rel: &str,
        base: &Path,
        ignores: &mut Vec<ignore::gitignore::Gitignore>,
    ) -> bool {
        let Ok(dir) = rustix::fs::Dir::read_from(fd) else {
            return true;
        };
        let mut entries: Vec<(std::ffi::CString, FileType)> = dir
            .flatten()
            .filter(|e| !matches!(e.file_name().to_bytes(), b"." | b".." | b".git"))
            .map(|e| (e.file_name().to_owned(), e.file_type()))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, mut kind) in entries {
            if self.budget == 0 {
                return false;
            }
            self.budget -= 1;
            if kind == FileType::Unknown {
                kind = rustix::fs::statat(fd, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_or(FileType::Unknown, |st| FileType::from_raw_mode(st.st_mode));
            }
            let name_text = String::from_utf8_lossy(name.to_bytes()).into_owned();
            let child_rel = if rel.is_empty() {
                name_text.clone()
            } else {
                format!("{rel}/{name_text}")
            };
            let is_dir = kind == FileType::Directory;
            if ignored(ignores, &base.join(&name_text), is_dir) {
                continue;
            }
            match kind {
                FileType::Directory => {
                    if !(self.visit)(Walked::Dir { rel: &child_rel }) {
                        return false;
                    }
                    let Ok(sub) = rustix::fs::openat(
                        fd,
                        name.as_c_str(),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    ) else {
                        continue;
                    };
                    if !self.dir(sub, &child_rel, ignores) {
                        return false;
                    }
                }
                FileType::RegularFile
                    if !(self.visit)(Walked::File {
                        rel: &child_rel,
                        dir: fd.as_fd(),
                        name: name.as_c_str(),
                    }) =>
                {
                    return false;
                }
                _ => {}
            }
        }
        true
    }
}

/// The deepest matching rule of the ignore files in force decides.
fn ignored(ignores: &[ignore::gitignore::Gitignore], path: &Path, is_dir: bool) -> bool {
    for g in ignores.iter().rev() {
        let m = g.matched(path, is_dir);
        if m.is_ignore() {
            return true;
        }
        if m.is_whitelist() {
            return false;
        }
    }
    false
}

/// The rules of `.gitignore` and `.ignore` in directory `fd` (whose path, for matching, is
/// `base`).
fn read_ignores(fd: &OwnedFd, base: &Path) -> Option<ignore::gitignore::Gitignore> {
    let mut builder = ignore::gitignore::GitignoreBuilder::new(base);
    let mut any = false;
    for name in [".gitignore", ".ignore"] {
        let Ok(f) = rustix::fs::openat(
            fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            continue;
        };
        if !rustix::fs::fstat(&f)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
        {
            continue;
        }
        let mut text = String::new();
        use std::io::Read;
        if File::from(f)
            .take(1 << 20)
            .read_to_string(&mut text)
            .is_err()
        {
            continue;
        }
        for line in text.lines() {
            if builder.add_line(None, line).is_ok() {
                any = true;
            }
        }
    }
    if !any {
        return None;
    }
    builder.build().ok()
}

fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Symlink => "a symlink",
        _ => "a special file",
    }
}

fn nonce() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Opens file `name` in directory `dir` (from a walk) for reading: regular files only, never
/// through a symlink, never blocking.
pub fn open_entry(dir: BorrowedFd<'_>, name: &CStr) -> Option<Opened> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile).then(|| Opened {
        file: File::from(fd),
        len: u64::try_from(st.st_size).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, Beneath) {
        let wt = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(wt.path().join("src")).unwrap();
        std::fs::create_dir_all(wt.path().join(".beads")).unwrap();
        std::fs::write(wt.path().join(".git"), "gitdir: elsewhere\n").unwrap();
        std::fs::write(wt.path().join("src/a.rs"), "fn a() {}\n").unwrap();
        let b = Beneath::open(wt.path()).unwrap();
        (wt, b)
    }

    #[test]
    fn paths_stay_inside() {
        let (wt, b) = tree();
        assert!(b.open_file("src/a.rs").is_ok());
        assert!(
            b.open_file("./src/../src/a.rs")
                .unwrap_err()
                .contains("`..`")
        );
        assert!(
            b.open_file("../../etc/passwd")
                .unwrap_err()
                .contains("`..`")
        );
        assert!(b.open_file("/etc/passwd").unwrap_err().contains("absolute"));
        assert!(
            b.write(".git/config", b"x")
                .unwrap_err()
                .contains(".git/ and .beads/")
        );
        assert!(
            b.write(".beads/x.yaml", b"x")
                .unwrap_err()
                .contains(".git/ and .beads/")
        );
        assert!(
            b.write(".git", b"x")
                .unwrap_err()
                .contains(".git/ and .beads/")
        );
        std::os::unix::fs::symlink("/etc", wt.path().join("etc")).unwrap();
        assert!(b.open_file("etc/passwd").unwrap_err().contains("symlink"));
        assert!(b.write("etc/evil", b"x").unwrap_err().contains("symlink"));
        assert!(!Path::new("/etc/evil").exists());
        // An absolute symlink is refused outright; a relative one into .beads by where it
        // leads.
        std::os::unix::fs::symlink(wt.path().join(".beads"), wt.path().join("abs")).unwrap();
        assert!(b.write("abs/x.yaml", b"x").is_err());
        std::os::unix::fs::symlink(".beads", wt.path().join("notes")).unwrap();
        assert!(
            b.write("notes/x.yaml", b"x")
                .unwrap_err()
                .contains(".beads")
        );
        assert!(!wt.path().join(".beads/x.yaml").exists());
        std::os::unix::fs::symlink("src", wt.path().join("code")).unwrap();
        b.write("code/c.rs", b"fn c() {}\n").unwrap();
        assert!(
            wt.path().join("src/c.rs").exists(),
            "a symlink inside is fine"
        );
        b.write("deep/new/dir/d.rs", b"d").unwrap();
        assert_eq!(
            std::fs::read(wt.path().join("deep/new/dir/d.rs")).unwrap(),
            b"d"
        );
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let (wt, b) = tree();
        let fifo = wt.path().join("pipe");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        assert!(b.open_file("pipe").unwrap_err().contains("FIFO"));
        assert!(b.open_file("src").unwrap_err().contains("directory"));
    }

    #[test]
    fn writes_replace_links_instead_of_writing_through_them() {
        let (wt, b) = tree();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, wt.path().join("link")).unwrap();
        b.write("link", b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(
            std::fs::read_to_string(wt.path().join("link")).unwrap(),
            "new"
        );
        // A script keeps its execute bit.
        use std::os::unix::fs::PermissionsExt;
        let script = wt.path().join("run.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        b.write("run.sh", b"#!/bin/sh\necho hi\n").unwrap();
        let mode = std::fs::metadata(&script).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[test]
    fn walks_in_name_order_honouring_ignore_files() {
        let (wt, b) = tree();
        std::fs::write(wt.path().join(".gitignore"), "target/\n*.log\n!keep.log\n").unwrap();
        std::fs::create_dir_all(wt.path().join("target")).unwrap();
        std::fs::write(wt.path().join("target/x"), "").unwrap();
        std::fs::write(wt.path().join("a.log"), "").unwrap();
        std::fs::write(wt.path().join("keep.log"), "").unwrap();
        std::os::unix::fs::symlink("/etc", wt.path().join("etc")).unwrap();
        let mut files = Vec::new();
        b.walk(".", &mut |w| {
            if let Walked::File { rel, .. } = w {
                files.push(rel.to_owned());
            }
            true
        })
        .unwrap();
        assert_eq!(files, [".gitignore", "keep.log", "src/a.rs"]);
    }
}
