//! What a bead's work changed, as `git diff` text: its branch against the fork point while
//! the branch lives, else the commit that landed it (the squash Loom merged). No external diff
//! tool, text conversion or colour: the text is parsed, not shown raw.

use crate::error::Result;

use super::Repo;
use super::worktree::branch_of;

/// A bead's diff and where it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkDiff {
    /// `loom/t-1 since 1a2b3c4` or `landed in 1a2b3c4`.
    pub source: String,
    pub text: String,
}

/// `s` safe inside an extended regular expression.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !c.is_ascii_alphanumeric() && c != '-' && c != '_' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

const DIFF: [&str; 6] = [
    "diff",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "-M",
    "--end-of-options",
];

impl Repo {
    /// The diff of bead `id`'s work, or `None` when it has neither a branch nor a landed commit.
    pub fn work_diff(&self, id: &str) -> Result<Option<WorkDiff>> {
        let branch = branch_of(id);
        if let Ok(tip) = self.tip(&branch) {
            let fork = self.fork_point("HEAD", &tip)?;
            let mut args = DIFF.to_vec();
            args.extend([fork.as_str(), tip.as_str()]);
            let text = self.git_ok_raw(&args)?;
            return Ok(Some(WorkDiff {
                source: format!("{branch} since {}", short(&fork)),
                text,
            }));
        }
        let grep_bead = format!("--grep=^Loom-Bead: {}$", regex_escape(id));
        let found = self.git_ok(
            &[
                "log",
                "-1",
                "--format=%H",
                "--extended-regexp",
                "--all-match",
                &grep_bead,
                "--grep=^Loom-Event: merged$",
                "HEAD",
                "--",
            ],
            &[],
            None,
        )?;
        if found.is_empty() {
            return Ok(None);
        }
        let mut args = DIFF.to_vec();
        let parent = format!("{found}^1");
        args.extend([parent.as_str(), found.as_str()]);
        let text = self.git_ok_raw(&args)?;
        Ok(Some(WorkDiff {
            source: format!("landed in {}", short(&found)),
            text,
        }))
    }

    /// Runs git and returns stdout untrimmed (a diff's leading spaces matter).
    fn git_ok_raw(&self, args: &[&str]) -> Result<String> {
        super::checked(args, self.git(args, &[], None)?)
    }
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_matched_literally() {
        assert_eq!(regex_escape("t-1.2"), "t-1\\.2");
        assert_eq!(regex_escape("a$(x)"), "a\\$\\(x\\)");
    }
}
