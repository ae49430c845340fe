//! The coordinator's side of the protocol (SCALE.md, "Protocol"): it owns "nothing lost"
//! and "merged once". Each [`Coordinator::step`] runs the watchdog (a held claim whose
//! revision has not moved for a lease, by this process's clock, is abandoned — that covers
//! workers that died, were partitioned, or lost their order to a stale ack), dispatches
//! ready beads up to the free capacity, each as dispatch `d + 1` after the claim of dispatch
//! `d` (re-publishing is idempotent: the queue de-duplicates by bead and dispatch), and then
//! takes in one report that arrived (merging one at a time, rejecting any whose epoch is not
//! the claim's, finishing idempotently when the target already shows the bead closed). A
//! bead whose last allowed dispatch lapsed is given up to a person: one decision bead.
//!
//! Git and the beads are behind [`Record`], so the same logic runs against the repository
//! and against the model of one in the property tests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;

use super::bus::{Bus, BusError, BusResult, Delivery, Versioned};
use super::protocol::{Claim, ClaimState, Order, Report, SCHEMA};

/// The repository as the coordinator sees it: beads to work, the target branch, the merge.
pub trait Record: Send + Sync {
    /// Beads that need work, in dispatch order: open, unblocked, not landed, not given up.
    fn ready(&self) -> impl Future<Output = Vec<String>> + Send;
    /// The commit orders start from.
    fn base(&self) -> impl Future<Output = String> + Send;
    /// Whether the target shows the bead closed (by any attempt): then it is never merged
    /// again.
    fn landed(&self, bead: &str) -> impl Future<Output = bool> + Send;
    /// Verifies, reviews and merges a report's branch with the bead's close in the same
    /// commit.
    fn land(&self, report: &Report) -> impl Future<Output = Landing> + Send;
    /// Records a failed attempt: why (the report's detail, or why the landing refused it).
    fn failed(&self, report: &Report, why: &str) -> impl Future<Output = ()> + Send;
    /// Blocks the bead on one decision bead after `dispatches` dispatches lapsed.
    fn give_up(&self, bead: &str, dispatches: u32) -> impl Future<Output = ()> + Send;
}

/// What [`Record::land`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Landing {
    Merged,
    /// Review or verification refused it (why).
    Rejected(String),
    /// Not now (why): the report stays unacknowledged and comes back.
    Later(String),
}

/// What the coordinator did, for events, summaries and the tests' no-vacuous-pass checks.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub dispatched: u64,
    pub redispatched: u64,
    pub abandoned: u64,
    pub merged: u64,
    pub finished_landed: u64,
    pub stale_reports: u64,
    /// Copies of orders nobody took within a lease (the message may have been lost).
    pub resent: u64,
    /// Per merged bead, microseconds the coordinator itself spent on it: publishing its
    /// order, and handling its report minus the record's work (git, verification).
    pub overhead_us: Vec<u64>,
    pub failed: u64,
    pub given_up: u64,
}

/// What a step saw, for deciding when a run is over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outlook {
    /// Beads the record calls ready.
    pub ready: usize,
    /// Attempts under way: claims held or submitted, and orders published but not taken.
    pub in_flight: usize,
}

impl Outlook {
    /// Nothing to do and nothing under way.
    pub fn idle(&self) -> bool {
        self.ready == 0 && self.in_flight == 0
    }
}

/// An order as the coordinator last sent it.
struct Sent {
    order: Order,
    at: u64,
    copies: u32,
}

/// Every bead's claim, in bead order (so a step's operations come in a fixed order).
type Claims = BTreeMap<String, Versioned<Claim>>;

/// One coordinator's state (what it published, what the watchdog has seen); everything that
/// matters across restarts is in the claims and in git.
pub struct Coordinator {
    pub profile: String,
    pub lease_ms: u64,
    /// Dispatches per bead before it is given up.
    pub max_dispatch: u32,
    pub tally: Tally,
    /// Where what happens to which bead is told (`stage_changed`, stage `queued`), as it
    /// happens; `None`: untold.
    pub events: Option<std::sync::Arc<crate::event::EventBus>>,
    /// The latest order this process published per bead, when it last went out, and how
    /// many copies of it were sent since.
    published: HashMap<String, Sent>,
    /// How long publishing each bead's latest order took, microseconds.
    publish_us: HashMap<String, u64>,
    /// Held claims: the revision last seen and since when (this clock).
    seen: HashMap<String, (u64, u64)>,
}

impl Coordinator {
    pub fn new(profile: &str, lease_ms: u64, max_dispatch: u32) -> Coordinator {
        Coordinator {
            profile: profile.to_owned(),
            lease_ms,
            max_dispatch: max_dispatch.max(1),
            tally: Tally::default(),
            events: None,
            publish_us: HashMap::new(),
            published: HashMap::new(),
            seen: HashMap::new(),
        }
    }

