//! Job parameters: named strings a job is submitted with, which every task
//! sees (Hadoop's job `Configuration`, as far as a job's own code needs it).
//!
//! A mapper or reducer reads them in `setup` through
//! [`TaskInfo::params`](crate::TaskInfo::params); a partitioner made with
//! [`Job::with_partitioner_from`](crate::Job::with_partitioner_from) and a
//! planning hook ([`Job::with_planner`](crate::Job::with_planner)) get them
//! too. Names and values are plain strings; a job parses what it needs.
//!
//! ```
//! use gridmr_core::Params;
//! let params = Params::new().with("pattern", "fo+").with("group", "0");
//! assert_eq!(params.get("pattern"), Some("fo+"));
//! assert_eq!(params.parse::<u32>("group").unwrap(), Some(0));
//! assert!(params.parse::<u32>("pattern").is_err());
//! assert!(params.require("missing").is_err());
//! ```

use crate::error::UserError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::str::FromStr;

/// A job's parameters, by name, in name order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// These parameters with `name` set to `value`.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(name, value);
        self
    }

    /// Sets `name` to `value`, replacing an earlier value.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    /// Adds every parameter of `other`, replacing those of the same name.
    pub fn extend(&mut self, other: Params) {
        self.0.extend(other.0);
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The value of `name`, or an error that names it.
    pub fn require(&self, name: &str) -> Result<&str, UserError> {
        self.get(name)
            .ok_or_else(|| UserError::msg(format!("the job needs the parameter {name:?}")))
    }

    /// The value of `name` parsed as a `T`: `None` when it is not set, an
    /// error naming it when it does not parse.
    pub fn parse<T>(&self, name: &str) -> Result<Option<T>, UserError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.get(name)
            .map(|v| {
                v.parse()
                    .map_err(|e| UserError::msg(format!("parameter {name}={v:?}: {e}")))
            })
            .transpose()
    }

    /// The parameters in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Params(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl From<BTreeMap<String, String>> for Params {
    fn from(map: BTreeMap<String, String>) -> Self {
        Params(map)
    }
}

impl From<Params> for BTreeMap<String, String> {
    fn from(p: Params) -> Self {
        p.0
    }
}
