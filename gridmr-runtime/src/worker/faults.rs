//! Testing hooks: attempts a worker fails or slows down on purpose
//! (`GRIDMR_INJECT_FAIL`, `GRIDMR_INJECT_DELAY_MS`), so that retries, lost
//! workers and concurrency can be tested on real processes.

use crate::error::{Error, Result};
use std::time::Duration;

/// One `TASK@ATTEMPT` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    task: Option<String>,
    attempt: Option<u32>,
}

/// The faults a worker injects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    fail: Vec<Rule>,
    delay: Duration,
}

impl Faults {
    /// Parses `TASK@ATTEMPT` rules (`*` matches anything) and a delay.
    ///
    /// ```
    /// use gridmr_runtime::worker::Faults;
    /// let f = Faults::parse(&["map-00001@1".into(), "reduce-*@*".into()], 0).unwrap();
    /// assert!(f.fails("map-00001", 1));
    /// assert!(!f.fails("map-00001", 2));
    /// assert!(!f.fails("map-00002", 1));
    /// assert!(Faults::parse(&["map@x".into()], 0).is_err());
    /// ```
    pub fn parse(rules: &[String], delay_ms: u64) -> Result<Self> {
        let mut fail = Vec::new();
        for rule in rules.iter().map(|r| r.trim()).filter(|r| !r.is_empty()) {
            let (task, attempt) = rule.split_once('@').unwrap_or((rule, "*"));
            let attempt = match attempt {
                "*" => None,
                n => Some(n.parse().map_err(|_| {
                    Error::setting("GRIDMR_INJECT_FAIL", format!("{rule:?}: bad attempt"))
                })?),
            };
            let task = (task != "*").then(|| task.to_owned());
            fail.push(Rule { task, attempt });
        }
        Ok(Faults {
            fail,
            delay: Duration::from_millis(delay_ms),
        })
    }

    /// Whether attempt `attempt` of `task` must fail. A task pattern ending
    /// in `*` matches by prefix.
    pub fn fails(&self, task: &str, attempt: u32) -> bool {
        self.fail.iter().any(|r| {
            let task_ok = match &r.task {
                None => true,
                Some(p) => match p.strip_suffix('*') {
                    Some(prefix) => task.starts_with(prefix),
                    None => p == task,
                },
            };
            task_ok && r.attempt.is_none_or(|a| a == attempt)
        })
    }

    /// The delay before every task.
    pub fn delay(&self) -> Duration {
        self.delay
    }
}
