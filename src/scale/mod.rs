//! Beyond one machine (DESIGN §10, SCALE.md): the protocol by which a coordinator (`loom run
//! --nats`) hands beads to workers on other machines through a queue and a claims bucket,
//! with nothing lost and nothing merged twice under worker, server and coordinator faults.
//!
//! - [`protocol`]: the messages (orders, claims, reports) and the rule that decides what a
//!   worker does with an order — pure.
//! - [`bus`]: what the protocol needs from its transport (the NATS JetStream adapter and the
//!   in-memory [`mem`] bus implement it).
//! - [`worker`] and [`coordinator`]: the two sides, written once over the bus, the work
//!   ([`worker::Hands`]) and the repository ([`coordinator::Record`]), so the property tests
//!   (`tests/it/scale_protocol.rs`) drive exactly the code that runs over NATS.

pub mod bus;
pub mod coordinator;
pub mod mem;
pub mod nats;
pub mod protocol;
pub mod worker;

/// The variable that names a failpoint (the chaos tests' crash points).
pub const FAILPOINT_VAR: &str = "LOOM_FAILPOINT";

/// Ends the process on the spot, as a crash would (no clean-up, no acknowledgement), when
/// [`FAILPOINT_VAR`] names `step`. Steps: `coordinator:after-advance` (the target moved, the
/// report not yet acknowledged), `coordinator:before-ack`, `worker:after-push`,
/// `worker:before-ack`.
pub fn failpoint(step: &str) {
    if std::env::var(FAILPOINT_VAR).is_ok_and(|v| v == step) {
        std::process::exit(86);
    }
}
