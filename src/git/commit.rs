//! Bead commits: only `.beads/` paths, on the checked-out branch, leaving the user's index and
//! worktree exactly as they were.
//!
//! The new tree is HEAD's with our paths replaced, edited in process (gix: only the trees on
//! the way to the paths are touched); where git must do it itself (filters, CRLF text,
//! symlinks, `core.fileMode=false`, anything unusual) it is assembled in a private index
//! (`read-tree HEAD`, `update-index` of our paths, `write-tree`). Then `commit-tree`, HEAD
//! moves with a compare-and-swap `update-ref`, and finally the user's index learns the new
//! content of just those paths, so `git status` stays clean for them. Plumbing runs no hooks.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

use super::Repo;

/// Beads named in trailers before the list is cut short.
const MAX_BEAD_TRAILERS: usize = 200;
/// Attempts when someone else moves HEAD between our read and our update.
const MAX_HEAD_RACES: usize = 8;

/// What to commit and how to describe it.
#[derive(Clone, Debug)]
pub struct CommitRequest {
    /// Paths relative to the worktree root (all under `.beads/`).
    pub paths: Vec<PathBuf>,
    /// Subject line, e.g. `loom: bd-a1b2 open → in_progress`.
    pub subject: String,
    /// Optional body paragraphs.
    pub body: Option<String>,
    pub beads: Vec<String>,
    pub actor: String,
    pub event: super::CommitKind,
}

/// A commit made.
#[derive(Clone, Debug)]
pub struct Committed {
    pub id: String,
    /// Things that went wrong after the commit was made (e.g. the index was locked).
    pub warnings: Vec<String>,
}

impl CommitRequest {
    /// The subject as committed: one line, without control characters or bidi overrides
    /// (bead text reaches subjects; `git log` prints them raw).
    pub fn clean_subject(&self) -> String {
        one_line(&crate::text::strip_unsafe(&self.subject))
    }

    /// The full commit message with Loom trailers.
    pub fn message(&self) -> String {
        let mut m = self.clean_subject();
        m.push_str("\n\n");
        if let Some(body) = self
            .body
            .as_deref()
            .map(crate::text::strip_unsafe)
            .filter(|b| !b.trim().is_empty())
        {
            m.push_str(body.trim());
            m.push_str("\n\n");
        }
        for id in self.beads.iter().take(MAX_BEAD_TRAILERS) {
            m.push_str(&format!("Loom-Bead: {id}\n"));
        }
        if self.beads.len() > MAX_BEAD_TRAILERS {
            m.push_str(&format!("Loom-Bead-Count: {}\n", self.beads.len()));
        }
        m.push_str(&format!(
            "Loom-Actor: {}\n",
            one_line(&crate::text::strip_unsafe(&self.actor))
        ));
        m.push_str(&format!("Loom-Event: {}\n", self.event));
        m
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Removes the private index when the commit is done (or fails).
struct TempIndex(PathBuf);
impl Drop for TempIndex {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(self.0.with_extension("lock"));
    }
}

fn is_identity_error(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("tell me who you are")
        || m.contains("unable to auto-detect email")
        || m.contains("empty ident")
        || m.contains("invalid ident")
}

impl Repo {
    /// Commits `req.paths` as they are in the worktree now. `None` if that changes nothing.
    pub fn commit_beads(&self, req: &CommitRequest) -> Result<Option<Committed>> {
        if req.paths.is_empty() {
            return Ok(None);
        }
        let mut pause = Duration::from_millis(5);
        for _ in 0..MAX_HEAD_RACES {
            match self.try_commit(req)? {
                Attempt::Raced => {
                    // Someone moved HEAD, or a git command (perhaps one orphaned by a killed
                    // Loom) still holds the ref lock: give it a moment.
                    std::thread::sleep(pause);
                    pause *= 2;
                }
                Attempt::Nothing => return Ok(None),
                Attempt::Done(c) => return Ok(Some(c)),
            }
        }
        Err(Error::Git {
            command: "update-ref HEAD".into(),
            message: "HEAD kept moving while Loom tried to commit".into(),
        })
    }

