#!/usr/bin/env bash
# Small script jobs, submit to SUCCEEDED on a loopback cluster (a master and 2 workers × 1 slot,
# release build), polled every 10 ms over one keep-alive connection, median of RUNS (default 5),
# the jobs alternated in one run:
#   - the original's 39-byte sample (../shared/reference/samples/input.txt) with
#     examples/wordcount.py, SINGLE and DISTRIBUTED (force_distributed, 2 partitions);
#   - a process(input_path, output_path) word count over 5.45 MB, SINGLE (partitions 1).
# Each runs on two clusters started side by side: workers with the warm Python fork server
# (PYTHON_FORK_SERVER=on, the default) and with a fresh interpreter per task (off).
# The original's figures (issue 12) are printed beside them; they come from another machine.
#
#   benches/small-jobs.sh            RUNS=9 benches/small-jobs.sh
set -euo pipefail
unset PYTHONUNBUFFERED
runs=${RUNS:-5}
top=$(cd "$(dirname "$0")/.." && pwd)
shared=${GRIDMR_SHARED:-$top/../shared}
[ -f "$shared/reference/samples/input.txt" ] || { echo "needs $shared/reference (set GRIDMR_SHARED)" >&2; exit 2; }
cargo build -q --release --bin gridmr --manifest-path "$top/Cargo.toml"
bin=$top/target/release/gridmr
work=${GRIDMR_BENCH_DIR:-$top/target/bench-data}/small-jobs
rm -rf "$work"; mkdir -p "$work"

# start_cluster runs in a subshell (`read < <(…)`): its processes' pids go to a file, so that
# the trap stops them all.
pidfile=$work/pids
: > "$pidfile"
trap 'kill $(cat "$pidfile") 2>/dev/null || true' EXIT
# start_cluster NAME FORK: a master and 2 workers over their own share; prints the master's URL.
start_cluster() {
  local name=$1 fork=$2 dir=$work/$1 port
  mkdir -p "$dir/shared"
  cp "$top/examples/wordcount.py" "$shared/reference/samples/input.txt" "$dir/shared/"
  cat > "$dir/shared/process_wc.py" <<'PY'
from collections import Counter


def map_func(line):
    return [(w, 1) for w in line.lower().split()]


def reduce_func(key, values):
    return key, sum(values)


def process(input_path, output_path):
    counts = Counter()
    with open(input_path, encoding="utf-8", errors="ignore") as f:
        for line in f:
            counts.update(line.lower().split())
    with open(output_path, "w", encoding="utf-8") as out:
        for word in sorted(counts):
            out.write(f"{word}\t{counts[word]}\n")
PY
  # 5.45 MB of the corpus, whole lines.
  { cat "$shared"/corpus/*/*.txt | head -c 5450000 | sed '$d' > "$dir/shared/process-input.txt"; } || true
  port=$((20000 + RANDOM % 20000))
  MASTER_HOST=127.0.0.1 MASTER_PORT=$port SHARED_DIR=$dir/shared MASTER_LOG_LEVEL=warn \
    "$bin" master >"$dir/master.out" 2>"$dir/master.err" &
  echo $! >> "$pidfile"
  until grep -q listening "$dir/master.out" 2>/dev/null; do sleep 0.05; done
  for i in 1 2; do
    GRPC_HOST=127.0.0.1 GRPC_PORT=0 SHARED_DIR=$dir/shared WORKER_ID=$name-w$i WORKER_SLOTS=1 \
      PYTHON_FORK_SERVER=$fork MASTER_HTTP=http://127.0.0.1:$port WORKER_LOG_LEVEL=warn \
      "$bin" worker >"$dir/w$i.out" 2>"$dir/w$i.err" &
    echo $! >> "$pidfile"
  done
  echo "http://127.0.0.1:$port $dir/shared"
}
read -r warm_url warm_share < <(start_cluster warm on)
read -r cold_url cold_share < <(start_cluster cold off)

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
python3 - "$runs" "$cpu" "$warm_url" "$warm_share" "$cold_url" "$cold_share" <<'PY'
import http.client, json, statistics, sys, time, urllib.parse

runs, cpu = int(sys.argv[1]), sys.argv[2]
clusters = {"warm": sys.argv[3:5], "cold": sys.argv[5:7]}


class Master:
    def __init__(self, url, share):
        u = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port)
        self.share = share
        token = open(f"{share}/.gridmr/cluster.token").read().strip()
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        self.conn.request(method, path, body and json.dumps(body), self.headers)
        r = self.conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise SystemExit(f"{method} {path}: {r.status} {data[:300]!r}")
        return json.loads(data)

    def wait_workers(self, n):
        deadline = time.time() + 30
        while self.call("GET", "/health")["workers"] < n:
            if time.time() > deadline:
                raise SystemExit("workers did not join")
            time.sleep(0.05)

    def run(self, body):
        """Seconds from submit to SUCCEEDED, polled every 10 ms."""
        t0 = time.perf_counter()
        job = self.call("POST", "/jobs", body)["job_id"]
        while True:
            st = self.call("GET", f"/jobs/{job}")
            if st["status"] == "SUCCEEDED":
                return time.perf_counter() - t0, st
            if st["status"] in ("FAILED", "CANCELLED"):
                raise SystemExit(f"job {job}: {st.get('error')}")
            time.sleep(0.01)


masters = {k: Master(*v) for k, v in clusters.items()}
for m in masters.values():
    m.wait_workers(2)
jobs = {
    "39-byte sample, SINGLE": lambda s: {"script_url": f"{s}/wordcount.py", "input_url": f"{s}/input.txt"},
    "39-byte sample, DISTRIBUTED": lambda s: {"script_url": f"{s}/wordcount.py",
        "input_url": f"{s}/input.txt", "force_distributed": True, "partitions": 2},
    "process() over 5.45 MB, SINGLE": lambda s: {"script_url": f"{s}/process_wc.py",
        "input_url": f"{s}/process-input.txt", "partitions": 1},
}
original = {"39-byte sample, SINGLE": 0.30, "39-byte sample, DISTRIBUTED": 0.60,
            "process() over 5.45 MB, SINGLE": 0.30}
target = {"39-byte sample, SINGLE": 0.15, "39-byte sample, DISTRIBUTED": 0.30,
          "process() over 5.45 MB, SINGLE": 0.30}
times = {(j, c): [] for j in jobs for c in masters}
modes = {}
# One warm-up job per cluster (first connection, the first fork server start), not counted.
for c, m in masters.items():
    m.run(jobs["39-byte sample, SINGLE"](m.share))
for _ in range(runs):
    for j, body in jobs.items():
        for c, m in masters.items():
            secs, st = m.run(body(m.share))
            times[(j, c)].append(secs)
            modes[j] = st.get("mode")
print(f"CPU: {cpu}; median of {runs}, submit to SUCCEEDED, 10 ms polling\n")
print("| job | mode | original (issue 12) | GridMR, fork server | GridMR, fresh Python | target |")
print("|---|---|---|---|---|---|")
for j in jobs:
    w = statistics.median(times[(j, "warm")])
    c = statistics.median(times[(j, "cold")])
    print(f"| {j} | {modes[j]} | {original[j]:.2f} s | {w:.3f} s | {c:.3f} s | ≤ {target[j]:.2f} s |")
PY
