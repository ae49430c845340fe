//! The endpoint's health as the client sees it: healthy, degraded (failures being retried) or
//! down (unreachable, refusing, or giving up). Later steps pause agents while it is down.

use serde::Serialize;

use super::retry::Class;

/// How the endpoint is doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Nothing known yet.
    #[default]
    Unknown,
    Healthy,
    /// Recent attempts failed and are being retried.
    Degraded,
    /// Unusable until a request succeeds again.
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Down => "down",
        }
    }
}

/// Consecutive failed attempts after which the endpoint counts as down.
pub const DOWN_AFTER: u32 = 3;

/// The health and why.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct HealthSnapshot {
    pub health: Health,
    pub consecutive_failures: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The model list answered since the last failure, but no chat request has succeeded
    /// since: worth trying again, not yet healthy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reachable: bool,
}

/// Pure state machine over attempt outcomes.
#[derive(Clone, Debug, Default)]
pub struct HealthTracker {
    snap: HealthSnapshot,
}

impl HealthTracker {
    pub fn snapshot(&self) -> &HealthSnapshot {
        &self.snap
    }

    /// A chat request succeeded. Returns whether the health changed.
    pub fn success(&mut self) -> bool {
        let before = self.snap.health;
        self.snap = HealthSnapshot {
            health: Health::Healthy,
            consecutive_failures: 0,
            last_error: None,
            reachable: false,
        };
        before != Health::Healthy
    }

    /// The model list answered. Health is judged by chat requests: this only notes that the
    /// endpoint is reachable again after failures. Returns whether the snapshot changed.
    pub fn listed(&mut self) -> bool {
        if self.snap.health == Health::Healthy || self.snap.reachable {
            return false;
        }
        self.snap.reachable = true;
        true
    }

    /// An attempt failed as `class`. Returns whether the health changed.
    pub fn failure(&mut self, class: Class, message: &str) -> bool {
        let before = self.snap.health;
        self.snap.last_error = Some(message.to_owned());
        self.snap.reachable = false;
        match class {
            // The endpoint works; the request did not fit or was wrong.
            Class::ContextOverflow | Class::Client => {
                self.snap.consecutive_failures = 0;
                if self.snap.health == Health::Unknown {
                    self.snap.health = Health::Healthy;
                }
            }
            Class::Auth => {
                self.snap.consecutive_failures += 1;
                self.snap.health = Health::Down;
            }
            _ => {
                self.snap.consecutive_failures += 1;
                self.snap.health = if self.snap.consecutive_failures >= DOWN_AFTER {
                    Health::Down
                } else {
                    Health::Degraded
                };
            }
        }
        before != self.snap.health
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        let mut t = HealthTracker::default();
        assert_eq!(t.snapshot().health, Health::Unknown);
        assert!(t.failure(Class::Server, "502"));
        assert_eq!(t.snapshot().health, Health::Degraded);
        assert!(!t.failure(Class::Transport, "reset"));
        assert!(t.failure(Class::Stalled, "silent"));
        assert_eq!(t.snapshot().health, Health::Down);
        assert!(t.success());
        assert_eq!(t.snapshot().health, Health::Healthy);
        assert_eq!(t.snapshot().consecutive_failures, 0);
        assert!(t.failure(Class::Auth, "401"));
        assert_eq!(t.snapshot().health, Health::Down);
        let mut t = HealthTracker::default();
        t.failure(Class::ContextOverflow, "too long");
        assert_eq!(t.snapshot().health, Health::Healthy);
    }

    /// A model list that answers while completions fail never makes the endpoint healthy.
    #[test]
    fn listing_models_is_not_health() {
        let mut t = HealthTracker::default();
        assert!(t.listed());
        assert_eq!(t.snapshot().health, Health::Unknown);
        for _ in 0..DOWN_AFTER {
            t.failure(Class::Server, "500");
        }
        assert!(!t.snapshot().reachable);
        assert!(t.listed(), "reachable again is news");
        assert!(!t.listed(), "once");
        assert_eq!(t.snapshot().health, Health::Down);
        assert!(t.snapshot().reachable);
        t.failure(Class::Server, "500");
        assert_eq!(
            (t.snapshot().health, t.snapshot().reachable),
            (Health::Down, false)
        );
        assert!(t.success());
        assert_eq!(
            (t.snapshot().health, t.snapshot().reachable),
            (Health::Healthy, false)
        );
        assert!(!t.listed(), "healthy stays healthy");
    }
}
