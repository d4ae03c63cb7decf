//! Partitioners on realistic keys: the words of a public-domain text, as word count emits them.
//!
//! `cargo bench --bench partitioner`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gridmr::bundled::wordcount::python_words;
use gridmr::{FastPartitioner, Partitioner, Sha1Partitioner};
use std::hint::black_box;

fn words() -> Vec<String> {
    let text = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/gutenberg/being_ernest.txt"
    ))
    .expect("data/gutenberg/being_ernest.txt");
    let mut out = Vec::new();
    let mut scratch = String::new();
    for line in text.split(|&b| b == b'\n') {
        out.extend(python_words(line, &mut scratch).map(String::from));
    }
    out
}

fn bench(c: &mut Criterion) {
    let keys = words();
    let mut group = c.benchmark_group("partitioner");
    group.throughput(Throughput::Elements(keys.len() as u64));
    let sha1 = Sha1Partitioner;
    let fast = FastPartitioner;
    for r in [4u32, 64] {
        group.bench_with_input(BenchmarkId::new("sha1", r), &r, |b, &r| {
            b.iter(|| {
                keys.iter()
                    .map(|k| sha1.partition(black_box(k), r))
                    .sum::<u32>()
            })
        });
        group.bench_with_input(BenchmarkId::new("fast_xxh3", r), &r, |b, &r| {
            b.iter(|| {
                keys.iter()
                    .map(|k| fast.partition(black_box(k), r))
                    .sum::<u32>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
