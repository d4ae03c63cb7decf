//! Grep: how many times each distinct match of a regular expression occurs
//! in the input (the counting job of Hadoop's `grep` example).
//!
//! Parameters: `pattern` (required; Rust `regex` syntax) and `group` (which
//! capture group to count, default 0: the whole match). Output:
//! `match<TAB>count`, in match order.
//!
//! ```
//! use gridmr_core::{JobConfig, LocalEngine};
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("in.txt"), "foo fooo bar\nfoo\n")?;
//! let config = JobConfig::new(dir.path().join("in.txt").to_str().unwrap())
//!     .with_param("pattern", "fo+");
//! let out = LocalEngine::new(dir.path().join("work")).run(&gridmr_core::bundled::grep::job(), &config)?;
//! let mut counts: Vec<(String, u64)> = gridmr_core::output::read_output(&out.output_dir)?;
//! counts.sort();
//! assert_eq!(counts, [("foo".to_string(), 2), ("fooo".to_string(), 1)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::bundled::wordcount::SumReducer;
use crate::error::{UserError, UserResult};
use crate::input::Record;
use crate::job::{Job, MapContext, Mapper, SumCombiner};
use regex::Regex;

/// Emits `(match, 1)` for every match of the job's `pattern` in a line.
#[derive(Debug, Clone, Default)]
pub struct GrepMapper {
    regex: Option<Regex>,
    group: usize,
}

impl Mapper for GrepMapper {
    type Key = String;
    type Value = u64;

    fn setup(&mut self, ctx: &mut MapContext<'_, String, u64>) -> UserResult {
        let pattern = ctx.params().require("pattern")?;
        let regex =
            Regex::new(pattern).map_err(|e| UserError::msg(format!("parameter pattern: {e}")))?;
        let group = ctx.params().parse::<usize>("group")?.unwrap_or(0);
        if group >= regex.captures_len() {
            return Err(UserError::msg(format!(
                "parameter group={group}: the pattern has {} group(s)",
                regex.captures_len() - 1
            )));
        }
        self.regex = Some(regex);
        self.group = group;
        Ok(())
    }

    fn map(&mut self, record: &Record<'_>, ctx: &mut MapContext<'_, String, u64>) -> UserResult {
        let Some(regex) = &self.regex else {
            return Err(UserError::msg("map before setup"));
        };
        let text = record.text();
        if self.group == 0 {
            for m in regex.find_iter(&text) {
                ctx.emit_ref(m.as_str(), 1)?;
            }
        } else {
            for caps in regex.captures_iter(&text) {
                if let Some(m) = caps.get(self.group) {
                    ctx.emit_ref(m.as_str(), 1)?;
                }
            }
        }
        Ok(())
    }
}

/// The job, named `grep`: [`GrepMapper`], a summing combiner and reducer.
pub fn job() -> Job<GrepMapper, SumReducer> {
    Job::new("grep", GrepMapper::default(), SumReducer).with_combiner(SumCombiner)
}
