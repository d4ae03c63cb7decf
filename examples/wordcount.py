"""Word count as a GridMR job script: the original GridMR's contract.

    gridmr submit --script examples/wordcount.py --input /data/shared/books --wait

map_func gets one input line (with its newline) and returns (key, value)
pairs; reduce_func gets a key and the list of its values (ints where they
parse as ints) and returns one (key, result) pair.
"""


def map_func(line):
    return [(word, 1) for word in line.lower().split()]


def reduce_func(key, values):
    return key, sum(values)
