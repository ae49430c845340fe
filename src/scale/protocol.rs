//! What travels between the coordinator and the workers, and the rules both sides apply to
//! it — no I/O. Messages are JSON with a `schema` number; unknown fields are ignored, so a
//! newer Loom can add fields without breaking an older peer (docs/FORMATS.md, "Scale-out").
//!
//! The central rule ([`take`]): a worker decides what to do with an order only from the
//! bead's claim in the key-value store, never from the queue, because the queue cannot say
//! "done" (SCALE.md: a stale ack from a worker whose delivery went elsewhere still removes the
//! message). Dispatch numbers only grow: the coordinator publishes dispatch `d + 1` only after
//! abandoning the claim of dispatch `d`, and a worker takes an order only when it is newer
//! than what the claim records — so re-publishing is idempotent and a late copy of an old
//! order can never take over.

use serde::{Deserialize, Serialize};

/// The message schema this Loom writes.
pub const SCHEMA: u32 = 1;

/// A work order: work bead `bead` from `base`, as its `dispatch`-th dispatch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub schema: u32,
    pub bead: String,
    /// 1 for the first dispatch of the bead, one more for each re-dispatch.
    pub dispatch: u32,
    /// The commit the work starts from.
    pub base: String,
    /// The LLM profile the worker uses (a name it has configured: keys never travel).
    pub profile: String,
}

impl Order {
    /// The queue's de-duplication id: the same dispatch published twice is stored once.
    pub fn msg_id(&self) -> String {
        format!("{}:{}", self.bead, self.dispatch)
    }
}

/// Where an attempt stands, as its claim records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimState {
    /// A worker holds the bead and renews the claim while it works.
    Running,
    /// The result branch is pushed; the result is about to be published.
    Pushed,
    /// The result is published; the coordinator will merge or reject it.
    Submitted,
    /// Landed on the target (or found landed there): the bead is done.
    Merged,
    /// The result was a failure; the coordinator recorded it.
    Failed,
    /// The coordinator gave the attempt up (its lease lapsed, or the worker aborted it); a
    /// newer dispatch may follow.
    Abandoned,
}

impl ClaimState {
    /// Whether nothing more happens to the bead through this claim.
    pub fn is_final(self) -> bool {
        matches!(self, ClaimState::Merged | ClaimState::Failed)
    }

    /// Whether a worker is (or should be) at work under it.
    pub fn is_held(self) -> bool {
        matches!(self, ClaimState::Running | ClaimState::Pushed)
    }
}

/// A bead's claim, one key per bead in the claims bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub schema: u32,
    /// The key-value revision that took the claim (0 in the write that takes it: that write's
    /// revision is the epoch; see [`Claim::epoch`]).
    #[serde(default)]
    pub epoch: u64,
    pub dispatch: u32,
    /// Unique per attempt (worker id and a counter).
    pub attempt: String,
    pub worker: String,
    pub state: ClaimState,
    /// The worker's clock, milliseconds since the Unix epoch; advisory (the coordinator
    /// judges a lease by its own clock: a revision that did not change for a lease period).
    pub lease_until: u64,
    pub base: String,
}

impl Claim {
    /// The attempt's epoch, given the claim's current key-value `revision`.
    pub fn epoch(&self, revision: u64) -> u64 {
        if self.epoch == 0 {
            revision
        } else {
            self.epoch
        }
    }
}

/// What a worker reports for an attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub schema: u32,
    pub bead: String,
    pub epoch: u64,
    pub attempt: String,
    pub worker: String,
    /// The pushed branch ([`branch`]); empty for a failure without one.
    pub branch: String,
    /// The tip of the pushed branch.
    pub commit: String,
    pub ok: bool,
    /// One line: what failed, for a failure.
    #[serde(default)]
    pub detail: String,
}

/// Whether `s` is a full commit id (SHA-1 or SHA-256 hex): what an order's base and a
/// report's commit must be before they reach git.
pub fn is_commit_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The branch an attempt pushes: one per attempt, never forced.
pub fn branch(bead: &str, epoch: u64) -> String {
    format!("loom/{bead}/e{epoch}")
}

/// What a worker does with an order, given the bead's claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// Take it (create the claim, or replace the given revision).
    Claim { replace: Option<u64> },
    /// Done already, or failed: acknowledge the order and do nothing.
    Skip,
    /// A copy of an order someone holds, or older than the claim: terminate the delivery.
    Drop,
}

