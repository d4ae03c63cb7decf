#!/usr/bin/env bash
# Word count by the original's Python job-script contract (examples/wordcount.py) and as a
# Hadoop-Streaming job (examples/streaming/) on a loopback cluster (a master and 2 workers × 1
# slot, release build), against the serial pipeline `cat | python3 mapper.py | sort | python3
# reducer.py` and against the typed job on the same cluster. Also reports how the workers' CPU
# time splits between GridMR itself (splitting, shuffle, merge) and the Python subprocesses.
#
# PYTHONUNBUFFERED is unset for everything: with it, a streaming mapper's print() is one write
# per line (on this machine 5x slower for the serial pipeline's mapper alone).
#
#   benches/python-wordcount.sh [SIZE]      SIZE: 100m (default) or 1g
#
# Needs ../shared (the corpus). Data in ${GRIDMR_BENCH_DIR:-target/bench-data}.
set -euo pipefail
unset PYTHONUNBUFFERED
size=${1:-100m}
top=$(cd "$(dirname "$0")/.." && pwd)
shared=${GRIDMR_SHARED:-$top/../shared}
data=${GRIDMR_BENCH_DIR:-$top/target/bench-data}
[ -d "$shared/bench" ] || { echo "needs $shared/bench (set GRIDMR_SHARED)" >&2; exit 2; }
bash "$shared/bench/make-corpus.sh" "$data/corpus" >/dev/null
input=$data/corpus/wc-$size.txt
cargo build -q --release --bin gridmr --manifest-path "$top/Cargo.toml"
bin=$top/target/release/gridmr
work=$data/python-bench
rm -rf "$work"; mkdir -p "$work/shared"
cp "$top/examples/wordcount.py" "$top"/examples/streaming/*.py "$work/shared/"
cat "$input" >/dev/null

port=$((20000 + RANDOM % 20000))
MASTER_HOST=127.0.0.1 MASTER_PORT=$port SHARED_DIR=$work/shared INPUT_ROOTS=$data/corpus \
  MASTER_LOG_LEVEL=warn "$bin" master >"$work/master.out" 2>"$work/master.err" &
master=$!
pids=()
trap 'kill $master "${pids[@]}" 2>/dev/null || true' EXIT
until grep -q listening "$work/master.out" 2>/dev/null; do sleep 0.05; done
for i in 1 2; do
  GRPC_HOST=127.0.0.1 GRPC_PORT=0 SHARED_DIR=$work/shared WORKER_ID=w$i WORKER_SLOTS=1 \
    MASTER_HTTP=http://127.0.0.1:$port WORKER_LOG_LEVEL=warn "$bin" worker >"$work/w$i.out" 2>"$work/w$i.err" &
  pids+=($!)
done
until [ "$(curl -s "http://127.0.0.1:$port/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["workers"])')" = 2 ]; do sleep 0.05; done

cpu() { # PID -> "self_seconds children_seconds" (children: waited-for subprocesses)
  python3 - "$1" <<'PY'
import os, sys
f = open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")", 1)[1].split()
hz = os.sysconf("SC_CLK_TCK")
print((int(f[11]) + int(f[12])) / hz, (int(f[13]) + int(f[14])) / hz)
PY
}
run_job() { # JSON -> prints "seconds job_id"
  local t0 t1 id
  t0=$(date +%s.%N)
  id=$(curl -s -XPOST "http://127.0.0.1:$port/jobs" -H 'content-type: application/json' \
    -H "Authorization: Bearer $(cat "$work/shared/.gridmr/cluster.token")" -d "$1" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')
  GRIDMR_TOKEN_FILE=$work/shared/.gridmr/cluster.token "$bin" status --master "http://127.0.0.1:$port" --wait "$id" >"$work/$id.json"
  t1=$(date +%s.%N)
  python3 -c "import json; d=json.load(open('$work/$id.json')); assert d['status']=='SUCCEEDED', d" >&2
  echo "$(python3 -c "print(round($t1 - $t0, 2))") $id"
}
before=$(for p in "${pids[@]}"; do cpu "$p"; done)
read -r py_s py_id < <(run_job "{\"script_url\": \"$work/shared/wordcount.py\", \"input_url\": \"$input\", \"partitions\": 2}")
after=$(for p in "${pids[@]}"; do cpu "$p"; done)
read -r typed_s typed_id < <(run_job "{\"job\": \"wordcount\", \"input_url\": \"$input\", \"partitions\": 2}")
before_st=$(for p in "${pids[@]}"; do cpu "$p"; done)
read -r st_s st_id < <(run_job "{\"mapper\": \"python3 mapper.py\", \"reducer\": \"python3 reducer.py\", \"files\": [\"$work/shared/mapper.py\", \"$work/shared/reducer.py\"], \"input_url\": \"$input\", \"partitions\": 2}")
after_st=$(for p in "${pids[@]}"; do cpu "$p"; done)

t0=$(date +%s.%N)
LC_ALL=C bash -c "cat '$input' | python3 '$top/examples/streaming/mapper.py' | sort | python3 '$top/examples/streaming/reducer.py'" >"$work/serial.txt"
t1=$(date +%s.%N)
serial_s=$(python3 -c "print(round($t1 - $t0, 2))")

python3 "$shared/bench/same-output" "$work/serial.txt" "$work/shared/jobs/$py_id/out/result.txt" | tail -1
python3 "$shared/bench/same-output" "$work/serial.txt" "$work/shared/jobs/$typed_id/out/result.txt" | tail -1
python3 "$shared/bench/same-output" "$work/serial.txt" "$work/shared/jobs/$st_id/out/result.txt" | tail -1
python3 - "$size" "$serial_s" "$typed_s" \
  "script" "$py_s" "$before" "$after" "$work/$py_id.json" \
  "streaming" "$st_s" "$before_st" "$after_st" "$work/$st_id.json" <<'PY'
import json, sys
size, serial, typed = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rows = [sys.argv[4:9], sys.argv[9:14]]
print(f"| {size} | wall time | vs serial | job phases | worker CPU: GridMR / Python | GridMR share |")
print(f"|---|---|---|---|---|---|")
print(f"| serial pipeline | {serial:.2f} s | 1x | | | |")
for name, secs, before, after, status in rows:
    b = [list(map(float, l.split())) for l in before.strip().splitlines()]
    a = [list(map(float, l.split())) for l in after.strip().splitlines()]
    rust = sum(x[0] - y[0] for x, y in zip(a, b))
    python = sum(x[1] - y[1] for x, y in zip(a, b))
    t = json.load(open(status))["times"]
    secs = float(secs)
    print(f"| GridMR {name} job, 2 workers | {secs:.2f} s | {serial / secs:.2f}x faster | "
          f"map {t['t_map_s']:.2f} s, reduce {t['t_reduce_s']:.2f} s | {rust:.2f} s / {python:.2f} s | "
          f"{100 * rust / max(rust + python, 1e-9):.0f}% |")
print(f"| GridMR typed job, 2 workers | {typed:.2f} s | {serial / typed:.2f}x faster | | | |")
PY
