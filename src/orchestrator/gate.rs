//! The gate an agent cannot move: the paths that verify or configure its work.
//!
//! `.loom/` and `.beads/` are always protected; `protected_paths` (globs, from the config)
//! names the rest, by default the file the `test_command` runs (when it is a file of the
//! repository; `Makefile` for `make`), CI configuration (`.github/`, `.gitlab-ci.yml`, …) and
//! git's own per-repository settings (`.gitattributes`, `.gitmodules`). Two rules follow:
//! - verification runs the target branch's version of every protected file
//!   ([`TargetVersions`]), so an agent that rewrites its own test script is judged by the
//!   script it was given;
//! - a change that touches a protected path is never merged automatically: it becomes a
//!   decision showing that part of the diff (the reviewer is told too).

use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};
use crate::git::worktree::Worktree;

/// Always protected, whatever the configuration says.
pub const ALWAYS: &[&str] = &[".loom/**", ".beads/**"];

/// Protected by default (when `protected_paths` is not set), besides the test script.
pub const DEFAULTS: &[&str] = &[
    ".github/**",
    ".gitlab-ci.yml",
    ".gitlab/**",
    ".circleci/**",
    ".ci/**",
    ".buildkite/**",
    ".travis.yml",
    "Jenkinsfile",
    "azure-pipelines.yml",
    ".azure-pipelines/**",
    "bitbucket-pipelines.yml",
    ".drone.yml",
    ".woodpecker.yml",
    ".woodpecker/**",
    ".gitea/workflows/**",
    ".forgejo/workflows/**",
    "appveyor.yml",
    ".appveyor.yml",
    "**/.gitattributes",
    ".gitmodules",
    ".lfsconfig",
];

/// The protected paths of a run.
#[derive(Clone, Debug)]
pub struct Protected {
    set: GlobSet,
}

impl Protected {
    /// The protected set: [`ALWAYS`], then `configured` (else [`DEFAULTS`] and the test
    /// command's script, found in the repository at `root`).
    pub fn new(
        configured: Option<&[String]>,
        test_command: Option<&str>,
        root: &Path,
    ) -> Result<Protected> {
        let mut patterns: Vec<String> = ALWAYS.iter().map(|s| (*s).to_owned()).collect();
        match configured {
            Some(list) => patterns.extend(
                list.iter()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty()),
            ),
            None => {
                patterns.extend(DEFAULTS.iter().map(|s| (*s).to_owned()));
                if let Some(cmd) = test_command {
                    patterns.extend(scripts_of(cmd, root));
                }
            }
        }
        let mut b = GlobSetBuilder::new();
        for p in &patterns {
            let glob = Glob::new(p.trim_start_matches("./").trim_end_matches('/'))
                .map_err(|e| Error::Config(format!("protected_paths: {p:?} is not a glob: {e}")))?;
            b.add(glob);
            // A directory named without `/**` protects what is inside it too.
            if !p.contains('*')
                && let Ok(g) = Glob::new(&format!(
                    "{}/**",
                    p.trim_start_matches("./").trim_end_matches('/')
                ))
            {
                b.add(g);
            }
        }
        let set = b
            .build()
            .map_err(|e| Error::Config(format!("protected_paths: {e}")))?;
        Ok(Protected { set })
    }

    /// Whether `path` (relative to the repository root, `/`-separated) is protected.
    pub fn matches(&self, path: &str) -> bool {
        self.set.is_match(path.trim_start_matches("./"))
    }

    /// The protected ones of `paths`.
    pub fn filter<'a>(&self, paths: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        paths
            .into_iter()
            .filter(|p| self.matches(p))
            .map(str::to_owned)
            .collect()
    }
}

