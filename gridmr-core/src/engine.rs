//! The embedded engine: runs a job in this process on a pool of threads, over a work folder,
//! through the same task functions and committer that the cluster uses.

use crate::commit::JobCommit;
use crate::counters::Counters;
use crate::error::{Error, Result};
use crate::ids::{JobId, WorkerId};
use crate::input::{list_inputs, plan_splits, SplitPolicy};
use crate::job::PlanContext;
use crate::layout;
use crate::params::Params;
use crate::registry::JobDef;
use crate::shuffle::ShuffleSettings;
use crate::task::{CancelFlag, MapTarget, MapTask, Progress, ReduceTask, TaskControl, TaskReport};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What to run: input, output, and how to cut the work.
///
/// ```
/// use gridmr_core::JobConfig;
/// let config = JobConfig::new("customers.tsv")
///     .with_input("orders/")
///     .with_param("join", "inner");
/// assert_eq!(config.inputs, ["customers.tsv", "orders/"]);
/// assert_eq!(config.params.get("join"), Some("inner"));
/// ```
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// The inputs, each a file, a directory or a glob; a map task knows which
    /// one its split came from ([`TaskInfo::input`](crate::TaskInfo::input)).
    pub inputs: Vec<String>,
    /// The output folder; default `<work>/jobs/<job_id>/out`. It must not exist or be empty.
    pub output: Option<PathBuf>,
    /// Reduce partitions (`R`); default: the engine's thread count. `Some(0)`
    /// makes the job map-only (Hadoop's `numReduceTasks = 0`): each map
    /// task's records, unsorted, are its `part-m-NNNNN`.
    pub reduce_partitions: Option<u32>,
    /// The job's parameters, which every task sees.
    pub params: Params,
    /// The largest output of several parts joined into `result.txt` (default
    /// [`DEFAULT_RESULT_MAX_BYTES`](crate::commit::DEFAULT_RESULT_MAX_BYTES)); above it the part
    /// files alone are the output. One part is always `result.txt` too (a hard link).
    pub result_max_bytes: u64,
    /// How the input is cut into map tasks.
    pub splits: SplitPolicy,
    /// Shuffle settings.
    pub shuffle: ShuffleSettings,
    /// A job id; default a fresh `local-…` id.
    pub job_id: Option<String>,
}

impl JobConfig {
    /// A configuration reading `input`, with every other setting at its default.
    pub fn new(input: impl Into<String>) -> Self {
        JobConfig {
            inputs: vec![input.into()],
            output: None,
            reduce_partitions: None,
            params: Params::new(),
            result_max_bytes: crate::commit::DEFAULT_RESULT_MAX_BYTES,
            splits: SplitPolicy::default(),
            shuffle: ShuffleSettings::default(),
            job_id: None,
        }
    }
}

impl JobConfig {
    /// This configuration with one more input.
    pub fn with_input(mut self, input: impl Into<String>) -> Self {
        self.inputs.push(input.into());
        self
    }

    /// This configuration with the parameter `name` set to `value`.
    pub fn with_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(name, value);
        self
    }
}

/// Wall time of each phase of a job.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PhaseTimes {
    /// Listing input and planning splits.
    pub prepare: Duration,
    /// All map tasks.
    pub map: Duration,
    /// All reduce tasks.
    pub reduce: Duration,
    /// Committing the output (result.txt, `_SUCCESS`, clean-up).
    pub commit: Duration,
    /// The whole job.
    pub total: Duration,
}

/// What a finished job produced.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    /// The job's id.
    pub job_id: JobId,
    /// The output folder (`part-r-*`, `result.txt`, `_SUCCESS`).
    pub output_dir: PathBuf,
    /// The joined result file, `result.txt`, when the output was small enough for one
    /// (`JobConfig::result_max_bytes`); the part files are in `output_dir` either way.
    pub result_file: Option<PathBuf>,
    /// Counters summed over committed attempts.
    pub counters: Counters,
    /// Map tasks run.
    pub map_tasks: usize,
    /// Reduce tasks run.
    pub reduce_tasks: u32,
    /// Input bytes.
    pub input_bytes: u64,
    /// Phase times.
    pub times: PhaseTimes,
}

