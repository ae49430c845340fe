//! Which endpoint to talk to, with which key and model, and what its tokens cost.
//!
//! Layers (DESIGN §4 and §7): config files (`provider.url`, `provider.api_key_env`,
//! `provider.model`, `provider.headers`, timeouts, `provider.prices`) < environment
//! (`TOKENHUB_URL`, `LOOM_MODEL`, and the key from the variable `provider.api_key_env` names,
//! `TOKENHUB_API_KEY` by default) < flags.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::retry::RetryPolicy;
use super::types::Usage;

/// The key variable when the config names none.
pub const DEFAULT_KEY_ENV: &str = "TOKENHUB_API_KEY";

/// A value that must never be shown: `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The value, for the one place that needs it (the `Authorization` header).
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// `text` with every occurrence of the secret replaced.
    pub fn redact(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_owned(); // too short to search for without mangling text
        }
        text.replace(&self.0, "[redacted]")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Redacts secrets from text that streams in pieces: it holds back the end of what it was
/// given while that end could be the start of a secret, and releases it once it cannot.
#[derive(Clone, Debug)]
pub struct StreamRedactor {
    secrets: Vec<Secret>,
    held: String,
}

impl StreamRedactor {
    /// Takes the next piece; returns what can be shown now (redacted).
    pub fn push(&mut self, piece: &str) -> String {
        if self.secrets.is_empty() {
            return piece.to_owned();
        }
        self.held.push_str(piece);
        let mut text = self.held.clone();
        for s in &self.secrets {
            text = s.redact(&text);
        }
        // Keep back the longest end that begins some secret.
        let keep = self
            .secrets
            .iter()
            .map(|s| longest_prefix_suffix(&text, s.expose()))
            .max()
            .unwrap_or(0);
        let cut = text.len() - keep;
        self.held = text[cut..].to_owned();
        text.truncate(cut);
        text
    }

    /// What is still held back, at the end of the stream.
    pub fn finish(&mut self) -> String {
        let mut text = std::mem::take(&mut self.held);
        for s in &self.secrets {
            text = s.redact(&text);
        }
        text
    }
}

/// The length of the longest end of `text` that is a proper start of `secret` (on a
/// character boundary of `text`).
fn longest_prefix_suffix(text: &str, secret: &str) -> usize {
    let max = secret.len().saturating_sub(1).min(text.len());
    (1..=max)
        .rev()
        .find(|&n| {
            let start = text.len() - n;
            text.is_char_boundary(start) && secret.as_bytes().starts_with(&text.as_bytes()[start..])
        })
        .unwrap_or(0)
}

/// Price of a model, in US dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

/// `provider:` in a config file; every key optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderFile {
    pub url: Option<String>,
    pub api_key_env: Option<String>,
    pub model: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub connect_timeout_secs: Option<f64>,
    /// Silence after which a stream (or a response that does not start) is abandoned.
    pub idle_timeout_secs: Option<f64>,
    pub max_attempts: Option<u32>,
    /// `false` for endpoints without SSE (whole JSON answers).
    pub stream: Option<bool>,
    /// `loom run` gives up (exit 4) when the endpoint stays down this long (default 300).
    pub down_limit_secs: Option<u64>,
    pub prices: BTreeMap<String, Price>,
}

impl ProviderFile {
    /// Lays `other` (a later, stronger layer) over `self`.
    pub fn merge(&mut self, other: ProviderFile) {
        macro_rules! take {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        take!(
            url,
            api_key_env,
            model,
            connect_timeout_secs,
            idle_timeout_secs,
            max_attempts,
            stream,
            down_limit_secs
        );
        self.headers.extend(other.headers);
        self.prices.extend(other.prices);
    }
}

/// The effective endpoint settings.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// Base URL (with or without a trailing `/v1`).
    pub url: Option<String>,
    /// The variable the key comes from (named in error messages).
    pub api_key_env: String,
    pub api_key: Option<Secret>,
    pub model: Option<String>,
    /// Extra headers; values are treated as secrets (never logged or recorded).
    pub headers: Vec<(String, Secret)>,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    pub retry: RetryPolicy,
    /// Ask for SSE streaming (the default); answers in plain JSON are understood either way.
    pub stream: bool,
    /// How long work waits for a down endpoint before giving up (`loom run` then exits 4).
    pub down_limit: Duration,
    pub prices: BTreeMap<String, Price>,
    /// Other secret values to keep out of artefacts: those of variables in Loom's
    /// environment whose names look secret (`*_KEY`, `*_TOKEN`, …).
    pub other_secrets: Vec<Secret>,
}

