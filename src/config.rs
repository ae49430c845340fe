//! Layered configuration: built-in defaults < user `config.yaml` (config dir) < repository
//! `.loom/config.yaml` < environment < command-line flags.
//!
//! Keys Loom does not know yet are kept (later features read them), so an older Loom never
//! rejects a newer config file.
//!
//! Trust: a repository's `.loom/config.yaml` comes with the code, so a cloned repository
//! could name the endpoint the key is sent to, the variables passed to agents, or turn the
//! sandbox off. Security-relevant settings — `provider:`, `sandbox:`, `notify_command` — are
//! therefore taken from the repository file only when the user's own config lists the
//! repository under `trusted_repos` (the repository file cannot trust itself); otherwise they are ignored and
//! listed in [`Config::ignored`] (shown by `loom doctor` and warned about by the commands
//! that would use them).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// One layer of configuration: a file's top-level keys (or values set in code), as read.
#[derive(Clone, Debug)]
struct Layer {
    /// Where it came from (a file; `<set>` for values set in code).
    source: PathBuf,
    keys: Map<String, Value>,
}

/// The effective configuration: the layers, lowest precedence first. The loader reads only
/// its own keys (`auto_commit`, `actor`, `trusted_repos`); each subsystem reads its section
/// with [`Config::section`] (merged over the layers with the subsystem's own rule) or a
/// top-level key with [`Config::value`], so the loader depends on no feature.
#[derive(Clone, Debug)]
pub struct Config {
    pub auto_commit: bool,
    pub actor: Option<String>,
    layers: Vec<Layer>,
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
            layers: Vec::new(),
            sources: Vec::new(),
            repo_data_dir: None,
            repo_trusted: false,
            ignored: Vec::new(),
            trusted_repos: Vec::new(),
        }
    }
}

/// Sections (and keys) that only the user's own config may set (a cloned repository could
/// otherwise name the endpoint the key goes to, turn the sandbox off, or run a command of its
/// choosing outside it).
const SECURITY_SECTIONS: [&str; 3] = ["provider", "sandbox", "notify_command"];

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

