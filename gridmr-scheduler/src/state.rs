//! The scheduler's state machine: jobs and workers, turned into dispatches,
//! and moved on by attempt outcomes, lost workers and cancellations. No I/O
//! happens here and no clock is read: every [`Event`](crate::Event) comes
//! with its `now`, and what needs I/O comes back as an [`Effect`] for the
//! caller to carry out.

use crate::clock::Clock;
use crate::config::SchedulerConfig;
use crate::job::{
    Attempt, AttemptError, AttemptState, HistoryLine, Job, JobDirs, Phase, TaskId, TaskState,
};
use crate::lifecycle::{JobState, Mode};
use crate::plan::{JobRequest, Plan};
use crate::tasks::{MapOutputRef, TaskTable};
use crate::workers::{WorkerEntry, Workers};
use crate::{CommitError, PlanError};
use gridmr_core::layout;
use gridmr_core::shuffle::ShuffleMode;
use gridmr_core::{Counters, JobId, WorkerId};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// How often the scheduler looks for stragglers, ms.
const SPECULATION_INTERVAL_MS: u64 = 100;

/// Most bytes of an error text kept per attempt (a failed script's stderr
/// tail, a worker's message).
const MAX_ERROR_BYTES: usize = 4 << 10;

/// `text` cut to at most [`MAX_ERROR_BYTES`] bytes, on a character
/// boundary, marked when cut. Every attempt's
/// error goes through it before it is stored, whoever produced it.
fn bounded_error(mut text: String) -> String {
    if text.len() > MAX_ERROR_BYTES {
        let mut end = MAX_ERROR_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(" …(cut)");
    }
    text
}

/// One attempt to send to a worker. The caller builds its message from the
/// job ([`Scheduler::job`]) and sends it.
#[derive(Debug, Clone)]
pub struct Dispatch {
    /// The attempt.
    pub key: AttemptKey,
    /// The worker it goes to.
    pub worker_id: WorkerId,
    /// The outputs this attempt may report, as the master planned them; a
    /// worker naming any other path fails the attempt.
    pub expected: Vec<PathBuf>,
    /// The job's folder, which every output must resolve inside.
    pub job_dir: PathBuf,
}

/// The files an attempt may report as its output. Map: its index in the
/// shuffle folder (map-only: its `part-m` attempt file). Reduce: its
/// `part-r` attempt file. Single: a script's `part-r-00000` attempt file,
/// or a typed job's engine output in `single-aN/`.
pub fn expected_outputs(job: &Job, phase: Phase, index: u32, attempt: u32) -> Vec<PathBuf> {
    let out = &job.dirs.out;
    match phase {
        Phase::Map if job.map_only => vec![layout::map_only_attempt_file(out, index, attempt)],
        // Kept by the worker: its plain name there.
        Phase::Map if job.shuffle_mode == ShuffleMode::Local => {
            vec![PathBuf::from(format!(
                "{}.index",
                layout::MapOutput::stem(index, attempt)
            ))]
        }
        Phase::Map => vec![
            layout::MapOutput::of_attempt(&job.dirs.shuffle, index, attempt)
                .index()
                .to_path_buf(),
        ],
        Phase::Reduce => vec![layout::reduce_attempt_file(out, index, attempt)],
        Phase::Single => vec![
            layout::reduce_attempt_file(out, 0, attempt),
            layout::single_attempt_dir(out, attempt).join(layout::part_r(0)),
        ],
    }
}

/// Names one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptKey {
    /// Its job.
    pub job_id: JobId,
    /// Its task.
    pub task: TaskId,
    /// Its number.
    pub attempt: u32,
    /// Its position in the job's attempt records.
    pub record: usize,
}

/// How an attempt ended, as its answer (or its worker's loss) tells.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// It produced `output` (map: the index file; reduce and single: the
    /// attempt's part file).
    Succeeded {
        /// The index file (map) or part file (reduce, single) it wrote.
        output: PathBuf,
        /// Its counters.
        counters: Counters,
        /// Its last `reporter:status:` line.
        status: Option<String>,
    },
    /// It failed; the error says whose fault it was.
    Failed(AttemptError),
    /// A reduce could not read `input`, a map output.
    InputLost {
        /// The map output it could not read.
        input: PathBuf,
        /// Other map outputs lost with it (`SHUFFLE=local`: a worker that
        /// cannot be reached loses every output it keeps).
        also: Vec<PathBuf>,
        /// What the reduce said.
        message: String,
    },
    /// Its worker went away.
    Lost(String),
    /// The worker stopped it because its job was cancelled.
    Killed(String),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Succeeded { .. } => "succeeded",
            Outcome::Failed(_) | Outcome::InputLost { .. } => "failed",
            Outcome::Lost(_) => "lost",
            Outcome::Killed(_) => "killed",
        }
    }
}

/// What the output commit of a finished job does.
#[derive(Debug, Clone)]
pub struct CommitPlan {
    /// The job.
    pub job_id: JobId,
    /// Its folders.
    pub dirs: JobDirs,
    /// `(partition, attempt file)`, every partition once.
    pub parts: Vec<(u32, PathBuf)>,
    /// The parts are map outputs (`part-m-NNNNN`).
    pub map_only: bool,
    /// The job as its commit begins (recorded in `commit.json`, adopted from it after a
    /// master restart).
    pub job: Box<Job>,
}

/// What the master saw happen, for its metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// A job was accepted.
    JobSubmitted,
    /// A job ended in `state` (with its counters when it succeeded).
    JobEnded {
        /// SUCCEEDED, FAILED or CANCELLED.
        state: JobState,
        /// The job's counters, when it succeeded.
        counters: Option<Box<Counters>>,
    },
    /// An attempt that held a slot ended.
    AttemptEnded {
        /// Its phase.
        phase: Phase,
        /// `succeeded`, `failed`, `lost` or `killed`.
        outcome: &'static str,
        /// How long it ran.
        seconds: f64,
    },
}

/// Work the caller does outside the lock.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Send an attempt to a worker.
    Dispatch(Dispatch),
    /// Count something in the master's metrics.
    Observed(Observation),
    /// An ended job past the retention policy was forgotten: tidy its folder.
    Retired(JobDirs),
    /// A job was deleted (forgotten): remove its folder.
    Deleted {
        /// Its id.
        job_id: JobId,
        /// Whether it had not ended (it was cancelled by the deletion).
        was_running: bool,
        /// Its folders.
        dirs: JobDirs,
    },
    /// Remove files an attempt produced that will never be used.
    RemoveAttemptOutput(Phase, PathBuf),
    /// Commit the job's output.
    Commit(CommitPlan),
    /// Tell these workers to stop the job's attempts.
    Cancel {
        /// The job.
        job_id: JobId,
        /// The workers running its attempts.
        workers: Vec<WorkerId>,
    },
    /// Remove what a failed or cancelled job left in its shuffle and
    /// output folders (its record stays).
    Clean(JobDirs),
    /// Remove an ended job's working folders again (a late attempt's files).
    Sweep(JobDirs),
    /// Stop one attempt (the loser of a speculative race).
    CancelAttempt {
        /// The attempt's job.
        job_id: JobId,
        /// Its task.
        task: TaskId,
        /// Its number.
        attempt: u32,
        /// The worker running it.
        worker_id: WorkerId,
    },
    /// Ask a worker that sends no heartbeats whether it is alive.
    Probe {
        /// The worker.
        worker_id: WorkerId,
    },
    /// Tell these workers to remove the map outputs they keep for an ended
    /// job (`SHUFFLE=local`).
    DropShuffle {
        /// The job.
        job_id: JobId,
        /// The workers that ran its maps.
        workers: Vec<WorkerId>,
    },
}

/// The message to the workers that may keep files of `job` (`SHUFFLE=local`),
/// once it has ended: every worker that ran one of its map attempts (their
/// outputs) or reduce attempts (a fetch folder a killed attempt left).
fn drop_shuffle(job: &Job) -> Option<Effect> {
    if job.shuffle_mode != ShuffleMode::Local || job.map_only {
        return None;
    }
    let mut workers: Vec<WorkerId> = Vec::new();
    for a in job
        .attempts
        .iter()
        .filter(|a| a.task.phase != Phase::Single)
    {
        if !workers.contains(&a.worker) {
            workers.push(a.worker.clone());
        }
    }
    (!workers.is_empty()).then(|| Effect::DropShuffle {
        job_id: job.id.clone(),
        workers,
    })
}

/// Logs an attempt that failed or was lost.
fn log_ended(key: &AttemptKey, worker_id: &str, state: &AttemptState) {
    match state {
        AttemptState::Failed(e) => tracing::warn!(job = %key.job_id, task = %key.task.name(),
            attempt = key.attempt, worker = %worker_id, kind = e.kind(), error = ?e.message(),
            "attempt failed"),
        AttemptState::Lost(why) => tracing::warn!(job = %key.job_id, task = %key.task.name(),
            attempt = key.attempt, worker = %worker_id, why = %why, "attempt lost"),
        _ => {}
    }
}

/// What a reduce's report of an unreadable input `input` charges: the map whose output it
/// is, found by the current outputs, else by its name (an output another reduce already
/// reported, whose map is running again); a file that is no map output of the job's is the
/// reduce's own fault.
fn lost_input(job: &Job, input: PathBuf, message: String) -> AttemptError {
    let by_name = || {
        input
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(layout::MapOutput::map_index_of)
            .filter(|m| (*m as usize) < job.table.len(Phase::Map))
            .filter(|_| match job.shuffle_mode {
                ShuffleMode::Shared => input.parent() == Some(job.dirs.shuffle.as_path()),
                // A plain name on the worker that keeps it.
                ShuffleMode::Local => input.parent() == Some(Path::new("")),
            })
    };
    let map = job.table.map_with_output(&input).or_else(by_name);
    match map {
        Some(map) => AttemptError::MapOutputLost {
            map,
            lost: input,
            message,
        },
        None => AttemptError::Engine(message),
    }
}

/// A map output a reduce could not read.
struct LostOutput<'a> {
    map: u32,
    file: &'a Path,
    message: &'a str,
    /// The reduce that reported it.
    reader: &'a str,
}

/// Sends the map whose output was lost back to run again, charged to the
/// map (as Hadoop charges fetch failures), while the lost file is still
/// its output: a second reduce reporting it finds the map re-running.
/// Returns why the job must fail, if the map has failed too often.
fn charge_lost_output(
    job: &mut Job,
    lost: &LostOutput<'_>,
    max_attempts: u32,
    now: u64,
    effects: &mut Vec<Effect>,
) -> Option<String> {
    let (index, map_name) = (lost.map as usize, Phase::Map.task_name(lost.map));
    let still_its_output = job
        .table
        .get(Phase::Map, index)
        .is_some_and(|m| m.output() == Some(lost.file));
    if !still_its_output {
        return None;
    }
    if let Some(out) = job.table.undo(Phase::Map, index) {
        effects.push(Effect::RemoveAttemptOutput(Phase::Map, out));
    }
    let message = lost.message;
    let give_up = job.table.task_mut(Phase::Map, index).and_then(|m| {
        m.failures += 1;
        m.last_error = Some(format!("its output was lost: {message}"));
        tracing::warn!(job = %job.id, map = %map_name, reduce = %lost.reader,
            "a map output cannot be read; running the map again");
        (m.failures >= max_attempts).then(|| {
            format!(
                "task {map_name} failed {} time(s) or lost its output; last: {message}",
                m.failures
            )
        })
    });
    let _ = job.transition(
        JobState::Mapping,
        format!("{map_name}'s output was lost; running it again"),
        now,
    );
    give_up
}

