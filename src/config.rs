//! Layered configuration: built-in defaults < user `config.yaml` (config dir) < repository
//! `.loom/config.yaml` < environment < command-line flags.
//!
//! Keys Loom does not know yet are kept (later features read them), so an older Loom never
//! rejects a newer config file.
//!
//! Trust: a repository's `.loom/config.yaml` comes with the code, so a cloned repository
//! could name the endpoint the key is sent to, the variables passed to agents, or turn the
//! sandbox off. Security-relevant sections — `provider:`, `sandbox:` — are therefore taken
//! from the repository file only when the user's own config lists the repository under
//! `trusted_repos` (the repository file cannot trust itself); otherwise they are ignored and
//! listed in [`Config::ignored`] (shown by `loom doctor` and warned about by the commands
//! that would use them).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// One config file's contents; every key optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConfigFile {
    /// Commit every bead change (default true).
    pub auto_commit: Option<bool>,
    /// Name recorded as `Loom-Actor` for changes a person makes.
    pub actor: Option<String>,
    /// The LLM endpoint (`provider.url`, `provider.model`, …).
    pub provider: Option<crate::llm::ProviderFile>,
    /// Agent budgets and limits.
    pub agent: Option<crate::agent::run::AgentFile>,
    /// Command sandbox settings.
    pub sandbox: Option<crate::agent::sandbox::SandboxFile>,
    /// Worktree setup (files to copy, a setup command).
    pub worktree: Option<crate::git::worktree::WorktreeFile>,
    /// The repository's verification command (run in each bead's worktree).
    pub test_command: Option<String>,
    /// How long the test command may take.
    pub test_timeout_secs: Option<u64>,
    /// The branch agents' work is merged into (default: the branch checked out).
    pub target_branch: Option<String>,
    /// How many agents run at once (default 4).
    pub max_agents: Option<usize>,
    /// Whether a reviewer checks each bead before merging (default true).
    pub review: Option<bool>,
    /// `auto`, `approve` or `none`.
    pub merge: Option<crate::orchestrator::settings::MergeMode>,
    /// Per-bead and per-run limits.
    pub budget: Option<crate::orchestrator::settings::BudgetFile>,
    /// Dispatch beads agents file in the same run (also `budget.dispatch_followups`).
    pub dispatch_followups: Option<bool>,
    /// Globs of paths agents may not change without a person's approval, and that are read
    /// from the target branch when verifying (default: the test script, CI configuration).
    pub protected_paths: Option<Vec<String>>,
    /// The terminal UI: `theme`, `keys`.
    pub tui: Option<TuiFile>,
    /// Repositories (their root, or a directory above it; `~` allowed) whose
    /// `.loom/config.yaml` may set `provider:` and `sandbox:`. Read from the user's config
    /// only.
    pub trusted_repos: Option<Vec<PathBuf>>,
    /// Everything else, kept for later features.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The `tui:` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct TuiFile {
    /// A theme name: built-in (`dark`, `light`, `high-contrast`, `terminal`) or a file in the
    /// config dir's `themes/`.
    pub theme: Option<String>,
    /// Action name → key(s), e.g. `new: ctrl+n` or `quit: [q, ctrl+q]`.
    pub keys: std::collections::BTreeMap<String, KeySpec>,
    /// Take the mouse (wheel, clicks); default on. Off keeps the terminal's own selection.
    pub mouse: Option<bool>,
}

/// One key or several for an action.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum KeySpec {
    One(String),
    Many(Vec<String>),
}

impl KeySpec {
    pub fn keys(&self) -> Vec<String> {
        match self {
            KeySpec::One(k) => vec![k.clone()],
            KeySpec::Many(ks) => ks.clone(),
        }
    }
}

impl TuiFile {
    fn merge(&mut self, other: TuiFile) {
        if other.theme.is_some() {
            self.theme = other.theme;
        }
        if other.mouse.is_some() {
            self.mouse = other.mouse;
        }
        self.keys.extend(other.keys);
    }
}

