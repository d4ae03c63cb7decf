#!/usr/bin/env bash
# Word count before and after a change: cost-wc, the embedded engine built at REV, and the
# embedded engine of this working tree, alternated in one run, each after a `sync`.
#
#   benches/wordcount-ab.sh REV [RUNS] [SIZE]      RUNS: 7; SIZE: 1g (default) or 100m
#
# REV is built in a temporary git worktree into target/ab-<REV>; the input and cost-wc are the
# ones benches/wordcount-vs-baseline.sh makes (run it once first). Prints each program's median
# wall time, its ratio to cost-wc, and every run.
set -euo pipefail
rev=${1:?usage: wordcount-ab.sh REV [RUNS] [SIZE]}
runs=${2:-7}
size=${3:-1g}
top=$(cd "$(dirname "$0")/.." && pwd)
data=${GRIDMR_BENCH_DIR:-$top/target/bench-data}
input=$data/corpus/wc-$size.txt
baseline=${COST_WC_TARGET:-${TMPDIR:-/tmp}/gridmr-cost-wc-target}/release/cost-wc
[ -f "$input" ] && [ -x "$baseline" ] || {
  echo "needs $input and $baseline: run benches/wordcount-vs-baseline.sh $size 1 first" >&2
  exit 2
}
sha=$(git -C "$top" rev-parse --short "$rev")
old_target=$top/target/ab-$sha
if [ ! -x "$old_target/release/examples/wordcount" ]; then
  tree=$(mktemp -d)
  git -C "$top" worktree add -q --detach "$tree" "$sha"
  CARGO_TARGET_DIR=$old_target cargo build -q --release --example wordcount \
    --manifest-path "$tree/Cargo.toml"
  git -C "$top" worktree remove --force "$tree"
fi
cargo build -q --release --example wordcount --manifest-path "$top/Cargo.toml"
old=$old_target/release/examples/wordcount
new=$top/target/release/examples/wordcount
out=$data/out-ab
times=$data/ab.times
rm -f "$times"
cat "$input" >/dev/null # warm the page cache
for _ in $(seq "$runs"); do
  for who in cost-wc "$sha" new; do
    rm -rf "$out"
    sync
    case $who in
      cost-wc) cmd=("$baseline" "$input" "$out" 2) ;;
      new) cmd=("$new" --local --input "$input" --output "$out" --threads 2 --top 0) ;;
      *) cmd=("$old" --local --input "$input" --output "$out" --threads 2 --top 0) ;;
    esac
    /usr/bin/time -f "$who %e" -a -o "$times" "${cmd[@]}" >/dev/null
  done
done
rm -rf "$out"
python3 - "$times" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    who, seconds = line.split()
    runs[who].append(float(seconds))
floor = statistics.median(runs["cost-wc"])
for who, r in runs.items():
    m = statistics.median(r)
    print(f"{who:>8}: median {m:.2f} s ({m / floor:.2f}x cost-wc); runs {' '.join(f'{x:.2f}' for x in r)}")
PY
