//! A job's lifecycle: its states, the moves between them, and the one
//! function that makes a move ([`Job::transition`]), as Hadoop's `JobImpl`
//! keeps its transition table and Ballista its `to_running` /
//! `to_successful`.
//!
//! ```text
//! QUEUED ─▶ PREPARING ─▶ PREPARED ─┬─▶ RUNNING (SINGLE) ───────────┐
//!    │          │                  ├─▶ MAPPING ◀──▶ REDUCING ─────┤
//!    │          │                  └─▶ REDUCING (no maps) ────────┤
//!    ▼          ▼                                                 ▼
//! CANCELLED   FAILED ◀────────── any active state ──────────▶ SUCCEEDED
//! ```
//!
//! A job goes back from REDUCING to MAPPING when a map's output is lost and
//! the map runs again. SUCCEEDED, FAILED and CANCELLED are final.

use crate::job::{Job, Phase};
use serde::{Deserialize, Serialize};

/// Where a job is. The REST API's `JobState` is a view of it (same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Accepted, not yet planned.
    Queued,
    /// Listing the input and planning splits.
    Preparing,
    /// Planned, waiting for its first task to start.
    Prepared,
    /// Map tasks are running (DISTRIBUTED).
    Mapping,
    /// Reduce tasks are running (DISTRIBUTED).
    Reducing,
    /// The single task is running (SINGLE).
    Running,
    /// Output committed.
    Succeeded,
    /// A task gave up, or the job could not be planned or committed.
    Failed,
    /// Stopped by a client.
    Cancelled,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 9] = [
        JobState::Queued,
        JobState::Preparing,
        JobState::Prepared,
        JobState::Mapping,
        JobState::Reducing,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// Whether the job will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }

    /// Whether its tasks may run (planned, not ended).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            JobState::Prepared | JobState::Mapping | JobState::Reducing | JobState::Running
        )
    }

    /// The name used in JSON, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "QUEUED",
            JobState::Preparing => "PREPARING",
            JobState::Prepared => "PREPARED",
            JobState::Mapping => "MAPPING",
            JobState::Reducing => "REDUCING",
            JobState::Running => "RUNNING",
            JobState::Succeeded => "SUCCEEDED",
            JobState::Failed => "FAILED",
            JobState::Cancelled => "CANCELLED",
        }
    }

    /// Whether a job may move from `self` to `to` (staying put, to change
    /// the message, is allowed while not final).
    pub fn may_become(self, to: JobState) -> bool {
        use JobState::*;
        if self.is_terminal() {
            return false;
        }
        if self == to {
            return true;
        }
        matches!(
            (self, to),
            (_, Failed | Cancelled)
                | (Queued, Preparing)
                | (Preparing, Prepared)
                | (Prepared, Running | Mapping | Reducing)
                | (Mapping, Reducing)
                | (Reducing, Mapping)
                | (Prepared | Mapping | Reducing | Running, Succeeded)
        )
    }
}

/// How a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    /// One worker runs the whole job.
    Single,
    /// Map tasks over input splits, then reduce tasks over partitions.
    Distributed,
}

/// A move [`JobState::may_become`] refuses; the job is left as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IllegalTransition {
    /// The job's state.
    pub from: JobState,
    /// The state asked for.
    pub to: JobState,
}

impl Job {
    /// Moves the job to `to` with `message`, at `now_ms`: the one place a
    /// job's state changes. It checks the move, stamps the clock (planning
    /// done on leaving PREPARING, the end on a final state), keeps `error`
    /// for FAILED, and logs `X → Y` once per change. An illegal move changes
    /// nothing and is logged as a scheduler bug.
    pub fn transition(
        &mut self,
        to: JobState,
        message: impl Into<String>,
        now_ms: u64,
    ) -> Result<(), IllegalTransition> {
        let from = self.state;
        if !from.may_become(to) {
            tracing::error!(job = %self.id, from = from.as_str(), to = to.as_str(),
                "illegal job transition refused (a scheduler bug)");
            debug_assert!(false, "illegal job transition {from:?} -> {to:?}");
            return Err(IllegalTransition { from, to });
        }
        self.message = message.into();
        if from == to {
            return Ok(());
        }
        if from == JobState::Preparing {
            self.clock.prepared_ms.get_or_insert(now_ms);
        }
        match to {
            JobState::Failed => self.error = Some(self.message.clone()),
            JobState::Succeeded => self.error = None,
            _ => {}
        }
        if to.is_terminal() {
            self.clock.finished_ms = Some(now_ms);
        }
        self.state = to;
        tracing::debug!(job = %self.id, "{} → {}", from.as_str(), to.as_str());
        Ok(())
    }

    /// Sets the message without moving (while not final).
    pub fn say(&mut self, message: impl Into<String>) {
        if !self.state.is_terminal() {
            self.message = message.into();
        }
    }

    /// The state a dispatch of `phase` puts an active job in.
    pub(crate) fn running_state(phase: Phase) -> JobState {
        match phase {
            Phase::Single => JobState::Running,
            Phase::Map => JobState::Mapping,
            Phase::Reduce => JobState::Reducing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_states_are_final_and_the_table_holds_the_lifecycle() {
        for s in JobState::ALL.into_iter().filter(|s| s.is_terminal()) {
            assert!(JobState::ALL.iter().all(|t| !s.may_become(*t)), "{s:?}");
        }
        assert!(JobState::Queued.may_become(JobState::Preparing));
        assert!(!JobState::Queued.may_become(JobState::Mapping));
        assert!(!JobState::Queued.may_become(JobState::Succeeded));
        assert!(JobState::Reducing.may_become(JobState::Mapping));
        assert!(!JobState::Running.may_become(JobState::Mapping));
        assert!(JobState::Preparing.may_become(JobState::Failed));
    }
}
