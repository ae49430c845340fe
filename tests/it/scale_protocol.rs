//! The scale-out protocol under faults, fast: the real coordinator and worker code
//! (`loom::scale`) over the in-memory bus, with a model of the repository, driven one bus
//! operation at a time in an order the test chooses. Faults: processes killed at any
//! operation (and restarted), workers cut off past their lease and healed (their late acks
//! and results), time jumps past the ack wait, orders published twice past the
//! de-duplication window. After each run, in calm: every bead merged exactly once (or given
//! up to one decision after its last dispatch), no result of an old epoch merged, no branch
//! pushed twice, queues drained, no claim left held.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};

use loom::scale::bus::Bus;
use loom::scale::coordinator::{Coordinator, Landing, Record, Tally};
use loom::scale::mem::{MemBus, World};
use loom::scale::protocol::{ClaimState, Report};
use loom::scale::worker::{self, Hands, Me, Work};
use proptest::prelude::*;

const ACK_WAIT: u64 = 60_000;
const LEASE: u64 = 30_000;
const WORK_STEPS: u32 = 3;

/// The repository: beads in dependency chains, the target branch, pushed branches.
#[derive(Default)]
struct Repo {
    /// Bead → the beads it waits on.
    deps: Vec<(String, Vec<String>)>,
    /// The target branch: (bead, epoch) per merge.
    target: Vec<(String, u64)>,
    decisions: HashMap<String, u32>,
    pushed: HashSet<String>,
    work_left: HashMap<String, u32>,
    violations: Vec<String>,
}

impl Repo {
    fn landed(&self, bead: &str) -> bool {
        self.target.iter().any(|(b, _)| b == bead)
    }
}

type Shared<T> = Arc<Mutex<T>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct SimRecord {
    bus: MemBus,
    repo: Shared<Repo>,
}

impl Record for SimRecord {
    async fn ready(&self) -> Vec<String> {
        self.bus.turn().await;
        let r = lock(&self.repo);
        r.deps
            .iter()
            .filter(|(b, on)| {
                !r.landed(b) && !r.decisions.contains_key(b) && on.iter().all(|d| r.landed(d))
            })
            .map(|(b, _)| b.clone())
            .collect()
    }

    async fn base(&self) -> String {
        "base".into()
    }

    async fn landed(&self, bead: &str) -> bool {
        self.bus.turn().await;
        lock(&self.repo).landed(bead)
    }

    async fn land(&self, report: &Report) -> Landing {
        self.bus.turn().await;
        let claim = self.bus.world().claim_of(&report.bead);
        let mut r = lock(&self.repo);
        match claim {
            Some((c, rev)) if c.epoch(rev) == report.epoch && c.state == ClaimState::Submitted => {}
            other => r.violations.push(format!(
                "{} merged from epoch {} while its claim is {other:?}",
                report.bead, report.epoch
            )),
        }
        if r.landed(&report.bead) {
            r.violations.push(format!("{} merged twice", report.bead));
        }
        if !r.pushed.contains(&report.branch) {
            r.violations
                .push(format!("{} merged an unpushed branch", report.bead));
        }
        r.target.push((report.bead.clone(), report.epoch));
        Landing::Merged
    }

    async fn failed(&self, report: &Report, _why: &str) {
        lock(&self.repo)
            .violations
            .push(format!("{} failed, and nothing fails here", report.bead));
    }

    async fn give_up(&self, bead: &str, _dispatches: u32) {
        self.bus.turn().await;
        *lock(&self.repo)
            .decisions
            .entry(bead.to_owned())
            .or_default() += 1;
    }
}

struct SimHands {
    bus: MemBus,
    repo: Shared<Repo>,
}

impl Hands for SimHands {
    async fn work(&self, _order: &loom::scale::protocol::Order, _: u64, attempt: &str) -> Work {
        self.bus.turn().await;
        let mut r = lock(&self.repo);
        let left = r.work_left.entry(attempt.to_owned()).or_insert(WORK_STEPS);
        *left = left.saturating_sub(1);
        if *left > 0 {
            return Work::More;
        }
        Work::Done {
            commit: format!("c-{attempt}"),
            ok: true,
            detail: String::new(),
        }
    }

    async fn push(&self, branch: &str, _commit: &str) -> Result<(), String> {
        self.bus.turn().await;
        if self.bus.world().down.contains(&self.who()) {
            return Err("cut off".into());
        }
        let mut r = lock(&self.repo);
        if !r.pushed.insert(branch.to_owned()) {
            r.violations.push(format!("{branch} pushed twice"));
        }
        Ok(())
    }
}

