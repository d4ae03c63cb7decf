//! A typed job's attempt in the worker's own process: the core task
//! functions for a map or a reduce, the embedded engine on one thread for
//! a SINGLE attempt.

use super::Produced;
use crate::worker::failure::Failure;
use gridmr_core::engine::{JobConfig, LocalEngine};
use gridmr_core::task::{create_leaf_dir, existing_dir, TaskControl, ATTEMPTS_DIR};
use gridmr_core::{JobDef, MapTask, ReduceTask};
use std::path::Path;

/// One map attempt.
pub(crate) fn run_map(
    job: &dyn JobDef,
    task: &MapTask,
    control: &TaskControl,
) -> Result<Produced, Failure> {
    Ok(job.run_map(task, control)?.into())
}

/// One reduce attempt.
pub(crate) fn run_reduce(
    job: &dyn JobDef,
    task: &ReduceTask,
    control: &TaskControl,
) -> Result<Produced, Failure> {
    Ok(job.run_reduce(task, control)?.into())
}

/// A typed job's SINGLE attempt: the embedded engine on one thread, in the
/// attempt's working folder (removed after), writing the attempt's own
/// output folder (`config.output`).
pub(crate) fn run_single(
    job: &dyn JobDef,
    config: &JobConfig,
    out_dir: &Path,
    work_dir: &Path,
    control: &TaskControl,
) -> Result<Produced, Failure> {
    // The job's folders are made here, below the job's own, so that an
    // attempt of a job deleted meanwhile fails instead of bringing its
    // folder back.
    existing_dir(&out_dir.join(ATTEMPTS_DIR)).and_then(|()| create_leaf_dir(work_dir))?;
    let engine = LocalEngine::new(work_dir)
        .with_threads(1)
        .with_cancel(control.cancel.clone())
        .with_progress(control.progress.clone());
    let outcome = engine.run(job, config);
    let _ = std::fs::remove_dir_all(work_dir);
    let outcome = outcome?;
    Ok(Produced {
        output: outcome
            .output_dir
            .join(gridmr_core::task::part_file_name(0)),
        counters: outcome.counters,
        status: None,
    })
}
