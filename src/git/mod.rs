//! Everything that touches git: finding the repository, committing bead changes as the audit
//! trail, and reading that trail back.
//!
//! Reads use gix (in process, fast). Writes that must leave the user's index and worktree
//! consistent use the `git` CLI's plumbing: the commit is built in a private index, so the
//! user's staged and unstaged changes elsewhere are never touched and no hooks run.

mod commit;
pub(crate) mod diff;
mod kind;
mod log;
pub mod merge;
pub(crate) mod safe;
pub mod worktree;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::error::{Error, Result};

pub use commit::{CommitRequest, Committed};
pub use kind::CommitKind;
pub use log::{LogEntry, Trailers, parse_trailers};

/// A git repository (worktree) Loom works in.
#[derive(Clone, Debug)]
pub struct Repo {
    /// The worktree root.
    pub workdir: PathBuf,
    /// This worktree's git directory (`.git`, or `.git/worktrees/<name>`).
    pub git_dir: PathBuf,
    /// The repository's common git directory (shared by all worktrees).
    pub common_dir: PathBuf,
}

impl Repo {
    /// The repository containing `path`, or `None` outside any.
    pub fn discover(path: &Path) -> Result<Option<Repo>> {
        let found = match gix::discover::upwards(path) {
            Ok((found, _trust)) => found,
            Err(e) if e.classify().is_not_found() => return Ok(None),
            Err(e) => {
                return Err(Error::Git {
                    command: "rev-parse --git-dir".into(),
                    message: format!("{}: {e}", path.display()),
                });
            }
        };
        let (git_dir, _) = found.into_repository_and_work_tree_directories();
        let repo = gix::open(&git_dir).map_err(|e| Error::Git {
            command: "open".into(),
            message: format!("{}: {e}", git_dir.display()),
        })?;
        let Some(workdir) = repo.workdir() else {
            return Err(Error::Usage(format!(
                "{} is a bare git repository; run Loom in a checkout",
                path.display()
            )));
        };
        Ok(Some(Repo {
            workdir: absolute(workdir)?,
            git_dir: absolute(repo.git_dir())?,
            common_dir: absolute(repo.common_dir())?,
        }))
    }

    /// Like [`Repo::discover`], but a missing repository is an error that says to run
    /// `git init`.
    pub fn require(path: &Path) -> Result<Repo> {
        Repo::discover(path)?.ok_or_else(|| Error::NotGit {
            path: path.to_path_buf(),
        })
    }

    /// The lock that serialises bead writers of this worktree.
    pub fn beads_lock_path(&self) -> PathBuf {
        self.git_dir.join("loom").join("beads.lock")
    }

    /// Opens the repository with gix for reads.
    pub(crate) fn gix(&self) -> Result<gix::Repository> {
        gix::open(&self.git_dir).map_err(|e| Error::Git {
            command: "open".into(),
            message: format!("{}: {e}", self.git_dir.display()),
        })
    }

    /// Whether a merge, rebase, cherry-pick or revert is under way in this worktree.
    pub fn in_operation(&self) -> bool {
        [
            "rebase-merge",
            "rebase-apply",
            "MERGE_HEAD",
            "CHERRY_PICK_HEAD",
            "REVERT_HEAD",
        ]
        .iter()
        .any(|f| self.git_dir.join(f).exists())
    }

    /// Paths under `rel` (relative to the worktree) that a merge, rebase or cherry-pick left
    /// unmerged (conflicted) in the index. Only asks git while such an operation is under way
    /// (otherwise there can be none worth stopping for, and asking would cost every write).
    pub fn unmerged_under(&self, rel: &std::path::Path) -> Result<Vec<String>> {
        if !self.in_operation() {
            return Ok(Vec::new());
        }
        let spec = rel.to_string_lossy().into_owned();
        let args = [
            "--literal-pathspecs",
            "ls-files",
            "-u",
            "-z",
            "--",
            spec.as_str(),
        ];
        let out = checked(&args, self.git(&args, &[], None)?)?;
        let mut paths: Vec<String> = out
            .split('\0')
            .filter_map(|l| l.split_once('\t').map(|(_, p)| p.to_owned()))
            .collect();
        paths.dedup();
        Ok(paths)
    }

