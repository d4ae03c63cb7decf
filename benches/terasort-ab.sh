#!/usr/bin/env bash
# TeraSort through the embedded engine, two builds alternated in one run: OLD and NEW (paths to
# `gridmr` binaries, e.g. one built in a worktree of the revision before a change and this tree's
# target/release/gridmr). Each run starts after a `sync`; the two outputs are compared byte for
# byte every run. Prints each build's median wall time, its runs and its peak RSS.
#
#   benches/terasort-ab.sh OLD_BIN NEW_BIN [RUNS] [ROWS]     RUNS: 5; ROWS: 10737418 (1 GiB)
#
# The input (teragen's output, made once by NEW) lives in ${GRIDMR_BENCH_DIR:-target/bench-data}.
set -euo pipefail
old=${1:?usage: terasort-ab.sh OLD_BIN NEW_BIN [RUNS] [ROWS]}
new=${2:?usage: terasort-ab.sh OLD_BIN NEW_BIN [RUNS] [ROWS]}
runs=${3:-5}
rows=${4:-10737418}
top=$(cd "$(dirname "$0")/.." && pwd)
data=${GRIDMR_BENCH_DIR:-$top/target/bench-data}/terasort
input=$data/in-$rows
mkdir -p "$data"
if [ ! -f "$input/_SUCCESS" ]; then
  rm -rf "$input" "$data/ctl"; mkdir -p "$data/ctl"
  awk -v n="$rows" 'BEGIN { for (s = 0; s < n; s += 1048576) { c = n - s < 1048576 ? n - s : 1048576; print s, c > (sprintf("'"$data"'/ctl/gen-%05d.txt", int(s / 1048576) % 2)) } }'
  "$new" local --job teragen --input "$data/ctl" --partitions 0 --output "$input" \
    --work-dir "$data/work" >/dev/null
  rm -f "$input/result.txt" # the parts joined: the input is the parts
fi
cat "$input"/part-m-* >/dev/null # warm the page cache
rm -f "$data"/ab-old.times "$data"/ab-new.times
for _ in $(seq "$runs"); do
  for name in old new; do
    bin=$old; [ "$name" = new ] && bin=$new
    rm -rf "$data/out-$name" "$data/work-$name"
    sync
    /usr/bin/time -f "%e %M" -o "$data/ab-$name.one" "$bin" local --job terasort \
      --input "$input/part-m-*" --partitions 2 --threads 2 --output "$data/out-$name" \
      --work-dir "$data/work-$name" >/dev/null
    cat "$data/ab-$name.one" >> "$data/ab-$name.times"
  done
  cmp -s <(cat "$data"/out-old/part-r-*) <(cat "$data"/out-new/part-r-*) ||
    { echo "the two outputs differ" >&2; exit 1; }
  rm -rf "$data"/out-old "$data"/out-new "$data"/work-old "$data"/work-new
done
python3 - "$data" <<'PY'
import statistics, sys
d = sys.argv[1]
for n in ("old", "new"):
    rows = [tuple(map(float, l.split())) for l in open(f"{d}/ab-{n}.times")]
    t = [r[0] for r in rows]
    print(f"{n}: median {statistics.median(t):.2f} s, runs {t}, peak RSS {max(r[1] for r in rows) / 1024:.0f} MiB")
PY
