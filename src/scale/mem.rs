//! The in-memory bus: JetStream's semantics as the protocol relies on them (SCALE.md's table)
//! — de-duplication by message id, redelivery after the ack wait, progress that holds a
//! delivery, an ack that removes the message even from a delivery that timed out and went to
//! someone else (the stale ack), compare-and-set claims with revisions — over a clock the
//! caller moves. Each handle is one process; a test can cut a process off ([`World::down`])
//! and make every operation wait for its turn ([`World::gated`]), which is how the property
//! tests choose the interleaving of coordinator and workers step by step.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use super::bus::{Bus, BusError, BusResult, Delivery, Published, Versioned};
use super::protocol::{Claim, Order, Report};

/// A queue of one message type with work-queue semantics.
#[derive(Debug)]
pub struct Queue<T> {
    next_seq: u64,
    next_token: u64,
    /// Stored messages by sequence.
    messages: BTreeMap<u64, Stored<T>>,
    /// Every delivery token ever handed out → its message.
    tokens: HashMap<u64, u64>,
    seen_ids: HashSet<String>,
    /// Every message stored, in order (for tests that replay one).
    pub log: Vec<T>,
    /// How many deliveries were redeliveries.
    pub redelivered: u64,
    /// Acks and terms that arrived from a delivery that had timed out.
    pub stale_acks: u64,
}

#[derive(Debug)]
struct Stored<T> {
    value: T,
    /// The current delivery: its token and when it times out.
    out: Option<(u64, u64)>,
    delivered: u64,
}

impl<T: Clone> Queue<T> {
    fn new() -> Self {
        Queue {
            next_seq: 1,
            next_token: 1,
            messages: BTreeMap::new(),
            tokens: HashMap::new(),
            seen_ids: HashSet::new(),
            log: Vec::new(),
            redelivered: 0,
            stale_acks: 0,
        }
    }

    /// Stores `value` unless `id` was seen (`None`: no de-duplication).
    pub fn publish(&mut self, value: T, id: Option<&str>) -> Published {
        if let Some(id) = id
            && !self.seen_ids.insert(id.to_owned())
        {
            return Published::Duplicate;
        }
        self.log.push(value.clone());
        self.messages.insert(
            self.next_seq,
            Stored {
                value,
                out: None,
                delivered: 0,
            },
        );
        self.next_seq += 1;
        Published::Stored
    }

    fn next(&mut self, now: u64, ack_wait: u64) -> Option<Delivery<T>> {
        let (&seq, m) = self
            .messages
            .iter_mut()
            .find(|(_, m)| m.out.is_none_or(|(_, until)| until <= now))?;
        if m.delivered > 0 {
            self.redelivered += 1;
        }
        let token = self.next_token;
        self.next_token += 1;
        m.out = Some((token, now + ack_wait));
        m.delivered += 1;
        self.tokens.insert(token, seq);
        Some(Delivery {
            value: m.value.clone(),
            delivered: m.delivered,
            token,
        })
    }

    /// Ack or term: removes the message, whichever delivery the token was.
    fn remove(&mut self, token: u64) {
        let Some(seq) = self.tokens.get(&token) else {
            return;
        };
        if let Some(m) = self.messages.remove(seq)
            && m.out.is_none_or(|(t, _)| t != token)
        {
            self.stale_acks += 1;
        }
    }

    fn progress(&mut self, token: u64, now: u64, ack_wait: u64) {
        if let Some(m) = self
            .tokens
            .get(&token)
            .and_then(|s| self.messages.get_mut(s))
            && let Some((_, until)) = &mut m.out
        {
            *until = now + ack_wait;
        }
    }

    /// Messages stored (delivered or not).
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The stored messages' values, oldest first.
    pub fn values(&self) -> Vec<T> {
        self.messages.values().map(|m| m.value.clone()).collect()
    }
}

/// Everything the processes share: queues, claims, the clock, and the faults.
#[derive(Debug)]
pub struct World {
    pub now: u64,
    pub ack_wait: u64,
    pub orders: Queue<Order>,
    pub reports: Queue<Report>,
    claims: BTreeMap<String, (Claim, u64)>,
    revision: u64,
    /// Processes cut off: their operations fail.
    pub down: HashSet<usize>,
    /// When set, every operation waits until [`World::grant`] names its process.
    pub gated: bool,
    granted: Option<usize>,
}

impl World {
    pub fn new(ack_wait: u64) -> Arc<Mutex<World>> {
        Arc::new(Mutex::new(World {
            now: 1_000_000,
            ack_wait,
            orders: Queue::new(),
            reports: Queue::new(),
            claims: BTreeMap::new(),
            revision: 0,
            down: HashSet::new(),
            gated: false,
            granted: None,
        }))
    }

