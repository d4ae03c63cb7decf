#!/usr/bin/env bash
# GridMR across hosts whose links are capped: a master, N workers and a storage host (serving the
# shared folder over its own link), each a network namespace with one link capped at RATE both
# ways (benches/netlab.sh). For N in NS, each job in JOBS and each shuffle mode, one run prints:
# its makespan; the bytes through the storage link and through the busiest worker link; the peak
# RSS of the master and of the largest worker; and the bound the links set: the bytes the busiest
# link must carry (from the job's own input, shuffle and output sizes) divided by RATE, plus the
# makespan of the same job at the same N with no cap (its compute).
#
#   benches/scaling.sh                 NS="1 2 4 8" RATE=100mbit ROWS=10737418 (a 1 GiB sort)
#   benches/scaling.sh --smoke         N=3, 20 Mbit/s, a 16 MB sort and a 4 MB word count
#   DATA=objects benches/scaling.sh    inputs and outputs in an object store (OBJECT_SERVER, moto
#                                      or s3s-fs, on its own host, its link at OBJECT_RATE, default
#                                      none: uncapped) instead of the share, which then carries
#                                      only the shared shuffle
#
# Settings (environment): NS, RATE, ROWS (TeraSort rows of 100 bytes), WORDS_MB (word count's
# input), JOBS ("terasort wordcount"), MODES ("shared local"), RUNS (1), BIN (a built gridmr),
# WORKER_LOG_LEVEL (warn; info logs each reduce's phases: fetched_ms, reduced_ms, uploaded_ms),
# MASTER_LOG_LEVEL (warn), SPECULATION (off: backup attempts would blur the two shuffles' times).
# Each run's task timeline is kept as tasks-N-JOB-MODE-CAPPED.json beside results.txt.
# Every output is checked against the embedded engine's. Needs root, ip, tc, sshd and sshfs.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
smoke=0
[ "${1:-}" = "--smoke" ] && smoke=1
if [ $smoke = 1 ]; then
  NS=${NS:-3} RATE=${RATE:-20mbit} ROWS=${ROWS:-160000} WORDS_MB=${WORDS_MB:-4}
fi
NS=${NS:-1 2 4 8}
RATE=${RATE:-100mbit}
ROWS=${ROWS:-10737418}
WORDS_MB=${WORDS_MB:-256}
JOBS=${JOBS:-terasort wordcount}
MODES=${MODES:-shared local}
RUNS=${RUNS:-1}
DATA=${DATA:-share}
OBJECT_RATE=${OBJECT_RATE:-none}
OBJECT_SERVER=${OBJECT_SERVER:-moto}
data=${GRIDMR_BENCH_DIR:-$top/target/bench-data}/scaling
[ "$(id -u)" = 0 ] || { echo "scaling.sh: needs root (network namespaces)" >&2; exit 2; }
for t in ip tc sshfs /usr/sbin/sshd; do
  command -v "$t" >/dev/null || { echo "scaling.sh: needs $t (apt-get install iproute2 openssh-server sshfs)" >&2; exit 2; }
done
if [ -z "${BIN:-}" ]; then
  cargo build -q --release --bin gridmr --manifest-path "$top/Cargo.toml"
  BIN=$top/target/release/gridmr
fi
# shellcheck source=benches/netlab.sh
source "$top/benches/netlab.sh"
# shellcheck source=benches/lib.sh
source "$top/benches/lib.sh"

store=$data/store
mkdir -p "$store/in" "$data/expected"
# The inputs, on the storage host's disk, and the embedded engine's outputs to check against.
teragen_input "$BIN" "$ROWS" "$store/in/terasort-$ROWS"
if [ ! -f "$store/in/words-$WORDS_MB.txt" ]; then
  python3 - "$store/in/words-$WORDS_MB.txt" "$WORDS_MB" "$top/data/gutenberg" <<'PY'