impl SimHands {
    fn who(&self) -> usize {
        self.bus.who()
    }
}

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

struct Actor {
    /// Worker index (`None`: the coordinator).
    worker: Option<usize>,
    task: Option<Task>,
    incarnation: u32,
}

struct Sim {
    world: Arc<Mutex<World>>,
    repo: Shared<Repo>,
    actors: Vec<Actor>,
    tallies: Shared<Vec<Tally>>,
    max_dispatch: u32,
    capacity: usize,
    rng: u64,
    /// What was injected (kind → count), to show the run was not vacuous.
    faults: HashMap<&'static str, u32>,
}

impl Sim {
    fn new(beads: usize, chain: usize, workers: usize, slots: usize, seed: u64) -> Sim {
        let world = World::new(ACK_WAIT);
        lock(&world).gated = true;
        let mut repo = Repo::default();
        for i in 0..beads {
            let on = if chain > 1 && i % chain != 0 {
                vec![format!("b-{}", i - 1)]
            } else {
                Vec::new()
            };
            repo.deps.push((format!("b-{i}"), on));
        }
        let mut sim = Sim {
            world,
            repo: Arc::new(Mutex::new(repo)),
            actors: Vec::new(),
            tallies: Arc::default(),
            max_dispatch: 6,
            capacity: workers * slots,
            rng: seed | 1,
            faults: HashMap::new(),
        };
        sim.actors.push(Actor {
            worker: None,
            task: None,
            incarnation: 0,
        });
        for w in 0..workers {
            for _ in 0..slots {
                sim.actors.push(Actor {
                    worker: Some(w),
                    task: None,
                    incarnation: 0,
                });
            }
        }
        for who in 0..sim.actors.len() {
            sim.start(who);
        }
        sim
    }

    fn rand(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }

    /// (Re)starts process `who` as a new incarnation.
    fn start(&mut self, who: usize) {
        let bus = MemBus::new(&self.world, who);
        let a = &mut self.actors[who];
        a.incarnation += 1;
        a.task = Some(match a.worker {
            None => {
                let tallies = Arc::clone(&self.tallies);
                let record = SimRecord {
                    bus: bus.clone(),
                    repo: Arc::clone(&self.repo),
                };
                let (max, capacity) = (self.max_dispatch, self.capacity);
                let slot = {
                    let mut t = lock(&tallies);
                    t.push(Tally::default());
                    t.len() - 1
                };
                Box::pin(async move {
                    let mut c = Coordinator::new("default", LEASE, max);
                    loop {
                        let _ = c.step(&bus, &record, capacity).await;
                        lock(&tallies)[slot] = c.tally.clone();
                        bus.turn().await;
                    }
                })
            }
            Some(w) => {
                let hands = SimHands {
                    bus: bus.clone(),
                    repo: Arc::clone(&self.repo),
                };
                let me = Me {
                    worker: format!("w{w}"),
                    lease_ms: LEASE,
                };
                let prefix = format!("p{who}.{}", a.incarnation);
                Box::pin(async move {
                    let mut n = 0;
                    loop {
                        match bus.next_order().await {
                            Ok(Some(d)) => {
                                n += 1;
                                let attempt = format!("{prefix}-{n}");
                                worker::handle(&bus, &hands, &me, &attempt, &d).await;
                            }
                            _ => bus.turn().await,
                        }
                    }
                })
            }
        });
    }

    /// Lets process `who` do one operation.
    fn step(&mut self, who: usize) {
        lock(&self.world).grant(who);
        if let Some(task) = self.actors[who].task.as_mut() {
            let mut cx = Context::from_waker(Waker::noop());
            let _ = task.as_mut().poll(&mut cx);
        }
        // An unused grant must not carry over to a later poll.
        lock(&self.world).grant(usize::MAX);
    }

    fn fault(&mut self, kind: &'static str) {
        *self.faults.entry(kind).or_default() += 1;
    }

    fn kill(&mut self, who: usize) {
        self.actors[who].task = None;
        self.start(who);
        self.fault(if who == 0 {
            "kill coordinator"
        } else {
            "kill worker"
        });
    }

    /// Cuts worker `w` off (all its slots), or heals it.
    fn toggle_partition(&mut self, w: usize) {
        let slots: Vec<usize> = (0..self.actors.len())
            .filter(|&i| self.actors[i].worker == Some(w))
            .collect();
        let mut world = lock(&self.world);
        let cut = slots.iter().any(|s| world.down.contains(s));
        for s in slots {
            if cut {
                world.down.remove(&s);
            } else {
                world.down.insert(s);
            }
        }
        drop(world);
        if !cut {
            self.fault("partition");
        }
    }

