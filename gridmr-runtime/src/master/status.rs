//! The status board: each job's status published on a `watch` channel.
//!
//! After every step the master publishes which jobs changed (the
//! scheduler's [`JobChanges`]): a cheap beat per job (its revision and
//! whether it has ended) that long-polls wait on. The full `JobStatus`
//! is built by the first reader that asks for it and shared by the readers
//! after, until the job changes (or, while it runs, for at most
//! [`FRESH`], since its times and exclusions move with the clock): a
//! long-poll is woken only by its own job, and builds nothing until it
//! answers.

use super::view::JobView;
use gridmr_core::JobId;
use gridmr_net::rest::JobStatus;
use gridmr_scheduler::{JobChanges, Scheduler};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a running job's built status is served unchanged.
pub(crate) const FRESH: Duration = Duration::from_millis(200);

/// A job's latest change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Beat {
    /// Bumped at every change.
    pub(crate) revision: u64,
    /// Whether the job has ended.
    pub(crate) ended: bool,
}

struct Entry {
    beat: watch::Sender<Beat>,
    /// The status built for a revision, and when.
    cached: Option<(u64, Instant, Arc<JobStatus>)>,
}

/// Every known job's channel.
#[derive(Default)]
pub(crate) struct StatusBoard {
    jobs: Mutex<HashMap<JobId, Entry>>,
}

impl StatusBoard {
    fn entries(&self) -> MutexGuard<'_, HashMap<JobId, Entry>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes what changed in `st` since the last call. Called with the
    /// scheduler locked, after a step.
    pub(crate) fn publish(&self, st: &mut Scheduler) {
        let JobChanges { changed, forgotten } = st.take_changes();
        if changed.is_empty() && forgotten.is_empty() {
            return;
        }
        let mut jobs = self.entries();
        for (id, ended) in changed {
            match jobs.get(&id) {
                Some(e) => e.beat.send_modify(|b| {
                    b.revision += 1;
                    b.ended = ended;
                }),
                None => {
                    let beat = Beat { revision: 1, ended };
                    let entry = Entry {
                        beat: watch::channel(beat).0,
                        cached: None,
                    };
                    jobs.insert(id, entry);
                }
            }
        }
        // Dropping a sender ends its long-polls (they answer what they saw).
        for id in forgotten {
            jobs.remove(&id);
        }
    }

    /// Job `id`'s beats; `None` for a job the board has not seen.
    pub(crate) fn subscribe(&self, id: &str) -> Option<watch::Receiver<Beat>> {
        self.entries().get(id).map(|e| e.beat.subscribe())
    }

    /// Job `id`'s status at its latest revision: built once per revision
    /// (per [`FRESH`] while it runs), under the scheduler's lock, taken by
    /// `lock` only then.
    pub(crate) fn status<'a>(
        &self,
        id: &str,
        lock: impl FnOnce() -> MutexGuard<'a, Scheduler>,
    ) -> Option<Arc<JobStatus>> {
        let revision = {
            let jobs = self.entries();
            let entry = jobs.get(id)?;
            let beat = *entry.beat.borrow();
            if let Some((r, built, status)) = &entry.cached {
                if *r == beat.revision && (beat.ended || built.elapsed() < FRESH) {
                    return Some(status.clone());
                }
            }
            beat.revision
        };
        // Built outside the board's lock: readers of other jobs go on.
        let status = Arc::new(lock().job(id)?.status());
        if let Some(entry) = self.entries().get_mut(id) {
            // A newer revision may have come meanwhile: this one is then
            // built again by the next reader.
            entry.cached = Some((revision, Instant::now(), status.clone()));
        }
        Some(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridmr_scheduler::{Event, JobDirs, JobKind, JobRequest, SchedulerConfig};

    fn submitted(st: &mut Scheduler) -> JobId {
        let id = st.next_id();
        let request = JobRequest::new(JobKind::Script("/s.py".into()), "/in.txt".into());
        let dirs = JobDirs::under(format!("/share/jobs/{id}").into());
        st.handle(
            Event::Submitted {
                id: id.clone(),
                request: Box::new(request),
                dirs,
                foreseen: None,
            },
            1,
        );
        id
    }

    #[test]
    fn a_status_is_built_once_per_revision_and_beats_wake_only_their_job() {
        let st = Mutex::new(Scheduler::new(SchedulerConfig::default(), 1));
        let lock = || st.lock().unwrap();
        let board = StatusBoard::default();
        let (a, b) = {
            let mut s = lock();
            let ids = (submitted(&mut s), submitted(&mut s));
            board.publish(&mut s);
            ids
        };
        let (mut beats_a, beats_b) = (board.subscribe(&a).unwrap(), board.subscribe(&b).unwrap());
        let first = board.status(&a, lock).unwrap();
        assert_eq!(first.status, gridmr_net::rest::JobState::Queued);
        // Job a is cancelled: its beat moves and says it ended; b's does not.
        {
            let mut s = lock();
            s.handle(Event::Cancel { job: a.clone() }, 2);
            board.publish(&mut s);
        }
        assert!(beats_a.has_changed().unwrap());
        assert!(beats_a.borrow_and_update().ended);
        assert!(!beats_b.has_changed().unwrap());
        let cancelled = board.status(&a, lock).unwrap();
        assert_eq!(cancelled.status, gridmr_net::rest::JobState::Cancelled);
        // An ended job that did not change: the same status, without the
        // scheduler's lock.
        let again = board
            .status(&a, || panic!("rebuilt an unchanged status"))
            .unwrap();
        assert!(Arc::ptr_eq(&cancelled, &again));
        // Deleted: its channel closes and the board forgets it.
        {
            let mut s = lock();
            s.handle(Event::Delete { job: a.clone() }, 3);
            board.publish(&mut s);
        }
        assert!(beats_a.has_changed().is_err());
        assert!(board.subscribe(&a).is_none());
        assert!(board.status(&a, lock).is_none());
    }
}
