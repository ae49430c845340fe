//! Warm worktrees (issue 14): taking a bead in a 20,000-file repository whose base moved by
//! 10 files — a pooled worktree switched to the new base against a fresh `git worktree add`,
//! side by side. `cargo bench --bench worktree`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use loom::git::Repo;
use loom::git::worktree::{WorktreeFile, Worktrees};

const DIRS: usize = 200;
const PER_DIR: usize = 100;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A repository of 20,000 files and two commits 10 files apart.
fn repository(dir: &Path) -> (String, String) {
    git(dir, &["init", "-q", "-b", "main"]);
    for d in 0..DIRS {
        let sub = dir.join(format!("src/m{d:03}"));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..PER_DIR {
            let text = format!("// module {d} file {f}\npub fn f{f}() -> u32 {{ {f} }}\n");
            std::fs::write(sub.join(format!("f{f:03}.rs")), text).unwrap();
        }
    }
    std::fs::write(dir.join(".gitignore"), "target/\n").unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "20,000 files"]);
    let first = git(dir, &["rev-parse", "HEAD"]);
    for i in 0..10 {
        let path = dir.join(format!("src/m{:03}/f000.rs", i * 17));
        std::fs::write(path, format!("// changed {i}\n")).unwrap();
    }
    git(dir, &["commit", "-qam", "10 files changed"]);
    (first, git(dir, &["rev-parse", "HEAD"]))
}

fn take_a_bead(c: &mut Criterion) {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("repo");
    std::fs::create_dir_all(&dir).unwrap();
    let (first, second) = repository(&dir);
    let trees = Worktrees::new(
        Repo::require(&dir).unwrap(),
        work.path().join("worktrees"),
        WorktreeFile::default(),
    );
    let mut g = c.benchmark_group("take a bead, 20,000 files, base moved by 10");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    let mut n = 0u64;
    g.bench_function("fresh git worktree add", |b| {
        b.iter_custom(|iters| {
            let mut took = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let path = work.path().join(format!("fresh-{n}"));
                let p = path.to_string_lossy().into_owned();
                let start = Instant::now();
                git(&dir, &["worktree", "add", "-q", "--detach", &p, &second]);
                took += start.elapsed();
                git(&dir, &["worktree", "remove", "--force", &p]);
            }
            took
        })
    });
    // Warm the slot once (its first checkout is a fresh add).
    let warm = trees.take_pooled("b-warm", &first).unwrap();
    assert!(trees.give_back(&warm).unwrap());
    g.bench_function("pooled worktree switched to the new base", |b| {
        b.iter_custom(|iters| {
            let mut took = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                // Alternate bases, so every take moves 10 files.
                let base = if n.is_multiple_of(2) { &first } else { &second };
                let start = Instant::now();
                let wt = trees.take_pooled(&format!("b-{n}"), base).unwrap();
                took += start.elapsed();
                assert!(trees.give_back(&wt).unwrap());
            }
            took
        })
    });
    g.finish();
}

criterion_group!(benches, take_a_bead);
criterion_main!(benches);
