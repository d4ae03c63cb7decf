#!/usr/bin/env bash
# TeraSort on 1 GiB (10,737,418 rows of 100 bytes, made once by the teragen job) in one run,
# alternated: the hand-written floor (benches/terasort_floor.rs: read, partition, sort, write on
# 2 threads), GridMR embedded (`gridmr local --job terasort`), GridMR on a loopback cluster (a
# master and 2 workers × 1 slot, separate processes, submitted over REST), `LC_ALL=C sort
# --parallel=2`, and Spark RDD local[2] (benches/terasort_spark.py; skipped with a message when
# spark-submit is missing). Every output is checked byte for byte against the floor's, and
# GridMR's once more by the teravalidate job.
#
#   benches/terasort.sh [ROWS] [RUNS]       ROWS: 10737418 (1 GiB, default); RUNS: 5
#
# SPARK_RUNS (1 by default; Spark takes a minute a run) limits Spark's runs. Data in
# ${GRIDMR_BENCH_DIR:-target/bench-data}/terasort. Prints median wall time, the ratio to the
# floor, and peak RSS (the cluster's: the largest master or worker process).
set -euo pipefail
rows=${1:-10737418}
runs=${2:-5}
spark_runs=${SPARK_RUNS:-1}
top=$(cd "$(dirname "$0")/.." && pwd)
data=${GRIDMR_BENCH_DIR:-$top/target/bench-data}/terasort
mkdir -p "$data"
cargo build -q --release --bin gridmr --manifest-path "$top/Cargo.toml"
bin=$top/target/release/gridmr
floor=$(cargo build -q --release --bench terasort_floor --manifest-path "$top/Cargo.toml" \
  --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "terasort_floor" and m.get("executable"):
        print(m["executable"])')

# shellcheck source=benches/lib.sh
source "$top/benches/lib.sh"
input=$data/in-$rows
teragen_input "$bin" "$rows" "$input"
cat "$input"/part-m-* >/dev/null # warm the page cache
echo "input: $(cat "$input"/part-m-* | wc -c) bytes in $(ls "$input"/part-m-* | wc -l) files, $rows rows"

# The loopback cluster, started once.
cluster=$data/cluster
loopback_cluster "$bin" "$cluster" "$input" 2
submit=("$bin" submit --master "http://127.0.0.1:$port" --shared-dir "$cluster/shared")

measure() { # NAME CMD... -> appends "seconds kib" to $data/NAME.times
  local name=$1; shift
  # Each program starts with no dirty pages: otherwise the writeback of the one before (2 GiB of
  # shuffle and output for GridMR) lands in the next one's time, whichever runs next.
  sync
  /usr/bin/time -f "%e %M" -o "$data/$name.one" "$@" >/dev/null 2>"$data/$name.err" ||
    { cat "$data/$name.err" >&2; exit 1; }
  cat "$data/$name.one" >> "$data/$name.times"
}
hwm() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; } # peak RSS of a live process, KiB
same() { # NAME FILES... : the files, joined, must equal the floor's output
  local name=$1; shift
  if cat "$@" | cmp -s - <(cat "$data"/out-floor/part-r-*); then echo "$name: output equal to the floor's"
  else echo "$name: OUTPUT DIFFERS from the floor's" >&2; exit 1; fi
}

have_spark=1
command -v spark-submit >/dev/null || { have_spark=0; echo "spark-submit not found: Spark skipped (pip install pyspark)"; }
rm -f "$data"/*.times
# Each program's output is checked and deleted before the next one runs, so that every one
# writes into the same state of disk and page cache: with 2-4 GiB of earlier output left in
# place, the next program's writes took 1.2 s longer here, whichever program it was.
for run in $(seq "$runs"); do
  rm -rf "$data"/out-* "$data/work"
  measure floor "$floor" "$input" "$data/out-floor" 2 2
  measure embedded "$bin" local --job terasort --input "$input/part-m-*" --partitions 2 \
    --threads 2 --output "$data/out-embedded" --work-dir "$data/work"
  same embedded "$data"/out-embedded/part-r-*
  if [ "$run" = "$runs" ]; then
    "$bin" local --job teravalidate --input "$data/out-embedded/part-r-*" --output "$data/out-validate" \
      --work-dir "$data/work-validate" >/dev/null
  fi
  rm -rf "$data/out-embedded" "$data/work" "$data/work-validate"
  measure cluster "${submit[@]}" --job terasort --input "$input/part-m-*" --reduce-partitions 2 --wait
  job=$(ls -d "$cluster"/shared/jobs/job-* | tail -1)
  same cluster "$job"/out/part-r-*
  rm -rf "$job"
  measure sort env LC_ALL=C sort --parallel=2 -o "$data/out-sort" "$input"/part-m-*
  same sort "$data/out-sort"
  rm -f "$data/out-sort"
  if [ $have_spark = 1 ] && [ "$run" -le "$spark_runs" ]; then
    measure spark spark-submit --master 'local[2]' --driver-memory 2g \
      "$top/benches/terasort_spark.py" "$input" "$data/out-spark" 2
    same spark "$data"/out-spark/part-*
    rm -rf "$data/out-spark"
  fi
done
echo "teravalidate: $(cat "$data"/out-validate/part-r-* | tr '\n' ' ')"
echo "$(( $(hwm $master) )) $(( $(hwm ${workers[0]}) > $(hwm ${workers[1]}) ? $(hwm ${workers[0]}) : $(hwm ${workers[1]}) ))" > "$data/cluster.hwm"

python3 - "$data" "$rows" <<'PY'
import statistics, sys, os, platform
data, rows = sys.argv[1:]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
master_kib, worker_kib = map(int, open(f"{data}/cluster.hwm").read().split())
res = {}
for name in ("floor", "embedded", "cluster", "sort", "spark"):
    path = f"{data}/{name}.times"
    if not os.path.exists(path):
        continue
    t = [tuple(map(float, l.split())) for l in open(path)]
    rss = max(r[1] for r in t) / 1024
    if name == "cluster":
        rss = max(master_kib, worker_kib) / 1024
    res[name] = (statistics.median(r[0] for r in t), rss, [r[0] for r in t])
labels = {
    "floor": "hand-written Rust floor, 2 threads",
    "embedded": "GridMR embedded, 2 threads",
    "cluster": "GridMR cluster, 2 workers × 1 slot",
    "sort": "LC_ALL=C sort --parallel=2",
    "spark": "Spark RDD local[2] (sortByKey)",
}
f = res["floor"][0]
print(f"CPU: {cpu}, {os.cpu_count()} cores; {int(rows) * 100 / 2**30:.2f} GiB, {rows} rows")
print("| system | median s | vs floor | peak RSS | runs |")
print("|---|---|---|---|---|")
for name, (med, rss, all_) in res.items():
    print(f"| {labels[name]} | {med:.2f} | {med / f:.2f}x | {rss:.0f} MiB | {len(all_)} |")
if "spark" in res:
    print(f"GridMR embedded is {res['spark'][0] / res['embedded'][0]:.1f}x faster than Spark")
for name, (_, _, all_) in res.items():
    print(f"all runs {name}: {all_}")
PY
