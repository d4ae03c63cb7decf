//! Word count on a GridMR cluster started inside this process: a master and
//! two workers on 127.0.0.1 ephemeral ports, sharing a temporary folder. The
//! job is submitted through the REST API, as any client would.
//!
//! ```text
//! cargo run --example wordcount                          # the small text kept in data/
//! cargo run --release --example wordcount -- --input big.txt
//! cargo run --release --example wordcount -- --local     # the embedded engine, no cluster
//! ```
//!
//! Words are counted as the original GridMR's `wordcount.py` does
//! (`line.lower().split()`). Prints the top words, the time, the throughput,
//! the phase times, the job's counters and the peak memory.

use clap::Parser;
use gridmr::bundled::wordcount;
use gridmr::net::rest::SubmitRequest;
use gridmr::output::read_output;
use gridmr::runtime::{master, worker, MasterSettings, Registry, WorkerSettings};
use gridmr::{Compression, Counters, JobConfig, LocalEngine};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(about = "Count words on a loopback GridMR cluster (or, with --local, embedded)")]
struct Args {
    /// A file, a folder or a glob (default: a public-domain text kept in the repo).
    #[arg(long)]
    input: Option<String>,
    /// Run the embedded engine in this thread pool instead of a cluster.
    #[arg(long)]
    local: bool,
    /// Workers of the loopback cluster.
    #[arg(long, default_value_t = 2)]
    workers: u32,
    /// The cluster's shared folder (default: a temporary folder, removed at
    /// exit); the job's output lands in `<DIR>/jobs/<job id>/out/`.
    #[arg(long)]
    shared_dir: Option<PathBuf>,
    /// Task slots per worker (default: cores / workers, at least 1).
    #[arg(long)]
    slots: Option<u32>,
    /// Threads of the embedded engine (--local; default: cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Write the output here (--local; default: a temporary folder).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Reduce partitions (default: the cluster's slots, or the thread count).
    #[arg(long)]
    partitions: Option<u32>,
    /// Map splits (default: from the input size and the slots).
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

type Failure = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let args = Args::parse();
    let result = if args.local {
        run_local(&args)
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(Failure::from)
            .and_then(|rt| rt.block_on(run_cluster(&args)))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wordcount: {e}");
            ExitCode::FAILURE
        }
    }
}

fn input_of(args: &Args) -> String {
    let default_input = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/gutenberg/being_ernest.txt"
    );
    args.input
        .clone()
        .unwrap_or_else(|| default_input.to_string())
}

fn print_top(output_dir: &Path, input: &str, top: usize) -> Result<(), Failure> {
    if top == 0 {
        return Ok(()); // nothing to print: the output is not read back
    }
    let mut counts: Vec<(String, u64)> = read_output(output_dir)?;
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    gridmr::runtime::outln!("top {top} of {} distinct words in {input}:", counts.len());
    for (word, n) in counts.iter().take(top) {
        gridmr::runtime::outln!("{n:>12}  {word}");
    }
    gridmr::runtime::outln!();
    Ok(())
}

fn print_tail(counters: &Counters) {
    if let Some(mib) = peak_rss_mib() {
        gridmr::runtime::outln!("peak RSS {mib:.0} MiB (this process)");
    }
    gridmr::runtime::outln!("counters:");
    for (group, name, value) in counters.iter() {
        gridmr::runtime::outln!("  {group}.{name} = {value}");
    }
}

/// The input as the master is given it (absolute; a glob kept as a pattern in its folder) and
/// the folder the master and workers may read it from.
fn resolve_input(input: &str) -> Result<(PathBuf, PathBuf), Failure> {
    let path = Path::new(input);
    let glob = |p: &Path| p.to_string_lossy().contains(['*', '?', '[']);
    // The part before the first component holding a wildcard is a real folder.
    let mut base = PathBuf::new();
    let mut rest = PathBuf::new();
    for c in path.components() {
        if rest.as_os_str().is_empty() && !glob(Path::new(c.as_os_str())) {
            base.push(c);
        } else {
            rest.push(c);
        }
    }
    let base = match base.as_os_str().is_empty() {
        true => PathBuf::from("."),
        false => base,
    };
    let base = std::fs::canonicalize(&base)
        .map_err(|e| format!("--input {input}: {}: {e}", base.display()))?;
    if rest.as_os_str().is_empty() {
        let root = match base.is_dir() {
            true => base.clone(),
            false => base.parent().unwrap_or(Path::new("/")).to_path_buf(),
        };
        return Ok((base, root));
    }
    Ok((base.join(rest), base))
}

