//! Bad input never loses data: each problem is reported with file and line (or field), the rest
//! of the store keeps working, and the bad bytes are written back verbatim.

use crate::support::{TestRepo, ids};

fn good(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","title":"good {id}","status":"open","priority":2,"issue_type":"task","created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z"}}"#
    )
}

#[test]
fn jsonl_bad_lines_are_reported_kept_and_survive_writes() {
    let repo = TestRepo::new();
    let mut file: Vec<u8> = Vec::new();
    let mut add = |line: &[u8]| {
        file.extend_from_slice(line);
        file.push(b'\n');
    };
    add(good("t-1").as_bytes()); // 1
    add(br#"{"id":"t-trunc","title":"cut off","status":"op"#); // 2 truncated
    add(b"{\"id\":\"t-utf\",\"title\":\"bad \xff\xfe bytes\",\"status\":\"open\"}"); // 3 invalid UTF-8
    add(good("t-1").replace("good t-1", "duplicate").as_bytes()); // 4 duplicate id
    add(good("t-prio")
        .replace("\"priority\":2", "\"priority\":9")
        .as_bytes()); // 5 priority 9
    add(good("t-empty").replace("good t-empty", "").as_bytes()); // 6 empty title
    add(
        good("t-dangling")
            .replace(
                "}",
                r#","dependencies":[{"issue_id":"t-dangling","depends_on_id":"t-missing","type":"blocks"}]}"#,
            )
            .as_bytes(),
    ); // 7 dependency on a missing id
    add(good("t-2").as_bytes()); // 8
    repo.write(".beads/issues.jsonl", &file);
    repo.git(&["add", "."]);
    repo.git(&["commit", "-qm", "broken store"]);

    // The rest of the store keeps working; unreadable records are reported with path:line.
    let out = repo.loom(&["list", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let listed = ids(&serde_json::from_str(&out.stdout).unwrap());
    for id in ["t-1", "t-prio", "t-empty", "t-dangling", "t-2"] {
        assert!(
            listed.contains(&id.to_owned()),
            "{id} missing from {listed:?}"
        );
    }
    assert!(!listed.contains(&"t-trunc".to_owned()));
    let err = &out.stderr;
    assert!(
        err.contains(".beads/issues.jsonl:2: t-trunc: the record is cut off"),
        "{err}"
    );
    assert!(
        err.contains(".beads/issues.jsonl:3: t-utf: invalid UTF-8"),
        "{err}"
    );
    assert!(
        err.contains(".beads/issues.jsonl:4: t-1: duplicate id t-1 (first on line 1)"),
        "{err}"
    );

    // Rule breakers load, and doctor names the field; the missing target is named too.
    let out = repo.loom(&["doctor"]);
    assert_eq!(out.code, 1, "unreadable records fail the check");
    let doctor = out.stdout;
    assert!(doctor.contains("fix:"), "{doctor}");
    assert!(
        doctor.contains(".beads/issues.jsonl:5: t-prio: priority: is 9"),
        "{doctor}"
    );
    assert!(
        doctor.contains(".beads/issues.jsonl:6: t-empty: title: must not be empty"),
        "{doctor}"
    );
    assert!(
        doctor.contains(".beads/issues.jsonl:7: t-dangling: depends on t-missing"),
        "{doctor}"
    );
    // A dangling dependency does not block.
    assert!(ids(&repo.json(&["ready"])).contains(&"t-dangling".to_owned()));

    // Asking for an unreadable bead says where it is and what to do.
    let err = repo.fails(&["show", "t-trunc"], 1);
    assert!(
        err.contains(".beads/issues.jsonl:2") && err.contains("hint"),
        "{err}"
    );
    let err = repo.fails(&["update", "t-utf", "-p", "1"], 1);
    assert!(err.contains(".beads/issues.jsonl:3"), "{err}");
    // Writing a rule breaker is refused until it is fixed.
    let err = repo.fails(&["update", "t-prio", "--notes", "x"], 1);
    assert!(err.contains("priority"), "{err}");
    repo.ok(&["update", "t-prio", "-p", "1"]);

    // After writes, every bad line is still there byte for byte.
    repo.create("after", &[]);
    let now = repo.read(".beads/issues.jsonl");
    let old_lines: Vec<&[u8]> = file.split(|&b| b == b'\n').collect();
    let new_lines: Vec<&[u8]> = now.split(|&b| b == b'\n').collect();
    for i in [0, 1, 2, 3, 5, 6, 7] {
        assert_eq!(old_lines[i], new_lines[i], "line {} changed", i + 1);
    }
    assert_ne!(old_lines[4], new_lines[4], "t-prio was updated");
    assert_eq!(new_lines.len(), old_lines.len() + 1);
}

#[test]
fn yaml_bad_files_are_reported_and_never_touched() {
    let repo = TestRepo::with_loom("yaml");
    let ok = repo.create("fine", &[]);
    let wrong_type =
        "id: t-wrong\ntitle: wrong type\nstatus: open\npriority: high\nissue_type: task\n";
    let bad_utf8: &[u8] = b"id: t-bytes\ntitle: \xff\xfe\n";
    let bad_yaml = "id: t-syntax\ntitle: [unclosed\n";
    repo.write(".beads/beads/t-wrong.yaml", wrong_type);
    repo.write(".beads/beads/t-bytes.yaml", bad_utf8);
    repo.write(".beads/beads/t-syntax.yaml", bad_yaml);
    let dup = repo
        .read_string(&format!(".beads/beads/{ok}.yaml"))
        .replace("fine", "dup");
    repo.write(".beads/beads/t-dup.yaml", &dup);

    let out = repo.loom(&["list", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        ids(&serde_json::from_str(&out.stdout).unwrap()),
        [ok.clone()]
    );
    let err = &out.stderr;
    assert!(
        err.contains(".beads/beads/t-wrong.yaml:4: t-wrong: field `priority`"),
        "{err}"
    );
    assert!(
        err.contains(".beads/beads/t-bytes.yaml:2: t-bytes: invalid UTF-8"),
        "{err}"
    );
    assert!(err.contains(".beads/beads/t-syntax.yaml"), "{err}");
    assert!(err.contains(&format!("duplicate id {ok}")), "{err}");

    let err = repo.fails(&["update", "t-wrong", "-p", "1"], 1);
    assert!(err.contains("t-wrong.yaml:4"), "{err}");
    repo.ok(&["update", &ok, "-p", "0"]);
    repo.create("another", &[]);
    assert_eq!(repo.read_string(".beads/beads/t-wrong.yaml"), wrong_type);
    assert_eq!(repo.read(".beads/beads/t-bytes.yaml"), bad_utf8);
    assert_eq!(repo.read_string(".beads/beads/t-syntax.yaml"), bad_yaml);
    assert_eq!(repo.read_string(".beads/beads/t-dup.yaml"), dup);
}

#[test]
fn empty_title_and_bad_priority_are_refused_on_create() {
    let repo = TestRepo::with_loom("yaml");
    let err = repo.fails(&["create", ""], 1);
    assert!(err.contains("title: must not be empty"), "{err}");
    let err = repo.fails(&["create", "x", "-p", "9"], 2);
    assert!(err.contains("expected 0-4 or P0-P4"), "{err}");
    let long = "x".repeat(501);
    let err = repo.fails(&["create", &long], 1);
    assert!(err.contains("limit is 500"), "{err}");
    assert_eq!(repo.json(&["list"]).as_array().unwrap().len(), 0);
}
