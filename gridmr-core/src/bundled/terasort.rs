//! TeraSort: generate rows, sort them into one total order, check the
//! result (Hadoop's `teragen`, `terasort` and `teravalidate`).
//!
//! ## Rows
//!
//! A row is 100 bytes of printable ASCII ending in a line feed, so that the
//! data is also text for `sort`, `grep` and the streaming jobs:
//!
//! ```text
//! offset  size  field
//!      0    10  key: printable ASCII (' '..='~'), pseudo-random
//!     10     2  two spaces
//!     12    32  the row number, 32 upper-case hex digits
//!     44     2  two spaces
//!     46    53  filler: letters derived from the row number
//!     99     1  '\n'
//! ```
//!
//! It is `gensort -a`'s layout with a line feed for its CR LF (one more
//! filler byte keeps rows 100 bytes long). Row `i` is a pure function of
//! `i`, so any cut of the work generates the same data.
//!
//! ## Jobs
//!
//! - `teragen` (map-only): its input is control files written by
//!   [`write_gen_input`], lines `first count`; each line becomes `count`
//!   rows. The counters `terasort/rows` and `terasort/checksum` (the sum of
//!   the rows' CRC-32s, order-free) describe what it wrote.
//! - `terasort`: the key is a row's first 10 bytes, the rest its value. A
//!   planning hook samples [`default_samples`] keys (parameter
//!   `terasort.samples`) from ten places spread over the input, read at
//!   once, and keeps the
//!   split points that cut them into the job's partitions (parameter
//!   [`SPLITS_PARAM`]), so a [`RangePartitioner`] sends each key range to one
//!   reducer and the part files, in name order, are one sorted sequence.
//!   The reducer writes rows back unchanged (key, then rest: the job's output
//!   separator is empty).
//! - `teravalidate`: each map task checks that its split is in order and
//!   reports its first and last key, row count and checksum; one reducer
//!   checks the splits against each other in file and offset order and
//!   writes `rows`, `checksum`, `unordered` (0 for a valid sort) and, for
//!   each problem found, a `misorder` line.
//!
//! ```
//! use gridmr_core::{bundled::terasort, JobConfig, LocalEngine};
//! let dir = tempfile::tempdir()?;
//! let engine = LocalEngine::new(dir.path().join("work")).with_threads(2);
//! terasort::write_gen_input(&dir.path().join("ctl"), 2, 500)?;
//! let mut gen = JobConfig::new(dir.path().join("ctl").to_str().unwrap());
//! gen.reduce_partitions = Some(0);
//! let made = engine.run(&terasort::teragen(), &gen)?;
//! let parts = format!("{}/part-m-*", made.output_dir.display());
//! let mut sort = JobConfig::new(parts);
//! sort.reduce_partitions = Some(3);
//! let sorted = engine.run(&terasort::terasort(), &sort)?;
//! let check = JobConfig::new(format!("{}/part-r-*", sorted.output_dir.display()));
//! let report = terasort::read_report(&engine.run(&terasort::teravalidate(), &check)?.output_dir)?;
//! assert_eq!((report.rows, report.unordered), (500, 0));
//! assert_eq!(report.checksum, made.counters.get("terasort", "checksum"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::{Error, Result, UserError, UserResult};
use crate::input::{Codec, InputSplit, Record};
use crate::job::{Job, MapContext, Mapper, PlanContext, ReduceContext, Reducer, Values};
use crate::params::Params;
use crate::partition::{Partitioner, RangePartitioner};
use std::io::Write;
use std::path::Path;

/// Bytes in a row, its line feed included.
pub const ROW_BYTES: usize = 100;
/// Bytes in a row's key.
pub const KEY_BYTES: usize = 10;
/// The parameter holding the sampled split points (a JSON list of keys).
pub const SPLITS_PARAM: &str = "terasort.splits";
/// The most keys sampled to choose split points unless `terasort.samples` says: Hadoop
/// TeraSort's default, whatever the number of reducers.
pub const DEFAULT_SAMPLES: usize = 100_000;
/// Keys sampled per reduce partition unless `terasort.samples` says (at least 10,000 in all, at
/// most [`DEFAULT_SAMPLES`]).
pub const SAMPLES_PER_PARTITION: usize = 1_000;

