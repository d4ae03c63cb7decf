"""The table of benches/scaling.sh, from its results file.

    python3 benches/scaling-report.py RESULTS RATE [share|objects [moto|s3s-fs]]

A results line: `N job mode capped|uncapped seconds input shuffle output | rss_kib... | host sent
received; ...` (bytes through each host's link since the run began).

The bound a run is held to is what its links allow, phase by phase (a reduce starts once every
map is done, so the two phases' transfers do not overlap), plus its compute (the same job at the
same N with no cap):

- map phase: the storage host sends the input (I); with the shared shuffle it also takes the map
  output (S) in; with the local shuffle the map output stays on the workers.
- reduce phase: with the shared shuffle the storage host sends S back and takes the output (O)
  in; with the local shuffle it takes O in, and each of N workers sends and receives its share
  of the shuffle, S(N-1)/N^2, over its own link. A link is two halves, each capped at R: what a
  worker serves and what it writes out (its O/N) share its outbound half.

So: shared  bound = max(I, S)/R + max(S, O)/R + compute
    local   bound = I/R + max(O, O/N + S(N-1)/N^2)/R + compute

With DATA=objects the input and output are in an object store whose link is not capped: each
worker reads I/N and writes O/N over its own link, and the storage host carries only the shared
shuffle (S in, then S out):

    shared  bound = max(S, I/N)/R + max(S, O/N)/R + compute
    local   bound = I/(N R) + (O/N + S(N-1)/N^2)/R + compute

(Sessions before 2026-12-05 took max(O/N, S(N-1)/N^2) for the local reduce phase, as if a
worker's upload and the segments it serves used different halves of its link: a bound too low
by up to S(N-1)/N^2 / R.)
"""
import re
import statistics
import sys


def rate_bytes(rate):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(k|m|g)?bit", rate)
    if not m:
        raise SystemExit(f"cannot read the rate {rate!r}")
    return float(m.group(1)) * {None: 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)] / 8


def main():
    path, rate = sys.argv[1], sys.argv[2]
    objects = len(sys.argv) > 3 and sys.argv[3] == "objects"
    server = sys.argv[4] if len(sys.argv) > 4 else "moto"
    r = rate_bytes(rate)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"CPU: {cpu}; every link capped at {rate} each way (tc tbf); the share served by the storage host over its link (sshfs)"
          + (f"; inputs and outputs in an object store ({server}) on an uncapped link" if objects else ""))
    rows, compute = [], {}
    for line in open(path):
        head, rss, links = line.split("|")
        n, job, mode, capped, t, i, s, o, *_phases = head.split()
        n, t, i, s, o = int(n), float(t), int(i), int(s), int(o)
        links = {h: (int(a), int(b)) for h, a, b in (x.split() for x in links.split(";") if x.strip())}
        if capped == "uncapped":
            compute[(n, job)] = t
            continue
        rows.append((n, job, mode, t, i, s, o, [int(x) for x in rss.split()], links))
    print(f"{'N':>2} {'job':9} {'shuffle':7} {'makespan':>9} {'bound':>8} {'ratio':>6} "
          f"{'storage MB out/in':>18} {'busiest worker MB out/in':>25} {'peak RSS MiB master/worker':>27}")
    for n, job, mode, t, i, s, o, rss, links in rows:
        if objects and mode == "shared":
            link = max(s, i / n) / r + max(s, o / n) / r
        elif objects:
            link = i / (n * r) + (o / n + s * (n - 1) / (n * n)) / r
        elif mode == "shared":
            link = max(i, s) / r + max(s, o) / r
        else:
            link = i / r + max(o, o / n + s * (n - 1) / (n * n)) / r
        bound = link + compute.get((n, job), 0)
        st = links.get("s", (0, 0))
        ws = [v for h, v in links.items() if h.startswith("w") and int(h[1:]) <= n]
        w = max(ws, key=max, default=(0, 0))
        mb = lambda b: f"{b / 1e6:.0f}"
        print(f"{n:>2} {job:9} {mode:7} {t:8.1f}s {bound:7.1f}s {t / bound:6.2f} "
              f"{mb(st[0]) + '/' + mb(st[1]):>18} {mb(w[0]) + '/' + mb(w[1]):>25} "
              f"{rss[0] / 1024:>13.0f}/{max(rss[1:]) / 1024:<13.0f}")
    # With RUNS > 1 each mode has several makespans: the ratio of their medians, and the ratio
    # of each run of one mode to the run of the other that followed or preceded it (a pair).
    by = {}
    for n, job, mode, t, *_ in rows:
        by.setdefault((n, job, mode), []).append(t)
    for (n, job, mode), local in sorted(by.items()):
        shared = by.get((n, job, "shared"))
        if mode != "local" or not shared:
            continue
        ratio = statistics.median(shared) / statistics.median(local)
        line = f"N={n} {job}: shared / local = {ratio:.2f}"
        if len(local) > 1:
            pairs = [f"{s / t:.2f}" for s, t in zip(shared, local)]
            line += f" (medians of {len(local)} runs; per pair {', '.join(pairs)})"
        print(line)


if __name__ == "__main__":
    main()
