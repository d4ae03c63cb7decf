//! One worker's shared state: its identity, registry and roots, its task
//! slots, and the one routine every attempt runs through (a slot, the
//! testing hooks, the blocking pool, the cancel check at the end).

use super::attempts::{Attempts, SlotHold, Ticket};
use super::exec::process::Processes;
use super::exec::script::{Program, Runner};
use super::exec::{Backend, Exec, Produced};
use super::failure::Failure;
use super::faults::Faults;
use super::shuffle::WorkerShuffle;
use crate::paths::{check_inside, check_new_inside};
use gridmr_core::{AttemptId, JobId, Registry, WorkerId};
use gridmr_net::proto;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;
use tonic::Status;

/// Shared state of one worker.
pub(crate) struct WorkerCore {
    pub(crate) id: WorkerId,
    pub(crate) registry: Registry,
    shared_dir: PathBuf,
    /// Where inputs may be read: the share and `INPUT_ROOTS`.
    pub(crate) input_roots: Vec<PathBuf>,
    slots: Arc<Semaphore>,
    pub(crate) slot_count: u32,
    pub(crate) running: AtomicU32,
    faults: Faults,
    pub(crate) runner: Runner,
    pub(crate) procs: Arc<Processes>,
    /// `TASK_ISOLATION=process`: typed map and reduce attempts run in a
    /// child of this binary.
    pub(crate) isolated: bool,
    /// The attempts running here: their control, and early cancels.
    pub(crate) attempts: Arc<Attempts>,
    /// The map outputs this worker keeps and serves, and its fetcher
    /// (`SHUFFLE=local`).
    pub(crate) shuffle: Arc<WorkerShuffle>,
    /// The buckets tasks may read and write (`OBJECT_BUCKETS`), and their clients.
    pub(crate) objects: crate::objstore::ObjectStores,
}

/// Where a worker may read and write: the share, and where inputs may be
/// read (the share and `INPUT_ROOTS`).
pub(crate) struct Roots {
    pub(crate) shared_dir: PathBuf,
    pub(crate) input_roots: Vec<PathBuf>,
}

impl WorkerCore {
    pub(crate) fn new(
        id: WorkerId,
        registry: Registry,
        Roots {
            shared_dir,
            input_roots,
        }: Roots,
        slots: u32,
        faults: Faults,
        runner: Runner,
        shuffle: Arc<WorkerShuffle>,
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
            shuffle,
            objects: crate::objstore::ObjectStores::default(),
        }
    }

    /// How far every attempt running here has got, for the heartbeat.
    pub(crate) fn progress(&self) -> Vec<gridmr_net::rest::AttemptProgress> {
        self.attempts.progress()
    }

    /// Registers an attempt of `job` (see [`Attempts::enter`]).
    pub(crate) fn enter(&self, job: &JobId, attempt: AttemptId) -> Ticket {
        self.attempts.enter(job, attempt)
    }

    fn roots(&self) -> &[PathBuf] {
        std::slice::from_ref(&self.shared_dir)
    }

    /// Refuses a path outside the shared folder, symbolic links resolved (a
    /// master must not make a worker read or write elsewhere).
    pub(crate) fn inside(&self, path: &Path) -> Result<(), Status> {
        check_inside(path, self.roots())
            .map(drop)
            .map_err(|e| Status::invalid_argument(e.to_string()))
    }

    /// The same for a folder the task creates.
    pub(crate) fn inside_new(&self, path: &Path) -> Result<(), Status> {
        check_new_inside(path, self.roots())
            .map(drop)
            .map_err(|e| Status::invalid_argument(e.to_string()))
    }

    /// What runs a task: a registered job (in this process, or in a child
    /// with `TASK_ISOLATION=process`), a streaming job or a script.
    pub(crate) fn backend(
        &self,
        name: &str,
        script_path: &str,
        streaming: Option<&proto::StreamingSpec>,
    ) -> Result<Backend, Status> {
        if !name.is_empty() {
            let job = self
                .registry
                .get(name)
                .map_err(|e| Status::failed_precondition(e.to_string()))?;
            return Ok(if self.isolated {
                Backend::Child(job)
            } else {
                Backend::InProcess(job)
            });
        }
        if let Some(s) = streaming.filter(|s| !s.mapper.is_empty()) {
            let files_dir = (!s.files_dir.is_empty()).then(|| PathBuf::from(&s.files_dir));
            if let Some(d) = &files_dir {
                self.inside(d)?;
            }
            return Ok(Backend::Script(Program::Streaming {
                mapper: s.mapper.clone(),
                reducer: s.reducer.clone(),
                combiner: s.combiner.clone(),
                files_dir,
            }));
        }
        if !script_path.is_empty() {
            let script = PathBuf::from(script_path);
            self.inside(&script)?;
            return Ok(Backend::Script(Program::Python { script }));
        }
        Err(Status::invalid_argument(
            "the task names no job, script or streaming command",
        ))
    }

    /// What a backend runs an attempt with, for a task whose time limit
    /// is `timeout_s`.
    pub(crate) fn exec(&self, timeout_s: u32) -> Exec {
        Exec {
            runner: self.runner.clone(),
            procs: self.procs.clone(),
            timeout_s,
        }
    }

    /// Runs `work` in a task slot on the blocking pool, with the testing
    /// hooks applied. A cancelled job's output is removed by `discard`.
    /// With a `log`, the work runs in an attempt span: what it writes
    /// through `tracing` goes to that file (see [`super::task_log`]).
    pub(crate) async fn run(
        self: &Arc<Self>,
        ticket: &Ticket,
        log: Option<PathBuf>,
        work: impl FnOnce() -> Result<Produced, Failure> + Send + 'static,
        discard: impl FnOnce(&Path) + Send + 'static,
    ) -> Result<Produced, Failure> {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Failure::engine("the worker is shutting down"))?;
        // Held until this returns, unless the work gives it up first (`SlotHold`).
        ticket.slot.hold(permit);
        let _slot = SlotGuard(ticket.slot.clone());
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
                tracing::warn!(job = %job_id, task, attempt, kind = ?f.kind, error = ?f.message,
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

/// Gives an attempt's slot up however `run` returns.
struct SlotGuard(SlotHold);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.release();
    }
}

struct RunningGuard(Arc<WorkerCore>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// This binary's build: the runtime's version, and the executable's size
/// and modification time (two different binaries hardly share both).
pub(crate) fn build_id() -> &'static str {
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

/// Milliseconds since `since`.
pub(crate) fn millis(since: Instant) -> u64 {
    since.elapsed().as_millis().try_into().unwrap_or(u64::MAX)
}
