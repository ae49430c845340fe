//! Fault policy, as pure functions: what a failed attempt means, and whether and when to try
//! again. The client feeds facts in (status, headers, body, what the stream did) and does what
//! [`decide`] says.

use std::time::Duration;

/// Limits of retrying.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all (the first included).
    pub max_attempts: u32,
    /// First backoff step.
    pub base: Duration,
    /// Longest backoff step.
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured; a longer one gives up instead of stalling for hours.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// What a failed attempt was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// 401/403: the key is wrong or missing. Never retried.
    Auth,
    /// The prompt does not fit: the caller must shrink it. Never retried.
    ContextOverflow,
    /// 429.
    RateLimited,
    /// 5xx from the server or gateway.
    Server,
    /// Any other 4xx: the request itself is wrong. Never retried.
    Client,
    /// Could not connect, or the connection broke before a response.
    Transport,
    /// The stream went silent past the idle timeout.
    Stalled,
    /// The stream ended (or broke) before the reply was complete.
    Cut,
    /// The endpoint sent something that is not the protocol. Never retried.
    Protocol,
}

impl Class {
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Class::RateLimited | Class::Server | Class::Transport | Class::Stalled | Class::Cut
        )
    }
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    Retry(Duration),
    GiveUp,
}

/// Whether an error body says the prompt is longer than the model's context.
pub fn is_context_overflow_message(body: &str) -> bool {
    let b = body.to_ascii_lowercase();
    [
        "context length",
        "context_length",
        "maximum context",
        "context window",
        "too many tokens",
        "prompt is too long",
        "input is too long",
        "reduce the length",
        "exceeds the model",
    ]
    .iter()
    .any(|needle| b.contains(needle))
}

/// Classifies an HTTP error answer. `large_request` says the prompt is near the model's
/// context window (TokenHub answers such a request with a bare 502).
pub fn classify_status(status: u16, body: &str, large_request: bool) -> Class {
    match status {
        401 | 403 => Class::Auth,
        413 => Class::ContextOverflow,
        400 | 422 if is_context_overflow_message(body) => Class::ContextOverflow,
        502 if large_request || is_context_overflow_message(body) => Class::ContextOverflow,
        429 => Class::RateLimited,
        408 | 500 | 502 | 503 | 504 | 529 => Class::Server,
        500..=599 => Class::Server,
        _ => Class::Client,
    }
}

/// The exponential backoff before attempt `attempt + 1` (after `attempt` failures), with
/// "equal jitter": half the step fixed, half random (`jitter` in [0, 1)).
pub fn backoff(policy: &RetryPolicy, attempt: u32, jitter: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(20);
    let step = policy
        .base
        .saturating_mul(1u32 << exp)
        .min(policy.max_backoff);
    let half = step / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// After `attempt` attempts failed (the last one as `class`), retry or give up, and when.
/// A `Retry-After` is honoured (and the wait never shrinks below the backoff step).
pub fn decide(
    policy: &RetryPolicy,
    attempt: u32,
    class: Class,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Decision {
    if !class.retryable() || attempt >= policy.max_attempts {
        return Decision::GiveUp;
    }
    let step = backoff(policy, attempt, jitter);
    match retry_after {
        Some(ra) if ra > policy.max_retry_after => Decision::GiveUp,
        Some(ra) => Decision::Retry(ra.max(step)),
        None => Decision::Retry(step),
    }
}

/// Parses `Retry-After`: delay-seconds, or an HTTP date (relative to `now`; a past date is 0).
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs));
    }
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let delta = when.as_millisecond() - now.as_millisecond();
    Some(Duration::from_millis(u64::try_from(delta).unwrap_or(0)))
}

/// A jitter value in [0, 1) from the process's random hasher keys (no RNG crate needed).
pub fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_answers() {
        assert_eq!(classify_status(401, "bad key", false), Class::Auth);
        assert_eq!(classify_status(403, "", false), Class::Auth);
        assert_eq!(classify_status(429, "", false), Class::RateLimited);
        for s in [500, 502, 503, 504] {
            assert_eq!(classify_status(s, "oops", false), Class::Server, "{s}");
        }
        assert_eq!(
            classify_status(
                400,
                "This model's maximum context length is 8192 tokens",
                false
            ),
            Class::ContextOverflow
        );
        assert_eq!(classify_status(413, "", false), Class::ContextOverflow);
        assert_eq!(
            classify_status(502, "Bad Gateway", true),
            Class::ContextOverflow
        );
        assert_eq!(classify_status(400, "unknown field", false), Class::Client);
        assert_eq!(classify_status(404, "", false), Class::Client);
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let p = RetryPolicy::default();
        assert_eq!(backoff(&p, 1, 0.0), Duration::from_millis(250));
        let top = backoff(&p, 1, 0.999_999);
        assert!(
            top > Duration::from_millis(499) && top < Duration::from_millis(500),
            "{top:?}"
        );
        assert_eq!(backoff(&p, 2, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(&p, 3, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(&p, 30, 0.0), Duration::from_secs(15));
        assert_eq!(backoff(&p, 30, 1.0), Duration::from_secs(30));
    }

    #[test]
    fn decides_retries() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert_eq!(decide(&p, 1, Class::Auth, None, 0.0), Decision::GiveUp);
        assert_eq!(
            decide(&p, 1, Class::ContextOverflow, None, 0.0),
            Decision::GiveUp
        );
        assert_eq!(decide(&p, 1, Class::Protocol, None, 0.0), Decision::GiveUp);
        assert_eq!(
            decide(&p, 1, Class::Server, None, 0.0),
            Decision::Retry(Duration::from_millis(250))
        );
        assert_eq!(decide(&p, 3, Class::Server, None, 0.0), Decision::GiveUp);
        // Retry-After wins over a shorter step, never over a longer one, and has a ceiling.
        let ra = Some(Duration::from_secs(2));
        assert_eq!(
            decide(&p, 1, Class::RateLimited, ra, 0.0),
            Decision::Retry(Duration::from_secs(2))
        );
        assert_eq!(
            decide(
                &p,
                1,
                Class::RateLimited,
                Some(Duration::from_secs(3600)),
                0.0
            ),
            Decision::GiveUp
        );
        for c in [Class::Transport, Class::Stalled, Class::Cut] {
            assert!(
                matches!(decide(&p, 2, c, None, 0.5), Decision::Retry(_)),
                "{c:?}"
            );
        }
    }

    #[test]
    fn parses_retry_after_seconds_and_dates() {
        let now: jiff::Timestamp = "2015-10-21T07:28:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(" 1.5 ", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
