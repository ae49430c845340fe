//! Criterion benches for the bead layer at 1k / 10k / 100k beads: loading (parse), the ready
//! computation, and a single write through the store (lock, re-read, write, verify; no git).
//! Run: `cargo bench --bench store`. Figures are recorded in docs/PERFORMANCE.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use loom::bead::graph::{Graph, ReadyFilter, SortPolicy};
use loom::store::{Format, Layout, Store, TxOptions, jsonl, yaml};

/// The allocator the `loom` binary ships with, so figures match it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SIZES: &[usize] = &[1_000, 10_000, 100_000];

fn jsonl_bytes(n: usize) -> Vec<u8> {
    jsonl::render_all(&loom::synth::beads(n, "syn", 42)).unwrap()
}

fn store_on_disk(dir: &Path, n: usize, format: Format) -> Store {
    let layout = Layout::with_format(dir, format);
    std::fs::create_dir_all(&layout.beads_dir).unwrap();
    let beads = loom::synth::beads(n, "syn", 42);
    match format {
        Format::Jsonl => std::fs::write(
            layout.beads_dir.join("issues.jsonl"),
            jsonl::render_all(&beads).unwrap(),
        )
        .unwrap(),
        Format::Yaml => {
            std::fs::create_dir_all(layout.yaml_dir()).unwrap();
            for b in &beads {
                std::fs::write(layout.yaml_path(&b.id), yaml::render(b).unwrap()).unwrap();
            }
        }
    }
    Store::new(Layout::at(dir).unwrap(), dir.join("lock"))
}

fn load(c: &mut Criterion) {
    let mut g = c.benchmark_group("load_jsonl_index");
    g.sample_size(10);
    for &n in SIZES {
        let bytes = jsonl_bytes(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &bytes, |b, bytes| {
            b.iter(|| {
                jsonl::JsonlDoc::parse_index(bytes.clone(), Path::new("issues.jsonl"))
                    .0
                    .beads
                    .len()
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("load_jsonl_full");
    g.sample_size(10);
    for &n in SIZES {
        let bytes = jsonl_bytes(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &bytes, |b, bytes| {
            b.iter(|| {
                jsonl::JsonlDoc::parse(bytes.clone(), Path::new("issues.jsonl"))
                    .0
                    .beads
                    .len()
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("load_yaml");
    g.sample_size(10);
    for &n in &SIZES[..2] {
        let dir = tempfile::tempdir().unwrap();
        let store = store_on_disk(dir.path(), n, Format::Yaml);
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| store.load().unwrap().beads.len())
        });
    }
    g.finish();
}

fn ready(c: &mut Criterion) {
    let mut g = c.benchmark_group("ready");
    g.sample_size(20);
    let now = jiff::Timestamp::now();
    for &n in SIZES {
        let beads = loom::synth::beads(n, "syn", 42);
        g.bench_with_input(BenchmarkId::from_parameter(n), &beads, |b, beads| {
            b.iter(|| {
                Graph::new(beads)
                    .ready(&ReadyFilter::default(), SortPolicy::Priority, now)
                    .len()
            })
        });
    }
    g.finish();
}

fn write(c: &mut Criterion) {
    for format in [Format::Jsonl, Format::Yaml] {
        let mut g = c.benchmark_group(format!("write_one_{}", format.name()));
        g.sample_size(10);
        for &n in SIZES {
            if format == Format::Yaml && n > 10_000 {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let store = store_on_disk(dir.path(), n, format);
            let id = format!("syn-{}", "100");
            let mut p = 0;
            g.bench_function(BenchmarkId::from_parameter(n), |b| {
                b.iter(|| {
                    p = (p + 1) % 5;
                    store
                        .transact(
                            TxOptions::default(),
                            |tx| {
                                tx.get_mut(&id)?.priority = p;
                                Ok(())
                            },
                            |_| Ok(()),
                        )
                        .unwrap()
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, load, ready, write);
criterion_main!(benches);