/// Charges a failure of the task's own against it (`MAX_TASK_ATTEMPTS`)
/// and against its worker in this job (exclusion after
/// `EXCLUDE_AFTER_FAILURES`). Returns why the job must fail, if the task
/// has failed too often.
fn charge_failure(
    job: &mut Job,
    (phase, index, e, worker_id): (Phase, usize, &AttemptError, &WorkerId),
    s: &SchedulerConfig,
    now: u64,
) -> Option<String> {
    let (max_attempts, name) = (s.max_attempts(), phase.task_name(index as u32));
    let task = job.table.task_mut(phase, index)?;
    task.failures += 1;
    task.last_error = Some(e.message().to_owned());
    if !task.failed_on.iter().any(|w| w == worker_id) {
        task.failed_on.push(worker_id.clone());
    }
    let give_up = if task.failures >= max_attempts {
        Some(format!(
            "task {name} failed {} time(s); last error: {}",
            task.failures,
            e.message()
        ))
    } else {
        if task.running == 0 {
            tracing::info!(job = %job.id, task = %name, failures = task.failures,
                max = max_attempts, "task will be retried");
        }
        None
    };
    let ex = job.exclusions.entry(worker_id.clone()).or_default();
    ex.failures += 1;
    if s.exclude_after_failures > 0
        && ex.failures >= s.exclude_after_failures
        && ex.until_ms.is_none_or(|t| t <= now)
    {
        ex.until_ms = Some(now.saturating_add(s.exclude_s.saturating_mul(1000)));
        tracing::warn!(job = %job.id, worker = %worker_id, failures = ex.failures,
            "worker excluded from the job");
    }
    give_up
}

/// Jobs and workers: the scheduler. Driven by [`Scheduler::handle`].
pub struct Scheduler {
    /// Its policy.
    pub config: SchedulerConfig,
    /// The `now` of the event being handled (ms, the caller's clock).
    pub(crate) now: u64,
    /// Effects produced while handling the current event.
    pub(crate) outbox: Vec<Effect>,
    pub(crate) jobs: BTreeMap<u64, Job>,
    ids: BTreeMap<JobId, u64>,
    next_seq: u64,
    order: u64,
    /// Jobs added here whose final state the store does not hold yet.
    unsaved: BTreeSet<u64>,
    /// The registered workers.
    pub workers: Workers,
    pub(crate) inflight: [u32; 3],
    /// No backup attempts before this time (ms since the epoch): after a stall of the master's
    /// own, running attempts only look slow.
    pub(crate) speculation_held_until_ms: u64,
    /// When the next look for stragglers is due (ms).
    next_speculation_ms: u64,
    /// When [`Scheduler::retire`] last looked (ms since the epoch): once a second is enough.
    retired_at_ms: u64,
    /// Jobs changed since the last [`Scheduler::take_changes`].
    pub(crate) touched: BTreeSet<u64>,
    /// Jobs forgotten (deleted, retired) since then.
    forgotten: Vec<JobId>,
}

/// Which jobs changed since the last [`Scheduler::take_changes`]: what a
/// caller that keeps views of jobs (the master's status board) refreshes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JobChanges {
    /// Jobs that changed, each with whether it has ended.
    pub changed: Vec<(JobId, bool)>,
    /// Jobs that were forgotten.
    pub forgotten: Vec<JobId>,
}

fn slot(p: Phase) -> usize {
    p.slot()
}

impl Scheduler {
    /// A scheduler with no jobs and no workers; its first job id is
    /// `job-{first_seq}` (a restarted master starts past its folders).
    pub fn new(config: SchedulerConfig, first_seq: u64) -> Self {
        Scheduler {
            config,
            now: 0,
            outbox: Vec::new(),
            jobs: BTreeMap::new(),
            ids: BTreeMap::new(),
            next_seq: first_seq.max(1),
            order: 0,
            unsaved: BTreeSet::new(),
            workers: Workers::default(),
            inflight: [0; 3],
            speculation_held_until_ms: 0,
            next_speculation_ms: 0,
            retired_at_ms: 0,
            touched: BTreeSet::new(),
            forgotten: Vec::new(),
        }
    }

    /// The jobs changed and forgotten since the last call.
    pub fn take_changes(&mut self) -> JobChanges {
        let changed = std::mem::take(&mut self.touched)
            .into_iter()
            .filter_map(|seq| self.jobs.get(&seq))
            .map(|j| (j.id.clone(), j.state.is_terminal()))
            .collect();
        JobChanges {
            changed,
            forgotten: std::mem::take(&mut self.forgotten),
        }
    }

    /// The next job id (`job-000001`, …). Never handed out twice by this
    /// master; the caller also skips ids whose folder exists.
    pub fn next_id(&mut self) -> JobId {
        let seq = self.next_seq;
        self.next_seq += 1;
        JobId::numbered(seq)
    }

    /// The job `id`.
    pub fn job(&self, id: &str) -> Option<&Job> {
        self.ids.get(id).and_then(|s| self.jobs.get(s))
    }

    /// Job `id`, to change: it is counted as changed (see
    /// [`Scheduler::take_changes`]).
    pub(crate) fn job_mut(&mut self, id: &str) -> Option<&mut Job> {
        let seq = self.ids.get(id)?;
        self.touched.insert(*seq);
        self.jobs.get_mut(seq)
    }

    /// The committed map outputs of job `id`, as every reduce attempt is
    /// sent them (one list shared by the dispatches until a map is undone).
    pub fn reduce_inputs(&mut self, id: &str) -> Option<std::sync::Arc<Vec<MapOutputRef>>> {
        self.job_mut(id).map(Job::reduce_inputs)
    }

    /// Numbers job `id`'s attempts from `base + 1` (a job run again after a
    /// master restart must not write where its earlier run's attempts do).
    pub fn set_attempt_base(&mut self, id: &str, base: u32) {
        if let Some(job) = self.job_mut(id) {
            job.attempt_base = base;
        }
    }

    /// Every job, in submission order.
    pub fn jobs(&self) -> impl Iterator<Item = &Job> {
        self.jobs.values()
    }

    /// Takes back a finished job read from the store.
    pub fn restore(&mut self, mut job: Job) {
        for a in job.attempts.iter_mut().filter(|a| a.is_running()) {
            // Still running when the job ended; nobody heard how it ended.
            a.state = AttemptState::Unknown;
        }
        self.order += 1;
        self.ids.insert(job.id.clone(), self.order);
        self.touched.insert(self.order);
        self.jobs.insert(self.order, job);
    }

    /// Takes back a job whose commit a master restart found begun and finished (see
    /// `master::commit`): SUCCEEDED, with the counters and attempts it had when its commit
    /// began; its record is written at the next [`Scheduler::take_unsaved`].
    pub fn adopt(&mut self, mut job: Job, done: gridmr_core::commit::Committed, now_ms: u64) {
        // The record was read from the share: whatever state it names, its commit finished.
        if !job.state.may_become(JobState::Succeeded) {
            job.state = JobState::Running;
        }
        let _ = job.transition(
            JobState::Succeeded,
            "done (its commit was finished after a master restart)",
            now_ms,
        );
        job.result_file = done.result;
        job.parts = done.parts;
        let id = job.id.clone();
        self.restore(job);
        if let Some(seq) = self.ids.get(&id) {
            self.unsaved.insert(*seq);
        }
    }

    /// The attempts started or ended since the last call, by job folder, for the store's
    /// `history.jsonl`. Only jobs that have not ended: an ended job's `job.json` holds them all.
    pub fn take_journal(&mut self) -> Vec<(PathBuf, Vec<HistoryLine>)> {
        let mut out = Vec::new();
        for job in self.jobs.values_mut().filter(|j| !j.journal.is_empty()) {
            let lines = std::mem::take(&mut job.journal);
            if !job.state.is_terminal() {
                out.push((job.dirs.base.clone(), lines));
            }
        }
        out
    }

    /// Gives a job taken back after a master restart the attempts of its earlier runs (from
    /// its `history.jsonl`; one still running then is `unknown`), and the counters of the
    /// successful attempts whose map outputs were kept (`kept[i]`: map `i`'s index file).
    pub fn restore_history(
        &mut self,
        id: &str,
        history: Vec<HistoryLine>,
        kept: &[Option<PathBuf>],
    ) {
        let Some(job) = self.job_mut(id) else { return };
        let mut earlier = Vec::with_capacity(history.len());
        for mut line in history {
            if line.attempt.is_running() {
                line.attempt.state = AttemptState::Unknown;
            }
            let task = line.attempt.task;
            let kept_here = task.phase == Phase::Map
                && kept
                    .get(task.index as usize)
                    .and_then(|k| k.as_deref())
                    .and_then(|k| k.file_name()?.to_str())
                    .and_then(layout::MapOutput::attempt_of)
                    == Some(line.attempt.number);
            if kept_here && line.attempt.state == AttemptState::Succeeded {
                if let Some(c) = &line.counters {
                    job.counters.merge(c);
                }
            }
            earlier.push(line.attempt);
        }
        // Before this run's attempts (none yet: nothing is dispatched before the restore).
        let shift = earlier.len();
        earlier.append(&mut job.attempts);
        job.attempts = earlier;
        for task in job.table.all_mut() {
            for r in &mut task.attempts {
                *r += shift;
            }
        }
    }

    /// Jobs that have ended since the last call, for the store (each once).
    pub fn take_unsaved(&mut self) -> Vec<Job> {
        let jobs = &self.jobs;
        let mut ended = Vec::new();
        // Deleted jobs leave the set too.
        self.unsaved.retain(|seq| match jobs.get(seq) {
            Some(j) if j.state.is_terminal() => {
                ended.push(j.clone());
                false
            }
            Some(_) => true,
            None => false,
        });
        ended
    }

    /// An ended job whose record could not be written: offered again by
    /// the next [`Scheduler::take_unsaved`].
    pub fn unsaved_again(&mut self, id: &str) {
        if let Some(seq) = self.ids.get(id) {
            self.unsaved.insert(*seq);
        }
    }

    /// Adds a QUEUED job.
    pub(crate) fn add_job(&mut self, id: JobId, request: JobRequest, dirs: JobDirs) -> &mut Job {
        self.order += 1;
        let seq = self.order;
        let mode = crate::plan::foresee(&request, None, 1, u64::MAX);
        let job = Job {
            id: id.clone(),
            kind: request.kind,
            input_path: request.input_path,
            more_inputs: request.more_inputs,
            params: request.params,
            input_size: 0,
            mode,
            state: JobState::Queued,
            message: "queued".into(),
            error: None,
            partitions_asked: request.partitions.unwrap_or(0),
            reduce_partitions: 0,
            dirs,
            shuffle: request.shuffle,
            splits: Vec::new(),
            table: TaskTable::default(),
            counters: Counters::default(),
            attempts: Vec::new(),
            clock: Clock::submitted_at(self.now),
            result_file: None,
            parts: Vec::new(),
            timeout_s: request.timeout_s,
            task_status: None,
            map_only: request.map_only,
            shuffle_mode: request.shuffle_mode,
            output_url: request.output_url.clone(),
            attempt_base: 0,
            exclusions: BTreeMap::new(),
            waiting_since_ms: None,
            durations: Default::default(),
            journal: Vec::new(),
        };
        self.ids.insert(id, seq);
        self.unsaved.insert(seq);
        self.touched.insert(seq);
        self.outbox
            .push(Effect::Observed(Observation::JobSubmitted));
        self.jobs.entry(seq).or_insert(job)
    }

