//! A job as the scheduler keeps it: its plan, tasks, attempts, counters and
//! clock.
//!
//! Pure bookkeeping, no I/O: the scheduler decides with it, and the master's
//! REST API shows views of it. A job serializes whole (the master's store
//! keeps ended jobs across restarts; the field names are that record's).

use crate::clock::Clock;
use crate::lifecycle::{JobState, Mode};
use gridmr_core::input::InputSplit;
use gridmr_core::shuffle::{ShuffleMode, ShuffleSettings};
use gridmr_core::{Counters, JobId, Params, WorkerId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub use gridmr_core::ids::{Phase, TaskId};

/// Why an attempt failed. The variant decides whether the failure counts
/// against `MAX_TASK_ATTEMPTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptError {
    /// The job's code or its input failed (with the stderr tail).
    Task(String),
    /// The worker could not run it, or answered with something unusable.
    Engine(String),
    /// It ran past its timeout.
    Timeout(String),
    /// A map output it read is missing or damaged: that map runs again, and
    /// the reduce is not charged.
    MapOutputLost {
        /// The map whose output it was.
        map: u32,
        /// The index file the reduce could not read (the map runs again
        /// only while that is still its output).
        lost: PathBuf,
        /// What the reduce said.
        message: String,
    },
}

impl AttemptError {
    /// Its message (the stderr tail, the worker's words).
    pub fn message(&self) -> &str {
        match self {
            AttemptError::Task(m) | AttemptError::Engine(m) | AttemptError::Timeout(m) => m,
            AttemptError::MapOutputLost { message, .. } => message,
        }
    }

    /// The same error with its message passed through `f`.
    pub fn map_message(self, f: impl FnOnce(String) -> String) -> Self {
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
    pub fn kind(&self) -> &'static str {
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
pub enum AttemptState {
    /// Still running.
    Running,
    /// Its output is the task's (kept on the [`Task`]).
    Succeeded,
    /// It failed ([`AttemptError`] says whose fault).
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
    pub fn as_str(&self) -> &'static str {
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
#[serde(into = "AttemptRecord", try_from = "AttemptRecord")]
pub struct Attempt {
    /// Its task.
    pub task: TaskId,
    /// 1, 2, … (plus the job's `attempt_base` after a master restart).
    pub number: u32,
    /// The worker it runs on.
    pub worker: WorkerId,
    /// When it started (ms, the caller's clock).
    pub started_ms: u64,
    /// When it ended.
    pub finished_ms: Option<u64>,
    /// Where it is.
    pub state: AttemptState,
    /// The last progress its worker reported.
    pub progress: Option<WorkDone>,
    /// What its worker reported after it had ended (a late result, never used).
    pub late: Option<String>,
}

impl Attempt {
    /// Whether it has not ended.
    pub fn is_running(&self) -> bool {
        self.state == AttemptState::Running
    }

    /// Moves a running attempt to `state`; `false` (and no change) when it
    /// had already ended.
    pub fn end(&mut self, state: AttemptState, now_ms: u64) -> bool {
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
pub struct HistoryLine {
    /// The attempt, as it started or ended.
    pub attempt: Attempt,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Its counters, when it succeeded.
    pub counters: Option<Counters>,
}

/// An attempt as the store writes it (the REST API's `TaskAttempt` has the
/// same fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// `single`, `map-NNNNN` or `reduce-NNNNN`.
    pub task: String,
    /// The attempt's number.
    pub attempt: u32,
    /// The worker it ran on.
    pub worker_id: String,
    /// When it started, ms since the Unix epoch.
    pub started_ms: u64,
    /// When it ended.
    pub finished_ms: Option<u64>,
    /// [`AttemptState::as_str`].
    pub outcome: String,
    /// Why it failed, was lost or was killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whose fault a failure was ([`AttemptError::kind`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Its last progress report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<WorkDone>,
    /// What its worker reported after it had ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late: Option<String>,
}

/// A stored attempt record whose task or worker is no identity.
pub use gridmr_core::ids::BadId as BadRecord;

/// Work done and to do, as a worker reports it for a running attempt. A map
/// or SINGLE attempt counts input bytes; a reduce attempt shuffle records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkDone {
    /// Work done.
    pub done: u64,
    /// Work to do, in the same unit (0 while unknown).
    pub total: u64,
    /// Records handled.
    pub records: u64,
}

impl WorkDone {
    /// `done / total`, at most 1 (0 while the total is unknown).
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            (self.done as f64 / self.total as f64).min(1.0)
        }
    }
}

impl From<Attempt> for AttemptRecord {
    fn from(a: Attempt) -> Self {
        let (error, kind) = match &a.state {
            AttemptState::Failed(e) => (Some(e.message().to_owned()), Some(e.kind().to_owned())),
            AttemptState::Lost(m) | AttemptState::Killed(m) => (Some(m.clone()), None),
            _ => (None, None),
        };
        AttemptRecord {
            task: a.task.name(),
            attempt: a.number,
            worker_id: a.worker.to_string(),
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

impl TryFrom<AttemptRecord> for Attempt {
    type Error = BadRecord;

    fn try_from(t: AttemptRecord) -> Result<Self, BadRecord> {
        let task: TaskId = t.task.parse()?;
        let worker: WorkerId = t.worker_id.parse()?;
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
            worker,
            started_ms: t.started_ms,
            finished_ms: t.finished_ms,
            state,
            progress: t.progress,
            late: t.late,
        })
    }
}

pub use crate::tasks::{Tally, Task, TaskState, TaskTable};

/// What a job runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobKind {
    /// A job registered in the binary, by name.
    Typed(String),
    /// An original-style Python job script (its copy in the job folder).
    Script(PathBuf),
    /// Hadoop-Streaming commands.
    Streaming {
        /// The map command.
        mapper: String,
        /// The reduce command (empty: none).
        reducer: String,
        /// The combiner command (empty: none).
        combiner: String,
        /// Its `-files`, copied into the job folder.
        files_dir: Option<PathBuf>,
    },
}

impl JobKind {
    /// The typed job's name; empty for scripts.
    pub fn name(&self) -> &str {
        match self {
            JobKind::Typed(name) => name,
            _ => "",
        }
    }