    /// Reports, watchdog, dispatch (module docs); `capacity` is the number of free slots
    /// the workers announce.
    pub async fn step<B: Bus, R: Record>(
        &mut self,
        bus: &B,
        record: &R,
        capacity: usize,
    ) -> BusResult<Outlook> {
        // Read once: the watchdog brings its own changes into it for dispatch.
        let mut claims: Claims = bus.claims().await?.into_iter().collect();
        self.watchdog(bus, record, &mut claims).await?;
        // Slots a report freed are filled before that report's landing (which takes a
        // while): workers do not wait on the merge queue.
        let outlook = self.dispatch(bus, record, &claims, capacity).await?;
        self.reports(bus, record).await?;
        Ok(outlook)
    }

    /// Steps until `stop` is set, `tick` apart (a failed step is retried after a tick).
    /// `capacity` is asked each step.
    pub async fn serve<B: Bus, R: Record>(
        &mut self,
        bus: &B,
        record: &R,
        mut capacity: impl FnMut() -> usize + Send,
        tick: std::time::Duration,
        stop: &std::sync::atomic::AtomicBool,
    ) {
        use std::sync::atomic::Ordering;
        while !stop.load(Ordering::SeqCst) {
            let _ = self.step(bus, record, capacity()).await;
            tokio::time::sleep(tick).await;
        }
    }

    /// Takes in one report: a landing takes a while (git, maybe the tests), and the slots
    /// its worker freed are filled by this step's dispatch rather than after every report
    /// that queued up meanwhile.
    async fn reports<B: Bus, R: Record>(&mut self, bus: &B, record: &R) -> BusResult<()> {
        if let Some(d) = bus.next_report().await?
            && self.report(bus, record, &d).await?
        {
            super::failpoint("coordinator:before-ack");
            bus.ack_report(d.token).await?;
        }
        Ok(())
    }

    /// Handles one report; `false`: leave it unacknowledged for now.
    async fn report<B: Bus, R: Record>(
        &mut self,
        bus: &B,
        record: &R,
        d: &Delivery<Report>,
    ) -> BusResult<bool> {
        let r = &d.value;
        let started = std::time::Instant::now();
        let landed = record.landed(&r.bead).await;
        let mut in_record = started.elapsed();
        if landed {
            self.tally.finished_landed += 1;
            settle(bus, &r.bead, None, ClaimState::Merged).await?;
            return Ok(true);
        }
        // Hold the claim for the merge: a submitted claim is never taken by a worker.
        if settle(bus, &r.bead, Some(r.epoch), ClaimState::Submitted)
            .await?
            .is_none()
        {
            self.tally.stale_reports += 1;
            note(
                &self.events,
                (
                    r.bead.clone(),
                    format!(
                        "a report of old epoch {} from {} ignored",
                        r.epoch, r.worker
                    ),
                ),
            );
            return Ok(true);
        }
        let outcome = if r.ok {
            let at = std::time::Instant::now();
            let outcome = record.land(r).await;
            in_record += at.elapsed();
            outcome
        } else {
            Landing::Rejected(r.detail.clone())
        };
        let state = match outcome {
            Landing::Merged => {
                self.tally.merged += 1;
                ClaimState::Merged
            }
            Landing::Rejected(why) => {
                record.failed(r, &why).await;
                self.tally.failed += 1;
                ClaimState::Failed
            }
            Landing::Later(_) => return Ok(false),
        };
        settle(bus, &r.bead, Some(r.epoch), state).await?;
        if state == ClaimState::Merged {
            let publish = self.publish_us.remove(&r.bead).unwrap_or(0);
            let own = started.elapsed().saturating_sub(in_record).as_micros() as u64;
            self.tally.overhead_us.push(publish + own);
        }
        Ok(true)
    }