    /// Which of `paths` (relative to the worktree) differ from HEAD on disk or in the index,
    /// untracked files included (git's stat cache: a clean file is not read).
    pub fn changed_since_head(&self, paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        // Many paths (an import): ask about their directories and keep ours.
        const MANY: usize = 256;
        let mut specs: Vec<String> = if paths.len() > MANY {
            let mut dirs: Vec<String> = paths
                .iter()
                .map(|p| {
                    p.parent()
                        .unwrap_or(Path::new("."))
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            dirs.sort();
            dirs.dedup();
            dirs
        } else {
            paths
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect()
        };
        specs
            .iter_mut()
            .filter(|s| s.is_empty())
            .for_each(|s| *s = ".".into());
        let mut args = vec![
            "--no-optional-locks",
            "--literal-pathspecs",
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--no-renames",
            "--",
        ];
        args.extend(specs.iter().map(String::as_str));
        let out = checked(&args, self.git(&args, &[], None)?)?;
        let wanted: std::collections::HashSet<&Path> = paths.iter().map(PathBuf::as_path).collect();
        Ok(out
            .split('\0')
            .filter(|e| e.len() > 3 && !e.starts_with("!!"))
            .map(|e| PathBuf::from(&e[3..]))
            .filter(|p| wanted.contains(p.as_path()))
            .collect())
    }

    /// Whether the file at `rel` (relative to the worktree) is on disk exactly as HEAD has it
    /// (absent from both counts).
    pub fn matches_head(&self, rel: &std::path::Path) -> Result<bool> {
        let failed = |e: &dyn std::fmt::Display| Error::Git {
            command: "rev-parse HEAD:<path>".into(),
            message: e.to_string(),
        };
        let repo = self.gix()?;
        let in_head = match repo.head_tree() {
            Ok(tree) => tree
                .lookup_entry_by_path(rel)
                .map_err(|e| failed(&e))?
                .map(|e| e.object_id()),
            Err(_) => None, // no commit yet
        };
        let abs = self.workdir.join(rel);
        let on_disk = match std::fs::read(&abs) {
            Ok(bytes) => Some(
                gix::objs::compute_hash(repo.object_hash(), gix::objs::Kind::Blob, &bytes)
                    .map_err(|e| failed(&e))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&abs, e)),
        };
        Ok(in_head == on_disk)
    }

    /// The current branch name, or `None` when HEAD is detached.
    pub fn current_branch(&self) -> Result<Option<String>> {
        let repo = self.gix()?;
        let head = repo.head_name().map_err(|e| Error::Git {
            command: "symbolic-ref HEAD".into(),
            message: e.to_string(),
        })?;
        Ok(head.map(|n| n.shorten().to_string()))
    }

    /// A stable id for this repository, the same in every clone without configuration: the
    /// first 16 hex digits of the smallest root commit id reachable from HEAD (`None` before
    /// the first commit).
    pub fn id(&self) -> Result<Option<String>> {
        let out = self.git(&["rev-list", "--max-parents=0", "HEAD"], &[], None)?;
        if !out.status.success() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| l.len() >= 16 && l.bytes().all(|b| b.is_ascii_hexdigit()))
            .min()
            .map(|l| l[..16].to_owned()))
    }

    /// Runs `git args…` in the worktree with extra environment, returning its output.
    pub(crate) fn git(
        &self,
        args: &[&str],
        env: &[(&str, &OsStr)],
        stdin: Option<&str>,
    ) -> Result<Output> {
        run_in(&self.workdir, args, env, stdin)
    }

    /// Runs git and returns trimmed stdout, or an error carrying its stderr.
    pub(crate) fn git_ok(
        &self,
        args: &[&str],
        env: &[(&str, &OsStr)],
        stdin: Option<&str>,
    ) -> Result<String> {
        checked(args, self.git(args, env, stdin)?).map(|s| s.trim().to_owned())
    }
}

