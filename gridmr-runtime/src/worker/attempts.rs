//! The attempts running on this worker, in one registry keyed by
//! [`JobId`] and [`AttemptId`]: each attempt's control (cancel flag,
//! progress), and the cancels that came for a job before its attempt did.
//! Process trees of script tasks are kept beside it, by the same ids, in
//! [`Processes`](super::exec::process::Processes).
//!
//! A job is here while it has attempts here: it leaves when its last
//! attempt's [`Ticket`] drops, so the registry is as large as the work in
//! hand, and a cancel for a job with nothing here changes nothing (but is
//! remembered a while, since a cancel can overtake the task call it is
//! meant to stop).

use super::exec::process::Processes;
use gridmr_core::control::TaskControl;
use gridmr_core::task::{CancelFlag, Progress};
use gridmr_core::{AttemptId, JobId};
use gridmr_net::rest::{AttemptProgress, WorkDone};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most attempts one heartbeat reports the progress of.
pub(crate) const MAX_REPORTED_ATTEMPTS: usize = 1024;

/// Most early cancels kept, and for how long.
const EARLY_CANCELS: usize = 4096;
const EARLY_CANCEL_TTL: Duration = Duration::from_secs(600);

/// A job while it has attempts on this worker.
#[derive(Default)]
struct JobHere {
    /// Cancels every attempt of the job here (each has a child of it).
    flag: CancelFlag,
    attempts: HashMap<AttemptId, TaskControl>,
}

/// What a cancel asks to stop.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    /// Every attempt of the job.
    Job,
    /// One attempt only.
    Attempt(AttemptId),
}

/// The attempts on this worker.
pub(crate) struct Attempts {
    jobs: Mutex<HashMap<JobId, JobHere>>,
    /// Jobs cancelled while they had no attempt here, bounded in count and
    /// age.
    early: Mutex<VecDeque<(JobId, Instant)>>,
    procs: Arc<Processes>,
}

/// One attempt's hold on the registry; dropping it removes the attempt,
/// and the job with its last one.
pub(crate) struct Ticket {
    attempts: Arc<Attempts>,
    job: JobId,
    attempt: AttemptId,
    /// The attempt's flag (cancelled with its job, or alone) and where it
    /// counts its progress.
    pub(crate) control: TaskControl,
    /// Its task slot, once it has one.
    pub(crate) slot: SlotHold,
}

/// An attempt's task slot: held from when the attempt starts its work until it ends, or
/// given up early by an attempt whose rest is I/O alone (a reduce uploading its part), so that
/// an attempt sent ahead to this worker (`REDUCE_READAHEAD`) can start.
#[derive(Clone, Default)]
pub(crate) struct SlotHold(Arc<Mutex<Option<tokio::sync::OwnedSemaphorePermit>>>);

impl SlotHold {
    /// Holds `permit` until [`SlotHold::release`].
    pub(crate) fn hold(&self, permit: tokio::sync::OwnedSemaphorePermit) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(permit);
        }
    }

    /// Gives the slot up (again: nothing).
    pub(crate) fn release(&self) {
        let permit = self.0.lock().ok().and_then(|mut slot| slot.take());
        drop(permit);
    }

    /// Whether the slot is still held.
    #[cfg(test)]
    pub(crate) fn held(&self) -> bool {
        self.0.lock().map(|s| s.is_some()).unwrap_or(false)
    }
}

impl Ticket {
    /// The attempt's job.
    pub(crate) fn job(&self) -> &JobId {
        &self.job
    }

    /// The attempt.
    pub(crate) fn attempt(&self) -> AttemptId {
        self.attempt
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let last = match self.attempts.jobs.lock() {
            Ok(mut jobs) => match jobs.get_mut(&self.job) {
                Some(j) => {
                    j.attempts.remove(&self.attempt);
                    j.attempts.is_empty() && jobs.remove(&self.job).is_some()
                }
                None => false,
            },
            Err(_) => false,
        };
        if last {
            self.attempts.procs.forget(&self.job);
        }
    }
}

impl Attempts {
    /// An empty registry whose cancels also kill the processes in `procs`.
    pub(crate) fn new(procs: Arc<Processes>) -> Self {
        Attempts {
            jobs: Mutex::new(HashMap::new()),
            early: Mutex::new(VecDeque::new()),
            procs,
        }
    }

    /// Registers `attempt` of `job`: its control, held until the ticket
    /// drops. An attempt of a job cancelled early starts cancelled.
    pub(crate) fn enter(self: &Arc<Self>, job: &JobId, attempt: AttemptId) -> Ticket {
        let (control, early) = self
            .jobs
            .lock()
            .map(|mut jobs| {
                let j = jobs.entry(job.clone()).or_default();
                let control = TaskControl {
                    cancel: j.flag.child(),
                    progress: Progress::default(),
                };
                j.attempts.insert(attempt, control.clone());
                (control, self.was_cancelled_early(job))
            })
            .unwrap_or_default();
        if early {
            control.cancel.cancel();
            self.procs.cancel(job, None);
        }
        Ticket {
            attempts: self.clone(),
            job: job.clone(),
            attempt,
            control,
            slot: SlotHold::default(),
        }
    }

