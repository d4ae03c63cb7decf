//! GridMR's scheduler: jobs, tasks, attempts and workers as one pure state
//! machine. Events go in with the time they happened; effects come out for
//! the caller (the master) to carry out: attempts to send, files to remove,
//! commits to run, workers to probe or tell. Nothing here reads a clock,
//! touches a file or awaits anything, which this crate's dependencies
//! (`gridmr-core`, `serde`, `tracing`) enforce.
//!
//! ```
//! use gridmr_scheduler::{Effect, Event, JobDirs, JobKind, JobRequest, Scheduler,
//!     SchedulerConfig, WorkerEntry};
//!
//! let mut s = Scheduler::new(SchedulerConfig::default(), 1);
//! let w1 = "w1".parse().unwrap();
//! s.handle(Event::WorkerRegistered(WorkerEntry::new(w1, "10.0.0.1:50051".into(), 2, 0)), 0);
//! let id = s.next_id();
//! let request = JobRequest::new(JobKind::Script("/share/jobs/job-000001/job.py".into()),
//!     "/share/input.txt".into());
//! s.handle(Event::Submitted { id: id.clone(), request: Box::new(request),
//!     dirs: JobDirs::under("/share/jobs/job-000001".into()), foreseen: None }, 10);
//! s.handle(Event::Preparing { job: id.clone() }, 11);
//! assert_eq!(s.job(&id).unwrap().state.as_str(), "PREPARING");
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod clock;
pub mod config;
pub mod error;
pub mod job;
pub mod lifecycle;
pub mod liveness;
mod median;
pub mod plan;
pub mod state;
pub mod tasks;
pub mod workers;

pub use clock::{Clock, PhaseTimes};
pub use config::{SchedulerConfig, SchedulerPolicy, MAX_TASK_ATTEMPTS_CAP};
pub use error::{CommitError, PlanError};
pub use job::{
    Attempt, AttemptError, AttemptState, HistoryLine, Job, JobDirs, JobKind, Phase, Task, TaskId,
    TaskState, WorkDone,
};
pub use lifecycle::{JobState, Mode};
pub use liveness::ProgressReport;
pub use plan::{plan, JobRequest, Plan};
pub use state::{
    expected_outputs, AttemptKey, CommitPlan, Dispatch, Effect, JobChanges, Observation, Outcome,
    Scheduler,
};
pub use tasks::MapOutputRef;
pub use workers::{Liveness, LossCause, WorkerEntry, Workers};

use gridmr_core::{JobId, WorkerId};
use std::path::PathBuf;

/// Something that happened, for [`Scheduler::handle`].
#[derive(Debug, Clone)]
pub enum Event {
    /// A job was accepted (QUEUED) with its folders.
    Submitted {
        /// Its id, from [`Scheduler::next_id`].
        id: JobId,
        /// What it asked for, checked.
        request: Box<JobRequest>,
        /// Its folders.
        dirs: JobDirs,
        /// The mode the master foresees from the input's size ([`plan::foresee`]);
        /// `None`: from the request alone. Planning decides for good.
        foreseen: Option<Mode>,
    },
    /// The master began listing a QUEUED job's input (PREPARING).
    Preparing {
        /// The job.
        job: JobId,
    },
    /// Its plan, or why there is none.
    Planned {
        /// The job.
        job: JobId,
        /// Its mode, splits and partitions.
        plan: Result<Plan, PlanError>,
    },
    /// A job taken back after a master restart, with the plan it had and
    /// the map outputs that survived (`kept[i]`: map `i`'s index file).
    Resumed {
        /// The job (added by [`Event::Submitted`] just before).
        job: JobId,
        /// Its plan as stored.
        plan: Plan,
        /// The map outputs kept.
        kept: Vec<Option<PathBuf>>,
    },
    /// An attempt ended, as its worker answered (or its call failed).
    AttemptEnded {
        /// The attempt.
        key: AttemptKey,
        /// The worker it ran on.
        worker: WorkerId,
        /// How it ended.
        outcome: Outcome,
    },
    /// A job's output commit finished.
    CommitDone {
        /// The job.
        job: JobId,
        /// What it committed, or why it could not.
        result: Result<gridmr_core::commit::Committed, CommitError>,
    },
    /// A worker registered (or registered again: its running attempts are lost).
    WorkerRegistered(WorkerEntry),
    /// A worker's heartbeat, with its progress reports.
    Heartbeat {
        /// The worker.
        worker: WorkerId,
        /// Its running attempts' progress.
        reports: Vec<ProgressReport>,
    },
    /// A worker was written off now.
    WorkerLost {
        /// The worker.
        worker: WorkerId,
        /// Why.
        cause: LossCause,
    },
    /// A worker that sends no heartbeats answered a probe.
    Probed {
        /// The worker.
        worker: WorkerId,
    },
    /// A client cancelled a job (its record stays).
    Cancel {
        /// The job.
        job: JobId,
    },
    /// A client deleted a job (it is forgotten).
    Delete {
        /// The job.
        job: JobId,
    },
    /// The scheduling pass (the master runs one after every event and on a
    /// short timer): silent workers expire, free slots get attempts, starved
    /// jobs say so (or fail), ended jobs past retention are retired.
    Tick,
}

impl Scheduler {
    /// Handles one event at `now_ms` (milliseconds on the caller's clock;
    /// an earlier time than the last event's counts as that one's) and
    /// returns what the caller must do. Only [`Event::Tick`] hands out
    /// attempts ([`Effect::Dispatch`]), so a burst of events costs one pass.
    pub fn handle(&mut self, event: Event, now_ms: u64) -> Vec<Effect> {
        self.now = self.now.max(now_ms);
        let mut effects = match event {
            Event::Submitted {
                id,
                request,
                dirs,
                foreseen,
            } => {
                let job = self.add_job(id, *request, dirs);
                if let Some(mode) = foreseen {
                    job.mode = mode;
                }
                Vec::new()
            }
            Event::Preparing { job } => {
                self.start_preparing(&job);
                Vec::new()
            }
            Event::Planned { job, plan } => {
                self.prepared(&job, plan);
                Vec::new()
            }
            Event::Resumed { job, plan, kept } => {
                self.resume(&job, plan, kept);
                Vec::new()
            }
            Event::AttemptEnded {
                key,
                worker,
                outcome,
            } => self.complete(&key, &worker, outcome),
            Event::CommitDone { job, result } => self.committed(&job, result),
            Event::WorkerRegistered(entry) => self.register(entry),
            Event::Heartbeat { worker, reports } => {
                self.heartbeat(&worker, &reports);
                Vec::new()
            }
            Event::WorkerLost { worker, cause } => self.worker_lost(&worker, cause),
            Event::Probed { worker } => {
                self.probed(&worker);
                Vec::new()
            }
            Event::Cancel { job } => self.cancel(&job).map(|(_, e)| e).unwrap_or_default(),
            Event::Delete { job } => self.delete(&job),
            Event::Tick => {
                let mut effects = self.expire_workers();
                effects.extend(self.schedule().into_iter().map(Effect::Dispatch));
                effects.extend(self.watch_for_workers());
                effects.extend(self.retire());
                effects
            }
        };
        let mut out = std::mem::take(&mut self.outbox);
        out.append(&mut effects);
        out
    }
}
