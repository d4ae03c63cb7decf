//! Worker liveness, and the one answer to "what happens when a worker is
//! lost": every path that writes a worker off (silence past the timeout, a
//! failed call or probe, a registration of a restarted process) goes
//! through [`Scheduler::worker_lost`] or [`Scheduler::expire_workers`], and
//! its running attempts end as *lost* through [`Scheduler::complete`], where
//! they are charged to `MAX_TASK_LOSSES` only and their tasks go back to
//! the queue. A worker comes back by registering again (or, one that sends
//! no heartbeats, by answering a probe); a heartbeat from a worker the
//! master wrote off also revives it, as its next attempts will tell.

use crate::job::Phase;
use crate::job::{TaskId, TaskState, WorkDone};
use crate::lifecycle::JobState;
use crate::state::{Effect, Outcome, Scheduler};
use crate::workers::{Liveness, LossCause, WorkerEntry};
use gridmr_core::shuffle::ShuffleMode;
use gridmr_core::{JobId, WorkerId};

/// Most progress reports one heartbeat may carry.
const MAX_PROGRESS_REPORTS: usize = 4096;

/// A worker's report on one running attempt (in its heartbeat).
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressReport {
    /// The attempt's job.
    pub job_id: JobId,
    /// Its task.
    pub task: TaskId,
    /// Its number.
    pub attempt: u32,
    /// How far it has got.
    pub work: WorkDone,
}

impl Scheduler {
    /// Registers (or re-registers) a worker. A worker that registers again
    /// while the master has attempts running on it was restarted: those
    /// attempts are lost.
    pub(crate) fn register(&mut self, entry: WorkerEntry) -> Vec<Effect> {
        let id = entry.id.clone();
        let effects = self.lose_attempts_on(&id, LossCause::Restarted.why());
        self.workers.upsert(entry);
        effects
    }

    /// A heartbeat (an unknown worker's changes nothing): the worker is
    /// alive, and its progress reports land on their attempts.
    pub(crate) fn heartbeat(&mut self, id: &str, reports: &[ProgressReport]) {
        let now = self.now;
        let Some(w) = self.workers.get_mut(id) else {
            return;
        };
        w.touch(now);
        w.heartbeats = true;
        self.progress(id, reports);
    }

    /// Takes a worker's progress reports: each lands on its attempt if that
    /// attempt still runs, on that worker (a stale or forged report changes
    /// nothing).
    fn progress(&mut self, worker_id: &str, reports: &[ProgressReport]) {
        for r in reports.iter().take(MAX_PROGRESS_REPORTS) {
            let task = r.task;
            let Some(job) = self.job_mut(&r.job_id) else {
                continue;
            };
            let Some(records) = job
                .tasks(task.phase)
                .get(task.index as usize)
                .map(|t| t.attempts.clone())
            else {
                continue;
            };
            for i in records {
                if let Some(a) = job.attempts.get_mut(i) {
                    if a.number == r.attempt && a.worker == worker_id && a.is_running() {
                        a.progress = Some(r.work);
                    }
                }
            }
        }
    }

    /// A worker that sends no heartbeats answered the master's probe.
    pub(crate) fn probed(&mut self, id: &str) {
        let now = self.now;
        if let Some(w) = self.workers.get_mut(id) {
            w.touch(now);
        }
    }

    /// Declares silent workers dead and requeues their attempts; asks for
    /// probes of those that never send heartbeats.
    pub(crate) fn expire_workers(&mut self) -> Vec<Effect> {
        let now = self.now;
        let timeout = self.config.worker_timeout_ms;
        let (dead, probe, stalled) = self.workers.expire(timeout, now);
        if let Some(gap) = stalled {
            // Attempts ran on while the master did not look: none is a straggler for that.
            self.speculation_held_until_ms = now.saturating_add(gap);
            tracing::warn!(
                stalled_s = gap as f64 / 1000.0,
                "the master did not run for a while (stopped, paused or starved of CPU); \
                 workers get a fresh heartbeat window instead of being declared dead"
            );
        }
        let mut effects = Vec::new();
        for id in dead {
            tracing::warn!(worker = %id, "worker missed its heartbeats; its tasks go back to the queue");
            effects.extend(self.lose_attempts_on(&id, LossCause::Silent.why()));
            self.lose_outputs_on(&id, LossCause::Silent.why());
        }
        for worker_id in probe {
            effects.push(Effect::Probe { worker_id });
        }
        effects
    }