    /// The script's path; empty for other kinds.
    pub fn script_path(&self) -> String {
        match self {
            JobKind::Script(p) => p.display().to_string(),
            _ => String::new(),
        }
    }
}

/// The job's folders on the shared folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobDirs {
    /// The job's folder.
    pub base: PathBuf,
    /// Its map outputs (`shuffle/`).
    pub shuffle: PathBuf,
    /// Its output (`out/`).
    pub out: PathBuf,
}

impl JobDirs {
    /// The folders of the job whose folder is `base`.
    pub fn under(base: PathBuf) -> Self {
        JobDirs {
            shuffle: gridmr_core::layout::shuffle_dir(&base),
            out: gridmr_core::layout::out_dir(&base),
            base,
        }
    }
}

/// Everything the master knows about one job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// Its id (`job-000001`).
    pub id: JobId,
    /// What it runs.
    pub kind: JobKind,
    /// Its first input.
    pub input_path: PathBuf,
    /// Inputs read after `input_path`.
    #[serde(default)]
    pub more_inputs: Vec<PathBuf>,
    /// The job's parameters: as submitted, then with what its planning hook
    /// added.
    #[serde(default)]
    pub params: Params,
    /// Its inputs' bytes.
    pub input_size: u64,
    /// SINGLE or DISTRIBUTED (from its plan).
    pub mode: Mode,
    /// Where it is in its lifecycle (changed only by [`Job::transition`]).
    pub state: JobState,
    /// What it is doing, in words.
    pub message: String,
    /// Why it failed.
    pub error: Option<String>,
    /// The original's `partitions`, as asked (0: not asked).
    pub partitions_asked: u32,
    /// Its reduce tasks.
    pub reduce_partitions: u32,
    /// Its folders.
    pub dirs: JobDirs,
    /// The map side's buffer, spill and compression settings.
    pub shuffle: ShuffleSettings,
    /// Its map tasks' splits.
    pub splits: Vec<InputSplit>,
    /// Its tasks (stored as `single`, `maps` and `reduces`).
    #[serde(flatten)]
    pub table: TaskTable,
    /// The counters of its successful attempts, merged.
    pub counters: Counters,
    /// Every attempt, in the order they started.
    pub attempts: Vec<Attempt>,
    /// When things happened.
    pub clock: Clock,
    /// Its `result.txt`, once committed (none when the output was too large).
    pub result_file: Option<PathBuf>,
    /// The committed part files, in order (the output, when it was too
    /// large for `result.txt`).
    #[serde(default)]
    pub parts: Vec<PathBuf>,
    /// Longest a script task may run, seconds (0: the worker's default).
    pub timeout_s: u32,
    /// The last `reporter:status:` line of a committed attempt.
    pub task_status: Option<String>,
    /// A streaming job without reducers.
    pub map_only: bool,
    /// Where its map outputs are kept (`SHUFFLE`).
    #[serde(default)]
    pub shuffle_mode: ShuffleMode,
    /// Its output's object-store prefix, when its output does not go to its folder.
    #[serde(default)]
    pub output_url: Option<String>,
    /// Added to every attempt number: a job run again after a master
    /// restart must not write where attempts of its earlier run, which
    /// workers may still be finishing, write.
    #[serde(default)]
    pub attempt_base: u32,
    /// Workers kept from this job after failing several of its attempts
    /// (Spark's `excludeOnFailure`).
    #[serde(default)]
    pub exclusions: BTreeMap<WorkerId, Exclusion>,
    /// Since when (ms since the epoch) the job has had work to hand out, none running, and
    /// no live worker able to take it (`State::watch_for_workers`).
    #[serde(skip)]
    pub waiting_since_ms: Option<u64>,
    /// Per phase, the running median of its successful attempts' durations (built from the
    /// attempts at the first look, then kept by [`Job::end_attempt`]).
    #[serde(skip)]
    pub(crate) durations: [Option<crate::median::Median>; 3],
    /// Attempts started or ended since the store last took them (`State::take_journal`).
    #[serde(skip)]
    pub journal: Vec<HistoryLine>,
}

