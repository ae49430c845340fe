//! A worker's side of the protocol, for one order (SCALE.md, "Protocol"): read the claim,
//! take it by compare-and-set (the new revision is the epoch), work while renewing the lease
//! and sending progress, push the attempt's branch, report, and acknowledge the order only
//! once the report is stored and the claim says so. Any failure to renew, push or report
//! **fences** the attempt: it stops and does not acknowledge; the coordinator's watchdog
//! re-dispatches what it leaves behind.
//!
//! The work itself (an agent session and the project's tests in a worktree) is behind
//! [`Hands`], so the same sequence runs over NATS and over the in-memory bus of the tests.

use std::future::Future;

use super::bus::{Bus, BusError, Delivery};
use super::protocol::{self, Claim, ClaimState, Order, Report, SCHEMA, Take};

/// How the work is done (the real worker: an agent session and the verify step).
pub trait Hands: Send + Sync {
    /// Goes on with the order's work for a while (a renewal period at most).
    fn work(&self, order: &Order, epoch: u64, attempt: &str) -> impl Future<Output = Work> + Send;
    /// Pushes `commit` as the attempt's branch ([`protocol::branch`]); never forced.
    fn push(&self, branch: &str, commit: &str) -> impl Future<Output = Result<(), String>> + Send;
}

/// Where the work is after a [`Hands::work`] call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Work {
    More,
    /// Not the bead's fault and not finished (the model endpoint is down, the run stopped):
    /// the attempt ends without a report and the watchdog re-dispatches the bead.
    Abort(String),
    Done {
        commit: String,
        ok: bool,
        detail: String,
    },
}

/// Who this worker is and how it paces its lease.
#[derive(Clone, Debug)]
pub struct Me {
    pub worker: String,
    /// A claim's lease, milliseconds: renewed at every work step.
    pub lease_ms: u64,
}

/// What became of an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handled {
    /// Done or failed already: acknowledged, nothing done.
    Skipped,
    /// A copy of an order someone holds, or stale: terminated.
    Dropped,
    /// Stopped without acknowledging (the reason); the watchdog takes it from here.
    Fenced(String),
    /// Worked, reported and acknowledged.
    Reported { epoch: u64, ok: bool },
}

/// Carries out one delivered order (module docs). `attempt` is unique to this attempt.
pub async fn handle<B: Bus, H: Hands>(
    bus: &B,
    hands: &H,
    me: &Me,
    attempt: &str,
    delivery: &Delivery<Order>,
) -> Handled {
    match run(bus, hands, me, attempt, delivery).await {
        Ok(h) => h,
        Err(e) => Handled::Fenced(e),
    }
}

async fn run<B: Bus, H: Hands>(
    bus: &B,
    hands: &H,
    me: &Me,
    attempt: &str,
    d: &Delivery<Order>,
) -> Result<Handled, String> {
    let order = &d.value;
    let (mut claim, mut revision) = match take(bus, me, attempt, d).await? {
        Taken::Skipped => return Ok(Handled::Skipped),
        Taken::Dropped => return Ok(Handled::Dropped),
        Taken::Held(claim, revision) => (claim, revision),
    };
    let epoch = claim.epoch;
    let mut renewed = bus.now();
    let (commit, ok, detail) = loop {
        match hands.work(order, epoch, attempt).await {
            Work::Done { commit, ok, detail } => break (commit, ok, detail),
            Work::Abort(why) => {
                // Hand it back now rather than after a lease: the coordinator re-dispatches.
                claim.state = ClaimState::Abandoned;
                let _ = bus.update_claim(&order.bead, &claim, revision).await;
                let _ = bus.term(d.token).await;
                return Err(why);
            }
            Work::More => {
                // Partitioned for longer than a lease: someone else may hold it by now.
                if bus.now().saturating_sub(renewed) > me.lease_ms {
                    return Err("the lease lapsed before it could be renewed".into());
                }
                claim.lease_until = bus.now() + me.lease_ms;
                revision = bus
                    .update_claim(&order.bead, &claim, revision)
                    .await
                    .map_err(|e| format!("renewing the claim: {e}"))?;
                bus.progress(d.token)
                    .await
                    .map_err(|e| format!("progress: {e}"))?;
                renewed = bus.now();
            }
        }
    };
    let branch = if ok {
        let branch = protocol::branch(&order.bead, epoch);
        hands.push(&branch, &commit).await?;
        super::failpoint("worker:after-push");
        if bus.now().saturating_sub(renewed) > me.lease_ms {
            return Err("the lease lapsed while pushing".into());
        }
        claim.state = ClaimState::Pushed;
        revision = bus
            .update_claim(&order.bead, &claim, revision)
            .await
            .map_err(|e| format!("marking the claim pushed: {e}"))?;
        branch
    } else {
        String::new()
    };
    let report = Report {
        schema: SCHEMA,
        bead: order.bead.clone(),
        epoch,
        attempt: attempt.to_owned(),
        worker: me.worker.clone(),
        branch,
        commit,
        ok,
        detail,
    };
    bus.publish_report(&report)
        .await
        .map_err(|e| format!("publishing the report: {e}"))?;
    claim.state = ClaimState::Submitted;
    match bus.update_claim(&order.bead, &claim, revision).await {
        Ok(_) => {}
        // The coordinator got to the report first (it marks the claim itself).
        Err(BusError::Conflict) if settled(bus, &order.bead, epoch).await => {}
        Err(e) => return Err(format!("marking the claim submitted: {e}")),
    }
    super::failpoint("worker:before-ack");
    bus.ack(d.token)
        .await
        .map_err(|e| format!("acknowledging: {e}"))?;
    Ok(Handled::Reported { epoch, ok })
}

