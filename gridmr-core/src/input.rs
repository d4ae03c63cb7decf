//! Job input: which files a job reads, how they are cut into map splits, and the records a
//! mapper sees.
//!
//! An input is a file, a directory (its regular files, not recursive, skipping names that start
//! with `.` or `_` as Hadoop does) or a glob pattern. Text files are cut into **line-aligned byte
//! ranges**: a split owns every line whose first byte lies in `[start, end)`, so a split that
//! starts mid-line skips to the next line and a split reads past its end to finish its last line.
//! A compressed file (`.gz`, see [`Codec`]) is one split, read whole and decompressed.

mod codec;
mod lines;

pub use codec::Codec;
pub use lines::{decode_ignoring_invalid, read_whole, LineReader, LineRecords, Lines, Record};

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a planning hook reads samples of the input from ([`crate::PlanContext::first_lines`]):
/// the files themselves ([`FileSamples`]), or, on a cluster, an object store.
pub trait SampleSource: Send + Sync + std::fmt::Debug {
    /// Up to `max_lines` lines of `split` (those that begin in its range, terminators removed),
    /// reading no more than about `max_bytes` past its start.
    fn first_lines(
        &self,
        split: &InputSplit,
        max_lines: usize,
        max_bytes: u64,
    ) -> Result<Vec<Vec<u8>>>;
}

/// Samples read from local files with a [`LineReader`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FileSamples;

impl SampleSource for FileSamples {
    fn first_lines(
        &self,
        split: &InputSplit,
        max_lines: usize,
        max_bytes: u64,
    ) -> Result<Vec<Vec<u8>>> {
        let window = InputSplit {
            end: split.end.min(split.start.saturating_add(max_bytes)),
            ..split.clone()
        };
        read_first_lines(&window, max_lines)
    }
}

/// Up to `max_lines` lines of the local split `split`, terminators removed.
pub fn read_first_lines(split: &InputSplit, max_lines: usize) -> Result<Vec<Vec<u8>>> {
    let mut reader = LineReader::open(split, LineReader::DEFAULT_BUFFER)?;
    let mut lines = Vec::new();
    while lines.len() < max_lines {
        match reader.next_line()? {
            Some((_, bytes)) => lines.push(bytes.to_vec()),
            None => break,
        }
    }
    Ok(lines)
}

/// How a job's input files become records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum InputFormat {
    /// One record per line (terminator `\n` or `\r\n` removed); files are split by byte ranges.
    #[default]
    Lines,
    /// One record per file: the whole contents, with the file's path. One map task per file.
    WholeFiles,
}

/// A byte range of one input file, the unit of work of one map task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputSplit {
    /// The file.
    pub path: PathBuf,
    /// First byte (inclusive).
    pub start: u64,
    /// Last byte (exclusive).
    pub end: u64,
    /// Which of the job's inputs the file was listed from (0 for the first),
    /// so that a mapper can tell its sources apart (a reduce-side join).
    #[serde(default)]
    pub input: u32,
}

impl InputSplit {
    /// The split's length in bytes.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// True for an empty range.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How to cut input files into splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitPolicy {
    /// The largest split, in bytes (default 128 MiB, Hadoop's block and Spark's
    /// `maxPartitionBytes`). Jobs whose map output is about their input's size get smaller
    /// splits, fitted to the map buffer ([`SplitPolicy::fitting`]); a combined job's output is
    /// about its distinct keys', so it keeps these, and each task's fixed cost (a table built
    /// and sorted, a run written and merged) is paid half as often as with 64 MiB: word count on
    /// 1 GiB went from 3.37 s to 3.27 s (docs/performance.md).
    pub max_split_bytes: u64,
    /// The slots (or threads) that run the splits (default 1): without an explicit `splits`
    /// count the input is cut into a multiple of this many, at least one wave, so that every
    /// slot has work in every wave. The embedded engine sets it to its thread count, a
    /// cluster to its live workers' slots.
    pub min_splits: u32,
    /// Cut the input into about exactly this many splits (the original's `map_splits`);
    /// overrides the two settings above. Each non-empty file gives at least one split.
    pub splits: Option<u32>,
}