/// Runs `git args…` against the user's repository at `dir`, returning its output (see
/// [`safe`]: no configured program runs, git never prompts, messages are in the C locale).
pub(crate) fn run_in(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &OsStr)],
    stdin: Option<&str>,
) -> Result<Output> {
    run_at(safe::Place::Repo(dir), args, env, stdin)
}

/// [`run_in`] for a command that must succeed: its trimmed stdout, or an error carrying its
/// stderr.
pub(crate) fn ok_in(dir: &Path, args: &[&str]) -> Result<String> {
    checked(args, run_in(dir, args, &[], None)?).map(|s| s.trim().to_owned())
}

/// [`ok_in`] against a remote (fetch, push, clone): transports allowed
/// ([`safe::Place::Transport`]).
pub(crate) fn transport_ok(dir: &Path, args: &[&str]) -> Result<String> {
    checked(args, run_at(safe::Place::Transport(dir), args, &[], None)?)
        .map(|s| s.trim().to_owned())
}

/// Runs `git args…` at `place` with extra environment, returning its output.
pub(crate) fn run_at(
    place: safe::Place<'_>,
    args: &[&str],
    env: &[(&str, &OsStr)],
    stdin: Option<&str>,
) -> Result<Output> {
    let dir = place.dir().to_path_buf();
    let mut cmd = safe::command(place);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| Error::Git {
        command: args.join(" "),
        message: format!("cannot run git: {e}; is git installed and on PATH?"),
    })?;
    if let Some(input) = stdin
        && let Some(mut pipe) = child.stdin.take()
    {
        use std::io::Write;
        pipe.write_all(input.as_bytes())
            .map_err(|e| Error::io(&dir, e))?;
    }
    child.wait_with_output().map_err(|e| Error::io(&dir, e))
}

/// What an agent changed in its worktree against `base` (new files included, through an
/// intent-to-add in the worktree's own index; `.beads` left out): the `--stat` summary and
/// the diff, of which at most `cap` bytes are kept (the rest is counted, not held). Large
/// files are summarised, not diffed (`core.bigFileThreshold`).
pub(crate) fn worktree_diff(
    place: safe::Place<'_>,
    base: &str,
    cap: usize,
) -> Result<(String, String, u64)> {
    let _ = run_at(place, &["add", "-A", "--intent-to-add", "."], &[], None);
    let _ = drop_gitlinks(place);
    let diff = |extra: &'static str| {
        let mut args = vec![
            "-c",
            "core.bigFileThreshold=16m",
            "diff",
            "--no-ext-diff",
            "--no-textconv",
            "--ignore-submodules=dirty",
            base,
        ];
        if !extra.is_empty() {
            args.push(extra);
        }
        args.extend(["--", ".", ":(exclude).beads"]);
        args
    };
    let stat_args = diff("--stat");
    let stat = checked(&stat_args, run_at(place, &stat_args, &[], None)?)?;
    let args = diff("");
    let mut cmd = safe::command(place);
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().map_err(|e| Error::Git {
        command: args.join(" "),
        message: format!("cannot run git: {e}"),
    })?;
    let mut body = Vec::new();
    let mut omitted = 0u64;
    if let Some(out) = child.stdout.as_mut() {
        use std::io::Read;
        let _ = out.by_ref().take(cap as u64).read_to_end(&mut body);
        omitted = std::io::copy(out, &mut std::io::sink()).unwrap_or(0);
    }
    let _ = child.wait();
    Ok((stat, String::from_utf8_lossy(&body).into_owned(), omitted))
}

/// Tracked paths whose content at `place` (working tree) differs from `rev`.
pub(crate) fn changed_against(place: safe::Place<'_>, rev: &str) -> Result<Vec<String>> {
    // No rename detection: a protected file moved away must show under its own path. Nested
    // repositories are not entered (only their recorded commit counts).
    let args = [
        "diff",
        "--no-ext-diff",
        "--no-textconv",
        "--no-renames",
        "--ignore-submodules=dirty",
        "--name-only",
        "-z",
        rev,
        "--",
    ];
    let out = checked(&args, run_at(place, &args, &[], None)?)?;
    Ok(split_z(&out))
}