/// Keys sampled for `partitions` reduce partitions unless `terasort.samples` says:
/// [`SAMPLES_PER_PARTITION`] each, from 10,000 to [`DEFAULT_SAMPLES`]. A thousand keys per
/// range put each partition's size within about 3% of its share (one over the square root of
/// the keys per range); more cost the planner reading them, about 100 bytes a key, through the
/// master's link before the first map starts. (Spark's range partitioner samples 60 a
/// partition; Hadoop's TeraSort 100,000 in all, 100 a partition at 1,000 reducers.)
///
/// ```
/// use gridmr_core::bundled::terasort::{default_samples, DEFAULT_SAMPLES};
/// assert_eq!(default_samples(1), 10_000);
/// assert_eq!(default_samples(16), 16_000);
/// assert_eq!(default_samples(5_000), DEFAULT_SAMPLES);
/// ```
pub fn default_samples(partitions: u32) -> usize {
    (partitions as usize)
        .saturating_mul(SAMPLES_PER_PARTITION)
        .clamp(10_000, DEFAULT_SAMPLES)
}
/// Most rows one control line names (so a task looks at its cancel flag
/// often enough).
pub const ROWS_PER_LINE: u64 = 1 << 20;
/// The counter group of the rows and checksum counters.
pub const COUNTER_GROUP: &str = "terasort";

/// SplitMix64: a fast, well-mixed function of a counter.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Writes row `i` (without its line feed: 99 bytes) into `out`.
///
/// ```
/// let mut row = Vec::new();
/// gridmr_core::bundled::terasort::row(7, &mut row);
/// assert_eq!(row.len(), 99);
/// assert_eq!(&row[12..44], b"00000000000000000000000000000007");
/// ```
pub fn row(i: u64, out: &mut Vec<u8>) {
    out.clear();
    // Five key bytes from each of two mixed words (95^5 < 2^33).
    for word in [mix(i), mix(!i)] {
        let mut w = word;
        for _ in 0..KEY_BYTES / 2 {
            out.push(b' ' + (w % 95) as u8);
            w /= 95;
        }
    }
    out.extend_from_slice(b"  ");
    let _ = write!(out, "{:032X}", i);
    out.extend_from_slice(b"  ");
    for k in 0..53u64 {
        out.push(b'A' + ((i.wrapping_add(k)) % 26) as u8);
    }
}

/// The CRC-32 of a row's bytes (without its line feed): summed, order-free,
/// into a data set's checksum.
pub fn row_checksum(row: &[u8]) -> u64 {
    u64::from(crc32fast::hash(row))
}

/// Writes the control files of `maps` teragen tasks making `rows` rows in
/// all into `dir` (created): `gen-NNNNN.txt`, lines `first count`.
pub fn write_gen_input(dir: &Path, maps: u32, rows: u64) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let maps = u64::from(maps.max(1));
    for m in 0..maps {
        let (first, end) = (rows * m / maps, rows * (m + 1) / maps);
        let mut text = Vec::new();
        let mut at = first;
        while at < end {
            let n = ROWS_PER_LINE.min(end - at);
            let _ = writeln!(text, "{at} {n}");
            at += n;
        }
        let path = dir.join(format!("gen-{m:05}.txt"));
        std::fs::write(&path, text).map_err(|e| Error::io("write", &path, e))?;
    }
    Ok(())
}

/// Makes the rows of each control line.
#[derive(Debug, Clone, Default)]
pub struct GenMapper {
    row: Vec<u8>,
}

impl Mapper for GenMapper {
    type Key = String;
    type Value = ();

    fn map(&mut self, record: &Record<'_>, ctx: &mut MapContext<'_, String, ()>) -> UserResult {
        let text = record.text();
        let line = text.trim();
        if line.is_empty() {
            return Ok(());
        }
        let bad = || UserError::msg(format!("expected `first count`, got {line:?}"));
        let mut fields = line.split_whitespace();
        let (Some(first), Some(count), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(bad());
        };
        let first: u64 = first.parse().map_err(|_| bad())?;
        let count: u64 = count.parse().map_err(|_| bad())?;
        let end = first.checked_add(count).ok_or_else(bad)?;
        let mut checksum = 0u64;
        for i in first..end {
            row(i, &mut self.row);
            checksum = checksum.wrapping_add(row_checksum(&self.row));
            // Rows are ASCII.
            let text = String::from_utf8_lossy(&self.row).into_owned();
            ctx.emit(text, ())?;
        }
        ctx.increment(COUNTER_GROUP, "rows", count);
        ctx.increment(COUNTER_GROUP, "checksum", checksum);
        Ok(())
    }
}

