//! Agent worktrees: each bead's work happens on branch `loom/<bead-id>` in its own linked
//! worktree under Loom's data directory, never in the user's tree.
//!
//! Safety rules (DESIGN §3): a worktree is removed only when its branch is merged into the
//! target (or the caller explicitly abandons it, and even then an unmerged branch is kept); the
//! orphan sweep looks only inside Loom's own directory and never deletes uncommitted or
//! unmerged work; nothing is ever forced.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

use super::Repo;

pub(crate) mod pool;

/// `worktree:` in a config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorktreeFile {
    /// Untracked files to copy from the main worktree into new ones (e.g. `.env`); they are
    /// never committed.
    pub copy: Vec<String>,
    /// A command run (`sh -c`) in each new worktree (e.g. `npm ci`).
    pub setup: Option<String>,
    /// Reuse worktrees from a pool (`pool.rs`): a bead's checkout starts from a warm one
    /// (ignored build caches kept) instead of a new `git worktree add`.
    pub pool: Option<bool>,
}

impl WorktreeFile {
    pub fn merge(&mut self, other: WorktreeFile) {
        self.copy.extend(other.copy);
        if other.setup.is_some() {
            self.setup = other.setup;
        }
        if other.pool.is_some() {
            self.pool = other.pool;
        }
    }
}

/// A bead's worktree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Worktree {
    pub bead_id: String,
    pub path: PathBuf,
    pub branch: String,
    /// Files copied in by the setup (excluded from commits).
    #[serde(skip)]
    pub copied: Vec<String>,
    /// The git dir Loom's git uses for it (`<common dir>/worktrees/<name>`): never the `.git`
    /// file found in the worktree, which whatever runs there can rewrite.
    #[serde(skip)]
    pub git_dir: PathBuf,
}

impl Worktree {
    /// Where git processes for this worktree run.
    pub(crate) fn place(&self) -> super::safe::Place<'_> {
        super::safe::Place::Worktree {
            path: &self.path,
            git_dir: &self.git_dir,
        }
    }

    /// The `.git` file git wrote into the worktree (pointing at [`Worktree::git_dir`]).
    pub fn expected_dotgit(&self) -> String {
        format!("gitdir: {}\n", self.git_dir.display())
    }

    /// Whether the worktree's `.git` is still the file git made; what changed if not.
    pub fn tampered(&self) -> Option<String> {
        let path = self.path.join(".git");
        match std::fs::symlink_metadata(&path) {
            Err(_) => Some(".git was removed from the worktree".into()),
            Ok(m) if !m.file_type().is_file() => {
                Some(".git in the worktree was replaced by something other than a file".into())
            }
            Ok(_) => match std::fs::read_to_string(&path) {
                Ok(t) if t.trim_end() == self.expected_dotgit().trim_end() => None,
                Ok(t) => Some(format!(
                    ".git in the worktree was rewritten to point elsewhere ({:?})",
                    t.trim().chars().take(200).collect::<String>()
                )),
                Err(e) => Some(format!(".git in the worktree cannot be read: {e}")),
            },
        }
    }
}

/// Who a commit is attributed to.
#[derive(Clone, Debug)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

/// A worktree and whether it holds work.
#[derive(Clone, Debug, Serialize)]
pub struct WorktreeState {
    pub worktree: Worktree,
    /// Uncommitted changes (copied setup files aside).
    pub dirty: bool,
    /// Its branch is merged into the target.
    pub merged: bool,
}

/// What the sweep did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Sweep {
    pub removed: Vec<PathBuf>,
    /// Branches deleted because a person dropped their bead (`loom/<id>`).
    pub branches_deleted: Vec<String>,
    /// Kept, with the reason.
    pub kept: Vec<(PathBuf, String)>,
}

/// The worktrees of one repository.
#[derive(Clone, Debug)]
pub struct Worktrees {
    repo: Repo,
    base: PathBuf,
    setup: WorktreeFile,
    /// A directory (relative to the repository root) left out of agents' checkouts: the bead
    /// store, which agents cannot write and need not read (its beads come in the prompt).
    leave_out: Option<String>,
}

/// The branch of bead `id`.
pub fn branch_of(id: &str) -> String {
    format!("loom/{id}")
}

impl Worktrees {
    /// Worktrees of `repo` under `base` (Loom's data dir for this repository + `worktrees`).
    pub fn new(repo: Repo, base: PathBuf, setup: WorktreeFile) -> Worktrees {
        Worktrees {
            repo,
            base,
            setup,
            leave_out: None,
        }
    }

