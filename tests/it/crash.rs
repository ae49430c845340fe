//! Crash safety: `loom` killed with SIGKILL at random moments during writes, 50 times. After
//! each kill the store loads fully and every acknowledged change is present.

use std::time::Duration;

use crate::support::TestRepo;

const KILLS: usize = 50;

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn crash_loop(format: &str, seed: u64) {
    let repo = TestRepo::with_loom(format);
    let bead = repo.create("target", &[]);
    // How long one change takes here, to spread kills across the whole write.
    let start = std::time::Instant::now();
    repo.ok(&["label", "add", &bead, "warmup"]);
    let span = start.elapsed().as_micros().max(1000) as u64;

    let mut rng = Lcg(seed);
    let mut acked = Vec::new();
    for i in 0..KILLS {
        let label = format!("k{i}");
        let mut child = repo
            .command(&["label", "add", &bead, &label, "-q"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.next() % (span + span / 2)));
        let _ = child.kill(); // SIGKILL; harmless if it already exited
        let status = child.wait().unwrap();
        if status.success() {
            acked.push(label);
        }
        // The store loads fully and holds every acknowledged change.
        let doctor = repo.json(&["doctor"]);
        let unreadable: Vec<_> = doctor["problems"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["severity"] == "error")
            .collect();
        assert!(unreadable.is_empty(), "after kill {i}: {unreadable:?}");
        let shown = repo.json(&["show", &bead]);
        let labels: Vec<&str> = shown["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        for l in &acked {
            assert!(
                labels.contains(&l.as_str()),
                "after kill {i}: acknowledged {l} lost"
            );
        }
    }
    // The lock was never left held, and leftovers are swept by the next write.
    repo.ok(&["label", "add", &bead, "final"]);
    let leftovers: Vec<_> = std::fs::read_dir(repo.path().join(".beads"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    eprintln!(
        "{format}: {} of {KILLS} killed changes were acknowledged",
        acked.len()
    );
}

#[test]
fn sigkill_during_jsonl_writes_loses_no_acknowledged_change() {
    crash_loop("jsonl", 7);
}

#[test]
fn sigkill_during_yaml_writes_loses_no_acknowledged_change() {
    crash_loop("yaml", 11);
}
