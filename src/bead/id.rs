//! Bead ids, bd's scheme: `<prefix>-<hash>` where the hash is base36 of a SHA-256 over the
//! bead's content and a nonce, 3–8 characters depending on how many beads share the prefix;
//! children are `<parent>.N`.

use sha2::{Digest, Sha256};

/// Shortest and longest hash suffix.
pub const MIN_HASH_LEN: usize = 3;
pub const MAX_HASH_LEN: usize = 8;
/// Accepted probability that two ids of the chosen length collide (bd's default).
const MAX_COLLISION_PROBABILITY: f64 = 0.25;
/// Nonces tried per length before the length grows.
const NONCES_PER_LENGTH: u32 = 10;

/// The inputs that make a bead's id.
#[derive(Clone, Copy, Debug)]
pub struct IdSeed<'a> {
    pub prefix: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub creator: &'a str,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_at_nanos: i128,
}

/// The hash suffix for `seed` with `nonce`, `length` base36 characters long.
pub fn hash_suffix(seed: &IdSeed<'_>, nonce: u32, length: usize) -> String {
    let input = format!(
        "{}|{}|{}|{}|{}",
        seed.title, seed.description, seed.creator, seed.created_at_nanos, nonce
    );
    let digest = Sha256::digest(input.as_bytes());
    let bytes = match length {
        3 => 2,
        4 => 3,
        5 | 6 => 4,
        7 | 8 => 5,
        _ => 3,
    };
    let mut n: u64 = 0;
    for b in digest.iter().take(bytes) {
        n = (n << 8) | u64::from(*b);
    }
    let mut encoded = base36(n);
    while encoded.len() < length {
        encoded.insert(0, '0');
    }
    encoded[encoded.len() - length..].to_owned()
}