    /// Marks a QUEUED job PREPARING (anything else stays as it is).
    pub(crate) fn start_preparing(&mut self, id: &str) {
        let now = self.now;
        if let Some(job) = self.job_mut(id).filter(|j| j.state == JobState::Queued) {
            let _ = job.transition(JobState::Preparing, "listing the input", now);
        }
    }

    /// Installs a job's plan (or fails it).
    pub(crate) fn prepared(&mut self, id: &str, plan: Result<Plan, PlanError>) {
        let now = self.now;
        let Some(job) = self.job_mut(id) else { return };
        if job.state != JobState::Preparing {
            return;
        }
        match plan {
            Err(e) => {
                tracing::warn!(job = %id, error = ?e.to_string(), "job failed: cannot prepare it");
                let _ = job.transition(
                    JobState::Failed,
                    format!("cannot prepare the job: {e}"),
                    now,
                );
                self.outbox.push(Effect::Observed(Observation::JobEnded {
                    state: JobState::Failed,
                    counters: None,
                }));
            }
            Ok(plan) => {
                tracing::info!(job = %id, mode = ?plan.mode, maps = plan.splits.len(),
                    reduces = plan.reduce_partitions, input_bytes = plan.input_size, "job planned");
                job.mode = plan.mode;
                job.input_size = plan.input_size;
                job.reduce_partitions = plan.reduce_partitions;
                job.params.extend(plan.params);
                let message = match plan.mode {
                    Mode::Single => {
                        job.table.make(Phase::Single, 1);
                        "waiting for a worker".to_owned()
                    }
                    Mode::Distributed => {
                        job.table.make(Phase::Map, plan.splits.len());
                        job.splits = plan.splits;
                        if job.table.len(Phase::Map) == 0 && !job.map_only {
                            Self::open_reduces(job, now);
                            format!("reducing {} partitions", job.reduce_partitions)
                        } else {
                            format!(
                                "{} map tasks, {} reduce tasks",
                                job.table.len(Phase::Map),
                                job.reduce_partitions
                            )
                        }
                    }
                };
                let _ = job.transition(JobState::Prepared, message, now);
            }
        }
    }

    /// Takes back an unfinished job after a master restart with the plan it
    /// had: maps whose outputs survived (`kept[i]`, checked by the caller)
    /// are done, the rest run again. Returns how many were kept.
    pub(crate) fn resume(&mut self, id: &str, plan: Plan, kept: Vec<Option<PathBuf>>) -> usize {
        if self.job(id).is_none_or(|j| j.state != JobState::Queued) {
            return 0;
        }
        self.start_preparing(id);
        self.prepared(id, Ok(plan));
        let now = self.now;
        let Some(job) = self.job_mut(id) else {
            return 0;
        };
        let mut n = 0;
        for (index, output) in kept.into_iter().enumerate() {
            if let (Some(output), true) = (output, index < job.table.len(Phase::Map)) {
                job.table.done(Phase::Map, index, output, None);
                n += 1;
            }
        }
        let maps = job.table.len(Phase::Map);
        if n > 0 && n == maps && !job.map_only {
            Self::enter_reduce(job, now);
        } else if n > 0 {
            job.say(format!("resumed with {n}/{maps} maps done"));
        }
        n
    }

    /// Every map is done: the reduces may run. A map run again because its
    /// output was lost brings the job back here with its reduces as they
    /// were.
    fn enter_reduce(job: &mut Job, now: u64) {
        Self::open_reduces(job, now);
        let _ = job.transition(
            JobState::Reducing,
            format!("reducing {} partitions", job.reduce_partitions),
            now,
        );
    }

    /// Ends the map phase's clock and makes the reduce tasks (once).
    fn open_reduces(job: &mut Job, now: u64) {
        job.clock.end(Phase::Map, now);
        job.table
            .make(Phase::Reduce, job.reduce_partitions as usize);
    }

    /// Ends a job that has not ended: FAILED with `error`, or CANCELLED.
    /// Its running attempts are killed (their slots freed now, their
    /// workers told), and what it left in its folders is removed.
    pub(crate) fn end_job(&mut self, id: &str, failed: Option<String>) -> Vec<Effect> {
        let mut effects: Vec<Effect> = self.cancel_effects(id).into_iter().collect();
        let why = if failed.is_some() {
            "its job failed"
        } else {
            "its job was cancelled"
        };
        self.kill_running(id, why);
        let now = self.now;
        let Some(job) = self.job_mut(id) else {
            return effects;
        };
        let state = match failed {
            Some(error) => {
                tracing::warn!(job = %id, error = ?error, "job failed");
                let _ = job.transition(JobState::Failed, error, now);
                JobState::Failed
            }
            None => {
                tracing::info!(job = %id, "job cancelled");
                let _ = job.transition(JobState::Cancelled, "cancelled", now);
                JobState::Cancelled
            }
        };
        effects.push(Effect::Clean(job.dirs.clone()));
        effects.extend(drop_shuffle(job));
        effects.push(Effect::Observed(Observation::JobEnded {
            state,
            counters: None,
        }));
        effects
    }

    /// Marks a job's running attempts killed and frees their slots.
    fn kill_running(&mut self, id: &str, why: &str) {
        let running: Vec<(AttemptKey, WorkerId)> = match self.job(id) {
            Some(job) => job
                .attempts
                .iter()
                .enumerate()
                .filter(|(_, a)| a.is_running())
                .map(|(record, a)| (Self::key_of(&job.id, record, a), a.worker.clone()))
                .collect(),
            None => return,
        };
        let now = self.now;
        for (key, worker) in running {
            self.release(&key, &worker);
            if let Some(job) = self.job_mut(id) {
                job.end_attempt(key.record, AttemptState::Killed(why.to_owned()), now, None);
            }
        }
    }

    pub(crate) fn key_of(job_id: &JobId, record: usize, a: &Attempt) -> AttemptKey {
        AttemptKey {
            job_id: job_id.clone(),
            task: a.task,
            attempt: a.number,
            record,
        }
    }

    /// Cancels a job and keeps its record (CANCELLED). `None` if there is
    /// no such job; `Some(false)` if it had already ended.
    pub(crate) fn cancel(&mut self, id: &str) -> Option<(bool, Vec<Effect>)> {
        let job = self.job(id)?;
        if job.state.is_terminal() {
            return Some((false, Vec::new()));
        }
        Some((true, self.end_job(id, None)))
    }

    /// Attempts of `job`'s `phase` that may wait on a worker beyond its slots: the reduces of
    /// a job whose output goes to an object store, which give their slot up to upload.
    fn ahead(&self, job: &Job, phase: Phase) -> u32 {
        match (phase, &job.output_url) {
            (Phase::Reduce, Some(_)) => self.config.reduce_readahead,
            _ => 0,
        }
    }

    fn cap(&self, p: Phase) -> u32 {
        let s = &self.config;
        match p {
            Phase::Single => s.max_inflight_singles,
            Phase::Map => s.max_inflight_maps,
            Phase::Reduce => s.max_inflight_reduces,
        }
    }

    /// Assigns pending tasks to free worker slots: jobs in submission order,
    /// within the in-flight caps. A task goes to a worker that can run its
    /// job, preferring one it has not failed on and the job has not
    /// excluded; when every live worker is one of those, it goes to any.
    pub(crate) fn schedule(&mut self) -> Vec<Dispatch> {
        let mut out = Vec::new();
        let seqs: Vec<u64> = self.jobs.keys().copied().collect();
        let now = self.now;
        let policy = self.config.policy;
        // Stragglers are looked for every SPECULATION_INTERVAL_MS, not at every pass (as
        // Spark's `spark.speculation.interval`): the look walks a phase's running attempts.
        let speculate = now >= self.next_speculation_ms;
        if speculate {
            self.next_speculation_ms = now.saturating_add(SPECULATION_INTERVAL_MS);
        }
        for seq in seqs {
            let Some(phase) = self.jobs.get(&seq).and_then(Job::runnable_phase) else {
                continue;
            };
            // Reduces sent ahead (`reduce_readahead`) wait on their workers, beyond the caps
            // too: they take no slot until one is given up.
            let ahead = self.jobs.get(&seq).map_or(0, |j| self.ahead(j, phase));
            let room = ahead.saturating_mul(self.workers.live().count() as u32);
            loop {
                let total: u32 = self.inflight.iter().sum();
                if total >= self.config.max_inflight.saturating_add(room)
                    || self.inflight[slot(phase)] >= self.cap(phase).saturating_add(room)
                {
                    break;
                }
                if self.workers.list.iter().all(|w| w.free_with(ahead) == 0) {
                    match ahead {
                        0 => return out,
                        _ => break,
                    }
                }
                let Some(job) = self.jobs.get(&seq) else {
                    break;
                };
                debug_assert!(job.table.is_consistent(), "the task tally drifted");
                if job.count(phase, TaskState::Pending) == 0 {
                    break;
                }
                let name = job.kind.name();
                let mut chosen = None;
                let tasks = job.tasks(phase);
                let from = job.table.next_pending(phase);
                // From the hint on, then the tasks before it.
                for index in (from..tasks.len()).chain(0..from) {
                    let task = &tasks[index];
                    if task.state() != TaskState::Pending {
                        continue;
                    }
                    let preferred = |w: &WorkerEntry| {
                        w.can_run(name)
                            && !task.failed_on.contains(&w.id)
                            && !job.is_excluded(&w.id, now)
                    };
                    let pick = if self.workers.live().any(preferred) {
                        self.workers.pick_ahead(policy, ahead, preferred)
                    } else {
                        self.workers.pick_ahead(policy, ahead, |w| w.can_run(name))
                    };
                    if let Some(w) = pick {
                        chosen = Some((index as u32, w));
                        break;
                    }
                }
                let Some((index, w)) = chosen else {
                    break;
                };
                let worker = &mut self.workers.list[w];
                worker.running += 1;
                let worker_id = worker.id.clone();
                self.inflight[slot(phase)] += 1;
                let Some(job) = self.jobs.get_mut(&seq) else {
                    break;
                };
                self.touched.insert(seq);
                job.table.handed_out(phase, index as usize);
                out.push(Self::dispatch(job, phase, index, worker_id, now));
            }
            if speculate {
                self.speculate(seq, phase, now, &mut out);
            }
        }
        out
    }

