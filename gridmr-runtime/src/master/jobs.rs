//! The job store: every job's plan, tasks, attempts, counters and clock.
//!
//! Pure bookkeeping, no I/O and no async: the scheduler (in `state`) decides
//! with it, and the REST API reads it. A job serializes whole (the `store`
//! keeps finished jobs across master restarts).

use gridmr_core::input::InputSplit;
use gridmr_core::shuffle::ShuffleSettings;
use gridmr_core::{Counters, Params};
use gridmr_net::rest::{
    JobMetrics, JobProgress, JobState, JobStatus, JobSummary, Mode, PhaseProgress, PhaseTasks,
    PhaseTimes, TaskAttempt, TaskCounts, WorkDone,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The phases a task belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Phase {
    Single,
    Map,
    Reduce,
}

impl Phase {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Phase::Single => "single",
            Phase::Map => "map",
            Phase::Reduce => "reduce",
        }
    }

    pub(crate) fn task_name(self, index: u32) -> String {
        match self {
            Phase::Single => gridmr_core::layout::SINGLE_TASK.into(),
            Phase::Map => gridmr_core::layout::map_task(index),
            Phase::Reduce => gridmr_core::layout::reduce_task(index),
        }
    }
}

/// One task of a job: its phase and index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct TaskRef {
    pub(crate) phase: Phase,
    pub(crate) index: u32,
}

impl TaskRef {
    /// `single`, `map-NNNNN` or `reduce-NNNNN`.
    pub(crate) fn name(self) -> String {
        self.phase.task_name(self.index)
    }

    /// Reads a task name back (the store's and the API's form).
    pub(crate) fn parse(name: &str) -> Option<TaskRef> {
        let (phase, index) = match name {
            "single" => (Phase::Single, 0),
            _ => match name.split_once('-')? {
                ("map", i) => (Phase::Map, i.parse().ok()?),
                ("reduce", i) => (Phase::Reduce, i.parse().ok()?),
                _ => return None,
            },
        };
        Some(TaskRef { phase, index })
    }
}

/// Why an attempt failed. The variant decides whether the failure counts
/// against `MAX_TASK_ATTEMPTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttemptError {
    /// The job's code or its input failed (with the stderr tail).
    Task(String),
    /// The worker could not run it, or answered with something unusable.
    Engine(String),
    /// It ran past its timeout.
    Timeout(String),
    /// A map output it read is missing or damaged: that map runs again, and
    /// the reduce is not charged.
    MapOutputLost {
        map: u32,
        /// The index file the reduce could not read (the map runs again
        /// only while that is still its output).
        lost: PathBuf,
        message: String,
    },
}

impl AttemptError {
    pub(crate) fn message(&self) -> &str {
        match self {
            AttemptError::Task(m) | AttemptError::Engine(m) | AttemptError::Timeout(m) => m,
            AttemptError::MapOutputLost { message, .. } => message,
        }
    }

    /// The same error with its message passed through `f`.
    pub(crate) fn map_message(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            AttemptError::Task(m) => AttemptError::Task(f(m)),
            AttemptError::Engine(m) => AttemptError::Engine(f(m)),
            AttemptError::Timeout(m) => AttemptError::Timeout(f(m)),
            AttemptError::MapOutputLost { map, lost, message } => AttemptError::MapOutputLost {
                map,
                lost,
                message: f(message),
            },
        }
    }

    /// Its name in the API (`TaskAttempt.kind`).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            AttemptError::Task(_) => "task",
            AttemptError::Engine(_) => "engine",
            AttemptError::Timeout(_) => "timeout",
            AttemptError::MapOutputLost { .. } => "map_output_lost",
        }
    }
}

/// Where an attempt is. Only `Running` moves on; every other state is
/// final, so a late or repeated report about an attempt changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttemptState {
    Running,
    /// Its output is the task's (kept on the [`Task`]).
    Succeeded,
    Failed(AttemptError),
    /// Its worker went away (restarted, silent, unreachable). Not charged
    /// to the task, but to [`Task::lost`] (the poison-task guard).
    Lost(String),
    /// Stopped by the master: its job was cancelled or failed, or another
    /// attempt of the task won.
    Killed(String),
    /// It succeeded after another attempt of its task had.
    Superseded,
    /// Still running when the master that ran it stopped.
    Unknown,
}

