//! Pi, Hadoop's example: π by quasi-Monte Carlo, the points spread over map
//! tasks whose input the program writes first (as Hadoop's driver does).
//!
//! ```text
//! cargo run --release --example pi -- --maps 8 --points 10000000
//! ```

use clap::Parser;
use gridmr::{bundled::pi, JobConfig, LocalEngine};

#[derive(Parser)]
#[command(about = "Estimate pi (embedded engine)")]
struct Args {
    /// Map tasks.
    #[arg(long, default_value_t = 4)]
    maps: u32,
    /// Points per map task.
    #[arg(long, default_value_t = 1_000_000)]
    points: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let work = tempfile::tempdir()?;
    let input = work.path().join("in");
    pi::write_input(&input, args.maps, args.points)?;
    let config = JobConfig::new(input.display().to_string());
    let outcome = LocalEngine::new(work.path().join("work")).run(&pi::job(), &config)?;
    let (inside, outside) = pi::counts(&outcome.output_dir)?;
    let estimate = pi::estimate(inside, outside);
    gridmr::runtime::outln!(
        "{} points in {:.2} s: pi ≈ {estimate:.10} (error {:.2e})",
        inside + outside,
        outcome.times.total.as_secs_f64(),
        (estimate - std::f64::consts::PI).abs()
    );
    Ok(())
}