    /// Cancels `target` of `job`: typed attempts stop at their next check,
    /// script processes are killed. A job with no attempt here is
    /// remembered for a while; an attempt not here has ended. The jobs lock
    /// is held throughout, so an attempt entering meanwhile sees one or the
    /// other.
    pub(crate) fn cancel(&self, job: &JobId, target: Target) {
        let here = match self.jobs.lock() {
            Ok(jobs) => match (jobs.get(job), target) {
                (Some(j), Target::Job) => Some(j.flag.clone()),
                (Some(j), Target::Attempt(a)) => j.attempts.get(&a).map(|c| c.cancel.clone()),
                (None, Target::Job) => {
                    self.cancel_early(job);
                    None
                }
                (None, Target::Attempt(_)) => None,
            },
            Err(_) => None,
        };
        if let Some(flag) = here {
            flag.cancel();
            let one = match target {
                Target::Job => None,
                Target::Attempt(a) => Some(a),
            };
            self.procs.cancel(job, one);
        }
    }

    /// Remembers a cancel for a job with no attempt here yet.
    fn cancel_early(&self, job: &JobId) {
        if let Ok(mut early) = self.early.lock() {
            let now = Instant::now();
            while early
                .front()
                .is_some_and(|(_, at)| now.duration_since(*at) > EARLY_CANCEL_TTL)
                || early.len() >= EARLY_CANCELS
            {
                early.pop_front();
            }
            if !early.iter().any(|(id, _)| id == job) {
                early.push_back((job.clone(), now));
            }
        }
    }

    fn was_cancelled_early(&self, job: &JobId) -> bool {
        self.early.lock().is_ok_and(|early| {
            early
                .iter()
                .any(|(id, at)| id == job && at.elapsed() <= EARLY_CANCEL_TTL)
        })
    }

    /// How far every attempt running here has got, for the heartbeat (at
    /// most [`MAX_REPORTED_ATTEMPTS`]).
    pub(crate) fn progress(&self) -> Vec<AttemptProgress> {
        let Ok(jobs) = self.jobs.lock() else {
            return Vec::new();
        };
        jobs.iter()
            .flat_map(|(job, j)| {
                j.attempts.iter().map(move |(a, c)| AttemptProgress {
                    job_id: job.to_string(),
                    task: a.task.to_string(),
                    attempt: a.attempt,
                    work: WorkDone {
                        done: c.progress.done(),
                        total: c.progress.total(),
                        records: c.progress.records(),
                    },
                })
            })
            .take(MAX_REPORTED_ATTEMPTS)
            .collect()
    }

    /// How many jobs have attempts here.
    #[cfg(test)]
    fn jobs(&self) -> usize {
        self.jobs.lock().map_or(0, |j| j.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridmr_core::{Phase, TaskId};

    fn attempt(index: u32, n: u32) -> AttemptId {
        AttemptId::new(TaskId::new(Phase::Map, index), n)
    }

    #[tokio::test]
    async fn a_slot_given_up_lets_the_attempt_waiting_for_it_start() {
        let slots = Arc::new(tokio::sync::Semaphore::new(1));
        let first = SlotHold::default();
        first.hold(slots.clone().acquire_owned().await.unwrap());
        assert!(first.held());
        assert!(
            slots.clone().try_acquire_owned().is_err(),
            "the one slot is taken"
        );
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire_owned().await.map(|_| ()) }
        });
        first.release();
        assert!(!first.held());
        first.release(); // twice: nothing more
        tokio::time::timeout(std::time::Duration::from_secs(30), waiting)
            .await
            .expect("the waiting attempt got the slot")
            .unwrap()
            .unwrap();
        assert_eq!(slots.available_permits(), 1, "one slot, never two");
    }

    #[test]
    fn a_cancel_reaches_the_job_or_one_attempt_and_the_job_leaves_with_its_last() {
        let reg = Arc::new(Attempts::new(Arc::default()));
        let job: JobId = "job-000001".parse().unwrap();
        let (a, b) = (
            reg.enter(&job, attempt(0, 1)),
            reg.enter(&job, attempt(1, 1)),
        );
        reg.cancel(&job, Target::Attempt(attempt(1, 1)));
        assert!(!a.control.cancel.is_cancelled());
        assert!(b.control.cancel.is_cancelled());
        // An attempt that is not here: nothing changes.
        reg.cancel(&job, Target::Attempt(attempt(7, 1)));
        assert!(!a.control.cancel.is_cancelled());
        a.control.progress.add(5, 1);
        let p = reg.progress();
        assert_eq!(p.len(), 2);
        assert!(p.iter().any(|p| p.task == "map-00000" && p.work.done == 5));
        reg.cancel(&job, Target::Job);
        assert!(a.control.cancel.is_cancelled());
        drop(a);
        assert_eq!(reg.jobs(), 1);
        drop(b);
        assert_eq!(reg.jobs(), 0);
    }

    #[test]
    fn a_cancel_that_overtakes_its_task_stops_the_attempt_when_it_comes() {
        let reg = Arc::new(Attempts::new(Arc::default()));
        let job: JobId = "job-000002".parse().unwrap();
        reg.cancel(&job, Target::Job);
        let late = reg.enter(&job, attempt(0, 1));
        assert!(late.control.cancel.is_cancelled());
        let other: JobId = "job-000003".parse().unwrap();
        assert!(!reg
            .enter(&other, attempt(0, 1))
            .control
            .cancel
            .is_cancelled());
    }
}
