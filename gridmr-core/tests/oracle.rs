//! Property tests: whatever the input, split count, partition count, memory budget, combiner
//! and compression, the engine's output equals a simple sequential oracle.

mod common;

use common::{oracle_word_count, run_job};
use gridmr_core::bundled::wordcount::{python_words, SumReducer, WordCountMapper};
use gridmr_core::output::read_output;
use gridmr_core::{
    Compression, FastPartitioner, Job, MapContext, Mapper, Record, ReduceContext, Reducer,
    SumCombiner, UserResult, Values,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Keys that are not strings: `(word length, word)`, to exercise the generic key path.
#[derive(Clone, Default)]
struct LenWord(String);

impl Mapper for LenWord {
    type Key = (u32, String);
    type Value = u64;
    fn map(&mut self, r: &Record<'_>, ctx: &mut MapContext<'_, (u32, String), u64>) -> UserResult {
        let words: Vec<String> = python_words(r.bytes, &mut self.0)
            .map(String::from)
            .collect();
        for w in words {
            ctx.emit((w.chars().count() as u32, w), 1)?;
        }
        Ok(())
    }
}

#[derive(Clone)]
struct SumPairs;

impl Reducer for SumPairs {
    type Key = (u32, String);
    type Value = u64;
    type OutKey = (u32, String);
    type OutValue = u64;
    fn reduce(
        &mut self,
        key: &(u32, String),
        values: &mut Values<'_, u64>,
        ctx: &mut ReduceContext<'_, (u32, String), u64>,
    ) -> UserResult {
        ctx.emit(key, &values.sum())?;
        Ok(())
    }
}

fn line() -> impl Strategy<Value = String> {
    let word = prop::sample::select(vec![
        "a",
        "b",
        "Hola",
        "hola",
        "é",
        "ÉTÉ",
        "x\u{2003}y",
        "\u{1c}",
        "zz",
    ]);
    let sep = prop::sample::select(vec![" ", "  ", "\t", ""]);
    prop::collection::vec((word, sep), 0..6)
        .prop_map(|ws| ws.into_iter().map(|(w, s)| format!("{w}{s}")).collect())
}

fn file() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((line(), prop::bool::ANY), 0..30),
        prop::bool::ANY,
    )
        .prop_map(|(lines, final_newline)| {
            let mut out = Vec::new();
            let n = lines.len();
            for (i, (l, crlf)) in lines.into_iter().enumerate() {
                out.extend_from_slice(l.as_bytes());
                if i + 1 < n || final_newline {
                    out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
                }
            }
            out
        })
}

#[derive(Debug, Clone)]
struct Setup {
    threads: usize,
    splits: u32,
    partitions: u32,
    budget: u64,
    lz4: bool,
    combiner: bool,
    fast_partitioner: bool,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        1usize..4,
        1u32..25,
        1u32..6,
        prop::sample::select(vec![200u64, 2 << 10, 64 << 20]),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(threads, splits, partitions, budget, lz4, combiner, fast_partitioner)| Setup {
                threads,
                splits,
                partitions,
                budget,
                lz4,
                combiner,
                fast_partitioner,
            },
        )
}

fn write_inputs(files: &[Vec<u8>]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (i, f) in files.iter().enumerate() {
        std::fs::write(dir.path().join(format!("in-{i}.txt")), f).unwrap();
    }
    // An input of only empty files is valid: it has no records.
    if files.is_empty() {
        std::fs::write(dir.path().join("empty.txt"), b"").unwrap();
    }
    dir
}