/// Runs jobs in this process.
///
/// ```
/// use gridmr_core::{LocalEngine, JobConfig};
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("in.txt"), "Hola hola mundo\nmundo grid mr\nhola grid\n")?;
/// let engine = LocalEngine::new(dir.path().join("work")).with_threads(2);
/// let config = JobConfig::new(dir.path().join("in.txt").to_str().unwrap());
/// let outcome = engine.run(&gridmr_core::bundled::wordcount::job(), &config)?;
/// let mut counts: Vec<(String, u64)> = gridmr_core::output::read_output(&outcome.output_dir)?;
/// counts.sort();
/// assert_eq!(counts[1], ("hola".to_string(), 3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct LocalEngine {
    work_dir: PathBuf,
    threads: usize,
    max_attempts: u32,
    keep_intermediate: bool,
    cancel: Option<CancelFlag>,
    progress: Option<Progress>,
}

static JOB_SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh job id: `local-<unix ms>-<pid>-<n>`, unique across processes sharing a folder.
pub fn new_job_id() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let n = JOB_SEQ.fetch_add(1, Ordering::Relaxed);
    format!("local-{ms}-{}-{n}", std::process::id())
}

/// Commits the job's output (`outputs[i]`: partition `i`'s attempt file) by the commit
/// protocol the master uses too; returns `result.txt`, when the output was small enough for it.
fn commit(
    output_dir: &Path,
    outputs: &[TaskReport],
    map_only: bool,
    result_max_bytes: u64,
) -> Result<Option<PathBuf>> {
    let outputs = outputs
        .iter()
        .enumerate()
        .map(|(i, r)| (i as u32, r.output.clone()));
    let commit = if map_only {
        JobCommit::map_only(output_dir, outputs, result_max_bytes)
    } else {
        JobCommit::reduce(output_dir, outputs, result_max_bytes)
    };
    Ok(commit.run(&mut |_| {})?.result)
}