    /// Says so, in the job's message and the log, when a job has work to hand out, nothing
    /// running, and no live worker able to take it ("waiting for workers: 0 alive"), and fails
    /// it once that has lasted `WAIT_FOR_WORKERS_S` (when not 0).
    pub(crate) fn watch_for_workers(&mut self) -> Vec<Effect> {
        let now_ms = self.now;
        let limit_ms = self.config.wait_for_workers_s.saturating_mul(1000);
        let alive = self.workers.live().count();
        let mut expired = Vec::new();
        for (seq, job) in self.jobs.iter_mut() {
            let Some(phase) = job.runnable_phase() else {
                job.waiting_since_ms = None;
                continue;
            };
            let name = job.kind.name();
            let starved = job.count(phase, TaskState::Pending) > 0
                && job.count(phase, TaskState::Running) == 0
                && !self.workers.live().any(|w| w.can_run(name));
            match (starved, job.waiting_since_ms) {
                (true, None) => {
                    job.waiting_since_ms = Some(now_ms);
                    let message = if alive > 0 && !name.is_empty() {
                        format!("waiting for workers: {alive} alive, none has the job {name}")
                    } else {
                        format!("waiting for workers: {alive} alive")
                    };
                    job.say(message);
                    self.touched.insert(*seq);
                    tracing::warn!(job = %job.id, alive, wait_limit_s = limit_ms / 1000,
                        "{}", job.message);
                }
                (true, Some(since)) if limit_ms > 0 && now_ms.saturating_sub(since) >= limit_ms => {
                    expired.push((job.id.clone(), job.message.clone()));
                }
                (false, Some(_)) => {
                    job.waiting_since_ms = None;
                    job.say(format!("{alive} worker(s) alive; running again"));
                    self.touched.insert(*seq);
                    tracing::info!(job = %job.id, alive, "workers are back for the job");
                }
                _ => {}
            }
        }
        let mut effects = Vec::new();
        for (id, waiting) in expired {
            let error = format!(
                "no worker could run the job for WAIT_FOR_WORKERS_S = {} s ({waiting})",
                limit_ms / 1000
            );
            effects.extend(self.end_job(&id, Some(error)));
        }
        effects
    }

    /// Writes a worker off now for `cause` (a call or probe failed, or it
    /// restarted); its running attempts are lost.
    pub(crate) fn worker_lost(&mut self, id: &WorkerId, cause: LossCause) -> Vec<Effect> {
        if let Some(w) = self.workers.get_mut(id) {
            if w.is_alive() {
                tracing::warn!(worker = %id, why = cause.why(), "worker lost; its tasks go back to the queue");
                w.liveness = Liveness::Dead(cause);
            }
        }
        let effects = self.lose_attempts_on(id, cause.why());
        self.lose_outputs_on(id, cause.why());
        effects
    }

    /// `SHUFFLE=local`: the map outputs a lost worker kept are lost with it.
    /// Every job whose reduces still need them runs those maps again (not
    /// charged to them, as Hadoop re-runs the completed maps of a lost node);
    /// a job whose reduces are all done needs none. A worker that restarts
    /// with its folder is not lost this way: it registers again and serves
    /// what it kept, and a reduce that still cannot fetch an output reports
    /// it lost.
    fn lose_outputs_on(&mut self, worker_id: &WorkerId, why: &str) {
        let now = self.now;
        for (seq, job) in self.jobs.iter_mut() {
            let reduced = job.table.len(Phase::Reduce) > 0 && job.table.all_done(Phase::Reduce);
            let needed = job.shuffle_mode == ShuffleMode::Local
                && !job.map_only
                && job.is_active()
                && !reduced;
            if !needed {
                continue;
            }
            let held = job.table.maps_held_by(worker_id);
            if held.is_empty() {
                continue;
            }
            for &map in &held {
                job.table.undo(Phase::Map, map);
            }
            tracing::warn!(job = %job.id, worker = %worker_id, maps = held.len(),
                "the worker that kept these map outputs was lost; running the maps again");
            let _ = job.transition(
                JobState::Mapping,
                format!(
                    "worker {worker_id} was lost ({why}) with {} map output(s); running them again",
                    held.len()
                ),
                now,
            );
            self.touched.insert(*seq);
        }
    }

    fn lose_attempts_on(&mut self, worker_id: &WorkerId, why: &str) -> Vec<Effect> {
        let mut keys = Vec::new();
        for job in self.jobs.values() {
            for (record, a) in job.attempts.iter().enumerate() {
                if a.is_running() && a.worker == *worker_id {
                    keys.push(Self::key_of(&job.id, record, a));
                }
            }
        }
        let mut effects = Vec::new();
        for key in keys {
            effects.extend(self.complete(&key, worker_id, Outcome::Lost(why.to_owned())));
        }
        effects
    }
}
