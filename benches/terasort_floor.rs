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

/// The rows (lines, without their line feed) of `data`.
fn rows(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|b| *b == b'\n').filter(|r| !r.is_empty())
}

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

    // Read: every file whole, on the threads.
    let files = inputs(Path::new(input));
    let data: Vec<Vec<u8>> = std::thread::scope(|s| {
        let chunks: Vec<_> = files
            .chunks(files.len().div_ceil(threads).max(1))
            .map(|c| {
                s.spawn(move || {
                    c.iter()
                        .map(|f| std::fs::read(f).expect("read"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        chunks
            .into_iter()
            .flat_map(|h| h.join().expect("reader"))
            .collect()
    });

    // Split points: every 997th row's key, sorted, cut into equal ranges.
    let mut sample: Vec<&[u8]> = data
        .iter()
        .flat_map(|d| rows(d).step_by(997))
        .map(|r| &r[..r.len().min(10)])
        .collect();
    sample.sort_unstable();
    let splits: Vec<&[u8]> = (1..parts)
        .filter_map(|i| sample.get(i * sample.len() / parts).copied())
        .collect();
    let partition = |row: &[u8]| splits.partition_point(|s| *s <= &row[..row.len().min(10)]);

    // Partition: each thread takes whole files and cuts their rows into ranges.
    let per_thread: Vec<Vec<Vec<&[u8]>>> = std::thread::scope(|s| {
        let handles: Vec<_> = data
            .chunks(data.len().div_ceil(threads).max(1))
            .map(|chunk| {
                let partition = &partition;
                s.spawn(move || {
                    let mut out: Vec<Vec<&[u8]>> = vec![Vec::new(); parts];
                    for d in chunk {
                        for r in rows(d) {
                            out[partition(r)].push(r);
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
    let mut ranges: Vec<Vec<&[u8]>> = vec![Vec::new(); parts];
    for t in per_thread {
        for (p, rs) in t.into_iter().enumerate() {
            ranges[p].extend(rs);
        }
    }

    // Sort and write: one range per thread at a time.
    std::fs::create_dir_all(out).expect("create the output folder");
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let p = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(range) = ranges.get(p) else { return };
                let mut range = range.clone();
                range.sort_unstable();
                let path = Path::new(out).join(format!("part-r-{p:05}"));
                let mut w = std::io::BufWriter::with_capacity(
                    1 << 20,
                    std::fs::File::create(path).expect("create"),
                );
                for r in range {
                    w.write_all(r)
                        .and_then(|()| w.write_all(b"\n"))
                        .expect("write");
                }
                w.flush().expect("flush");
            });
        }
    });
    let rows: usize = ranges.iter().map(Vec::len).sum();
    eprintln!("{rows} rows in {:.2} s", started.elapsed().as_secs_f64());
}