/// The effective configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub auto_commit: bool,
    pub actor: Option<String>,
    /// Provider settings from the files (the environment is applied by
    /// [`crate::llm::ProviderConfig::resolve`]).
    pub provider: crate::llm::ProviderFile,
    pub agent: crate::agent::run::AgentFile,
    pub sandbox: crate::agent::sandbox::SandboxFile,
    pub worktree: crate::git::worktree::WorktreeFile,
    pub test_command: Option<String>,
    pub test_timeout_secs: Option<u64>,
    pub target_branch: Option<String>,
    pub max_agents: Option<usize>,
    pub review: Option<bool>,
    pub merge: Option<crate::orchestrator::settings::MergeMode>,
    pub budget: crate::orchestrator::settings::BudgetFile,
    pub dispatch_followups: Option<bool>,
    pub protected_paths: Option<Vec<String>>,
    pub tui: TuiFile,
    /// Files that contributed, lowest precedence first.
    pub sources: Vec<PathBuf>,
    /// This repository's runtime data directory, when a caller sets it (`loom demo` keeps
    /// everything inside its scratch directory); `None`: under the user's data dir.
    pub repo_data_dir: Option<PathBuf>,
    /// The user's config trusts this repository's `.loom/config.yaml` with security settings.
    pub repo_trusted: bool,
    /// Security settings the repository's file set and Loom ignored (it is not trusted), as
    /// `section.key` names.
    pub ignored: Vec<String>,
    /// `trusted_repos` from the user's config.
    pub trusted_repos: Vec<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            auto_commit: true,
            actor: None,
            provider: crate::llm::ProviderFile::default(),
            agent: crate::agent::run::AgentFile::default(),
            sandbox: crate::agent::sandbox::SandboxFile::default(),
            worktree: crate::git::worktree::WorktreeFile::default(),
            test_command: None,
            test_timeout_secs: None,
            target_branch: None,
            max_agents: None,
            review: None,
            merge: None,
            budget: crate::orchestrator::settings::BudgetFile::default(),
            dispatch_followups: None,
            protected_paths: None,
            tui: TuiFile::default(),
            sources: Vec::new(),
            repo_data_dir: None,
            repo_trusted: false,
            ignored: Vec::new(),
            trusted_repos: Vec::new(),
        }
    }
}

/// Where Loom keeps runtime data (logs, recordings; later worktrees and transcripts):
/// `$LOOM_DATA_DIR`, else the platform's data dir (e.g. `~/.local/share/loom`).
pub fn data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LOOM_DATA_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "loom").map(|d| d.data_dir().to_path_buf())
}

/// The data directory of one repository: `<data dir>/repos/<name>-<hash of its path>`.
pub fn repo_data_dir(repo_root: &Path) -> Option<PathBuf> {
    Some(repo_data_dir_in(&data_dir()?, repo_root))
}

/// [`repo_data_dir`] under the data dir `base`.
pub fn repo_data_dir_in(base: &Path, repo_root: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    repo_root.hash(&mut h);
    let name = repo_root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repo".into());
    base.join("repos")
        .join(format!("{name}-{:08x}", h.finish() as u32))
}

/// The user's config directory: `$LOOM_CONFIG_DIR`, else the platform's (e.g. `~/.config/loom`).
pub fn user_config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LOOM_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "loom").map(|d| d.config_dir().to_path_buf())
}