    /// Backup attempts for stragglers (Google's backup tasks, Hadoop's and
    /// Spark's speculation): once `SPECULATION_QUANTILE` of a phase's tasks
    /// are done and none is waiting, a task whose only attempt has run for
    /// more than `SPECULATION_MULTIPLIER` times the median of the phase's
    /// successful attempts (and `SPECULATION_MIN_S`) gets one more attempt,
    /// on another worker. The first to succeed wins; the other is killed.
    fn speculate(&mut self, seq: u64, phase: Phase, now: u64, out: &mut Vec<Dispatch>) {
        let s = self.config.clone();
        if !s.speculation || now < self.speculation_held_until_ms {
            return;
        }
        loop {
            let total: u32 = self.inflight.iter().sum();
            if total >= s.max_inflight || self.inflight[slot(phase)] >= self.cap(phase) {
                return;
            }
            let Some(job) = self.jobs.get(&seq) else {
                return;
            };
            let tasks = job.tasks(phase);
            if job.count(phase, TaskState::Pending) > 0 {
                return;
            }
            let done = job.count(phase, TaskState::Done);
            if done == 0 || (done as f64) < s.speculation_quantile * tasks.len() as f64 {
                return;
            }
            let Some(median) = self.jobs.get_mut(&seq).and_then(|j| j.median_ms(phase)) else {
                return;
            };
            let Some(job) = self.jobs.get(&seq) else {
                return;
            };
            let tasks = job.tasks(phase);
            let median = median as f64;
            let threshold = (median * s.speculation_multiplier).max(s.speculation_min_s * 1000.0);
            let straggler = job
                .attempts
                .iter()
                .filter(|a| a.is_running() && a.task.phase == phase)
                .filter(|a| {
                    let t = &tasks[a.task.index as usize];
                    t.running == 1 && !t.speculated
                })
                .map(|a| (a, now.saturating_sub(a.started_ms)))
                .filter(|(_, ran)| *ran as f64 > threshold)
                .max_by_key(|(_, ran)| *ran)
                .map(|(a, ran)| (a.task.index, a.worker.clone(), ran));
            let Some((index, slow, ran)) = straggler else {
                return;
            };
            let name = job.kind.name();
            let task = &tasks[index as usize];
            let fits = |w: &WorkerEntry| {
                w.id != slow
                    && w.can_run(name)
                    && !task.failed_on.contains(&w.id)
                    && !job.is_excluded(&w.id, now)
            };
            let Some(w) = self.workers.pick(s.policy, fits) else {
                return;
            };
            tracing::info!(job = %job.id, task = %phase.task_name(index), slow = %slow,
                ran_ms = ran, median_ms = median, "starting a backup attempt");
            let worker = &mut self.workers.list[w];
            worker.running += 1;
            let worker_id = worker.id.clone();
            self.inflight[slot(phase)] += 1;
            let Some(job) = self.jobs.get_mut(&seq) else {
                return;
            };
            self.touched.insert(seq);
            if let Some(task) = job.table.task_mut(phase, index as usize) {
                task.speculated = true;
            }
            out.push(Self::dispatch(job, phase, index, worker_id, now));
        }
    }

    fn dispatch(
        job: &mut Job,
        phase: Phase,
        index: u32,
        worker_id: WorkerId,
        now: u64,
    ) -> Dispatch {
        let base = job.attempt_base;
        job.table.start(phase, index as usize);
        let dispatched = match job.table.task_mut(phase, index as usize) {
            Some(task) => {
                task.running += 1;
                task.dispatched += 1;
                task.dispatched
            }
            None => 1,
        };
        let attempt = base + dispatched;
        job.clock.start(phase, now);
        let to = Job::running_state(phase);
        match phase {
            Phase::Single => {
                let _ = job.transition(to, format!("running on {worker_id}"), now);
            }
            Phase::Map => {
                let _ = job.transition(to, "mapping", now);
            }
            Phase::Reduce => {
                let message = job.message.clone();
                let _ = job.transition(to, message, now);
            }
        }
        let record = job.attempts.len();
        if let Some(task) = job.table.task_mut(phase, index as usize) {
            task.attempts.push(record);
        }
        let task = TaskId { phase, index };
        tracing::info!(job = %job.id, task = %task.name(), attempt, worker = %worker_id, "attempt started");
        job.start_attempt(Attempt {
            task,
            number: attempt,
            worker: worker_id.clone(),
            started_ms: now,
            finished_ms: None,
            state: AttemptState::Running,
            progress: None,
            late: None,
        });
        Dispatch {
            key: AttemptKey {
                job_id: job.id.clone(),
                task,
                attempt,
                record,
            },
            worker_id,
            expected: expected_outputs(job, phase, index, attempt),
            job_dir: job.dirs.base.clone(),
        }
    }

    /// Releases the slot an attempt held, if it still holds one (it is
    /// still running).
    fn release(&mut self, key: &AttemptKey, worker_id: &str) -> bool {
        let Some(job) = self.job_mut(&key.job_id) else {
            return false;
        };
        if !job
            .attempts
            .get(key.record)
            .is_some_and(Attempt::is_running)
        {
            return false;
        }
        let phase = key.task.phase;
        if let Some(t) = job.table.task_mut(phase, key.task.index as usize) {
            t.running = t.running.saturating_sub(1);
        }
        self.inflight[slot(phase)] = self.inflight[slot(phase)].saturating_sub(1);
        if let Some(w) = self.workers.get_mut(worker_id) {
            w.running = w.running.saturating_sub(1);
        }
        true
    }

    /// Records an attempt's outcome and moves its job on. A report about an
    /// attempt that has already ended changes nothing, except that a late
    /// success is still taken while its task is not done.
    pub(crate) fn complete(
        &mut self,
        key: &AttemptKey,
        worker_id: &WorkerId,
        outcome: Outcome,
    ) -> Vec<Effect> {
        let held = self.release(key, worker_id);
        let now = self.now;
        let mut effects = Vec::new();
        let (phase, index) = (key.task.phase, key.task.index as usize);
        let Some(job) = self.job_mut(&key.job_id) else {
            if let Outcome::Succeeded { output, .. } = outcome {
                effects.push(Effect::RemoveAttemptOutput(phase, output));
            }
            return effects;
        };
        if held {
            let started = job.attempts[key.record].started_ms;
            effects.push(Effect::Observed(Observation::AttemptEnded {
                phase,
                outcome: outcome.label(),
                seconds: now.saturating_sub(started) as f64 / 1000.0,
            }));
        }
        let active = job.is_active();
        let task_done = job
            .table
            .get(phase, index)
            .is_some_and(|t| t.state() == TaskState::Done);
        let attempt = &mut job.attempts[key.record];
        if !attempt.is_running() {
            // A late result (the attempt was declared lost, or killed when another won): it
            // is recorded as what it is and never used, as Hadoop and Spark ignore reports
            // of attempts they have written off. Its output goes; its job, if it has ended,
            // is swept again, in case the attempt wrote more than it reported.
            tracing::info!(job = %key.job_id, task = %key.task.name(), attempt = key.attempt,
                worker = %worker_id, was = attempt.state.as_str(), late = outcome.label(),
                "a late result of an attempt that had ended; ignored");
            attempt.late = Some(outcome.label().to_owned());
            if let Outcome::Succeeded { output, .. } = outcome {
                effects.push(Effect::RemoveAttemptOutput(phase, output));
            }
            if !active {
                effects.push(Effect::Sweep(job.dirs.clone()));
            }
            return effects;
        }
        let mut also_lost: Vec<AttemptError> = Vec::new();
        let state = match outcome {
            Outcome::Succeeded {
                output,
                counters,
                status,
            } => {
                if !active || task_done {
                    job.end_attempt(key.record, AttemptState::Superseded, now, None);
                    effects.push(Effect::RemoveAttemptOutput(phase, output));
                    if !active {
                        effects.push(Effect::Sweep(job.dirs.clone()));
                    }
                    return effects;
                }
                self.succeeded(key, worker_id, output, counters, status, &mut effects);
                return effects;
            }
            Outcome::Failed(e) => AttemptState::Failed(e),
            Outcome::InputLost {
                input,
                also,
                message,
            } => {
                also_lost = also
                    .into_iter()
                    .map(|other| lost_input(job, other, message.clone()))
                    .filter(|e| matches!(e, AttemptError::MapOutputLost { .. }))
                    .collect();
                AttemptState::Failed(lost_input(job, input, message))
            }
            Outcome::Lost(why) => AttemptState::Lost(why),
            Outcome::Killed(why) => AttemptState::Killed(why),
        };
        let state = match state {
            AttemptState::Failed(e) => AttemptState::Failed(e.map_message(bounded_error)),
            AttemptState::Lost(m) => AttemptState::Lost(bounded_error(m)),
            other => other,
        };
        if !job.end_attempt(key.record, state.clone(), now, None) || !active || task_done {
            return effects;
        }
        log_ended(key, worker_id, &state);
        effects.extend(self.charge(key, worker_id, &state));
        for also in also_lost {
            effects.extend(self.charge(key, worker_id, &AttemptState::Failed(also)));
        }
        effects
    }

    /// A successful attempt becomes its task's output; the phase, and the
    /// job, move on when it was the last.
    fn succeeded(
        &mut self,
        key: &AttemptKey,
        worker_id: &WorkerId,
        output: PathBuf,
        counters: Counters,
        status: Option<String>,
        effects: &mut Vec<Effect>,
    ) {
        let now = self.now;
        let (phase, index) = (key.task.phase, key.task.index as usize);
        let mut others = Vec::new();
        let Some(job) = self.job_mut(&key.job_id) else {
            return;
        };
        tracing::info!(job = %key.job_id, task = %key.task.name(), attempt = key.attempt,
            "attempt succeeded");
        job.end_attempt(key.record, AttemptState::Succeeded, now, Some(&counters));
        job.counters.merge(&counters);
        if status.is_some() {
            job.task_status = status;
        }
        let holder =
            (phase == Phase::Map && job.shuffle_mode == ShuffleMode::Local && !job.map_only)
                .then(|| worker_id.clone());
        job.table.done(phase, index, output, holder);
        // Other attempts of the task still running have lost the race.
        for &record in &job.tasks(phase)[index].attempts {
            if let Some(a) = job.attempts.get(record) {
                if a.task == key.task && a.is_running() {
                    others.push((Self::key_of(&job.id, record, a), a.worker.clone()));
                }
            }
        }
        match phase {
            Phase::Map => {
                let done = job.count(Phase::Map, TaskState::Done);
                job.say(format!("mapped {done}/{}", job.table.len(Phase::Map)));
                if job.table.all_done(Phase::Map) {
                    if job.map_only {
                        job.clock.end(Phase::Map, now);
                        job.say("committing the output");
                        effects.push(Effect::Commit(Self::commit_plan(job, Phase::Map)));
                    } else {
                        Self::enter_reduce(job, now);
                    }
                }
            }
            Phase::Reduce | Phase::Single => {
                let total = job.tasks(phase).len();
                let done = job.count(phase, TaskState::Done);
                job.say(format!("reduced {done}/{total}"));
                if done == total && job.table.all_done(Phase::Map) {
                    job.clock.end(phase, now);
                    job.say("committing the output");
                    effects.push(Effect::Commit(Self::commit_plan(job, phase)));
                }
            }
        }
        for (other, worker) in others {
            self.release(&other, &worker);
            if let Some(job) = self.job_mut(&key.job_id) {
                job.end_attempt(
                    other.record,
                    AttemptState::Killed("another attempt of the task succeeded".into()),
                    now,
                    None,
                );
            }
            effects.push(Effect::CancelAttempt {
                job_id: key.job_id.clone(),
                task: other.task,
                attempt: other.attempt,
                worker_id: worker,
            });
        }
    }