import os, sys
out, mb, corpus = sys.argv[1], int(sys.argv[2]), sys.argv[3]
text = b"".join(open(os.path.join(corpus, f), "rb").read() for f in sorted(os.listdir(corpus)))
with open(out + ".tmp", "wb") as f:
    n = 0
    while n < mb << 20:
        f.write(text); n += len(text)
os.rename(out + ".tmp", out)
PY
fi
expected() { # JOB -> sha1 of the embedded engine's output
  local f=$data/expected/$1-$ROWS-$WORDS_MB.sha1
  if [ ! -f "$f" ]; then
    local in
    case $1 in terasort) in="$store/in/terasort-$ROWS/part-m-*" ;; wordcount) in=$store/in/words-$WORDS_MB.txt ;; esac
    rm -rf "$data/out-embedded"
    "$BIN" local --job "$1" --input "$in" --partitions 4 --output "$data/out-embedded" --work-dir "$data/work" >/dev/null
    sort_parts "$data/out-embedded" | sha1sum | cut -d' ' -f1 > "$f"
    rm -rf "$data/out-embedded"
  fi
  cat "$f"
}
sort_parts() { # a job's output, in one order whatever its partitioning
  cat "$1"/part-r-* | LC_ALL=C sort
}
object_parts() { # STATUS: the parts its _SUCCESS manifest names, read from the store, sorted;
  # then the objects are deleted (moto keeps them in memory, s3s-fs on this machine's disk)
  python3 - "$1" <<'PY' | LC_ALL=C sort
import json, os, sys, boto3
out = json.loads(sys.argv[1])["output_dir"]
bucket, prefix = out[len("s3://"):].split("/", 1)
s3 = boto3.client("s3", endpoint_url=os.environ["S3"], aws_access_key_id="lab",
                  aws_secret_access_key="lab-secret", region_name="us-east-1")
manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "/_SUCCESS")["Body"].read())
for p in manifest["parts"]:
    sys.stdout.buffer.write(s3.get_object(Bucket=bucket, Key=prefix + "/" + p["name"])["Body"].read())
for p in manifest["parts"] + [{"name": "_SUCCESS"}]:
    s3.delete_object(Bucket=bucket, Key=prefix + "/" + p["name"])
PY
}

maxn=0
for n in $NS; do [ "$n" -gt "$maxn" ] && maxn=$n; done
tag=gl$(( $$ % 10000 ))
pids=()
trap 'declare -F stop_cluster >/dev/null && stop_cluster; lab_down' EXIT
lab_up "$tag" "$maxn" "$RATE" "$store"
objects=()
if [ "$DATA" = objects ]; then
  lab_objects "$OBJECT_RATE" "$OBJECT_SERVER"
  s3=http://$(lab_host_ip o):9000
  objects=(OBJECT_BUCKETS=s3://lab-in,s3://lab-out AWS_ENDPOINT="$s3" AWS_ALLOW_HTTP=true
    AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=lab AWS_SECRET_ACCESS_KEY=lab-secret)
  # The buckets and the inputs, put with the same keys (one request an object: the server keeps
  # each object's digest, which s3s-fs would otherwise compute at every read).
  S3=$s3 python3 - "$store/in" "terasort-$ROWS" "words-$WORDS_MB.txt" <<'PY'
import os, sys, boto3
root, tera, words = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=os.environ["S3"], aws_access_key_id="lab",
                  aws_secret_access_key="lab-secret", region_name="us-east-1")
for b in ("lab-in", "lab-out"):
    s3.create_bucket(Bucket=b)
names = [tera + "/" + f for f in sorted(os.listdir(os.path.join(root, tera)))] + [words]
for name in names:
    with open(os.path.join(root, name), "rb") as f:
        s3.put_object(Bucket="lab-in", Key=name, Body=f)
PY
fi
master_ip=$(lab_host_ip m)
port=18080
url=http://$master_ip:$port
pids=()
results=$data/results.txt
: > "$results"

