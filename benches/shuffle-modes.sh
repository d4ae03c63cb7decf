#!/usr/bin/env bash
# The two shuffles on one host, no link capped: the same loopback cluster (a master and 2 workers
# × 1 slot, separate processes, submitted over REST) runs TeraSort (no combiner: the whole input
# is shuffled) and word count (with its combiner) with SHUFFLE=shared and SHUFFLE=local,
# alternated, and checks that both modes' outputs are byte-equal. Prints each mode's median wall
# time and the ratio local / shared (issue 24's target: local within 1.10x of shared here).
#
#   benches/shuffle-modes.sh [ROWS] [RUNS] [WORDS_SIZE]   ROWS: 10737418 (1 GiB); RUNS: 5;
#                                                          WORDS_SIZE: 100m (or 1g; needs ../shared)
#
# Data in ${GRIDMR_BENCH_DIR:-target/bench-data}. BIN=path/to/gridmr skips the build.
set -euo pipefail
rows=${1:-10737418}
runs=${2:-5}
size=${3:-100m}
top=$(cd "$(dirname "$0")/.." && pwd)
data=${GRIDMR_BENCH_DIR:-$top/target/bench-data}
shared=${GRIDMR_SHARED:-$top/../shared}
mkdir -p "$data/terasort"
if [ -z "${BIN:-}" ]; then
  cargo build -q --release --bin gridmr --manifest-path "$top/Cargo.toml"
  BIN=$top/target/release/gridmr
fi
bin=$BIN

# shellcheck source=benches/lib.sh
source "$top/benches/lib.sh"
input=$data/terasort/in-$rows
teragen_input "$bin" "$rows" "$input"
words=""
if [ -d "$shared/bench" ]; then
  bash "$shared/bench/make-corpus.sh" "$data/corpus" >/dev/null
  words=$data/corpus/wc-$size.txt
else
  echo "no $shared/bench: word count skipped (set GRIDMR_SHARED)"
fi
cat "$input"/part-m-* ${words:+"$words"} >/dev/null # warm the page cache

cluster=$data/shuffle-modes
loopback_cluster "$bin" "$cluster" "$input${words:+,$(dirname "$words")}" 2
submit=("$bin" submit --master "http://127.0.0.1:$port" --shared-dir "$cluster/shared")

measure() { # NAME CMD... -> appends seconds to $cluster/NAME.times; leaves the job's folder in $job
  local name=$1; shift
  sync
  /usr/bin/time -f "%e" -o "$cluster/$name.one" "$@" >/dev/null 2>"$cluster/$name.err" ||
    { cat "$cluster/$name.err" >&2; exit 1; }
  cat "$cluster/$name.one" >> "$cluster/$name.times"
  job=$(ls -d "$cluster"/shared/jobs/job-* | tail -1)
}
check() { # NAME: the job's output equals the first one kept for its kind
  local name=$1 kind=${1%-*}
  if [ ! -f "$cluster/$kind.sum" ]; then cat "$job"/out/part-r-* | sha1sum > "$cluster/$kind.sum"
  elif ! cat "$job"/out/part-r-* | sha1sum | cmp -s - "$cluster/$kind.sum"; then
    echo "$name: OUTPUT DIFFERS" >&2; exit 1
  fi
  rm -rf "$job"
}
for run in $(seq "$runs"); do
  for mode in shared local; do
    measure "terasort-$mode" "${submit[@]}" --job terasort --input "$input/part-m-*" \
      --reduce-partitions 2 --shuffle-mode "$mode" --wait
    check "terasort-$mode"
    if [ -n "$words" ]; then
      measure "wordcount-$mode" "${submit[@]}" --job wordcount --input "$words" --map-splits 8 \
        --reduce-partitions 2 --force-distributed --shuffle-mode "$mode" --wait
      check "wordcount-$mode"
    fi
  done
done
for w in 1 2; do [ -z "$(ls -A "$cluster/w$w/shuffle")" ] || { echo "w$w kept map outputs" >&2; exit 1; }; done

python3 - "$cluster" <<'PY'
import os, statistics, sys
d = sys.argv[1]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"CPU: {cpu}, {os.cpu_count()} cores; a master and 2 workers x 1 slot on loopback")
for kind in ("terasort", "wordcount"):
    t = {}
    for mode in ("shared", "local"):
        p = f"{d}/{kind}-{mode}.times"
        if os.path.exists(p):
            t[mode] = [float(x) for x in open(p).read().split()]
    if len(t) < 2:
        continue
    med = {m: statistics.median(v) for m, v in t.items()}
    runs = " ".join(f"{x:.2f}" for x in t["local"])
    print(f"{kind:9}  shared {med['shared']:6.2f} s   local {med['local']:6.2f} s   "
          f"local/shared {med['local'] / med['shared']:.3f}   (local runs: {runs})")
PY
