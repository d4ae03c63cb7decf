//! Word mean, Hadoop's example: the mean length of the input's words.
//!
//! ```text
//! cargo run --example wordmean
//! cargo run --release --example wordmean -- --input 'books/*.txt'
//! ```

use clap::Parser;
use gridmr::{bundled::wordmean, output::read_output, JobConfig, LocalEngine};

#[derive(Parser)]
#[command(about = "The mean length of words (embedded engine)")]
struct Args {
    /// A file, a folder or a glob (default: the texts kept in the repo).
    #[arg(long)]
    input: Option<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let input = args
        .input
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/data/gutenberg").into());
    let work = tempfile::tempdir()?;
    let outcome = LocalEngine::new(work.path()).run(&wordmean::job(), &JobConfig::new(&input))?;
    for (name, value) in read_output::<String, String>(&outcome.output_dir)? {
        gridmr::runtime::outln!("{name:>8}  {value}");
    }
    Ok(())
}
