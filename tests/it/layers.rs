//! The layering, enforced: a module imports only from its own layer or below. Lowest first:
//! foundations (`bead`, `llm`, `error`, `text`) → `store`, `git` (and `synth`) → `config` →
//! `ops`, `workspace`, `event`, `scale` → `agent` → `orchestrator`, `demo` → `tui`, `cli`.
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
    ("scale", 4),
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

/// Every `loom::…` path named outside the library (tests, benches, examples, the binary),
/// brace groups expanded, with all its prefixes: `loom::a::{b, c::d}` gives `loom::a`,
/// `loom::a::b`, `loom::a::c`, `loom::a::c::d`.
fn used_from_outside() -> std::collections::BTreeSet<String> {
    fn expand(prefix: &str, group: &str, out: &mut std::collections::BTreeSet<String>) {
        let (mut depth, mut item, mut items) = (0usize, String::new(), Vec::new());
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    items.push(std::mem::take(&mut item));
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        items.push(item);
        for it in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
            match it.find('{') {
                Some(open) => {
                    let head = it[..open].trim_end_matches("::").trim();
                    let inner = &it[open + 1..it.rfind('}').unwrap_or(it.len())];
                    expand(&join(prefix, head), inner, out);
                }
                None => {
                    let name = it.split(" as ").next().unwrap_or(it).trim();
                    add(&join(prefix, name), out);
                }
            }
        }
    }
    fn join(prefix: &str, rest: &str) -> String {
        if rest.is_empty() || rest == "self" {
            prefix.to_owned()
        } else {
            format!("{prefix}::{rest}")
        }
    }
    fn add(path: &str, out: &mut std::collections::BTreeSet<String>) {
        let parts: Vec<&str> = path.split("::").collect();
        for k in 1..=parts.len() {
            out.insert(parts[..k].join("::"));
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("src/main.rs")];
    for dir in ["tests", "benches", "examples"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut out = std::collections::BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("loom::") {
            rest = &rest[at..];
            let path: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let after = &rest[path.len()..];
            let path = path.trim_end_matches(':');
            if let Some(group) = after.strip_prefix('{') {
                let mut depth = 1usize;
                let end = group
                    .char_indices()
                    .find(|&(_, c)| {
                        match c {
                            '{' => depth += 1,
                            '}' => depth -= 1,
                            _ => {}
                        }
                        depth == 0
                    })
                    .map_or(group.len(), |(i, _)| i);
                expand(path, &group[..end], &mut out);
            } else {
                add(path, &mut out);
            }
            rest = &rest["loom::".len()..];
        }
    }
    out
}

/// `pub mod` declarations of the library, as `loom::…` paths.
fn public_modules() -> Vec<String> {
    fn walk(path: &str, file: &Path, dir: &Path, out: &mut Vec<String>) {
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines() {
            let Some(name) = line
                .trim()
                .strip_prefix("pub mod ")
                .and_then(|r| r.strip_suffix(';'))
            else {
                continue;
            };
            let child = format!("{path}::{name}");
            out.push(child.clone());
            let (flat, nested) = (
                dir.join(format!("{name}.rs")),
                dir.join(name).join("mod.rs"),
            );
            let next = if flat.exists() { flat } else { nested };
            if next.exists() {
                walk(&child, &next, &dir.join(name), out);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    walk("loom", &src.join("lib.rs"), &src, &mut out);
    out
}

#[test]
fn modules_nothing_outside_uses_are_crate_private() {
    let used = used_from_outside();
    assert!(
        used.contains("loom::cli"),
        "the binary's entry point is seen"
    );
    let needless: Vec<String> = public_modules()
        .into_iter()
        .filter(|m| !used.contains(m))
        .collect();
    assert!(
        needless.is_empty(),
        "no test, bench, example or the binary uses these: declare them `pub(crate) mod`:\n{}",
        needless.join("\n")
    );
}
