//! Personas: Markdown with YAML front matter in the Agent Skills style (`name`, `description`,
//! `metadata: {role, specialties}`, plus Loom's `model`, `tools`, `max_iterations`,
//! `temperature`, `runner`). Shipped ones are embedded in the binary; the user's config dir and
//! the repository's `.loom/personas/` add or override them by name (`<name>.md` or
//! `<name>/SKILL.md`). Also: which persona a bead gets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bead::{Bead, issue_type};

use super::tools;

/// Personas compiled into the binary.
pub const BUILTIN: &[(&str, &str)] = &[
    ("coder", include_str!("../../personas/coder.md")),
    ("reviewer", include_str!("../../personas/reviewer.md")),
    ("qa", include_str!("../../personas/qa.md")),
    ("planner", include_str!("../../personas/planner.md")),
    ("decider", include_str!("../../personas/decider.md")),
];

/// How an external-CLI runner receives the bead's prompt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptVia {
    #[default]
    Stdin,
    /// Written to a file whose path replaces `{prompt_file}` in the arguments (or is appended).
    File,
}

/// A persona that hands the implementation to another program.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerSpec {
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub prompt: PromptVia,
    /// Kill it after this long (default 30 minutes).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Meta {
    role: Option<String>,
    specialties: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct FrontMatter {
    name: String,
    description: String,
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    tools: Option<Vec<String>>,
    #[serde(default)]
    max_iterations: Option<u32>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    runner: Option<RunnerSpec>,
}

