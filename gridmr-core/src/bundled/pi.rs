//! Pi: estimates π by quasi-Monte Carlo (Hadoop's `pi` example).
//!
//! The points are a Halton sequence (bases 2 and 3) in the unit square; the
//! share inside the inscribed circle is π/4. The input is generated, as
//! Hadoop's driver generates it: [`write_input`] writes one control file per
//! map task, each a few lines `offset count` naming a range of the sequence,
//! so the map tasks run in parallel and the result is the same however the
//! work is cut. Each line adds `inside` and `outside` counts; a combiner and
//! the reducer sum them, and [`estimate`] reads the answer back.
//!
//! ```
//! use gridmr_core::{bundled::pi, JobConfig, LocalEngine};
//! let dir = tempfile::tempdir()?;
//! pi::write_input(&dir.path().join("in"), 4, 10_000)?;
//! let config = JobConfig::new(dir.path().join("in").to_str().unwrap());
//! let out = LocalEngine::new(dir.path().join("work")).run(&pi::job(), &config)?;
//! let (inside, outside) = pi::counts(&out.output_dir)?;
//! assert_eq!(inside + outside, 40_000);
//! assert!((pi::estimate(inside, outside) - std::f64::consts::PI).abs() < 1e-3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::bundled::wordcount::SumReducer;
use crate::error::{Error, Result, UserError, UserResult};
use crate::input::Record;
use crate::job::{Job, MapContext, Mapper, SumCombiner};
use std::io::Write;
use std::path::Path;

/// Most points one input line names, so that a task looks at its cancel
/// flag often enough.
pub const POINTS_PER_LINE: u64 = 1 << 20;

/// The radical inverse of `i` in `base`: the `i`-th element of the van der
/// Corput sequence.
fn radical_inverse(mut i: u64, base: u64) -> f64 {
    let inv = 1.0 / base as f64;
    let mut f = inv;
    let mut r = 0.0;
    while i > 0 {
        r += f * (i % base) as f64;
        i /= base;
        f *= inv;
    }
    r
}

/// Whether the `i`-th point of the sequence falls inside the circle.
pub fn inside(i: u64) -> bool {
    // From index 1: point 0 is the corner (0, 0).
    let x = radical_inverse(i + 1, 2) - 0.5;
    let y = radical_inverse(i + 1, 3) - 0.5;
    x * x + y * y <= 0.25
}

/// Counts the points of each `offset count` line.
#[derive(Debug, Clone, Default)]
pub struct PiMapper;

impl Mapper for PiMapper {
    type Key = String;
    type Value = u64;

    fn map(&mut self, record: &Record<'_>, ctx: &mut MapContext<'_, String, u64>) -> UserResult {
        let text = record.text();
        let line = text.trim();
        if line.is_empty() {
            return Ok(());
        }
        let bad = || UserError::msg(format!("expected `offset count`, got {line:?}"));
        let mut fields = line.split_whitespace();
        let (Some(offset), Some(count), None) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(bad());
        };
        let offset: u64 = offset.parse().map_err(|_| bad())?;
        let count: u64 = count.parse().map_err(|_| bad())?;
        let end = offset.checked_add(count).ok_or_else(bad)?;
        let n_in = (offset..end).filter(|&i| inside(i)).count() as u64;
        ctx.emit_ref("inside", n_in)?;
        ctx.emit_ref("outside", count - n_in)?;
        Ok(())
    }
}

/// The job, named `pi`.
pub fn job() -> Job<PiMapper, SumReducer> {
    Job::new("pi", PiMapper, SumReducer).with_combiner(SumCombiner)
}

/// Writes the control files of `maps` map tasks of `points` points each
/// into `dir` (created): `pi-NNNNN.txt`, lines of at most
/// [`POINTS_PER_LINE`] points.
pub fn write_input(dir: &Path, maps: u32, points: u64) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    for m in 0..u64::from(maps) {
        let path = dir.join(format!("pi-{m:05}.txt"));
        let mut text = Vec::new();
        let mut at = m * points;
        let end = at + points;
        while at < end {
            let n = POINTS_PER_LINE.min(end - at);
            let _ = writeln!(text, "{at} {n}");
            at += n;
        }
        std::fs::write(&path, text).map_err(|e| Error::io("write", &path, e))?;
    }
    Ok(())
}

/// The `(inside, outside)` counts of a finished job's output folder.
pub fn counts(output_dir: &Path) -> Result<(u64, u64)> {
    let lines: Vec<(String, u64)> = crate::output::read_output(output_dir)?;
    let get = |k: &str| lines.iter().filter(|(n, _)| n == k).map(|(_, v)| v).sum();
    Ok((get("inside"), get("outside")))
}

/// π from the counts: `4 · inside / (inside + outside)`.
pub fn estimate(inside: u64, outside: u64) -> f64 {
    let total = inside + outside;
    if total == 0 {
        return 0.0;
    }
    4.0 * inside as f64 / total as f64
}