/// Writes rows back whole: the key, then the rest (the job's output
/// separator is empty), the rest decoded into one reused string.
#[derive(Debug, Clone, Default)]
pub struct RowReducer {
    rest: String,
}

impl Reducer for RowReducer {
    type Key = String;
    type Value = String;
    type OutKey = String;
    type OutValue = String;

    fn reduce(
        &mut self,
        key: &String,
        values: &mut Values<'_, String>,
        ctx: &mut ReduceContext<'_, String, String>,
    ) -> UserResult {
        while values.next_into(&mut self.rest) {
            ctx.emit(key, &self.rest)?;
        }
        Ok(())
    }
}

/// `teragen`: rows from control files; run it map-only
/// (`reduce_partitions = 0`).
pub fn teragen() -> Job<GenMapper, GenReducer> {
    Job::new("teragen", GenMapper::default(), GenReducer)
}

/// The reducer type of [`teragen`], which runs map-only: rows pass through.
#[derive(Debug, Clone, Default)]
pub struct GenReducer;

impl Reducer for GenReducer {
    type Key = String;
    type Value = ();
    type OutKey = String;
    type OutValue = ();

    fn reduce(
        &mut self,
        key: &String,
        values: &mut Values<'_, ()>,
        ctx: &mut ReduceContext<'_, String, ()>,
    ) -> UserResult {
        for () in values {
            ctx.emit(key, &())?;
        }
        Ok(())
    }
}

/// A row's key and the rest of it.
fn split_row(bytes: &[u8]) -> (&[u8], &[u8]) {
    bytes.split_at(bytes.len().min(KEY_BYTES))
}

/// Cuts each row into its key and the rest (kept in two reused buffers,
/// so that a row costs no allocation).
#[derive(Debug, Clone, Default)]
pub struct SortMapper {
    key: String,
    rest: String,
}

impl Mapper for SortMapper {
    type Key = String;
    type Value = String;

    fn map(&mut self, record: &Record<'_>, ctx: &mut MapContext<'_, String, String>) -> UserResult {
        let (key, rest) = split_row(record.bytes);
        self.key.clear();
        self.rest.clear();
        // Both halves of ASCII rows are text (each checked once); other input
        // is taken whole, as text, as the key.
        match (std::str::from_utf8(key), std::str::from_utf8(rest)) {
            (Ok(k), Ok(r)) => {
                self.key.push_str(k);
                self.rest.push_str(r);
            }
            _ => self.key.push_str(&record.text()),
        }
        ctx.emit_borrowed(&self.key, &self.rest)?;
        Ok(())
    }
}

/// Samples keys from up to ten places spread over the input, read at once (each place is a
/// ranged read where the input is in an object store: one after the other, their round trips
/// would add up), and returns the split points cutting them into `ctx.partitions` ranges as
/// [`SPLITS_PARAM`].
pub fn sample_split_points(ctx: &PlanContext<'_>) -> std::result::Result<Params, UserError> {
    let samples = ctx
        .params
        .parse::<usize>("terasort.samples")?
        .unwrap_or_else(|| default_samples(ctx.partitions))
        .max(1);
    let total: u64 = ctx.files.iter().map(|f| f.len).sum();
    let places = 10u64;
    let per_place = samples.div_ceil(places as usize);
    let mut splits: Vec<InputSplit> = (0..places)
        .filter_map(|p| {
            // The p-th tenth of the input, as one byte position in one file.
            let mut at = total * p / places;
            let file = ctx.files.iter().find(|f| {
                if at < f.len {
                    true
                } else {
                    at -= f.len;
                    false
                }
            })?;
            // A compressed file is read from its start: its places are one.
            let start = match Codec::of(&file.path) {
                Some(_) => 0,
                None => at,
            };
            Some(InputSplit {
                path: file.path.clone(),
                start,
                end: file.len,
                input: file.input,
            })
        })
        .collect();
    splits.dedup();
    let read: Vec<UserResult<Vec<Vec<u8>>>> = std::thread::scope(|s| {
        let readers: Vec<_> = splits
            .iter()
            .map(|split| {
                s.spawn(move || {
                    ctx.first_lines(split, per_place)
                        .map_err(|e| UserError::msg(e.to_string()))
                })
            })
            .collect();
        readers
            .into_iter()
            .map(|r| {
                r.join()
                    .unwrap_or_else(|_| Err(UserError::msg("a sampling thread panicked")))
            })
            .collect()
    });
    let mut keys: Vec<String> = Vec::with_capacity(samples);
    for lines in read {
        let lines = lines?;
        for line in &lines {
            let (key, _) = split_row(line);
            keys.push(String::from_utf8_lossy(key).into_owned());
        }
    }
    let splits = RangePartitioner::split_points(keys, ctx.partitions.max(1));
    Ok(Params::new().with(SPLITS_PARAM, RangePartitioner::to_param(&splits)))
}

