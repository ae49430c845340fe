//! Lossless round trips: change one field of one bead through the CLI and `git diff` shows
//! exactly that one line changed; every other line is byte-identical.

use serde_json::Value;

use crate::support::{TestRepo, shared_fixture};

/// The lines removed and added between HEAD~1 and HEAD in `path`.
fn changed_lines(repo: &TestRepo, path: &str) -> (Vec<String>, Vec<String>) {
    let diff = repo.git(&["diff", "--unified=0", "HEAD~1", "HEAD", "--", path]);
    let mut removed = Vec::new();
    let mut added = Vec::new();
    for line in diff.lines() {
        if line.starts_with("---") || line.starts_with("+++") {
            continue;
        }
        if let Some(l) = line.strip_prefix('-') {
            removed.push(l.to_owned());
        } else if let Some(l) = line.strip_prefix('+') {
            added.push(l.to_owned());
        }
    }
    (removed, added)
}

/// Loads a JSONL text as (line → JSON value).
fn parse_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn setup_with_file(content: &[u8]) -> TestRepo {
    let repo = TestRepo::new();
    repo.write(".beads/issues.jsonl", content);
    repo.git(&["add", "."]);
    repo.git(&["commit", "-qm", "bd export"]);
    repo
}

#[test]
fn real_bd_export_changes_exactly_one_line() {
    let Some(fixture) = shared_fixture("beads/issues.jsonl") else {
        return;
    };
    let original = std::fs::read(fixture).unwrap();
    let repo = setup_with_file(&original);
    let before = parse_lines(&original);
    // A bead in the middle of the file, with dependencies and unknown keys (counters, parent).
    let (index, target) = before
        .iter()
        .enumerate()
        .skip(100)
        .find(|(_, v)| v.get("dependencies").is_some() && v["priority"] != 0)
        .unwrap();
    let id = target["id"].as_str().unwrap();
    repo.ok(&["update", id, "-p", "0"]);

    let after_bytes = repo.read(".beads/issues.jsonl");
    let (removed, added) = changed_lines(&repo, ".beads/issues.jsonl");
    assert_eq!(removed.len(), 1, "exactly one line removed: {removed:?}");
    assert_eq!(added.len(), 1, "exactly one line added");

    // Every other line is byte-identical, in place.
    let old_lines: Vec<&[u8]> = original.split(|&b| b == b'\n').collect();
    let new_lines: Vec<&[u8]> = after_bytes.split(|&b| b == b'\n').collect();
    assert_eq!(old_lines.len(), new_lines.len());
    for (i, (o, n)) in old_lines.iter().zip(&new_lines).enumerate() {
        if i != index {
            assert_eq!(o, n, "line {} changed", i + 1);
        }
    }
    // The changed record keeps every key and value but priority and updated_at.
    let new: Value = serde_json::from_slice(new_lines[index]).unwrap();
    let (old_map, new_map) = (target.as_object().unwrap(), new.as_object().unwrap());
    assert_eq!(
        old_map.keys().collect::<std::collections::BTreeSet<_>>(),
        new_map.keys().collect::<std::collections::BTreeSet<_>>()
    );
    for (k, v) in old_map {
        match k.as_str() {
            "priority" => assert_eq!(new_map[k], 0),
            "updated_at" => assert_ne!(&new_map[k], v),
            _ => assert_eq!(&new_map[k], v, "{k} changed"),
        }
    }
}

