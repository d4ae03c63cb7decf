//! Why a job could not be planned or committed: the two failures the
//! master reports to the scheduler from its own I/O. Each keeps its kind,
//! so the job's message and the metrics say whose fault it was; the text
//! is a copy (events are `Clone` and cross threads), not the source error.

use gridmr_core::Blame;
use std::fmt;

/// Why a job could not be planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The typed job it names is not registered in the master's binary.
    UnknownJob(String),
    /// Its input could not be listed or read.
    Input(String),
    /// The job's own planning hook (`Job::plan`) failed.
    Hook(String),
    /// Planning itself broke (its thread panicked).
    Internal(String),
}

impl PlanError {
    /// Whose fault it is: the request's (an unknown job, its input, its
    /// hook) or the engine's.
    pub fn blame(&self) -> Blame {
        match self {
            PlanError::Internal(_) => Blame::Engine,
            _ => Blame::User,
        }
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::UnknownJob(m) | PlanError::Input(m) | PlanError::Hook(m) => f.write_str(m),
            PlanError::Internal(m) => write!(f, "planning thread: {m}"),
        }
    }
}

impl std::error::Error for PlanError {}

/// Why a job's output could not be committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitError {
    /// A file-system step failed (the share full or gone, a permission).
    Io(String),
    /// An attempt's output is not what the commit expects (missing or
    /// damaged part files).
    Output(String),
    /// Committing itself broke (its thread panicked).
    Internal(String),
}

impl CommitError {
    /// Whether retrying could help (a file-system error may be transient).
    pub fn is_io(&self) -> bool {
        matches!(self, CommitError::Io(_))
    }
}

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommitError::Io(m) | CommitError::Output(m) => f.write_str(m),
            CommitError::Internal(m) => write!(f, "commit thread: {m}"),
        }
    }
}

impl std::error::Error for CommitError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_error_is_the_users_unless_planning_broke() {
        assert_eq!(PlanError::Input("x".into()).blame(), Blame::User);
        assert_eq!(PlanError::Hook("x".into()).blame(), Blame::User);
        assert_eq!(PlanError::Internal("x".into()).blame(), Blame::Engine);
        assert_eq!(
            PlanError::Internal("boom".into()).to_string(),
            "planning thread: boom"
        );
        assert!(CommitError::Io("disk".into()).is_io());
        assert!(!CommitError::Output("gone".into()).is_io());
    }
}