async fn run_cluster(args: &Args) -> Result<(), Failure> {
    let input = input_of(args);
    let (input_path, root) = resolve_input(&input)?;
    let temp = tempfile::tempdir()?;
    let shared_path = match &args.shared_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => temp.path().to_path_buf(),
    };
    let shared = shared_path.as_path();
    let mut jobs = Registry::new();
    jobs.register(wordcount::job());

    // The master reads inputs from the shared folder, and here also from the
    // input's own folder (INPUT_ROOTS), so nothing is copied.
    let mut settings = MasterSettings::local(shared);
    settings.input_roots = vec![root.clone()];
    let master = master::start(settings, jobs.clone()).await?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let slots = args.slots.unwrap_or((cores / args.workers.max(1)).max(1));
    let mut workers = Vec::new();
    for i in 1..=args.workers.max(1) {
        let mut ws = WorkerSettings::local(shared, Some(master.url()));
        ws.worker_id = Some(format!("worker-{i}"));
        ws.slots = Some(slots);
        ws.input_roots = vec![root.clone()];
        workers.push(worker::start(ws, jobs.clone()).await?);
    }
    let client = master.client();
    // Wait (with a deadline) until every worker has registered.
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    while client.health().await?.workers < workers.len() {
        if Instant::now() > deadline {
            return Err("the workers did not register within 30 s".into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    gridmr::runtime::outln!(
        "cluster: master {} and {} workers × {slots} slots, shared folder {}",
        master.url(),
        workers.len(),
        shared.display()
    );

    let started = Instant::now();
    let submitted = client
        .submit(&SubmitRequest {
            job: Some("wordcount".into()),
            input_url: input_path.display().to_string(),
            partitions: args.partitions,
            map_splits: args.splits,
            // The point of a cluster: maps on every worker and a shuffle between them, even
            // for the small text (the original's rule would run it SINGLE, as one task).
            force_distributed: Some(true),
            sort_buffer_bytes: Some(args.budget_mb << 20),
            compress_shuffle: args.lz4.then_some(true),
            ..SubmitRequest::default()
        })
        .await?;
    let done = gridmr::runtime::cli::follow(&client, &submitted.job_id).await?;
    let secs = started.elapsed().as_secs_f64();
    if done.status != gridmr::net::rest::JobState::Succeeded {
        return Err(format!(
            "job {} {}: {}",
            done.job_id,
            done.status.as_str(),
            done.error.unwrap_or(done.message)
        )
        .into());
    }
    print_top(Path::new(&done.output_dir), &input, args.top)?;
    let mb = done.input_size_bytes as f64 / 1e6;
    gridmr::runtime::outln!(
        "{mb:.1} MB in {secs:.3} s = {:.1} MB/s, {} mode, {} map tasks, {} reduce tasks",
        mb / secs.max(1e-9),
        done.mode.as_str(),
        done.tasks.map.total.max(done.tasks.single.total),
        done.tasks.reduce.total.max(done.tasks.single.total),
    );
    let t = done.times;
    gridmr::runtime::outln!(
        "phases: prepare {:.3} s, single {:.3} s, map {:.3} s, reduce {:.3} s, overhead {:.3} s (total {:.3} s)",
        t.t_prepare_s, t.t_single_s, t.t_map_s, t.t_reduce_s, t.t_overhead_s, t.t_total_s
    );
    print_tail(&done.counters);
    if args.shared_dir.is_some() {
        gridmr::runtime::outln!("output: {}", done.output_dir);
    }

    for w in workers {
        w.stop().await?;
    }
    master.stop().await?;
    Ok(())
}

fn run_local(args: &Args) -> Result<(), Failure> {
    let input = input_of(args);
    let work = tempfile::tempdir()?;
    let mut engine = LocalEngine::new(work.path());
    if let Some(t) = args.threads {
        engine = engine.with_threads(t);
    }
    let mut config = JobConfig::new(&input);
    config.output = args.output.clone();
    config.reduce_partitions = args.partitions;
    config.splits.splits = args.splits;
    config.shuffle.sort_buffer_bytes = args.budget_mb << 20;
    if args.lz4 {
        config.shuffle.compression = Compression::Lz4;
    }

    let outcome = engine.run(&wordcount::job(), &config)?;

    print_top(&outcome.output_dir, &input, args.top)?;
    let t = outcome.times;
    let secs = t.total.as_secs_f64();
    gridmr::runtime::outln!(
        "{:.1} MB in {secs:.3} s = {:.1} MB/s on {} threads ({} map tasks, {} reduce tasks)",
        outcome.input_bytes as f64 / 1e6,
        outcome.input_bytes as f64 / 1e6 / secs.max(1e-9),
        engine.threads(),
        outcome.map_tasks,
        outcome.reduce_tasks,
    );
    gridmr::runtime::outln!(
        "phases: prepare {:.3} s, map {:.3} s, reduce {:.3} s, commit {:.3} s",
        t.prepare.as_secs_f64(),
        t.map.as_secs_f64(),
        t.reduce.as_secs_f64(),
        t.commit.as_secs_f64()
    );
    print_tail(&outcome.counters);
    if outcome.output_dir.starts_with(work.path()) {
        gridmr::runtime::outln!("(output in a temporary folder; pass --output DIR to keep it)");
    } else {
        gridmr::runtime::outln!("output: {}", outcome.output_dir.display());
    }
    Ok(())
}