/// A file in bd's native compact form (Go encoder: no spaces, `<>&` escaped, bd key order),
/// with unknown keys nested in records and in dependencies.
const COMPACT: &str = concat!(
    r#"{"id":"nb-a1","title":"First \u003cone\u003e","description":"multi\nline","status":"open","priority":2,"issue_type":"task","created_at":"2025-11-02T10:00:00.123456789-08:00","updated_at":"2025-11-02T10:00:00.123456789-08:00","labels":["x"],"dependencies":[{"issue_id":"nb-a1","depends_on_id":"nb-b2","type":"blocks","created_at":"2025-11-02T10:00:00Z","created_by":"ann","metadata":"{}","weight":{"w":2,"tags":["a",{"deep":null}]}}],"x_custom":{"nested":{"list":[1,2.5,"three",true,null]}},"x_flag":false}"#,
    "\n",
    r#"{"id":"nb-b2","title":"Second","status":"in_progress","priority":1,"issue_type":"bug","assignee":"bob","created_at":"2025-11-01T09:00:00Z","updated_at":"2025-11-03T09:00:00Z","metadata":{"loom":{"stage":"implementing"},"other":[1]},"comments":[{"id":7,"issue_id":"nb-b2","author":"ann","text":"hi \u0026 bye","created_at":"2025-11-03T09:00:00Z","reactions":{"+1":3}}]}"#,
    "\n",
    r#"{"id":"nb-c3","title":"Third","status":"closed","priority":3,"issue_type":"chore","created_at":"2025-10-01T00:00:00Z","updated_at":"2025-10-02T00:00:00Z","closed_at":"2025-10-02T00:00:00Z","close_reason":"done","future_field":"kept"}"#,
    "\n",
);

#[test]
fn compact_bd_file_with_nested_unknown_keys_changes_one_line() {
    let repo = setup_with_file(COMPACT.as_bytes());
    repo.ok(&["update", "nb-a1", "-p", "1"]);
    let (removed, added) = changed_lines(&repo, ".beads/issues.jsonl");
    assert_eq!(removed.len(), 1);
    assert_eq!(added.len(), 1);
    let old_line = COMPACT.lines().next().unwrap();
    assert_eq!(removed[0], old_line);
    // The rewritten line is the same bytes but for the two fields that changed: bd's key
    // order, Go's escaping, timestamps and unknown keys at every depth all survive.
    let new: Value = serde_json::from_str(&added[0]).unwrap();
    let updated_at = new["updated_at"].as_str().unwrap();
    let expected = old_line
        .replace(r#""priority":2"#, r#""priority":1"#)
        .replace(
            r#""updated_at":"2025-11-02T10:00:00.123456789-08:00""#,
            &format!(r#""updated_at":"{updated_at}""#),
        );
    assert_eq!(added[0], expected);

    // Adding a comment to another bead keeps its int comment ids and nested unknown keys.
    repo.ok(&["comment", "nb-b2", "second", "comment"]);
    let lines: Vec<Value> = parse_lines(&repo.read(".beads/issues.jsonl"));
    let b2 = &lines[1];
    assert_eq!(b2["comments"][0]["reactions"]["+1"], 3);
    assert_eq!(b2["comments"][1]["id"], 8);
    assert_eq!(b2["metadata"]["other"][0], 1);
    assert_eq!(
        lines[2],
        serde_json::from_str::<Value>(COMPACT.lines().nth(2).unwrap()).unwrap()
    );
}

#[test]
fn convert_is_lossless_both_ways() {
    let source = match shared_fixture("beads/issues.jsonl") {
        Some(p) => std::fs::read(p).unwrap(),
        None => COMPACT.as_bytes().to_vec(),
    };
    for input in [COMPACT.as_bytes().to_vec(), source] {
        let repo = setup_with_file(&input);
        let by_id = |bytes: &[u8]| -> std::collections::BTreeMap<String, Value> {
            parse_lines(bytes)
                .into_iter()
                .map(|v| (v["id"].as_str().unwrap().to_owned(), v))
                .collect()
        };
        let original = by_id(&input);
        repo.ok(&["convert", "--to", "yaml"]);
        assert!(!repo.path().join(".beads/issues.jsonl").exists());
        let listed = repo.json(&["list", "--all", "-n", "0"]);
        assert_eq!(listed.as_array().unwrap().len(), original.len());
        repo.ok(&["convert", "--to", "jsonl"]);
        assert!(!repo.path().join(".beads/beads").exists());
        let back = by_id(&repo.read(".beads/issues.jsonl"));
        assert_eq!(back, original, "JSONL → YAML → JSONL must keep every value");
        // Both conversions are commits, and git is clean afterwards.
        assert_eq!(repo.git(&["status", "--porcelain"]), "");
    }
    // The compact (bd-canonical) file comes back byte for byte, sorted by id.
    let repo = setup_with_file(COMPACT.as_bytes());
    repo.ok(&["convert", "--to", "yaml"]);
    repo.ok(&["convert", "--to", "jsonl"]);
    assert_eq!(repo.read_string(".beads/issues.jsonl"), COMPACT);
}