impl AttemptState {
    /// The API's `outcome`.
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            AttemptState::Running => "running",
            AttemptState::Succeeded => "succeeded",
            AttemptState::Failed(_) => "failed",
            AttemptState::Lost(_) => "lost",
            AttemptState::Killed(_) => "killed",
            AttemptState::Superseded => "superseded",
            AttemptState::Unknown => "unknown",
        }
    }
}

/// One attempt of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "TaskAttempt", try_from = "TaskAttempt")]
pub(crate) struct Attempt {
    pub(crate) task: TaskRef,
    /// 1, 2, … (plus the job's `attempt_base` after a master restart).
    pub(crate) number: u32,
    pub(crate) worker: String,
    pub(crate) started_ms: u64,
    pub(crate) finished_ms: Option<u64>,
    pub(crate) state: AttemptState,
    /// The last progress its worker reported.
    pub(crate) progress: Option<WorkDone>,
    /// What its worker reported after it had ended (a late result, never used).
    pub(crate) late: Option<String>,
}

impl Attempt {
    pub(crate) fn is_running(&self) -> bool {
        self.state == AttemptState::Running
    }

    /// Moves a running attempt to `state`; `false` (and no change) when it
    /// had already ended.
    pub(crate) fn end(&mut self, state: AttemptState, now_ms: u64) -> bool {
        if !self.is_running() {
            return false;
        }
        self.state = state;
        self.finished_ms = Some(now_ms);
        true
    }
}

/// One line of a job's `history.jsonl` (the store's journal of a job that has not ended): an
/// attempt as it started or ended, with the counters of a successful one, so that a master
/// restart keeps every attempt and the counters of the map outputs it keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct HistoryLine {
    pub(crate) attempt: Attempt,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) counters: Option<Counters>,
}

/// The API's (and the store's) form of an attempt.
impl From<Attempt> for TaskAttempt {
    fn from(a: Attempt) -> Self {
        let (error, kind) = match &a.state {
            AttemptState::Failed(e) => (Some(e.message().to_owned()), Some(e.kind().to_owned())),
            AttemptState::Lost(m) | AttemptState::Killed(m) => (Some(m.clone()), None),
            _ => (None, None),
        };
        TaskAttempt {
            task: a.task.name(),
            attempt: a.number,
            worker_id: a.worker,
            started_ms: a.started_ms,
            finished_ms: a.finished_ms,
            outcome: a.state.as_str().to_owned(),
            error,
            kind,
            progress: a.progress,
            late: a.late,
        }
    }
}

impl TryFrom<TaskAttempt> for Attempt {
    type Error = String;

    fn try_from(t: TaskAttempt) -> Result<Self, String> {
        let task = TaskRef::parse(&t.task).ok_or_else(|| format!("bad task name {:?}", t.task))?;
        let message = t.error.clone().unwrap_or_default();
        let state = match t.outcome.as_str() {
            "succeeded" => AttemptState::Succeeded,
            "failed" => AttemptState::Failed(match t.kind.as_deref() {
                Some("engine") => AttemptError::Engine(message),
                Some("timeout") => AttemptError::Timeout(message),
                Some("map_output_lost") => AttemptError::MapOutputLost {
                    map: 0,
                    lost: PathBuf::new(),
                    message,
                },
                _ => AttemptError::Task(message),
            }),
            "lost" => AttemptState::Lost(message),
            "killed" | "cancelled" => AttemptState::Killed(message),
            "superseded" => AttemptState::Superseded,
            // "running" and "unknown": nobody heard how it ended.
            _ => AttemptState::Unknown,
        };
        Ok(Attempt {
            task,
            number: t.attempt,
            worker: t.worker_id,
            started_ms: t.started_ms,
            finished_ms: t.finished_ms,
            state,
            progress: t.progress,
            late: t.late,
        })
    }
}

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TaskState {
    Pending,
    Running,
    Done,
}

