//! Conversation logs: `.beads/conversations/<bead-id>.jsonl`, one JSON object per message
//! (role, content, time, token counts, model), appended under the store lock with the same
//! atomic swap as beads, and committed like any bead change. Format: `docs/FORMATS.md`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

use super::fsio::{self, Replaced};
use super::layout::id_is_file_safe;
use super::{LOCK_TIMEOUT, MAX_ATTEMPTS, Problem, Severity, Store};

/// The folder of conversation logs inside `.beads/`.
pub const CONVERSATIONS_DIR: &str = "conversations";

/// One message of a conversation about a bead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversationEntry {
    /// `user` or `assistant` (later also `tool`).
    pub role: String,
    pub content: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// Who spoke: the person's actor name, or the persona.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The model that answered (assistant messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

impl Store {
    /// The log file of bead `id`.
    pub fn conversation_path(&self, id: &str) -> Result<PathBuf> {
        if !id_is_file_safe(id) {
            return Err(Error::Usage(format!(
                "{id:?} cannot name a conversation file"
            )));
        }
        Ok(self
            .layout
            .beads_dir
            .join(CONVERSATIONS_DIR)
            .join(format!("{id}.jsonl")))
    }

    /// The conversation about bead `id` so far (lines that cannot be read are reported and
    /// skipped; they stay in the file).
    pub fn read_conversation(&self, id: &str) -> Result<(Vec<ConversationEntry>, Vec<Problem>)> {
        let path = self.conversation_path(id)?;
        let Some((bytes, _)) = fsio::read_with_fingerprint(&path)? else {
            return Ok((Vec::new(), Vec::new()));
        };
        let shown = self.layout.relative(&path);
        let mut entries = Vec::new();
        let mut problems = Vec::new();
        for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<ConversationEntry>(line) {
                Ok(e) => entries.push(e),
                Err(e) => problems.push(Problem {
                    path: shown.clone(),
                    line: Some(n + 1),
                    id: Some(id.to_owned()),
                    severity: Severity::Error,
                    message: format!("not a conversation entry ({e}); skipped"),
                }),
            }
        }
        Ok((entries, problems))
    }

    /// Appends `entries` to bead `id`'s conversation; `after` (the git commit) runs under the
    /// lock with the written path, relative to the root.
    pub fn append_conversation(
        &self,
        id: &str,
        entries: &[ConversationEntry],
        after: impl FnOnce(&[PathBuf]) -> Result<()>,
    ) -> Result<PathBuf> {
        let path = self.conversation_path(id)?;
        let dir = self.layout.beads_dir.join(CONVERSATIONS_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut lines = Vec::new();
        for e in entries {
            serde_json::to_writer(&mut lines, e).map_err(|err| {
                Error::Other(format!("cannot serialize a conversation entry: {err}"))
            })?;
            lines.push(b'\n');
        }
        let _guard = fsio::lock(&self.lock_path, LOCK_TIMEOUT)?;
        for _ in 0..MAX_ATTEMPTS {
            let (mut bytes, fp) = match fsio::read_with_fingerprint(&path)? {
                Some((b, f)) => (b, Some(f)),
                None => (Vec::new(), None),
            };
            if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                bytes.push(b'\n');
            }
            bytes.extend_from_slice(&lines);
            if let Replaced::Done(_) = fsio::replace(&path, &self.layout.beads_dir, &bytes, fp)? {
                let rel = self.layout.relative(&path);
                after(std::slice::from_ref(&rel))?;
                return Ok(rel);
            }
        }
        Err(Error::Contended {
            path,
            attempts: MAX_ATTEMPTS,
        })
    }
}
