//! The orchestrator across machines (DESIGN §10, SCALE.md): the protocol of [`crate::scale`]
//! put to work over NATS. [`serve_worker`] is `loom worker` — slots taking orders, each with a
//! clone of its own ([`slot`]); [`Coordination`] is `loom run --nats` — the coordinator's
//! lease, its steps over the repository ([`record`]), and the end of the run.
//!
//! Timings come from the repository's `.loom/config.yaml` (`scale:`), so every machine working
//! on it uses the same lease.

pub(crate) mod record;
pub(crate) mod slot;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::Config;
use crate::error::Result;
use crate::event::{Event, EventBus, EventKind};
use crate::orchestrator::report::StopReason;
use crate::scale::coordinator::{Coordinator, Outlook};
use crate::scale::nats::{NatsBus, Presence};
use crate::scale::protocol::{Order, SCHEMA};
use crate::scale::worker::{self, Handled, Me};

use self::record::GitRecord;
use self::slot::{Slot, SlotConfig};

/// `scale:` in `.loom/config.yaml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleFile {
    /// The remote both sides reach (a name of the coordinator's repository, or a URL).
    pub remote: Option<String>,
    /// A claim's lease, seconds (default 30).
    pub lease_secs: Option<u64>,
    /// How long the queue waits for an ack or progress before redelivering (default 60).
    pub ack_wait_secs: Option<u64>,
}

/// The effective scale-out timings.
#[derive(Clone, Debug)]
pub struct ScaleSettings {
    pub remote: Option<String>,
    pub lease: Duration,
    pub ack_wait: Duration,
}

impl ScaleSettings {
    pub fn from_config(config: &Config) -> Result<ScaleSettings> {
        let f = config.value::<ScaleFile>("scale")?.unwrap_or_default();
        let lease = Duration::from_secs(f.lease_secs.unwrap_or(30).max(1));
        Ok(ScaleSettings {
            remote: f.remote,
            lease,
            ack_wait: Duration::from_secs(f.ack_wait_secs.unwrap_or(60).max(1)).max(lease),
        })
    }
}

/// Copies `events` to the repository's event stream for front ends on any machine until the
/// bus closes or the run finishes. A worker (`beads_only`) sends only what is about a bead:
/// its slots' inner runs start and finish per order, which is not the run a front end shows.
pub fn forward_events(
    bus: Arc<NatsBus>,
    events: &EventBus,
    beads_only: bool,
) -> tokio::task::JoinHandle<()> {
    let mut rx = events.subscribe();
    tokio::spawn(async move {
        loop {
            let e = match rx.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            let store_news = matches!(
                e.kind,
                EventKind::BeadCreated { .. }
                    | EventKind::BeadChanged { .. }
                    | EventKind::BeadDeleted { .. }
            );
            let run_edge = matches!(
                e.kind,
                EventKind::RunStarted { .. } | EventKind::RunFinished { .. }
            );
            if store_news || (beads_only && (run_edge || e.bead.is_none())) {
                continue;
            }
            let _ = bus.publish_event(&e).await;
            if !beads_only && matches!(e.kind, EventKind::RunFinished { .. }) {
                break;
            }
        }
    })
}

/// How often a worker announces itself, and the coordinator renews its lease.
const HEARTBEAT: Duration = Duration::from_secs(3);

/// A worker (`loom worker`).
pub struct WorkerSetup {
    pub bus: Arc<NatsBus>,
    pub slot: SlotConfig,
    pub id: String,
    pub slots: usize,
    /// Where the slots' clones live.
    pub cache: PathBuf,
    pub lease: Duration,
    pub stop: Arc<AtomicBool>,
}

