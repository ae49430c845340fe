//! What can go wrong talking to the model, each kind distinct so callers can react (shrink the
//! history on [`LlmError::ContextOverflow`], pause on an exhausted endpoint, stop on auth).

use super::retry::Class;

#[derive(Clone, Debug, thiserror::Error)]
pub enum LlmError {
    #[error("no LLM endpoint is configured")]
    NotConfigured,

    #[error("{url} rejected the credentials (HTTP {status}): {detail}")]
    Auth {
        url: String,
        status: u16,
        detail: String,
        /// The variable the key is read from.
        key_env: String,
        key_set: bool,
    },

    #[error("the prompt does not fit the model's context window: {detail}")]
    ContextOverflow { detail: String },

    #[error("{}", exhausted(.url, *.class, *.status, .detail, *.attempts))]
    Exhausted {
        url: String,
        class: Class,
        status: Option<u16>,
        detail: String,
        attempts: u32,
    },

    #[error("{url} refused the request (HTTP {status}): {detail}")]
    Rejected {
        url: String,
        status: u16,
        detail: String,
    },

    #[error("malformed answer from {url}: {detail}")]
    Protocol { url: String, detail: String },

    #[error("{0}")]
    Replay(String),

    /// A failure recorded in a replayed session.
    #[error("{message}")]
    Replayed { kind: String, message: String },

    #[error("{0}")]
    Record(String),
}

fn exhausted(url: &str, class: Class, status: Option<u16>, detail: &str, attempts: u32) -> String {
    let what = match (class, status) {
        (Class::RateLimited, _) => "kept rate-limiting the requests (HTTP 429)".to_owned(),
        (Class::Server, Some(s)) => format!("kept failing with HTTP {s}"),
        (Class::Stalled, _) => "kept going silent mid-answer".to_owned(),
        (Class::Cut, _) => "kept cutting the answer short".to_owned(),
        (Class::Transport, _) => "could not be reached".to_owned(),
        (_, Some(s)) => format!("kept failing (HTTP {s})"),
        _ => "kept failing".to_owned(),
    };
    format!("{url} {what}; gave up after {attempts} attempts ({detail})")
}

impl LlmError {
    /// Whether the endpoint is down or overloaded (retries ran out on failures that pass),
    /// rather than the request or the credentials being wrong: callers wait and try again.
    pub fn is_outage(&self) -> bool {
        matches!(self, LlmError::Exhausted { class, .. } if class.retryable())
    }

    /// A stable name for the kind of failure (events, recordings, tests).
    pub fn kind(&self) -> &str {
        match self {
            LlmError::NotConfigured => "not_configured",
            LlmError::Auth { .. } => "auth",
            LlmError::ContextOverflow { .. } => "context_overflow",
            LlmError::Exhausted { class, .. } => match class {
                Class::RateLimited => "rate_limited",
                Class::Server => "server",
                Class::Stalled => "stalled",
                Class::Cut => "cut",
                Class::Transport => "transport",
                _ => "failed",
            },
            LlmError::Rejected { .. } => "rejected",
            LlmError::Protocol { .. } => "protocol",
            LlmError::Replay(_) => "replay_mismatch",
            LlmError::Replayed { kind, .. } => kind,
            LlmError::Record(_) => "record",
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            LlmError::NotConfigured => Some(
                "set TOKENHUB_URL (e.g. http://localhost:8090) and TOKENHUB_API_KEY, or provider.url in your own config.yaml (~/.config/loom; a repository's .loom/config.yaml only if you trust it)"
                    .into(),
            ),
            LlmError::Auth { key_env, key_set: false, .. } => Some(format!(
                "{key_env} is not set: export it with your API key (or set provider.api_key_env to the variable that holds it)"
            )),
            LlmError::Auth { key_env, .. } => Some(format!(
                "the key in {key_env} was refused: check it (or set provider.api_key_env to the variable that holds the right one)"
            )),
            LlmError::ContextOverflow { .. } => {
                Some("shorten the conversation or the bead's text, or use a model with a larger context".into())
            }
            LlmError::Exhausted { .. } => Some(
                "the endpoint is down or overloaded; `loom doctor` checks it, and provider.max_attempts sets the retries"
                    .into(),
            ),
            LlmError::Rejected { .. } => Some("check provider.model and the request options".into()),
            LlmError::Protocol { .. } => {
                Some("the endpoint does not speak the OpenAI chat-completions protocol as expected".into())
            }
            LlmError::Replay(_) => Some(
                "the session differs from the recording: record it again with --record, or relax the match with --replay-match"
                    .into(),
            ),
            _ => None,
        }
    }
}
