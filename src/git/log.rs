//! Reading the audit trail back: commits carrying `Loom-*` trailers, newest first, optionally
//! for one bead — bead changes (`Loom-Event`) and code commits (`Loom-Agent`) alike.

use serde::Serialize;

use crate::error::{Error, Result};

use super::Repo;

/// The Loom trailers of one commit message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trailers {
    pub beads: Vec<String>,
    pub actor: Option<String>,
    pub event: Option<String>,
    pub agent: Option<String>,
    pub model: Option<String>,
}

impl Trailers {
    pub fn is_loom(&self) -> bool {
        !self.beads.is_empty() || self.event.is_some() || self.agent.is_some()
    }
}

/// Extracts `Loom-*` trailers from the last paragraph of a commit message.
pub fn parse_trailers(message: &str) -> Trailers {
    let mut t = Trailers::default();
    let last = message.trim_end().rsplit("\n\n").next().unwrap_or("");
    for line in last.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_owned();
        match key.trim() {
            "Loom-Bead" => t.beads.push(value),
            "Loom-Actor" => t.actor = Some(value),
            "Loom-Event" => t.event = Some(value),
            "Loom-Agent" => t.agent = Some(value),
            "Loom-Model" => t.model = Some(value),
            _ => {}
        }
    }
    t
}

/// One commit of a bead's history.
#[derive(Clone, Debug, Serialize)]
pub struct LogEntry {
    pub commit: String,
    /// Commit time, RFC 3339 in the committer's offset.
    pub time: String,
    /// `Loom-Actor`, else the commit author's name.
    pub actor: String,
    /// `Loom-Event` (bead change) or `code` for agent commits.
    pub event: String,
    pub beads: Vec<String>,
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

fn git_err(command: &str, e: impl std::fmt::Display) -> Error {
    Error::Git {
        command: command.into(),
        message: e.to_string(),
    }
}

impl Repo {
    /// Loom commits reachable from HEAD, newest first; only those naming `bead` if given; at
    /// most `limit` (0 = all).
    pub fn log(
        &self,
        bead: Option<&str>,
        file: Option<&std::path::Path>,
        limit: usize,
    ) -> Result<Vec<LogEntry>> {
        let repo = self.gix()?;
        let mut head = repo.head().map_err(|e| git_err("rev-parse HEAD", e))?;
        let Some(tip) = head.id() else {
            return Ok(Vec::new());
        };
        let tip = tip.detach();
        let _ = &mut head;
        let walk = repo
            .rev_walk([tip])
            .sorting(gix::revision::walk::Sorting::ByCommitTime(
                gix::traverse::commit::simple::CommitTimeOrder::NewestFirst,
            ))
            .all()
            .map_err(|e| git_err("rev-list HEAD", e))?;
        let mut out = Vec::new();
        for info in walk {
            let info = info.map_err(|e| git_err("rev-list HEAD", e))?;
            let commit = info.object().map_err(|e| git_err("cat-file", e))?;
            let message = commit.message_raw_sloppy().to_string();
            let mut trailers = parse_trailers(&message);
            if !trailers.is_loom() {
                // Not Loom's: still part of the bead's history if it changed the bead's file
                // (an editor, a merge, `git pull`).
                let Some((id, path)) = bead.zip(file) else {
                    continue;
                };
                if !changes_file(&commit, path)? {
                    continue;
                }
                trailers.beads = vec![id.to_owned()];
                trailers.event = Some("external".into());
            }
            if let Some(id) = bead
                && !trailers.beads.iter().any(|b| b == id)
            {
                continue;
            }
            let time = commit.time().map_err(|e| git_err("cat-file", e))?;
            let author = commit
                .author()
                .map(|a| a.name.to_string())
                .unwrap_or_default();
            out.push(LogEntry {
                commit: info.id.to_string(),
                time: format_time(time),
                actor: trailers.actor.clone().unwrap_or(author),
                event: trailers.event.clone().unwrap_or_else(|| "code".into()),
                beads: trailers.beads,
                subject: message.lines().next().unwrap_or("").to_owned(),
                agent: trailers.agent,
                model: trailers.model,
            });
            if limit != 0 && out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

/// Whether `commit` changed the file at `path` (relative to the repository) against its first
/// parent (or added it, for a root commit).
fn changes_file(commit: &gix::Commit<'_>, path: &std::path::Path) -> Result<bool> {
    let at = |c: &gix::Commit<'_>| -> Result<Option<gix::ObjectId>> {
        let tree = c.tree().map_err(|e| git_err("cat-file", e))?;
        Ok(tree
            .lookup_entry_by_path(path)
            .map_err(|e| git_err("ls-tree", e))?
            .map(|e| e.object_id()))
    };
    let now = at(commit)?;
    let parent = match commit.parent_ids().next() {
        Some(p) => {
            let p = p
                .object()
                .map_err(|e| git_err("cat-file", e))?
                .try_into_commit()
                .map_err(|e| git_err("cat-file", e))?;
            at(&p)?
        }
        None => None,
    };
    Ok(now != parent)
}

fn format_time(t: gix::date::Time) -> String {
    let offset = jiff::tz::Offset::from_seconds(t.offset).unwrap_or(jiff::tz::Offset::UTC);
    match jiff::Timestamp::from_second(t.seconds) {
        Ok(ts) => ts
            .to_zoned(jiff::tz::TimeZone::fixed(offset))
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
        Err(_) => t.seconds.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_loom_trailers_from_last_paragraph() {
        let msg = "loom: x-1 open → closed\n\nBody text: not a trailer\n\nLoom-Bead: x-1\nLoom-Bead: x-2\nLoom-Actor: ann\nLoom-Event: closed\n";
        let t = parse_trailers(msg);
        assert_eq!(t.beads, ["x-1", "x-2"]);
        assert_eq!(t.actor.as_deref(), Some("ann"));
        assert_eq!(t.event.as_deref(), Some("closed"));
        assert!(!parse_trailers("plain commit\n\nSigned-off-by: a").is_loom());
    }
}