    /// One random event.
    fn chaos(&mut self) {
        let n = self.actors.len() as u64;
        match self.rand(100) {
            0..=69 => {
                let who = self.rand(n) as usize;
                self.step(who);
            }
            70..=79 => {
                let jump = self.rand(ACK_WAIT * 2);
                lock(&self.world).now += jump;
            }
            80..=84 => {
                let who = 1 + self.rand(n - 1) as usize;
                self.kill(who);
            }
            85..=86 => self.kill(0),
            87..=92 => {
                let workers = self
                    .actors
                    .iter()
                    .filter_map(|a| a.worker)
                    .max()
                    .unwrap_or(0);
                let w = self.rand(workers as u64 + 1) as usize;
                self.toggle_partition(w);
            }
            _ => {
                let log = lock(&self.world).orders.log.clone();
                if !log.is_empty() {
                    let i = self.rand(log.len() as u64) as usize;
                    // Past the de-duplication window: stored again.
                    lock(&self.world).orders.publish(log[i].clone(), None);
                    self.fault("duplicate order");
                }
            }
        }
    }

    fn settled(&self) -> bool {
        let world = lock(&self.world);
        let repo = lock(&self.repo);
        let all = repo.deps.iter().all(|(b, on)| {
            repo.landed(b) || repo.decisions.contains_key(b) || on.iter().any(|d| !repo.landed(d))
        });
        let held = repo.deps.iter().any(|(b, _)| {
            world
                .claim_of(b)
                .is_some_and(|(c, _)| c.state.is_held() || c.state == ClaimState::Submitted)
        });
        all && !held && world.orders.is_empty() && world.reports.is_empty()
    }

    /// Heals everything and runs every process in turn (time moving) until the work is done.
    fn calm(&mut self) {
        lock(&self.world).down.clear();
        for round in 0..20_000 {
            if self.settled() {
                // Let every process finish what it was doing (the tallies are copied then).
                for _ in 0..64 {
                    for who in 0..self.actors.len() {
                        self.step(who);
                    }
                }
                assert!(self.settled(), "unsettled again:\n{}", self.dump());
                return;
            }
            for who in 0..self.actors.len() {
                self.step(who);
            }
            if round % 8 == 7 {
                lock(&self.world).now += ACK_WAIT / 4;
            }
        }
        panic!("not settled after 20,000 calm rounds:\n{}", self.dump());
    }

    fn dump(&self) -> String {
        let world = lock(&self.world);
        let repo = lock(&self.repo);
        let claims: Vec<String> = repo
            .deps
            .iter()
            .map(|(b, _)| format!("{b}: {:?}", world.claim_of(b)))
            .collect();
        format!(
            "target {:?}\ndecisions {:?}\norders {:?}\nreports {}\nclaims\n{}",
            repo.target,
            repo.decisions,
            world.orders.values(),
            world.reports.len(),
            claims.join("\n")
        )
    }

    fn tally(&self) -> Tally {
        let mut sum = Tally::default();
        for t in lock(&self.tallies).iter() {
            sum.dispatched += t.dispatched;
            sum.redispatched += t.redispatched;
            sum.abandoned += t.abandoned;
            sum.merged += t.merged;
            sum.finished_landed += t.finished_landed;
            sum.stale_reports += t.stale_reports;
            sum.given_up += t.given_up;
        }
        sum
    }

    /// The invariants of the module docs.
    fn check(&self) {
        let failures = self.failures();
        assert!(failures.is_empty(), "{failures:?}\n{}", self.dump());
    }

    fn failures(&self) -> Vec<String> {
        let repo = lock(&self.repo);
        let world = lock(&self.world);
        let mut out = repo.violations.clone();
        for (bead, on) in &repo.deps {
            let merges = repo.target.iter().filter(|(b, _)| b == bead).count();
            let decisions = repo.decisions.get(bead).copied().unwrap_or(0);
            // Waiting on a bead given up to a person: rightly not worked.
            let waits = on.iter().any(|d| !repo.landed(d));
            let fine = (merges == 1 && decisions == 0)
                || (merges == 0 && decisions == 1)
                || (merges == 0 && decisions == 0 && waits);
            if !fine {
                out.push(format!("{bead}: merged {merges}×, {decisions} decisions"));
            }
            let last = world
                .claim_of(bead)
                .is_some_and(|(c, _)| c.dispatch >= self.max_dispatch);
            if decisions == 1 && !last {
                out.push(format!("{bead} given up before its last dispatch"));
            }
        }
        if !world.orders.is_empty() || !world.reports.is_empty() {
            out.push("queues not drained".into());
        }
        out
    }
}