/// Serves orders on `slots` slots until `stop` is set; `seen` hears what became of each.
pub async fn serve_worker(
    w: WorkerSetup,
    seen: impl Fn(&str, &Order, &Handled) + Send + Sync + Clone + 'static,
    absent: impl Fn(&str),
) {
    let me = Me {
        worker: w.id.clone(),
        lease_ms: w.lease.as_millis() as u64,
    };
    let forwarder = forward_events(Arc::clone(&w.bus), &w.slot.bus, true);
    let mut tasks = Vec::new();
    for n in 1..=w.slots.max(1) {
        let hands = Slot::new(w.slot.clone(), w.cache.join(format!("slot-{n}")));
        let (bus, me, stop, seen) = (
            Arc::clone(&w.bus),
            me.clone(),
            Arc::clone(&w.stop),
            seen.clone(),
        );
        // Attempt names are unique to this process and slot.
        let prefix = format!("{}-{}-s{n}", w.id, std::process::id());
        tasks.push(tokio::spawn(async move {
            worker::serve_slot(&*bus, &hands, &me, &prefix, &stop, |o, h| {
                seen(&me.worker, o, h)
            })
            .await;
        }));
    }
    let presence = Presence {
        schema: SCHEMA,
        worker: w.id.clone(),
        slots: w.slots as u32,
        busy: 0,
    };
    let mut said = None;
    while !w.stop.load(Ordering::SeqCst) {
        let announced = w.bus.announce(&presence).await.err().map(|e| e.to_string());
        if announced != said {
            if let Some(e) = &announced {
                absent(e);
            }
            said = announced;
        }
        let next = Instant::now() + HEARTBEAT;
        while !w.stop.load(Ordering::SeqCst) && Instant::now() < next {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    forwarder.abort();
}

/// The coordinator's run (`loom run --nats`).
pub struct Coordination {
    pub bus: Arc<NatsBus>,
    pub record: GitRecord,
    pub coordinator: Coordinator,
    /// Who holds the lease (`host:pid`) and its revision.
    pub holder: String,
    pub lease_revision: u64,
    /// Slots of a worker running in this process (counted with the announced ones).
    pub local_slots: usize,
    pub deadline: Option<Instant>,
    pub stop: Arc<AtomicBool>,
    /// Where the run's progress goes.
    pub events: Arc<EventBus>,
}

impl Coordination {
    /// Steps until the work is done (nothing ready, nothing under way), the deadline, a stop,
    /// or the lease lost; why it ended.
    pub async fn run(&mut self) -> StopReason {
        let mut renewed = Instant::now();
        let mut last_error: Option<String> = None;
        // Presence changes slowly: the slots are counted once a second, not every tick.
        let mut counted: Option<(Instant, usize)> = None;
        let tick = Duration::from_millis(100);
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return StopReason::Interrupted;
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return StopReason::Timeout;
            }
            if renewed.elapsed() >= HEARTBEAT {
                match self
                    .bus
                    .renew_lease(&self.holder, self.lease_revision)
                    .await
                {
                    Ok(r) => {
                        self.lease_revision = r;
                        renewed = Instant::now();
                    }
                    Err(crate::scale::bus::BusError::Conflict) => return StopReason::Interrupted,
                    Err(_) => {} // the server is away: try again next tick
                }
            }
            let fresh = counted.filter(|(at, _)| at.elapsed() < Duration::from_secs(1));
            let capacity = match fresh {
                Some((_, c)) => Ok(c),
                None => self.capacity().await,
            };
            let (capacity, stepped) = match capacity {
                Ok(c) => {
                    if fresh.is_none() {
                        counted = Some((Instant::now(), c));
                    }
                    (c, self.coordinator.step(&*self.bus, &self.record, c).await)
                }
                Err(e) => (0, Err(e)),
            };
            match stepped {
                Ok(o) if o.idle() && self.bus.reports_left().await == Ok(0) => {
                    return StopReason::Finished;
                }
                Ok(o) if o.ready > 0 && capacity == 0 => {
                    let message = "no worker has announced itself: start `loom worker --nats URL` on a machine with a clone".to_owned();
                    if last_error.as_ref() != Some(&message) {
                        self.events.publish(Event::new(EventKind::Error {
                            message: message.clone(),
                        }));
                        last_error = Some(message);
                    }
                }
                Ok(Outlook { .. }) => last_error = None,
                Err(e) => {
                    // Said once per distinct problem (a server away says it every tick).
                    let message = format!("coordinating: {e}");
                    if last_error.as_ref() != Some(&message) {
                        self.events.publish(Event::new(EventKind::Error {
                            message: message.clone(),
                        }));
                        last_error = Some(message);
                    }
                }
            }
            tokio::time::sleep(tick).await;
        }
    }

    /// Free slots as the workers announce them, plus this process's own.
    async fn capacity(&self) -> crate::scale::bus::BusResult<usize> {
        let announced: usize = self
            .bus
            .workers()
            .await?
            .iter()
            .map(|w| w.slots as usize)
            .sum();
        Ok(announced.max(self.local_slots))
    }
}