/// A config file, parsed, with its raw YAML value (to say which keys it sets).
fn read_file(path: &Path) -> Result<Option<(ConfigFile, serde_json::Value)>> {
    // A plain file of at most 1 MB: a repository's config could be a FIFO or a device.
    let Some(text) = crate::store::fsio::read_small(path, 1 << 20)? else {
        return Ok(None);
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if text.trim().is_empty() {
        return Ok(Some((ConfigFile::default(), serde_json::Value::Null)));
    }
    let bad = |e: &dyn std::fmt::Display| Error::Config(format!("{}: {e}", path.display()));
    let raw: serde_json::Value = serde_norway::from_str(text).map_err(|e| bad(&e))?;
    let file = serde_norway::from_str(text).map_err(|e| bad(&e))?;
    Ok(Some((file, raw)))
}

/// The security-relevant keys a config file sets (`provider.url`, `sandbox`, …).
fn security_keys(raw: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for section in ["provider", "sandbox"] {
        match raw.get(section) {
            Some(serde_json::Value::Object(m)) if !m.is_empty() => {
                out.extend(m.keys().map(|k| format!("{section}.{k}")));
            }
            Some(serde_json::Value::Null) | None => {}
            Some(_) => out.push(section.to_owned()),
        }
    }
    out
}

/// `~/…` made absolute with `$HOME`.
fn expand_home(p: &Path) -> PathBuf {
    match (p.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => p.to_path_buf(),
    }
}

/// Whether `root` is, or is inside, one of the `trusted` directories (compared canonically).
fn trusts(trusted: &[PathBuf], root: &Path) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let root = canon(root);
    trusted
        .iter()
        .filter(|t| t.is_absolute())
        .any(|t| root.starts_with(canon(t)))
}

/// Parses a boolean from the environment (`1/0`, `true/false`, `yes/no`, `on/off`).
pub fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(Error::Config(format!(
            "{name}={other:?} is not a boolean: use true or false"
        ))),
    }
}

impl Config {
    /// Loads the user and repository layers (repository root `repo_root`), then the
    /// environment.
    pub fn load(repo_root: Option<&Path>) -> Result<Config> {
        let mut cfg = Config::default();
        if let Some(path) = user_config_dir().map(|d| d.join("config.yaml"))
            && let Some((mut file, _)) = read_file(&path)?
        {
            cfg.trusted_repos = file
                .trusted_repos
                .take()
                .unwrap_or_default()
                .iter()
                .map(|p| expand_home(p))
                .collect();
            cfg.apply(file);
            cfg.sources.push(path);
        }
        if let Some(root) = repo_root {
            cfg.repo_trusted = trusts(&cfg.trusted_repos, root);
            let path = root.join(".loom").join("config.yaml");
            if let Some((mut file, raw)) = read_file(&path)? {
                // A repository cannot trust itself (or others).
                file.trusted_repos = None;
                if !cfg.repo_trusted {
                    cfg.ignored = security_keys(&raw);
                    file.provider = None;
                    file.sandbox = None;
                }
                cfg.apply(file);
                cfg.sources.push(path);
            }
        }
        if let Ok(v) = std::env::var("LOOM_AUTO_COMMIT") {
            cfg.auto_commit = parse_bool("LOOM_AUTO_COMMIT", &v)?;
        }
        if let Some(a) = std::env::var("LOOM_ACTOR")
            .ok()
            .filter(|a| !a.trim().is_empty())
        {
            cfg.actor = Some(a);
        }
        Ok(cfg)
    }

    fn apply(&mut self, file: ConfigFile) {
        if let Some(v) = file.auto_commit {
            self.auto_commit = v;
        }
        if let Some(v) = file.actor.filter(|a| !a.trim().is_empty()) {
            self.actor = Some(v);
        }
        if let Some(p) = file.provider {
            self.provider.merge(p);
        }
        if let Some(a) = file.agent {
            self.agent.merge(a);
        }
        if let Some(s) = file.sandbox {
            self.sandbox.merge(s);
        }
        if let Some(t) = file.tui {
            self.tui.merge(t);
        }
        if let Some(w) = file.worktree {
            self.worktree.merge(w);
        }
        if let Some(b) = file.budget {
            self.budget.merge(b);
        }
        macro_rules! take {
            ($($f:ident),*) => { $( if file.$f.is_some() { self.$f = file.$f; } )* };
        }
        take!(
            test_command,
            test_timeout_secs,
            target_branch,
            max_agents,
            review,
            merge,
            dispatch_followups,
            protected_paths
        );
    }
}
