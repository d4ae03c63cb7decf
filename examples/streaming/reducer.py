#!/usr/bin/env python3
"""Hadoop-Streaming word count reducer.

Its input is sorted by key, all values of a key together, so it sums runs of
equal keys (the classic streaming reducer, which relies on that order).
"""
import sys

current, total = None, 0
for line in sys.stdin:
    word, _, count = line.rstrip("\n").partition("\t")
    if word != current:
        if current is not None:
            print(f"{current}\t{total}")
        current, total = word, 0
    total += int(count or 0)
if current is not None:
    print(f"{current}\t{total}")