/// Paths that differ between two commits or trees.
pub(crate) fn changed_between(place: safe::Place<'_>, from: &str, to: &str) -> Result<Vec<String>> {
    let args = [
        "diff",
        "--no-ext-diff",
        "--no-textconv",
        "--no-renames",
        "--name-only",
        "-z",
        from,
        to,
        "--",
    ];
    let out = checked(&args, run_at(place, &args, &[], None)?)?;
    Ok(split_z(&out))
}

/// The diff between two commits or trees, limited to `paths`, at most `cap` bytes (marked
/// when cut).
pub(crate) fn diff_between(
    place: safe::Place<'_>,
    from: &str,
    to: &str,
    paths: &[String],
    cap: usize,
) -> Result<String> {
    let mut args = vec![
        "--literal-pathspecs",
        "diff",
        "--no-ext-diff",
        "--no-textconv",
        "--no-renames",
        from,
        to,
        "--",
    ];
    args.extend(paths.iter().map(String::as_str));
    let out = checked(&args, run_at(place, &args, &[], None)?)?;
    Ok(crate::text::fit_bytes(&out, cap))
}

/// Whether `rev` has `path`.
pub(crate) fn has_path(place: safe::Place<'_>, rev: &str, path: &str) -> bool {
    let spec = format!("{rev}:{path}");
    run_at(place, &["cat-file", "-e", &spec], &[], None).is_ok_and(|o| o.status.success())
}

/// Writes `rev`'s version of `paths` into the working tree (and index) at `place`.
pub(crate) fn checkout_paths(place: safe::Place<'_>, rev: &str, paths: &[&str]) -> Result<()> {
    let mut args = vec!["--literal-pathspecs", "checkout", "-q", rev, "--"];
    args.extend(paths);
    checked(&args, run_at(place, &args, &[], None)?).map(|_| ())
}

/// Unstages every gitlink (a nested repository an agent made, or a submodule it added) staged
/// at `place`: Loom never commits one (git would enter it with that repository's own
/// configuration). Returns the paths dropped.
pub(crate) fn drop_gitlinks(place: safe::Place<'_>) -> Result<Vec<String>> {
    // `--cached` compares index entries only (no nested worktree is looked at); the config
    // hides gitlinks (`diff.ignoreSubmodules=all`), so they are asked for here.
    let args = [
        "diff",
        "--cached",
        "--raw",
        "-z",
        "--no-renames",
        "--no-abbrev",
        "--ignore-submodules=none",
    ];
    let out = checked(&args, run_at(place, &args, &[], None)?)?;
    let mut fields = out.split('\0');
    let mut links = Vec::new();
    while let Some(meta) = fields.next() {
        let Some(path) = fields.next() else { break };
        // `:100644 160000 <old> <new> A`: the new mode is the second field.
        if meta.split_whitespace().nth(1) == Some("160000") {
            links.push(path.to_owned());
        }
    }
    if !links.is_empty() {
        let refs: Vec<&str> = links.iter().map(String::as_str).collect();
        unstage(place, &refs)?;
    }
    Ok(links)
}

/// Drops `paths` from the index at `place` (the files stay).
pub(crate) fn unstage(place: safe::Place<'_>, paths: &[&str]) -> Result<()> {
    let mut args = vec![
        "--literal-pathspecs",
        "rm",
        "-q",
        "-f",
        "--cached",
        "--ignore-unmatch",
        "--",
    ];
    args.extend(paths);
    checked(&args, run_at(place, &args, &[], None)?).map(|_| ())
}

fn split_z(out: &str) -> Vec<String> {
    out.split('\0')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The stdout of a git run that succeeded (untrimmed), or an error carrying its stderr.
pub(crate) fn checked(args: &[&str], out: Output) -> Result<String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Git {
            command: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(p).map_err(|e| Error::io(p, e))
}
