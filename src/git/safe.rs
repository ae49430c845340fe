//! How Loom starts the `git` CLI: never running a program that a repository, a worktree or
//! its content configures.
//!
//! Every git process Loom starts gets
//! - an allow-listed environment (`PATH`, `HOME`, `USER`, `TZ`, `TMPDIR`, `XDG_CONFIG_HOME`,
//!   where git's own config lives and who commits; nothing else — no `GIT_DIR`,
//!   `GIT_EXTERNAL_DIFF`, `GIT_SSH_COMMAND`, pagers, editors, or API keys), in the C locale,
//!   never prompting;
//! - overrides that turn off every configured program: hooks (`core.hooksPath=/dev/null`),
//!   `core.fsmonitor`, pagers, editors, credential helpers, `core.sshCommand`, askpass,
//!   external diff, signing programs, automatic gc and maintenance, submodule recursion, every
//!   transport (`protocol.allow=never`), and every `filter.<driver>` (clean, smudge, process)
//!   and `merge.<driver>` that any configuration level defines (found with gix, so a
//!   `.gitattributes` written by an agent can select no program);
//! - for an agent's worktree, the git dir Loom created for it (`--git-dir`, `--work-tree`):
//!   the `.git` file inside the worktree is never consulted.
//!
//! Checkouts of code into the user's own worktree (moving the target branch) keep the
//! configured filters (e.g. Git LFS): that is the user's checkout and configuration.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// Settings that disable configured programs, as `-c` pairs.
const OVERRIDES: &[&str] = &[
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.untrackedCache=false",
    "core.pager=cat",
    "core.editor=:",
    "sequence.editor=:",
    "core.askPass=",
    "core.sshCommand=false",
    "credential.helper=",
    "diff.external=",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "gc.auto=0",
    "maintenance.auto=false",
    "submodule.recurse=false",
    // A nested repository (a gitlink) is never entered: git would run `status` inside it
    // with that repository's own configuration (its filters, its fsmonitor).
    "diff.ignoreSubmodules=all",
    "status.submoduleSummary=false",
    "fetch.recurseSubmodules=false",
    "protocol.allow=never",
    "uploadpack.packObjectsHook=",
];

/// What a [`Place::Transport`] leaves as the user configured it.
const TRANSPORT_KEEPS: &[&str] = &[
    "protocol.allow",
    "core.sshCommand",
    "core.askPass",
    "credential.helper",
];

/// Variables git may see.
const ENV_ALLOW: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "TZ",
    "TMPDIR",
    "XDG_CONFIG_HOME",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "GIT_COMMITTER_DATE",
];

/// Where a git process works.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Place<'a> {
    /// The user's repository (its main worktree, or a plain command against it).
    Repo(&'a Path),
    /// An agent's worktree, with the git dir Loom made for it.
    Worktree { path: &'a Path, git_dir: &'a Path },
    /// A checkout into the user's own worktree: configured filters run (hooks still do not).
    UserCheckout(&'a Path),
    /// Talking to the repository's remote (`loom worker`, `loom run --nats`): as
    /// [`Place::Repo`], but the transports and the user's credential helpers and SSH set-up
    /// work (hooks still do not run).
    Transport(&'a Path),
}

impl Place<'_> {
    pub fn dir(&self) -> &Path {
        match self {
            Place::Repo(d) | Place::UserCheckout(d) | Place::Transport(d) => d,
            Place::Worktree { path, .. } => path,
        }
    }
}

/// A `git` command for `place`, with Loom's environment and overrides (callers add the
/// subcommand and its arguments).
pub(crate) fn command(place: Place<'_>) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(place.dir())
        .env_clear()
        .envs(std::env::vars_os().filter(|(k, _)| ENV_ALLOW.iter().any(|a| OsStr::new(a) == k)))
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0");
    let config_from = match place {
        Place::Worktree { path, git_dir } => {
            cmd.arg("--git-dir")
                .arg(git_dir)
                .arg("--work-tree")
                .arg(path);
            Some(git_dir)
        }
        Place::Repo(dir) | Place::Transport(dir) => Some(dir),
        Place::UserCheckout(_) => None,
    };
    let transport = matches!(place, Place::Transport(_));
    if transport && let Some(sock) = std::env::var_os("SSH_AUTH_SOCK") {
        cmd.env("SSH_AUTH_SOCK", sock);
    }
    for o in OVERRIDES {
        if transport && TRANSPORT_KEEPS.iter().any(|k| o.starts_with(k)) {
            continue;
        }
        cmd.arg("-c").arg(o);
    }
    if let Some(at) = config_from {
        for o in driver_overrides(at) {
            cmd.arg("-c").arg(o);
        }
    }
    cmd
}

/// `-c` settings that empty every filter and merge driver the configuration at `at` (a
/// worktree or git dir) defines, at any level.
fn driver_overrides(at: &Path) -> Vec<String> {
    let Ok(repo) = gix::open(at) else {
        return Vec::new();
    };
    let config = repo.config_snapshot();
    let file = config.plumbing();
    let mut out = Vec::new();
    for (section, keys) in [
        (
            "filter",
            &["clean=", "smudge=", "process=", "required=false"][..],
        ),
        ("merge", &["driver=false"][..]),
    ] {
        let Some(sections) = file.sections_by_name(section) else {
            continue;
        };
        for s in sections {
            let Some(name) = s.header().subsection_name() else {
                continue;
            };
            let name = name.to_string();
            // A name git could not take back on the command line is skipped (git would not
            // match it either).
            if name.contains(['\n', '\0']) {
                continue;
            }
            for k in keys {
                let o = format!("{section}.{name}.{k}");
                if !out.contains(&o) {
                    out.push(o);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_drivers_are_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("git")
            .args(["init", "-q"])
            .current_dir(dir.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let cfg = dir.path().join(".git/config");
        let mut text = std::fs::read_to_string(&cfg).unwrap();
        text.push_str(
            "[filter \"evil\"]\n\tclean = touch /tmp/pwned\n[merge \"m\"]\n\tdriver = x\n",
        );
        std::fs::write(&cfg, text).unwrap();
        let o = driver_overrides(dir.path());
        assert!(o.contains(&"filter.evil.clean=".to_owned()), "{o:?}");
        assert!(o.contains(&"filter.evil.process=".to_owned()));
        assert!(o.contains(&"merge.m.driver=false".to_owned()));
    }

    /// SECURITY.md promise 1's one exception stays narrow: talking to the remote leaves
    /// transports and credentials as configured, and keeps every other override (hooks off).
    #[test]
    fn the_transport_place_keeps_hooks_off() {
        let dir = tempfile::tempdir().unwrap();
        let args = |place: Place<'_>| -> Vec<String> {
            command(place)
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let transport = args(Place::Transport(dir.path()));
        let repo = args(Place::Repo(dir.path()));
        for o in OVERRIDES {
            let kept = TRANSPORT_KEEPS.iter().any(|k| o.starts_with(k));
            assert_eq!(transport.iter().any(|a| a == o), !kept, "{o}");
            assert!(repo.iter().any(|a| a == o), "{o}");
        }
        assert!(transport.iter().any(|a| a == "core.hooksPath=/dev/null"));
    }
}
