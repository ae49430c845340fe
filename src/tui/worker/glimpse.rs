//! The first screen from a cache, so a large store opens at once: after the board is built
//! from a fresh read of a JSONL store (default filter), its first screenful — the top cards of
//! each column, every count, the pending decisions — is kept in the data dir with the store
//! file's fingerprint (size, modification time, inode). On the next start, if the file is
//! exactly as it was, that glimpse is the first frame while the store is read; the real board
//! replaces it a moment later. Anything amiss (no file, another fingerprint, a version or
//! parse mismatch) and there is simply no glimpse.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::Format;
use crate::tui::model::{Board, COLUMNS, Card, Decision};
use crate::workspace::Workspace;

/// The cache file's name in the repository's data dir.
const FILE: &str = "board-glimpse.json";

/// Cards kept per column: more than any screen shows.
pub const CARDS: usize = 80;

/// Bumped when the shape changes.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Glimpse {
    version: u32,
    fingerprint: String,
    columns: Vec<Vec<Card>>,
    counts: Vec<usize>,
    decisions: Vec<Decision>,
    total: usize,
    ready: usize,
    problems: usize,
}

/// The store file's fingerprint (`None`: not a JSONL store, or no file).
pub fn fingerprint(ws: &Workspace) -> Option<String> {
    let layout = ws.store.layout();
    if layout.format != Format::Jsonl {
        return None;
    }
    let m = std::fs::metadata(layout.jsonl_path()).ok()?;
    Some(format!(
        "{}:{}.{}:{}:{}",
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ino(),
        m.dev()
    ))
}

fn path(ws: &Workspace) -> Option<PathBuf> {
    ws.data_dir().map(|d| d.join(FILE))
}

/// Keeps `board`'s first screen for a store whose file had `fingerprint` when it was read.
pub fn save(ws: &Workspace, fingerprint: &str, board: &Board) {
    let Some(path) = path(ws) else { return };
    let g = Glimpse {
        version: VERSION,
        fingerprint: fingerprint.to_owned(),
        columns: board
            .columns
            .iter()
            .map(|c| c.iter().take(CARDS).cloned().collect())
            .collect(),
        counts: board.columns.iter().map(Vec::len).collect(),
        decisions: board.decisions.clone(),
        total: board.total,
        ready: board.ready,
        problems: board.problems,
    };
    let Ok(bytes) = serde_json::to_vec(&g) else {
        return;
    };
    let _ = write(&path, &bytes);
}

/// Written whole or not at all, readable by the owner only.
fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{FILE}.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// The glimpse of `ws`'s store, if its file is exactly as when the glimpse was kept.
pub fn load(ws: &Workspace) -> Option<Board> {
    let now = fingerprint(ws)?;
    let bytes = std::fs::read(path(ws)?).ok()?;
    let g: Glimpse = serde_json::from_slice(&bytes).ok()?;
    if g.version != VERSION || g.fingerprint != now || g.columns.len() != COLUMNS {
        return None;
    }
    let mut board = Board {
        decisions: g.decisions,
        total: g.total,
        ready: g.ready,
        problems: g.problems,
        glimpse: true,
        ..Board::default()
    };
    for (i, cards) in g.columns.into_iter().enumerate() {
        let count = g.counts.get(i).copied().unwrap_or(cards.len());
        board.left_out[i] = count.saturating_sub(cards.len());
        board.columns[i] = cards;
    }
    Some(board)
}
