#!/usr/bin/env python3
"""Hadoop-Streaming word count mapper: input lines in, "word<TAB>1" lines out."""
import sys

for line in sys.stdin:
    for word in line.lower().split():
        print(f"{word}\t1")