fn secs(v: Option<f64>, default: f64) -> Duration {
    Duration::from_secs_f64(v.filter(|s| s.is_finite() && *s > 0.0).unwrap_or(default))
}

impl ProviderConfig {
    /// Settings from the merged config files and the environment (`getenv` is injectable
    /// for tests).
    pub fn resolve(file: &ProviderFile, getenv: impl Fn(&str) -> Option<String>) -> ProviderConfig {
        let nonempty = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let api_key_env =
            nonempty(file.api_key_env.clone()).unwrap_or_else(|| DEFAULT_KEY_ENV.to_owned());
        let mut retry = RetryPolicy::default();
        if let Some(n) = file.max_attempts.filter(|n| *n > 0) {
            retry.max_attempts = n;
        }
        ProviderConfig {
            url: nonempty(getenv("TOKENHUB_URL")).or_else(|| nonempty(file.url.clone())),
            api_key: nonempty(getenv(&api_key_env)).map(Secret::new),
            api_key_env,
            model: nonempty(getenv("LOOM_MODEL")).or_else(|| nonempty(file.model.clone())),
            headers: file
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Secret::new(v.clone())))
                .collect(),
            connect_timeout: secs(file.connect_timeout_secs, 10.0),
            idle_timeout: secs(file.idle_timeout_secs, 90.0),
            retry,
            stream: file.stream.unwrap_or(true),
            down_limit: Duration::from_secs(file.down_limit_secs.unwrap_or(300)),
            prices: file.prices.clone(),
            other_secrets: Vec::new(),
        }
    }

    /// Adds `values` (e.g. the values of secret-looking variables of the environment) to the
    /// secrets kept out of artefacts.
    pub fn with_other_secrets(mut self, values: impl IntoIterator<Item = String>) -> Self {
        for v in values {
            let s = Secret::new(v);
            if !self.secrets().contains(&&s) {
                self.other_secrets.push(s);
            }
        }
        self
    }

    /// Every secret value (key, header values, secret-looking variables), for redaction.
    pub fn secrets(&self) -> Vec<&Secret> {
        self.api_key
            .iter()
            .chain(self.headers.iter().map(|(_, v)| v))
            .chain(self.other_secrets.iter())
            .collect()
    }

    /// The secret values themselves (to keep them out of child environments).
    pub fn secret_values(&self) -> Vec<String> {
        self.secrets()
            .iter()
            .map(|s| s.expose().to_owned())
            .collect()
    }

    /// `text` with every secret removed.
    pub fn redact(&self, text: &str) -> String {
        if !self
            .secrets()
            .iter()
            .any(|s| s.len() >= 4 && text.contains(s.expose()))
        {
            return text.to_owned();
        }
        self.secrets()
            .iter()
            .fold(text.to_owned(), |t, s| s.redact(&t))
    }

    /// A redactor for text that arrives in pieces (a secret split across two pieces is still
    /// caught).
    pub fn stream_redactor(&self) -> StreamRedactor {
        StreamRedactor {
            secrets: self
                .secrets()
                .into_iter()
                .filter(|s| s.len() >= 4)
                .cloned()
                .collect(),
            held: String::new(),
        }
    }

    /// The cost of `usage` on `model`, if its price is configured (exact name, else the longest
    /// configured name that prefixes it, e.g. `gpt-4o` for `gpt-4o-2024-08-06`).
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        let price = self.prices.get(model).or_else(|| {
            self.prices
                .iter()
                .filter(|(name, _)| model.starts_with(name.as_str()))
                .max_by_key(|(name, _)| name.len())
                .map(|(_, p)| p)
        })?;
        Some(
            usage.prompt_tokens as f64 / 1e6 * price.input
                + usage.completion_tokens as f64 / 1e6 * price.output,
        )
    }
}