impl SplitPolicy {
    /// This policy with splits no larger than two thirds of the map buffer
    /// (`sort_buffer_bytes`), at least 1 MiB: a map whose output is about the
    /// size of its input (a sort, a join) then writes it once, without
    /// spilling and merging runs. An explicit `splits` count is kept.
    ///
    /// ```
    /// use gridmr_core::{ShuffleSettings, SplitPolicy};
    /// let p = SplitPolicy::default().fitting(&ShuffleSettings::default());
    /// assert_eq!(p.max_split_bytes, (64 << 20) * 2 / 3);
    /// ```
    pub fn fitting(mut self, shuffle: &crate::ShuffleSettings) -> Self {
        let fit = (shuffle.sort_buffer_bytes / 3 * 2).max(1 << 20);
        self.max_split_bytes = self.max_split_bytes.min(fit);
        self
    }
}

impl Default for SplitPolicy {
    fn default() -> Self {
        SplitPolicy {
            max_split_bytes: 128 << 20,
            min_splits: 1,
            splits: None,
        }
    }
}

/// One input file and its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// The path.
    pub path: PathBuf,
    /// Size in bytes when listed.
    pub len: u64,
    /// Which of the job's inputs listed it (0 for the first).
    #[serde(default)]
    pub input: u32,
}

fn hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') || n.starts_with('_'))
}

fn glob_chars(spec: &str) -> bool {
    spec.contains(['*', '?', '['])
}

/// Lists the files an input specification names, sorted by path.
///
/// `spec` is a file, a directory or a glob pattern (`data/*.txt`). It is an error when it
/// names nothing: a job over no input is almost always a typo.
pub fn list_input(spec: &str) -> Result<Vec<InputFile>> {
    let bad = |reason: String| Error::Input {
        spec: spec.to_owned(),
        reason,
    };
    let path = Path::new(spec);
    let mut paths = Vec::new();
    if path.is_file() {
        paths.push(path.to_path_buf());
    } else if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| Error::io("list", path, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", path, e))?;
            let p = entry.path();
            if !hidden(&p) && p.is_file() {
                paths.push(p);
            }
        }
    } else if glob_chars(spec) {
        let matches = glob::glob(spec).map_err(|e| bad(format!("bad glob pattern: {e}")))?;
        for m in matches {
            let p = m.map_err(|e| bad(e.to_string()))?;
            if p.is_file() && !hidden(&p) {
                paths.push(p);
            }
        }
    } else {
        return Err(bad("no such file or directory".into()));
    }
    if paths.is_empty() {
        return Err(bad("matches no files".into()));
    }
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let len = std::fs::metadata(&p)
                .map_err(|e| Error::io("stat", &p, e))?
                .len();
            Ok(InputFile {
                path: p,
                len,
                input: 0,
            })
        })
        .collect()
}

/// Lists the files of several inputs (each a file, a folder or a glob, as
/// [`list_input`] takes them), in the order given, each file marked with
/// the position of the input that named it. A file named by two inputs is
/// read twice, once for each.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("left.tsv"), "1\ta\n")?;
/// std::fs::write(dir.path().join("right.tsv"), "1\tb\n")?;
/// let specs = [dir.path().join("left.tsv"), dir.path().join("right.tsv")]
///     .map(|p| p.display().to_string());
/// let files = gridmr_core::input::list_inputs(&specs)?;
/// assert_eq!(files.iter().map(|f| f.input).collect::<Vec<_>>(), [0, 1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn list_inputs<S: AsRef<str>>(specs: &[S]) -> Result<Vec<InputFile>> {
    if specs.is_empty() {
        return Err(Error::Input {
            spec: String::new(),
            reason: "a job needs at least one input".into(),
        });
    }
    let mut all = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let input = u32::try_from(i).map_err(|_| Error::Input {
            spec: spec.as_ref().to_owned(),
            reason: "too many inputs".into(),
        })?;
        all.extend(
            list_input(spec.as_ref())?
                .into_iter()
                .map(|f| InputFile { input, ..f }),
        );
    }
    Ok(all)
}

