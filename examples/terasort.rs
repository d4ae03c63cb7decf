//! TeraSort, Hadoop's benchmark: teragen makes rows, terasort puts them in
//! one total order (a sampled range partitioner, so the part files
//! concatenate into it), teravalidate checks the order and the checksum.
//!
//! ```text
//! cargo run --release --example terasort -- --rows 1000000 --partitions 4
//! cargo run --release --example terasort -- --input rows/ --output sorted/   # sort your own
//! ```

use clap::Parser;
use gridmr::{bundled::terasort, JobConfig, LocalEngine};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "teragen, terasort and teravalidate (embedded engine)")]
struct Args {
    /// Rows to generate (100 bytes each).
    #[arg(long, default_value_t = 100_000)]
    rows: u64,
    /// Sort these rows instead of generating them (a file, folder or glob).
    #[arg(long)]
    input: Option<String>,
    /// Reduce partitions of the sort.
    #[arg(long, default_value_t = 2)]
    partitions: u32,
    /// Where the sorted part files go (default: a temporary folder).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Threads (default: cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let work = tempfile::tempdir()?;
    let mut engine = LocalEngine::new(work.path().join("work"));
    if let Some(t) = args.threads {
        engine = engine.with_threads(t);
    }
    let (input, checksum) = match args.input {
        Some(input) => (input, None),
        None => {
            let ctl = work.path().join("ctl");
            terasort::write_gen_input(&ctl, engine.threads() as u32, args.rows)?;
            let mut gen = JobConfig::new(ctl.display().to_string());
            gen.reduce_partitions = Some(0);
            let made = engine.run(&terasort::teragen(), &gen)?;
            gridmr::runtime::outln!(
                "teragen: {} rows in {:.2} s",
                args.rows,
                made.times.total.as_secs_f64()
            );
            let parts = format!("{}/part-m-*", made.output_dir.display());
            (parts, Some(made.counters.get("terasort", "checksum")))
        }
    };
    let mut sort = JobConfig::new(&input);
    sort.reduce_partitions = Some(args.partitions);
    sort.output = args.output.clone();
    let sorted = engine.run(&terasort::terasort(), &sort)?;
    let t = sorted.times;
    gridmr::runtime::outln!(
        "terasort: {:.1} MB in {:.2} s (map {:.2} s, reduce {:.2} s, commit {:.2} s)",
        sorted.input_bytes as f64 / 1e6,
        t.total.as_secs_f64(),
        t.map.as_secs_f64(),
        t.reduce.as_secs_f64(),
        t.commit.as_secs_f64()
    );
    let check = JobConfig::new(format!("{}/part-r-*", sorted.output_dir.display()));
    let validated = engine.run(&terasort::teravalidate(), &check)?;
    let report = terasort::read_report(&validated.output_dir)?;
    let checksum_ok = checksum.is_none_or(|c| c == report.checksum);
    gridmr::runtime::outln!(
        "teravalidate: {} rows, {} out of order, checksum {}",
        report.rows,
        report.unordered,
        if checksum.is_none() {
            "not compared"
        } else if checksum_ok {
            "equal"
        } else {
            "DIFFERENT"
        }
    );
    for p in &report.problems {
        gridmr::runtime::outln!("  {p}");
    }
    if report.unordered > 0 || !checksum_ok {
        return Err("the output is not a valid sort".into());
    }
    if let Some(out) = args.output {
        gridmr::runtime::outln!("sorted rows in {}", out.display());
    }
    Ok(())
}