/// `base` + an API path (`/chat/completions`, `/models`) without doubling `/v1`.
pub fn endpoint(base: &str, path: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    if base.ends_with("/v1") {
        format!("{base}{path}")
    } else {
        format!("{base}/v1{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_do_not_double_v1() {
        assert_eq!(
            endpoint("http://h:8080", "/chat/completions"),
            "http://h:8080/v1/chat/completions"
        );
        assert_eq!(endpoint("http://h/v1/", "/models"), "http://h/v1/models");
        assert_eq!(
            endpoint("https://gw/api/v1", "/models"),
            "https://gw/api/v1/models"
        );
    }

    #[test]
    fn environment_beats_files_and_names_the_key_variable() {
        let file = ProviderFile {
            url: Some("http://file".into()),
            api_key_env: Some("MY_KEY".into()),
            model: Some("file-model".into()),
            ..ProviderFile::default()
        };
        let env = |k: &str| match k {
            "TOKENHUB_URL" => Some("http://env".to_owned()),
            "MY_KEY" => Some("sk-secret-value".to_owned()),
            _ => None,
        };
        let c = ProviderConfig::resolve(&file, env);
        assert_eq!(c.url.as_deref(), Some("http://env"));
        assert_eq!(c.model.as_deref(), Some("file-model"));
        assert_eq!(c.api_key_env, "MY_KEY");
        assert_eq!(format!("{:?}", c.api_key), "Some([redacted])");
        assert_eq!(c.redact("key=sk-secret-value!"), "key=[redacted]!");
        let none = ProviderConfig::resolve(&ProviderFile::default(), |_| None);
        assert_eq!(none.api_key_env, DEFAULT_KEY_ENV);
        assert!(none.url.is_none() && none.api_key.is_none());
    }

    #[test]
    fn a_secret_split_across_pieces_is_redacted() {
        let c = ProviderConfig::resolve(&ProviderFile::default(), |k| {
            (k == DEFAULT_KEY_ENV).then(|| "sk-0123456789".to_owned())
        })
        .with_other_secrets(["ghp_abcdefgh".to_owned()]);
        let mut r = c.stream_redactor();
        let mut out = String::new();
        for piece in [
            "key: sk-01",
            "2345",
            "6789 and gh",
            "p_abcdefgh",
            " sk-0",
            "…",
        ] {
            out.push_str(&r.push(piece));
        }
        out.push_str(&r.finish());
        assert_eq!(out, "key: [redacted] and [redacted] sk-0…");
        assert_eq!(c.redact("x ghp_abcdefgh"), "x [redacted]");
        assert_eq!(c.secret_values().len(), 2);
    }

    #[test]
    fn costs_from_the_price_table() {
        let mut file = ProviderFile::default();
        file.prices.insert(
            "gpt-4o".into(),
            Price {
                input: 2.5,
                output: 10.0,
            },
        );
        let c = ProviderConfig::resolve(&file, |_| None);
        let u = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 500_000,
            total_tokens: 1_500_000,
            cost_usd: None,
        };
        assert_eq!(c.cost("gpt-4o-2024-08-06", &u), Some(7.5));
        assert_eq!(c.cost("other", &u), None);
    }

    #[test]
    fn layers_merge_field_by_field() {
        let mut a = ProviderFile {
            url: Some("a".into()),
            model: Some("m".into()),
            ..ProviderFile::default()
        };
        a.merge(ProviderFile {
            url: Some("b".into()),
            ..ProviderFile::default()
        });
        assert_eq!(a.url.as_deref(), Some("b"));
        assert_eq!(a.model.as_deref(), Some("m"));
    }
}