/// Cuts `files` into splits according to `policy` and `format`.
///
/// Text files are cut into ranges of about the same size; a whole-file input gives one split
/// per file, and so does a compressed file ([`Codec`]: a gzip stream cannot be entered in
/// the middle). Empty files give no split.
///
/// How many: `splits` when the policy names it (at least one per non-empty file); otherwise
/// enough that none exceeds `max_split_bytes` (each file cut on its own, so at least one per
/// non-empty file), at least `min_splits`, **rounded up to whole waves** (a multiple of
/// `min_splits`, the slots or threads that run them), so that no last wave runs a split or
/// two while the other slots wait: 25 files of 43 MB on 8 slots give 32 splits, 7 of the
/// files cut in two. Files are not cut to round up a count they set when the splits would
/// average under 4 MiB (five files of a line each on 2 slots stay 5 splits). That count is
/// then shared among the files that can be cut so that the largest split is as small as it
/// can be ([`apportion`]): two files of 105 and 95 MB on 8 slots give 4 splits each, not 5
/// and 4 (nine splits, two waves).
///
/// ```
/// use gridmr_core::input::{plan_splits, InputFile, InputFormat, SplitPolicy};
/// let files = vec![InputFile { path: "a.txt".into(), len: 100, input: 0 }];
/// let policy = SplitPolicy { splits: Some(3), ..SplitPolicy::default() };
/// let splits = plan_splits(&files, &policy, InputFormat::Lines);
/// assert_eq!(splits.iter().map(|s| (s.start, s.end)).collect::<Vec<_>>(),
///            vec![(0, 34), (34, 67), (67, 100)]);
/// ```
pub fn plan_splits(
    files: &[InputFile],
    policy: &SplitPolicy,
    format: InputFormat,
) -> Vec<InputSplit> {
    let nonempty: Vec<&InputFile> = files.iter().filter(|f| f.len > 0).collect();
    if format == InputFormat::WholeFiles {
        return nonempty
            .into_iter()
            .map(|f| InputSplit {
                path: f.path.clone(),
                start: 0,
                end: f.len,
                input: f.input,
            })
            .collect();
    }
    let total: u64 = nonempty.iter().map(|f| f.len).sum();
    // A compressed file cannot be entered in the middle: it is one split, however large.
    let whole = |f: &InputFile| Codec::of(&f.path).is_some();
    let fixed = nonempty.iter().filter(|f| whole(f)).count() as u64;
    let (wanted, cap) = match policy.splits {
        Some(n) => (u64::from(n.max(1)), u64::MAX),
        None => {
            let cap = policy.max_split_bytes.max(1);
            let slots = u64::from(policy.min_splits.max(1));
            let waves = |n: u64| n.div_ceil(slots) * slots;
            // By size: the files that can be cut, in pieces under the cap, beside one split
            // per compressed file (its bytes ask no more of the others).
            let cuttable: u64 = nonempty.iter().filter(|f| !whole(f)).map(|f| f.len).sum();
            let by_size = waves((cuttable.div_ceil(cap) + fixed).max(slots));
            // Each file is cut on its own, into at least `len / cap` splits (one for a small
            // file): their sum is the fewest there can be. Rounded up to whole waves too,
            // unless that cuts small files into smaller pieces, whose short wave costs little.
            let by_files = nonempty
                .iter()
                .map(|f| if whole(f) { 1 } else { f.len.div_ceil(cap) })
                .fold(0u64, u64::saturating_add);
            let wanted = match by_files <= by_size {
                true => by_size,
                false if total / waves(by_files) >= WAVE_PIECE_MIN => waves(by_files),
                false => by_files,
            };
            (wanted, cap)
        }
    };
    let lens: Vec<u64> = nonempty
        .iter()
        .filter(|f| !whole(f))
        .map(|f| f.len)
        .collect();
    let mut cut = apportion(&lens, wanted.saturating_sub(fixed), cap).into_iter();
    let counts = nonempty
        .iter()
        .map(|f| if whole(f) { Some(1) } else { cut.next() });
    let mut out = Vec::new();
    for (f, pieces) in nonempty.iter().zip(counts) {
        let Some(pieces) = pieces else { break };
        // `pieces` ranges, the first `len % pieces` of them a byte longer than the rest.
        let (size, longer) = (f.len / pieces, f.len % pieces);
        let mut start = 0;
        for i in 0..pieces {
            let end = start + size + u64::from(i < longer);
            out.push(InputSplit {
                path: f.path.clone(),
                start,
                end,
                input: f.input,
            });
            start = end;
        }
    }
    out
}

/// The smallest average split that rounding a count set by the files up to whole waves may
/// make: below it, files are not cut to fill a wave (a wave of small splits is short).
const WAVE_PIECE_MIN: u64 = 4 << 20;

