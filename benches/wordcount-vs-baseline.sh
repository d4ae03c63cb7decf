#!/usr/bin/env bash
# Word count over a large input: the hand-written baseline, GridMR's embedded engine, and GridMR's
# loopback cluster (a master and 2 workers × 1 slot in one process, submitted through REST), in one
# run.
#
#   benches/wordcount-vs-baseline.sh [SIZE] [RUNS]     SIZE: 100m (default) or 1g; RUNS: 5
#
# Needs ../shared (the corpus and the baseline). Builds the input once into
# ${GRIDMR_BENCH_DIR:-target/bench-data}, runs the three programs alternately RUNS times (this
# machine is noisy: compare medians taken in the same run), checks that the outputs are equal,
# and prints median wall time, the ratios, and the peak RSS of each.
set -euo pipefail
size=${1:-100m}
runs=${2:-5}
top=$(cd "$(dirname "$0")/.." && pwd)
shared=${GRIDMR_SHARED:-$top/../shared}
data=${GRIDMR_BENCH_DIR:-$top/target/bench-data}
threads=${THREADS:-2}
[ -d "$shared/bench" ] || { echo "needs $shared/bench (set GRIDMR_SHARED)" >&2; exit 2; }
bash "$shared/bench/make-corpus.sh" "$data/corpus" >/dev/null
input=$data/corpus/wc-$size.txt
cargo build -q --release --example wordcount --manifest-path "$top/Cargo.toml"
gridmr=$top/target/release/examples/wordcount
bash "$shared/bench/cost-wc.sh" "$shared/reference/samples/input.txt" "$data/warmup" >/dev/null
baseline=${COST_WC_TARGET:-${TMPDIR:-/tmp}/gridmr-cost-wc-target}/release/cost-wc
cat "$input" >/dev/null # warm the page cache

measure() { # NAME CMD... -> appends "seconds kib" to $data/NAME.times
  local name=$1; shift
  sync # no dirty pages of the previous program written back in this one's time
  /usr/bin/time -f "%e %M" -o "$data/$name.one" "$@" >/dev/null
  cat "$data/$name.one" >> "$data/$name.times"
}
rm -f "$data"/{baseline,embedded,cluster}.times
for _ in $(seq "$runs"); do
  rm -rf "$data/out-baseline" "$data/out-embedded" "$data/shared-cluster"
  measure baseline "$baseline" "$input" "$data/out-baseline" "$threads"
  measure embedded "$gridmr" --local --input "$input" --output "$data/out-embedded" --threads "$threads" --top 0
  measure cluster "$gridmr" --input "$input" --shared-dir "$data/shared-cluster" --workers 2 --slots 1 --top 0
done
python3 "$shared/bench/same-output" "$data/out-baseline" "$data/out-embedded/result.txt" | tail -1
python3 "$shared/bench/same-output" "$data/out-baseline" "$data/shared-cluster/jobs/job-000001/out/result.txt" | tail -1
python3 - "$data" "$size" "$threads" <<'PY'
import statistics, sys
data, size, threads = sys.argv[1:]
res = {}
for name in ("baseline", "embedded", "cluster"):
    rows = [tuple(map(float, l.split())) for l in open(f"{data}/{name}.times")]
    res[name] = (statistics.median(r[0] for r in rows), max(r[1] for r in rows) / 1024, [r[0] for r in rows])
b = res["baseline"]
print(f"| input | system | median s | vs cost-wc | peak RSS |")
for name, label in (("baseline", "cost-wc, 2 threads"), ("embedded", "GridMR embedded, 2 threads"), ("cluster", "GridMR cluster, 2 workers × 1 slot")):
    r = res[name]
    print(f"| {size} | {label} | {r[0]:.2f} | {r[0]/b[0]:.2f}x | {r[1]:.0f} MiB |")
for name in res:
    print(f"all runs {name}: {res[name][2]}")
PY
