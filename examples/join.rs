//! A reduce-side join of two inputs on their first field.
//!
//! ```text
//! cargo run --example join                                  # two small tables it writes
//! cargo run --example join -- --left users.tsv --right 'orders/*.tsv' --kind left
//! ```

use clap::Parser;
use gridmr::{bundled::join, JobConfig, LocalEngine};

#[derive(Parser)]
#[command(about = "Join two tab-separated inputs on their first field (embedded engine)")]
struct Args {
    /// The left input (default: a small table written for the example).
    #[arg(long, requires = "right")]
    left: Option<String>,
    /// The right input.
    #[arg(long, requires = "left")]
    right: Option<String>,
    /// inner, left, right or outer.
    #[arg(long, default_value = "inner")]
    kind: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let work = tempfile::tempdir()?;
    let (left, right) = match (args.left, args.right) {
        (Some(l), Some(r)) => (l, r),
        _ => {
            let l = work.path().join("users.tsv");
            let r = work.path().join("orders.tsv");
            std::fs::write(&l, "1\tada\n2\tbob\n3\tcy\n")?;
            std::fs::write(&r, "1\tbook\n1\tpen\n3\tcup\n4\tmap\n")?;
            (l.display().to_string(), r.display().to_string())
        }
    };
    let config = JobConfig::new(&left)
        .with_input(&right)
        .with_param("join", &args.kind);
    let outcome = LocalEngine::new(work.path().join("work")).run(&join::job(), &config)?;
    for part in gridmr::output::output_files(&outcome.output_dir)? {
        print!("{}", std::fs::read_to_string(part)?);
    }
    Ok(())
}