/// The partitioner of [`terasort`]: the split points its planner sampled.
fn range_partitioner(params: &Params) -> std::result::Result<RangePartitioner<String>, UserError> {
    RangePartitioner::from_params(params, SPLITS_PARAM)
}

/// `terasort`: a total order over the input's rows.
pub fn terasort() -> Job<SortMapper, RowReducer> {
    Job::new("terasort", SortMapper::default(), RowReducer::default())
        .with_output_separator("")
        .with_partitioner_from(range_partitioner)
        .with_planner(sample_split_points)
}

/// What one teravalidate map task saw: its first and last key, its rows,
/// their checksum, and how many of its rows were below the row before.
pub type SplitSummary = (String, String, u64, u64, u64);

/// Checks the order within a split and sums it up.
#[derive(Debug, Clone, Default)]
pub struct ValidateMapper {
    first: Option<(String, u64)>,
    last: String,
    rows: u64,
    checksum: u64,
    unordered: u64,
}

impl Mapper for ValidateMapper {
    type Key = (String, u64);
    type Value = SplitSummary;

    fn map(
        &mut self,
        record: &Record<'_>,
        _ctx: &mut MapContext<'_, (String, u64), SplitSummary>,
    ) -> UserResult {
        let (key, _) = split_row(record.bytes);
        let key = String::from_utf8_lossy(key);
        if self.first.is_none() {
            self.first = Some((key.clone().into_owned(), record.offset));
        } else if *key < *self.last {
            self.unordered += 1;
        }
        self.last.clear();
        self.last.push_str(&key);
        self.rows += 1;
        self.checksum = self.checksum.wrapping_add(row_checksum(record.bytes));
        Ok(())
    }

    fn cleanup(&mut self, ctx: &mut MapContext<'_, (String, u64), SplitSummary>) -> UserResult {
        if let Some((first, offset)) = self.first.take() {
            let file = ctx
                .info()
                .input_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let summary = (
                first,
                std::mem::take(&mut self.last),
                self.rows,
                self.checksum,
                self.unordered,
            );
            ctx.emit((file, offset), summary)?;
        }
        Ok(())
    }
}

/// Every split summary goes to partition 0, so that one reducer sees them
/// all in (file, offset) order.
#[derive(Debug, Clone, Copy, Default)]
pub struct FirstPartition;

impl<K: ?Sized> Partitioner<K> for FirstPartition {
    fn partition(&self, _key: &K, _partitions: u32) -> u32 {
        0
    }
}

/// Checks the splits against each other and writes the report.
#[derive(Debug, Clone, Default)]
pub struct ValidateReducer {
    last: Option<String>,
    rows: u64,
    checksum: u64,
    unordered: u64,
}

impl Reducer for ValidateReducer {
    type Key = (String, u64);
    type Value = SplitSummary;
    type OutKey = String;
    type OutValue = String;

    fn reduce(
        &mut self,
        key: &(String, u64),
        values: &mut Values<'_, SplitSummary>,
        ctx: &mut ReduceContext<'_, String, String>,
    ) -> UserResult {
        for (first, last, rows, checksum, unordered) in values {
            if let Some(before) = &self.last {
                if first < *before {
                    self.unordered += 1;
                    ctx.emit(
                        &"misorder".into(),
                        &format!("{} at byte {}: {first:?} after {before:?}", key.0, key.1),
                    )?;
                }
            }
            if unordered > 0 {
                ctx.emit(
                    &"misorder".into(),
                    &format!(
                        "{} from byte {}: {unordered} row(s) out of order",
                        key.0, key.1
                    ),
                )?;
            }
            self.unordered += unordered;
            self.rows += rows;
            self.checksum = self.checksum.wrapping_add(checksum);
            self.last = Some(last);
        }
        Ok(())
    }

