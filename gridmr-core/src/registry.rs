//! Jobs by name: one binary can hold many jobs and run any of them by name, which is how the
//! cluster's workers find the code of the job they are asked to run.

use crate::error::{Error, Result};
use crate::input::InputFormat;
use crate::job::{Job, Mapper, PlanContext, Reducer};
use crate::params::Params;
use crate::task::{run_map, run_reduce, MapTask, ReduceTask, TaskControl, TaskReport};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A job with its types erased: what the engine and workers run.
pub trait JobDef: Send + Sync {
    /// The job's registered name.
    fn name(&self) -> &str;
    /// How its input is read.
    fn input_format(&self) -> InputFormat;
    /// Whether its map output is combined (so it is about as large as its distinct keys, not
    /// its input). False by default.
    fn has_combiner(&self) -> bool {
        false
    }
    /// Runs one map attempt.
    fn run_map(&self, task: &MapTask, control: &TaskControl) -> Result<TaskReport>;
    /// Runs one reduce attempt.
    fn run_reduce(&self, task: &ReduceTask, control: &TaskControl) -> Result<TaskReport>;
    /// Runs the job's planning hook (see [`Job::with_planner`]): the
    /// parameters to add before its first task. None by default.
    fn plan(&self, ctx: &PlanContext<'_>) -> Result<Params> {
        let _ = ctx;
        Ok(Params::new())
    }
}

impl<M, R> JobDef for Job<M, R>
where
    M: Mapper,
    R: Reducer<Key = M::Key, Value = M::Value>,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn input_format(&self) -> InputFormat {
        self.input_format
    }

    fn has_combiner(&self) -> bool {
        self.combiner.is_some()
    }

    fn run_map(&self, task: &MapTask, control: &TaskControl) -> Result<TaskReport> {
        run_map(self, task, control)
    }

    fn run_reduce(&self, task: &ReduceTask, control: &TaskControl) -> Result<TaskReport> {
        run_reduce(self, task, control)
    }

    fn plan(&self, ctx: &PlanContext<'_>) -> Result<Params> {
        match &self.planner {
            None => Ok(Params::new()),
            Some(plan) => plan(ctx).map_err(|e| Error::Task {
                phase: "plan",
                message: e.to_string(),
            }),
        }
    }
}

/// The jobs a binary knows, by name.
///
/// ```
/// use gridmr_core::Registry;
/// let mut registry = Registry::new();
/// registry.register(gridmr_core::bundled::wordcount::job());
/// assert!(registry.get("wordcount").is_ok());
/// assert!(registry.get("nope").is_err());
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    jobs: BTreeMap<String, Arc<dyn JobDef>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a job under its name, replacing one of the same name.
    pub fn register(&mut self, job: impl JobDef + 'static) -> &mut Self {
        self.jobs.insert(job.name().to_owned(), Arc::new(job));
        self
    }

    /// The job called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<dyn JobDef>> {
        self.jobs
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownJob(name.to_owned()))
    }

    /// The registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.jobs.keys().map(String::as_str)
    }
}