/// What reading the claim made of an order.
enum Taken {
    /// Acknowledged: done already.
    Skipped,
    /// Terminated: a duplicate or stale.
    Dropped,
    /// Taken: the claim (its epoch set) and its revision.
    Held(Claim, u64),
}

/// Reads the claim and applies [`protocol::take`].
async fn take<B: Bus>(
    bus: &B,
    me: &Me,
    attempt: &str,
    d: &Delivery<Order>,
) -> Result<Taken, String> {
    let order = &d.value;
    let read = |e: BusError| format!("reading the claim: {e}");
    // A lost race re-reads once: whoever won decides what this copy is.
    for _ in 0..2 {
        let current = bus.claim(&order.bead).await.map_err(read)?;
        let verdict = protocol::take(order, current.as_ref().map(|v| (&v.value, v.revision)));
        let replace = match verdict {
            Take::Skip => {
                bus.ack(d.token)
                    .await
                    .map_err(|e| format!("acknowledging: {e}"))?;
                return Ok(Taken::Skipped);
            }
            Take::Drop => {
                bus.term(d.token)
                    .await
                    .map_err(|e| format!("terminating: {e}"))?;
                return Ok(Taken::Dropped);
            }
            Take::Claim { replace } => replace,
        };
        let mut claim = Claim {
            schema: SCHEMA,
            epoch: 0,
            dispatch: order.dispatch,
            attempt: attempt.to_owned(),
            worker: me.worker.clone(),
            state: ClaimState::Running,
            lease_until: bus.now() + me.lease_ms,
            base: order.base.clone(),
        };
        let written = match replace {
            None => bus.create_claim(&order.bead, &claim).await,
            Some(r) => bus.update_claim(&order.bead, &claim, r).await,
        };
        match written {
            Ok(revision) => {
                claim.epoch = revision;
                return Ok(Taken::Held(claim, revision));
            }
            Err(BusError::Conflict) => continue,
            Err(e) => return Err(format!("taking the claim: {e}")),
        }
    }
    // Still losing: leave it to a redelivery.
    Err("the claim kept changing".into())
}

/// Whether the coordinator has already taken the report of `epoch` in hand.
async fn settled<B: Bus>(bus: &B, bead: &str, epoch: u64) -> bool {
    match bus.claim(bead).await {
        Ok(Some(v)) => {
            v.value.epoch(v.revision) == epoch
                && matches!(
                    v.value.state,
                    ClaimState::Submitted | ClaimState::Merged | ClaimState::Failed
                )
        }
        _ => false,
    }
}

/// One slot of a worker: takes orders one at a time until `stop` is set, each attempt named
/// `<prefix>-<n>` (`prefix` unique to this process and slot). A bus that is unavailable is
/// retried after a pause; what an order became is passed to `seen`.
pub async fn serve_slot<B: Bus, H: Hands>(
    bus: &B,
    hands: &H,
    me: &Me,
    prefix: &str,
    stop: &std::sync::atomic::AtomicBool,
    mut seen: impl FnMut(&Order, &Handled) + Send,
) {
    use std::sync::atomic::Ordering;
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        match bus.next_order().await {
            Ok(Some(d)) => {
                n += 1;
                let attempt = format!("{prefix}-{n}");
                let handled = handle(bus, hands, me, &attempt, &d).await;
                seen(&d.value, &handled);
            }
            Ok(None) => {}
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}