impl LocalEngine {
    /// An engine over `work_dir`, with one thread per available core, one attempt per task.
    pub fn new(work_dir: impl Into<PathBuf>) -> Self {
        LocalEngine {
            work_dir: work_dir.into(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_attempts: 1,
            keep_intermediate: false,
            cancel: None,
            progress: None,
        }
    }

    /// Sets the number of worker threads (at least 1).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Sets how many times a task is tried before the job fails (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Keeps the shuffle files after a successful job (they are removed by default).
    pub fn keep_intermediate(mut self, keep: bool) -> Self {
        self.keep_intermediate = keep;
        self
    }

    /// Runs jobs under `flag`: cancelling it from another thread stops the
    /// running job's tasks (within 1,024 records) with [`Error::Cancelled`].
    ///
    /// ```
    /// use gridmr_core::{task::CancelFlag, LocalEngine};
    /// let flag = CancelFlag::default();
    /// let engine = LocalEngine::new("/tmp/work").with_cancel(flag.clone());
    /// // ... engine.run(...) on a thread; then, from here:
    /// flag.cancel();
    /// # let _ = engine;
    /// ```
    pub fn with_cancel(mut self, flag: CancelFlag) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// Counts the map phase's input bytes, read and to read, into
    /// `progress` (every map task adds to it).
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The thread count.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `job` to completion.
    pub fn run(&self, job: &dyn JobDef, config: &JobConfig) -> Result<JobOutcome> {
        let started = Instant::now();
        let (job_id, partitions) = self.identity(config)?;
        let map_only = partitions == 0;
        let job_dir = self.work_dir.join("jobs").join(&job_id);
        let shuffle_dir = job_dir.join("shuffle");
        let output_dir = config.output.clone().unwrap_or_else(|| job_dir.join("out"));
        prepare_output(&output_dir)?;
        // Tasks write only into folders that exist (`task::existing_dir`): made here, as a
        // master makes them for its jobs.
        for dir in [shuffle_dir.clone(), layout::attempts_dir(&output_dir)] {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        }

        let (splits, params, input_bytes) = self.plan(job, config, partitions)?;
        let prepared = Instant::now();

        // One flag for the job: when a task gives up, its siblings stop early;
        // the caller may also cancel it from another thread.
        let cancel = self
            .cancel
            .as_ref()
            .map(CancelFlag::child)
            .unwrap_or_default();
        let target = if map_only {
            MapTarget::Direct {
                out: output_dir.clone(),
            }
        } else {
            MapTarget::Shuffle {
                dir: shuffle_dir.clone(),
                partitions,
                job_dir: None,
            }
        };
        let map_tasks = map_tasks(&job_id, splits, target, config.shuffle, &params)?;
        let map_control = TaskControl {
            cancel: cancel.clone(),
            progress: self.progress.clone().unwrap_or_default(),
        };
        let maps = self.run_maps(job, &job_id, &map_tasks, &map_control)?;
        let mapped = Instant::now();

        let reduces = if map_only {
            Vec::new()
        } else {
            let reduce_tasks = (0..partitions)
                .map(|p| {
                    Ok(ReduceTask {
                        job_id: job_id.clone(),
                        partition: p,
                        attempt: 1,
                        worker_id: local_worker()?,
                        map_outputs: maps.iter().map(|r| r.output.clone()).collect(),
                        output_dir: output_dir.clone(),
                        params: params.clone(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let control = TaskControl {
                cancel: cancel.clone(),
                progress: Default::default(),
            };
            self.run_reduces(job, &job_id, &reduce_tasks, &control)?
        };
        let reduced = Instant::now();

        let outputs = if map_only { &maps } else { &reduces };
        let result_file = commit(&output_dir, outputs, map_only, config.result_max_bytes)?;
        if !self.keep_intermediate {
            let _ = std::fs::remove_dir_all(&shuffle_dir);
        }
        let counters = maps
            .iter()
            .chain(&reduces)
            .fold(Counters::default(), |mut c, r| {
                c.merge(&r.counters);
                c
            });
        let done = Instant::now();
        Ok(JobOutcome {
            job_id,
            output_dir,
            result_file,
            counters,
            map_tasks: map_tasks.len(),
            reduce_tasks: partitions,
            input_bytes,
            times: PhaseTimes {
                prepare: prepared - started,
                map: mapped - prepared,
                reduce: reduced - mapped,
                commit: done - reduced,
                total: done - started,
            },
        })
    }

    /// The job's id (a plain name: it becomes a folder's) and its reduce partitions (0 for a
    /// map-only job), checked.
    fn identity(&self, config: &JobConfig) -> Result<(JobId, u32)> {
        let job_id = config.job_id.clone().unwrap_or_else(new_job_id);
        let job_id = JobId::new(job_id).map_err(|e| Error::setting("job_id", e.to_string()))?;
        let partitions = config.reduce_partitions.unwrap_or(self.threads as u32);
        if partitions > 100_000 {
            return Err(Error::setting(
                "reduce_partitions",
                "must be between 0 (map-only) and 100000",
            ));
        }
        Ok((job_id, partitions))
    }

    /// Lists the inputs, runs the job's planning hook and cuts the splits: the splits, the
    /// parameters with what the hook added, and the inputs' bytes.
    fn plan(
        &self,
        job: &dyn JobDef,
        config: &JobConfig,
        partitions: u32,
    ) -> Result<(Vec<crate::InputSplit>, Params, u64)> {
        let files = list_inputs(&config.inputs)?;
        let input_bytes = files.iter().map(|f| f.len).sum();
        let mut params = config.params.clone();
        params.extend(job.plan(&PlanContext {
            files: &files,
            partitions,
            params: &config.params,
            samples: &crate::input::FileSamples,
        })?);
        // Splits are fitted to the map buffer only where the map output is about the input's
        // size; combined output is about the distinct keys', and larger splits repeat fewer.
        let mut policy = if job.has_combiner() {
            config.splits
        } else {
            config.splits.fitting(&config.shuffle)
        };
        policy.min_splits = policy.min_splits.max(self.threads as u32);
        let splits = plan_splits(&files, &policy, job.input_format());
        Ok((splits, params, input_bytes))
    }

    /// Runs the map tasks on the pool.
    fn run_maps(
        &self,
        job: &dyn JobDef,
        job_id: &JobId,
        tasks: &[MapTask],
        control: &TaskControl,
    ) -> Result<Vec<TaskReport>> {
        let cancel = &control.cancel;
        self.run_tasks(job_id, tasks, cancel, MapTask::task_id, |t, attempt| {
            job.run_map(
                &MapTask {
                    attempt,
                    ..t.clone()
                },
                control,
            )
        })
    }

    /// Runs the reduce tasks on the pool.
    fn run_reduces(
        &self,
        job: &dyn JobDef,
        job_id: &JobId,
        tasks: &[ReduceTask],
        control: &TaskControl,
    ) -> Result<Vec<TaskReport>> {
        let cancel = &control.cancel;
        self.run_tasks(job_id, tasks, cancel, ReduceTask::task_id, |t, attempt| {
            job.run_reduce(
                &ReduceTask {
                    attempt,
                    ..t.clone()
                },
                control,
            )
        })
    }

    /// Runs `tasks` on the pool, each up to `max_attempts` times; returns the committed
    /// attempts' reports in task order, or the first task that ran out of attempts.
    fn run_tasks<T: Sync>(
        &self,
        job_id: &JobId,
        tasks: &[T],
        cancel: &CancelFlag,
        task_id: impl Fn(&T) -> crate::ids::TaskId + Sync,
        run: impl Fn(&T, u32) -> Result<TaskReport> + Sync,
    ) -> Result<Vec<TaskReport>> {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Mutex<Vec<Option<TaskReport>>> = Mutex::new(vec![None; tasks.len()]);
        let failure: Mutex<Option<Error>> = Mutex::new(None);
        let worker = || {
            while !failed.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(task) = tasks.get(i) else { return };
                let mut attempt = 1;
                let outcome = loop {
                    match run(task, attempt) {
                        Ok(report) => break Ok(report),
                        // Cancelled: no retry, and the job's error says so.
                        Err(Error::Cancelled) => {
                            failed.store(true, Ordering::Relaxed);
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert(Error::Cancelled);
                            }
                            return;
                        }
                        // Another task already failed the job: stop quietly.
                        Err(_) if failed.load(Ordering::Relaxed) => return,
                        Err(_) if attempt < self.max_attempts => attempt += 1,
                        Err(e) => break Err((attempt, e)),
                    }
                };
                match outcome {
                    Ok(report) => {
                        if let Ok(mut r) = results.lock() {
                            r[i] = Some(report);
                        }
                    }
                    Err((attempts, e)) => {
                        // Record the failure before stopping the siblings, so
                        // that it, not their cancellation, is the job's error.
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(Error::JobFailed {
                                job_id: job_id.to_string(),
                                task: task_id(task).to_string(),
                                attempts,
                                last_error: e.to_string(),
                            });
                        }
                        failed.store(true, Ordering::Relaxed);
                        cancel.cancel();
                        return;
                    }
                }
            }
        };
        let threads = self.threads.min(tasks.len()).max(1);
        std::thread::scope(|s| {
            for _ in 1..threads {
                s.spawn(worker);
            }
            worker();
        });
        if let Some(e) = failure.into_inner().ok().flatten() {
            return Err(e);
        }
        let results = results.into_inner().unwrap_or_default();
        results
            .into_iter()
            .map(|r| r.ok_or_else(|| Error::setting("threads", "a task was not run")))
            .collect()
    }
}

/// The embedded engine's one worker.
fn local_worker() -> Result<WorkerId> {
    WorkerId::new("local").map_err(|e| Error::setting("worker_id", e.to_string()))
}

/// Attempt 1 of a map task per split, all writing to `target`.
fn map_tasks(
    job_id: &JobId,
    splits: Vec<crate::InputSplit>,
    target: MapTarget,
    shuffle: crate::ShuffleSettings,
    params: &Params,
) -> Result<Vec<MapTask>> {
    let worker_id = local_worker()?;
    Ok(splits
        .into_iter()
        .enumerate()
        .map(|(i, split)| MapTask {
            job_id: job_id.clone(),
            index: i as u32,
            attempt: 1,
            worker_id: worker_id.clone(),
            split,
            target: target.clone(),
            shuffle,
            params: params.clone(),
        })
        .collect())
}

/// The output folder must be new or empty: never mix two jobs' parts.
fn prepare_output(dir: &Path) -> Result<()> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
        if entries.next().is_some() {
            return Err(Error::setting(
                "output",
                format!("{} already exists and is not empty", dir.display()),
            ));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))
}
