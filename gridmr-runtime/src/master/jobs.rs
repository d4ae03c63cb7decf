//! The job store: every job's plan, tasks, attempts, counters and clock.
//!
//! Pure bookkeeping, no I/O and no async: the scheduler (in `state`) decides
//! with it, and the REST API reads it. A job serializes whole (the `store`
//! keeps finished jobs across master restarts).

use gridmr_core::input::InputSplit;
use gridmr_core::shuffle::ShuffleSettings;
use gridmr_core::Counters;
use gridmr_net::rest::{
    JobMetrics, JobState, JobStatus, JobSummary, Mode, PhaseTasks, PhaseTimes, TaskAttempt,
    TaskCounts,
};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The phases a task belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
            Phase::Single => "single".into(),
            Phase::Map => format!("map-{index:05}"),
            Phase::Reduce => format!("reduce-{index:05}"),
        }
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
    pub(crate) failures: u32,
    pub(crate) lost: u32,
    pub(crate) last_error: Option<String>,
    /// The committed attempt's output (map: index file; reduce and single:
    /// the attempt's part file, renamed at commit).
    pub(crate) output: Option<PathBuf>,
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
            output: None,
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
            shuffle: base.join("shuffle"),
            out: base.join("out"),
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
    pub(crate) attempts: Vec<TaskAttempt>,
    pub(crate) clock: Clock,
    pub(crate) result_file: Option<PathBuf>,
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

    fn outputs(&self) -> Vec<String> {
        self.result_file
            .iter()
            .map(|p| p.display().to_string())
            .collect()
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
                } else if self.maps.iter().all(|t| t.state == TaskState::Done) {
                    Some(Phase::Reduce)
                } else {
                    Some(Phase::Map)
                }
            }
        }
    }
}