    async fn watchdog<B: Bus, R: Record>(
        &mut self,
        bus: &B,
        record: &R,
        claims: &mut Claims,
    ) -> BusResult<()> {
        let now = bus.now();
        let held: HashSet<&str> = claims
            .iter()
            .filter(|(_, v)| v.value.state.is_held())
            .map(|(b, _)| b.as_str())
            .collect();
        self.seen.retain(|b, _| held.contains(b.as_str()));
        for (bead, v) in claims.iter_mut() {
            if !v.value.state.is_held() {
                continue;
            }
            let since = self.seen.entry(bead.clone()).or_insert((v.revision, now));
            if since.0 != v.revision {
                *since = (v.revision, now);
                continue;
            }
            if now.saturating_sub(since.1) <= self.lease_ms {
                continue;
            }
            if record.landed(bead).await {
                if let Some(c) = settle(bus, bead, None, ClaimState::Merged).await? {
                    v.value = c;
                }
                continue;
            }
            let mut c = v.value.clone();
            c.epoch = c.epoch(v.revision);
            c.state = ClaimState::Abandoned;
            match bus.update_claim(bead, &c, v.revision).await {
                Ok(revision) => {
                    self.tally.abandoned += 1;
                    note(
                        &self.events,
                        (
                            bead.clone(),
                            format!(
                                "attempt {} on {} abandoned: its lease lapsed",
                                c.attempt, c.worker
                            ),
                        ),
                    );
                    self.seen.remove(bead);
                    *v = Versioned { value: c, revision };
                }
                // Renewed just now: alive after all.
                Err(BusError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn dispatch<B: Bus, R: Record>(
        &mut self,
        bus: &B,
        record: &R,
        claims: &Claims,
        capacity: usize,
    ) -> BusResult<Outlook> {
        let dispatch_of = |b: &str| claims.get(b).map_or(0, |v| v.value.dispatch);
        let held = claims.values().filter(|v| v.value.state.is_held()).count();
        let submitted = claims
            .values()
            .filter(|v| v.value.state == ClaimState::Submitted)
            .count();
        let queued = self
            .published
            .iter()
            .filter(|(b, p)| dispatch_of(b) < p.order.dispatch)
            .count();
        self.resend(bus, claims).await?;
        let mut free = capacity.saturating_sub(held + queued);
        let mut base = None;
        let ready = record.ready().await;
        let mut outlook = Outlook {
            ready: ready.len(),
            in_flight: held + submitted + queued,
        };
        for bead in ready {
            if free == 0 {
                break;
            }
            let dispatch = match claims.get(&bead).map(|v| &v.value) {
                None => 1,
                // Ready again after its failure was recorded: a person reopened it.
                Some(c) if c.state == ClaimState::Failed => c.dispatch + 1,
                Some(c) if c.state != ClaimState::Abandoned => continue,
                Some(c) if c.dispatch >= self.max_dispatch => {
                    record.give_up(&bead, c.dispatch).await;
                    self.tally.given_up += 1;
                    continue;
                }
                Some(c) => c.dispatch + 1,
            };
            if self
                .published
                .get(&bead)
                .is_some_and(|p| p.order.dispatch >= dispatch)
            {
                continue;
            }
            if base.is_none() {
                base = Some(record.base().await);
            }
            let order = Order {
                schema: SCHEMA,
                bead: bead.clone(),
                dispatch,
                base: base.clone().unwrap_or_default(),
                profile: self.profile.clone(),
            };
            let timer = std::time::Instant::now();
            bus.publish_order(&order, &order.msg_id()).await?;
            self.publish_us
                .insert(bead.clone(), timer.elapsed().as_micros() as u64);
            let at = bus.now();
            let bead_id = bead.clone();
            self.published.insert(
                bead,
                Sent {
                    order,
                    at,
                    copies: 0,
                },
            );
            free -= 1;
            outlook.in_flight += 1;
            self.tally.dispatched += 1;
            if dispatch > 1 {
                self.tally.redispatched += 1;
            }
            note(
                &self.events,
                (
                    bead_id,
                    format!("queued for a worker (dispatch {dispatch})"),
                ),
            );
        }
        Ok(outlook)
    }
}

impl Coordinator {
    /// Sends again, under a new message id, each order nobody took within a lease: a server
    /// that crashed right after storing it may have lost it (its disk writes lag), and the
    /// de-duplication of the first id would hide a plain re-publish. A copy is harmless: the
    /// claim decides what a worker does with it.
    async fn resend<B: Bus>(&mut self, bus: &B, claims: &Claims) -> BusResult<()> {
        let now = bus.now();
        for (bead, sent) in self.published.iter_mut() {
            let taken = claims
                .get(bead)
                .is_some_and(|v| v.value.dispatch >= sent.order.dispatch);
            if taken || now.saturating_sub(sent.at) <= self.lease_ms {
                continue;
            }
            let id = format!("{}:copy{}", sent.order.msg_id(), sent.copies + 1);
            bus.publish_order(&sent.order, &id).await?;
            sent.copies += 1;
            sent.at = now;
            self.tally.resent += 1;
            note(
                &self.events,
                (
                    bead.clone(),
                    format!(
                        "dispatch {} sent again: no worker took it within the lease",
                        sent.order.dispatch
                    ),
                ),
            );
        }
        Ok(())
    }
}

/// Tells what happened to a bead ([`Coordinator::events`]).
fn note(events: &Option<std::sync::Arc<crate::event::EventBus>>, (bead, what): (String, String)) {
    if let Some(events) = events {
        use crate::event::{Event, EventKind, Stage};
        events.publish(Event::about(
            bead,
            EventKind::StageChanged {
                stage: Stage::Queued,
                detail: what,
            },
        ));
    }
}

/// Moves bead `bead`'s claim to `state` — only while its epoch is `epoch`, when given —
/// re-reading after a lost compare-and-set. The claim as written, or `None` when there is
/// no such claim (no claim, another epoch, or already final).
async fn settle<B: Bus>(
    bus: &B,
    bead: &str,
    epoch: Option<u64>,
    state: ClaimState,
) -> BusResult<Option<Claim>> {
    for _ in 0..8 {
        let Some(v) = bus.claim(bead).await? else {
            return Ok(None);
        };
        let mut c = v.value.clone();
        c.epoch = c.epoch(v.revision);
        if epoch.is_some_and(|e| e != c.epoch) || c.state.is_final() {
            return Ok(None);
        }
        if c.state == state {
            return Ok(Some(c));
        }
        c.state = state;
        match bus.update_claim(bead, &c, v.revision).await {
            Ok(_) => return Ok(Some(c)),
            Err(BusError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(BusError::Unavailable(format!(
        "the claim of {bead} kept changing"
    )))
}