    fn commit_plan(job: &Job, phase: Phase) -> CommitPlan {
        tracing::info!(job = %job.id, "every task done; committing the output");
        CommitPlan {
            job_id: job.id.clone(),
            dirs: job.dirs.clone(),
            job: Box::new(job.clone()),
            parts: job
                .tasks(phase)
                .iter()
                .enumerate()
                .filter_map(|(p, t)| t.output().map(|o| (p as u32, o.to_path_buf())))
                .collect(),
            map_only: phase == Phase::Map,
        }
    }

    /// Charges an attempt that ended without output to what caused it, and
    /// puts its task back in the queue (or fails the job):
    /// - a failure of the task's own counts against `MAX_TASK_ATTEMPTS`, and
    ///   against its worker in this job (exclusion);
    /// - a lost map output sends that map back to run again (charged to the
    ///   map, as Hadoop charges fetch failures), not the reduce;
    /// - a lost worker counts against `MAX_TASK_LOSSES` only;
    /// - a killed attempt counts nowhere.
    fn charge(
        &mut self,
        key: &AttemptKey,
        worker_id: &WorkerId,
        state: &AttemptState,
    ) -> Vec<Effect> {
        let s = self.config.clone();
        let (max_attempts, max_losses) = (s.max_attempts(), s.max_losses());
        let now = self.now;
        let (phase, index) = (key.task.phase, key.task.index as usize);
        let name = key.task.name();
        let Some(job) = self.job_mut(&key.job_id) else {
            return Vec::new();
        };
        let mut effects = Vec::new();
        let give_up = match state {
            AttemptState::Failed(AttemptError::MapOutputLost { map, lost, message }) => {
                let lost = LostOutput {
                    map: *map,
                    file: lost,
                    message,
                    reader: &name,
                };
                charge_lost_output(job, &lost, max_attempts, now, &mut effects)
            }
            AttemptState::Failed(e) => {
                let failed = (phase, index, e, worker_id);
                charge_failure(job, failed, &s, now)
            }
            AttemptState::Lost(why) => {
                let task = job.table.task_mut(phase, index);
                task.and_then(|task| {
                    task.lost += 1;
                    task.last_error = Some(why.clone());
                    (task.lost >= max_losses).then(|| {
                        format!(
                            "task {name} was running on a worker that was lost {} time(s) \
                             (MAX_TASK_LOSSES; a task that kills its worker?); last: {why}",
                            task.lost
                        )
                    })
                })
            }
            _ => None,
        };
        job.table.requeue(phase, index);
        if let Some(error) = give_up {
            effects.extend(self.end_job(&key.job_id, Some(error)));
        }
        effects
    }

    /// Cancel messages for the workers still running attempts of a job.
    fn cancel_effects(&self, job_id: &str) -> Option<Effect> {
        let job = self.job(job_id)?;
        let mut workers: Vec<WorkerId> = Vec::new();
        for a in job.attempts.iter().filter(|a| a.is_running()) {
            if !workers.contains(&a.worker) {
                workers.push(a.worker.clone());
            }
        }
        (!workers.is_empty()).then(|| Effect::Cancel {
            job_id: job.id.clone(),
            workers,
        })
    }

    /// The commit of a job's output finished.
    pub(crate) fn committed(
        &mut self,
        job_id: &str,
        result: Result<gridmr_core::commit::Committed, CommitError>,
    ) -> Vec<Effect> {
        let now = self.now;
        let Some(job) = self.job_mut(job_id) else {
            return Vec::new();
        };
        if !job.is_active() {
            return Vec::new();
        }
        match result {
            Ok(gridmr_core::commit::Committed { result, parts }) => {
                match &result {
                    Some(file) => {
                        tracing::info!(job = %job_id, result = %file.display(), "job succeeded")
                    }
                    None => tracing::info!(job = %job_id, parts = parts.len(),
                        "job succeeded (its output is its part files: too large for result.txt)"),
                }
                job.result_file = result;
                job.parts = parts;
                let _ = job.transition(JobState::Succeeded, "done", now);
                let mut effects: Vec<Effect> = drop_shuffle(job).into_iter().collect();
                effects.push(Effect::Observed(Observation::JobEnded {
                    state: JobState::Succeeded,
                    counters: Some(Box::new(job.counters.clone())),
                }));
                effects
            }
            Err(e) => self.end_job(job_id, Some(format!("cannot commit the output: {e}"))),
        }
    }

    /// Cancels and forgets a job. Returns whether it was still running, its
    /// folders, and the effects (cancel messages).
    pub(crate) fn delete(&mut self, id: &str) -> Vec<Effect> {
        if self.job(id).is_none() {
            return Vec::new();
        }
        let mut effects: Vec<Effect> = self.cancel_effects(id).into_iter().collect();
        self.kill_running(id, "its job was deleted");
        let Some(job) = self.ids.remove(id).and_then(|seq| self.jobs.remove(&seq)) else {
            return effects;
        };
        self.forgotten.push(job.id.clone());
        let was_running = !job.state.is_terminal();
        if was_running {
            effects.extend(drop_shuffle(&job));
            effects.push(Effect::Observed(Observation::JobEnded {
                state: JobState::Cancelled,
                counters: None,
            }));
        }
        effects.push(Effect::Deleted {
            job_id: job.id,
            was_running,
            dirs: job.dirs,
        });
        effects
    }

    /// Ended jobs past the retention policy (`JOB_RETENTION_COUNT` ended jobs at most, none
    /// ended more than `JOB_RETENTION_S` ago), oldest first: forgotten here, their folders
    /// returned for the caller to tidy. A job whose record is not yet written stays.
    pub(crate) fn retire(&mut self) -> Vec<Effect> {
        let now_ms = self.now;
        let (max, age_ms) = (
            self.config.job_retention_count,
            self.config.job_retention_s.saturating_mul(1000),
        );
        // It walks every ended job: not at each of the scheduler's wakes, once a second.
        if (max == 0 && age_ms == 0) || now_ms < self.retired_at_ms.saturating_add(1000) {
            return Vec::new();
        }
        self.retired_at_ms = now_ms;
        let ended: Vec<(u64, u64)> = self
            .jobs
            .iter()
            .filter(|(seq, j)| j.state.is_terminal() && !self.unsaved.contains(seq))
            .map(|(seq, j)| (*seq, j.clock.ended_ms().unwrap_or(j.clock.submitted_ms)))
            .collect();
        let over = if max == 0 {
            0
        } else {
            ended.len().saturating_sub(max)
        };
        let mut retired = Vec::new();
        for (i, (seq, finished_ms)) in ended.into_iter().enumerate() {
            let old = age_ms > 0 && now_ms.saturating_sub(finished_ms) > age_ms;
            if i < over || old {
                if let Some(job) = self.jobs.remove(&seq) {
                    self.ids.remove(&job.id);
                    self.forgotten.push(job.id.clone());
                    tracing::info!(job = %job.id, "job retired (JOB_RETENTION_COUNT / _S)");
                    retired.push(Effect::Retired(job.dirs));
                }
            }
        }
        retired
    }

