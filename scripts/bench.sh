#!/usr/bin/env bash
# Whole-command benchmarks over generated repositories, compared side by side in one hyperfine
# run each. The figures are recorded in docs/PERFORMANCE.md. Needs hyperfine and jq (Debian
# packages; installed here when missing and apt is available).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
for tool in hyperfine jq; do
  command -v "$tool" >/dev/null || apt-get install -y -q "$tool" >/dev/null
done
cargo build --release --quiet --manifest-path "$here/Cargo.toml" --bin loom --example synth_repo
loom="$here/target/release/loom"
synth="$here/target/release/examples/synth_repo"
work=$(mktemp -d "${TMPDIR:-/tmp}/loom-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
export GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com \
  GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com

echo "== 100,000 beads, JSONL: ready --json vs jq"
"$synth" --count 100000 --format jsonl --out "$work/j100k" --git
cd "$work/j100k"
ls -l .beads/issues.jsonl
hyperfine -N --warmup 2 --runs 15 \
  "$loom ready --json" \
  "$loom ready --json -n 0" \
  "jq -c 'select(.status==\"open\")' .beads/issues.jsonl"

echo "== 100,000 beads, JSONL: list, and one update with its commit"
id=$(sed -n 500p .beads/issues.jsonl | jq -r .id)
hyperfine -N --warmup 1 --runs 10 \
  --prepare true --prepare "$loom update $id -p 2 -q" \
  "$loom list --json" \
  "$loom update $id -p 1"

echo "== 10,000 beads, YAML: update -p with its commit vs a bare git commit of one file"
"$synth" --count 10000 --format yaml --out "$work/y10k" --git
cd "$work/y10k"
echo start > file.txt && git add file.txt && git commit -qm "one file"
id=$(ls .beads/beads | sed -n 100p); id=${id%.yaml}
hyperfine -N --warmup 3 --runs 30 \
  --prepare "sed -i 's/^priority: .*/priority: 2/' .beads/beads/$id.yaml" \
  --prepare "sh -c 'date +%N >> file.txt'" \
  "$loom update $id -p 1" \
  "git commit -q -m bench -- file.txt"
git log -1 --format='%h %s' --grep='^loom:'

echo "== 10,000 beads, YAML: ready and list (every file parsed)"
hyperfine -N --warmup 2 --runs 10 "$loom ready --json" "$loom list --json -n 0"

echo "== Orchestration: 50 beads (one edit + done each, zero model latency, test command true)"
echo "   in a 1,000-file repository: loom run vs the same git work as a shell script"
cargo build --release --quiet --manifest-path "$here/Cargo.toml" --example orchestrate_bench
bench="$here/target/release/examples/orchestrate_bench"
# On tmpfs when there is one: disk flushes otherwise dominate both sides and vary run to run.
fast=$( [ -d /dev/shm ] && mktemp -d /dev/shm/loom-bench.XXXXXX || mktemp -d "$work/o.XXXXXX")
trap 'rm -rf "$work" "$fast"' EXIT
"$bench" setup --out "$fast/o50" --beads 50 --files 1000
export LOOM_DATA_DIR="$fast/data"
hyperfine --runs 5 \
  --prepare "rm -rf $fast/run $fast/data && cp -a $fast/o50 $fast/run" \
  -n "loom run, 4 agents" "cd $fast/run/repo && $loom run --replay ../tape.jsonl --replay-match off -q" \
  -n "loom run, 1 agent" "cd $fast/run/repo && $loom run --max-agents 1 --replay ../tape.jsonl --replay-match off -q" \
  -n "git CLI script" "bash $fast/run/baseline.sh"

echo "== Ready-to-dispatch latency: a gate closed on disk -> the waiting bead's agent starts (100 events)"
"$bench" latency --out "$fast/lat" --events 100

echo "== Peak memory of loom run with 16 agents streaming from the test server"
cargo test --release --quiet --manifest-path "$here/Cargo.toml" --test it bench_peak_rss -- --ignored --nocapture 2>&1 \
  | grep "peak RSS"