    /// Takes beads' worktrees from the pool (as `worktree.pool: true`).
    pub fn pooled(mut self) -> Worktrees {
        self.setup.pool = Some(true);
        self
    }

    /// Leaves directory `rel` (e.g. `.beads`) out of new worktrees (a sparse checkout local to
    /// each worktree: the repository's own configuration is not touched). A store of 10,000
    /// YAML beads is then not copied into every agent's checkout.
    pub fn leaving_out(mut self, rel: &str) -> Worktrees {
        let rel = rel.trim_matches('/');
        if !rel.is_empty() && !rel.contains(['*', '?', '[', '!', '\\', '\n']) {
            self.leave_out = Some(rel.to_owned());
        }
        self
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The directory left out of agents' checkouts (the bead store), if any.
    pub fn left_out(&self) -> Option<&str> {
        self.leave_out.as_deref()
    }

    fn git_in(&self, wt: &Worktree, args: &[&str], env: &[(&str, &OsStr)]) -> Result<String> {
        super::checked(args, super::run_at(wt.place(), args, env, None)?)
    }

    /// The git dir git made for the worktree at `path`: the entry of `<common
    /// dir>/worktrees/` whose `gitdir` file names `path/.git` (the worktree's own `.git` file
    /// is not trusted).
    pub fn git_dir_of(&self, path: &Path) -> Result<PathBuf> {
        let want = path.join(".git");
        let dir = self.repo.common_dir.join("worktrees");
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        for e in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path().join("gitdir")) else {
                continue;
            };
            let named = PathBuf::from(text.trim_end_matches(['\n', '\r']));
            let named = std::fs::canonicalize(named.parent().unwrap_or(&named))
                .map(|p| p.join(".git"))
                .unwrap_or(named);
            if named == want {
                return std::fs::canonicalize(e.path()).map_err(|err| Error::io(e.path(), err));
            }
        }
        Err(Error::Git {
            command: "worktree".into(),
            message: format!(
                "{} is not a worktree git knows about (no entry in {})",
                path.display(),
                dir.display()
            ),
        })
    }

    /// Paths of worktrees git knows about, with their branch.
    fn registered(&self) -> Result<Vec<(PathBuf, Option<String>)>> {
        let out = self
            .repo
            .git_ok(&["worktree", "list", "--porcelain"], &[], None)?;
        let mut list = Vec::new();
        let mut current: Option<(PathBuf, Option<String>)> = None;
        for line in out.lines() {
            if let Some(p) = line.strip_prefix("worktree ") {
                if let Some(c) = current.take() {
                    list.push(c);
                }
                let path = PathBuf::from(p);
                current = Some((std::fs::canonicalize(&path).unwrap_or(path), None));
            } else if let Some(b) = line.strip_prefix("branch ")
                && let Some(c) = current.as_mut()
            {
                c.1 = Some(b.trim_start_matches("refs/heads/").to_owned());
            }
        }
        list.extend(current);
        Ok(list)
    }

    /// The command that prepares a new worktree (`worktree.setup`), if any.
    pub fn setup_command(&self) -> Option<&str> {
        self.setup.setup.as_deref().filter(|c| !c.trim().is_empty())
    }

    /// The worktree of bead `id`, created from `target` if it does not exist yet (reusing the
    /// branch if it does). Returns whether it was created; the caller runs the setup command
    /// (`worktree.setup`) in a new one, inside the sandbox.
    pub fn add(&self, id: &str, target: &str) -> Result<(Worktree, bool)> {
        if !crate::store::layout::id_is_file_safe(id) {
            return Err(Error::Usage(format!("{id:?} cannot name a worktree")));
        }
        if self.setup.pool == Some(true) {
            // A warm checkout: the setup runs again (fast over the caches it left).
            return Ok((self.take_pooled(id, &self.repo.tip(target)?)?, true));
        }
        std::fs::create_dir_all(&self.base).map_err(|e| Error::io(&self.base, e))?;
        let base = std::fs::canonicalize(&self.base).map_err(|e| Error::io(&self.base, e))?;
        let path = base.join(id);
        let branch = branch_of(id);
        let mut wt = Worktree {
            bead_id: id.to_owned(),
            path: path.clone(),
            branch: branch.clone(),
            copied: Vec::new(),
            git_dir: PathBuf::new(),
        };
        if path.exists() {
            if self.registered()?.iter().any(|(p, _)| *p == path) {
                wt.copied = self.copied_present(&path);
                wt.git_dir = self.git_dir_of(&path)?;
                return Ok((wt, false));
            }
            return Err(Error::Other(format!(
                "{} exists but is not a git worktree; move it away (Loom never deletes it)",
                path.display()
            )));
        }
        let p = path.to_string_lossy().into_owned();
        // The common case first: a new branch. Then the branch of an earlier attempt, and a
        // stale registration of a directory that is gone (pruned, then tried again).
        // Without a checkout when something is left out: the sparse checkout comes first.
        let sparse = self.leave_out.is_some();
        let flags: &[&str] = if sparse {
            &["worktree", "add", "-q", "--no-checkout"]
        } else {
            &["worktree", "add", "-q"]
        };
        let try_add = || {
            let mut new_branch = flags.to_vec();
            new_branch.extend(["-b", &branch, &p, target]);
            match self.repo.git_ok(&new_branch, &[], None) {
                Err(Error::Git { message, .. }) if message.contains("already exists") => {
                    let mut old_branch = flags.to_vec();
                    old_branch.extend([p.as_str(), branch.as_str()]);
                    self.repo.git_ok(&old_branch, &[], None)
                }
                other => other,
            }
        };
        let mut added = try_add();
        if let Err(Error::Git { message, .. }) = &added
            && (message.contains("already registered")
                || message.contains("already used by worktree")
                || message.contains("already checked out"))
        {
            let _ = self.repo.git_ok(&["worktree", "prune"], &[], None);
            added = try_add();
        }
        added?;
        wt.git_dir = match self.git_dir_of(&path) {
            Ok(d) => d,
            Err(e) => {
                self.discard(&wt);
                return Err(e);
            }
        };
        if let Some(out) = &self.leave_out
            && let Err(e) = self.check_out_sparse(&wt, out)
        {
            self.discard(&wt);
            return Err(e);
        }
        wt.copied = self.copy_setup_files(&path)?;
        Ok((wt, true))
    }

    /// Fills a `--no-checkout` worktree with everything but `out`: the patterns go to the
    /// worktree's own `info/sparse-checkout`, and only this checkout applies them (the
    /// skip-worktree bits it leaves keep later `add`, `status` and merges away from `out`).
    fn check_out_sparse(&self, wt: &Worktree, out: &str) -> Result<()> {
        let gitdir = &wt.git_dir;
        let info = gitdir.join("info");
        std::fs::create_dir_all(&info).map_err(|e| Error::io(&info, e))?;
        let patterns = info.join("sparse-checkout");
        std::fs::write(&patterns, format!("/*\n!/{out}/\n"))
            .map_err(|e| Error::io(&patterns, e))?;
        self.git_in(
            wt,
            &[
                "-c",
                "core.sparseCheckout=true",
                "-c",
                "core.sparseCheckoutCone=false",
                "checkout",
                "-q",
            ],
            &[],
        )?;
        Ok(())
    }

    /// Removes a worktree Loom just created (e.g. its setup failed), whatever it holds; its
    /// branch goes too when it has no commits of its own.
    pub fn discard(&self, wt: &Worktree) {
        if self.is_pooled(wt) {
            // Back to the pool only when clean; a slot holding work stays taken.
            let _ = self.give_back(wt);
            return;
        }
        let p = wt.path.to_string_lossy().into_owned();
        let _ = self
            .repo
            .git_ok(&["worktree", "remove", "--force", &p], &[], None);
        let _ = self
            .repo
            .git_ok(&["branch", "-d", "-q", &wt.branch], &[], None);
    }

    fn copied_present(&self, path: &Path) -> Vec<String> {
        self.setup
            .copy
            .iter()
            .filter(|f| path.join(f).exists())
            .cloned()
            .collect()
    }

    fn copy_setup_files(&self, path: &Path) -> Result<Vec<String>> {
        let mut copied = Vec::new();
        let root = std::fs::canonicalize(&self.repo.workdir)
            .map_err(|e| Error::io(&self.repo.workdir, e))?;
        for rel in &self.setup.copy {
            if rel.split('/').any(|c| c == "..") || Path::new(rel).is_absolute() {
                return Err(Error::Config(format!(
                    "worktree.copy: {rel:?} must be a path inside the repository"
                )));
            }
            let from = self.repo.workdir.join(rel);
            // A plain file of the repository only: a symlink (to a key, say) is not followed.
            let plain = std::fs::symlink_metadata(&from).is_ok_and(|m| m.file_type().is_file())
                && std::fs::canonicalize(&from).is_ok_and(|real| real.starts_with(&root));
            let to = path.join(rel);
            if !plain || to.symlink_metadata().is_ok() {
                continue;
            }
            if let Some(dir) = to.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            std::fs::copy(&from, &to).map_err(|e| Error::io(&to, e))?;
            copied.push(rel.clone());
        }
        Ok(copied)
    }

    /// Commits everything changed in `wt` (but copied setup files) as `author`; the committer is
    /// `committer` or the repository's git identity. `None` if nothing changed.
    pub fn commit(
        &self,
        wt: &Worktree,
        message: &str,
        author: &Identity,
        committer: Option<&Identity>,
    ) -> Result<Option<String>> {
        // No positive pathspec: `.` would match the sparse-checkout's left-out paths.
        let mut add = vec!["add", "-A", "--"];
        // The left-out directory is excluded by name: a pathspec that matches paths outside
        // the sparse checkout is an error to `git add`.
        let excludes: Vec<String> = wt
            .copied
            .iter()
            .chain(self.leave_out.iter())
            .map(|f| format!(":(exclude){f}"))
            .collect();
        add.extend(excludes.iter().map(String::as_str));
        match self.git_in(wt, &add, &[]) {
            // Everything the pathspec matched is left out (a worktree with nothing but the
            // bead store): git says so with exit 1, having added whatever else there was.
            Err(Error::Git { message, .. })
                if message.contains("outside of your sparse-checkout") => {}
            other => {
                other?;
            }
        }
        super::drop_gitlinks(wt.place())?;
        let staged = self.git_in(wt, &["diff", "--cached", "--name-only"], &[])?;
        if staged.trim().is_empty() {
            return Ok(None);
        }
        let mut env: Vec<(&str, &OsStr)> = vec![
            ("GIT_AUTHOR_NAME", OsStr::new(&author.name)),
            ("GIT_AUTHOR_EMAIL", OsStr::new(&author.email)),
        ];
        if let Some(c) = committer {
            env.push(("GIT_COMMITTER_NAME", OsStr::new(&c.name)));
            env.push(("GIT_COMMITTER_EMAIL", OsStr::new(&c.email)));
        }
        // Model text reaches the message: no control character or bidi override goes in.
        let message = &crate::text::strip_unsafe(message);
        let commit = self.git_in(wt, &["commit", "-q", "--no-verify", "-m", message], &env);
        let commit = match commit {
            Err(Error::Git { message: m, .. })
                if m.contains("tell me who you are") || m.contains("empty ident") =>
            {
                // No committer identity configured: the author commits.
                env.push(("GIT_COMMITTER_NAME", OsStr::new(&author.name)));
                env.push(("GIT_COMMITTER_EMAIL", OsStr::new(&author.email)));
                self.git_in(wt, &["commit", "-q", "--no-verify", "-m", message], &env)
            }
            other => other,
        };
        commit?;
        Ok(Some(
            self.git_in(wt, &["rev-parse", "HEAD"], &[])?
                .trim()
                .to_owned(),
        ))
    }

    /// Whether `branch` is merged into `target`.
    pub fn is_merged(&self, branch: &str, target: &str) -> bool {
        self.repo
            .git_ok(&["merge-base", "--is-ancestor", branch, target], &[], None)
            .is_ok()
    }

    /// Uncommitted changes, not counting the copied setup files.
    fn dirty(&self, wt: &Worktree) -> Result<bool> {
        let status = self.git_in(
            wt,
            &[
                "status",
                "--porcelain",
                "--untracked-files=all",
                "--ignore-submodules=dirty",
            ],
            &[],
        )?;
        Ok(status.lines().any(|l| {
            let path = l.get(3..).unwrap_or("");
            !(l.starts_with("??") && wt.copied.iter().any(|c| c == path))
        }))
    }

    /// Removes `wt` if its branch is merged into `target` and it has no uncommitted changes
    /// (then the merged branch goes too). With `abandon`, an unmerged but clean worktree is
    /// removed as well — its branch is kept. Returns why it was kept, if it was.
    pub fn remove(&self, wt: &Worktree, target: &str, abandon: bool) -> Result<Option<String>> {
        if self.dirty(wt)? {
            return Ok(Some("it has uncommitted changes".into()));
        }
        let merged = self.is_merged(&wt.branch, target);
        if !merged && !abandon {
            return Ok(Some(format!("{} is not merged into {target}", wt.branch)));
        }
        if self.is_pooled(wt) {
            if !self.give_back(wt)? {
                return Ok(Some("it has uncommitted changes".into()));
            }
            if merged {
                let _ = self
                    .repo
                    .git_ok(&["branch", "-d", "-q", &wt.branch], &[], None);
            }
            return Ok(None);
        }
        // The copied setup files are Loom's own copies of files in the main tree; they go first
        // so git can remove the worktree without --force.
        for f in &wt.copied {
            let _ = std::fs::remove_file(wt.path.join(f));
        }
        let p = wt.path.to_string_lossy().into_owned();
        self.repo.git_ok(&["worktree", "remove", &p], &[], None)?;
        if merged {
            let _ = self
                .repo
                .git_ok(&["branch", "-d", "-q", &wt.branch], &[], None);
        }
        Ok(None)
    }

    /// Loom's worktrees (registered ones under its directory), with their state.
    pub fn list(&self, target: &str) -> Result<Vec<WorktreeState>> {
        let Ok(base) = std::fs::canonicalize(&self.base) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (path, branch) in self.registered()? {
            if path.parent() != Some(base.as_path()) || !path.exists() {
                continue;
            }
            let id = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Ok(git_dir) = self.git_dir_of(&path) else {
                continue;
            };
            let wt = Worktree {
                branch: branch.unwrap_or_else(|| branch_of(&id)),
                bead_id: id,
                copied: self.copied_present(&path),
                path,
                git_dir,
            };
            out.push(WorktreeState {
                dirty: self.dirty(&wt)?,
                merged: self.is_merged(&wt.branch, target),
                worktree: wt,
            });
        }
        out.sort_by(|a, b| a.worktree.bead_id.cmp(&b.worktree.bead_id));
        Ok(out)
    }

    /// After a squash merge of `wt`'s branch at commit `landed_from`: removes the worktree and
    /// the branch, if the branch is still at that commit and the worktree is clean. Returns why
    /// it was kept, if it was.
    pub fn remove_landed(&self, wt: &Worktree, landed_from: &str) -> Result<Option<String>> {
        if self.dirty(wt)? {
            return Ok(Some("it has uncommitted changes".into()));
        }
        if self.repo.tip(&wt.branch)? != landed_from {
            return Ok(Some(format!(
                "{} has commits that were not merged",
                wt.branch
            )));
        }
        if self.is_pooled(wt) {
            if !self.give_back(wt)? {
                return Ok(Some("it has uncommitted changes".into()));
            }
        } else {
            for f in &wt.copied {
                let _ = std::fs::remove_file(wt.path.join(f));
            }
            let p = wt.path.to_string_lossy().into_owned();
            self.repo.git_ok(&["worktree", "remove", &p], &[], None)?;
        }
        self.repo
            .git_ok(&["branch", "-D", "-q", &wt.branch], &[], None)?;
        Ok(None)
    }

    /// Removes worktrees under Loom's directory whose branch is merged into `target` and that
    /// are clean; keeps (and reports) everything else. Directories that are not registered
    /// worktrees are left alone. Beads in `dropped` were given up by a person (a denied
    /// decision): their clean worktrees go, and their branches too, merged or not.
    pub fn sweep(&self, target: &str, dropped: &[String]) -> Result<Sweep> {
        let mut report = Sweep::default();
        let _ = self.repo.git_ok(&["worktree", "prune"], &[], None);
        let Ok(base) = std::fs::canonicalize(&self.base) else {
            return Ok(report);
        };
        let registered = self.registered()?;
        let Ok(entries) = std::fs::read_dir(&base) else {
            return Ok(report);
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // The pool's slots are reused, not swept (`pool.rs`).
            if !path.is_dir() || entry.file_name() == pool::POOL {
                continue;
            }
            let Some((_, branch)) = registered.iter().find(|(p, _)| *p == path) else {
                report.kept.push((
                    path,
                    "not a registered worktree; left for you to inspect".into(),
                ));
                continue;
            };
            let id = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let git_dir = match self.git_dir_of(&path) {
                Ok(d) => d,
                Err(e) => {
                    report.kept.push((path, e.to_string()));
                    continue;
                }
            };
            let wt = Worktree {
                bead_id: id.clone(),
                branch: branch.clone().unwrap_or_else(|| branch_of(&id)),
                path: path.clone(),
                copied: self.copied_present(&path),
                git_dir,
            };
            match self.remove(&wt, target, dropped.contains(&id))? {
                None => report.removed.push(path),
                Some(reason) => report.kept.push((path, reason)),
            }
        }
        // Dropped beads' branches, with or without a worktree left (a kept worktree keeps its
        // branch checked out, and git refuses to delete that).
        for id in dropped {
            let branch = branch_of(id);
            if self.repo.tip(&branch).is_err() {
                continue;
            }
            match self
                .repo
                .git_ok(&["branch", "-D", "-q", &branch], &[], None)
            {
                Ok(_) => report.branches_deleted.push(branch),
                Err(e) => report.kept.push((PathBuf::from(&branch), e.to_string())),
            }
        }
        Ok(report)
    }
}