/// How many pieces each of the files of `lens` (each non-zero) is cut into: at least one, at
/// least enough that none exceeds `cap`, at most a piece per byte, and `wanted` in all where
/// those allow, shared so that the largest piece is as small as it can be.
///
/// The smallest size `s` whose pieces (`ceil(len / s)` a file) number at most `wanted` is
/// found by bisection; the pieces left over then go one at a time to the file whose pieces
/// are the largest, which evens the sizes out without making any larger.
pub fn apportion(lens: &[u64], wanted: u64, cap: u64) -> Vec<u64> {
    let least = |len: u64| len.div_ceil(cap.max(1)).max(1);
    let count = |size: u64| -> u64 {
        lens.iter()
            .map(|&len| least(len).max(len.div_ceil(size)))
            .fold(0u64, u64::saturating_add)
    };
    let (mut lo, mut hi) = (1u64, lens.iter().copied().max().unwrap_or(1).max(1));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match count(mid) <= wanted {
            true => hi = mid,
            false => lo = mid + 1,
        }
    }
    let mut pieces: Vec<u64> = lens
        .iter()
        .map(|&len| least(len).max(len.div_ceil(lo)).min(len))
        .collect();
    let mut have: u64 = pieces.iter().sum();
    // The file whose pieces are largest first: len / pieces, compared without division.
    let mut heap: std::collections::BinaryHeap<Largest> = lens
        .iter()
        .zip(&pieces)
        .enumerate()
        .filter(|(_, (&len, &n))| n < len)
        .map(|(i, (&len, &n))| Largest { len, pieces: n, i })
        .collect();
    while have < wanted {
        let Some(mut top) = heap.pop() else { break };
        top.pieces += 1;
        pieces[top.i] = top.pieces;
        have += 1;
        if top.pieces < top.len {
            heap.push(top);
        }
    }
    pieces
}

/// A file in [`apportion`]'s queue, ordered by the size of its pieces.
#[derive(PartialEq, Eq)]
struct Largest {
    len: u64,
    pieces: u64,
    i: usize,
}

impl Ord for Largest {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let mine = u128::from(self.len) * u128::from(other.pieces);
        let theirs = u128::from(other.len) * u128::from(self.pieces);
        // Ties go to the earlier file, so the result does not depend on the heap's order.
        mine.cmp(&theirs).then(other.i.cmp(&self.i))
    }
}