fn base36(mut n: u64) -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n == 0 {
        return "0".to_owned();
    }
    let mut out = Vec::with_capacity(13);
    while n > 0 {
        out.push(ALPHABET[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    out.into_iter().map(char::from).collect()
}

/// The hash length for a prefix that already has `existing` top-level ids: the shortest whose
/// birthday-collision probability stays under 25 %.
pub fn adaptive_length(existing: usize) -> usize {
    let n = existing as f64;
    for len in MIN_HASH_LEN..=MAX_HASH_LEN {
        let space = 36f64.powi(len as i32);
        let p = 1.0 - (-(n * n) / (2.0 * space)).exp();
        if p <= MAX_COLLISION_PROBABILITY {
            return len;
        }
    }
    MAX_HASH_LEN
}

/// A fresh id for `seed`: adaptive length, trying nonces and then longer hashes until `taken`
/// says no. `None` only if every candidate up to the longest length is taken.
pub fn generate(
    seed: &IdSeed<'_>,
    existing: usize,
    taken: impl Fn(&str) -> bool,
) -> Option<String> {
    for len in adaptive_length(existing)..=MAX_HASH_LEN {
        for nonce in 0..NONCES_PER_LENGTH {
            let id = format!("{}-{}", seed.prefix, hash_suffix(seed, nonce, len));
            if !taken(&id) {
                return Some(id);
            }
        }
    }
    None
}

/// The parent of a child id `<parent>.N`, if `id` is one.
pub fn parent_of(id: &str) -> Option<&str> {
    let (parent, n) = id.rsplit_once('.')?;
    (!parent.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(parent)
}

/// The next child id of `parent`: one more than the highest `N` among existing `<parent>.N`.
pub fn next_child<'a>(parent: &str, ids: impl IntoIterator<Item = &'a str>) -> String {
    let max = ids
        .into_iter()
        .filter(|id| parent_of(id) == Some(parent))
        .filter_map(|id| id.rsplit_once('.').and_then(|(_, n)| n.parse::<u64>().ok()))
        .max()
        .unwrap_or(0);
    format!("{parent}.{}", max + 1)
}

/// Whether `id` is a top-level id under `prefix` (counts toward the adaptive length).
pub fn is_top_level_under(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hash| !hash.contains('.'))
}

/// The prefix of an id, the way bd splits it: at the last hyphen when what follows looks like a
/// hash or a number, else at the first hyphen (`bd-wisp-0385z` → `bd-wisp`, `hq-cv-ivmue` → `hq`).
pub fn prefix_of(id: &str) -> Option<&str> {
    let last = id.rfind('-')?;
    if last == 0 {
        return None;
    }
    let suffix = &id[last + 1..];
    if suffix.is_empty() {
        return Some(&id[..last]);
    }
    let base = suffix.split('.').next().unwrap_or(suffix);
    let numeric = !base.is_empty() && base.bytes().all(|b| b.is_ascii_digit());
    if numeric || looks_like_hash(base) {
        return Some(&id[..last]);
    }
    id.find('-').map(|first| &id[..first])
}

fn looks_like_hash(s: &str) -> bool {
    let len = s.len();
    if !(3..=8).contains(&len) || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    len == 3 || s.bytes().any(|b| b.is_ascii_digit())
}

/// Resolves a full or partial id (`bd-a1b2`, `bd-a1`, `a1b`) against `ids`: an exact match,
/// else the only id that starts with the query or whose hash part does (a parent wins over its
/// own children). `Err` carries the candidates: none (not found) or several (ambiguous).
pub fn resolve<'a>(
    ids: impl IntoIterator<Item = &'a str>,
    query: &str,
) -> Result<String, Vec<String>> {
    let mut candidates = Vec::new();
    for id in ids {
        if id == query {
            return Ok(id.to_owned());
        }
        let hash = prefix_of(id).map(|p| id[p.len()..].trim_start_matches('-'));
        if id.starts_with(query) || hash.is_some_and(|h| h.starts_with(query)) {
            candidates.push(id.to_owned());
        }
    }
    candidates.sort();
    candidates.dedup();
    if candidates.len() == 1 {
        return Ok(candidates.remove(0));
    }
    let top: Vec<&String> = candidates
        .iter()
        .filter(|c| parent_of(c).is_none())
        .collect();
    if let [only] = top.as_slice()
        && candidates
            .iter()
            .all(|c| c == *only || c.starts_with(&format!("{only}.")))
    {
        return Ok((*only).clone());
    }
    Err(candidates)
}

/// The most common prefix among `ids` (ties: the one seen first).
pub fn infer_prefix<'a>(ids: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for id in ids {
        if parent_of(id).is_some() {
            continue;
        }
        let Some(p) = prefix_of(id) else { continue };
        match counts.iter_mut().find(|(q, _)| *q == p) {
            Some((_, n)) => *n += 1,
            None => counts.push((p, 1)),
        }
    }
    let best = counts.iter().map(|(_, n)| *n).max()?;
    counts
        .into_iter()
        .find(|(_, n)| *n == best)
        .map(|(p, _)| p.to_owned())
}