/// One task (map split, reduce partition or the SINGLE run).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Task {
    pub(crate) state: TaskState,
    /// Attempts dispatched so far (the next attempt's number is this + 1).
    pub(crate) dispatched: u32,
    /// Attempts running now.
    pub(crate) running: u32,
    /// Failed attempts that count against `MAX_TASK_ATTEMPTS`.
    pub(crate) failures: u32,
    /// Attempts lost with their worker (the poison-task guard,
    /// `MAX_TASK_LOSSES`).
    pub(crate) lost: u32,
    pub(crate) last_error: Option<String>,
    /// Workers on which an attempt of this task failed: a retry goes
    /// elsewhere when it can.
    #[serde(default)]
    pub(crate) failed_on: Vec<String>,
    /// Whether a backup (speculative) attempt was started for it.
    #[serde(default)]
    pub(crate) speculated: bool,
    /// The committed attempt's output (map: index file; reduce and single:
    /// the attempt's part file, renamed at commit).
    pub(crate) output: Option<PathBuf>,
    /// Where its attempts are in the job's attempt records (a heartbeat's
    /// progress report finds its attempt through them).
    #[serde(default)]
    pub(crate) attempts: Vec<usize>,
}

impl Task {
    pub(crate) fn new() -> Self {
        Task {
            state: TaskState::Pending,
            dispatched: 0,
            running: 0,
            failures: 0,
            lost: 0,
            last_error: None,
            failed_on: Vec::new(),
            speculated: false,
            output: None,
            attempts: Vec::new(),
        }
    }
}

/// What a job runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum JobKind {
    /// A job registered in the binary, by name.
    Typed(String),
    /// An original-style Python job script (its copy in the job folder).
    Script(PathBuf),
    /// Hadoop-Streaming commands.
    Streaming {
        mapper: String,
        reducer: String,
        combiner: String,
        files_dir: Option<PathBuf>,
    },
}

impl JobKind {
    /// The typed job's name; empty for scripts.
    pub(crate) fn name(&self) -> &str {
        match self {
            JobKind::Typed(name) => name,
            _ => "",
        }
    }

    pub(crate) fn script_path(&self) -> String {
        match self {
            JobKind::Script(p) => p.display().to_string(),
            _ => String::new(),
        }
    }
}

/// The job's folders on the shared folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobDirs {
    pub(crate) base: PathBuf,
    pub(crate) shuffle: PathBuf,
    pub(crate) out: PathBuf,
}

impl JobDirs {
    /// The folders of the job whose folder is `base`.
    pub(crate) fn under(base: PathBuf) -> Self {
        JobDirs {
            shuffle: gridmr_core::layout::shuffle_dir(&base),
            out: gridmr_core::layout::out_dir(&base),
            base,
        }
    }
}

/// When things happened. On disk only the submission time and the phase
/// times survive (instants mean nothing to another process): a clock read
/// back is frozen at those times.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(into = "ClockRecord", from = "ClockRecord")]
pub(crate) struct Clock {
    pub(crate) submitted: Option<Instant>,
    pub(crate) submitted_ms: u64,
    pub(crate) prepared: Option<Instant>,
    pub(crate) phase_start: [Option<Instant>; 3],
    pub(crate) phase_end: [Option<Instant>; 3],
    pub(crate) finished: Option<Instant>,
    /// The times of a clock read back from disk.
    pub(crate) frozen: Option<PhaseTimes>,
}

/// A [`Clock`] on disk.
#[derive(Serialize, Deserialize)]
struct ClockRecord {
    submitted_ms: u64,
    times: PhaseTimes,
}

impl From<Clock> for ClockRecord {
    fn from(c: Clock) -> Self {
        ClockRecord {
            submitted_ms: c.submitted_ms,
            times: c.times(),
        }
    }
}