    /// Job counts by state.
    pub fn jobs_by_state(&self) -> BTreeMap<&'static str, u64> {
        let mut m = BTreeMap::new();
        for s in JobState::ALL {
            m.insert(s.as_str(), 0);
        }
        for j in self.jobs.values() {
            *m.entry(j.state.as_str()).or_insert(0) += 1;
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(id: &str) -> WorkerId {
        id.parse().unwrap()
    }

    fn j(id: &str) -> JobId {
        id.parse().unwrap()
    }
    use crate::config::SchedulerPolicy;
    use crate::job::JobKind;
    use crate::plan::plan;
    use crate::workers::LossCause;
    use crate::Event;
    use gridmr_core::input::{InputFile, InputFormat, SplitPolicy};
    use gridmr_core::shuffle::ShuffleSettings;
    use std::path::Path;

    /// The time the scripts below start at (ms).
    const T0: u64 = 1_000_000;

    fn config() -> SchedulerConfig {
        SchedulerConfig {
            max_task_attempts: 2,
            policy: SchedulerPolicy::LeastLoaded,
            ..SchedulerConfig::default()
        }
    }

    fn worker(id: &str, slots: u32) -> WorkerEntry {
        WorkerEntry::new(w(id), format!("{id}:1"), slots, T0)
    }

    fn request(partitions: Option<u32>, force: bool) -> JobRequest {
        JobRequest {
            partitions,
            force_distributed: force,
            ..JobRequest::new(JobKind::Typed("wordcount".into()), "/in.txt".into())
        }
    }

    /// A scheduler at `T0`.
    fn scheduler(config: SchedulerConfig) -> Scheduler {
        let mut s = Scheduler::new(config, 1);
        s.now = T0;
        s
    }

    /// The attempts a scheduling pass at `now` hands out.
    fn tick(s: &mut Scheduler, now: u64) -> Vec<Dispatch> {
        s.handle(Event::Tick, now)
            .into_iter()
            .filter_map(|e| match e {
                Effect::Dispatch(d) => Some(d),
                _ => None,
            })
            .collect()
    }

    /// Failed attempts of `phase`'s tasks.
    fn failures(job: &Job, phase: Phase) -> u32 {
        job.tasks(phase).iter().map(|t| t.failures).sum()
    }

    /// Attempts of `phase`'s tasks lost with their workers.
    fn losses(job: &Job, phase: Phase) -> u32 {
        job.tasks(phase).iter().map(|t| t.lost).sum()
    }

    fn files(len: u64) -> Vec<InputFile> {
        vec![InputFile {
            path: "/in.txt".into(),
            len,
            input: 0,
        }]
    }

    fn dirs() -> JobDirs {
        JobDirs {
            base: "/s/jobs/j".into(),
            shuffle: "/s/jobs/j/shuffle".into(),
            out: "/s/jobs/j/out".into(),
        }
    }

    #[test]
    fn mode_follows_the_original_rule() {
        let t = 100;
        let single = plan(
            &files(99),
            InputFormat::Lines,
            false,
            &request(Some(4), false),
            4,
            t,
        );
        assert_eq!(single.mode, Mode::Single);
        let one = plan(
            &files(1000),
            InputFormat::Lines,
            false,
            &request(Some(1), false),
            4,
            t,
        );
        assert_eq!(one.mode, Mode::Single);
        let dist = plan(
            &files(1000),
            InputFormat::Lines,
            false,
            &request(Some(3), false),
            4,
            t,
        );
        assert_eq!(
            (dist.mode, dist.splits.len(), dist.reduce_partitions),
            (Mode::Distributed, 3, 3)
        );
        let forced = plan(
            &files(10),
            InputFormat::Lines,
            false,
            &request(Some(2), true),
            4,
            t,
        );
        assert_eq!(forced.mode, Mode::Distributed);
        // Nothing asked: as wide as the cluster's slots.
        let default = plan(
            &files(1000),
            InputFormat::Lines,
            false,
            &request(None, false),
            4,
            t,
        );
        assert_eq!((default.splits.len(), default.reduce_partitions), (4, 4));
        // An explicit reduce count below the threshold is kept: DISTRIBUTED.
        let mut explicit = request(None, false);
        explicit.reduce_partitions = Some(10);
        let small = plan(&files(99), InputFormat::Lines, false, &explicit, 4, t);
        assert_eq!(
            (small.mode, small.reduce_partitions),
            (Mode::Distributed, 10)
        );
        explicit.reduce_partitions = Some(1);
        let one = plan(&files(99), InputFormat::Lines, false, &explicit, 4, t);
        assert_eq!(one.mode, Mode::Single);
    }

    #[test]
    fn an_input_of_many_files_is_planned_in_whole_waves() {
        // The objects lab's 1 GiB sort: 25 objects of 43 MB on 8 slots.
        let many: Vec<InputFile> = (0..25)
            .map(|i| InputFile {
                path: format!("/in/part-m-{i:05}").into(),
                len: 42_949_672,
                input: 0,
            })
            .collect();
        let mut req = request(None, true);
        req.reduce_partitions = Some(16);
        let p = plan(&many, InputFormat::Lines, false, &req, 8, 1);
        assert_eq!((p.splits.len(), p.reduce_partitions), (32, 16));
    }

    #[test]
    fn only_uncombined_jobs_get_splits_fitted_to_the_map_buffer() {
        let (input, budget) = (1u64 << 30, ShuffleSettings::default().sort_buffer_bytes);
        let largest = |combined| {
            let p = plan(
                &files(input),
                InputFormat::Lines,
                combined,
                &request(None, true),
                2,
                1,
            );
            p.splits.iter().map(|s| s.end - s.start).max().unwrap_or(0)
        };
        assert!(largest(false) <= budget / 3 * 2, "{}", largest(false));
        assert!(largest(true) > budget / 3 * 2, "{}", largest(true));
        assert!(largest(true) <= SplitPolicy::default().max_split_bytes);
    }

    fn state_with_job(partitions: u32) -> (Scheduler, JobId) {
        let mut s = scheduler(config());
        s.register(worker("a", 1));
        s.register(worker("b", 1));
        let id = s.next_id();
        s.add_job(id.clone(), request(Some(partitions), true), dirs());
        s.start_preparing(&id);
        let live = s.workers.live_slots();
        let p = plan(
            &files(1000),
            InputFormat::Lines,
            false,
            &request(Some(partitions), true),
            live,
            1,
        );
        s.prepared(&id, Ok(p));
        (s, id)
    }

    fn failed(message: &str) -> Outcome {
        Outcome::Failed(AttemptError::Task(message.into()))
    }

    fn ok(path: &str) -> Outcome {
        Outcome::Succeeded {
            output: path.into(),
            counters: Counters::default(),
            status: None,
        }
    }

    #[test]
    fn maps_then_reduces_then_commit() {
        let (mut s, id) = state_with_job(3);
        let first = tick(&mut s, T0);
        assert_eq!(first.len(), 2, "one attempt per free slot");
        assert_ne!(first[0].worker_id, first[1].worker_id);
        assert!(tick(&mut s, T0).is_empty());
        for d in &first {
            let effects = s.complete(&d.key, &d.worker_id, ok("/m.index"));
            assert!(effects.iter().all(|e| matches!(e, Effect::Observed(_))));
        }
        let third = tick(&mut s, T0);
        assert_eq!(third.len(), 1);
        assert_eq!(s.job(&id).unwrap().state, JobState::Mapping);
        s.complete(&third[0].key, &third[0].worker_id, ok("/m.index"));
        assert_eq!(s.job(&id).unwrap().state, JobState::Reducing);
        let reduces = tick(&mut s, T0);
        assert_eq!(reduces[0].key.task.phase, Phase::Reduce);
        assert_eq!(s.reduce_inputs(&id).unwrap().len(), 3);
        let mut effects = Vec::new();
        for d in reduces {
            effects.extend(s.complete(&d.key, &d.worker_id, ok("/r")));
        }
        let last = tick(&mut s, T0);
        effects.extend(s.complete(&last[0].key, &last[0].worker_id, ok("/r")));
        let commit = effects.iter().find_map(|e| match e {
            Effect::Commit(c) => Some(c.clone()),
            _ => None,
        });
        assert_eq!(commit.unwrap().parts.len(), 3);
        s.committed(
            &id,
            Ok(gridmr_core::commit::Committed {
                result: Some("/s/jobs/j/out/result.txt".into()),
                parts: vec!["/s/jobs/j/out/part-r-00000".into()],
            }),
        );
        let job = s.job(&id).unwrap();
        assert_eq!(job.state, JobState::Succeeded);
        assert!(job.count(Phase::Reduce, TaskState::Done) == job.tasks(Phase::Reduce).len());
    }

    // One story: maps kept by their workers, one worker lost mid-reduce, the
    // job done, its workers told to drop what they kept.
    #[test]
    fn local_map_outputs_are_lost_with_their_worker_and_dropped_when_the_job_ends() {
        let mut s = scheduler(config());
        s.register(worker("a", 1));
        s.register(worker("b", 2));
        let id = s.next_id();
        let req = JobRequest {
            map_splits: Some(2),
            reduce_partitions: Some(2),
            shuffle_mode: ShuffleMode::Local,
            ..request(None, true)
        };
        s.add_job(id.clone(), req.clone(), dirs());
        s.start_preparing(&id);
        let p = plan(&files(100_000), InputFormat::Lines, false, &req, 3, 1);
        s.prepared(&id, Ok(p));
        let maps = tick(&mut s, T0);
        assert_eq!(maps.len(), 2);
        for d in &maps {
            let name = format!("map-{:05}-a1.index", d.key.task.index);
            assert_eq!(
                d.expected,
                vec![PathBuf::from(&name)],
                "a plain name on the worker"
            );
            s.complete(&d.key, &d.worker_id, ok(&name));
        }
        let on_a = maps
            .iter()
            .find(|d| d.worker_id == w("a"))
            .unwrap()
            .key
            .task
            .index;
        let inputs = s.reduce_inputs(&id).unwrap();
        assert_eq!(inputs[on_a as usize].holder, Some(w("a")));
        assert_eq!(s.job(&id).unwrap().state, JobState::Reducing);
        let reduces = tick(&mut s, T0);
        assert_eq!(reduces.len(), 2);

        // `a` is lost: the map it kept runs again, uncharged; `b`'s stays done.
        s.worker_lost(&w("a"), LossCause::Unreachable);
        let job = s.job(&id).unwrap();
        assert_eq!(job.state, JobState::Mapping, "{}", job.message);
        let map_a = job.table.get(Phase::Map, on_a as usize).unwrap();
        assert_eq!(map_a.state(), TaskState::Pending);
        assert_eq!(map_a.failures, 0);
        assert_eq!(job.count(Phase::Map, TaskState::Done), 1);
        // A reduce that still reports the old output lost charges nothing more.
        let on_b = reduces.iter().find(|d| d.worker_id == w("b")).unwrap();
        let lost_name = format!("map-{on_a:05}-a1.index");
        s.complete(
            &on_b.key,
            &on_b.worker_id,
            Outcome::InputLost {
                input: lost_name.into(),
                also: Vec::new(),
                message: "unreachable".into(),
            },
        );
        assert_eq!(
            s.job(&id)
                .unwrap()
                .table
                .get(Phase::Map, on_a as usize)
                .unwrap()
                .failures,
            0
        );

        // The map runs again on `b`, then both reduces; the commit ends the job.
        let again = tick(&mut s, T0);
        assert_eq!((again.len(), again[0].worker_id.as_str()), (1, "b"));
        s.complete(
            &again[0].key,
            &again[0].worker_id,
            ok(&format!("map-{on_a:05}-a2.index")),
        );
        let mut effects = Vec::new();
        for _ in 0..2 {
            for d in tick(&mut s, T0) {
                effects.extend(s.complete(&d.key, &d.worker_id, ok("/r")));
            }
        }
        assert!(
            effects.iter().any(|e| matches!(e, Effect::Commit(_))),
            "{effects:?}"
        );
        let effects = s.committed(
            &id,
            Ok(gridmr_core::commit::Committed {
                result: None,
                parts: Vec::new(),
            }),
        );
        let dropped = effects.iter().find_map(|e| match e {
            Effect::DropShuffle { job_id, workers } => Some((job_id.clone(), workers.clone())),
            _ => None,
        });
        let (job_id, mut workers) = dropped.expect("the workers are told to drop the outputs");
        workers.sort();
        assert_eq!((job_id, workers), (id, vec![w("a"), w("b")]));
    }

    #[test]
    fn failures_retry_then_fail_the_job() {
        let (mut s, id) = state_with_job(1);
        let d = tick(&mut s, T0).remove(0);
        s.complete(&d.key, &d.worker_id, failed("boom 1"));
        let d2 = tick(&mut s, T0).remove(0);
        assert_eq!(d2.key.attempt, 2);
        s.complete(&d2.key, &d2.worker_id, failed("boom 2"));
        let job = s.job(&id).unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert!(job.error.as_deref().unwrap().contains("boom 2"));
        assert!(tick(&mut s, T0).is_empty());
    }

    #[test]
    fn a_dead_workers_attempts_are_requeued_and_late_answers_ignored() {
        let (mut s, id) = state_with_job(2);
        let ds = tick(&mut s, T0);
        let on_a = ds.iter().find(|d| d.worker_id == "a").unwrap().clone();
        // b is heard from; a falls silent past the timeout (10 s), looked at every 2 s.
        for now in (T0..=T0 + 12_000).step_by(2_000) {
            let beat = Event::Heartbeat {
                worker: w("b"),
                reports: Vec::new(),
            };
            s.handle(beat, now);
            tick(&mut s, now);
        }
        let job = s.job(&id).unwrap();
        assert_eq!(losses(job, Phase::Map), 1);
        assert!(matches!(
            job.attempts[on_a.key.record].state,
            AttemptState::Lost(_)
        ));
        // The requeued task goes to the live worker once it has a slot.
        let other = ds.iter().find(|d| d.worker_id == "b").unwrap().clone();
        s.complete(&other.key, &other.worker_id, ok("/m1"));
        let retry = tick(&mut s, T0).remove(0);
        assert_eq!((retry.worker_id.as_str(), retry.key.attempt), ("b", 2));
        // The lost attempt's late failure changes nothing.
        let effects = s.complete(&on_a.key, &w("a"), Outcome::Lost("reset".into()));
        assert!(effects.is_empty());
        assert_eq!(losses(s.job(&id).unwrap(), Phase::Map), 1);
        // Its late success is recorded as late and not used: its output goes, the retry runs.
        let effects = s.complete(&on_a.key, &w("a"), ok("/m0-late"));
        assert!(
            matches!(&effects[..], [Effect::RemoveAttemptOutput(_, p)] if p == std::path::Path::new("/m0-late"))
        );
        let job = s.job(&id).unwrap();
        let lost = &job.attempts[on_a.key.record];
        assert!(matches!(lost.state, AttemptState::Lost(_)));
        assert_eq!(lost.late.as_deref(), Some("succeeded"));
        assert_eq!(
            job.tasks(Phase::Map)[on_a.key.task.index as usize].state(),
            TaskState::Running
        );
    }

    #[test]
    fn duplicate_successes_are_superseded() {
        let (mut s, _id) = state_with_job(1);
        let d = tick(&mut s, T0).remove(0);
        s.complete(&d.key, &d.worker_id, ok("/first"));
        let effects = s.complete(&d.key, &d.worker_id, ok("/again"));
        assert!(
            matches!(&effects[..], [Effect::RemoveAttemptOutput(Phase::Map, p)] if p == &PathBuf::from("/again"))
        );
    }

    #[test]
    fn ended_jobs_past_the_retention_count_or_age_are_retired_oldest_first() {
        let mut st = scheduler(SchedulerConfig {
            job_retention_count: 2,
            ..config()
        });
        let ids: Vec<JobId> = (0..4)
            .map(|_| {
                let id = st.next_id();
                st.add_job(id.clone(), request(None, false), dirs());
                id
            })
            .collect();
        for id in &ids[..3] {
            st.cancel(id).unwrap();
        }
        // Not yet saved: kept. (It looks at most once a second: each call a second later.)
        let retired = |st: &mut Scheduler, now: u64| {
            st.handle(Event::Tick, now)
                .into_iter()
                .filter(|e| matches!(e, Effect::Retired(_)))
                .count()
        };
        let t = T0;
        assert_eq!(retired(&mut st, t), 0);
        assert_eq!(st.take_unsaved().len(), 3);
        assert_eq!(retired(&mut st, t + 10), 0, "not again within the second");
        assert_eq!(retired(&mut st, t + 1_000), 1);
        assert!(st.job(&ids[0]).is_none(), "the oldest ended job went");
        assert!(st.job(&ids[1]).is_some() && st.job(&ids[2]).is_some());
        assert!(st.job(&ids[3]).is_some(), "a running job is never retired");
        // By age: a day later, every ended job is past a one-hour limit.
        st.config.job_retention_count = 0;
        st.config.job_retention_s = 3600;
        assert_eq!(retired(&mut st, t + 2_000), 0);
        assert_eq!(retired(&mut st, t + 86_400_000), 2);
        assert!(st.job(&ids[3]).is_some());
    }

    #[test]
    fn delete_frees_slots_and_forgets_the_job() {
        let (mut s, id) = state_with_job(2);
        assert_eq!(tick(&mut s, T0).len(), 2);
        let effects = s.handle(Event::Delete { job: id.clone() }, T0);
        assert!(matches!(&effects[0], Effect::Cancel { workers, .. } if workers.len() == 2));
        assert!(effects.iter().any(|e| matches!(
            e,
            Effect::Deleted {
                was_running: true,
                ..
            }
        )));
        assert!(s.job(&id).is_none());
        assert!(s.workers.list.iter().all(|w| w.running == 0));
        let next = s.next_id();
        assert_ne!(next, id, "ids are never reused");
    }

    #[test]
    fn every_change_to_a_job_is_reported_once_and_a_forgotten_job_too() {
        let (mut s, id) = state_with_job(2);
        let first = s.take_changes();
        assert_eq!(first.changed, vec![(id.clone(), false)]);
        assert_eq!(s.take_changes(), JobChanges::default(), "reported once");
        // A pass that dispatches changes the job; one with nothing to do does not.
        assert_eq!(tick(&mut s, T0).len(), 2);
        assert_eq!(s.take_changes().changed, vec![(id.clone(), false)]);
        assert!(tick(&mut s, T0 + 1).is_empty());
        assert!(s.take_changes().changed.is_empty());
        s.handle(Event::Cancel { job: id.clone() }, T0 + 2);
        assert_eq!(s.take_changes().changed, vec![(id.clone(), true)]);
        s.handle(Event::Delete { job: id.clone() }, T0 + 3);
        let gone = s.take_changes();
        assert!(gone.changed.is_empty());
        assert_eq!(gone.forgotten, vec![id]);
    }

    #[test]
    fn an_ended_job_is_saved_once_and_reads_back_as_it_ended() {
        let (mut s, id) = state_with_job(1);
        assert!(s.take_unsaved().is_empty(), "still running");
        for boom in ["boom 1", "boom 2"] {
            let d = tick(&mut s, T0).remove(0);
            s.complete(&d.key, &d.worker_id, failed(boom));
        }
        let ended = s.take_unsaved();
        assert_eq!(ended.len(), 1);
        assert!(s.take_unsaved().is_empty(), "saved once");
        let json = serde_json::to_string(&ended[0]).unwrap();
        let back: Job = serde_json::from_str(&json).unwrap();
        let mut fresh = scheduler(config());
        fresh.restore(back);
        let status = |st: &Scheduler| serde_json::to_value(st.job(&id).unwrap()).unwrap();
        assert_eq!(status(&fresh), status(&s));
        assert_eq!(fresh.jobs_by_state()["FAILED"], 1);
        assert!(
            fresh.take_unsaved().is_empty(),
            "a restored job is saved already"
        );
    }

    #[test]
    fn a_job_run_again_numbers_its_attempts_apart() {
        let mut s = scheduler(config());
        s.register(worker("a", 1));
        s.add_job(j("job-000007"), request(Some(1), true), dirs());
        s.set_attempt_base("job-000007", 2000);
        s.start_preparing("job-000007");
        let live = s.workers.live_slots();
        let p = plan(
            &files(10),
            InputFormat::Lines,
            false,
            &request(Some(1), true),
            live,
            1,
        );
        s.prepared("job-000007", Ok(p));
        let d = tick(&mut s, T0).remove(0);
        assert_eq!(d.key.attempt, 2001);
        s.complete(&d.key, &d.worker_id, failed("boom"));
        assert_eq!(tick(&mut s, T0).remove(0).key.attempt, 2002);
    }

    #[test]
    fn an_adopted_record_ends_succeeded_whatever_state_it_names() {
        let mut s = scheduler(config());
        s.add_job(j("job-000001"), request(None, false), dirs());
        let mut job = s.job("job-000001").unwrap().clone();
        // What a record planted on the share might say.
        job.state = JobState::Failed;
        let mut fresh = scheduler(config());
        let done = gridmr_core::commit::Committed {
            result: None,
            parts: Vec::new(),
        };
        fresh.adopt(job, done, T0);
        let adopted = fresh.job("job-000001").unwrap();
        assert_eq!(adopted.state, JobState::Succeeded);
        assert_eq!(adopted.error, None);
        assert_eq!(fresh.take_unsaved().len(), 1, "its record is written again");
    }

    #[test]
    fn stored_errors_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_ERROR_BYTES);
        let cut = bounded_error(long);
        assert!(cut.len() <= MAX_ERROR_BYTES + " …(cut)".len());
        assert!(cut.ends_with("…(cut)"));
        assert_eq!(bounded_error("short".into()), "short");
    }

    #[test]
    fn only_a_request_that_leaves_its_width_open_takes_the_clusters() {
        assert!(request(None, true).width_from_cluster());
        assert!(!request(Some(3), false).width_from_cluster());
        let both = JobRequest {
            map_splits: Some(4),
            reduce_partitions: Some(2),
            ..request(None, false)
        };
        assert!(!both.width_from_cluster());
        let maps_only = JobRequest {
            map_splits: Some(4),
            ..request(None, false)
        };
        assert!(
            maps_only.width_from_cluster(),
            "reduce partitions left open"
        );
    }

    /// A job of `maps` map tasks and `reduces` reduce tasks on workers a
    /// and b (one slot each), with every map done when `map_all`.
    fn job_on_two(maps: u32, reduces: u32, max_losses: u32) -> (Scheduler, JobId) {
        let mut s = scheduler(SchedulerConfig {
            max_task_losses: max_losses,
            ..config()
        });
        s.register(worker("a", 1));
        s.register(worker("b", 1));
        let id = s.next_id();
        let mut req = request(None, true);
        req.map_splits = Some(maps);
        req.reduce_partitions = Some(reduces);
        s.add_job(id.clone(), req.clone(), dirs());
        s.start_preparing(&id);
        let live = s.workers.live_slots();
        let p = plan(&files(100_000), InputFormat::Lines, false, &req, live, 1);
        s.prepared(&id, Ok(p));
        (s, id)
    }

    #[test]
    fn reduces_of_an_object_output_are_sent_one_ahead_per_worker() {
        for (url, readahead, sent) in [
            (Some("s3://b/out"), 1, 4),
            (None, 1, 2),
            (Some("s3://b/out"), 0, 2),
        ] {
            let mut s = scheduler(SchedulerConfig {
                reduce_readahead: readahead,
                ..config()
            });
            s.register(worker("a", 1));
            s.register(worker("b", 1));
            let id = s.next_id();
            let mut req = request(None, true);
            req.map_splits = Some(4);
            req.reduce_partitions = Some(6);
            req.output_url = url.map(String::from);
            s.add_job(id.clone(), req.clone(), dirs());
            s.start_preparing(&id);
            let p = plan(&files(100_000), InputFormat::Lines, false, &req, 2, 1);
            s.prepared(&id, Ok(p));
            // Maps are never sent ahead: one per slot.
            for _ in 0..2 {
                let maps = tick(&mut s, T0);
                assert_eq!(maps.len(), 2);
                for d in &maps {
                    s.complete(&d.key, &d.worker_id, ok("/m.index"));
                }
            }
            let reduces = tick(&mut s, T0);
            assert_eq!(reduces.len(), sent, "{url:?} readahead {readahead}");
            let on_a = reduces.iter().filter(|d| d.worker_id == "a").count();
            assert_eq!(on_a * 2, sent, "spread over the workers");
            assert!(tick(&mut s, T0).is_empty());
            // One done: its worker gets one more, no other.
            s.complete(&reduces[0].key, &reduces[0].worker_id, ok("/r"));
            let next = tick(&mut s, T0);
            assert_eq!(next.len(), 1);
            assert_eq!(next[0].worker_id, reduces[0].worker_id);
        }
    }

    #[test]
    fn lost_attempts_do_not_count_but_a_poison_task_is_stopped() {
        let (mut s, id) = job_on_two(1, 1, 5);
        for n in 1..=4 {
            let d = tick(&mut s, T0).remove(0);
            s.worker_lost(&d.worker_id, LossCause::Unreachable);
            // The worker comes back.
            s.register(worker(&d.worker_id, 1));
            let job = s.job(&id).unwrap();
            assert!(job.is_active(), "lost {n} time(s): {}", job.message);
        }
        let d = tick(&mut s, T0).remove(0);
        s.worker_lost(&d.worker_id, LossCause::Unreachable);
        let job = s.job(&id).unwrap();
        assert_eq!(job.state, JobState::Failed);
        let error = job.error.clone().unwrap();
        assert!(error.contains("lost 5 time(s)"), "{error}");
        assert!(error.contains("MAX_TASK_LOSSES"), "{error}");
        assert_eq!(failures(job, Phase::Map), 0);
    }

    #[test]
    fn a_retry_goes_to_another_worker_and_a_failing_worker_is_excluded() {
        let (mut s, id) = job_on_two(4, 1, 8);
        let first = tick(&mut s, T0);
        assert_eq!(first.len(), 2);
        let on_a = first.iter().find(|d| d.worker_id == "a").unwrap().clone();
        let on_b = first.iter().find(|d| d.worker_id == "b").unwrap().clone();
        s.complete(&on_a.key, &w("a"), failed("bad disk"));
        // a is free, but the failed task waits for b; a takes another task.
        let next = tick(&mut s, T0);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].worker_id, "a");
        assert_ne!(next[0].key.task, on_a.key.task);
        s.complete(&next[0].key, &w("a"), failed("bad disk"));
        let job = s.job(&id).unwrap();
        assert_eq!(job.excluded_workers(T0), ["a"]);
        // Excluded: a gets nothing while b can run the job.
        assert!(tick(&mut s, T0).is_empty());
        s.complete(&on_b.key, &w("b"), ok("/m-b"));
        let retry = tick(&mut s, T0);
        assert_eq!(retry.len(), 1);
        assert_eq!(retry[0].worker_id, "b");
        // With b gone, the excluded worker is all there is: it is used.
        s.worker_lost(&w("b"), LossCause::Unreachable);
        let fallback = tick(&mut s, T0);
        assert_eq!(fallback.len(), 1);
        assert_eq!(fallback[0].worker_id, "a");
    }

    #[test]
    fn a_lost_map_output_reruns_that_map_without_charging_the_reduce() {
        let (mut s, id) = job_on_two(2, 2, 8);
        for d in tick(&mut s, T0) {
            let out = format!("/shuffle/{}.index", d.key.task.name());
            s.complete(&d.key, &d.worker_id.clone(), ok(&out));
        }
        let reduces = tick(&mut s, T0);
        assert_eq!(reduces.len(), 2);
        let (r0, r1) = (reduces[0].clone(), reduces[1].clone());
        s.complete(&r1.key, &r1.worker_id, ok("/out/r1"));
        let effects = s.complete(
            &r0.key,
            &r0.worker_id,
            Outcome::InputLost {
                input: "/shuffle/map-00001.index".into(),
                also: Vec::new(),
                message: "no such file".into(),
            },
        );
        assert!(effects.iter().any(
            |e| matches!(e, Effect::RemoveAttemptOutput(Phase::Map, p) if p == &PathBuf::from("/shuffle/map-00001.index"))
        ));
        let job = s.job(&id).unwrap();
        assert_eq!(job.state, JobState::Mapping);
        assert_eq!(
            job.tasks(Phase::Reduce)[0].failures,
            0,
            "the reduce is not charged"
        );
        assert_eq!(job.tasks(Phase::Map)[1].failures, 1, "the map is");
        assert_eq!(
            job.tasks(Phase::Reduce)[1].state(),
            TaskState::Done,
            "done reduces stay"
        );
        let attempt: crate::job::AttemptRecord = job.attempts[r0.key.record].clone().into();
        assert_eq!(attempt.kind.as_deref(), Some("map_output_lost"));
        // Only map 1 runs again, then only reduce 0.
        let again = tick(&mut s, T0);
        assert_eq!(again.len(), 1);
        assert_eq!(
            again[0].key.task,
            TaskId {
                phase: Phase::Map,
                index: 1
            }
        );
        s.complete(
            &again[0].key,
            &again[0].worker_id,
            ok("/shuffle/map-00001-2.index"),
        );
        let rerun = tick(&mut s, T0);
        assert_eq!(rerun.len(), 1);
        assert_eq!(
            rerun[0].key.task,
            TaskId {
                phase: Phase::Reduce,
                index: 0
            }
        );
        let effects = s.complete(&rerun[0].key, &rerun[0].worker_id, ok("/out/r0"));
        assert!(effects
            .iter()
            .any(|e| matches!(e, Effect::Commit(c) if c.parts.len() == 2)));
    }

    #[test]
    fn cancel_keeps_the_record_frees_the_slots_and_cleans_up() {
        let (mut s, id) = job_on_two(2, 1, 8);
        let running = tick(&mut s, T0);
        assert_eq!(running.len(), 2);
        let (cancelled, effects) = s.cancel(&id).unwrap();
        assert!(cancelled);
        assert!(effects.iter().any(|e| matches!(e, Effect::Clean(_))));
        assert!(effects.iter().any(|e| matches!(e, Effect::Cancel { .. })));
        let job = s.job(&id).unwrap();
        assert_eq!(job.state, JobState::Cancelled);
        assert!(job
            .attempts
            .iter()
            .all(|a| matches!(a.state, AttemptState::Killed(_))));
        assert!(s.workers.list.iter().all(|w| w.running == 0));
        // A late success is recorded as late, its output removed and the ended job swept
        // again; a second cancel is a no-op.
        let late = s.complete(&running[0].key, &running[0].worker_id, ok("/late"));
        assert!(matches!(
            &late[..],
            [Effect::RemoveAttemptOutput(..), Effect::Sweep(_)]
        ));
        let attempt = &s.job(&id).unwrap().attempts[running[0].key.record];
        assert!(matches!(attempt.state, AttemptState::Killed(_)));
        assert_eq!(attempt.late.as_deref(), Some("succeeded"));
        assert!(!s.cancel(&id).unwrap().0);
        assert_eq!(s.job(&id).unwrap().state, JobState::Cancelled);
    }

    #[test]
    fn a_typed_job_goes_only_to_workers_that_have_it() {
        let mut s = scheduler(config());
        let mut without = worker("old", 4);
        without.jobs = Some(vec!["grep".into()]);
        s.register(without);
        let id = s.next_id();
        s.add_job(id.clone(), request(Some(1), true), dirs());
        s.start_preparing(&id);
        let live = s.workers.live_slots();
        let p = plan(
            &files(10),
            InputFormat::Lines,
            false,
            &request(Some(1), true),
            live,
            1,
        );
        s.prepared(&id, Ok(p));
        assert!(tick(&mut s, T0).is_empty());
        let mut with = worker("new", 1);
        with.jobs = Some(vec!["wordcount".into()]);
        s.register(with);
        let d = tick(&mut s, T0);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].worker_id, "new");
    }

    #[test]
    fn a_worker_without_heartbeats_is_probed_not_expired() {
        let mut s = scheduler(config());
        let mut quiet = worker("curl", 1);
        quiet.heartbeats = false;
        s.register(quiet);
        let effects = s.handle(Event::Tick, T0 + 60_000);
        assert!(matches!(&effects[..], [Effect::Probe { worker_id, .. }] if worker_id == "curl"));
        assert_eq!(s.workers.live().count(), 1);
        // A failed probe makes it unreachable.
        s.worker_lost(&w("curl"), LossCause::Unreachable);
        assert_eq!(s.workers.live().count(), 0);
    }

    #[test]
    fn a_straggler_gets_a_backup_attempt_and_the_loser_is_killed() {
        let (mut s, id) = job_on_two(4, 1, 8);
        // Maps 0..3 finish in about 100 ms each; map 3 runs on and on.
        let mut slow = None;
        let mut now = T0;
        let beat = |s: &mut Scheduler, now: u64| {
            for w in ["a", "b"] {
                let beat = Event::Heartbeat {
                    worker: self::w(w),
                    reports: Vec::new(),
                };
                s.handle(beat, now);
            }
        };
        for _ in 0..3 {
            let started = now;
            for d in tick(&mut s, now) {
                if d.key.task.index == 3 {
                    slow = Some(d);
                    continue;
                }
                let ended = Event::AttemptEnded {
                    key: d.key.clone(),
                    worker: d.worker_id.clone(),
                    outcome: ok(&format!("/m{}", d.key.task.index)),
                };
                s.handle(ended, started + 100);
            }
            now += 100;
        }
        let slow = slow.expect("map 3 was dispatched");
        beat(&mut s, now + 500);
        assert!(tick(&mut s, now + 500).is_empty(), "not a straggler yet");
        // Not while the master is just back from a stall of its own (a minute between two
        // looks at its workers): no one is lost, and no backup goes out.
        now += 60_000;
        let lost = s.handle(Event::Tick, now);
        assert!(
            !lost.iter().any(|e| matches!(e, Effect::Dispatch(_))),
            "no backup right after a stall: {lost:?}"
        );
        assert_eq!(s.workers.live().count(), 2, "no one is lost for the stall");
        // Once the stall's length has passed again, map 3 (running minutes against a
        // median of 0.1 s) gets its backup; not before.
        let stalled_at = now;
        let backup = loop {
            now += 2_000;
            beat(&mut s, now);
            let backup = tick(&mut s, now);
            if !backup.is_empty() || now > stalled_at + 120_000 {
                break backup;
            }
        };
        assert!(
            now >= stalled_at + 60_000,
            "a backup only after the hold: {now}"
        );
        assert_eq!(backup.len(), 1, "{backup:?}");
        assert_eq!(backup[0].key.task, slow.key.task);
        assert_ne!(backup[0].worker_id, slow.worker_id);
        assert!(tick(&mut s, now).is_empty(), "one backup per task");
        // The backup wins: the straggler is killed, on its worker too.
        let effects = s.complete(&backup[0].key, &backup[0].worker_id, ok("/m3-backup"));
        assert!(effects.iter().any(|e| matches!(e,
            Effect::CancelAttempt { task, attempt, .. } if *task == slow.key.task && *attempt == slow.key.attempt)));
        let job = s.job(&id).unwrap();
        assert!(matches!(
            job.attempts[slow.key.record].state,
            AttemptState::Killed(_)
        ));
        assert_eq!(
            job.tasks(Phase::Map)[3].output(),
            Some(Path::new("/m3-backup"))
        );
        assert_eq!(job.state, JobState::Reducing);
        assert!(s.workers.list.iter().all(|w| w.running == 0));
        // Its late answer changes nothing but its files.
        let late = s.complete(&slow.key, &slow.worker_id, ok("/m3-late"));
        assert!(
            matches!(&late[..], [Effect::RemoveAttemptOutput(Phase::Map, p)] if p == &PathBuf::from("/m3-late"))
        );
    }

    #[test]
    fn a_second_reduce_reporting_the_same_lost_output_is_not_charged() {
        let (mut s, id) = job_on_two(2, 2, 8);
        let shuffle = s.job(&id).unwrap().dirs.shuffle.clone();
        let out = |i: u32| {
            layout::MapOutput::of_attempt(&shuffle, i, 1)
                .index()
                .to_path_buf()
        };
        for d in tick(&mut s, T0) {
            s.complete(
                &d.key,
                &d.worker_id.clone(),
                ok(out(d.key.task.index).to_str().unwrap()),
            );
        }
        let reduces = tick(&mut s, T0);
        assert_eq!(reduces.len(), 2);
        for r in &reduces {
            s.complete(
                &r.key,
                &r.worker_id,
                Outcome::InputLost {
                    input: out(1),
                    also: Vec::new(),
                    message: "gone".into(),
                },
            );
        }
        let job = s.job(&id).unwrap();
        assert_eq!(
            job.tasks(Phase::Map)[1].failures,
            1,
            "the map is charged once"
        );
        assert!(job.tasks(Phase::Reduce).iter().all(|r| r.failures == 0));
        assert_eq!(job.tasks(Phase::Map)[1].state(), TaskState::Pending);
        assert_eq!(job.tasks(Phase::Map)[0].state(), TaskState::Done);
    }
}