start_cluster() { # N
  pids=()
  rm -rf "$store/jobs" "$data/wdir"
  # No result.txt: a job's output crosses the storage link once, as its part files.
  lab_run m env MASTER_HOST="$master_ip" MASTER_PORT=$port SHARED_DIR="$LAB_MNT" MASTER_LOG_LEVEL=${MASTER_LOG_LEVEL:-warn} \
    WORKER_TIMEOUT_S=30 SPECULATION=${SPECULATION:-off} RESULT_TXT_MAX_BYTES=0 "${objects[@]}" "$BIN" master >"$data/master.out" 2>"$data/master.err" &
  pids+=($!)
  local deadline=$((SECONDS + 60))
  until [ -s "$store/.gridmr/cluster.token" ] && curl -sf "$url/health" >/dev/null; do
    [ $SECONDS -lt $deadline ] || { cat "$data/master.err" >&2; exit 1; }
    sleep 0.2
  done
  token=$(cat "$store/.gridmr/cluster.token")
  local k
  for k in $(seq "$1"); do
    lab_run "w$k" env GRPC_HOST="$(lab_host_ip "w$k")" GRPC_PORT=50051 SHARED_DIR="$LAB_MNT" \
      WORKER_ID="w$k" WORKER_SLOTS=1 WORKER_DIR="$data/wdir/w$k" MASTER_HTTP="$url" \
      WORKER_LOG_LEVEL=${WORKER_LOG_LEVEL:-warn} GRIDMR_TASK_USER=root "${objects[@]}" "$BIN" worker >"$data/w$k.out" 2>"$data/w$k.err" &
    pids+=($!)
  done
  until [ "$(curl -s "$url/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["workers"])')" = "$1" ]; do
    [ $SECONDS -lt $deadline ] || { cat "$data"/w*.err >&2; exit 1; }
    sleep 0.2
  done
}