/// A config file's top-level keys (`None`: no such file).
fn read_file(path: &Path) -> Result<Option<Map<String, Value>>> {
    // A plain file of at most 1 MB: a repository's config could be a FIFO or a device.
    let Some(text) = crate::store::fsio::read_small(path, 1 << 20)? else {
        return Ok(None);
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if text.trim().is_empty() {
        return Ok(Some(Map::new()));
    }
    let bad = |e: &dyn std::fmt::Display| Error::Config(format!("{}: {e}", path.display()));
    match serde_norway::from_str(text).map_err(|e| bad(&e))? {
        Value::Object(keys) => Ok(Some(keys)),
        Value::Null => Ok(Some(Map::new())),
        _ => Err(bad(&"expected keys and values (a YAML mapping) at the top")),
    }
}

/// The security-relevant keys a config file sets (`provider.url`, `sandbox`, …).
fn security_keys(raw: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for section in SECURITY_SECTIONS {
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
            && let Some(mut keys) = read_file(&path)?
        {
            let trusted = keys.remove("trusted_repos");
            cfg.trusted_repos = typed::<Option<Vec<PathBuf>>>(&path, "trusted_repos", trusted)?
                .unwrap_or_default()
                .iter()
                .map(|p| expand_home(p))
                .collect();
            cfg.push(path, keys)?;
        }
        if let Some(root) = repo_root {
            cfg.repo_trusted = trusts(&cfg.trusted_repos, root);
            let path = root.join(".loom").join("config.yaml");
            if let Some(mut keys) = read_file(&path)? {
                // A repository cannot trust itself (or others).
                keys.remove("trusted_repos");
                if !cfg.repo_trusted {
                    cfg.ignored = security_keys(&keys);
                    for section in SECURITY_SECTIONS {
                        keys.remove(section);
                    }
                }
                cfg.push(path, keys)?;
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

    /// Adds a file's keys as the layer of highest precedence so far.
    fn push(&mut self, source: PathBuf, keys: Map<String, Value>) -> Result<()> {
        if let Some(v) =
            typed::<Option<bool>>(&source, "auto_commit", keys.get("auto_commit").cloned())?
        {
            self.auto_commit = v;
        }
        if let Some(v) = typed::<Option<String>>(&source, "actor", keys.get("actor").cloned())?
            .filter(|a| !a.trim().is_empty())
        {
            self.actor = Some(v);
        }
        self.sources.push(source.clone());
        self.layers.push(Layer { source, keys });
        Ok(())
    }

    /// Sets `key` above every file (flags, tests, programs that configure Loom in code).
    pub fn set(&mut self, key: &str, value: Value) {
        match self.layers.last_mut() {
            Some(l) if l.source == Path::new(SET) => {
                l.keys.insert(key.to_owned(), value);
            }
            _ => {
                let mut keys = Map::new();
                keys.insert(key.to_owned(), value);
                self.layers.push(Layer {
                    source: PathBuf::from(SET),
                    keys,
                });
            }
        }
    }

    /// Section `key` (e.g. `agent:`), read from every layer that has it, lowest precedence
    /// first, and folded with `merge` (each subsystem says how its keys combine).
    pub fn section<T: DeserializeOwned + Default>(
        &self,
        key: &str,
        merge: impl Fn(&mut T, T),
    ) -> Result<T> {
        let mut out = T::default();
        for layer in &self.layers {
            if let Some(part) =
                typed::<Option<T>>(&layer.source, key, layer.keys.get(key).cloned())?
            {
                merge(&mut out, part);
            }
        }
        Ok(out)
    }

    /// Top-level `key` from the layer of highest precedence that sets it.
    pub fn value<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        for layer in self.layers.iter().rev() {
            if let Some(v) = typed::<Option<T>>(&layer.source, key, layer.keys.get(key).cloned())? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}

/// The name of the layer [`Config::set`] writes.
const SET: &str = "<set in code>";

/// `value` (of `key` in the file `source`) as a `T`; `null` and absent are `None` for an
/// `Option`.
fn typed<T: DeserializeOwned>(source: &Path, key: &str, value: Option<Value>) -> Result<T> {
    serde_json::from_value(value.unwrap_or(Value::Null))
        .map_err(|e| Error::Config(format!("{}: {key}: {e}", source.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Part {
        a: Option<u32>,
        list: Vec<String>,
    }

    impl Part {
        fn merge(&mut self, later: Part) {
            if later.a.is_some() {
                self.a = later.a;
            }
            self.list.extend(later.list);
        }
    }

    fn layer(cfg: &mut Config, source: &str, yaml: &str) {
        let keys = match serde_norway::from_str(yaml).unwrap() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        cfg.push(PathBuf::from(source), keys).unwrap();
    }

    #[test]
    fn sections_fold_over_layers_and_values_take_the_last() {
        let mut cfg = Config::default();
        layer(
            &mut cfg,
            "user.yaml",
            "part: {a: 1, list: [x]}\nmax: 3\nactor: ann\n",
        );
        layer(
            &mut cfg,
            "repo.yaml",
            "part: {list: [y]}\nauto_commit: false\n",
        );
        let part: Part = cfg.section("part", Part::merge).unwrap();
        assert_eq!(
            part,
            Part {
                a: Some(1),
                list: vec!["x".into(), "y".into()]
            }
        );
        assert_eq!(cfg.value::<u32>("max").unwrap(), Some(3));
        assert_eq!(cfg.value::<u32>("absent").unwrap(), None);
        assert!(!cfg.auto_commit);
        assert_eq!(cfg.actor.as_deref(), Some("ann"));
        cfg.set("max", 5.into());
        assert_eq!(cfg.value::<u32>("max").unwrap(), Some(5));
        // The section type decides what is wrong, and the error names the file.
        layer(&mut cfg, "bad.yaml", "part: {typo: 1}\n");
        let err = cfg.section("part", Part::merge).unwrap_err().to_string();
        assert!(err.contains("bad.yaml") && err.contains("typo"), "{err}");
        assert_eq!(
            cfg.value::<u32>("max").unwrap(),
            Some(5),
            "other keys still read"
        );
    }
}