/// The central rule (module docs): what to do with `order` when the bead's claim is `claim`
/// (with its revision).
pub fn take(order: &Order, claim: Option<(&Claim, u64)>) -> Take {
    let Some((c, revision)) = claim else {
        return Take::Claim { replace: None };
    };
    match c.state {
        // The coordinator retries a failed bead (once a person reopened it) with a newer
        // dispatch, as it does an abandoned one.
        ClaimState::Abandoned | ClaimState::Failed if order.dispatch > c.dispatch => Take::Claim {
            replace: Some(revision),
        },
        s if s.is_final() => Take::Skip,
        // The result is out: the coordinator merges or rejects it (and re-dispatches then).
        ClaimState::Submitted => Take::Skip,
        // Held (a live or lapsed lease: the coordinator's watchdog decides), or an order no
        // newer than the abandoned dispatch.
        _ => Take::Drop,
    }
}

/// JSON for the wire.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain structs of strings and numbers: serializing cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// A message from the wire, or what is wrong with it.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    let schema = serde_json::from_slice::<serde_json::Value>(bytes)
        .map_err(|e| format!("not JSON: {e}"))?
        .get("schema")
        .and_then(serde_json::Value::as_u64);
    match schema {
        Some(s) if s >= 1 => serde_json::from_slice(bytes).map_err(|e| format!("schema {s}: {e}")),
        _ => Err("no schema number".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(dispatch: u32) -> Order {
        Order {
            schema: SCHEMA,
            bead: "b-1".into(),
            dispatch,
            base: "abc".into(),
            profile: "default".into(),
        }
    }

    fn claim(state: ClaimState, dispatch: u32) -> Claim {
        Claim {
            schema: SCHEMA,
            epoch: 7,
            dispatch,
            attempt: "w1-1".into(),
            worker: "w1".into(),
            state,
            lease_until: 0,
            base: "abc".into(),
        }
    }

    #[test]
    fn an_order_is_taken_only_when_it_is_newer_than_what_the_claim_records() {
        use ClaimState::*;
        assert_eq!(take(&order(1), None), Take::Claim { replace: None });
        let cases = [
            (Running, 1, 2, Take::Drop),
            (Pushed, 1, 1, Take::Drop),
            (Submitted, 1, 2, Take::Skip),
            (Merged, 3, 1, Take::Skip),
            (Failed, 1, 1, Take::Skip),
            (Failed, 1, 2, Take::Claim { replace: Some(9) }),
            (Abandoned, 2, 2, Take::Drop),
            (Abandoned, 2, 1, Take::Drop),
            (Abandoned, 2, 3, Take::Claim { replace: Some(9) }),
        ];
        for (state, held, offered, want) in cases {
            let c = claim(state, held);
            assert_eq!(
                take(&order(offered), Some((&c, 9))),
                want,
                "{state:?} {held} {offered}"
            );
        }
    }

    /// SECURITY.md promise 11: what crosses machines is exactly what docs/FORMATS.md lists —
    /// an order names an LLM profile, never a key; a new field must be added there (and be
    /// judged) before this passes.
    #[test]
    fn the_wire_carries_exactly_the_documented_fields() {
        let keys = |v: serde_json::Value| -> Vec<String> {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        let report = Report {
            schema: SCHEMA,
            bead: "b".into(),
            epoch: 1,
            attempt: "a".into(),
            worker: "w".into(),
            branch: branch("b", 1),
            commit: "c".into(),
            ok: true,
            detail: String::new(),
        };
        assert_eq!(
            keys(serde_json::to_value(order(1)).unwrap()),
            ["base", "bead", "dispatch", "profile", "schema"]
        );
        assert_eq!(
            keys(serde_json::to_value(claim(ClaimState::Running, 1)).unwrap()),
            [
                "attempt",
                "base",
                "dispatch",
                "epoch",
                "lease_until",
                "schema",
                "state",
                "worker"
            ]
        );
        assert_eq!(
            keys(serde_json::to_value(report).unwrap()),
            [
                "attempt", "bead", "branch", "commit", "detail", "epoch", "ok", "schema", "worker"
            ]
        );
    }

    #[test]
    fn messages_carry_a_schema_and_ignore_fields_they_do_not_know() {
        let o = order(2);
        let mut v: serde_json::Value = serde_json::from_slice(&encode(&o)).unwrap();
        v["from_the_future"] = serde_json::json!({"x": 1});
        let back: Order = decode(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(back, o);
        assert_eq!(o.msg_id(), "b-1:2");
        assert!(
            decode::<Order>(b"{\"bead\":\"x\"}")
                .unwrap_err()
                .contains("schema")
        );
        assert!(decode::<Order>(b"nope").unwrap_err().contains("not JSON"));
        assert_eq!(branch("b-1", 12), "loom/b-1/e12");
        let c = claim(ClaimState::Running, 1);
        assert_eq!(c.epoch(40), 7);
        assert_eq!(Claim { epoch: 0, ..c }.epoch(40), 40);
    }
}
