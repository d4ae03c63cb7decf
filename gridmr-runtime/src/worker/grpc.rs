//! The worker's gRPC service: each call's message checked and turned into
//! a task (nothing it names is trusted: paths must lie in the share, ids
//! must be ids), run through [`WorkerCore::run`] by its [`Backend`], and
//! answered by one reply builder ([`Answer`]).

use super::attempts::Target;
use super::core::{build_id, millis, WorkerCore};
use super::exec::{script, Produced, SingleRun};
use super::failure::Failure;
use super::objects;
use super::shuffle::serve::{self, ChunkStream};
use crate::paths::confine_input;
use gridmr_core::engine::JobConfig;
use gridmr_core::ids::BadId;
use gridmr_core::shuffle::RunIndex;
use gridmr_core::task::{MapTarget, MapTask, ReduceTask};
use gridmr_core::{AttemptId, Phase, TaskId};
use gridmr_net::proto::worker_server::Worker;
use gridmr_net::proto::Failure as FailureKind;
use gridmr_net::proto::{
    self, CancelReq, CancelResp, DropShuffleReq, DropShuffleResp, FetchReq, HeartbeatReq,
    HeartbeatResp, JobResult, MapResult, ReduceResult,
};
use gridmr_net::wire::{
    counters_to_wire, map_task_from_wire, reduce_task_from_wire, shuffle_from_wire,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tonic::{Request, Response, Status};

/// A task call's answer, filled in one way for every kind of task.
trait Answer {
    /// The attempt produced `p`.
    fn succeeded(&mut self, p: Produced);
    /// The attempt failed with `f`.
    fn failed(&mut self, f: Failure);
    /// It took `ms`.
    fn took(&mut self, ms: u64);
}

impl Answer for JobResult {
    fn succeeded(&mut self, p: Produced) {
        self.success = true;
        self.output_path = p.output.display().to_string();
        self.counters = counters_to_wire(&p.counters);
        self.status_message = p.status.unwrap_or_default();
    }
    fn failed(&mut self, f: Failure) {
        self.failure = f.kind.into();
        self.error = f.message;
    }
    fn took(&mut self, ms: u64) {
        self.duration_ms = ms;
    }
}

impl Answer for MapResult {
    fn succeeded(&mut self, p: Produced) {
        self.success = true;
        let data = gridmr_core::layout::MapOutput::new(&p.output).data();
        self.partition_files = vec![data.display().to_string()];
        self.index_path = p.output.display().to_string();
        self.counters = counters_to_wire(&p.counters);
        self.status_message = p.status.unwrap_or_default();
    }
    fn failed(&mut self, f: Failure) {
        self.failure = f.kind.into();
        self.error = f.message;
    }
    fn took(&mut self, ms: u64) {
        self.duration_ms = ms;
    }
}

impl Answer for ReduceResult {
    fn succeeded(&mut self, p: Produced) {
        self.success = true;
        self.output_path = p.output.display().to_string();
        self.counters = counters_to_wire(&p.counters);
        self.status_message = p.status.unwrap_or_default();
    }
    fn failed(&mut self, f: Failure) {
        self.failure = f.kind.into();
        self.error = f.message;
        self.lost_input = f
            .lost_input
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        self.lost_inputs = f
            .also_lost
            .iter()
            .map(|p| p.display().to_string())
            .collect();
    }
    fn took(&mut self, ms: u64) {
        self.duration_ms = ms;
    }
}

/// The answer to a task call that ran (successfully or not).
fn reply<A: Answer>(
    mut answer: A,
    result: Result<Produced, Failure>,
    started: Instant,
) -> Response<A> {
    match result {
        Ok(p) => answer.succeeded(p),
        Err(f) => answer.failed(f),
    }
    answer.took(millis(started));
    Response::new(answer)
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

/// A SINGLE job sent by the original's master, which knows no attempts and no working
/// folder: its attempt folder is made under its output folder (which that master does not
/// make), and [`commit_seed_single`] lays out the original's output once it succeeds. Returns
/// whether `msg` is such a job.
fn seed_single(core: &WorkerCore, msg: &mut proto::JobTask) -> Result<bool, Status> {
    if msg.attempt != 0 || !msg.work_dir.is_empty() || msg.output_dir.is_empty() {
        return Ok(false);
    }
    let out = PathBuf::from(&msg.output_dir);
    match out.exists() {
        true => core.inside(&out)?,
        false => core.inside_new(&out)?,
    }
    let attempts = gridmr_core::layout::attempts_dir(&out);
    std::fs::create_dir_all(&attempts)
        .map_err(|e| Status::internal(format!("create {}: {e}", attempts.display())))?;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let work = attempts.join(format!("seed-{}-{n}-work", std::process::id()));
    msg.work_dir = work.display().to_string();
    Ok(true)
}

/// The folders a task of the original's master needs in its job's folder: that master makes
/// only its own (`chunks`, `shuffle`, `out`), and has no attempts to fence.
fn seed_folders(job_dir: &Path) -> Result<(), Status> {
    for dir in [gridmr_core::layout::work_dir(job_dir), job_dir.join("logs")] {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Status::internal(format!("create {}: {e}", dir.display())))?;
    }
    Ok(())
}

/// A reduce sent by the original's master (no attempt number) names the part file it wants
/// (`out/part-0000`), not an output folder: the attempt writes in that file's folder as any
/// reduce does, and the file it names is returned for the part to be renamed to once it
/// succeeds. `None`: a GridMR master's reduce.
fn seed_reduce(core: &WorkerCore, msg: &mut proto::ReduceTask) -> Result<Option<PathBuf>, Status> {
    let file = PathBuf::from(&msg.output_path);
    if msg.attempt != 0 || msg.output_path.is_empty() || file.is_dir() {
        return Ok(None);
    }
    let out = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| Status::invalid_argument("ReduceTask.output_path names no folder"))?
        .to_path_buf();
    core.inside_new(&file)?;
    core.inside(&out)?;
    let attempts = gridmr_core::layout::attempts_dir(&out);
    std::fs::create_dir_all(&attempts)
        .map_err(|e| Status::internal(format!("create {}: {e}", attempts.display())))?;
    seed_folders(out.parent().unwrap_or(&out))?;
    msg.output_path = out.display().to_string();
    Ok(Some(file))
}

