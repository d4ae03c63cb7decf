//! How a running attempt is steered from outside: its cancel flag and its progress. A leaf
//! module (nothing of the crate's below it), so the job API, the tasks and the engine all use
//! it without depending on one another.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Asks a running attempt to stop. Clones share the flag; a task checks it
/// every [`CancelFlag::CHECK_EVERY`] records (a map task also before each run
/// of lines it hands its mapper; a reduce task between groups) and then fails
/// with [`Error::Cancelled`], removing what it wrote.
///
/// ```
/// use gridmr_core::task::CancelFlag;
/// let flag = CancelFlag::default();
/// let seen_by_task = flag.clone();
/// flag.cancel();
/// assert!(seen_by_task.is_cancelled());
/// ```
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<FlagState>);

#[derive(Debug, Default)]
struct FlagState {
    cancelled: AtomicBool,
    parent: Option<CancelFlag>,
}

impl CancelFlag {
    /// How many records a task handles between two looks at its flag.
    pub const CHECK_EVERY: u64 = 1024;

    /// A flag that is cancelled when it or `self` is (cancelling it leaves
    /// `self` alone).
    pub fn child(&self) -> CancelFlag {
        CancelFlag(Arc::new(FlagState {
            cancelled: AtomicBool::new(false),
            parent: Some(self.clone()),
        }))
    }

    /// Asks every holder of this flag (and of its children) to stop.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether this flag or one of its parents was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Relaxed)
            || self.0.parent.as_ref().is_some_and(CancelFlag::is_cancelled)
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// How far a running attempt has got, shared with whoever watches it (a
/// worker's heartbeat, a progress bar). Clones share it; a task adds to it
/// when it looks at its [`CancelFlag`], so watching costs the task a few
/// relaxed atomic adds.
///
/// A map task counts input **bytes** against its split's length; a reduce
/// task counts input **records** against its partition's records in the
/// map outputs.
///
/// ```
/// use gridmr_core::task::Progress;
/// let p = Progress::default();
/// p.add_total(200);
/// p.add(50, 3);
/// assert_eq!((p.done(), p.total(), p.records()), (50, 200, 3));
/// assert_eq!(p.fraction(), 0.25);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<ProgressState>);

#[derive(Debug, Default)]
struct ProgressState {
    done: AtomicU64,
    total: AtomicU64,
    records: AtomicU64,
}

impl Progress {
    /// Adds `amount` to the work to do.
    pub fn add_total(&self, amount: u64) {
        self.0.total.fetch_add(amount, Ordering::Relaxed);
    }

    /// Adds work done: `amount` of the total, and `records` records.
    pub fn add(&self, amount: u64, records: u64) {
        self.0.done.fetch_add(amount, Ordering::Relaxed);
        self.0.records.fetch_add(records, Ordering::Relaxed);
    }

    /// Work done so far.
    pub fn done(&self) -> u64 {
        self.0.done.load(Ordering::Relaxed)
    }

    /// Work to do.
    pub fn total(&self) -> u64 {
        self.0.total.load(Ordering::Relaxed)
    }

    /// Records handled so far.
    pub fn records(&self) -> u64 {
        self.0.records.load(Ordering::Relaxed)
    }

    /// `done / total`, at most 1 (0 while the total is unknown).
    pub fn fraction(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        (self.done() as f64 / total as f64).min(1.0)
    }
}

/// What steers an attempt while it runs: its cancel flag and its progress
/// handle. It is not part of the task's spec (never serialized, never
/// compared): whoever starts the attempt keeps a clone to cancel it and to
/// read how far it got.
///
/// ```
/// use gridmr_core::control::TaskControl;
/// let control = TaskControl::default();
/// let seen_by_the_task = control.clone();
/// control.cancel.cancel();
/// assert!(seen_by_the_task.cancel.is_cancelled());
/// ```
#[derive(Debug, Clone, Default)]
pub struct TaskControl {
    /// Stops the attempt early when cancelled.
    pub cancel: CancelFlag,
    /// Where the attempt reports how far it got (map: input bytes against
    /// the split's length; reduce: records read against the partition's).
    pub progress: Progress,
}
