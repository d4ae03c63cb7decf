#!/usr/bin/env bash
# TASK_ISOLATION=thread against =process: the same word count (release
# build, a master and two workers of two slots on loopback) over the
# Gutenberg corpus copied COPIES times, ROUNDS times each, alternating.
# Usage: bash benches/isolation.sh [COPIES] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
copies=${1:-20}; rounds=${2:-3}
cargo build --quiet --release --bin gridmr
bin=target/release/gridmr
share=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$share"' EXIT
mkdir -p "$share/in"
corpus=../shared/corpus/gutenberg-lab; [ -d "$corpus" ] || corpus=data/gutenberg
for i in $(seq "$copies"); do for f in "$corpus"/*.txt; do cp "$f" "$share/in/$i-$(basename "$f")"; done; done
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; input $(du -sh "$share/in" | cut -f1)"
run() { # $1 = thread|process; prints seconds of one job
  local port log; log="$share/m.log"
  SHARED_DIR=$share MASTER_HOST=127.0.0.1 MASTER_PORT=0 WORKER_TIMEOUT_S=3 $bin master > "$share/m.out" 2> "$log" &
  local m=$! n=0; until grep -q http "$share/m.out" 2>/dev/null; do sleep 0.1; n=$((n+1)); [ $n -lt 300 ] || { echo "no master" >&2; exit 1; }; done
  local url; url=$(head -1 "$share/m.out" | awk '{print $NF}')
  for w in 1 2; do
    SHARED_DIR=$share MASTER_HTTP=$url GRPC_HOST=127.0.0.1 GRPC_PORT=0 WORKER_ID=w$w WORKER_SLOTS=2 \
      TASK_ISOLATION=$1 HEARTBEAT_INTERVAL_MS=200 $bin worker > /dev/null 2>&1 &
  done
  n=0; until [ "$(SHARED_DIR=$share $bin workers --json --master "$url" 2>/dev/null | grep -c '"alive": true')" = 2 ]; do sleep 0.1; n=$((n+1)); [ $n -lt 300 ] || { echo "no workers" >&2; exit 1; }; done
  local t0 t1; t0=$(date +%s.%N)
  SHARED_DIR=$share $bin submit --master "$url" --job wordcount --input "$share/in" \
    --map-splits 16 --reduce-partitions 4 --wait > /dev/null 2>&1
  t1=$(date +%s.%N)
  kill $(jobs -p) 2>/dev/null; wait 2>/dev/null || true
  rm -rf "$share/jobs" "$share/m.out"
  echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}'
}
for r in $(seq "$rounds"); do
  echo "round $r: thread $(run thread) s, process $(run process) s"
done
