# shellcheck shell=bash
# Shared by the bench scripts (sourced): TeraSort's input, and a loopback cluster.

# teragen_input BIN ROWS DIR: DIR holds ROWS rows of 100 bytes (teragen's map-only output, one
# control line "first_row count" per million rows), made once.
teragen_input() {
  local bin=$1 rows=$2 dir=$3
  [ -f "$dir/_SUCCESS" ] && return 0
  local ctl=$dir.ctl
  rm -rf "$dir" "$ctl"; mkdir -p "$ctl"
  awk -v n="$rows" -v ctl="$ctl" 'BEGIN { for (s = 0; s < n; s += 1048576) { c = n - s < 1048576 ? n - s : 1048576; print s, c > (sprintf("%s/gen-%05d.txt", ctl, int(s / 1048576) % 2)) } }'
  "$bin" local --job teragen --input "$ctl" --partitions 0 --output "$dir" --work-dir "$dir.work" >/dev/null
  rm -rf "$ctl" "$dir.work" "$dir/result.txt" # the parts joined: the input is the parts
}

# loopback_cluster BIN DIR ROOTS N: a master and N workers × 1 slot on 127.0.0.1, separate
# processes, the share in DIR/shared, worker k's own folder in DIR/wk, inputs allowed under
# ROOTS (comma-separated). Sets $master, $workers (pids), $port; stopped when the script exits.
loopback_cluster() {
  local bin=$1 dir=$2 roots=$3 n=$4 i
  rm -rf "$dir"; mkdir -p "$dir/shared"
  port=$((20000 + RANDOM % 20000))
  MASTER_HOST=127.0.0.1 MASTER_PORT=$port SHARED_DIR=$dir/shared INPUT_ROOTS=$roots \
    MASTER_LOG_LEVEL=warn "$bin" master >"$dir/master.out" 2>"$dir/master.err" &
  master=$!
  workers=()
  trap 'kill $master "${workers[@]}" 2>/dev/null || true' EXIT
  local deadline=$((SECONDS + 30))
  until [ -s "$dir/shared/.gridmr/cluster.token" ] && curl -sf "http://127.0.0.1:$port/health" >/dev/null; do
    [ $SECONDS -lt $deadline ] || { cat "$dir/master.err" >&2; exit 1; }
    sleep 0.05
  done
  for i in $(seq "$n"); do
    GRPC_HOST=127.0.0.1 GRPC_PORT=0 SHARED_DIR=$dir/shared INPUT_ROOTS=$roots WORKER_ID=w$i \
      WORKER_SLOTS=1 WORKER_DIR=$dir/w$i MASTER_HTTP=http://127.0.0.1:$port WORKER_LOG_LEVEL=warn \
      "$bin" worker >"$dir/w$i.out" 2>"$dir/w$i.err" &
    workers+=($!)
  done
  until [ "$(curl -s "http://127.0.0.1:$port/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["workers"])')" = "$n" ]; do
    [ $SECONDS -lt $deadline ] || { cat "$dir"/w*.err >&2; exit 1; }
    sleep 0.05
  done
}
