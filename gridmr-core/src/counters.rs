//! Job and task counters, as Hadoop users know them.
//!
//! A counter is named by a group and a name. GridMR's own counters live in the group
//! [`BUILTIN_GROUP`]; user code adds its own through
//! [`MapContext::increment`](crate::job::MapContext::increment). Each task attempt counts into its
//! own [`Counters`]; a job's counters are the sum over **committed** attempts only, so a retried
//! or duplicate attempt never counts twice.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The group of GridMR's built-in counters.
pub const BUILTIN_GROUP: &str = "gridmr";

/// Names of the built-in counters (group [`BUILTIN_GROUP`]).
pub mod builtin {
    /// Input records read by map tasks.
    pub const MAP_INPUT_RECORDS: &str = "map_input_records";
    /// Input bytes read by map tasks (the split's bytes, terminators included).
    pub const MAP_INPUT_BYTES: &str = "map_input_bytes";
    /// Records emitted by mappers.
    pub const MAP_OUTPUT_RECORDS: &str = "map_output_records";
    /// Records fed to the combiner.
    pub const COMBINE_INPUT_RECORDS: &str = "combine_input_records";
    /// Records the combiner left.
    pub const COMBINE_OUTPUT_RECORDS: &str = "combine_output_records";
    /// Records written to spill runs and to the final map output.
    pub const SPILLED_RECORDS: &str = "spilled_records";
    /// Number of spill runs written by map tasks.
    pub const SPILLS: &str = "spills";
    /// Bytes of final map output (the shuffle data files).
    pub const MAP_OUTPUT_BYTES: &str = "map_output_bytes";
    /// Distinct keys seen by reducers.
    pub const REDUCE_INPUT_GROUPS: &str = "reduce_input_groups";
    /// Values read by reducers.
    pub const REDUCE_INPUT_RECORDS: &str = "reduce_input_records";
    /// Bytes of shuffle data read by reducers.
    pub const REDUCE_SHUFFLE_BYTES: &str = "reduce_shuffle_bytes";
    /// Of `reduce_shuffle_bytes`, the bytes reduces fetched from other
    /// workers over the network (`SHUFFLE=local`).
    pub const REDUCE_SHUFFLE_REMOTE_BYTES: &str = "reduce_shuffle_remote_bytes";
    /// Of `reduce_shuffle_bytes`, the bytes reduces read from the folders of
    /// other workers of their own host, handed over without a copy
    /// (`SHUFFLE=local`, `SHUFFLE_HOST_LOCAL`).
    pub const REDUCE_SHUFFLE_HOST_LOCAL_BYTES: &str = "reduce_shuffle_host_local_bytes";
    /// Records written to the job output.
    pub const OUTPUT_RECORDS: &str = "output_records";
    /// Bytes written to the job output.
    pub const OUTPUT_BYTES: &str = "output_bytes";
}

/// A set of counters: `(group, name) → value`.
///
/// ```
/// use gridmr_core::Counters;
/// let mut a = Counters::default();
/// a.add("app", "bad_lines", 2);
/// let mut b = Counters::default();
/// b.add("app", "bad_lines", 3);
/// a.merge(&b);
/// assert_eq!(a.get("app", "bad_lines"), 5);
/// ```
///
/// Serialized as `{"group": {"name": value}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Counters {
    groups: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Counters {
    /// Adds `amount` to a counter, creating it at zero first.
    pub fn add(&mut self, group: &str, name: &str, amount: u64) {
        if amount == 0 {
            return;
        }
        let g = match self.groups.get_mut(group) {
            Some(g) => g,
            None => self.groups.entry(group.to_owned()).or_default(),
        };
        match g.get_mut(name) {
            Some(v) => *v = v.saturating_add(amount),
            None => {
                g.insert(name.to_owned(), amount);
            }
        }
    }

    /// Adds `amount` to a built-in counter.
    pub fn add_builtin(&mut self, name: &str, amount: u64) {
        self.add(BUILTIN_GROUP, name, amount);
    }

    /// A counter's value (zero when absent).
    pub fn get(&self, group: &str, name: &str) -> u64 {
        self.groups
            .get(group)
            .and_then(|g| g.get(name))
            .copied()
            .unwrap_or(0)
    }

    /// A built-in counter's value.
    pub fn builtin(&self, name: &str) -> u64 {
        self.get(BUILTIN_GROUP, name)
    }

    /// Adds every counter of `other` into `self`.
    pub fn merge(&mut self, other: &Counters) {
        for (group, names) in &other.groups {
            for (name, v) in names {
                self.add(group, name, *v);
            }
        }
    }

    /// Every counter as `(group, name, value)`, sorted.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, u64)> {
        self.groups
            .iter()
            .flat_map(|(g, m)| m.iter().map(move |(n, v)| (g.as_str(), n.as_str(), *v)))
    }

    /// True when no counter is set.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}
