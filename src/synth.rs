//! Synthetic bead sets for benchmarks (and later the demo): N beads with field sizes modelled
//! on a real bd export (titles ~30 chars, descriptions ~1 kB, some notes), ~1.5 dependencies
//! per bead pointing at older beads (so no cycles), and a realistic mix of statuses, types and
//! priorities. Deterministic for a given seed.

use crate::bead::{Bead, Dependency, Timestamp, dep_type, status};

/// A small, fast, deterministic generator (xorshift64*).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "checkout",
    "total",
    "rounds",
    "currency",
    "cart",
    "module",
    "refund",
    "flow",
    "button",
    "payment",
    "coupon",
    "crash",
    "export",
    "import",
    "schema",
    "migration",
    "cache",
    "index",
    "latency",
    "retry",
    "timeout",
    "worker",
    "queue",
    "session",
    "token",
    "login",
    "profile",
    "search",
    "filter",
    "report",
    "daily",
    "summary",
    "render",
    "layout",
    "mobile",
    "desktop",
    "the",
    "a",
    "when",
    "should",
    "must",
    "after",
    "before",
    "with",
    "without",
    "for",
    "and",
];

fn sentence(rng: &mut Rng, words: usize) -> String {
    let mut s = String::with_capacity(words * 7);
    for i in 0..words {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(rng.pick(WORDS));
    }
    s
}

fn paragraph(rng: &mut Rng, chars: usize) -> String {
    let mut s = String::with_capacity(chars + 80);
    while s.len() < chars {
        let n = 6 + rng.below(12) as usize;
        s.push_str(&sentence(rng, n));
        s.push_str(if rng.chance(15) { ".\n\n" } else { ". " });
    }
    s.trim_end().to_owned()
}

/// `count` beads with ids `<prefix>-<n>` (base36), deterministic for `seed`.
pub fn beads(count: usize, prefix: &str, seed: u64) -> Vec<Bead> {
    let mut rng = Rng::new(seed);
    let start: i64 = 1_735_689_600; // 2025-01-01
    let mut out: Vec<Bead> = Vec::with_capacity(count);
    for n in 0..count {
        let id = format!("{prefix}-{}", base36(n as u64 + 1296)); // ≥ 3 characters
        let created =
            start + (n as i64 * 31_536_000 / count.max(1) as i64) + rng.below(3600) as i64;
        let created_at = Timestamp::from_instant(
            jiff::Timestamp::from_second(created).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        );
        let roll = rng.below(100);
        let st = match roll {
            0..45 => status::OPEN,
            45..85 => status::CLOSED,
            85..93 => status::IN_PROGRESS,
            93..96 => status::BLOCKED,
            96..98 => status::DEFERRED,
            _ => status::PINNED,
        };
        let issue_type = rng.pick(&["task", "task", "task", "bug", "feature", "epic", "chore"]);
        let priority = [0, 1, 1, 2, 2, 2, 2, 3, 3, 4][rng.below(10) as usize];
        let mut bead = Bead {
            id: id.clone(),
            title: {
                let n = 3 + rng.below(6) as usize;
                let mut t = sentence(&mut rng, n);
                if let Some(c) = t.get_mut(0..1) {
                    c.make_ascii_uppercase();
                }
                t
            },
            description: {
                let len = 200 + rng.below(1600) as usize;
                Some(paragraph(&mut rng, len))
            },
            notes: rng.chance(5).then(|| {
                let len = 300 + rng.below(400) as usize;
                paragraph(&mut rng, len)
            }),
            status: st.to_owned(),
            priority,
            issue_type: issue_type.to_owned(),
            assignee: rng
                .chance(30)
                .then(|| rng.pick(&["ann", "bob", "coder", "qa"]).to_owned()),
            created_at: Some(created_at.clone()),
            created_by: Some("synth".to_owned()),
            updated_at: Some(created_at.clone()),
            labels: (0..rng.below(3))
                .map(|_| {
                    rng.pick(&["ui", "backend", "perf", "security", "docs"])
                        .to_owned()
                })
                .collect(),
            ..Bead::default()
        };
        bead.labels.dedup();
        if st == status::CLOSED {
            bead.closed_at = Some(created_at.clone());
            bead.close_reason = Some("done".to_owned());
        }
        // ~1.5 dependencies on older beads: blocks, parent-child, or a non-blocking link.
        if n > 0 {
            let deps = match rng.below(4) {
                0 => 0,
                1 => 1,
                2 => 2,
                _ => 3,
            };
            for _ in 0..deps {
                let window = (n as u64).min(2000);
                let target = n - 1 - rng.below(window) as usize;
                let kind = match rng.below(100) {
                    0..60 => dep_type::BLOCKS,
                    60..85 => dep_type::PARENT_CHILD,
                    85..95 => dep_type::RELATED,
                    _ => dep_type::DISCOVERED_FROM,
                };
                let target_id = out[target].id.clone();
                if bead
                    .dependencies
                    .iter()
                    .any(|d| d.depends_on_id == target_id)
                {
                    continue;
                }
                bead.dependencies.push(Dependency {
                    issue_id: id.clone(),
                    depends_on_id: target_id,
                    dep_type: kind.to_owned(),
                    created_at: Some(created_at.clone()),
                    created_by: Some("synth".to_owned()),
                    ..Dependency::default()
                });
            }
        }
        out.push(bead);
    }
    out
}

fn base36(mut n: u64) -> String {
    const A: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::new();
    loop {
        s.push(A[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_valid_and_realistic() {
        let a = beads(500, "s", 1);
        assert_eq!(a, beads(500, "s", 1));
        for b in &a {
            assert_eq!(crate::bead::validate(b), Ok(()), "{}", b.id);
        }
        let deps: usize = a.iter().map(|b| b.dependencies.len()).sum();
        assert!((600..=900).contains(&deps), "~1.5 per bead, got {deps}");
        let mut ids: Vec<&str> = a.iter().map(|b| b.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 500);
    }
}
