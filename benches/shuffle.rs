//! The map side of the shuffle: buffer, sort, spill, merge into one data file and index.
//!
//! `cargo bench --bench shuffle`. Records are `(word, 1u64)` pairs from a public-domain text,
//! repeated. Cases: no combiner with a small budget (many spills, then a merge), with SHA-1 or
//! `FastPartitioner`, and with a budget that holds everything (no spill); a combiner
//! (hash aggregation), and each with LZ4. Reported twice: records/s and MB/s of encoded records.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gridmr::bundled::wordcount::python_words;
use gridmr::codec::encoded_len;
use gridmr::shuffle::{MapSink, SinkTarget};
use gridmr::{
    Combiner, Compression, Counters, FastPartitioner, Partitioner, Sha1Partitioner,
    ShuffleSettings, SumCombiner,
};
use std::sync::Arc;

const RECORDS: usize = 400_000;

fn records() -> Vec<String> {
    let text = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/gutenberg/being_ernest.txt"
    ))
    .expect("data/gutenberg/being_ernest.txt");
    let mut out = Vec::with_capacity(RECORDS);
    let mut scratch = String::new();
    while out.len() < RECORDS {
        for line in text.split(|&b| b == b'\n') {
            out.extend(python_words(line, &mut scratch).map(String::from));
        }
    }
    out.truncate(RECORDS);
    out
}

#[derive(Clone, Copy)]
struct Case {
    name: &'static str,
    combiner: bool,
    compression: Compression,
    budget: u64,
    /// `FastPartitioner` (XXH3) instead of the original's SHA-1.
    fast: bool,
}

const CASES: [Case; 6] = [
    Case {
        name: "spill_merge",
        combiner: false,
        compression: Compression::None,
        budget: 2 << 20,
        fast: false,
    },
    Case {
        name: "spill_merge_fast_partitioner",
        combiner: false,
        compression: Compression::None,
        budget: 2 << 20,
        fast: true,
    },
    Case {
        name: "no_spill_fast_partitioner",
        combiner: false,
        compression: Compression::None,
        budget: 64 << 20,
        fast: true,
    },
    Case {
        name: "spill_merge_lz4",
        combiner: false,
        compression: Compression::Lz4,
        budget: 2 << 20,
        fast: false,
    },
    Case {
        name: "combiner",
        combiner: true,
        compression: Compression::None,
        budget: 64 << 20,
        fast: false,
    },
    Case {
        name: "combiner_lz4",
        combiner: true,
        compression: Compression::Lz4,
        budget: 64 << 20,
        fast: false,
    },
];

fn run_case(case: Case, keys: &[String], dir: &std::path::Path) -> u64 {
    let settings = ShuffleSettings {
        sort_buffer_bytes: case.budget,
        compression: case.compression,
        ..ShuffleSettings::default()
    };
    let partitioner: Arc<dyn Partitioner<String>> = if case.fast {
        Arc::new(FastPartitioner)
    } else {
        Arc::new(Sha1Partitioner)
    };
    let combiner: Option<Arc<dyn Combiner<String, u64>>> = case
        .combiner
        .then(|| Arc::new(SumCombiner) as Arc<dyn Combiner<String, u64>>);
    let target = SinkTarget {
        dir: dir.to_path_buf(),
        stem: "bench".into(),
        partitions: 8,
    };
    let mut sink = MapSink::new(target, settings, partitioner, combiner);
    for k in keys {
        sink.emit_ref(k.as_str(), 1).expect("emit");
    }
    let mut counters = Counters::default();
    let index = sink.finish(&mut counters).expect("finish");
    index.offsets.last().copied().unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    let keys = records();
    let bytes: usize = keys
        .iter()
        .map(|k| encoded_len(k.as_str()) + encoded_len(&1u64))
        .sum();
    let dir = tempfile::tempdir().expect("tempdir");
    for (group_name, throughput) in [
        ("shuffle_records", Throughput::Elements(keys.len() as u64)),
        ("shuffle_bytes", Throughput::Bytes(bytes as u64)),
    ] {
        let mut group = c.benchmark_group(group_name);
        group.sample_size(10);
        group.throughput(throughput);
        for case in CASES {
            group.bench_with_input(BenchmarkId::from_parameter(case.name), &case, |b, &case| {
                b.iter(|| run_case(case, &keys, dir.path()))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