impl PartialOrd for Largest {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, len: u64) -> InputFile {
        InputFile {
            path: name.into(),
            len,
            input: 0,
        }
    }

    #[test]
    fn splits_cover_every_byte_once() {
        let files = [file("a", 1000), file("b", 0), file("c", 7)];
        for n in 1..40 {
            let policy = SplitPolicy {
                splits: Some(n),
                ..SplitPolicy::default()
            };
            let splits = plan_splits(&files, &policy, InputFormat::Lines);
            for f in &files {
                let mine: Vec<_> = splits.iter().filter(|s| s.path == f.path).collect();
                let mut at = 0;
                for s in &mine {
                    assert_eq!(s.start, at);
                    assert!(s.end > s.start);
                    at = s.end;
                }
                assert_eq!(at, f.len);
            }
        }
    }

    #[test]
    fn max_split_bytes_and_min_splits() {
        let files = [file("a", 200 << 20)];
        let policy = SplitPolicy::default();
        assert_eq!(plan_splits(&files, &policy, InputFormat::Lines).len(), 2);
        let policy = SplitPolicy {
            min_splits: 4,
            ..policy
        };
        assert_eq!(plan_splits(&files, &policy, InputFormat::Lines).len(), 4);
        let whole = plan_splits(&files, &policy, InputFormat::WholeFiles);
        assert_eq!(whole.len(), 1);
    }

    #[test]
    fn splits_come_in_whole_waves_shared_by_size() {
        // The lab's TeraSort input: two files of 105 and 95 MB on 8 slots gave 5 + 4 = 9
        // splits (a second wave of one); shared by size they give 4 + 4.
        let files = [file("a", 104_857_600), file("b", 95_142_400), file("c", 0)];
        let policy = SplitPolicy {
            min_splits: 8,
            ..SplitPolicy::default().fitting(&crate::ShuffleSettings::default())
        };
        let splits = plan_splits(&files, &policy, InputFormat::Lines);
        assert_eq!(splits.len(), 8);
        let per = |name: &str| splits.iter().filter(|s| s.path == Path::new(name)).count();
        assert_eq!((per("a"), per("b")), (4, 4));
        // 1 GiB at most 42.7 MB a split needs 26; on 8 slots that is 4 waves, so 32 smaller.
        let gib = [file("a", 1 << 30)];
        assert_eq!(plan_splits(&gib, &policy, InputFormat::Lines).len(), 32);
        // The objects lab's 1 GiB: 25 files of 43 MB, each under the split size, gave 25
        // splits, a fourth wave of one. The files' count is rounded up to whole waves too.
        let many: Vec<InputFile> = (0..25)
            .map(|i| file(&format!("p{i}"), 42_949_672))
            .collect();
        let splits = plan_splits(&many, &policy, InputFormat::Lines);
        assert_eq!(splits.len(), 32);
        assert!(many.iter().all(|f| splits.iter().any(|s| s.path == f.path)));
        let cut = many
            .iter()
            .filter(|f| splits.iter().filter(|s| s.path == f.path).count() == 2)
            .count();
        assert_eq!(cut, 7);
        // Two files of 1 GiB in all: 24 splits of the size cap would do for their total, but
        // cut one file at a time they need 13 + 12, rounded up to 32, not 25.
        let two = [file("a", 549_453_800), file("b", 524_288_000)];
        assert_eq!(plan_splits(&two, &policy, InputFormat::Lines).len(), 32);
        // Small files are not cut to fill a wave: 25 files of 1 MB stay 25 splits.
        let small: Vec<InputFile> = (0..25).map(|i| file(&format!("s{i}"), 1 << 20)).collect();
        assert_eq!(plan_splits(&small, &policy, InputFormat::Lines).len(), 25);
        // A large gzip file is one split, and its size does not cut a small file beside it
        // into pieces for the splits it cannot have: 1 + 7, a wave.
        let zipped = [file("big.gz", 1 << 30), file("small.txt", 100_000)];
        let splits = plan_splits(&zipped, &policy, InputFormat::Lines);
        assert_eq!(splits.len(), 8);
        assert_eq!(splits[0].len(), 1 << 30);
        // An explicit count is kept, shared the same way.
        let three = SplitPolicy {
            splits: Some(3),
            ..SplitPolicy::default()
        };
        let files = [file("a", 700), file("b", 300)];
        let splits = plan_splits(&files, &three, InputFormat::Lines);
        assert_eq!(splits.len(), 3);
        assert_eq!(splits.iter().map(|s| s.len()).max(), Some(350));
    }

    #[test]
    fn apportion_minimises_the_largest_piece() {
        // Against every count from a brute force over small cases.
        let cases: [&[u64]; 7] = [
            &[10],
            &[7, 3],
            &[1, 1, 1],
            &[100, 1, 50],
            &[5, 9, 13, 2],
            &[33, 34, 35, 1, 1, 90],
            &[64, 3, 17, 17, 40],
        ];
        for lens in cases {
            let total: u64 = lens.iter().sum();
            for wanted in 1..=total + 3 {
                let got = apportion(lens, wanted, u64::MAX);
                let files: Vec<InputFile> = lens.iter().map(|&l| file("f", l)).collect();
                let policy = SplitPolicy {
                    splits: Some(wanted as u32),
                    ..SplitPolicy::default()
                };
                let splits = plan_splits(&files, &policy, InputFormat::Lines);
                assert_eq!(splits.len() as u64, got.iter().sum::<u64>());
                assert!(splits.iter().all(|s| !s.is_empty()));
                assert!(got.iter().zip(lens).all(|(&n, &l)| n >= 1 && n <= l));
                let sum: u64 = got.iter().sum();
                assert_eq!(
                    sum,
                    wanted.clamp(lens.len() as u64, total),
                    "{lens:?} {wanted}"
                );
                // No other sharing of as many pieces has a smaller largest piece.
                let largest = |p: &[u64]| {
                    p.iter()
                        .zip(lens)
                        .map(|(&n, &l)| l.div_ceil(n))
                        .max()
                        .unwrap()
                };
                let best = (1..=total)
                    .find(|&size| lens.iter().map(|l| l.div_ceil(size)).sum::<u64>() <= sum)
                    .unwrap();
                assert_eq!(largest(&got), best, "{lens:?} {wanted}: {got:?}");
            }
        }
        // The cap wins over the count.
        assert_eq!(apportion(&[100, 10], 2, 30), vec![4, 1]);
    }

    #[test]
    fn listing_dirs_globs_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.txt", "a.txt", "_SUCCESS", ".hidden", "c.log"] {
            std::fs::write(dir.path().join(name), "x\n").unwrap();
        }
        let names = |files: Vec<InputFile>| {
            files
                .iter()
                .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        let all = list_input(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(names(all), ["a.txt", "b.txt", "c.log"]);
        let pat = format!("{}/*.txt", dir.path().display());
        assert_eq!(names(list_input(&pat).unwrap()), ["a.txt", "b.txt"]);
        let missing = format!("{}/nope", dir.path().display());
        assert!(matches!(list_input(&missing), Err(Error::Input { .. })));
        let none = format!("{}/*.csv", dir.path().display());
        assert!(matches!(list_input(&none), Err(Error::Input { .. })));
    }
}
