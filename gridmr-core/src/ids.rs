//! Typed identities: a job, a worker, a task and one attempt of a task.
//!
//! Each has one string form, used alike on the wire, in the REST API, in
//! the store and in file names (which [`layout`](crate::layout) builds from
//! them), and reads back from it with `FromStr`:
//!
//! | type | string | example |
//! |---|---|---|
//! | [`JobId`] | a plain name | `job-000001` |
//! | [`WorkerId`] | no `/`, `\\`, spaces | `w1`, `host-50051` |
//! | [`TaskId`] | `single`, `map-NNNNN`, `reduce-NNNNN` | `map-00003` |
//! | [`AttemptId`] | `<task>-a<attempt>` | `map-00003-a2` |
//!
//! A *plain name* is 1 to 128 ASCII letters, digits, `-`, `_` and `.`, and
//! is neither `.` nor `..`: it is safe as a file name and in a URL path.
//! A [`JobId`] can only be made from a plain name and a [`WorkerId`] only
//! from a valid worker name, so code that holds one never checks it again.
//!
//! ```
//! use gridmr_core::ids::{AttemptId, JobId, Phase, TaskId};
//! let job: JobId = "job-000001".parse().unwrap();
//! let attempt = AttemptId::new(TaskId::new(Phase::Map, 3), 2);
//! assert_eq!(format!("{job}/{attempt}"), "job-000001/map-00003-a2");
//! assert_eq!("map-00003-a2".parse::<AttemptId>().unwrap(), attempt);
//! assert!("../etc".parse::<JobId>().is_err());
//! ```

use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

/// Longest plain name.
pub const MAX_NAME_LEN: usize = 128;

/// A string that is not the identity it was read as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {text:?} is not {expected}")]
pub struct BadId {
    /// Which identity (`job id`, `task`, …).
    pub what: &'static str,
    /// The text, cut to 64 bytes.
    pub text: String,
    /// What it should look like.
    pub expected: &'static str,
}

impl BadId {
    fn new(what: &'static str, text: &str, expected: &'static str) -> Self {
        let mut end = text.len().min(64);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        BadId {
            what,
            text: text[..end].to_owned(),
            expected,
        }
    }
}

/// Whether `name` is a plain name (see the module's documentation).
///
/// ```
/// use gridmr_core::ids::is_plain_name;
/// assert!(is_plain_name("job-000001") && is_plain_name("a.b_c"));
/// assert!(!is_plain_name("") && !is_plain_name("..") && !is_plain_name("a/b"));
/// ```
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Defines a validated plain-name identity.
macro_rules! plain_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $valid:path, $expected:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Reads a plain name as this identity.
            pub fn new(name: impl Into<String>) -> Result<Self, BadId> {
                let name = name.into();
                if $valid(&name) {
                    Ok($name(name))
                } else {
                    Err(BadId::new($what, &name, $expected))
                }
            }

            /// Its string form.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = BadId;
            fn from_str(s: &str) -> Result<Self, BadId> {
                $name::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = BadId;
            fn try_from(s: String) -> Result<Self, BadId> {
                $name::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<std::path::Path> for $name {
            fn as_ref(&self) -> &std::path::Path {
                std::path::Path::new(&self.0)
            }
        }

        /// Reads as its string wherever a `&str` is wanted.
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        /// Maps keyed by it are looked up by `&str`.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

plain_id!(
    /// A job's identity: `job-NNNNNN` when a master numbered it, any plain
    /// name when a caller did (the embedded engine, the original's master).
    JobId,
    "job id",
    is_plain_name,
    "a plain name"
);

impl JobId {
    /// `job-NNNNNN`: the id a master gives its `seq`-th job.
    pub fn numbered(seq: u64) -> JobId {
        JobId(format!("job-{seq:06}"))
    }
}

plain_id!(
    /// A worker's identity, as it registered: 1 to 128 bytes with no `/`,
    /// `\\`, white space or control character (`host-50051`, `w1`,
    /// `node:7`). It names no file.
    WorkerId,
    "worker id",
    is_worker_name,
    "1 to 128 bytes without '/', '\\', spaces or control characters"
);

/// Whether `name` may be a worker's id (see [`WorkerId`]).
pub fn is_worker_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_whitespace() || c.is_control())
}

/// The phases a task belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Phase {
    /// The one task of a SINGLE job.
    Single,
    /// A map task over one split.
    Map,
    /// A reduce task over one partition.
    Reduce,
}

impl Phase {
    /// `single`, `map` or `reduce`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Single => "single",
            Phase::Map => "map",
            Phase::Reduce => "reduce",
        }
    }

    /// Its position in per-phase arrays.
    pub fn slot(self) -> usize {
        match self {
            Phase::Single => 0,
            Phase::Map => 1,
            Phase::Reduce => 2,
        }
    }

    /// The name of its task `index`.
    pub fn task_name(self, index: u32) -> String {
        TaskId::new(self, index).to_string()
    }
}

/// One task of a job: its phase and its index in the phase (a map's split,
/// a reduce's partition; 0 for the single task).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TaskId {
    /// Its phase.
    pub phase: Phase,
    /// Its index in the phase.
    pub index: u32,
}