fn configure(s: &Setup) -> impl FnOnce(&mut gridmr_core::JobConfig) + '_ {
    move |c| {
        c.splits.splits = Some(s.splits);
        c.reduce_partitions = Some(s.partitions);
        c.shuffle.sort_buffer_bytes = s.budget;
        c.shuffle.merge_factor = 3;
        c.shuffle.block_bytes = 256;
        c.shuffle.compression = if s.lz4 {
            Compression::Lz4
        } else {
            Compression::None
        };
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn word_count_equals_the_oracle(files in prop::collection::vec(file(), 0..4), s in setup()) {
        let inputs = write_inputs(&files);
        let slices: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
        let want = oracle_word_count(&slices);
        let mut job = Job::new("wc", WordCountMapper::default(), SumReducer);
        if s.combiner {
            job = job.with_combiner(SumCombiner);
        }
        if s.fast_partitioner {
            job = job.with_partitioner(FastPartitioner);
        }
        let run = run_job(&job, inputs.path().to_str().unwrap(), s.threads, configure(&s));
        prop_assert_eq!(run.counts(), want);
    }

    #[test]
    fn compound_keys_equal_the_oracle(files in prop::collection::vec(file(), 1..3), s in setup()) {
        let inputs = write_inputs(&files);
        let slices: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
        let want: BTreeMap<(u32, String), u64> = oracle_word_count(&slices)
            .into_iter()
            .map(|(w, n)| ((w.chars().count() as u32, w), n))
            .collect();
        let mut job = Job::new("lw", LenWord::default(), SumPairs);
        if s.combiner {
            job = job.with_combiner(SumCombiner);
        }
        let run = run_job(&job, inputs.path().to_str().unwrap(), s.threads, configure(&s));
        let got: Vec<((u32, String), u64)> = read_output(&run.outcome.output_dir).unwrap();
        prop_assert_eq!(got.len(), want.len());
        prop_assert_eq!(got.into_iter().collect::<BTreeMap<_, _>>(), want);
    }
}

/// `(number on the line, the line's offset)`: integer keys (negatives too)
/// for the raw path, and values whose order shows the merge's stability.
#[derive(Clone, Default)]
struct NumberAt;

impl Mapper for NumberAt {
    type Key = i64;
    type Value = u64;
    fn map(&mut self, r: &Record<'_>, ctx: &mut MapContext<'_, i64, u64>) -> UserResult {
        let n: i64 = r.text().trim().parse().unwrap_or(0);
        ctx.emit(n, r.offset)?;
        Ok(())
    }
}

/// Writes each key's values in the order the reducer got them.
#[derive(Clone, Default)]
struct InOrder;

impl Reducer for InOrder {
    type Key = i64;
    type Value = u64;
    type OutKey = i64;
    type OutValue = Vec<u64>;
    fn reduce(
        &mut self,
        key: &i64,
        values: &mut Values<'_, u64>,
        ctx: &mut ReduceContext<'_, i64, Vec<u64>>,
    ) -> UserResult {
        ctx.emit(key, &values.collect())?;
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Integer keys without a combiner take the serialized buffer and the
    /// byte-level merges: each partition comes out in key order, and a key's
    /// values in map-task order, emit order within a task (the order of
    /// their lines in the one input file).
    #[test]
    fn integer_keys_sort_and_keep_their_values_in_order(
        numbers in prop::collection::vec(-40i64..40, 1..400), s in setup(),
    ) {
        let text: String = numbers.iter().map(|n| format!("{n}\n")).collect();
        let inputs = write_inputs(&[text.clone().into_bytes()]);
        let mut want: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
        let mut offset = 0u64;
        for n in &numbers {
            want.entry(*n).or_default().push(offset);
            offset += format!("{n}\n").len() as u64;
        }
        let job = Job::new("num", NumberAt, InOrder);
        let run = run_job(&job, inputs.path().to_str().unwrap(), s.threads, configure(&s));
        let mut got: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
        for p in 0..s.partitions {
            let part = run.outcome.output_dir.join(format!("part-r-{p:05}"));
            let lines: Vec<(i64, Vec<u64>)> = read_output(&part).unwrap();
            prop_assert!(lines.windows(2).all(|w| w[0].0 < w[1].0), "partition {} sorted", p);
            got.extend(lines);
        }
        prop_assert_eq!(got, want);
    }
}
