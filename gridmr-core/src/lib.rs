//! # gridmr-core
//!
//! The heart of [GridMR](https://github.com/gridmr/gridmr), a MapReduce engine: the typed job
//! API, input splits, the sorted, bounded-memory shuffle on files, and an embedded engine that
//! runs a job on a pool of threads. No async runtime, no network: the cluster (`gridmr-runtime`)
//! calls the very same task functions.
//!
//! ```
//! use gridmr_core::{Job, JobConfig, LocalEngine, MapContext, Mapper, Record, ReduceContext,
//!                   Reducer, SumCombiner, UserResult, Values};
//!
//! #[derive(Clone, Default)]
//! struct Words;
//! impl Mapper for Words {
//!     type Key = String;
//!     type Value = u64;
//!     fn map(&mut self, r: &Record<'_>, ctx: &mut MapContext<'_, String, u64>) -> UserResult {
//!         for w in r.text().split_whitespace() {
//!             ctx.emit_ref(w, 1)?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! #[derive(Clone, Default)]
//! struct Sum;
//! impl Reducer for Sum {
//!     type Key = String;
//!     type Value = u64;
//!     type OutKey = String;
//!     type OutValue = u64;
//!     fn reduce(&mut self, k: &String, vs: &mut Values<'_, u64>,
//!               ctx: &mut ReduceContext<'_, String, u64>) -> UserResult {
//!         ctx.emit(k, &vs.sum())?;
//!         Ok(())
//!     }
//! }
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("in.txt"), "a b a\nb a\n")?;
//! let job = Job::new("words", Words, Sum).with_combiner(SumCombiner);
//! let engine = LocalEngine::new(dir.path().join("work"));
//! let outcome = engine.run(&job, &JobConfig::new(dir.path().join("in.txt").to_str().unwrap()))?;
//! let mut counts: Vec<(String, u64)> = gridmr_core::output::read_output(&outcome.output_dir)?;
//! counts.sort();
//! assert_eq!(counts, [("a".to_string(), 3), ("b".to_string(), 2)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod bundled;
pub mod codec;
pub mod combine;
pub mod commit;
pub mod control;
pub mod counters;
pub mod engine;
pub mod error;
pub mod ids;
pub mod input;
pub mod job;
/// The bundled jobs' old module name.
#[deprecated(
    since = "0.1.0",
    note = "renamed `bundled` (it read as the plural of `job`)"
)]
pub mod jobs {
    pub use crate::bundled::*;
}
pub mod layout;
pub mod output;
pub mod params;
pub mod partition;
pub mod registry;
mod scalar;
pub mod shuffle;
pub mod task;

pub use codec::{Key, Value};
pub use counters::Counters;
pub use engine::{JobConfig, JobOutcome, LocalEngine, PhaseTimes};
pub use error::{Blame, Error, Result, UserError, UserResult};
pub use ids::{AttemptId, JobId, Phase, TaskId, WorkerId};
pub use input::{InputFormat, InputSplit, Record, SplitPolicy};
pub use job::{
    Combiner, Job, MapContext, Mapper, PlanContext, ReduceContext, Reducer, SumCombiner, TaskInfo,
    Values,
};
pub use params::Params;
pub use partition::{FastPartitioner, Partitioner, RangePartitioner, Sha1Partitioner};
pub use registry::{JobDef, Registry};
/// The `serde` GridMR's keys and values use: derive your own key types
/// with it (`#[derive(gridmr::serde::Serialize, gridmr::serde::Deserialize)]`
/// and `#[serde(crate = "gridmr::serde")]`), without a dependency of your
/// own.
pub use serde;
pub use shuffle::{Compression, ShuffleSettings};
pub use task::{MapTask, ReduceTask, TaskReport};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
