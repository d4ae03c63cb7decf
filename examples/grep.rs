//! Grep, Hadoop's example: how often each distinct match of a regular
//! expression occurs, most frequent first.
//!
//! ```text
//! cargo run --example grep -- --pattern 'th[a-z]+'               # the text kept in data/
//! cargo run --release --example grep -- --pattern '(\w+)ly' --group 1 --input 'books/*.txt'
//! ```

use clap::Parser;
use gridmr::{bundled::grep, output::read_output, JobConfig, LocalEngine};

#[derive(Parser)]
#[command(about = "Count the matches of a regular expression (embedded engine)")]
struct Args {
    /// The regular expression (Rust `regex` syntax).
    #[arg(long)]
    pattern: String,
    /// Count this capture group instead of the whole match.
    #[arg(long, default_value_t = 0)]
    group: usize,
    /// A file, a folder or a glob (default: a text kept in the repo).
    #[arg(long)]
    input: Option<String>,
    /// How many matches to print.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let input = args.input.unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/gutenberg/being_ernest.txt"
        )
        .into()
    });
    let work = tempfile::tempdir()?;
    let config = JobConfig::new(&input)
        .with_param("pattern", &args.pattern)
        .with_param("group", args.group.to_string());
    let outcome = LocalEngine::new(work.path()).run(&grep::job(), &config)?;
    let mut counts: Vec<(String, u64)> = read_output(&outcome.output_dir)?;
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    gridmr::runtime::outln!(
        "{} distinct matches of {:?} in {input}:",
        counts.len(),
        args.pattern
    );
    for (m, n) in counts.iter().take(args.top) {
        gridmr::runtime::outln!("{n:>10}  {m}");
    }
    Ok(())
}