stop_cluster() { # the processes themselves (`ip netns exec` may stand between them and $!)
  local f p
  for f in "$LAB_DIR"/pid-*; do
    [ -f "$f" ] || continue
    p=$(cat "$f"); rm -f "$f"
    kill "$p" 2>/dev/null || continue
    while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
  done
  # `wait` with no pid would wait for every child, the object server's too.
  if [ ${#pids[@]} -gt 0 ]; then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  pids=()
}

run_job() { # N JOB MODE CAPPED -> one line in $results
  local n=$1 job=$2 mode=$3 capped=$4 body id t0 t1 status
  local in_t=$LAB_MNT/in/terasort-$ROWS/part-m-* in_w=$LAB_MNT/in/words-$WORDS_MB.txt out=""
  if [ "$DATA" = objects ]; then
    in_t=s3://lab-in/terasort-$ROWS/ in_w=s3://lab-in/words-$WORDS_MB.txt
    out=", \"output_url\": \"s3://lab-out/$job-$n-$mode-$capped-$RANDOM\""
  fi
  case $job in
    terasort) body="{\"job\": \"terasort\", \"input_url\": \"$in_t\"$out, \"reduce_partitions\": $((n * 2)), \"force_distributed\": true, \"shuffle_mode\": \"$mode\"}" ;;
    wordcount) body="{\"job\": \"wordcount\", \"input_url\": \"$in_w\"$out, \"map_splits\": $((n * 4)), \"reduce_partitions\": $((n * 2)), \"force_distributed\": true, \"shuffle_mode\": \"$mode\"}" ;;
  esac
  procs=()
  for h in m $(seq -f 'w%g' "$n"); do procs+=("$(cat "$LAB_DIR/pid-$h")"); done
  for p in "${procs[@]}"; do echo 5 > "/proc/$p/clear_refs" 2>/dev/null || true; done
  lab_reset_counters
  t0=$(date +%s.%N)
  local answer
  answer=$(curl -s -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$body" "$url/jobs")
  id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["job_id"])' "$answer" 2>/dev/null) ||
    { echo "$job $mode N=$n: the master refused the job: ${answer:-no answer}" >&2; tail -5 "$data/master.err" >&2; exit 1; }
  while :; do
    status=$(curl -sf -H "authorization: Bearer $token" "$url/jobs/$id?wait_ms=2000")
    case $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["status"])' "$status") in
      SUCCEEDED) break ;;
      FAILED|CANCELLED) echo "$job $mode N=$n: $status" >&2; exit 1 ;;
    esac
  done
  t1=$(date +%s.%N)
  local got
  if [ "$DATA" = objects ]; then
    got=$(S3=$s3 object_parts "$status" | sha1sum | cut -d' ' -f1)
  else
    got=$(sort_parts "$store/jobs/$id/out" | sha1sum | cut -d' ' -f1)
  fi
  [ "$got" = "$(expected "$job")" ] || { echo "$job $mode N=$n: OUTPUT DIFFERS from the embedded engine's" >&2; exit 1; }
  local rss=""
  for p in "${procs[@]}"; do rss+=" $(awk '/VmHWM/ { print $2 }' "/proc/$p/status")"; done
  local bytes
  bytes=$(lab_bytes_since | tr '\n' ';')
  local input shuffle output tmap treduce maps tprep tover
  read -r input shuffle output tmap treduce maps tprep tover < <(python3 -c '
import json, sys
s = json.loads(sys.argv[1]); c = s.get("counters", {})
flat = {}
for k, v in c.items():
    if isinstance(v, dict): flat.update(v)
    else: flat[k] = v
t = s.get("times", {})
print(s.get("input_size_bytes", 0), flat.get("map_output_bytes", 0), flat.get("output_bytes", 0),
      t.get("t_map_s", 0), t.get("t_reduce_s", 0), s.get("map_splits", 0),
      t.get("t_prepare_s", 0), t.get("t_overhead_s", 0))' "$status")
  # The phases' times and the maps, then planning and the rest: the cluster model's
  # calibration takes the CPU cost from the uncapped run (benches/cluster_model.rs).
  echo "$n $job $mode $capped $(python3 -c "print(f'{$t1 - $t0:.2f}')") $input $shuffle $output $tmap $treduce $maps $tprep $tover |$rss |$bytes" >> "$results"
  # Each attempt's dispatch and answer times, for reading where a run spent its time.
  curl -sf -H "authorization: Bearer $token" "$url/jobs/$id/tasks" > "$data/tasks-$n-$job-$mode-$capped.json" || true
  curl -sf -X DELETE -H "authorization: Bearer $token" "$url/jobs/$id?purge=true" >/dev/null || true
}

lab_uncap() { local l ns inner outer; for l in "${LAB_LINKS[@]}"; do IFS=: read -r ns inner outer _ <<<"$l"; tc -n "$ns" qdisc del dev "$inner" root 2>/dev/null || true; tc -n "$LAB_HUB" qdisc del dev "$outer" root 2>/dev/null || true; done; }
# Caps again, and drops what each host's TCP learnt of its paths while they were uncapped (the
# kernel keeps a path's ssthresh and RTT for its next connections): a link whose rate changes
# under a host is no real cluster's, and the first capped run after an uncapped one lost
# segments and waited out retransmission timeouts that no later run did.
lab_recap() {
  local l ns inner outer rate
  for l in "${LAB_LINKS[@]}"; do
    IFS=: read -r ns inner outer rate <<<"$l"
    lab_cap "$ns" "$inner" "$rate"; lab_cap "$LAB_HUB" "$outer" "$rate"
    ip -n "$ns" tcp_metrics flush all 2>/dev/null || true
  done
}

for n in $NS; do
  start_cluster "$n"
  for job in $JOBS; do
    for run in $(seq "$RUNS"); do
      for mode in $MODES; do
        run_job "$n" "$job" "$mode" capped
      done
    done
  done
  # Compute alone: each job at this N with no cap, after every capped run (the workers'
  # connections to each other outlive a run, and the next N starts a cluster of its own).
  lab_uncap
  for job in $JOBS; do
    run_job "$n" "$job" local uncapped
  done
  lab_recap
  stop_cluster
done

python3 "$top/benches/scaling-report.py" "$results" "$RATE" "$DATA" "$OBJECT_SERVER"
