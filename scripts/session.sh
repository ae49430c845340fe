#!/usr/bin/env bash
# A short bead session on a scratch repository: what `loom` does, end to end, offline.
# (Replaced by `loom demo` once the orchestrator lands.)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cargo build --quiet --manifest-path "$here/Cargo.toml" --bin loom
loom="$here/target/debug/loom"
repo=$(mktemp -d "${TMPDIR:-/tmp}/loom-session.XXXXXX")
cd "$repo"
run() { printf '\n\033[1m$ loom %s\033[0m\n' "$*"; "$loom" "$@"; }

git init -q -b main
git config user.name "${GIT_AUTHOR_NAME:-Loom Newcomer}"
git config user.email "${GIT_AUTHOR_EMAIL:-newcomer@example.com}"

run init --prefix shop
epic=$("$loom" create "Checkout revamp" -t epic -p 1 -q)
bug=$("$loom" create "Total rounds wrong for 3-decimal currencies" -t bug -p 0 --parent "$epic" -q)
csv=$("$loom" create "Add CSV export" -d "Finance wants monthly CSVs." -q)
pay=$("$loom" create "Apple Pay button" -t feature --parent "$epic" -q)
run dep add "$pay" "$bug"
run list
run ready
run blocked
run update "$bug" -s in_progress -a coder
run close "$bug" -r "Rounded with the currency's minor units"
run ready
run dep tree "$pay"
run dep tree "$epic" --direction up
run show "$pay"
run log
printf '\n\033[1m$ git log --oneline\033[0m\n'; git log --oneline
printf '\nScratch repository kept at %s\n' "$repo"
