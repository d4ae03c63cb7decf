//! Word count with GridMR's embedded engine.
//!
//! ```text
//! cargo run --example wordcount                       # the small text kept in data/
//! cargo run --release --example wordcount -- --input big.txt --threads 2
//! ```
//!
//! Words are counted as the original GridMR's `wordcount.py` does (`line.lower().split()`).
//! Prints the top words, the time, the throughput, the job's counters and the peak memory.

use clap::Parser;
use gridmr::jobs::wordcount;
use gridmr::output::read_output;
use gridmr::{Compression, JobConfig, LocalEngine};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "Count words with GridMR's embedded engine")]
struct Args {
    /// A file, a folder or a glob (default: a public-domain text kept in the repo).
    #[arg(long)]
    input: Option<String>,
    /// Write the output here (default: a temporary folder, removed at exit).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Worker threads (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Reduce partitions (default: the thread count).
    #[arg(long)]
    partitions: Option<u32>,
    /// Map splits (default: from the input size and the thread count).
    #[arg(long)]
    splits: Option<u32>,
    /// Map buffer budget per task, in MiB.
    #[arg(long, default_value_t = 64)]
    budget_mb: u64,
    /// Compress shuffle blocks with LZ4.
    #[arg(long)]
    lz4: bool,
    /// How many top words to print.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wordcount: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let default_input = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/gutenberg/being_ernest.txt"
    );
    let input = args.input.unwrap_or_else(|| default_input.to_string());
    let work = tempfile::tempdir()?;
    let mut engine = LocalEngine::new(work.path());
    if let Some(t) = args.threads {
        engine = engine.with_threads(t);
    }
    let mut config = JobConfig::new(&input);
    config.output = args.output;
    config.reduce_partitions = args.partitions;
    config.splits.splits = args.splits;
    config.shuffle.sort_buffer_bytes = args.budget_mb << 20;
    if args.lz4 {
        config.shuffle.compression = Compression::Lz4;
    }

    let outcome = engine.run(&wordcount::job(), &config)?;

    let mut counts: Vec<(String, u64)> = read_output(&outcome.output_dir)?;
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    println!(
        "top {} of {} distinct words in {input}:",
        args.top,
        counts.len()
    );
    for (word, n) in counts.iter().take(args.top) {
        println!("{n:>12}  {word}");
    }
    let t = outcome.times;
    let secs = t.total.as_secs_f64();
    println!();
    println!(
        "{:.1} MB in {secs:.3} s = {:.1} MB/s on {} threads ({} map tasks, {} reduce tasks)",
        outcome.input_bytes as f64 / 1e6,
        outcome.input_bytes as f64 / 1e6 / secs.max(1e-9),
        engine.threads(),
        outcome.map_tasks,
        outcome.reduce_tasks,
    );
    println!(
        "phases: prepare {:.3} s, map {:.3} s, reduce {:.3} s, commit {:.3} s",
        t.prepare.as_secs_f64(),
        t.map.as_secs_f64(),
        t.reduce.as_secs_f64(),
        t.commit.as_secs_f64()
    );
    if let Some(mib) = peak_rss_mib() {
        println!("peak RSS {mib:.0} MiB");
    }
    println!("counters:");
    for (group, name, value) in outcome.counters.iter() {
        println!("  {group}.{name} = {value}");
    }
    if work.path().starts_with(&outcome.output_dir) || outcome.output_dir.starts_with(work.path()) {
        println!("(output in a temporary folder; pass --output DIR to keep it)");
    } else {
        println!("output: {}", outcome.output_dir.display());
    }
    Ok(())
}