    fn head(&self) -> Result<Option<(String, String)>> {
        let repo = self.gix()?;
        let mut head = repo.head().map_err(|e| Error::Git {
            command: "rev-parse HEAD".into(),
            message: e.to_string(),
        })?;
        let Some(id) = head.id() else {
            return Ok(None); // unborn branch: no commits yet
        };
        let commit = head.peel_to_commit().map_err(|e| Error::Git {
            command: "rev-parse HEAD^{commit}".into(),
            message: e.to_string(),
        })?;
        let tree = commit.tree_id().map_err(|e| Error::Git {
            command: "rev-parse HEAD^{tree}".into(),
            message: e.to_string(),
        })?;
        Ok(Some((id.to_string(), tree.to_string())))
    }

    fn try_commit(&self, req: &CommitRequest) -> Result<Attempt> {
        let head = self.head()?;
        let mut list = String::new();
        for p in &req.paths {
            list.push_str(&p.to_string_lossy());
            list.push('\0');
        }
        let edited = match &head {
            Some((_, head_tree)) => self.edited_tree(head_tree, &req.paths)?,
            None => None,
        };
        let tree = match edited {
            Some(t) => t,
            None => self.index_tree(head.as_ref().map(|(h, _)| h.as_str()), &list)?,
        };
        if head.as_ref().is_some_and(|(_, t)| *t == tree) {
            return Ok(Attempt::Nothing);
        }
        let message = req.message();
        let mut args = vec!["commit-tree", tree.as_str()];
        if let Some((head_id, _)) = &head {
            args.extend(["-p", head_id.as_str()]);
        }
        let commit = match self.git_ok(&args, &[], Some(&message)) {
            Ok(c) => c,
            Err(Error::Git { message: m, .. }) if is_identity_error(&m) => {
                // No git identity configured: attribute the commit to the actor.
                let name = OsStr::new(req.actor.as_str());
                let email = OsStr::new("loom@localhost");
                let env = [
                    ("GIT_AUTHOR_NAME", name),
                    ("GIT_AUTHOR_EMAIL", email),
                    ("GIT_COMMITTER_NAME", name),
                    ("GIT_COMMITTER_EMAIL", email),
                ];
                self.git_ok(&args, &env, Some(&message))?
            }
            Err(e) => return Err(e),
        };
        let old = head.as_ref().map_or("", |(h, _)| h.as_str());
        let reflog = req.clean_subject();
        let moved = self.git(
            &["update-ref", "-m", &reflog, "HEAD", &commit, old],
            &[],
            None,
        )?;
        if !moved.status.success() {
            let err = String::from_utf8_lossy(&moved.stderr);
            if err.contains("but expected")
                || err.contains("cannot lock ref")
                || err.contains("already exists")
            {
                return Ok(Attempt::Raced);
            }
            return Err(Error::Git {
                command: "update-ref HEAD".into(),
                message: err.trim().to_owned(),
            });
        }
        let warnings = self.sync_index(&list);
        Ok(Attempt::Done(Committed {
            id: commit,
            warnings,
        }))
    }

    /// HEAD's tree with `paths` as they are on disk now (or removed), built in process: only
    /// the trees on the way to each path are read and written, so the cost does not grow with
    /// the repository. `None` where git itself must do it: attributes that change what is
    /// stored (filters, `ident`, encodings, line endings), CRLF text, a path that is not a plain
    /// file or passes through a symlink, `core.fileMode=false`, a path that is not UTF-8, or
    /// anything gix will not write (e.g. objects a partial clone lacks).
    fn edited_tree(&self, head_tree: &str, paths: &[PathBuf]) -> Result<Option<String>> {
        use std::os::unix::fs::PermissionsExt;
        let Ok(repo) = self.gix() else {
            return Ok(None);
        };
        let file_mode = repo
            .config_snapshot()
            .boolean("core.fileMode")
            .unwrap_or(true);
        if !file_mode || paths.iter().any(|p| self.attributes_may_apply(&repo, p)) {
            return Ok(None);
        }
        let Ok(id) = gix::ObjectId::from_hex(head_tree.as_bytes()) else {
            return Ok(None);
        };
        let Ok(mut tree) = repo.edit_tree(id) else {
            return Ok(None);
        };
        for p in paths {
            let Some(rel) = p.to_str() else {
                return Ok(None);
            };
            // Every directory on the way must be a real one (git refuses to add beyond a
            // symlink; the editor would replace it by a tree).
            let mut dir = p.parent();
            while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
                match std::fs::symlink_metadata(self.workdir.join(d)) {
                    Ok(m) if m.is_dir() => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    _ => return Ok(None),
                }
                dir = d.parent();
            }
            let abs = self.workdir.join(p);
            match std::fs::symlink_metadata(&abs) {
                Ok(m) if m.is_file() => {
                    let bytes = std::fs::read(&abs).map_err(|e| Error::io(&abs, e))?;
                    if bytes.contains(&b'\r') {
                        return Ok(None);
                    }
                    let Ok(blob) = repo.write_blob(&bytes) else {
                        return Ok(None);
                    };
                    // Git looks at the owner's execute bit only.
                    let kind = if m.permissions().mode() & 0o100 != 0 {
                        gix::object::tree::EntryKind::BlobExecutable
                    } else {
                        gix::object::tree::EntryKind::Blob
                    };
                    if tree.upsert(rel, kind, blob).is_err() {
                        return Ok(None);
                    }
                }
                Ok(_) => return Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if tree.remove(rel).is_err() {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(Error::io(&abs, e)),
            }
        }
        Ok(tree.write().ok().map(|t| t.to_string()))
    }