impl From<ClockRecord> for Clock {
    fn from(r: ClockRecord) -> Self {
        Clock {
            submitted_ms: r.submitted_ms,
            frozen: Some(r.times),
            ..Clock::default()
        }
    }
}

fn phase_slot(p: Phase) -> usize {
    match p {
        Phase::Single => 0,
        Phase::Map => 1,
        Phase::Reduce => 2,
    }
}

impl Clock {
    pub(crate) fn start(&mut self, p: Phase) {
        self.phase_start[phase_slot(p)].get_or_insert_with(Instant::now);
    }

    pub(crate) fn end(&mut self, p: Phase) {
        self.phase_end[phase_slot(p)] = Some(Instant::now());
    }

    fn span(&self, p: Phase, now: Instant) -> Duration {
        let i = phase_slot(p);
        match self.phase_start[i] {
            Some(s) => self.phase_end[i]
                .unwrap_or(now)
                .saturating_duration_since(s),
            None => Duration::ZERO,
        }
    }

    pub(crate) fn times(&self) -> PhaseTimes {
        if let Some(t) = self.frozen {
            return t;
        }
        let now = Instant::now();
        let Some(submitted) = self.submitted else {
            return PhaseTimes::default();
        };
        let end = self.finished.unwrap_or(now);
        let total = end.saturating_duration_since(submitted);
        let prepare = self
            .prepared
            .map(|p| p.saturating_duration_since(submitted))
            .unwrap_or(total);
        let single = self.span(Phase::Single, end);
        let map = self.span(Phase::Map, end);
        let reduce = self.span(Phase::Reduce, end);
        let overhead = total.saturating_sub(prepare + single + map + reduce);
        PhaseTimes {
            t_total_s: total.as_secs_f64(),
            t_prepare_s: prepare.as_secs_f64(),
            t_single_s: single.as_secs_f64(),
            t_map_s: map.as_secs_f64(),
            t_reduce_s: reduce.as_secs_f64(),
            t_overhead_s: overhead.as_secs_f64(),
        }
    }
}

/// Everything the master knows about one job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) kind: JobKind,
    pub(crate) input_path: PathBuf,
    /// Inputs read after `input_path`.
    #[serde(default)]
    pub(crate) more_inputs: Vec<PathBuf>,
    /// The job's parameters: as submitted, then with what its planning hook
    /// added.
    #[serde(default)]
    pub(crate) params: Params,
    pub(crate) input_size: u64,
    pub(crate) mode: Mode,
    pub(crate) state: JobState,
    pub(crate) message: String,
    pub(crate) error: Option<String>,
    pub(crate) partitions_asked: u32,
    pub(crate) reduce_partitions: u32,
    pub(crate) dirs: JobDirs,
    pub(crate) shuffle: ShuffleSettings,
    pub(crate) splits: Vec<InputSplit>,
    pub(crate) single: Vec<Task>,
    pub(crate) maps: Vec<Task>,
    pub(crate) reduces: Vec<Task>,
    pub(crate) counters: Counters,
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) clock: Clock,
    pub(crate) result_file: Option<PathBuf>,
    /// The committed part files, in order (the output, when it was too
    /// large for `result.txt`).
    #[serde(default)]
    pub(crate) parts: Vec<PathBuf>,
    /// Longest a script task may run, seconds (0: the worker's default).
    pub(crate) timeout_s: u32,
    /// The last `reporter:status:` line of a committed attempt.
    pub(crate) task_status: Option<String>,
    /// A streaming job without reducers.
    pub(crate) map_only: bool,
    /// Added to every attempt number: a job run again after a master
    /// restart must not write where attempts of its earlier run, which
    /// workers may still be finishing, write.
    #[serde(default)]
    pub(crate) attempt_base: u32,
    /// Workers kept from this job after failing several of its attempts
    /// (Spark's `excludeOnFailure`).
    #[serde(default)]
    pub(crate) exclusions: BTreeMap<String, Exclusion>,
    /// How many tasks of each phase are in each state, kept by
    /// [`Job::set_task_state`] (derived: [`Job::recount`] rebuilds it), so
    /// no scheduling decision counts a phase's tasks.
    #[serde(skip)]
    pub(crate) tally: Tally,
    /// Per phase, where the search for a pending task starts: a hint (the
    /// search wraps around), lowered when a task goes back to pending.
    #[serde(skip)]
    pub(crate) next_pending: [usize; 3],
    /// The committed map outputs, as every reduce attempt is sent them:
    /// built once, shared by the reduce dispatches until a map is done or
    /// undone ([`Job::set_task_state`]).
    #[serde(skip)]
    pub(crate) reduce_inputs: Option<std::sync::Arc<Vec<String>>>,
    /// Since when (ms since the epoch) the job has had work to hand out, none running, and
    /// no live worker able to take it (`State::watch_for_workers`).
    #[serde(skip)]
    pub(crate) waiting_since_ms: Option<u64>,
    /// Attempts started or ended since the store last took them (`State::take_journal`).
    #[serde(skip)]
    pub(crate) journal: Vec<HistoryLine>,
}