fn run(seed: u64, beads: usize, chain: usize, workers: usize, steps: usize) -> Sim {
    let mut sim = Sim::new(beads, chain, workers, 2, seed);
    for _ in 0..steps {
        sim.chaos();
    }
    sim.calm();
    sim.check();
    sim
}

#[test]
fn without_faults_every_bead_is_merged_once_in_dependency_order() {
    let mut sim = Sim::new(12, 4, 3, 2, 7);
    sim.calm();
    sim.check();
    let repo = lock(&sim.repo);
    assert_eq!(repo.target.len(), 12);
    for (i, (b, _)) in repo.target.iter().enumerate() {
        let n: usize = b[2..].parse().unwrap();
        if !n.is_multiple_of(4) {
            let parent = format!("b-{}", n - 1);
            let at = repo.target.iter().position(|(x, _)| *x == parent).unwrap();
            assert!(at < i, "{b} merged before {parent}");
        }
    }
    let t = sim.tally();
    assert_eq!((t.dispatched, t.redispatched, t.merged), (12, 0, 12));
}

/// SCALE.md's stale ack: A's delivery times out, B receives it and terminates it as a copy
/// (A's claim is still there), A — cut off — cannot renew and fences, its late ack removes
/// nothing more; the coordinator's watchdog re-dispatches and the bead lands once.
#[test]
fn a_stale_ack_loses_nothing_the_watchdog_redispatches() {
    let mut sim = Sim::new(1, 1, 2, 1, 3);
    let (coordinator, a, b) = (0, 1, 2);
    // The coordinator publishes; A takes the order and its claim, and works a step.
    for _ in 0..20 {
        if !lock(&sim.world).orders.is_empty() {
            break;
        }
        sim.step(coordinator);
    }
    for _ in 0..20 {
        if lock(&sim.world).claim_of("b-0").is_some() {
            break;
        }
        sim.step(a);
    }
    sim.step(a);
    let claim = lock(&sim.world).claim_of("b-0").expect("A's claim");
    assert_eq!(claim.0.worker, "w0");
    // A is cut off; time passes its ack wait; B gets the redelivery and drops it.
    sim.toggle_partition(0);
    lock(&sim.world).now += ACK_WAIT + 1;
    for _ in 0..3 {
        sim.step(b);
    }
    assert_eq!(lock(&sim.world).orders.redelivered, 1);
    assert!(lock(&sim.world).orders.is_empty(), "B terminated the copy");
    // Nothing is queued now: only the coordinator's watchdog can bring the bead back. It
    // sees A's claim stand still for a lease and abandons it.
    for round in 0..400 {
        let state = lock(&sim.world).claim_of("b-0").map(|(c, _)| c.state);
        if state == Some(ClaimState::Abandoned) {
            break;
        }
        assert!(round < 399, "the watchdog never abandoned A's claim");
        sim.step(coordinator);
        if round % 20 == 19 {
            lock(&sim.world).now += LEASE / 2;
        }
    }
    // Healed, A's renewal loses to the abandonment and it fences; B works the re-dispatch.
    sim.calm();
    sim.check();
    let repo = lock(&sim.repo);
    assert_eq!(repo.target.len(), 1);
    assert_ne!(repo.target[0].1, claim.1, "A's epoch is not the one merged");
}

/// A zombie's late result: A pushes, then stalls (a pause, not a crash) before reporting;
/// its lease lapses, B takes the re-dispatch (a new epoch); A wakes and reports. The
/// coordinator rejects A's result for its epoch and merges B's.
#[test]
fn a_zombies_late_result_is_rejected_and_the_new_epoch_merges() {
    let mut sim = Sim::new(1, 1, 2, 1, 5);
    let (coordinator, a, b) = (0, 1, 2);
    let state = |sim: &Sim| {
        lock(&sim.world)
            .claim_of("b-0")
            .map(|(c, r)| (c.state, c.epoch(r)))
    };
    for _ in 0..20 {
        if !lock(&sim.world).orders.is_empty() {
            break;
        }
        sim.step(coordinator);
    }
    for _ in 0..40 {
        if state(&sim).is_some_and(|(s, _)| s == ClaimState::Pushed) {
            break;
        }
        sim.step(a);
    }
    let (_, old_epoch) = state(&sim).expect("A pushed");
    // A stalls right before publishing its report; the coordinator abandons the claim.
    for round in 0..400 {
        if state(&sim).is_some_and(|(s, _)| s == ClaimState::Abandoned) {
            break;
        }
        assert!(round < 399, "never abandoned");
        sim.step(coordinator);
        if round % 20 == 19 {
            lock(&sim.world).now += LEASE / 2;
        }
    }
    // The coordinator re-dispatches; B takes it under a new epoch.
    for _ in 0..200 {
        if state(&sim).is_some_and(|(s, e)| s == ClaimState::Running && e != old_epoch) {
            break;
        }
        sim.step(coordinator);
        sim.step(b);
    }
    let (_, new_epoch) = state(&sim).expect("B's claim");
    assert_ne!(new_epoch, old_epoch);
    // A wakes: its report goes out with the old epoch.
    for _ in 0..3 {
        sim.step(a);
    }
    assert_eq!(
        lock(&sim.world).reports.len(),
        1,
        "A's late report is queued"
    );
    sim.calm();
    sim.check();
    assert_eq!(lock(&sim.repo).target, [("b-0".to_owned(), new_epoch)]);
    assert!(sim.tally().stale_reports >= 1);
}

