//! One orchestrator per repository: an exclusive lock in the repository's common git dir whose
//! file names the holder (host, pid, start, command), so a second `loom run` (or TUI) can say
//! who holds it. The kernel releases it when the holder dies.

use std::io::{Read, Seek, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::git::Repo;

pub use crate::ops::owner::Owner;

/// The holder of the lock, as recorded in it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Holder {
    #[serde(flatten)]
    pub owner: Owner,
    pub command: String,
}

/// The held orchestrator lock (released on drop).
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// The lock file of a repository.
pub fn path(repo: &Repo) -> PathBuf {
    repo.common_dir.join("loom").join("orchestrator.lock")
}

/// Who last took the lock, as its file says (without touching the lock itself; the holder
/// may be gone: see [`Owner::is_alive`]).
pub fn last_holder(repo: &Repo) -> Option<Holder> {
    let text = std::fs::read_to_string(path(repo)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Takes the lock, or says who holds it (a configuration-level error: exit 2).
pub fn acquire(repo: &Repo, command: &str) -> Result<RunLock> {
    let path = path(repo);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let who = serde_json::from_str::<Holder>(&text)
                .map(|h| {
                    format!(
                        "pid {} on {} (started {}, `{}`)",
                        h.owner.pid, h.owner.host, h.owner.started, h.command
                    )
                })
                .unwrap_or_else(|_| "another Loom process".into());
            return Err(Error::Config(format!(
                "another orchestrator is running on this repository: {who}; wait for it to finish or stop it"
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
    }
    let holder = Holder {
        owner: Owner::current(),
        command: command.to_owned(),
    };
    let text = serde_json::to_string(&holder).unwrap_or_default();
    file.set_len(0).map_err(|e| Error::io(&path, e))?;
    file.rewind().map_err(|e| Error::io(&path, e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| Error::io(&path, e))?;
    Ok(RunLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_stranger_is_not() {
        let me = Owner::current();
        assert!(me.is_alive());
        assert!(me.pid_start > 0);
        let reused = Owner {
            pid_start: me.pid_start + 1,
            ..me.clone()
        };
        assert!(!reused.is_alive(), "same pid, different start: pid reuse");
        let gone = Owner {
            pid: 4_000_000,
            ..me
        };
        assert!(!gone.is_alive());
    }
}
