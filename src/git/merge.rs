//! Landing a bead's branch on the target: conflict checks and the squash are in-memory
//! three-way merges (`git merge-tree --write-tree`), so whatever reached the target meanwhile
//! (other beads, bead commits) is kept; the target moves by compare-and-swap — `git merge
//! --ff-only` in the main worktree when the target is checked out there (git refuses, and so do
//! we, if that would overwrite the user's uncommitted changes), `update-ref` otherwise.
//!
//! Conflicts are resolved in the bead's worktree: the target is merged in with the markers left
//! for the agent, then committed. For the squashed result this is the same as a rebase, with one
//! resolution instead of one per commit.

use std::ffi::OsStr;
use std::path::Path;

use crate::error::{Error, Result};

use super::Repo;
use super::worktree::{Identity, Worktree};

/// Whether the branch lands cleanly on the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Landing {
    /// The merged tree.
    Clean { tree: String },
    /// Files both sides changed incompatibly.
    Conflict { files: Vec<String> },
}

/// The outcome of moving the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Advance {
    Done,
    /// The target moved meanwhile: compute the squash again.
    Moved,
    /// git refused: the user's uncommitted changes would be overwritten.
    Refused(String),
}

/// Outcome of merging the target into the bead's worktree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Integrated {
    /// Already contains the target's code.
    UpToDate,
    /// Merged in cleanly (and committed).
    Merged,
    /// Merged with conflict markers left in these files, for the agent to resolve.
    Conflicted { files: Vec<String> },
}

fn run(dir: &Path, args: &[&str], env: &[(&str, &OsStr)]) -> Result<std::process::Output> {
    super::run_in(dir, args, env, None)
}

fn ok(dir: &Path, args: &[&str], env: &[(&str, &OsStr)]) -> Result<String> {
    super::checked(args, run(dir, args, env)?).map(|s| s.trim().to_owned())
}

/// Runs git in an agent's worktree (through the git dir Loom made for it).
fn run_wt(wt: &Worktree, args: &[&str], env: &[(&str, &OsStr)]) -> Result<std::process::Output> {
    super::run_at(wt.place(), args, env, None)
}

fn ok_wt(wt: &Worktree, args: &[&str], env: &[(&str, &OsStr)]) -> Result<String> {
    super::checked(args, run_wt(wt, args, env)?).map(|s| s.trim().to_owned())
}

fn identity_env<'a>(
    author: &'a Identity,
    committer: Option<&'a Identity>,
) -> Vec<(&'static str, &'a OsStr)> {
    let mut env = vec![
        ("GIT_AUTHOR_NAME", OsStr::new(&author.name)),
        ("GIT_AUTHOR_EMAIL", OsStr::new(&author.email)),
    ];
    if let Some(c) = committer {
        env.push(("GIT_COMMITTER_NAME", OsStr::new(&c.name)));
        env.push(("GIT_COMMITTER_EMAIL", OsStr::new(&c.email)));
    }
    env
}

impl Repo {
    /// The commit a branch points at.
    pub fn tip(&self, branch: &str) -> Result<String> {
        ok(
            &self.workdir,
            &[
                "rev-parse",
                "--verify",
                &format!("refs/heads/{branch}^{{commit}}"),
            ],
            &[],
        )
    }

    /// How `branch` lands on `target` now, computed in memory.
    pub fn landing(&self, target: &str, branch: &str) -> Result<Landing> {
        let out = run(
            &self.workdir,
            &[
                "merge-tree",
                "--write-tree",
                "--name-only",
                "--no-messages",
                target,
                branch,
            ],
            &[],
        )?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let tree = lines.next().unwrap_or("").trim().to_owned();
        match out.status.code() {
            Some(0) => Ok(Landing::Clean { tree }),
            Some(1) => Ok(Landing::Conflict {
                files: lines.map(str::to_owned).filter(|l| !l.is_empty()).collect(),
            }),
            _ => Err(Error::Git {
                command: format!("merge-tree {target} {branch}"),
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            }),
        }
    }

    /// Whether the target's code (outside `.beads/` and the lessons file) changed since `branch`
    /// last took it in.
    pub fn base_moved(&self, target: &str, branch: &str) -> Result<bool> {
        let base = ok(&self.workdir, &["merge-base", target, branch], &[])?;
        let out = run(
            &self.workdir,
            &[
                "diff",
                "--quiet",
                &base,
                target,
                "--",
                ".",
                ":(exclude).beads",
                ":(exclude).loom/lessons.md",
            ],
            &[],
        )?;
        Ok(out.status.code() == Some(1))
    }

