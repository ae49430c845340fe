//! Step 9's faults (the cast and the invariants are in `chaos.rs`): a worker killed
//! mid-bead, a worker partitioned past its lease, the server stalled then killed, the
//! coordinator crashing around its merge, an order published twice, a hostile result, and a
//! seeded mix of faults over three workers and twelve chained beads — plus the scaling
//! benchmark.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::chaos::{CODER, Fleet, REVIEWER, count, runtime, script_all, tally};
use crate::llm_server::{Fault, Reply};
use crate::orchestrate::call;

#[test]
fn a_worker_killed_mid_bead_is_replaced_and_the_bead_merged_once() {
    let Some((mut fleet, ids)) = Fleet::new(3, 3) else {
        return;
    };
    script_all(&fleet, &ids, Duration::from_millis(700));
    let w1 = fleet.worker(1);
    let coordinator = fleet.coordinator(&[]);
    // The worker's first bead is mid-way (its agent is talking to the model): kill it.
    fleet.wait_for_an_agent();
    let mut child = fleet.workers[w1].child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    fleet.worker(2);
    let (code, events, stderr) = fleet.finish(coordinator, Duration::from_secs(120));
    assert_eq!(code, 0, "{stderr}\n{}", fleet.worker_log(1));
    fleet.assert_each_merged_once(&ids);
    let t = tally(&events);
    assert!(
        count(&t, "abandoned") >= 1 && count(&t, "redispatched") >= 1,
        "no re-dispatch: {t}"
    );
    fleet.queues_drain();
    fleet.assert_no_orphans(w1);
}

#[test]
fn a_partitioned_worker_fences_itself_and_the_new_epoch_is_merged() {
    let Some((mut fleet, ids)) = Fleet::new(2, 3) else {
        return;
    };
    script_all(&fleet, &ids, Duration::from_millis(1500));
    let proxy = crate::tcp_proxy::Proxy::start(fleet.nats.port());
    let w1 = fleet.worker_via(1, &proxy.url());
    let coordinator = fleet.coordinator(&[]);
    fleet.wait_for_an_agent();
    proxy.blackhole();
    fleet.worker(1);
    // Cut off past its lease, the worker stops without a result (it fences itself).
    fleet.wait_for_log(w1, "stopped without a result", Duration::from_secs(60));
    proxy.heal();
    let (code, events, stderr) = fleet.finish(coordinator, Duration::from_secs(120));
    assert_eq!(code, 0, "{stderr}\n{}", fleet.worker_log(w1));
    fleet.assert_each_merged_once(&ids);
    let t = tally(&events);
    assert!(count(&t, "abandoned") >= 1, "no re-dispatch: {t}");
    // The zombie never reported its old epoch (it fenced), so nothing stale reached a merge.
    let log = fleet.repo.git(&["log", "--format=%B", "main"]);
    assert!(
        !log.contains("Loom-Worker: w1\n") || count(&t, "merged") == 2,
        "{log}"
    );
    fleet.queues_drain();
}

#[test]
fn the_server_stalled_then_killed_and_restarted_loses_nothing() {
    let Some((mut fleet, ids)) = Fleet::new(4, 3) else {
        return;
    };
    script_all(&fleet, &ids, Duration::from_millis(400));
    fleet.worker(2);
    fleet.worker(1);
    let coordinator = fleet.coordinator(&[]);
    fleet.wait_for_an_agent();
    fleet.nats.signal("STOP");
    // Stalled past the operations' timeout (5 s): leases and progress fail meanwhile.
    std::thread::sleep(Duration::from_secs(6));
    fleet.nats.signal("CONT");
    fleet.nats.kill_and_restart();
    let (code, events, stderr) = fleet.finish(coordinator, Duration::from_secs(180));
    assert_eq!(
        code,
        0,
        "{stderr}\n{}\n{}",
        fleet.worker_log(0),
        fleet.worker_log(1)
    );
    fleet.assert_each_merged_once(&ids);
    assert_eq!(count(&tally(&events), "merged"), 4);
    fleet.queues_drain();
}

/// The coordinator dies at `failpoint` during its first landing; a new one finishes the
/// landing from git (the report comes back) and merges nothing twice.
fn coordinator_crash(failpoint: &str) {
    let Some((mut fleet, ids)) = Fleet::new(2, 3) else {
        return;
    };
    script_all(&fleet, &ids, Duration::ZERO);
    fleet.worker(1);
    let first = fleet.coordinator_with(&[], Some(failpoint));
    let (code, _, stderr) = fleet.finish(first, Duration::from_secs(120));
    assert_eq!(code, 86, "the failpoint did not fire: {stderr}");
    let second = fleet.coordinator(&[]);
    let (code, events, stderr) = fleet.finish(second, Duration::from_secs(120));
    assert_eq!(code, 0, "{stderr}\n{}", fleet.worker_log(0));
    fleet.assert_each_merged_once(&ids);
    let t = tally(&events);
    assert!(
        count(&t, "finished_landed") >= 1,
        "the report was not redelivered: {t}"
    );
    fleet.queues_drain();
}