/// The repository files `cmd` runs: each word that names a regular file under `root` (`./test.sh`,
/// `sh scripts/check.sh`), and the makefile of `make`.
fn scripts_of(cmd: &str, root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let words = cmd
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')'))
        .map(|w| w.trim_matches(|c| c == '"' || c == '\''))
        .filter(|w| !w.is_empty());
    for w in words {
        if w == "make" {
            for m in ["Makefile", "makefile", "GNUmakefile"] {
                if root.join(m).is_file() {
                    out.push(m.to_owned());
                }
            }
            continue;
        }
        let rel = w.trim_start_matches("./");
        if rel.is_empty()
            || rel.starts_with('/')
            || rel.starts_with('-')
            || rel.split('/').any(|c| c == "..")
        {
            continue;
        }
        let is_file = std::fs::symlink_metadata(root.join(rel)).is_ok_and(|m| m.is_file());
        if is_file && !out.iter().any(|o| o == rel) {
            out.push(rel.to_owned());
        }
    }
    out
}

/// Protected files of a worktree that differ from the target, put back to the target's
/// version while the test command runs, then to the branch's (see [`TargetVersions::put`]).
#[derive(Debug)]
pub struct TargetVersions {
    wt: Worktree,
    /// Each path, and whether the branch's HEAD has it.
    paths: Vec<(String, bool)>,
}

impl TargetVersions {
    /// Puts the target's version of every protected file that differs in `wt` in place (or
    /// removes it where the target has none). `leave_out` (the bead store) is never touched.
    pub fn put(
        wt: &Worktree,
        target: &str,
        protected: &Protected,
        leave_out: Option<&str>,
    ) -> Result<TargetVersions> {
        let changed = crate::git::changed_against(wt.place(), target)?;
        let mut paths = Vec::new();
        for p in protected.filter(changed.iter().map(String::as_str)) {
            if leave_out.is_some_and(|l| p == l || p.starts_with(&format!("{l}/"))) {
                continue;
            }
            let in_head = crate::git::has_path(wt.place(), "HEAD", &p);
            let in_target = crate::git::has_path(wt.place(), target, &p);
            if in_target {
                crate::git::checkout_paths(wt.place(), target, &[p.as_str()])?;
            } else {
                remove(wt, &p);
            }
            paths.push((p, in_head));
        }
        Ok(TargetVersions {
            wt: wt.clone(),
            paths,
        })
    }

    /// The paths that were swapped.
    pub fn paths(&self) -> Vec<&str> {
        self.paths.iter().map(|(p, _)| p.as_str()).collect()
    }

    /// Puts the branch's versions back.
    pub fn restore(self) -> Result<()> {
        for (p, in_head) in &self.paths {
            if *in_head {
                crate::git::checkout_paths(self.wt.place(), "HEAD", &[p.as_str()])?;
            } else {
                crate::git::unstage(self.wt.place(), &[p.as_str()])?;
                remove(&self.wt, p);
            }
        }
        Ok(())
    }
}

fn remove(wt: &Worktree, rel: &str) {
    let path = wt.path.join(rel);
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
        let _ = std::fs::remove_dir_all(&path);
    } else {
        let _ = std::fs::remove_file(&path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_cover_the_test_script_ci_and_loom() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("scripts")).unwrap();
        std::fs::write(root.path().join("scripts/check.sh"), "").unwrap();
        std::fs::write(root.path().join("Makefile"), "").unwrap();
        let p = Protected::new(
            None,
            Some("sh ./scripts/check.sh --fast && make test"),
            root.path(),
        )
        .unwrap();
        for yes in [
            ".loom/config.yaml",
            ".beads/beads/x.yaml",
            "scripts/check.sh",
            "Makefile",
            ".github/workflows/ci.yml",
            ".gitattributes",
        ] {
            assert!(p.matches(yes), "{yes}");
        }
        for no in ["src/main.rs", "scripts/other.sh", "README.md", "sh"] {
            assert!(!p.matches(no), "{no}");
        }
    }

    #[test]
    fn configured_paths_replace_the_defaults_but_not_loom_and_beads() {
        let root = tempfile::tempdir().unwrap();
        let p = Protected::new(
            Some(&["tests/**".into(), "docs".into()]),
            Some("./test.sh"),
            root.path(),
        )
        .unwrap();
        assert!(p.matches("tests/unit/a.rs"));
        assert!(
            p.matches("docs/index.md"),
            "a directory protects its contents"
        );
        assert!(p.matches(".loom/config.yaml"));
        assert!(!p.matches(".github/workflows/ci.yml"));
        assert!(Protected::new(Some(&["[".into()]), None, root.path()).is_err());
    }
}