    /// Lets process `who` do its next operation.
    pub fn grant(&mut self, who: usize) {
        self.granted = Some(who);
    }

    /// Whether the last grant was used.
    pub fn grant_used(&self) -> bool {
        self.granted.is_none()
    }

    /// The claim of `bead` and its revision.
    pub fn claim_of(&self, bead: &str) -> Option<(Claim, u64)> {
        self.claims.get(bead).cloned()
    }
}

/// One process's handle on a [`World`].
#[derive(Clone)]
pub struct MemBus {
    world: Arc<Mutex<World>>,
    who: usize,
}

impl MemBus {
    pub fn new(world: &Arc<Mutex<World>>, who: usize) -> MemBus {
        MemBus {
            world: Arc::clone(world),
            who,
        }
    }

    /// Which process this handle is.
    pub fn who(&self) -> usize {
        self.who
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for this process's turn (at once when the world is not gated).
    pub fn turn(&self) -> Turn<'_> {
        Turn { bus: self }
    }

    /// Takes a turn, then runs `op` on the world — or fails when this process is cut off.
    async fn op<T>(&self, op: impl FnOnce(&mut World) -> BusResult<T>) -> BusResult<T> {
        self.turn().await;
        let mut w = self.world();
        if w.down.contains(&self.who) {
            return Err(BusError::Unavailable("cut off".into()));
        }
        op(&mut w)
    }
}

/// The future of [`MemBus::turn`].
pub struct Turn<'a> {
    bus: &'a MemBus,
}

impl Future for Turn<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        let mut w = self.bus.world();
        if !w.gated || w.granted == Some(self.bus.who) {
            w.granted = None;
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

fn write_claim(w: &mut World, bead: &str, claim: &Claim, expect: Option<u64>) -> BusResult<u64> {
    let current = w.claims.get(bead).map(|(_, r)| *r);
    if current != expect {
        return Err(BusError::Conflict);
    }
    w.revision += 1;
    let rev = w.revision;
    w.claims.insert(bead.to_owned(), (claim.clone(), rev));
    Ok(rev)
}

impl Bus for MemBus {
    fn now(&self) -> u64 {
        self.world().now
    }

    async fn publish_order(&self, order: &Order, id: &str) -> BusResult<Published> {
        self.op(|w| Ok(w.orders.publish(order.clone(), Some(id))))
            .await
    }

    async fn next_order(&self) -> BusResult<Option<Delivery<Order>>> {
        self.op(|w| {
            let (now, wait) = (w.now, w.ack_wait);
            Ok(w.orders.next(now, wait))
        })
        .await
    }

    async fn ack(&self, token: u64) -> BusResult<()> {
        self.op(|w| {
            w.orders.remove(token);
            Ok(())
        })
        .await
    }

    async fn progress(&self, token: u64) -> BusResult<()> {
        self.op(|w| {
            let (now, wait) = (w.now, w.ack_wait);
            w.orders.progress(token, now, wait);
            Ok(())
        })
        .await
    }

    async fn term(&self, token: u64) -> BusResult<()> {
        self.ack(token).await
    }

    async fn claim(&self, bead: &str) -> BusResult<Option<Versioned<Claim>>> {
        self.op(|w| {
            Ok(w.claims.get(bead).map(|(c, r)| Versioned {
                value: c.clone(),
                revision: *r,
            }))
        })
        .await
    }

    async fn claims(&self) -> BusResult<Vec<(String, Versioned<Claim>)>> {
        self.op(|w| {
            Ok(w.claims
                .iter()
                .map(|(b, (c, r))| {
                    let v = Versioned {
                        value: c.clone(),
                        revision: *r,
                    };
                    (b.clone(), v)
                })
                .collect())
        })
        .await
    }

    async fn create_claim(&self, bead: &str, claim: &Claim) -> BusResult<u64> {
        self.op(|w| write_claim(w, bead, claim, None)).await
    }

    async fn update_claim(&self, bead: &str, claim: &Claim, revision: u64) -> BusResult<u64> {
        self.op(|w| write_claim(w, bead, claim, Some(revision)))
            .await
    }

    async fn publish_report(&self, report: &Report) -> BusResult<()> {
        self.op(|w| {
            w.reports.publish(report.clone(), None);
            Ok(())
        })
        .await
    }

    async fn next_report(&self) -> BusResult<Option<Delivery<Report>>> {
        self.op(|w| {
            let (now, wait) = (w.now, w.ack_wait);
            Ok(w.reports.next(now, wait))
        })
        .await
    }

    async fn ack_report(&self, token: u64) -> BusResult<()> {
        self.op(|w| {
            w.reports.remove(token);
            Ok(())
        })
        .await
    }
}