    /// Whether `ancestor` is reachable from `descendant`.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> bool {
        run(
            &self.workdir,
            &["merge-base", "--is-ancestor", ancestor, descendant],
            &[],
        )
        .is_ok_and(|o| o.status.success())
    }

    /// The tree of a commit.
    pub fn tree_of(&self, commit: &str) -> Result<String> {
        ok(
            &self.workdir,
            &["rev-parse", &format!("{commit}^{{tree}}")],
            &[],
        )
    }

    /// The commit `branch` forked from `target` (their merge base).
    pub fn fork_point(&self, target: &str, branch: &str) -> Result<String> {
        ok(&self.workdir, &["merge-base", target, branch], &[])
    }

    /// How many commits `branch` has that `target` does not.
    pub fn ahead(&self, target: &str, branch: &str) -> Result<u64> {
        let n = ok(
            &self.workdir,
            &["rev-list", "--count", &format!("{target}..{branch}")],
            &[],
        )?;
        Ok(n.parse().unwrap_or(0))
    }

    /// A commit with `tree` on top of `parent`.
    pub fn commit_tree(
        &self,
        tree: &str,
        parent: &str,
        message: &str,
        author: &Identity,
        committer: Option<&Identity>,
    ) -> Result<String> {
        let env = identity_env(author, committer);
        // Bead and model text reach the message: no control character goes in.
        let message = &crate::text::strip_unsafe(message);
        let out = run(
            &self.workdir,
            &["commit-tree", tree, "-p", parent, "-m", message],
            &env,
        )?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned());
        }
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        if err.contains("tell me who you are") || err.contains("empty ident") {
            // No committer identity configured: the author commits.
            let mut env = env;
            env.push(("GIT_COMMITTER_NAME", OsStr::new(&author.name)));
            env.push(("GIT_COMMITTER_EMAIL", OsStr::new(&author.email)));
            return ok(
                &self.workdir,
                &["commit-tree", tree, "-p", parent, "-m", message],
                &env,
            );
        }
        Err(Error::Git {
            command: "commit-tree".into(),
            message: err.trim().to_owned(),
        })
    }

    /// Moves `target` from `old` to `new` (a descendant): `git merge --ff-only` in the main
    /// worktree when the target is checked out there, `update-ref` otherwise.
    pub fn advance(&self, target: &str, old: &str, new: &str) -> Result<Advance> {
        if self.current_branch()?.as_deref() == Some(target) {
            // The user's own checkout: their configured filters run (hooks do not).
            let args = ["merge", "--ff-only", "--no-edit", "-q", new];
            let out = super::run_at(
                super::safe::Place::UserCheckout(&self.workdir),
                &args,
                &[],
                None,
            )?;
            if out.status.success() {
                return Ok(Advance::Done);
            }
            let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            if err.contains("would be overwritten") || err.contains("untracked working tree files")
            {
                return Ok(Advance::Refused(err));
            }
            if self.tip(target)? != old {
                return Ok(Advance::Moved);
            }
            return Err(Error::Git {
                command: format!("merge --ff-only {new}"),
                message: err,
            });
        }
        let out = run(
            &self.workdir,
            &["update-ref", &format!("refs/heads/{target}"), new, old],
            &[],
        )?;
        if out.status.success() {
            Ok(Advance::Done)
        } else {
            Ok(Advance::Moved)
        }
    }
}

/// Merges the latest `target` into the bead's worktree (committing a clean merge as `author`).
pub fn integrate(
    wt: &Worktree,
    target: &str,
    author: &Identity,
    committer: Option<&Identity>,
) -> Result<Integrated> {
    let contains = run_wt(wt, &["merge-base", "--is-ancestor", target, "HEAD"], &[])?;
    if contains.status.success() {
        return Ok(Integrated::UpToDate);
    }
    let env = identity_env(author, committer);
    let message = format!("Merge {target} into {}", wt.branch);
    let out = run_wt(
        wt,
        &["merge", "--no-ff", "--no-edit", "-m", &message, target],
        &env,
    )?;
    if out.status.success() {
        return Ok(Integrated::Merged);
    }
    let files = ok_wt(wt, &["diff", "--name-only", "--diff-filter=U"], &[])?;
    let files: Vec<String> = files
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect();
    if files.is_empty() {
        return Err(Error::Git {
            command: format!("merge {target}"),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(Integrated::Conflicted { files })
}

/// Files of `files` that still hold conflict markers (or that are no longer plain files, which
/// are not taken as resolved). Opened without following a symlink and without blocking on a
/// FIFO, at most 16 MB each.
pub fn unresolved(wt: &Worktree, files: &[String]) -> Vec<String> {
    use std::io::Read;
    let has_markers = |f: &String| -> bool {
        let file = match crate::store::fsio::open_regular(&wt.path.join(f)) {
            Ok(Some(file)) => file,
            // Deleted is resolved.
            Ok(None) => return false,
            // Anything there that is not a plain file (a symlink, a FIFO) is not.
            Err(_) => return true,
        };
        let mut bytes = Vec::new();
        if file.take(16 << 20).read_to_end(&mut bytes).is_err() {
            return true;
        }
        String::from_utf8_lossy(&bytes)
            .lines()
            .any(|l| l.starts_with("<<<<<<< ") || l.starts_with(">>>>>>> "))
    };
    files.iter().filter(|f| has_markers(f)).cloned().collect()
}

/// Completes a merge whose conflicts were resolved in the worktree.
pub fn conclude(wt: &Worktree, author: &Identity, committer: Option<&Identity>) -> Result<()> {
    let env = identity_env(author, committer);
    let added = run_wt(wt, &["add", "-A"], &env)?;
    let err = String::from_utf8_lossy(&added.stderr);
    // Exit 1 when all it matched is outside the worktree's sparse checkout (the bead store).
    if !added.status.success() && !err.contains("outside of your sparse-checkout") {
        return Err(Error::Git {
            command: "add -A".into(),
            message: err.trim().to_owned(),
        });
    }
    super::drop_gitlinks(wt.place())?;
    ok_wt(wt, &["commit", "-q", "--no-verify", "--no-edit"], &env)?;
    Ok(())
}

/// Whether a merge is in progress in the worktree (`MERGE_HEAD` exists).
pub fn in_progress(wt: &Worktree) -> bool {
    run_wt(wt, &["rev-parse", "-q", "--verify", "MERGE_HEAD"], &[])
        .is_ok_and(|o| o.status.success())
}

/// Gives up a merge in progress in the worktree (the branch keeps its own work).
pub fn abandon(wt: &Worktree) {
    let _ = run_wt(wt, &["merge", "--abort"], &[]);
}
