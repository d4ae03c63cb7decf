//! The floor for TeraSort: what a competent program does with no framework
//! at all. It reads every row into memory, samples split points, cuts the
//! rows into ranges on two threads, sorts each range on its own thread and
//! writes one part file per range: read, partition, sort, write. Nothing
//! spills, nothing is retried, nothing is written twice.
//!
//! ```text
//! cargo bench --bench terasort_floor -- INPUT OUTDIR [THREADS] [PARTITIONS]
//! ```
//!
//! INPUT is a file or a folder of files (names starting with `.` or `_`
//! skipped); rows are lines, and sort by their bytes (the first 10 are the
//! key). `benches/terasort.sh` runs it beside GridMR, `sort` and Spark.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn inputs(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .expect("read the input folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.') && !n.starts_with('_'))
        })
        .collect();
    files.sort();
    files
}

/// A row to sort: its key's first 8 bytes as an integer (most comparisons
/// end there), and the row.
struct Row<'a> {
    prefix: u64,
    row: &'a [u8],
}

fn prefix(row: &[u8]) -> u64 {
    let mut p = [0u8; 8];
    let n = row.len().min(8);
    p[..n].copy_from_slice(&row[..n]);
    u64::from_be_bytes(p)
}

/// Cuts `data` into about `n` line-aligned pieces.
fn pieces(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=n {
        let mut end = (data.len() * i / n).max(start);
        while end < data.len() && data[end - 1] != b'\n' {
            end += 1;
        }
        out.push(&data[start..end]);
        start = end;
    }
    out
}

// One straight pass of the floor's steps in the order they run, each timed where it stands:
// cut into functions, the timings would have to travel between them; so it stays one piece.
fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (Some(input), Some(out)) = (args.first(), args.get(1)) else {
        eprintln!("usage: terasort_floor INPUT OUTDIR [THREADS] [PARTITIONS]");
        std::process::exit(2);
    };
    let threads: usize = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(2);
    let parts: usize = args.get(3).and_then(|p| p.parse().ok()).unwrap_or(2);
    let started = Instant::now();

    // Read every file whole, the files shared between the threads.
    let files = inputs(Path::new(input));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut data: Vec<(usize, Vec<u8>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(f) = files.get(i) else { return mine };
                        mine.push((i, std::fs::read(f).expect("read")));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("reader"))
            .collect()
    });
    data.sort_by_key(|(i, _)| *i);
    // Each thread takes an equal, line-aligned share of the bytes.
    let shares: Vec<Vec<&[u8]>> = {
        let total: usize = data.iter().map(|(_, d)| d.len()).sum();
        let mut shares = vec![Vec::new(); threads];
        let mut at = 0;
        for (_, d) in &data {
            let n = (d.len() * threads).div_ceil(total.max(1)).max(1);
            for (k, p) in pieces(d, n).into_iter().enumerate() {
                shares[(at + k) % threads].push(p);
            }
            at += n;
        }
        shares
    };

    // Split points: every 997th row's key, sorted, cut into equal ranges.
    let mut sample: Vec<&[u8]> = data
        .iter()
        .flat_map(|(_, d)| d.split(|b| *b == b'\n').step_by(997))
        .filter(|r| !r.is_empty())
        .map(|r| &r[..r.len().min(10)])
        .collect();
    sample.sort_unstable();
    let splits: Vec<&[u8]> = (1..parts)
        .filter_map(|i| sample.get(i * sample.len() / parts).copied())
        .collect();
    let partition = |row: &[u8]| splits.partition_point(|s| *s <= &row[..row.len().min(10)]);

    // Partition: each thread cuts its share's rows into ranges.
    let per_thread: Vec<Vec<Vec<Row<'_>>>> = std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .iter()
            .map(|share| {
                let partition = &partition;
                s.spawn(move || {
                    let mut out: Vec<Vec<Row<'_>>> = (0..parts).map(|_| Vec::new()).collect();
                    for piece in share {
                        for row in piece.split(|b| *b == b'\n').filter(|r| !r.is_empty()) {
                            out[partition(row)].push(Row {
                                prefix: prefix(row),
                                row,
                            });
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("partitioner"))
            .collect()
    });
    let mut ranges: Vec<Vec<Row<'_>>> = (0..parts).map(|_| Vec::new()).collect();
    for t in per_thread {
        for (p, rows) in t.into_iter().enumerate() {
            ranges[p].extend(rows);
        }
    }

    // Sort and write: one range per thread at a time.
    std::fs::create_dir_all(out).expect("create the output folder");
    let rows: usize = ranges.iter().map(Vec::len).sum();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let ranges: Vec<std::sync::Mutex<Vec<Row<'_>>>> =
        ranges.into_iter().map(std::sync::Mutex::new).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let p = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(range) = ranges.get(p) else { return };
                let mut range = range.lock().expect("range");
                range.sort_unstable_by(|a, b| {
                    a.prefix.cmp(&b.prefix).then_with(|| a.row.cmp(b.row))
                });
                let path = Path::new(out).join(format!("part-r-{p:05}"));
                let file = std::fs::File::create(path).expect("create");
                let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
                for r in range.iter() {
                    w.write_all(r.row)
                        .and_then(|()| w.write_all(b"\n"))
                        .expect("write");
                }
                w.flush().expect("flush");
            });
        }
    });
    eprintln!("{rows} rows in {:.2} s", started.elapsed().as_secs_f64());
}
