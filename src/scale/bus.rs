//! What the protocol needs from its transport: a work queue, a report queue and a claims
//! bucket with compare-and-set, plus a clock. JetStream provides them (the NATS adapter);
//! [`super::mem`] is the in-memory bus the property tests drive, with the same semantics
//! down to the stale ack.

use std::future::Future;

use super::protocol::{Claim, Order, Report};

/// Why a bus operation did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusError {
    /// A compare-and-set lost: the key exists, or its revision moved on.
    Conflict,
    /// The server cannot be reached or did not answer in time.
    Unavailable(String),
}

impl std::fmt::Display for BusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BusError::Conflict => f.write_str("the claim changed meanwhile"),
            BusError::Unavailable(why) => write!(f, "the queue server is unavailable: {why}"),
        }
    }
}

/// A value with its key-value revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned<T> {
    pub value: T,
    pub revision: u64,
}

/// One delivery of a queued message: acknowledging it removes the message (also when the
/// delivery timed out and went to someone else: the stale ack).
#[derive(Clone, Debug)]
pub struct Delivery<T> {
    pub value: T,
    /// How often the message has been delivered, this time included.
    pub delivered: u64,
    /// The bus's handle on this delivery.
    pub token: u64,
}

/// Whether a publish stored the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    Stored,
    /// Its id was seen inside the de-duplication window: not stored again.
    Duplicate,
}

pub type BusResult<T> = Result<T, BusError>;

/// The transport (module docs).
pub trait Bus: Send + Sync {
    /// Milliseconds since the Unix epoch, by this process's clock.
    fn now(&self) -> u64;

    /// Queues `order` under de-duplication id `id` (normally [`Order::msg_id`]).
    fn publish_order(
        &self,
        order: &Order,
        id: &str,
    ) -> impl Future<Output = BusResult<Published>> + Send;
    /// The next order for this worker, if one is waiting.
    fn next_order(&self) -> impl Future<Output = BusResult<Option<Delivery<Order>>>> + Send;
    /// Done with it (removes the message).
    fn ack(&self, token: u64) -> impl Future<Output = BusResult<()>> + Send;
    /// Still working on it: do not redeliver yet.
    fn progress(&self, token: u64) -> impl Future<Output = BusResult<()>> + Send;
    /// Never deliver it again (a duplicate, or stale).
    fn term(&self, token: u64) -> impl Future<Output = BusResult<()>> + Send;

    fn claim(&self, bead: &str)
    -> impl Future<Output = BusResult<Option<Versioned<Claim>>>> + Send;
    /// Every bead's claim.
    fn claims(&self) -> impl Future<Output = BusResult<Vec<(String, Versioned<Claim>)>>> + Send;
    /// Writes a claim where there is none; the new revision, or `Conflict`.
    fn create_claim(
        &self,
        bead: &str,
        claim: &Claim,
    ) -> impl Future<Output = BusResult<u64>> + Send;
    /// Replaces the claim at `revision`; the new revision, or `Conflict`.
    fn update_claim(
        &self,
        bead: &str,
        claim: &Claim,
        revision: u64,
    ) -> impl Future<Output = BusResult<u64>> + Send;

    /// Publishes a report and waits for the server to have stored it.
    fn publish_report(&self, report: &Report) -> impl Future<Output = BusResult<()>> + Send;
    fn next_report(&self) -> impl Future<Output = BusResult<Option<Delivery<Report>>>> + Send;
    fn ack_report(&self, token: u64) -> impl Future<Output = BusResult<()>> + Send;
}
