//! Word mean: the average length of the input's words (Hadoop's `wordmean`
//! example). Words are cut as [`wordcount`](super::wordcount) cuts them,
//! and a word's length is its number of characters.
//!
//! Every word adds `(1, length)` to one key; a combiner adds the pairs, so a
//! map task ships a single record. Output, three lines:
//! `count<TAB>N`, `length<TAB>L` and `mean<TAB>L/N`.
//!
//! ```
//! use gridmr_core::{JobConfig, LocalEngine};
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("in.txt"), "a bb\nccc dddd\n")?;
//! let config = JobConfig::new(dir.path().join("in.txt").to_str().unwrap());
//! let out = LocalEngine::new(dir.path().join("work"))
//!     .run(&gridmr_core::bundled::wordmean::job(), &config)?;
//! let lines: Vec<(String, String)> = gridmr_core::output::read_output(&out.output_dir)?;
//! assert!(lines.contains(&("mean".to_string(), "2.5".to_string())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::bundled::wordcount::python_words;
use crate::error::UserResult;
use crate::input::Record;
use crate::job::{Combiner, Job, MapContext, Mapper, ReduceContext, Reducer, Values};

/// The one key every word counts under.
const WORDS: &str = "words";

/// Emits `("words", (1, length))` for every word.
#[derive(Debug, Clone, Default)]
pub struct WordMeanMapper {
    scratch: String,
}

impl Mapper for WordMeanMapper {
    type Key = String;
    type Value = (u64, u64);

    fn map(
        &mut self,
        record: &Record<'_>,
        ctx: &mut MapContext<'_, String, (u64, u64)>,
    ) -> UserResult {
        for word in python_words(record.bytes, &mut self.scratch) {
            ctx.emit_ref(WORDS, (1, word.chars().count() as u64))?;
        }
        Ok(())
    }
}

/// Adds `(count, length)` pairs.
#[derive(Debug, Clone, Copy, Default)]
pub struct PairSum;

impl<K> Combiner<K, (u64, u64)> for PairSum {
    fn combine(&self, _key: &K, acc: &mut (u64, u64), value: (u64, u64)) {
        acc.0 += value.0;
        acc.1 += value.1;
    }
}

/// Writes the count, the total length and the mean.
#[derive(Debug, Clone, Default)]
pub struct WordMeanReducer;

impl Reducer for WordMeanReducer {
    type Key = String;
    type Value = (u64, u64);
    type OutKey = String;
    type OutValue = String;

    fn reduce(
        &mut self,
        _key: &String,
        values: &mut Values<'_, (u64, u64)>,
        ctx: &mut ReduceContext<'_, String, String>,
    ) -> UserResult {
        let (count, length) = values.fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
        ctx.emit(&"count".into(), &count.to_string())?;
        ctx.emit(&"length".into(), &length.to_string())?;
        let mean = if count == 0 {
            0.0
        } else {
            length as f64 / count as f64
        };
        ctx.emit(&"mean".into(), &mean.to_string())?;
        Ok(())
    }
}

/// The job, named `wordmean`.
pub fn job() -> Job<WordMeanMapper, WordMeanReducer> {
    Job::new("wordmean", WordMeanMapper::default(), WordMeanReducer).with_combiner(PairSum)
}