/// Tasks per phase and state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally([[u32; 3]; 3]);

fn state_slot(s: TaskState) -> usize {
    match s {
        TaskState::Pending => 0,
        TaskState::Running => 1,
        TaskState::Done => 2,
    }
}

/// A worker's failed attempts in one job, and until when it is kept from it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Exclusion {
    pub(crate) failures: u32,
    /// Milliseconds since the Unix epoch; `None` while not excluded.
    pub(crate) until_ms: Option<u64>,
}

fn counts(tasks: &[Task]) -> TaskCounts {
    let mut c = TaskCounts {
        total: tasks.len() as u32,
        ..TaskCounts::default()
    };
    for t in tasks {
        match t.state {
            TaskState::Pending => c.pending += 1,
            TaskState::Running => c.running += 1,
            TaskState::Done => c.succeeded += 1,
        }
        c.failed_attempts += t.failures;
        c.lost_attempts += t.lost;
    }
    c
}

impl Job {
    /// Adds a started attempt (journaled); returns its record.
    pub(crate) fn start_attempt(&mut self, attempt: Attempt) -> usize {
        self.journal.push(HistoryLine {
            attempt: attempt.clone(),
            counters: None,
        });
        self.attempts.push(attempt);
        self.attempts.len() - 1
    }

    /// Ends attempt `record` (see [`Attempt::end`]), journaled with `counters` when it
    /// succeeded; `false` (and no change) when it had already ended.
    pub(crate) fn end_attempt(
        &mut self,
        record: usize,
        state: AttemptState,
        now_ms: u64,
        counters: Option<&Counters>,
    ) -> bool {
        let Some(attempt) = self.attempts.get_mut(record) else {
            return false;
        };
        if !attempt.end(state, now_ms) {
            return false;
        }
        self.journal.push(HistoryLine {
            attempt: attempt.clone(),
            counters: counters.cloned(),
        });
        true
    }

