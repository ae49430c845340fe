//! The environment agent commands get: an allow-list, not a deny-list. Only `PATH`, `HOME`,
//! `LANG`/`LC_*`, `TERM`, `USER`, `SHELL` (and `TMPDIR`, which the sandbox sets to its own
//! directory) pass, plus the names in `sandbox.env_allow` — and never a variable whose value
//! holds a configured secret, whatever its name.

use std::ffi::{OsStr, OsString};

/// Names every command gets (when set).
pub const BASE: &[&str] = &["PATH", "HOME", "LANG", "TERM", "USER", "SHELL"];

/// Whether a variable name looks like it holds a secret (its value is redacted from
/// artefacts when it appears in Loom's own environment).
pub fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    n.ends_with("_KEY")
        || n.ends_with("_TOKEN")
        || n.ends_with("_SECRET")
        || n.ends_with("_PASSWORD")
        || n == "TOKENHUB_API_KEY"
}

/// Whether `name` passes the allow-list.
pub fn allowed(name: &str, allow: &[String]) -> bool {
    BASE.contains(&name) || name.starts_with("LC_") || allow.iter().any(|a| a == name)
}

/// The variables of `vars` an agent command may see: allow-listed names whose values contain
/// none of `secret_values` (values shorter than 4 bytes are not searched for).
pub fn allowed_env(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
    secret_values: &[&str],
    allow: &[String],
) -> Vec<(OsString, OsString)> {
    vars.into_iter()
        .filter(|(k, v)| allowed(&k.to_string_lossy(), allow) && !holds_secret(v, secret_values))
        .collect()
}

/// [`allowed_env`] over this process's environment.
pub fn current(secret_values: &[&str], allow: &[String]) -> Vec<(OsString, OsString)> {
    allowed_env(std::env::vars_os(), secret_values, allow)
}

fn holds_secret(value: &OsStr, secrets: &[&str]) -> bool {
    let v = value.to_string_lossy();
    secrets.iter().any(|s| s.len() >= 4 && v.contains(s))
}

/// Values of this process's variables whose names look secret (8 bytes or longer): they are
/// redacted from artefacts like the configured key.
pub fn secret_values_in_env() -> Vec<String> {
    std::env::vars_os()
        .filter(|(k, v)| secret_name(&k.to_string_lossy()) && v.len() >= 8)
        .filter_map(|(_, v)| v.into_string().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_recognised() {
        for n in [
            "OPENAI_API_KEY",
            "GITHUB_TOKEN",
            "aws_secret",
            "TOKENHUB_API_KEY",
            "DB_PASSWORD",
        ] {
            assert!(secret_name(n), "{n}");
        }
        for n in ["PATH", "HOME", "KEYBOARD", "TOKENS_USED"] {
            assert!(!secret_name(n), "{n}");
        }
    }

    #[test]
    fn only_allow_listed_names_pass() {
        let vars = [
            ("PATH", "/usr/bin"),
            ("LC_ALL", "C"),
            ("HOME", "/home/me"),
            ("TOKENHUB_API_KEY", "tokenhub_abc123"),
            ("MY_GATEWAY_KEY", "k-999999"),
            ("INNOCENT", "plain"),
            ("GIT_DIR", "/elsewhere"),
            ("LD_PRELOAD", "/tmp/evil.so"),
            ("NPM_TOKEN", "allowed"),
            ("SHELL", "/bin/sh with tokenhub_abc123 inside"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let kept = allowed_env(vars, &["tokenhub_abc123"], &["NPM_TOKEN".to_owned()]);
        let names: Vec<String> = kept
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["PATH", "LC_ALL", "HOME", "NPM_TOKEN"]);
    }
}