    /// Whether git attributes might change how `path` is stored (a clean filter, `ident`, a
    /// working-tree encoding, line-ending conversion). Looked up cheaply and on the safe side:
    /// any attributes file on the way (the repository's, `info/attributes`, the user's) that
    /// mentions one of them sends the commit through git's plumbing.
    fn attributes_may_apply(&self, repo: &gix::Repository, path: &std::path::Path) -> bool {
        const CHANGING: [&str; 5] = ["filter", "ident", "working-tree-encoding", "text", "eol"];
        let mentions = |file: &std::path::Path| {
            std::fs::read_to_string(file)
                .map(|t| CHANGING.iter().any(|w| t.contains(w)))
                .unwrap_or(false)
        };
        let mut files = vec![
            self.git_dir.join("info").join("attributes"),
            self.common_dir.join("info").join("attributes"),
        ];
        let mut dir = path.parent();
        files.push(self.workdir.join(".gitattributes"));
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
            files.push(self.workdir.join(d).join(".gitattributes"));
            dir = d.parent();
        }
        let home = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
        if let Some(h) = home {
            files.push(h.join("git").join("attributes"));
        }
        if let Some(f) = repo.config_snapshot().string("core.attributesFile") {
            let f = f.to_string();
            let f = match f.strip_prefix("~/") {
                Some(rest) => std::env::var_os("HOME")
                    .map(|h| PathBuf::from(h).join(rest))
                    .unwrap_or_else(|| PathBuf::from(&f)),
                None => PathBuf::from(&f),
            };
            files.push(f);
        }
        files.iter().any(|f| mentions(f))
    }

    /// HEAD's tree (if any) with the NUL-separated `paths` from disk, through a private index
    /// and git's own plumbing (filters and all).
    fn index_tree(&self, head: Option<&str>, nul_paths: &str) -> Result<String> {
        let dir = self.git_dir.join("loom");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let index = TempIndex(dir.join(format!("index.{}", std::process::id())));
        let _ = std::fs::remove_file(&index.0);
        let env_index: [(&str, &OsStr); 1] = [("GIT_INDEX_FILE", index.0.as_os_str())];
        if let Some(head_id) = head {
            self.git_ok(&["read-tree", head_id], &env_index, None)?;
        }
        self.git_ok(
            &["update-index", "--add", "--remove", "-z", "--stdin"],
            &env_index,
            Some(nul_paths),
        )?;
        self.git_ok(&["write-tree"], &env_index, None)
    }

    /// Brings the user's index up to date for our paths only; retried briefly while another git
    /// command holds `index.lock`.
    fn sync_index(&self, nul_list: &str) -> Vec<String> {
        let mut pause = Duration::from_millis(5);
        let mut last = String::new();
        for _ in 0..8 {
            match self.git(
                &["update-index", "--add", "--remove", "-z", "--stdin"],
                &[],
                Some(nul_list),
            ) {
                Ok(out) if out.status.success() => return Vec::new(),
                Ok(out) => last = String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                Err(e) => last = e.to_string(),
            }
            if !last.contains("index.lock") {
                break;
            }
            std::thread::sleep(pause);
            pause *= 2;
        }
        vec![format!(
            "committed, but could not update the git index for .beads/ ({last}); \
             `git status` may list those files as changed until you run `git reset -- .beads`"
        )]
    }
}

enum Attempt {
    Done(Committed),
    Nothing,
    Raced,
}
