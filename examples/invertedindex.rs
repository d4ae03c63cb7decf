//! An inverted index: for every word, the files it occurs in.
//!
//! ```text
//! cargo run --example invertedindex                       # the texts kept in data/
//! cargo run --release --example invertedindex -- --input books/ --word whale
//! ```

use clap::Parser;
use gridmr::{bundled::index, output::read_output, JobConfig, LocalEngine};

#[derive(Parser)]
#[command(about = "Build an inverted index of a folder of texts (embedded engine)")]
struct Args {
    /// A folder, or a glob of files (default: the texts kept in the repo).
    #[arg(long)]
    input: Option<String>,
    /// Print the documents of these words (default: the first ten words).
    #[arg(long)]
    word: Vec<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let input = args
        .input
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/data/gutenberg").into());
    let work = tempfile::tempdir()?;
    let outcome = LocalEngine::new(work.path()).run(&index::job(), &JobConfig::new(&input))?;
    let mut entries: Vec<(String, String)> = read_output(&outcome.output_dir)?;
    entries.sort();
    gridmr::runtime::outln!("{} words indexed from {input}", entries.len());
    let shown: Vec<&(String, String)> = if args.word.is_empty() {
        entries.iter().take(10).collect()
    } else {
        entries
            .iter()
            .filter(|(w, _)| args.word.contains(w))
            .collect()
    };
    for (word, docs) in shown {
        gridmr::runtime::outln!("{word:>16}  {docs}");
    }
    Ok(())
}
