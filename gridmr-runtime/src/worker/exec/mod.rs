//! How a worker runs an attempt, behind one type, [`Backend`]: a typed job
//! in this process ([`in_process`]) or in a child of this binary
//! (`TASK_ISOLATION=process`, [`child`]), or a Python script or
//! Hadoop-Streaming commands as fenced processes ([`script`]).
//!
//! - [`process`]: one fenced external process, its lines pumped both ways,
//!   and the process trees a cancel kills.
//! - [`protocol`]: the Python driver's line protocol and the map-side
//!   grouping.
//! - [`fork_server`]: the warm Python that forks driver runs.

pub(crate) mod child;
pub(crate) mod fork_server;
pub(crate) mod in_process;
pub(crate) mod process;
pub(crate) mod protocol;
pub(crate) mod script;

use super::failure::Failure;
use gridmr_core::engine::JobConfig;
use gridmr_core::task::{TaskControl, TaskReport};
use gridmr_core::{Counters, JobDef, MapTask, ReduceTask};
use process::Processes;
use script::{Program, Runner};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a finished attempt produced.
pub(crate) struct Produced {
    /// Its output: a map's index file, a reduce's or single's part file.
    pub(crate) output: PathBuf,
    /// Its counters.
    pub(crate) counters: Counters,
    /// Its last `reporter:status:` line (scripts only).
    pub(crate) status: Option<String>,
}

impl From<script::ScriptOutput> for Produced {
    fn from(o: script::ScriptOutput) -> Self {
        Produced {
            output: o.output,
            counters: o.counters,
            status: o.status,
        }
    }
}

/// A task child's answer (`TASK_ISOLATION=process`).
impl From<(PathBuf, Counters)> for Produced {
    fn from((output, counters): (PathBuf, Counters)) -> Self {
        Produced {
            output,
            counters,
            status: None,
        }
    }
}

impl From<TaskReport> for Produced {
    fn from(r: TaskReport) -> Self {
        Produced {
            output: r.output,
            counters: r.counters,
            status: None,
        }
    }
}

/// What runs an attempt.
pub(crate) enum Backend {
    /// A typed job from the registry, in this process.
    InProcess(Arc<dyn JobDef>),
    /// A typed job from the registry, in a child of this binary (a SINGLE
    /// attempt still runs in this process: it is one engine run).
    Child(Arc<dyn JobDef>),
    /// A Python job script or streaming commands.
    Script(Program),
}

/// What every backend runs with: the worker's process runner, its process
/// trees, and the task's time limit (0: the worker's default).
#[derive(Clone)]
pub(crate) struct Exec {
    pub(crate) runner: Runner,
    pub(crate) procs: Arc<Processes>,
    pub(crate) timeout_s: u32,
}

/// A SINGLE attempt, as every backend needs it.
pub(crate) struct SingleRun<'a> {
    /// The engine's job for a typed job (its inputs, output, parameters).
    pub(crate) config: &'a JobConfig,
    /// The script's attempt.
    pub(crate) script: &'a script::SingleAttempt<'a>,
    /// The job's output folder.
    pub(crate) out_dir: &'a Path,
    /// The attempt's working folder, made by the attempt.
    pub(crate) work_dir: &'a Path,
}

impl Backend {
    /// Whether what the attempt logs through `tracing` in this process is
    /// its log (a child's or a script's stderr is theirs).
    pub(crate) fn logs_here(&self, single: bool) -> bool {
        match self {
            Backend::InProcess(_) => true,
            Backend::Child(_) => single,
            Backend::Script(_) => false,
        }
    }

    /// Runs one map attempt.
    pub(crate) fn run_map(
        &self,
        x: &Exec,
        task: &MapTask,
        control: &TaskControl,
    ) -> Result<Produced, Failure> {
        match self {
            Backend::InProcess(job) => in_process::run_map(job.as_ref(), task, control),
            Backend::Child(job) => {
                child::run_map(&x.runner, &x.procs, task, job.name()).map(Produced::from)
            }
            Backend::Script(program) => {
                let (r, p, t) = (&x.runner, &x.procs, x.timeout_s);
                script::run_map(r, p, program, task, &control.progress, t).map(Produced::from)
            }
        }
    }

    /// Runs one reduce attempt.
    pub(crate) fn run_reduce(
        &self,
        x: &Exec,
        task: &ReduceTask,
        control: &TaskControl,
    ) -> Result<Produced, Failure> {
        match self {
            Backend::InProcess(job) => in_process::run_reduce(job.as_ref(), task, control),
            Backend::Child(job) => {
                child::run_reduce(&x.runner, &x.procs, task, job.name()).map(Produced::from)
            }
            Backend::Script(program) => {
                let (r, p, t) = (&x.runner, &x.procs, x.timeout_s);
                script::run_reduce(r, p, program, task, &control.progress, t).map(Produced::from)
            }
        }
    }

    /// Runs one SINGLE attempt.
    pub(crate) fn run_single(
        &self,
        x: &Exec,
        run: &SingleRun<'_>,
        control: &TaskControl,
    ) -> Result<Produced, Failure> {
        match self {
            Backend::InProcess(job) | Backend::Child(job) => {
                in_process::run_single(job.as_ref(), run.config, run.out_dir, run.work_dir, control)
            }
            Backend::Script(program) => {
                script::run_single(&x.runner, &x.procs, program, run.script).map(Produced::from)
            }
        }
    }
}