/// Where a persona came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "path")]
pub enum Source {
    Builtin,
    User(PathBuf),
    Repo(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Builtin => f.write_str("built-in"),
            Source::User(p) | Source::Repo(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A loaded persona.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Persona {
    pub name: String,
    pub description: String,
    pub role: String,
    pub specialties: Vec<String>,
    pub model: Option<String>,
    /// The tools it may use (an allow-list).
    pub tools: Vec<String>,
    pub max_iterations: u32,
    pub temperature: Option<f32>,
    pub runner: Option<RunnerSpec>,
    /// The Markdown body: the persona's instructions.
    pub body: String,
    pub source: Source,
}

/// Default loop length when a persona does not say.
pub const DEFAULT_MAX_ITERATIONS: u32 = 25;

/// Parses a persona file's text.
pub fn parse(text: &str, source: Source) -> Result<Persona, String> {
    let text = text.trim_start_matches('\u{feff}');
    let rest = text
        .strip_prefix("---")
        .ok_or("it does not start with YAML front matter (a line `---`)")?;
    let end = rest
        .find("\n---")
        .ok_or("the front matter is not closed by a line `---`")?;
    let yaml = &rest[..end];
    let body = rest[end + 4..]
        .trim_start_matches(['-', '\r'])
        .trim()
        .to_owned();
    let fm: FrontMatter = serde_norway::from_str(yaml).map_err(|e| format!("front matter: {e}"))?;
    if fm.name.trim().is_empty() {
        return Err("front matter: `name` is empty".into());
    }
    if body.is_empty() && fm.runner.is_none() {
        return Err("the body (the persona's instructions) is empty".into());
    }
    let role = fm.metadata.role.unwrap_or_else(|| fm.name.clone());
    let tools = match fm.tools {
        Some(t) => t,
        None if role == "reviewer" => [
            "read_file",
            "list_files",
            "search_text",
            "run_command",
            "git_diff",
            "comment",
            "approve",
            "request_changes",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
        None => tools::STANDARD.iter().map(|s| (*s).to_owned()).collect(),
    };
    if let Some(bad) = tools.iter().find(|t| tools::spec(t).is_none()) {
        return Err(format!("unknown tool `{bad}` in `tools`"));
    }
    if fm.max_iterations == Some(0) {
        return Err("`max_iterations` must be at least 1".into());
    }
    Ok(Persona {
        name: fm.name.trim().to_owned(),
        description: fm.description.trim().to_owned(),
        role,
        specialties: fm.metadata.specialties,
        model: fm.model,
        tools,
        max_iterations: fm.max_iterations.unwrap_or(DEFAULT_MAX_ITERATIONS),
        temperature: fm.temperature,
        runner: fm.runner,
        body,
        source,
    })
}

/// A persona file that could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PersonaProblem {
    pub path: PathBuf,
    pub reason: String,
}

/// All personas available in a repository.
#[derive(Clone, Debug, Default)]
pub struct PersonaSet {
    by_name: BTreeMap<String, Persona>,
    pub problems: Vec<PersonaProblem>,
}

fn persona_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter_map(|p| {
            if p.is_dir() {
                let skill = p.join("SKILL.md");
                skill.is_file().then_some(skill)
            } else {
                (p.extension().is_some_and(|e| e == "md")).then_some(p)
            }
        })
        .collect();
    files.sort();
    files
}

impl PersonaSet {
    /// The built-ins, then `<config dir>/personas`, then `<repo>/.loom/personas`.
    pub fn load(config_dir: Option<&Path>, repo_root: Option<&Path>) -> PersonaSet {
        PersonaSet::load_with(config_dir, repo_root, false)
    }

    /// Like [`PersonaSet::load`]; a repository persona may name an external `runner` only
    /// when `repo_trusted` (the user marked the repository trusted in their own config):
    /// otherwise a cloned repository could choose a program to run.
    pub fn load_with(
        config_dir: Option<&Path>,
        repo_root: Option<&Path>,
        repo_trusted: bool,
    ) -> PersonaSet {
        let mut set = PersonaSet::default();
        for (name, text) in BUILTIN {
            match parse(text, Source::Builtin) {
                Ok(p) => set.insert(p),
                Err(reason) => set.problems.push(PersonaProblem {
                    path: PathBuf::from(format!("(built-in) {name}.md")),
                    reason,
                }),
            }
        }
        let layers = [
            config_dir.map(|d| (d.join("personas"), true)),
            repo_root.map(|r| (r.join(".loom").join("personas"), false)),
        ];
        for (dir, user) in layers.into_iter().flatten() {
            for path in persona_files(&dir) {
                let source = if user {
                    Source::User(path.clone())
                } else {
                    Source::Repo(path.clone())
                };
                let parsed = crate::store::fsio::read_small(&path, 1 << 20)
                    .map_err(|e| e.to_string())
                    .and_then(|t| t.ok_or_else(|| "it disappeared".to_owned()))
                    .and_then(|t| parse(&t, source))
                    .and_then(|p| {
                        if p.runner.is_some() && !user && !repo_trusted {
                            Err("a repository persona may name a `runner` only in a repository you trust: add its path to `trusted_repos` in your own config.yaml (see `loom doctor`)".into())
                        } else {
                            Ok(p)
                        }
                    });
                match parsed {
                    Ok(p) => set.insert(p),
                    Err(reason) => set.problems.push(PersonaProblem { path, reason }),
                }
            }
        }
        set
    }

    fn insert(&mut self, p: Persona) {
        self.by_name.insert(p.name.clone(), p);
    }

    pub fn get(&self, name: &str) -> Option<&Persona> {
        self.by_name.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Persona> {
        self.by_name.values()
    }

    /// The persona for `bead` (DESIGN §5): an assignee naming a persona, else a `role:<name>`
    /// label, else the type (epic → planner, decision → decider, bug/feature/task/chore →
    /// coder), else `default`. With the reason, for messages.
    pub fn for_bead(&self, bead: &Bead, default: &str) -> Option<(&Persona, String)> {
        if let Some(a) = bead.assignee.as_deref()
            && let Some(p) = self.get(a.trim())
        {
            return Some((p, format!("assignee {a}")));
        }
        for label in &bead.labels {
            if let Some(name) = label.strip_prefix("role:") {
                let p = self
                    .get(name.trim())
                    .or_else(|| self.iter().find(|p| p.role == name.trim()));
                if let Some(p) = p {
                    return Some((p, format!("label {label}")));
                }
            }
        }
        let by_type = match bead.issue_type.as_str() {
            issue_type::EPIC => Some("planner"),
            issue_type::DECISION => Some("decider"),
            issue_type::BUG | issue_type::FEATURE | issue_type::TASK | issue_type::CHORE => {
                Some("coder")
            }
            _ => None,
        };
        if let Some(name) = by_type
            && let Some(p) = self.get(name)
        {
            return Some((p, format!("type {}", bead.issue_type)));
        }
        self.get(default)
            .map(|p| (p, format!("default persona {default}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bead(t: &str) -> Bead {
        Bead {
            id: "x-1".into(),
            title: "t".into(),
            issue_type: t.into(),
            status: "open".into(),
            ..Bead::default()
        }
    }

    #[test]
    fn builtins_load_and_are_distinct() {
        let set = PersonaSet::load(None, None);
        assert!(set.problems.is_empty(), "{:?}", set.problems);
        for name in ["coder", "reviewer", "qa", "planner", "decider"] {
            let p = set.get(name).unwrap();
            assert_eq!(p.source, Source::Builtin);
            assert!(p.body.len() > 300, "{name} has a real body");
        }
        let reviewer = set.get("reviewer").unwrap();
        assert!(reviewer.tools.contains(&"approve".to_owned()));
        assert!(!reviewer.tools.contains(&"write_file".to_owned()));
    }

    #[test]
    fn matching_follows_design() {
        let set = PersonaSet::load(None, None);
        let name = |b: &Bead| set.for_bead(b, "coder").map(|(p, _)| p.name.clone());
        assert_eq!(name(&bead("bug")).as_deref(), Some("coder"));
        assert_eq!(name(&bead("epic")).as_deref(), Some("planner"));
        assert_eq!(name(&bead("decision")).as_deref(), Some("decider"));
        let mut b = bead("task");
        b.labels = vec!["ui".into(), "role:qa".into()];
        assert_eq!(name(&b).as_deref(), Some("qa"));
        b.assignee = Some("reviewer".into());
        assert_eq!(name(&b).as_deref(), Some("reviewer"), "assignee first");
        b.assignee = Some("ann".into()); // a person, not a persona
        assert_eq!(name(&b).as_deref(), Some("qa"));
        assert_eq!(
            set.for_bead(&bead("spike"), "qa")
                .map(|(p, _)| p.name.clone())
                .as_deref(),
            Some("qa")
        );
    }

    #[test]
    fn layers_override_by_name_and_bad_files_are_reported() {
        let cfg = tempfile::tempdir().unwrap();
        let repo = tempfile::tempdir().unwrap();
        let write = |p: &Path, t: &str| {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, t).unwrap();
        };
        write(
            &cfg.path().join("personas/coder.md"),
            "---\nname: coder\ndescription: mine\n---\nUser's coder body.",
        );
        write(
            &repo.path().join(".loom/personas/coder/SKILL.md"),
            "---\nname: coder\ndescription: repo's\nmax_iterations: 7\n---\nRepo coder body.",
        );
        write(
            &repo.path().join(".loom/personas/ext.md"),
            "---\nname: ext\ndescription: another CLI\nrunner: {command: my-agent, args: [--yes], prompt: file}\n---\n",
        );
        write(
            &repo.path().join(".loom/personas/broken.md"),
            "no front matter",
        );
        write(
            &repo.path().join(".loom/personas/badtool.md"),
            "---\nname: bad\ndescription: d\ntools: [rm_rf]\n---\nbody",
        );
        // An untrusted repository may not name a program to run.
        let untrusted = PersonaSet::load(Some(cfg.path()), Some(repo.path()));
        assert!(untrusted.get("ext").is_none());
        assert!(
            untrusted
                .problems
                .iter()
                .any(|p| p.reason.contains("trusted_repos"))
        );
        let set = PersonaSet::load_with(Some(cfg.path()), Some(repo.path()), true);
        let coder = set.get("coder").unwrap();
        assert_eq!(coder.description, "repo's");
        assert_eq!(coder.max_iterations, 7);
        assert!(matches!(coder.source, Source::Repo(_)));
        assert_eq!(
            set.get("ext").unwrap().runner.as_ref().unwrap().prompt,
            PromptVia::File
        );
        let reasons: Vec<String> = set.problems.iter().map(|p| p.reason.clone()).collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons.iter().any(|r| r.contains("front matter")));
        assert!(reasons.iter().any(|r| r.contains("unknown tool `rm_rf`")));
        assert!(set.get("qa").is_some(), "the rest still loads");
    }
}
