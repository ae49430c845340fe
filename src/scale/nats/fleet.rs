//! What the fleet needs of the server beyond the protocol's queues and claims: workers'
//! presence (their slots, a bucket whose values lapse), the coordinator's lease (one per
//! repository across machines), and the events front ends replay and follow.

use std::time::Duration;

use async_nats::jetstream::{consumer, kv};
use futures_util::StreamExt;

use super::{NatsBus, keys, unavailable};
use crate::event::{Event, EventKind};
use crate::scale::bus::{BusError, BusResult};
use crate::scale::protocol;

/// The coordinators' leases, one key per repository.
pub const LEASE_BUCKET: &str = "LOOM_COORD";
/// A coordinator's lease lapses this long after its last renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(20);
/// A worker's presence lapses this long after its last announcement.
pub const PRESENCE_TTL: Duration = Duration::from_secs(15);

/// Events kept per subject (a bead's lifecycle, or a bead's log): the oldest go first.
pub const EVENTS_PER_SUBJECT: i64 = 5000;
/// How long events are kept.
pub const EVENTS_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Whether an event is a line of a bead's log (streamed text, tools, tests, usage) rather
/// than a step of its lifecycle.
fn is_log(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::ModelText { .. }
            | EventKind::ToolCall { .. }
            | EventKind::ToolResult { .. }
            | EventKind::AgentNotice { .. }
            | EventKind::TestOutput { .. }
            | EventKind::Usage { .. }
    )
}

/// A bead id as one subject token (subjects split on dots; wildcards are not ids).
fn token(id: &str) -> String {
    id.chars()
        .map(|c| match c {
            '.' | '*' | '>' | ' ' | '\t' => '_',
            c => c,
        })
        .collect()
}

/// What a worker announces every few seconds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Presence {
    pub schema: u32,
    pub worker: String,
    pub slots: u32,
    pub busy: u32,
}

/// Who holds a repository's coordinator lease.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    pub schema: u32,
    /// `host:pid`.
    pub holder: String,
}

impl NatsBus {
    /// Announces this worker (renew well inside [`PRESENCE_TTL`]).
    pub async fn announce(&self, p: &Presence) -> BusResult<()> {
        self.bounded("announcing the worker", async {
            self.workers
                .put(&p.worker, protocol::encode(p).into())
                .await
                .map(|_| ())
                .map_err(|e| unavailable("announcing the worker", e))
        })
        .await
    }

    /// The workers announced lately.
    pub async fn workers(&self) -> BusResult<Vec<Presence>> {
        self.bounded("listing workers", async {
            let names = keys(&self.workers, "listing workers").await?;
            let mut out = Vec::new();
            for name in names {
                let v = self
                    .workers
                    .get(&name)
                    .await
                    .map_err(|e| unavailable("listing workers", e))?;
                if let Some(p) = v.and_then(|v| protocol::decode::<Presence>(&v).ok()) {
                    out.push(p);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Takes the repository's coordinator lease for `holder`: the lease's revision, or who
    /// holds it now. A lease whose holder `gone` says is dead (a process of this machine
    /// that no longer runs) is taken over at once instead of waiting for it to lapse.
    pub async fn take_lease(
        &self,
        holder: &str,
        gone: impl Fn(&str) -> bool,
    ) -> Result<u64, String> {
        let value = protocol::encode(&Holder {
            schema: protocol::SCHEMA,
            holder: holder.to_owned(),
        });
        match self.leases.create(&self.repo, value.clone().into()).await {
            Ok(r) => return Ok(r),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot take the coordinator lease: {e}")),
        }
        let entry = self
            .leases
            .entry(&self.repo)
            .await
            .map_err(|e| format!("cannot read the coordinator lease: {e}"))?;
        let (who, revision) = entry
            .map(|e| {
                let who = protocol::decode::<Holder>(&e.value)
                    .map(|h| h.holder)
                    .unwrap_or_else(|_| "another process".into());
                (who, e.revision)
            })
            .unwrap_or_else(|| ("another process".into(), 0));
        if gone(&who) {
            return self
                .leases
                .update(&self.repo, value.into(), revision)
                .await
                .map_err(|e| format!("cannot take over the coordinator lease of {who}: {e}"));
        }
        Err(format!(
            "{who} coordinates this repository already (its lease lapses {} s after it stops renewing it)",
            LEASE_TTL.as_secs()
        ))
    }

    /// Renews the lease taken at `revision`; the new revision. `Conflict`: someone else
    /// holds it now (the lease lapsed).
    pub async fn renew_lease(&self, holder: &str, revision: u64) -> BusResult<u64> {
        let value = protocol::encode(&Holder {
            schema: protocol::SCHEMA,
            holder: holder.to_owned(),
        });
        self.bounded("renewing the coordinator lease", async {
            self.leases
                .update(&self.repo, value.into(), revision)
                .await
                .map_err(|e| match e.kind() {
                    kv::UpdateErrorKind::WrongLastRevision => BusError::Conflict,
                    _ => unavailable("renewing the coordinator lease", e),
                })
        })
        .await
    }

    /// Gives the lease up (a clean stop), so the next coordinator need not wait.
    pub async fn release_lease(&self, revision: u64) {
        let _ = self
            .bounded("releasing the lease", async {
                self.leases
                    .purge_expect_revision(&self.repo, Some(revision))
                    .await
                    .map_err(|e| unavailable("releasing the lease", e))
            })
            .await;
    }
}

impl NatsBus {
    /// Publishes an event for front ends (best effort: a lost event is a gap in a view,
    /// never in the work): a bead's log lines on `loom.<repo>.log.<bead>`, everything else
    /// on `loom.<repo>.evt.<bead>` (`run` for events about no bead).
    pub async fn publish_event(&self, e: &Event) -> BusResult<()> {
        let bead = e.bead.as_deref().map(token).unwrap_or_else(|| "run".into());
        let lane = if is_log(&e.kind) { "log" } else { "evt" };
        let subject = format!("loom.{}.{lane}.{bead}", self.repo);
        let payload = serde_json::to_vec(e).map_err(|e| unavailable("an event", e))?;
        self.bounded("publishing an event", async {
            self.js
                .publish(subject, payload.into())
                .await
                .map(|_| ())
                .map_err(|e| unavailable("publishing an event", e))
        })
        .await
    }

    /// Replays every event kept for the repository, oldest first, then follows new ones,
    /// handing each to `each` until it returns `false` or the connection ends.
    pub async fn follow_events(&self, mut each: impl FnMut(Event) -> bool) -> Result<(), String> {
        let consumer = self
            .events
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("cannot read the events: {e}"))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| format!("cannot read the events: {e}"))?;
        while let Some(m) = messages.next().await {
            let m = m.map_err(|e| format!("reading the events: {e}"))?;
            if let Ok(e) = serde_json::from_slice::<Event>(&m.payload)
                && !each(e)
            {
                break;
            }
        }
        Ok(())
    }

    /// Reports stored and not yet acknowledged (a coordinator does not end while one is
    /// left: it may be a redelivery of a report a crashed coordinator never acknowledged).
    pub async fn reports_left(&self) -> BusResult<u64> {
        self.bounded("counting reports", async {
            let mut stream = self
                .js
                .get_stream(&self.result_stream)
                .await
                .map_err(|e| unavailable("counting reports", e))?;
            let info = stream
                .info()
                .await
                .map_err(|e| unavailable("counting reports", e))?;
            Ok(info.state.messages)
        })
        .await
    }
}
