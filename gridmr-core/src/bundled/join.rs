//! Join: a reduce-side join of two inputs on their first field (the
//! "repartition join" of Hadoop's data-join library).
//!
//! The job takes two inputs (see [`JobConfig::with_input`](crate::JobConfig::with_input)):
//! the first is the left side, the second the right. A line's join key is
//! its text up to the first tab, the rest (possibly empty) its payload. The
//! mapper tags each payload with its side ([`TaskInfo::input`](crate::TaskInfo::input));
//! the reducer pairs every left payload of a key with every right one and
//! writes `key<TAB>left<TAB>right`.
//!
//! The parameter `join` picks the kind: `inner` (default), `left`, `right`
//! or `outer`; a missing side is written as an empty field.
//!
//! Only the left side of a key is held in memory: GridMR's merge is stable,
//! and map tasks are numbered in input order, so a key's values reach the
//! reducer in map-task order, left before right. Put the smaller input first.
//!
//! ```
//! use gridmr_core::{JobConfig, LocalEngine};
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("users.tsv"), "1\tada\n2\tbob\n")?;
//! std::fs::write(dir.path().join("orders.tsv"), "1\tbook\n1\tpen\n3\tcup\n")?;
//! let config = JobConfig::new(dir.path().join("users.tsv").to_str().unwrap())
//!     .with_input(dir.path().join("orders.tsv").to_str().unwrap());
//! let out = LocalEngine::new(dir.path().join("work"))
//!     .run(&gridmr_core::bundled::join::job(), &config)?;
//! let mut rows: Vec<(String, String)> = gridmr_core::output::read_output(&out.output_dir)?;
//! rows.sort();
//! assert_eq!(rows, [("1".to_string(), "ada\tbook".to_string()),
//!                   ("1".to_string(), "ada\tpen".to_string())]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::{UserError, UserResult};
use crate::input::Record;
use crate::job::{Job, MapContext, Mapper, ReduceContext, Reducer, Values};

/// Which rows a join keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JoinKind {
    /// Keys on both sides.
    #[default]
    Inner,
    /// Every left row, paired or not.
    Left,
    /// Every right row, paired or not.
    Right,
    /// Every row of both sides.
    Outer,
}

/// A `join` parameter that names no [`JoinKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected inner, left, right or outer")]
pub struct UnknownJoinKind;

impl std::str::FromStr for JoinKind {
    type Err = UnknownJoinKind;
    fn from_str(s: &str) -> Result<Self, UnknownJoinKind> {
        match s {
            "inner" => Ok(JoinKind::Inner),
            "left" => Ok(JoinKind::Left),
            "right" => Ok(JoinKind::Right),
            "outer" | "full" => Ok(JoinKind::Outer),
            _ => Err(UnknownJoinKind),
        }
    }
}

/// The left side's tag.
pub const LEFT: u8 = 0;
/// The right side's tag.
pub const RIGHT: u8 = 1;

/// Emits `(key, (side, payload))` for every line.
#[derive(Debug, Clone, Default)]
pub struct JoinMapper {
    side: u8,
}

impl Mapper for JoinMapper {
    type Key = String;
    type Value = (u8, String);

    fn setup(&mut self, ctx: &mut MapContext<'_, String, (u8, String)>) -> UserResult {
        self.side = match ctx.info().input {
            0 => LEFT,
            1 => RIGHT,
            n => {
                return Err(UserError::msg(format!(
                    "a join takes two inputs; this split comes from input {}",
                    n + 1
                )))
            }
        };
        Ok(())
    }

    fn map(
        &mut self,
        record: &Record<'_>,
        ctx: &mut MapContext<'_, String, (u8, String)>,
    ) -> UserResult {
        let text = record.text();
        let (key, payload) = text.split_once('\t').unwrap_or((&text, ""));
        ctx.emit(key.to_owned(), (self.side, payload.to_owned()))?;
        Ok(())
    }
}

/// Pairs each key's left payloads with its right ones.
#[derive(Debug, Clone, Default)]
pub struct JoinReducer {
    kind: JoinKind,
    lefts: Vec<String>,
    line: String,
}

impl JoinReducer {
    fn write(
        &mut self,
        key: &String,
        left: &str,
        right: &str,
        ctx: &mut ReduceContext<'_, String, String>,
    ) -> UserResult {
        self.line.clear();
        self.line.push_str(left);
        self.line.push('\t');
        self.line.push_str(right);
        ctx.emit(key, &self.line)?;
        Ok(())
    }
}

impl Reducer for JoinReducer {
    type Key = String;
    type Value = (u8, String);
    type OutKey = String;
    type OutValue = String;

    fn setup(&mut self, ctx: &mut ReduceContext<'_, String, String>) -> UserResult {
        self.kind = ctx.params().parse("join")?.unwrap_or_default();
        Ok(())
    }

    fn reduce(
        &mut self,
        key: &String,
        values: &mut Values<'_, (u8, String)>,
        ctx: &mut ReduceContext<'_, String, String>,
    ) -> UserResult {
        let mut lefts = std::mem::take(&mut self.lefts);
        lefts.clear();
        let mut rights = 0u64;
        for (side, payload) in values {
            if side == LEFT {
                if rights > 0 {
                    return Err(UserError::msg(format!(
                        "key {key:?}: a left row came after a right one"
                    )));
                }
                lefts.push(payload);
                continue;
            }
            rights += 1;
            if lefts.is_empty() {
                if matches!(self.kind, JoinKind::Right | JoinKind::Outer) {
                    self.write(key, "", &payload, ctx)?;
                }
            } else {
                for left in &lefts {
                    self.write(key, left, &payload, ctx)?;
                }
            }
        }
        if rights == 0 && matches!(self.kind, JoinKind::Left | JoinKind::Outer) {
            for left in &lefts {
                self.write(key, left, "", ctx)?;
            }
        }
        self.lefts = lefts;
        Ok(())
    }
}

/// The job, named `join`.
pub fn job() -> Job<JoinMapper, JoinReducer> {
    Job::new("join", JoinMapper::default(), JoinReducer::default())
}
