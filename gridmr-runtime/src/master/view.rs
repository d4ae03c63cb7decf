//! The REST API's views of the scheduler's records: a job's status,
//! summary and metrics, a worker's info and an attempt's row, built when a
//! client asks (the scheduler keeps none of these shapes).

use super::clock;
use gridmr_net::rest::{
    JobMetrics, JobProgress, JobStatus, JobSummary, PhaseProgress, PhaseTasks, TaskAttempt,
    TaskCounts, WorkerInfo,
};
use gridmr_scheduler::job::AttemptRecord;
use gridmr_scheduler::{
    Attempt, AttemptState, Job, JobState, Mode, Phase, PhaseTimes, Task, TaskState, WorkDone,
    WorkerEntry,
};

/// The REST form of a job's state (same names).
pub(crate) fn rest_state(s: JobState) -> gridmr_net::rest::JobState {
    use gridmr_net::rest::JobState as R;
    match s {
        JobState::Queued => R::Queued,
        JobState::Preparing => R::Preparing,
        JobState::Prepared => R::Prepared,
        JobState::Mapping => R::Mapping,
        JobState::Reducing => R::Reducing,
        JobState::Running => R::Running,
        JobState::Succeeded => R::Succeeded,
        JobState::Failed => R::Failed,
        JobState::Cancelled => R::Cancelled,
    }
}

/// The REST form of a job's mode.
pub(crate) fn rest_mode(m: Mode) -> gridmr_net::rest::Mode {
    match m {
        Mode::Single => gridmr_net::rest::Mode::Single,
        Mode::Distributed => gridmr_net::rest::Mode::Distributed,
    }
}

fn times(t: PhaseTimes) -> gridmr_net::rest::PhaseTimes {
    gridmr_net::rest::PhaseTimes {
        t_total_s: t.t_total_s,
        t_prepare_s: t.t_prepare_s,
        t_single_s: t.t_single_s,
        t_map_s: t.t_map_s,
        t_reduce_s: t.t_reduce_s,
        t_overhead_s: t.t_overhead_s,
    }
}

/// The REST form of a progress report.
pub(crate) fn work(w: WorkDone) -> gridmr_net::rest::WorkDone {
    gridmr_net::rest::WorkDone {
        done: w.done,
        total: w.total,
        records: w.records,
    }
}

/// The scheduler's form of a worker's progress report.
pub(crate) fn work_of(w: gridmr_net::rest::WorkDone) -> WorkDone {
    WorkDone {
        done: w.done,
        total: w.total,
        records: w.records,
    }
}

/// An attempt's row in `GET /jobs/{id}/tasks`.
pub(crate) fn attempt_row(a: &Attempt) -> TaskAttempt {
    use gridmr_net::rest::{AttemptOutcome as O, FailureKind as K};
    use gridmr_scheduler::AttemptError as E;
    let (outcome, kind) = match &a.state {
        AttemptState::Running => (O::Running, None),
        AttemptState::Succeeded => (O::Succeeded, None),
        AttemptState::Failed(e) => (
            O::Failed,
            Some(match e {
                E::Task(_) => K::Task,
                E::Engine(_) => K::Engine,
                E::Timeout(_) => K::Timeout,
                E::MapOutputLost { .. } => K::MapOutputLost,
            }),
        ),
        AttemptState::Lost(_) => (O::Lost, None),
        AttemptState::Killed(_) => (O::Killed, None),
        AttemptState::Superseded => (O::Superseded, None),
        AttemptState::Unknown => (O::Unknown, None),
    };
    let r = AttemptRecord::from(a.clone());
    TaskAttempt {
        task: r.task,
        attempt: r.attempt,
        worker_id: r.worker_id,
        started_ms: r.started_ms,
        finished_ms: r.finished_ms,
        error: r.error,
        kind,
        // A succeeded attempt did all of its work, whatever its last report said before it
        // ended (reports come every few hundred milliseconds).
        progress: r
            .progress
            .map(|p| match outcome {
                O::Succeeded => {
                    let all = p.total.max(p.done).max(1);
                    WorkDone {
                        done: all,
                        total: all,
                        ..p
                    }
                }
                _ => p,
            })
            .map(work),
        outcome,
        late: r.late,
    }
}