/// The original's output of a SINGLE job its master ran here: the part committed as a master
/// would (`part-r-00000`, `result.txt`, `_SUCCESS` last), `result.txt` answered.
async fn commit_seed_single(out: &Path, produced: Produced) -> Result<Produced, Failure> {
    let (out, part) = (out.to_path_buf(), produced.output.clone());
    let committed = tokio::task::spawn_blocking(move || {
        gridmr_core::commit::JobCommit::reduce(
            &out,
            vec![(0, part)],
            gridmr_core::commit::DEFAULT_RESULT_MAX_BYTES,
        )
        .run(&mut |_| {})
    })
    .await
    .map_err(|e| Failure::engine(e.to_string()))?
    .map_err(|e| Failure::engine(format!("committing the output: {e}")))?;
    Ok(Produced {
        output: committed
            .result
            .or_else(|| committed.parts.first().cloned())
            .unwrap_or_default(),
        ..produced
    })
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

/// The first of a reduce's map outputs that cannot be read back: checked
/// by its index alone (`whole = false`: present, checksummed, data long
/// enough), or read through every block (`whole = true`, after a reduce
/// failed). It is reported by its name in `names` (what the master sent:
/// the same path, or a kept output's plain name).
fn first_lost_input(inputs: &[PathBuf], names: &[PathBuf], whole: bool) -> Option<Failure> {
    inputs.iter().zip(names).find_map(|(input, name)| {
        let checked = if whole {
            RunIndex::verify(input)
        } else {
            RunIndex::read(input).map(|_| ())
        };
        checked
            .err()
            .map(|e| Failure::map_output_lost(name, format!("a map output cannot be read: {e}")))
    })
}

fn remove_map_output(index: &Path) {
    gridmr_core::layout::MapOutput::new(index).remove();
}

/// The check a task call's paths and ids failed, as the gRPC status.
fn invalid(e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(e.to_string())
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
        let mut msg = request.into_inner();
        let core = &self.core;
        let started = Instant::now();
        let seed = seed_single(core, &mut msg)?;
        let attempt = msg.attempt.max(1);
        let (output_dir, work_dir) = single_dirs(core, &msg)?;
        let seed_out = output_dir.clone();
        let job = gridmr_net::wire::job_id("JobTask", &msg.job_id).map_err(invalid)?;
        let ticket = core.enter(&job, AttemptId::new(TaskId::new(Phase::Single, 0), attempt));
        let answer = JobResult {
            job_id: msg.job_id.clone(),
            worker_id: core.id.to_string(),
            attempt,
            ..Default::default()
        };
        let backend = core.backend(&msg.job_name, &msg.script_path, msg.streaming.as_ref())?;
        let attempt_dir = gridmr_core::layout::single_attempt_dir(&output_dir, attempt);
        let shuffle = shuffle_from_wire(msg.shuffle.as_ref());
        let (inputs, params) = single_inputs(&msg)?;
        let config = JobConfig {
            inputs: inputs.clone(),
            output: Some(attempt_dir.clone()),
            reduce_partitions: Some(1),
            params: params.clone(),
            shuffle,
            job_id: Some(msg.job_id.clone()),
            ..JobConfig::new(msg.input_path.clone())
        };
        let log = backend.logs_here(true).then(|| {
            let job_dir = output_dir.parent().unwrap_or(&output_dir);
            gridmr_core::layout::attempt_log(job_dir, ticket.attempt())
        });
        let exec = core.exec(msg.timeout_s);
        let (control, roots) = (ticket.control.clone(), core.input_roots.clone());
        let work = move || {
            // Every file a folder or glob input names must resolve inside
            // the share; one outside the worker's roots is the request's
            // fault.
            for input in &inputs {
                confine_input(input, &roots).map_err(|e| Failure::task(e.to_string()))?;
            }
            let attempt = script::SingleAttempt {
                job_id: &job,
                inputs: &inputs,
                params: &params,
                output_dir: &output_dir,
                work_dir: &work_dir,
                attempt,
                shuffle,
                timeout_s: exec.timeout_s,
            };
            let run = SingleRun {
                config: &config,
                script: &attempt,
                out_dir: &output_dir,
                work_dir: &work_dir,
            };
            backend.run_single(&exec, &run, &control)
        };
        let discard = move |p: &Path| {
            let _ = std::fs::remove_dir_all(&attempt_dir);
            let _ = std::fs::remove_file(p);
        };
        let mut result = core.run(&ticket, log, work, discard).await;
        if seed {
            result = match result {
                Ok(produced) => commit_seed_single(&seed_out, produced).await,
                failed => failed,
            };
        }
        Ok(reply(answer, result, started))
    }

    async fn execute_map(
        &self,
        request: Request<proto::MapTask>,
    ) -> Result<Response<MapResult>, Status> {
        let msg = request.into_inner();
        let core = &self.core;
        let started = Instant::now();
        let store = core.shuffle.store.clone();
        let task: MapTask = map_task_from_wire(&msg, &core.id, store.root()).map_err(invalid)?;
        let ticket = core.enter(&task.job_id, task.attempt_id());
        // An object input: in a bucket this worker may read; a file: inside its roots.
        let object_input = crate::objstore::is_object_url(&task.split.path.to_string_lossy());
        if object_input {
            core.objects
                .check(&task.split.path.to_string_lossy())
                .map_err(invalid)?;
        } else {
            crate::paths::check_inside(&task.split.path, &core.input_roots).map_err(invalid)?;
        }
        let output_url = match msg.output_url.as_str() {
            "" => None,
            _ if msg.map_only_output.is_empty() => {
                return Err(Status::invalid_argument(
                    "MapTask.output_url is for the maps of map-only jobs",
                ))
            }
            url => Some(core.objects.check(url).map_err(invalid)?),
        };
        core.inside(task.target.job_dir())?;
        let seed_partitions = match msg.attempt {
            0 => {
                seed_folders(task.target.job_dir())?;
                usize::try_from(msg.reduce_partitions).unwrap_or(1)
            }
            _ => 0,
        };
        let local = msg.local_shuffle && msg.map_only_output.is_empty();
        if local {
            // This worker's own folder for the job; a job it was told has
            // ended gets none.
            store
                .prepare(&task.job_id)
                .map_err(|e| Status::failed_precondition(e.to_string()))?;
        } else {
            core.inside(task.target.dir())?;
        }
        let answer = MapResult {
            job_id: task.job_id.to_string(),
            worker_id: core.id.to_string(),
            chunk_id: msg.chunk_id.clone(),
            attempt: task.attempt,
            ..Default::default()
        };
        let backend = core.backend(&msg.job_name, &msg.script_path, msg.streaming.as_ref())?;
        let log = backend
            .logs_here(false)
            .then(|| gridmr_core::layout::attempt_log(task.target.job_dir(), task.attempt_id()));
        let (exec, control) = (core.exec(msg.timeout_s), ticket.control.clone());
        let (stores, runtime) = (core.objects.clone(), tokio::runtime::Handle::current());
        let share_log = log.clone();
        let work = move || {
            if !object_input && output_url.is_none() {
                return backend.run_map(&exec, &task, &control);
            }
            // An object input is read into the attempt's folder first, in the attempt's slot;
            // a map-only job's object output is written there, then uploaded.
            let dir = objects::attempt_dir(&store, &task.job_id, task.attempt_id())?;
            let mut task = task;
            if object_input {
                let read = Instant::now();
                task.split = objects::fetch_input(&runtime, &stores, &dir, &task.split)?;
                tracing::info!(job = %task.job_id, task = %task.attempt_id(),
                    bytes = task.split.len(), read_ms = millis(read), "map input read");
            }
            let share_out = match (&output_url, &mut task.target) {
                (Some(_), MapTarget::Direct { out }) => {
                    Some(std::mem::replace(out, objects::staging_out(&dir)?))
                }
                _ => None,
            };
            let ran = backend.run_map(&exec, &task, &control);
            if let (Some(_), Some(log)) = (&share_out, &share_log) {
                objects::keep_log(&dir, task.attempt_id(), log);
            }
            let mut produced = ran?;
            if let (Some(url), Some(share_out)) = (&output_url, &share_out) {
                produced.output =
                    objects::publish(&runtime, &stores, url, &produced.output, share_out)?;
            }
            Ok(produced)
        };
        let result = core.run(&ticket, log, work, remove_map_output).await;
        // A kept output is named to the master by its plain name here.
        let result = result.map(|mut p| {
            if local {
                p.output = p.output.file_name().map(PathBuf::from).unwrap_or_default();
            }
            p
        });
        let mut answer = reply(answer, result, started);
        if seed_partitions > 0 && answer.get_ref().success {
            // The original's master files a map's outputs by partition, one name for each: the
            // one data file holds them all, so it is named for each.
            let files = &mut answer.get_mut().partition_files;
            *files = vec![files.first().cloned().unwrap_or_default(); seed_partitions];
        }
        Ok(answer)
    }

    async fn execute_reduce(
        &self,
        request: Request<proto::ReduceTask>,
    ) -> Result<Response<ReduceResult>, Status> {
        let mut msg = request.into_inner();
        let core = &self.core;
        let started = Instant::now();
        let seed_file = seed_reduce(core, &mut msg)?;
        let task: ReduceTask = reduce_task_from_wire(&msg, &core.id).map_err(invalid)?;
        let remote = gridmr_net::wire::remote_inputs_from_wire(&msg).map_err(invalid)?;
        let ticket = core.enter(&task.job_id, task.attempt_id());
        core.inside(&task.output_dir)?;
        let output_url = match msg.output_url.as_str() {
            "" => None,
            url => Some(core.objects.check(url).map_err(invalid)?),
        };
        for input in &task.map_outputs {
            core.inside(input)?;
        }
        let answer = ReduceResult {
            job_id: task.job_id.to_string(),
            worker_id: core.id.to_string(),
            partition_id: msg.partition_id,
            attempt: task.attempt,
            ..Default::default()
        };
        let backend = core.backend(&msg.job_name, &msg.script_path, msg.streaming.as_ref())?;
        let log = backend.logs_here(false).then(|| {
            let job_dir = task.output_dir.parent().unwrap_or(&task.output_dir);
            gridmr_core::layout::attempt_log(job_dir, task.attempt_id())
        });
        let (exec, control) = (core.exec(msg.timeout_s), ticket.control.clone());
        let (fetcher, runtime) = (
            core.shuffle.fetcher.clone(),
            tokio::runtime::Handle::current(),
        );
        let (stores, store) = (core.objects.clone(), core.shuffle.store.clone());
        let share_log = log.clone();
        let slot = ticket.slot.clone();
        let work = move || {
            // An object output: the part is written in the attempt's folder, then uploaded.
            let staged = match &output_url {
                None => None,
                Some(_) => Some(objects::attempt_dir(
                    &store,
                    &task.job_id,
                    task.attempt_id(),
                )?),
            };
            let share_out = task.output_dir.clone();
            let task = match &staged {
                None => task,
                Some(dir) => ReduceTask {
                    output_dir: objects::staging_out(dir)?,
                    ..task
                },
            };
            // SHUFFLE=local: the inputs are fetched first, in the attempt's slot.
            let phases = Instant::now();
            let fetched = match remote.is_empty() {
                true => None,
                false => Some(runtime.block_on(fetcher.fetch_all(
                    &task.job_id,
                    task.attempt_id(),
                    task.partition,
                    remote,
                    &control.cancel,
                ))?),
            };
            let (task, names) = match &fetched {
                None => {
                    let names = task.map_outputs.clone();
                    (task, names)
                }
                Some(f) => {
                    let task = ReduceTask {
                        map_outputs: f.paths.clone(),
                        ..task
                    };
                    (task, f.names.clone())
                }
            };
            // A missing or truncated map output is found before any work.
            if let Some(lost) = first_lost_input(&task.map_outputs, &names, false) {
                return Err(lost);
            }
            let fetched_ms = millis(phases);
            let ran = backend.run_reduce(&exec, &task, &control);
            let reduced_ms = millis(phases) - fetched_ms;
            if let (Some(dir), Some(log)) = (&staged, &share_log) {
                objects::keep_log(dir, task.attempt_id(), log);
            }
            let mut produced = match ran {
                // Whatever the reduce said, a damaged input is the map's loss.
                Err(f) if matches!(f.kind, FailureKind::Task | FailureKind::Engine) => {
                    return Err(first_lost_input(&task.map_outputs, &names, true).unwrap_or(f))
                }
                other => other?,
            };
            if let Some(f) = &fetched {
                use gridmr_core::counters::{builtin, BUILTIN_GROUP};
                let c = &mut produced.counters;
                c.add(
                    BUILTIN_GROUP,
                    builtin::REDUCE_SHUFFLE_REMOTE_BYTES,
                    f.remote_bytes,
                );
                c.add(
                    BUILTIN_GROUP,
                    builtin::REDUCE_SHUFFLE_HOST_LOCAL_BYTES,
                    f.host_local_bytes,
                );
            }
            if let Some(url) = &output_url {
                // The upload is I/O alone: a reduce sent ahead (REDUCE_READAHEAD) takes the
                // slot and fetches its inputs meanwhile, over the link's other half.
                slot.release();
                produced.output =
                    objects::publish(&runtime, &stores, url, &produced.output, &share_out)?;
            }
            // Where a reduce's time went: fetching its inputs, reducing, uploading its part.
            tracing::info!(job = %task.job_id, task = %task.attempt_id(), fetched_ms, reduced_ms,
                uploaded_ms = millis(phases) - fetched_ms - reduced_ms, "reduce phases");
            Ok(produced)
        };
        let discard = |p: &Path| {
            let _ = std::fs::remove_file(p);
        };
        let mut result = core.run(&ticket, log, work, discard).await;
        if let (Some(file), Ok(produced)) = (seed_file, &mut result) {
            // The original's master named the part file itself.
            let from = produced.output.clone();
            let to = file.clone();
            tokio::task::spawn_blocking(move || std::fs::rename(&from, &to))
                .await
                .map_err(|e| Status::internal(e.to_string()))?
                .map_err(|e| Status::internal(format!("rename to {}: {e}", file.display())))?;
            produced.output = file;
        }
        Ok(reply(answer, result, started))
    }

    async fn cancel_job(
        &self,
        request: Request<CancelReq>,
    ) -> Result<Response<CancelResp>, Status> {
        let req = request.into_inner();
        if req.job_id.is_empty() {
            return Err(Status::invalid_argument("CancelReq.job_id is empty"));
        }
        let job = gridmr_net::wire::job_id("CancelReq", &req.job_id).map_err(invalid)?;
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

    type FetchShuffleStream = ChunkStream;

    async fn fetch_shuffle(
        &self,
        request: Request<FetchReq>,
    ) -> Result<Response<Self::FetchShuffleStream>, Status> {
        let shuffle = &self.core.shuffle;
        serve::fetch(
            shuffle.store.clone(),
            shuffle.streams.clone(),
            request.into_inner(),
        )
        .await
        .map(Response::new)
    }

    async fn drop_shuffle(
        &self,
        request: Request<DropShuffleReq>,
    ) -> Result<Response<DropShuffleResp>, Status> {
        let job = gridmr_net::wire::job_id("DropShuffleReq", &request.into_inner().job_id)
            .map_err(invalid)?;
        let store = self.core.shuffle.store.clone();
        let removed_bytes = tokio::task::spawn_blocking(move || {
            let bytes = store.drop_job(&job);
            tracing::debug!(%job, bytes, "dropped the job's map outputs");
            bytes
        })
        .await
        .map_err(|e| Status::internal(format!("dropping the outputs: {e}")))?;
        Ok(Response::new(DropShuffleResp { removed_bytes }))
    }
}
