#!/usr/bin/env bash
# Word count over a large input: GridMR's embedded engine vs the hand-written baseline, in one run.
#
#   benches/wordcount-vs-baseline.sh [SIZE] [RUNS]     SIZE: 100m (default) or 1g; RUNS: 5
#
# Needs ../shared (the corpus and the baseline). Builds the input once into
# ${GRIDMR_BENCH_DIR:-target/bench-data}, runs the two programs alternately RUNS times (this
# machine is noisy: compare medians taken in the same run), checks that the outputs are equal,
# and prints median wall time, the ratio, and the peak RSS of each.
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
  /usr/bin/time -f "%e %M" -o "$data/$name.one" "$@" >/dev/null
  cat "$data/$name.one" >> "$data/$name.times"
}
rm -f "$data"/{baseline,gridmr}.times
for _ in $(seq "$runs"); do
  rm -rf "$data/out-baseline" "$data/out-gridmr"
  measure baseline "$baseline" "$input" "$data/out-baseline" "$threads"
  measure gridmr "$gridmr" --input "$input" --output "$data/out-gridmr" --threads "$threads" --top 0
done
python3 "$shared/bench/same-output" "$data/out-baseline" "$data/out-gridmr/result.txt" | tail -1
python3 - "$data" "$size" "$threads" <<'PY'
import statistics, sys
data, size, threads = sys.argv[1:]
res = {}
for name in ("baseline", "gridmr"):
    rows = [tuple(map(float, l.split())) for l in open(f"{data}/{name}.times")]
    res[name] = (statistics.median(r[0] for r in rows), max(r[1] for r in rows) / 1024, [r[0] for r in rows])
b, g = res["baseline"], res["gridmr"]
print(f"| input | threads | cost-wc median s | gridmr median s | ratio | cost-wc peak RSS | gridmr peak RSS |")
print(f"| {size} | {threads} | {b[0]:.2f} | {g[0]:.2f} | {g[0]/b[0]:.2f}x | {b[1]:.0f} MiB | {g[1]:.0f} MiB |")
print(f"all runs: cost-wc {b[2]}, gridmr {g[2]}")
PY