impl TaskId {
    /// Task `index` of `phase` (the single task's index is always 0).
    pub fn new(phase: Phase, index: u32) -> Self {
        let index = if phase == Phase::Single { 0 } else { index };
        TaskId { phase, index }
    }

    /// `single`, `map-NNNNN` or `reduce-NNNNN`.
    pub fn name(self) -> String {
        self.to_string()
    }

    /// Reads a task name back; `None` when it is none.
    pub fn parse(name: &str) -> Option<TaskId> {
        name.parse().ok()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.phase {
            Phase::Single => f.write_str(crate::layout::SINGLE_TASK),
            Phase::Map => write!(f, "map-{:05}", self.index),
            Phase::Reduce => write!(f, "reduce-{:05}", self.index),
        }
    }
}

impl FromStr for TaskId {
    type Err = BadId;
    fn from_str(name: &str) -> Result<Self, BadId> {
        const EXPECTED: &str = "single, map-NNNNN or reduce-NNNNN";
        let bad = || BadId::new("task", name, EXPECTED);
        if name == crate::layout::SINGLE_TASK {
            return Ok(TaskId::new(Phase::Single, 0));
        }
        let (phase, digits) = match name.split_once('-').ok_or_else(bad)? {
            ("map", d) => (Phase::Map, d),
            ("reduce", d) => (Phase::Reduce, d),
            _ => return Err(bad()),
        };
        // Digits only: `u32::from_str` also takes a sign.
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let index = digits.parse().map_err(|_| bad())?;
        Ok(TaskId::new(phase, index))
    }
}

/// Compares with a task's name (`info.task_id == "map-00000"`).
impl PartialEq<&str> for TaskId {
    fn eq(&self, other: &&str) -> bool {
        other.parse::<TaskId>().is_ok_and(|t| t == *self)
    }
}

/// One attempt of a task: the task and the attempt's number (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AttemptId {
    /// Its task.
    pub task: TaskId,
    /// Its number, from 1.
    pub attempt: u32,
}

impl AttemptId {
    /// Attempt `attempt` of `task`.
    pub fn new(task: TaskId, attempt: u32) -> Self {
        AttemptId { task, attempt }
    }
}

/// `<task>-a<attempt>`, as [`layout::attempt_name`](crate::layout::attempt_name)
/// names an attempt's files.
impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-a{}", self.task, self.attempt)
    }
}

impl FromStr for AttemptId {
    type Err = BadId;
    fn from_str(s: &str) -> Result<Self, BadId> {
        let bad = || BadId::new("attempt", s, "<task>-a<number>");
        let (task, n) = s.rsplit_once("-a").ok_or_else(bad)?;
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(AttemptId::new(task.parse()?, n.parse().map_err(|_| bad())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_reads_back_from_its_string() {
        for name in ["job-000001", "wordcount.1", "a_b"] {
            let id: JobId = name.parse().unwrap();
            assert_eq!(id.to_string().parse::<JobId>().unwrap(), id);
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, format!("{name:?}"));
            assert_eq!(serde_json::from_str::<JobId>(&json).unwrap(), id);
        }
        for task in [
            TaskId::new(Phase::Single, 0),
            TaskId::new(Phase::Map, 3),
            TaskId::new(Phase::Reduce, 99_999),
            TaskId::new(Phase::Map, 123_456),
        ] {
            assert_eq!(task.to_string().parse::<TaskId>().unwrap(), task);
            let attempt = AttemptId::new(task, 12);
            assert_eq!(attempt.to_string().parse::<AttemptId>().unwrap(), attempt);
        }
        assert_eq!(
            TaskId::new(Phase::Map, 3).to_string(),
            crate::layout::map_task(3)
        );
        assert_eq!(
            AttemptId::new(TaskId::new(Phase::Reduce, 1), 2).to_string(),
            crate::layout::attempt_name(&crate::layout::reduce_task(1), 2)
        );
    }

    #[test]
    fn what_is_no_id_is_refused_by_name() {
        for bad in ["", ".", "..", "a/b", "a b", "ü", "a:1", &"x".repeat(129)] {
            let e = bad.parse::<JobId>().unwrap_err();
            assert!(e.to_string().starts_with("job id"), "{e}");
        }
        for bad in ["", "a/b", "a b", "a\\b", "a\tb", "a\u{7}", &"x".repeat(129)] {
            assert!(bad.parse::<WorkerId>().is_err(), "{bad:?}");
        }
        for good in ["w1", "host-50051", "node:7", "ü"] {
            assert!(good.parse::<WorkerId>().is_ok(), "{good:?}");
        }
        assert!(serde_json::from_str::<WorkerId>("\"../x\"").is_err());
        for bad in [
            "map-",
            "map-+1",
            "map--1",
            "reduce-x",
            "shuffle-00001",
            "single-1",
        ] {
            assert!(bad.parse::<TaskId>().is_err(), "{bad}");
        }
        for bad in ["map-00001", "map-00001-a", "map-00001-a+1", "x-a1"] {
            assert!(bad.parse::<AttemptId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_job_id_looks_up_as_its_string() {
        let mut m = std::collections::BTreeMap::new();
        m.insert(JobId::new("job-000007").unwrap(), 7);
        assert_eq!(m.get("job-000007"), Some(&7));
        assert!(JobId::new("job-000007").unwrap() == "job-000007");
    }
}