/// A prefix made from a directory name, normalised like bd: leading dots and trailing hyphens
/// dropped, dots become underscores, and a letter first.
pub fn prefix_from_dir_name(name: &str) -> String {
    let trimmed = name.trim_start_matches('.').trim_end_matches('-');
    let mut p: String = trimmed
        .chars()
        .map(|c| {
            if c == '.' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if !p.starts_with(|c: char| c.is_alphabetic() || c == '_') {
        p.insert_str(0, "bd_");
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_bd_test_vector() {
        let t: jiff::Timestamp = "2024-01-02T03:04:05.006Z".parse().unwrap();
        let seed = IdSeed {
            prefix: "bd",
            title: "Fix login",
            description: "Details",
            creator: "jira-import",
            created_at_nanos: t.as_nanosecond(),
        };
        let got: Vec<String> = (3..=8).map(|len| hash_suffix(&seed, 0, len)).collect();
        assert_eq!(
            got,
            ["vju", "8d8e", "bi3tk", "8bi3tk", "r5sr6bm", "8r5sr6bm"]
        );
    }

    #[test]
    fn adaptive_length_thresholds() {
        assert_eq!(adaptive_length(0), 3);
        assert_eq!(adaptive_length(163), 3);
        assert_eq!(adaptive_length(164), 4);
        assert_eq!(adaptive_length(983), 4);
        assert_eq!(adaptive_length(984), 5);
        assert_eq!(adaptive_length(5898), 5);
        assert_eq!(adaptive_length(35389), 6);
        assert_eq!(adaptive_length(212339), 7);
        assert_eq!(adaptive_length(10_000_000), 8);
    }

    #[test]
    fn collisions_retry_with_nonce_then_length() {
        let seed = IdSeed {
            prefix: "x",
            title: "t",
            description: "",
            creator: "me",
            created_at_nanos: 1,
        };
        let first = generate(&seed, 0, |_| false).unwrap();
        let second = generate(&seed, 0, |id| id == first).unwrap();
        assert_ne!(first, second);
        assert_eq!(second.len(), first.len());
        // Every 3-char candidate taken: the id grows.
        let longer = generate(&seed, 0, |id| id.len() <= "x-".len() + 3).unwrap();
        assert_eq!(longer.len(), "x-".len() + 4);
        assert_eq!(generate(&seed, 0, |_| true), None);
    }

    #[test]
    fn prefixes_like_bd() {
        assert_eq!(prefix_of("bd-a1b2"), Some("bd"));
        assert_eq!(prefix_of("bd-wisp-0385z"), Some("bd-wisp"));
        assert_eq!(prefix_of("hq-cv-ivmue"), Some("hq"));
        assert_eq!(prefix_of("my-proj-12"), Some("my-proj"));
        assert_eq!(prefix_of("bd-abc.1.2"), Some("bd"));
        assert_eq!(prefix_of("nohyphen"), None);
        assert_eq!(
            infer_prefix(["bd-1", "x-abc", "bd-2", "bd-2.1"]),
            Some("bd".into())
        );
        assert_eq!(prefix_from_dir_name(".my.repo-"), "my_repo");
        assert_eq!(prefix_from_dir_name("1shop"), "bd_1shop");
    }

    #[test]
    fn resolves_partial_ids() {
        let ids = ["bd-a1b2", "bd-a1b2.1", "bd-c3d4", "bd-c3e5"];
        assert_eq!(resolve(ids, "bd-a1b2"), Ok("bd-a1b2".into()));
        assert_eq!(resolve(ids, "a1b"), Ok("bd-a1b2".into()));
        assert_eq!(resolve(ids, "bd-a1"), Ok("bd-a1b2".into()));
        assert_eq!(resolve(ids, "a1b2.1"), Ok("bd-a1b2.1".into()));
        assert_eq!(
            resolve(ids, "c3"),
            Err(vec!["bd-c3d4".into(), "bd-c3e5".into()])
        );
        assert_eq!(resolve(ids, "zz"), Err(vec![]));
    }

    #[test]
    fn child_ids() {
        assert_eq!(parent_of("bd-a1.3"), Some("bd-a1"));
        assert_eq!(parent_of("bd-a1.3.2"), Some("bd-a1.3"));
        assert_eq!(parent_of("bd-a1"), None);
        assert_eq!(parent_of("bd-a1.x"), None);
        assert_eq!(next_child("bd-a1", ["bd-a1", "bd-b"]), "bd-a1.1");
        assert_eq!(
            next_child("bd-a1", ["bd-a1.1", "bd-a1.7", "bd-a1.7.1", "bd-a12.9"]),
            "bd-a1.8"
        );
        assert!(is_top_level_under("bd-abc", "bd"));
        assert!(!is_top_level_under("bd-abc.1", "bd"));
        assert!(!is_top_level_under("bdx-abc", "bd"));
    }
}
