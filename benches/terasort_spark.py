"""TeraSort in Spark's RDD API, local[2]: the peer in benches/terasort.sh.

    spark-submit benches/terasort_spark.py INPUT OUTDIR [PARTITIONS]

Rows are lines; the key is a row's first 10 bytes. sortByKey samples the
keys and range-partitions them (Spark's RangePartitioner), as GridMR's
terasort does, so the part files concatenate into one total order.
"""
import sys

from pyspark import SparkConf, SparkContext


def main():
    source, out = sys.argv[1], sys.argv[2]
    parts = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    conf = SparkConf().setMaster("local[2]").setAppName("terasort")
    sc = SparkContext(conf=conf)
    sc.setLogLevel("ERROR")
    rows = sc.textFile(source)
    pairs = rows.map(lambda r: (r[:10], r[10:]))
    ordered = pairs.sortByKey(ascending=True, numPartitions=parts)
    ordered.map(lambda kv: kv[0] + kv[1]).saveAsTextFile(out)
    sc.stop()


if __name__ == "__main__":
    main()