#[test]
fn a_coordinator_killed_right_after_the_ref_update_merges_nothing_twice() {
    coordinator_crash("coordinator:after-advance");
}

#[test]
fn a_coordinator_killed_right_before_its_ack_merges_nothing_twice() {
    coordinator_crash("coordinator:before-ack");
}

#[test]
fn the_same_order_published_twice_is_worked_once() {
    let Some((mut fleet, ids)) = Fleet::new(2, 3) else {
        return;
    };
    script_all(&fleet, &ids, Duration::from_millis(800));
    // One slot, slow: while its first order is worked, publish a second copy of it under
    // another message id, so the queue's de-duplication does not hide it.
    fleet.worker(1);
    let coordinator = fleet.coordinator(&[]);
    let repo_id = fleet.repo_id();
    let url = fleet.nats.url();
    let rt = runtime();
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
        let end = Instant::now() + Duration::from_secs(30);
        let stream = format!("LOOM_WORK_{repo_id}");
        let subject = format!("loom.{repo_id}.work.agent");
        loop {
            if let Ok(s) = js.get_stream(&stream).await
                && let Ok(m) = s.get_last_raw_message_by_subject(&subject).await
            {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", "a-copy");
                js.publish_with_headers(m.subject.to_string(), headers, m.payload.clone())
                    .await
                    .unwrap()
                    .await
                    .unwrap();
                break;
            }
            assert!(Instant::now() < end, "the coordinator published no orders");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let (code, events, stderr) = fleet.finish(coordinator, Duration::from_secs(120));
    assert_eq!(code, 0, "{stderr}\n{}", fleet.worker_log(0));
    fleet.assert_each_merged_once(&ids);
    assert_eq!(count(&tally(&events), "merged"), 2);
    fleet.queues_drain();
    let log = fleet.worker_log(0);
    assert!(
        log.contains("dropped") || log.contains("done already"),
        "no copy reached the worker:\n{log}"
    );
}

/// Scripts bead `id` for the scaling benchmark: four coder turns (three files, then done)
/// and a reviewer turn, each `turn` long.
fn script_five_turns(fleet: &Fleet, id: &str, n: usize, turn: Duration) {
    let me = format!("Bead {id}:");
    let slow = |r: Reply| r.with(Fault::SlowFirstByte(turn));
    let file = |x: &str| format!("f-{n}{x}.txt");
    let write = |x: &str| {
        slow(call(
            "write_file",
            json!({"path": file(x), "content": "ok\n"}),
        ))
    };
    let after = |x: &str| format!("wrote {}", file(x));
    fleet.llm.always(
        &[&me, CODER, &after("-c")],
        slow(call("done", json!({"summary": "Wrote the files."}))),
    );
    fleet.llm.always(&[&me, CODER, &after("-b")], write("-c"));
    fleet.llm.always(&[&me, CODER, &after("")], write("-b"));
    fleet.llm.always(&[&me, CODER], write(""));
    fleet.llm.always(
        &[&me, REVIEWER],
        slow(call("approve", json!({"summary": "Looks right."}))),
    );
}

/// One scaling run: `workers` workers of `slots` slots on 24 beads of five 2 s turns and a
/// `sleep 1` test. Beads per minute, and the coordinator's own time per bead (median, ms).
fn scaling_run(workers: usize, slots: usize) -> (f64, f64) {
    let Some((mut fleet, ids)) = Fleet::new(24, 10) else {
        panic!("nats-server is needed for the benchmark");
    };
    fleet.repo.write(
        ".loom/config.yaml",
        "test_command: sleep 1\nscale:\n  lease_secs: 10\n",
    );
    fleet.repo.git(&["commit", "-qam", "sleep 1 as the tests"]);
    fleet.repo.git(&["push", "-q", "origin", "main"]);
    for (n, id) in ids.iter().enumerate() {
        script_five_turns(&fleet, id, n, Duration::from_secs(2));
    }
    for _ in 0..workers {
        fleet.worker(slots);
    }
    // The workers announce themselves before the clock starts.
    std::thread::sleep(Duration::from_secs(1));
    let started = Instant::now();
    let coordinator = fleet.coordinator(&[]);
    let (code, events, stderr) = fleet.finish(coordinator, Duration::from_secs(900));
    let took = started.elapsed();
    assert_eq!(code, 0, "{stderr}");
    let t = tally(&events);
    assert_eq!(count(&t, "merged"), 24, "{t}");
    let mut overhead: Vec<u64> = t["overhead_us"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    overhead.sort_unstable();
    let median = overhead[overhead.len() / 2] as f64 / 1000.0;
    (24.0 / took.as_secs_f64() * 60.0, median)
}

/// The step 9 scaling figure (docs/PERFORMANCE.md): run with
/// `cargo test --release --test it bench_scaling -- --ignored --nocapture`.
#[test]
#[ignore = "a benchmark: about four minutes"]
fn bench_scaling_one_worker_against_three() {
    let (one, one_overhead) = scaling_run(1, 2);
    let (three, three_overhead) = scaling_run(3, 2);
    eprintln!(
        "1 worker x 2 slots: {one:.1} beads/min (coordinator {one_overhead:.1} ms/bead median)\n\
         3 workers x 2 slots: {three:.1} beads/min (coordinator {three_overhead:.1} ms/bead median)\n\
         speed-up {:.2}x",
        three / one
    );
}

/// SECURITY.md promise 12: a worker's result is untrusted input. An attempt that rewrites
/// the test script (a protected path) is not merged — one decision bead asks a person — and
/// whatever a branch does under `.beads/` never reaches the target: the merge commit of the
/// other bead changes its own bead file and its code, nothing else.
#[test]
fn a_result_touching_protected_paths_is_refused_and_branch_beads_never_land() {
    let Some((mut fleet, ids)) = Fleet::new(2, 3) else {
        return;
    };
    let me = format!("Bead {}:", ids[0]);
    fleet.llm.always(
        &[&me, CODER, "wrote test.sh"],
        call("done", json!({"summary": "Tests pass now."})),
    );
    fleet.llm.always(
        &[&me, CODER],
        call(
            "write_file",
            json!({"path": "test.sh", "content": "#!/bin/sh\nexit 0\n"}),
        ),
    );
    fleet.llm.always(
        &[&me, REVIEWER],
        call("approve", json!({"summary": "Fine."})),
    );
    fleet.script(&ids[1], 1, Duration::ZERO);
    fleet.worker(2);
    let coordinator = fleet.coordinator(&[]);
    let (code, events, stderr) = fleet.finish(coordinator, Duration::from_secs(120));
    assert_eq!(
        code,
        3,
        "a decision waits: {stderr}\n{}",
        fleet.worker_log(0)
    );
    let t = tally(&events);
    assert_eq!((count(&t, "merged"), count(&t, "failed")), (1, 1), "{t}");
    let script = fleet.repo.read_string("test.sh");
    assert!(
        script.contains("grep -q"),
        "the test script was replaced: {script}"
    );
    let bead = fleet.repo.json(&["show", &ids[0]]);
    let bead = if bead.is_array() {
        bead[0].clone()
    } else {
        bead
    };
    assert_ne!(bead["status"], "closed", "{bead}");
    assert!(
        stderr.contains("protected paths"),
        "the refusal says why: {stderr}"
    );
    // The merged bead's commit: its code and its own bead file, nothing else.
    let log = fleet.repo.git(&[
        "log",
        "--format=%H %s",
        "-1",
        "--grep",
        "Loom-Event: merged",
        "main",
    ]);
    let hash = log.split_whitespace().next().unwrap();
    let files = fleet.repo.git(&["show", "--name-only", "--format=", hash]);
    let files: Vec<&str> = files.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        files,
        vec![format!(".beads/beads/{}.yaml", ids[1]).as_str(), "f-1.txt"],
        "{files:?}"
    );
}

/// The acceptance's cast: a coordinator, three workers of two slots each, twelve beads in
/// dependency chains (four chains of three), and faults mixed from a seed — a worker killed
/// mid-bead and replaced, a link reset under another, the server stalled — chosen and timed
/// by `seed`. Every bead lands once, in chain order.
fn mixed_faults(seed: u64) {
    let Some((mut fleet, ids)) = Fleet::new(12, 3) else {
        return;
    };
    for chain in ids.chunks(3) {
        fleet.repo.ok(&["dep", "add", &chain[1], &chain[0]]);
        fleet.repo.ok(&["dep", "add", &chain[2], &chain[1]]);
    }
    fleet.repo.git(&["push", "-q", "origin", "main"]);
    script_all(&fleet, &ids, Duration::from_millis(300));
    let proxy = crate::tcp_proxy::Proxy::start(fleet.nats.port());
    let w1 = fleet.worker(2);
    fleet.worker_via(2, &proxy.url());
    fleet.worker(2);
    let coordinator = fleet.coordinator(&[]);
    // A small generator: the same seed, the same faults in the same order.
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    fleet.wait_for_an_agent();
    let mut killed = None;
    let mut faults = vec!["kill", "reset", "stall"];
    let mut order = Vec::new();
    while !faults.is_empty() {
        order.push(faults.remove(next(faults.len() as u64) as usize));
    }
    for fault in &order {
        std::thread::sleep(Duration::from_millis(200 + next(1500)));
        match *fault {
            "kill" => {
                // A worker holding a bead, so the kill provably costs an attempt.
                let busy = fleet.busy_worker();
                killed = Some(busy);
                if let Some(mut c) = fleet.workers[busy].child.take() {
                    c.kill().unwrap();
                    c.wait().unwrap();
                }
                fleet.worker(2);
            }
            "reset" => proxy.reset(),
            _ => {
                fleet.nats.signal("STOP");
                std::thread::sleep(Duration::from_millis(500 + next(2500)));
                fleet.nats.signal("CONT");
            }
        }
    }
    let (code, events, stderr) = fleet.finish(coordinator, Duration::from_secs(240));
    assert_eq!(code, 0, "seed {seed}, faults {order:?}: {stderr}");
    fleet.assert_each_merged_once(&ids);
    let t = tally(&events);
    assert_eq!(count(&t, "merged"), 12, "seed {seed}: {t}");
    assert!(count(&t, "abandoned") >= 1, "the kill cost no attempt: {t}");
    // The killed worker's bead (if it held one) came back through the watchdog; a bead
    // never landed before the one it waits on.
    let log = fleet
        .repo
        .git(&["log", "--reverse", "--format=%B%x01", "main"]);
    let landed: Vec<&str> = log
        .split('\u{1}')
        .filter(|c| c.contains("Loom-Event: merged"))
        .filter_map(|c| c.lines().find_map(|l| l.strip_prefix("Loom-Bead: ")))
        .collect();
    for chain in ids.chunks(3) {
        let at: Vec<usize> = chain
            .iter()
            .map(|id| landed.iter().position(|l| l == id).unwrap())
            .collect();
        assert!(
            at[0] < at[1] && at[1] < at[2],
            "seed {seed}: chain {chain:?} landed as {at:?}"
        );
    }
    fleet.queues_drain();
    fleet.assert_no_orphans(killed.unwrap_or(w1));
}

#[test]
fn three_workers_twelve_chained_beads_and_a_seeded_mix_of_faults() {
    let seed = std::env::var("LOOM_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    mixed_faults(seed);
}

/// SECURITY.md promise 12, the report itself: anyone who may publish on the server can send
/// one, so a report naming another branch than its epoch's (here a refspec that would move
/// the target) is refused before git sees it — one decision, nothing fetched or merged.
#[test]
fn a_forged_report_never_reaches_git() {
    use loom::scale::bus::Bus;
    use loom::scale::nats::{NatsBus, NatsOptions};
    use loom::scale::protocol::{Claim, ClaimState, Report, SCHEMA};
    let Some((fleet, ids)) = Fleet::new(1, 3) else {
        return;
    };
    let before = fleet.repo.git(&["rev-parse", "main"]);
    let rt = runtime();
    rt.block_on(async {
        let bus = NatsBus::open(&NatsOptions::new(&fleet.nats.url()), &fleet.repo_id())
            .await
            .unwrap();
        let claim = Claim {
            schema: SCHEMA,
            epoch: 0,
            dispatch: 1,
            attempt: "x-1".into(),
            worker: "x".into(),
            state: ClaimState::Running,
            lease_until: 0,
            base: before.trim().into(),
        };
        let epoch = bus.create_claim(&ids[0], &claim).await.unwrap();
        bus.publish_report(&Report {
            schema: SCHEMA,
            bead: ids[0].clone(),
            epoch,
            attempt: "x-1".into(),
            worker: "x".into(),
            branch: "main:refs/heads/main".into(),
            commit: "0".repeat(40),
            ok: true,
            detail: "trust me".into(),
        })
        .await
        .unwrap();
    });
    let coordinator = fleet.coordinator(&["--timeout", "20s"]);
    let (code, events, stderr) = fleet.finish(coordinator, Duration::from_secs(60));
    assert_eq!(code, 3, "a decision waits: {stderr}");
    assert!(stderr.contains("not the attempt's"), "{stderr}");
    assert_eq!(count(&tally(&events), "failed"), 1);
    // Only the decision's commit moved main: the forged branch merged nothing.
    let log = fleet
        .repo
        .git(&["log", "--format=%B", &format!("{}..main", before.trim())]);
    assert!(!log.contains("Loom-Event: merged"), "{log}");
    let refs = fleet.repo.git(&["for-each-ref", "refs/loom/"]);
    assert!(refs.is_empty(), "something was fetched: {refs}");
}