/// A worker's row in `GET /workers`.
pub(crate) fn worker_info(w: &WorkerEntry) -> WorkerInfo {
    WorkerInfo {
        address: w.address.clone(),
        last_seen: clock::unix_s(w.last_seen_ms),
        slots: w.slots,
        running: w.running,
        alive: w.is_alive(),
        jobs: w.jobs.clone(),
        build: w.build.clone(),
        host: None,
    }
}

fn counts(tasks: &[Task]) -> TaskCounts {
    let mut c = TaskCounts {
        total: tasks.len() as u32,
        ..TaskCounts::default()
    };
    for t in tasks {
        match t.state() {
            TaskState::Pending => c.pending += 1,
            TaskState::Running => c.running += 1,
            TaskState::Done => c.succeeded += 1,
        }
        c.failed_attempts += t.failures;
        c.lost_attempts += t.lost;
    }
    c
}

/// The REST views of a job.
pub(crate) trait JobView {
    /// `GET /jobs/{id}`.
    fn status(&self) -> JobStatus;
    /// A row of `GET /jobs`.
    fn summary(&self) -> JobSummary;
    /// A row of `GET /metrics/jobs`.
    fn metrics(&self) -> JobMetrics;
}

impl JobView for Job {
    fn status(&self) -> JobStatus {
        V(self).status()
    }

    fn summary(&self) -> JobSummary {
        V(self).summary()
    }

    fn metrics(&self) -> JobMetrics {
        V(self).metrics()
    }
}

/// A job seen through its views (the methods below read it as `self`).
struct V<'a>(&'a Job);

impl std::ops::Deref for V<'_> {
    type Target = Job;

    fn deref(&self) -> &Job {
        self.0
    }
}

impl V<'_> {
    fn phase_tasks(&self) -> PhaseTasks {
        PhaseTasks {
            single: counts(self.tasks(Phase::Single)),
            map: counts(self.tasks(Phase::Map)),
            reduce: counts(self.tasks(Phase::Reduce)),
        }
    }

    /// `result.txt`, or the part files when the output was too large for it.
    fn outputs(&self) -> Vec<String> {
        match &self.result_file {
            Some(file) => vec![file.display().to_string()],
            None => self.parts.iter().map(|p| p.display().to_string()).collect(),
        }
    }

    fn status(&self) -> JobStatus {
        let now = clock::now_ms();
        JobStatus {
            job_id: self.id.to_string(),
            status: rest_state(self.state),
            mode: rest_mode(self.mode),
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
            shuffle_mode: self.shuffle_mode.to_string(),
            // A SINGLE job runs as one partition, whatever was asked (as the original reported).
            partitions: match self.mode {
                Mode::Single => 1,
                Mode::Distributed => self.partitions_asked,
            },
            map_splits: self.table.len(Phase::Map) as u32,
            reduce_partitions: self.reduce_partitions,
            job: self.kind.name().to_owned(),
            output_dir: match &self.output_url {
                Some(url) => url.clone(),
                None => self.dirs.out.display().to_string(),
            },
            error: self.error.clone(),
            counters: self.counters.clone(),
            tasks: self.phase_tasks(),
            times: times(self.clock.times(now)),
            input_size_bytes: self.input_size,
            submitted_at_ms: self.clock.submitted_ms,
            task_status: self.task_status.clone(),
            excluded_workers: self
                .excluded_workers(now)
                .iter()
                .map(ToString::to_string)
                .collect(),
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
            match t.state() {
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
    fn progress(&self) -> JobProgress {
        let splits = &self.splits;
        JobProgress {
            single: self.phase_progress(Phase::Single, |_| Some(self.input_size)),
            map: self.phase_progress(Phase::Map, |i| splits.get(i).map(|s| s.len())),
            reduce: self.phase_progress(Phase::Reduce, |_| None),
        }
    }

    fn summary(&self) -> JobSummary {
        JobSummary {
            job_id: self.id.to_string(),
            status: rest_state(self.state),
            mode: rest_mode(self.mode),
            message: self.message.clone(),
            outputs: self.outputs(),
            job: self.kind.name().to_owned(),
        }
    }

    fn metrics(&self) -> JobMetrics {
        let now = clock::now_ms();
        JobMetrics {
            job_id: self.id.to_string(),
            status: rest_state(self.state),
            mode: rest_mode(self.mode),
            input_size_bytes: self.input_size,
            map_splits: self.table.len(Phase::Map) as u32,
            reduce_partitions: self.reduce_partitions,
            times: times(self.clock.times(now)),
        }
    }
}