/// A worker's failed attempts in one job, and until when it is kept from it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    /// Failed attempts that count against `MAX_TASK_ATTEMPTS`.
    pub failures: u32,
    /// Milliseconds since the Unix epoch; `None` while not excluded.
    pub until_ms: Option<u64>,
}

impl Job {
    /// Adds a started attempt (journaled); returns its record.
    pub fn start_attempt(&mut self, attempt: Attempt) -> usize {
        self.journal.push(HistoryLine {
            attempt: attempt.clone(),
            counters: None,
        });
        self.attempts.push(attempt);
        self.attempts.len() - 1
    }

    /// Ends attempt `record` (see [`Attempt::end`]), journaled with `counters` when it
    /// succeeded; `false` (and no change) when it had already ended.
    pub fn end_attempt(
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
        if attempt.state == AttemptState::Succeeded {
            let took = now_ms.saturating_sub(attempt.started_ms);
            if let Some(m) = &mut self.durations[attempt.task.phase.slot()] {
                m.push(took);
            }
        }
        self.journal.push(HistoryLine {
            attempt: attempt.clone(),
            counters: counters.cloned(),
        });
        true
    }

    /// The median duration of `phase`'s successful attempts (ms); `None` before the first.
    pub(crate) fn median_ms(&mut self, phase: Phase) -> Option<u64> {
        let attempts = &self.attempts;
        self.durations[phase.slot()]
            .get_or_insert_with(|| {
                let mut m = crate::median::Median::default();
                for a in attempts
                    .iter()
                    .filter(|a| a.task.phase == phase && a.state == AttemptState::Succeeded)
                {
                    if let Some(f) = a.finished_ms {
                        m.push(f.saturating_sub(a.started_ms));
                    }
                }
                m
            })
            .get()
    }

    /// Points the job's output paths into its own `out/` (after its folders were derived from
    /// its id): `result.txt` by that name, the parts by their file names, anything else
    /// dropped. A record read back from the share names no other file.
    pub fn rebase_output(&mut self) {
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
    pub fn count(&self, phase: Phase, state: TaskState) -> usize {
        self.table.count(phase, state)
    }

    /// The committed map outputs, as text, shared between dispatches.
    pub fn reduce_inputs(&mut self) -> std::sync::Arc<Vec<crate::tasks::MapOutputRef>> {
        self.table.reduce_inputs()
    }

    /// The tasks of `p`.
    pub fn tasks(&self, p: Phase) -> &[Task] {
        self.table.tasks(p)
    }

    /// Whether `worker` is kept from this job at `now_ms`.
    pub fn is_excluded(&self, worker: &str, now_ms: u64) -> bool {
        self.exclusions
            .get(worker)
            .and_then(|e| e.until_ms)
            .is_some_and(|until| until > now_ms)
    }

    /// The workers kept from this job at `now_ms`.
    pub fn excluded_workers(&self, now_ms: u64) -> Vec<WorkerId> {
        self.exclusions
            .keys()
            .filter(|w| self.is_excluded(w, now_ms))
            .cloned()
            .collect()
    }

    /// Whether a new attempt may start (the job is running and not being
    /// committed).
    pub fn is_active(&self) -> bool {
        self.state.is_active()
    }

    /// The phase whose tasks may run now.
    pub fn runnable_phase(&self) -> Option<Phase> {
        if !self.is_active() {
            return None;
        }
        match self.mode {
            Mode::Single => Some(Phase::Single),
            Mode::Distributed => {
                if self.map_only {
                    Some(Phase::Map)
                } else if self.table.all_done(Phase::Map) {
                    Some(Phase::Reduce)
                } else {
                    Some(Phase::Map)
                }
            }
        }
    }
}