    fn cleanup(&mut self, ctx: &mut ReduceContext<'_, String, String>) -> UserResult {
        if ctx.info().partition == Some(0) {
            ctx.emit(&"rows".into(), &self.rows.to_string())?;
            ctx.emit(&"checksum".into(), &self.checksum.to_string())?;
            ctx.emit(&"unordered".into(), &self.unordered.to_string())?;
        }
        Ok(())
    }
}

/// `teravalidate`: checks a sorted output (point it at its `part-r-*`
/// files).
pub fn teravalidate() -> Job<ValidateMapper, ValidateReducer> {
    Job::new(
        "teravalidate",
        ValidateMapper::default(),
        ValidateReducer::default(),
    )
    .with_partitioner(FirstPartition)
}

/// What teravalidate found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Rows read.
    pub rows: u64,
    /// The sum of their CRC-32s (compare with teragen's `terasort/checksum`).
    pub checksum: u64,
    /// Rows (or splits) found below the one before them: 0 when sorted.
    pub unordered: u64,
    /// One line per problem.
    pub problems: Vec<String>,
}

/// Reads teravalidate's output folder (or file).
pub fn read_report(output: &Path) -> Result<Report> {
    let lines: Vec<(String, String)> = crate::output::read_output(output)?;
    let mut report = Report::default();
    let number = |v: &str| {
        v.parse::<u64>()
            .map_err(|e| Error::Codec(format!("teravalidate report {v:?}: {e}")))
    };
    for (k, v) in lines {
        match k.as_str() {
            "rows" => report.rows = number(&v)?,
            "checksum" => report.checksum = number(&v)?,
            "unordered" => report.unordered = number(&v)?,
            _ => report.problems.push(v),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{InputFile, SampleSource};
    use std::sync::{Condvar, Mutex};
    use std::time::{Duration, Instant};

    /// A store whose reads each wait (up to a deadline) until `places` reads are under way, and
    /// which records the most it saw at once; every read gives rows keyed by its offset.
    #[derive(Debug, Default)]
    struct Gate {
        state: Mutex<Reads>,
        changed: Condvar,
    }

    /// Reads under way, the most at once, and each read's (start, lines).
    #[derive(Debug, Default)]
    struct Reads(usize, usize, Vec<(u64, usize)>);

    impl SampleSource for Gate {
        fn first_lines(
            &self,
            split: &InputSplit,
            max_lines: usize,
            _max_bytes: u64,
        ) -> Result<Vec<Vec<u8>>> {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut s = self.state.lock().unwrap();
            s.0 += 1;
            s.1 = s.1.max(s.0);
            s.2.push((split.start, max_lines));
            self.changed.notify_all();
            while s.1 < 10 && Instant::now() < deadline {
                s = self
                    .changed
                    .wait_timeout(s, Duration::from_millis(50))
                    .unwrap()
                    .0;
            }
            s.0 -= 1;
            Ok((0..max_lines)
                .map(|i| format!("{:010}{}", split.start + i as u64, "x".repeat(89)).into_bytes())
                .collect())
        }
    }

    #[test]
    fn the_ten_places_are_read_at_once_and_the_sample_follows_the_partitions() {
        let gate = Gate::default();
        let files = [
            InputFile {
                path: "a".into(),
                len: 600,
                input: 0,
            },
            InputFile {
                path: "b".into(),
                len: 400,
                input: 0,
            },
        ];
        let params = Params::new();
        let ctx = PlanContext {
            files: &files,
            partitions: 16,
            params: &params,
            samples: &gate,
        };
        let planned = sample_split_points(&ctx).unwrap();
        let s = gate.state.lock().unwrap();
        assert_eq!(s.1, 10, "the most reads under way at once");
        let mut places: Vec<(u64, usize)> = s.2.clone();
        places.sort();
        // Ten places, a tenth of the input apart across the two files, 1,600 lines each.
        let starts: Vec<u64> = places.iter().map(|p| p.0).collect();
        assert_eq!(starts, [0, 0, 100, 100, 200, 200, 300, 300, 400, 500]);
        assert!(places.iter().all(|p| p.1 == 1_600));
        let splits = planned.get(SPLITS_PARAM).unwrap();
        assert_eq!(
            serde_json::from_str::<Vec<String>>(splits).unwrap().len(),
            15
        );
    }
}
