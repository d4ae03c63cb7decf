//! The worker's gRPC service: runs map, reduce and SINGLE tasks of the jobs
//! in its registry, off the async runtime, in a fixed number of slots.

use super::attempts::{Attempts, Target, Ticket};
use super::external::Processes;
use super::failure::Failure;
use super::faults::Faults;
use super::scripts::{self, Program, Runner};
use crate::paths::{check_inside, check_new_inside, confine_input};
use gridmr_core::engine::{JobConfig, LocalEngine};
use gridmr_core::ids::BadId;
use gridmr_core::shuffle::RunIndex;
use gridmr_core::task::{
    create_leaf_dir, existing_dir, MapTask, ReduceTask, TaskReport, ATTEMPTS_DIR,
};
use gridmr_core::{AttemptId, Counters, JobDef, JobId, Phase, Registry, TaskId, WorkerId};
use gridmr_net::proto::worker_server::Worker;
use gridmr_net::proto::Failure as FailureKind;
use gridmr_net::proto::{
    self, CancelReq, CancelResp, HeartbeatReq, HeartbeatResp, JobResult, MapResult, ReduceResult,
};
use gridmr_net::wire::{
    counters_to_wire, map_task_from_wire, reduce_task_from_wire, shuffle_from_wire,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

/// What a finished attempt produced.
struct Produced {
    output: PathBuf,
    counters: Counters,
    status: Option<String>,
}

impl From<scripts::ScriptOutput> for Produced {
    fn from(o: scripts::ScriptOutput) -> Self {
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

/// What a task runs: a typed job from the registry, or a script.
enum Work {
    Typed(Arc<dyn JobDef>),
    Script(Program),
}

/// Shared state of one worker.
pub(crate) struct WorkerCore {
    pub(crate) id: WorkerId,
    registry: Registry,
    shared_dir: PathBuf,
    /// Where inputs may be read: the share and `INPUT_ROOTS`.
    input_roots: Vec<PathBuf>,
    slots: Arc<Semaphore>,
    pub(crate) slot_count: u32,
    pub(crate) running: AtomicU32,
    faults: Faults,
    pub(crate) runner: Runner,
    procs: Arc<Processes>,
    /// `TASK_ISOLATION=process`: typed map and reduce attempts run in a
    /// child of this binary.
    pub(crate) isolated: bool,
    /// The attempts running here: their control, and early cancels.
    attempts: Arc<Attempts>,
}

impl WorkerCore {
    pub(crate) fn new(
        id: WorkerId,
        registry: Registry,
        shared_dir: PathBuf,
        input_roots: Vec<PathBuf>,
        slots: u32,
        faults: Faults,
        runner: Runner,
    ) -> Self {
        let procs = Arc::new(Processes::default());
        WorkerCore {
            id,
            registry,
            shared_dir,
            input_roots,
            slots: Arc::new(Semaphore::new(slots as usize)),
            slot_count: slots,
            running: AtomicU32::new(0),
            faults,
            runner,
            procs: procs.clone(),
            isolated: false,
            attempts: Arc::new(Attempts::new(procs)),
        }
    }

    /// How far every attempt running here has got, for the heartbeat.
    pub(crate) fn progress(&self) -> Vec<gridmr_net::rest::AttemptProgress> {
        self.attempts.progress()
    }

    /// Registers an attempt of `job` (see [`Attempts::enter`]).
    fn enter(&self, job: &JobId, attempt: AttemptId) -> Ticket {
        self.attempts.enter(job, attempt)
    }

    fn roots(&self) -> &[PathBuf] {
        std::slice::from_ref(&self.shared_dir)
    }

    /// Refuses a path outside the shared folder, symbolic links resolved (a
    /// master must not make a worker read or write elsewhere).
    fn inside(&self, path: &Path) -> Result<(), Status> {
        check_inside(path, self.roots())
            .map(drop)
            .map_err(|e| Status::invalid_argument(e.to_string()))
    }

    /// The same for a folder the task creates.
    fn inside_new(&self, path: &Path) -> Result<(), Status> {
        check_new_inside(path, self.roots())
            .map(drop)
            .map_err(|e| Status::invalid_argument(e.to_string()))
    }

    /// What a task names: a registered job, a streaming job or a script.
    fn work(
        &self,
        name: &str,
        script_path: &str,
        streaming: Option<&proto::StreamingSpec>,
    ) -> Result<Work, Status> {
        if !name.is_empty() {
            return self
                .registry
                .get(name)
                .map(Work::Typed)
                .map_err(|e| Status::failed_precondition(e.to_string()));
        }
        if let Some(s) = streaming.filter(|s| !s.mapper.is_empty()) {
            let files_dir = (!s.files_dir.is_empty()).then(|| PathBuf::from(&s.files_dir));
            if let Some(d) = &files_dir {
                self.inside(d)?;
            }
            return Ok(Work::Script(Program::Streaming {
                mapper: s.mapper.clone(),
                reducer: s.reducer.clone(),
                combiner: s.combiner.clone(),
                files_dir,
            }));
        }
        if !script_path.is_empty() {
            let script = PathBuf::from(script_path);
            self.inside(&script)?;
            return Ok(Work::Script(Program::Python { script }));
        }
        Err(Status::invalid_argument(
            "the task names no job, script or streaming command",
        ))
    }

    /// Runs `work` in a task slot on the blocking pool, with the testing
    /// hooks applied. A cancelled job's output is removed by `discard`.
    /// With a `log`, the work runs in an attempt span: what it writes
    /// through `tracing` goes to that file (see [`super::task_log`]).
    #[allow(clippy::too_many_arguments)]
    async fn run(
        self: &Arc<Self>,
        ticket: &Ticket,
        log: Option<PathBuf>,
        work: impl FnOnce() -> Result<Produced, Failure> + Send + 'static,
        discard: impl FnOnce(&Path) + Send + 'static,
    ) -> Result<Produced, Failure> {
        let _permit = self
            .slots
            .acquire()
            .await
            .map_err(|_| Failure::engine("the worker is shutting down"))?;
        let job_id = ticket.job();
        let (task, attempt) = (ticket.attempt().task.to_string(), ticket.attempt().attempt);
        let task = task.as_str();
        let cancelled = || ticket.control.cancel.is_cancelled();
        if cancelled() {
            return Err(Failure::cancelled(job_id));
        }
        self.running.fetch_add(1, Ordering::Relaxed);
        let _running = RunningGuard(self.clone());
        // The injected delay ends early at a cancel, as real work would.
        let delay_end = Instant::now() + self.faults.delay();
        while Instant::now() < delay_end {
            if cancelled() {
                return Err(Failure::cancelled(job_id));
            }
            let left = delay_end.saturating_duration_since(Instant::now());
            tokio::time::sleep(left.min(std::time::Duration::from_millis(20))).await;
        }
        if self.faults.fails(task, attempt) {
            return Err(Failure::task(format!(
                "injected failure of {task} attempt {attempt} (GRIDMR_INJECT_FAIL)"
            )));
        }
        tracing::info!(job = %job_id, task, attempt, "task started");
        let started = Instant::now();
        let span = match &log {
            Some(log) => tracing::info_span!(super::task_log::SPAN, log = %log.display(),
                job = %job_id, task, attempt),
            None => tracing::Span::none(),
        };
        let produced = tokio::task::spawn_blocking(move || span.in_scope(work))
            .await
            .map_err(|e| Failure::engine(format!("task thread: {e}")))
            .and_then(|r| r);
        let produced = match produced {
            Ok(p) => {
                tracing::info!(job = %job_id, task, attempt, ms = millis(started), "task done");
                p
            }
            Err(f) => {
                tracing::warn!(job = %job_id, task, attempt, kind = ?f.kind, error = %f.message,
                    "task failed");
                return Err(f);
            }
        };
        if cancelled() {
            let output = produced.output;
            let _ = tokio::task::spawn_blocking(move || discard(&output)).await;
            return Err(Failure::cancelled(job_id));
        }
        Ok(produced)
    }
}

struct RunningGuard(Arc<WorkerCore>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The first of a reduce's map outputs that cannot be read back: checked
/// by its index alone (`whole = false`: present, checksummed, data long
/// enough), or read through every block (`whole = true`, after a reduce
/// failed).
fn first_lost_input(inputs: &[PathBuf], whole: bool) -> Option<Failure> {
    inputs.iter().find_map(|input| {
        let checked = if whole {
            RunIndex::verify(input)
        } else {
            RunIndex::read(input).map(|_| ())
        };
        checked
            .err()
            .map(|e| Failure::map_output_lost(input, format!("a map output cannot be read: {e}")))
    })
}

fn remove_map_output(index: &Path) {
    gridmr_core::layout::MapOutput::new(index).remove();
}

/// This binary's build: the runtime's version, and the executable's size
/// and modification time (two different binaries hardly share both).
fn build_id() -> &'static str {
    static BUILD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BUILD.get_or_init(|| {
        let exe = std::env::current_exe()
            .and_then(std::fs::metadata)
            .map(|m| {
                let mtime = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs());
                format!("{}-{mtime}", m.len())
            })
            .unwrap_or_default();
        format!("gridmr-runtime {} {exe}", env!("CARGO_PKG_VERSION"))
    })
}

fn millis(since: Instant) -> u64 {
    since.elapsed().as_millis().try_into().unwrap_or(u64::MAX)
}

/// The tonic service.
#[derive(Clone)]
pub(crate) struct WorkerService {
    pub(crate) core: Arc<WorkerCore>,
}

/// A SINGLE job's output and working folders, from its message: both named, inside the
/// share (the working folder not yet there), its job id a plain name.
fn single_dirs(core: &WorkerCore, msg: &proto::JobTask) -> Result<(PathBuf, PathBuf), Status> {
    for (field, value) in [("output_dir", &msg.output_dir), ("work_dir", &msg.work_dir)] {
        if value.is_empty() {
            return Err(Status::invalid_argument(format!(
                "JobTask.{field} is empty"
            )));
        }
    }
    gridmr_net::wire::check_job_id("JobTask", &msg.job_id)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let output_dir = PathBuf::from(&msg.output_dir);
    let work_dir = PathBuf::from(&msg.work_dir);
    core.inside(&output_dir)?;
    core.inside_new(&work_dir)?;
    Ok((output_dir, work_dir))
}

/// A SINGLE job's inputs (at most 1,024) and parameters, from its message.
fn single_inputs(msg: &proto::JobTask) -> Result<(Vec<String>, gridmr_core::Params), Status> {
    let inputs: Vec<String> = std::iter::once(&msg.input_path)
        .chain(&msg.more_inputs)
        .cloned()
        .collect();
    if inputs.len() > 1024 {
        return Err(Status::invalid_argument("more than 1024 inputs"));
    }
    let params = gridmr_net::wire::params_from_wire("JobTask", &msg.params)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok((inputs, params))
}

/// A typed job's SINGLE attempt: the embedded engine on one thread, in the attempt's working
/// folder (removed after), writing the attempt's own output folder.
fn typed_single(
    job: &dyn gridmr_core::JobDef,
    config: &JobConfig,
    out_dir: &Path,
    work_dir: &Path,
    flag: gridmr_core::task::CancelFlag,
    progress: gridmr_core::task::Progress,
) -> Result<Produced, Failure> {
    // The job's folders are made here, below the job's own, so that an attempt of a job
    // deleted meanwhile fails instead of bringing its folder back.
    existing_dir(&out_dir.join(ATTEMPTS_DIR)).and_then(|()| create_leaf_dir(work_dir))?;
    let engine = LocalEngine::new(work_dir)
        .with_threads(1)
        .with_cancel(flag)
        .with_progress(progress);
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

#[tonic::async_trait]
impl Worker for WorkerService {
    async fn heartbeat(
        &self,
        _request: Request<HeartbeatReq>,
    ) -> Result<Response<HeartbeatResp>, Status> {
        let core = &self.core;
        Ok(Response::new(HeartbeatResp {
            ok: true,
            message: format!("worker {} up", core.id),
            worker_id: core.id.to_string(),
            slots: core.slot_count,
            running: core.running.load(Ordering::Relaxed),
            jobs: core.registry.names().map(str::to_owned).collect(),
            build: build_id().to_owned(),
        }))
    }

    async fn execute_job(
        &self,
        request: Request<proto::JobTask>,
    ) -> Result<Response<JobResult>, Status> {
        let msg = request.into_inner();
        let core = &self.core;
        let started = Instant::now();
        let attempt = msg.attempt.max(1);
        let (output_dir, work_dir) = single_dirs(core, &msg)?;
        let job = gridmr_net::wire::job_id("JobTask", &msg.job_id)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let ticket = core.enter(&job, AttemptId::new(TaskId::new(Phase::Single, 0), attempt));
        let mut answer = JobResult {
            job_id: msg.job_id.clone(),
            worker_id: core.id.to_string(),
            attempt,
            ..Default::default()
        };
        let what = core.work(&msg.job_name, &msg.script_path, msg.streaming.as_ref())?;
        let typed_log = matches!(what, Work::Typed(_));
        let attempt_dir = gridmr_core::layout::single_attempt_dir(&output_dir, attempt);
        let shuffle = shuffle_from_wire(msg.shuffle.as_ref());
        let work_dir_for_task = work_dir.clone();
        let (runner, procs) = (core.runner.clone(), core.procs.clone());
        let (job_id, timeout_s) = (job.clone(), msg.timeout_s);
        let (inputs, params) = single_inputs(&msg)?;
        let out_dir = output_dir.clone();
        let flag = ticket.control.cancel.clone();
        let progress = ticket.control.progress.clone();
        let roots = core.input_roots.clone();
        let config = JobConfig {
            inputs: inputs.clone(),
            output: Some(attempt_dir.clone()),
            reduce_partitions: Some(1),
            params: params.clone(),
            shuffle,
            job_id: Some(msg.job_id.clone()),
            ..JobConfig::new(msg.input_path.clone())
        };
        let work = move || {
            // Every file a folder or glob input names must resolve inside
            // the share.
            for input in &inputs {
                // An input outside the worker's roots is the request's fault.
                confine_input(input, &roots).map_err(|e| Failure::task(e.to_string()))?;
            }
            match what {
                Work::Typed(job) => typed_single(
                    job.as_ref(),
                    &config,
                    &out_dir,
                    &work_dir_for_task,
                    flag,
                    progress,
                ),
                Work::Script(program) => scripts::run_single(
                    &runner,
                    &procs,
                    &program,
                    &scripts::SingleAttempt {
                        job_id: &job_id,
                        inputs: &inputs,
                        params: &params,
                        output_dir: &out_dir,
                        work_dir: &work_dir_for_task,
                        attempt,
                        shuffle,
                        timeout_s,
                    },
                )
                .map(Produced::from),
            }
        };
        let discard = move |p: &Path| {
            let _ = std::fs::remove_dir_all(&attempt_dir);
            let _ = std::fs::remove_file(p);
        };
        let log = typed_log.then(|| {
            gridmr_core::layout::attempt_log(
                output_dir.parent().unwrap_or(&output_dir),
                ticket.attempt(),
            )
        });
        match core.run(&ticket, log, work, discard).await {
            Ok(p) => {
                answer.success = true;
                answer.output_path = p.output.display().to_string();
                answer.counters = counters_to_wire(&p.counters);
                answer.status_message = p.status.unwrap_or_default();
            }
            Err(f) => {
                answer.failure = f.kind.into();
                answer.error = f.message;
            }
        }
        answer.duration_ms = millis(started);
        Ok(Response::new(answer))
    }

    async fn execute_map(
        &self,
        request: Request<proto::MapTask>,
    ) -> Result<Response<MapResult>, Status> {
        let msg = request.into_inner();
        let core = &self.core;
        let started = Instant::now();
        let task: MapTask = map_task_from_wire(&msg, &core.id)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let ticket = core.enter(&task.job_id, task.attempt_id());
        let control = ticket.control.clone();
        check_inside(&task.split.path, &core.input_roots)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        core.inside(task.target.dir())?;
        let mut answer = MapResult {
            job_id: task.job_id.to_string(),
            worker_id: core.id.to_string(),
            chunk_id: msg.chunk_id.clone(),
            attempt: task.attempt,
            ..Default::default()
        };
        let what = core.work(&msg.job_name, &msg.script_path, msg.streaming.as_ref())?;
        let (runner, procs, timeout_s) = (core.runner.clone(), core.procs.clone(), msg.timeout_s);
        let isolated = core.isolated;
        // A child process's stderr is its log; in this process, its events.
        let log = (matches!(what, Work::Typed(_)) && !isolated)
            .then(|| gridmr_core::layout::attempt_log(task.target.job_dir(), task.attempt_id()));
        let work = move || match what {
            Work::Typed(job) if isolated => {
                super::isolated::run_map(&runner, &procs, &task, job.name()).map(Produced::from)
            }
            Work::Typed(job) => job
                .run_map(&task, &control)
                .map(Produced::from)
                .map_err(Failure::from),
            Work::Script(program) => {
                let progress = &control.progress;
                scripts::run_map(&runner, &procs, &program, &task, progress, timeout_s)
                    .map(Produced::from)
            }
        };
        match core.run(&ticket, log, work, remove_map_output).await {
            Ok(p) => {
                answer.success = true;
                answer.partition_files = vec![gridmr_core::layout::MapOutput::new(&p.output)
                    .data()
                    .display()
                    .to_string()];
                answer.index_path = p.output.display().to_string();
                answer.counters = counters_to_wire(&p.counters);
                answer.status_message = p.status.unwrap_or_default();
            }
            Err(f) => {
                answer.failure = f.kind.into();
                answer.error = f.message;
            }
        }
        answer.duration_ms = millis(started);
        Ok(Response::new(answer))
    }

    async fn execute_reduce(
        &self,
        request: Request<proto::ReduceTask>,
    ) -> Result<Response<ReduceResult>, Status> {
        let msg = request.into_inner();
        let core = &self.core;
        let started = Instant::now();
        let task: ReduceTask = reduce_task_from_wire(&msg, &core.id)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let ticket = core.enter(&task.job_id, task.attempt_id());
        let control = ticket.control.clone();
        core.inside(&task.output_dir)?;
        for input in &task.map_outputs {
            core.inside(input)?;
        }
        let mut answer = ReduceResult {
            job_id: task.job_id.to_string(),
            worker_id: core.id.to_string(),
            partition_id: msg.partition_id,
            attempt: task.attempt,
            ..Default::default()
        };
        let what = core.work(&msg.job_name, &msg.script_path, msg.streaming.as_ref())?;
        let (runner, procs, timeout_s) = (core.runner.clone(), core.procs.clone(), msg.timeout_s);
        let isolated = core.isolated;
        let log = (matches!(what, Work::Typed(_)) && !isolated).then(|| {
            let job_dir = task.output_dir.parent().unwrap_or(&task.output_dir);
            gridmr_core::layout::attempt_log(job_dir, task.attempt_id())
        });
        let work = move || {
            // A missing or truncated map output is found before any work.
            if let Some(lost) = first_lost_input(&task.map_outputs, false) {
                return Err(lost);
            }
            let result = match what {
                Work::Typed(job) if isolated => {
                    super::isolated::run_reduce(&runner, &procs, &task, job.name())
                        .map(Produced::from)
                }
                Work::Typed(job) => job
                    .run_reduce(&task, &control)
                    .map(Produced::from)
                    .map_err(Failure::from),
                Work::Script(program) => {
                    let progress = &control.progress;
                    scripts::run_reduce(&runner, &procs, &program, &task, progress, timeout_s)
                        .map(Produced::from)
                }
            };
            match result {
                // Whatever the reduce said, a damaged input is the map's loss.
                Err(f) if matches!(f.kind, FailureKind::Task | FailureKind::Engine) => {
                    Err(first_lost_input(&task.map_outputs, true).unwrap_or(f))
                }
                other => other,
            }
        };
        let discard = |p: &Path| {
            let _ = std::fs::remove_file(p);
        };
        match core.run(&ticket, log, work, discard).await {
            Ok(p) => {
                answer.success = true;
                answer.output_path = p.output.display().to_string();
                answer.counters = counters_to_wire(&p.counters);
                answer.status_message = p.status.unwrap_or_default();
            }
            Err(f) => {
                answer.failure = f.kind.into();
                answer.error = f.message;
                answer.lost_input = f
                    .lost_input
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
            }
        }
        answer.duration_ms = millis(started);
        Ok(Response::new(answer))
    }

    async fn cancel_job(
        &self,
        request: Request<CancelReq>,
    ) -> Result<Response<CancelResp>, Status> {
        let req = request.into_inner();
        if req.job_id.is_empty() {
            return Err(Status::invalid_argument("CancelReq.job_id is empty"));
        }
        let job = gridmr_net::wire::job_id("CancelReq", &req.job_id)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let target = if req.task.is_empty() {
            Target::Job
        } else {
            let task: TaskId = req
                .task
                .parse()
                .map_err(|e: BadId| Status::invalid_argument(format!("CancelReq: {e}")))?;
            Target::Attempt(AttemptId::new(task, req.attempt))
        };
        self.core.attempts.cancel(&job, target);
        Ok(Response::new(CancelResp {
            ok: true,
            running: self.core.running.load(Ordering::Relaxed),
        }))
    }
}
