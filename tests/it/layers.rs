//! The layering, enforced: a module imports only from its own layer or below. Lowest first:
//! foundations (`bead`, `llm`, `error`, `text`) → `store`, `git` (and `synth`) → `config` →
//! `ops`, `workspace`, `event` → `agent` → `orchestrator`, `demo` → `tui`, `cli`.
//! docs/ARCHITECTURE.md has the same table.

use std::path::{Path, PathBuf};

const LAYERS: &[(&str, u8)] = &[
    ("bead", 1),
    ("llm", 1),
    ("error", 1),
    ("text", 1),
    ("store", 2),
    ("git", 2),
    ("synth", 2),
    ("config", 3),
    ("ops", 4),
    ("workspace", 4),
    ("event", 4),
    ("agent", 5),
    ("orchestrator", 6),
    ("demo", 6),
    ("tui", 7),
    ("cli", 7),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules `source` names through `crate::`: `crate::a::…` and each item of
/// `crate::{a, b::c, …}` groups.
fn imported(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group (nested braces skipped).
            let (mut depth, mut item) = (0usize, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(head(&item));
                        item.clear();
                    }
                    _ if depth == 0 => item.push(c),
                    _ => {}
                }
            }
            if !item.trim().is_empty() {
                out.push(head(&item));
            }
        } else {
            out.push(head(rest));
        }
    }
    out
}

fn head(path: &str) -> String {
    path.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn no_module_imports_from_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" || top == "main" {
            continue;
        }
        let Some(own) = layer(&top) else {
            unknown.push(top);
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for target in imported(&text) {
            match layer(&target) {
                Some(l) if l > own => wrong.push(format!(
                    "{}: {top} (layer {own}) imports {target} (layer {l})",
                    rel.display()
                )),
                Some(_) => {}
                None if target == "Error" || target == "Result" => {}
                None => unknown.push(target),
            }
        }
    }
    unknown.sort();
    unknown.dedup();
    assert!(
        unknown.is_empty(),
        "modules missing from the layer table (here and in docs/ARCHITECTURE.md): {unknown:?}"
    );
    assert!(
        wrong.is_empty(),
        "imports against the layering:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_scanner_sees_grouped_and_nested_imports() {
    let text = "use crate::{agent::run, store::{Tx, fsio}};\nlet x = crate::tui::app::App::new();";
    assert_eq!(imported(text), vec!["agent", "store", "tui"]);
}