/// A poison bead — every worker that takes it dies — is given up to a person after its last
/// dispatch: one decision bead, nothing merged, nothing left queued.
#[test]
fn a_poison_bead_ends_in_one_decision_after_its_last_dispatch() {
    let mut sim = Sim::new(1, 1, 1, 1, 9);
    let (coordinator, worker) = (0, 1);
    let (mut kills, mut last) = (0, None);
    for _ in 0..5_000 {
        if lock(&sim.repo).decisions.contains_key("b-0") {
            break;
        }
        sim.step(coordinator);
        sim.step(worker);
        let taken = lock(&sim.world)
            .claim_of("b-0")
            .filter(|(c, _)| c.state == ClaimState::Running)
            .map(|(c, r)| c.epoch(r));
        if let Some(epoch) = taken
            && last != Some(epoch)
        {
            sim.kill(worker);
            kills += 1;
            last = Some(epoch);
        }
        lock(&sim.world).now += 1_000;
    }
    sim.calm();
    sim.check();
    assert_eq!(lock(&sim.repo).decisions.get("b-0"), Some(&1));
    assert!(lock(&sim.repo).target.is_empty());
    assert_eq!(kills, sim.max_dispatch, "one attempt per dispatch");
    assert_eq!(sim.tally().given_up, 1);
}

/// A worker killed after each of its operations in turn, and the coordinator too: whatever
/// the step, the bead lands exactly once.
#[test]
fn a_kill_at_any_step_of_a_worker_or_the_coordinator_merges_once() {
    for victim in [0, 1] {
        for k in 0..40 {
            let mut sim = Sim::new(2, 2, 2, 1, 11 + k);
            let mut taken = 0;
            'run: for _ in 0..200 {
                for who in 0..sim.actors.len() {
                    sim.step(who);
                    if who == victim {
                        taken += 1;
                        if taken == k {
                            sim.kill(victim);
                            break 'run;
                        }
                    }
                }
            }
            sim.calm();
            sim.check();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn under_random_faults_nothing_is_lost_or_merged_twice(
        seed in any::<u64>(),
        beads in 1usize..10,
        chain in 1usize..4,
        workers in 1usize..4,
        steps in 0usize..1_500,
    ) {
        run(seed, beads, chain, workers, steps);
    }
}

/// Over many seeds, each kind of fault happened and caused what it should (no vacuous pass).
#[test]
fn the_random_runs_inject_every_fault_and_see_redeliveries() {
    let mut faults: HashMap<&'static str, u32> = HashMap::new();
    let (mut redelivered, mut stale, mut redispatched, mut given_up) = (0, 0, 0, 0);
    for seed in 0..40u64 {
        let sim = run(seed * 7919 + 1, 8, 3, 3, 1_200);
        for (k, v) in &sim.faults {
            *faults.entry(k).or_default() += v;
        }
        let w = lock(&sim.world);
        redelivered += w.orders.redelivered;
        stale += w.orders.stale_acks;
        drop(w);
        let t = sim.tally();
        redispatched += t.redispatched;
        given_up += t.given_up;
    }
    for kind in [
        "kill worker",
        "kill coordinator",
        "partition",
        "duplicate order",
    ] {
        assert!(
            faults.get(kind).copied().unwrap_or(0) > 10,
            "{kind}: {faults:?}"
        );
    }
    assert!(
        redelivered > 0 && stale > 0 && redispatched > 0,
        "{redelivered} {stale} {redispatched}"
    );
    eprintln!(
        "faults {faults:?}; redelivered {redelivered}, stale acks {stale}, re-dispatched {redispatched}, given up {given_up}"
    );
}