    /// Points the job's output paths into its own `out/` (after its folders were derived from
    /// its id): `result.txt` by that name, the parts by their file names, anything else
    /// dropped. A record read back from the share names no other file.
    pub(crate) fn rebase_output(&mut self) {
        use gridmr_core::commit::RESULT_FILE;
        let out = self.dirs.out.clone();
        if self.result_file.is_some() {
            self.result_file = Some(out.join(RESULT_FILE));
        }
        self.parts = std::mem::take(&mut self.parts)
            .into_iter()
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?;
                gridmr_core::layout::is_part_name(name).then(|| out.join(name))
            })
            .collect();
    }

    /// Tasks of `phase` in `state`.
    pub(crate) fn count(&self, phase: Phase, state: TaskState) -> usize {
        self.tally.0[phase_slot(phase)][state_slot(state)] as usize
    }

    /// Rebuilds the tally from the tasks (after tasks are made or loaded).
    pub(crate) fn recount(&mut self) {
        self.tally = self.counted();
        self.next_pending = [0; 3];
        self.reduce_inputs = None;
    }

    /// The tally, counted from the tasks.
    pub(crate) fn counted(&self) -> Tally {
        let mut t = Tally::default();
        for p in [Phase::Single, Phase::Map, Phase::Reduce] {
            for task in self.tasks(p) {
                t.0[phase_slot(p)][state_slot(task.state)] += 1;
            }
        }
        t
    }

    /// Moves task `index` of `phase` to `state`, keeping the tally.
    pub(crate) fn set_task_state(&mut self, phase: Phase, index: usize, state: TaskState) {
        let Some(task) = self.tasks_mut(phase).get_mut(index) else {
            return;
        };
        let old = std::mem::replace(&mut task.state, state);
        let counts = &mut self.tally.0[phase_slot(phase)];
        counts[state_slot(old)] = counts[state_slot(old)].saturating_sub(1);
        counts[state_slot(state)] += 1;
        if state == TaskState::Pending {
            let hint = &mut self.next_pending[phase_slot(phase)];
            *hint = (*hint).min(index);
        }
        // A map's output counts only while it is done.
        if phase == Phase::Map && (old == TaskState::Done || state == TaskState::Done) {
            self.reduce_inputs = None;
        }
    }

    /// The committed map outputs, as text, shared between dispatches.
    pub(crate) fn reduce_inputs(&mut self) -> std::sync::Arc<Vec<String>> {
        if let Some(r) = &self.reduce_inputs {
            return r.clone();
        }
        let r = std::sync::Arc::new(
            self.maps
                .iter()
                .filter_map(|t| t.output.as_ref().map(|p| p.display().to_string()))
                .collect::<Vec<_>>(),
        );
        self.reduce_inputs = Some(r.clone());
        r
    }

    pub(crate) fn tasks(&self, p: Phase) -> &[Task] {
        match p {
            Phase::Single => &self.single,
            Phase::Map => &self.maps,
            Phase::Reduce => &self.reduces,
        }
    }

    pub(crate) fn tasks_mut(&mut self, p: Phase) -> &mut Vec<Task> {
        match p {
            Phase::Single => &mut self.single,
            Phase::Map => &mut self.maps,
            Phase::Reduce => &mut self.reduces,
        }
    }

    pub(crate) fn phase_tasks(&self) -> PhaseTasks {
        PhaseTasks {
            single: counts(&self.single),
            map: counts(&self.maps),
            reduce: counts(&self.reduces),
        }
    }

    /// `result.txt`, or the part files when the output was too large for it.
    fn outputs(&self) -> Vec<String> {
        match &self.result_file {
            Some(file) => vec![file.display().to_string()],
            None => self.parts.iter().map(|p| p.display().to_string()).collect(),
        }
    }

    pub(crate) fn status(&self) -> JobStatus {
        JobStatus {
            job_id: self.id.clone(),
            status: self.state,
            mode: self.mode,
            message: self.message.clone(),
            outputs: self.outputs(),
            script_path: self.kind.script_path(),
            input_path: self.input_path.display().to_string(),
            inputs: self
                .more_inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            params: self.params.clone().into(),
            chunks_dir: self.dirs.base.join("chunks").display().to_string(),
            shuffle_dir: self.dirs.shuffle.display().to_string(),
            partitions: self.partitions_asked,
            map_splits: self.maps.len() as u32,
            reduce_partitions: self.reduce_partitions,
            job: self.kind.name().to_owned(),
            output_dir: self.dirs.out.display().to_string(),
            error: self.error.clone(),
            counters: self.counters.clone(),
            tasks: self.phase_tasks(),
            times: self.clock.times(),
            input_size_bytes: self.input_size,
            submitted_at_ms: self.clock.submitted_ms,
            task_status: self.task_status.clone(),
            excluded_workers: self.excluded_workers(super::state::now_ms()),
            progress: self.progress(),
        }
    }

    /// The best report among a task's running attempts.
    fn best_running(&self, task: &Task) -> Option<WorkDone> {
        task.attempts
            .iter()
            .filter_map(|&r| self.attempts.get(r))
            .filter(|a| a.is_running())
            .filter_map(|a| a.progress)
            .max_by(|a, b| a.fraction().total_cmp(&b.fraction()))
    }

    /// How far a phase has got: finished tasks whole, running ones by their
    /// best attempt. `size(i)` is task `i`'s work when it is known ahead
    /// (a map's split length), else its attempts' reports say.
    fn phase_progress(&self, phase: Phase, size: impl Fn(usize) -> Option<u64>) -> PhaseProgress {
        let tasks = self.tasks(phase);
        if tasks.is_empty() {
            return PhaseProgress::default();
        }
        let (mut fraction, mut done, mut total) = (0.0, 0u64, 0u64);
        for (i, t) in tasks.iter().enumerate() {
            let reported = || {
                t.attempts
                    .iter()
                    .rev()
                    .filter_map(|&r| self.attempts.get(r))
                    .find(|a| a.state == AttemptState::Succeeded)
                    .and_then(|a| a.progress)
            };
            match t.state {
                TaskState::Done => {
                    fraction += 1.0;
                    let n = size(i).or_else(|| reported().map(|w| w.total)).unwrap_or(0);
                    done += n;
                    total += n;
                }
                TaskState::Running => {
                    let best = self.best_running(t);
                    let f = best.map_or(0.0, |w| w.fraction());
                    fraction += f;
                    let n = size(i).or(best.map(|w| w.total)).unwrap_or(0);
                    total += n;
                    done += best.map_or(0, |w| w.done.min(n));
                }
                TaskState::Pending => total += size(i).unwrap_or(0),
            }
        }
        PhaseProgress {
            fraction: fraction / tasks.len() as f64,
            done,
            total,
        }
    }

    /// How far each phase has got.
    pub(crate) fn progress(&self) -> JobProgress {
        let splits = &self.splits;
        JobProgress {
            single: self.phase_progress(Phase::Single, |_| Some(self.input_size)),
            map: self.phase_progress(Phase::Map, |i| splits.get(i).map(|s| s.len())),
            reduce: self.phase_progress(Phase::Reduce, |_| None),
        }
    }

    pub(crate) fn summary(&self) -> JobSummary {
        JobSummary {
            job_id: self.id.clone(),
            status: self.state,
            mode: self.mode,
            message: self.message.clone(),
            outputs: self.outputs(),
            job: self.kind.name().to_owned(),
        }
    }

    pub(crate) fn metrics(&self) -> JobMetrics {
        JobMetrics {
            job_id: self.id.clone(),
            status: self.state,
            mode: self.mode,
            input_size_bytes: self.input_size,
            map_splits: self.maps.len() as u32,
            reduce_partitions: self.reduce_partitions,
            times: self.clock.times(),
        }
    }

    /// Whether `worker` is kept from this job at `now_ms`.
    pub(crate) fn is_excluded(&self, worker: &str, now_ms: u64) -> bool {
        self.exclusions
            .get(worker)
            .and_then(|e| e.until_ms)
            .is_some_and(|until| until > now_ms)
    }

    /// The workers kept from this job at `now_ms`.
    pub(crate) fn excluded_workers(&self, now_ms: u64) -> Vec<String> {
        self.exclusions
            .keys()
            .filter(|w| self.is_excluded(w, now_ms))
            .cloned()
            .collect()
    }

    /// Whether a new attempt may start (the job is running and not being
    /// committed).
    pub(crate) fn is_active(&self) -> bool {
        matches!(
            self.state,
            JobState::Prepared | JobState::Mapping | JobState::Reducing | JobState::Running
        )
    }

    /// The phase whose tasks may run now.
    pub(crate) fn runnable_phase(&self) -> Option<Phase> {
        if !self.is_active() {
            return None;
        }
        match self.mode {
            Mode::Single => Some(Phase::Single),
            Mode::Distributed => {
                if self.map_only {
                    Some(Phase::Map)
                } else if self.count(Phase::Map, TaskState::Done) == self.maps.len() {
                    Some(Phase::Reduce)
                } else {
                    Some(Phase::Map)
                }
            }
        }
    }
}
