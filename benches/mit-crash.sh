#!/usr/bin/env bash
# MIT 6.5840 Lab 1's crash test, many times: user code that kills its worker
# process (a third of the calls) or stalls (up to 10 s, as the lab), three
# workers restarted in a loop. Runs RUNS (20) times with one slot per worker
# and RUNS times with two, and prints how many passed. Usage:
#   bash benches/mit-crash.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
cargo build --quiet --tests
# A copy of the test binary: the runs start it again and again (as master
# and workers), and a rebuild meanwhile must not pull it away.
bin=$(mktemp)
cp "$(ls -t target/debug/deps/mit_lab1-* | grep -v '\.d$' | head -1)" "$bin"
trap 'rm -f "$bin"' EXIT
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
for slots in 1 2; do
  out=$(MIT_CRASH_SLEEP_MS=10000 MIT_WORKER_SLOTS=$slots "$bin" crash "$runs" 2>&1 || true)
  echo "$out" | grep -E '^test crash|worker starts' || true
  passed=$(echo "$out" | grep -c '^test crash.* ok' || true)
  echo "slots per worker: $slots: $passed/$runs crash runs passed"
done
