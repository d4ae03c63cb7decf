//! Why an attempt failed, as a worker tells the master: the kind decides
//! whether the failure counts against the task (`proto::Failure`), the
//! message is what the user reads.

use gridmr_net::proto::Failure as Kind;
use std::path::{Path, PathBuf};

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) kind: Kind,
    pub(crate) message: String,
    /// With [`Kind::MapOutputLost`]: the shuffle input that is missing or
    /// damaged.
    pub(crate) lost_input: Option<PathBuf>,
    /// With [`Kind::MapOutputLost`]: every input found lost, `lost_input`
    /// first (`SHUFFLE=local`: a holder that cannot be reached loses all it
    /// keeps).
    pub(crate) also_lost: Vec<PathBuf>,
}

impl Failure {
    fn of(kind: Kind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            lost_input: None,
            also_lost: Vec::new(),
        }
    }

    /// The job's code or its input failed.
    pub(crate) fn task(message: impl Into<String>) -> Self {
        Self::of(Kind::Task, message)
    }

    /// The worker could not run the attempt.
    pub(crate) fn engine(message: impl Into<String>) -> Self {
        Self::of(Kind::Engine, message)
    }

    /// The attempt ran past its timeout.
    pub(crate) fn timeout(message: impl Into<String>) -> Self {
        Self::of(Kind::Timeout, message)
    }

    /// The job was cancelled.
    pub(crate) fn cancelled(job_id: &gridmr_core::JobId) -> Self {
        Self::of(Kind::Cancelled, format!("job {job_id} was cancelled"))
    }

    /// The same failure with its message passed through `f` (a stderr tail added, say).
    pub(crate) fn with_message(self, f: impl FnOnce(String) -> String) -> Self {
        Failure {
            message: f(self.message),
            ..self
        }
    }

    /// A map output the reduce needs cannot be read.
    pub(crate) fn map_output_lost(input: &Path, message: impl Into<String>) -> Self {
        Failure {
            kind: Kind::MapOutputLost,
            message: message.into(),
            lost_input: Some(input.to_path_buf()),
            also_lost: Vec::new(),
        }
    }

    /// Map outputs the reduce needs cannot be had (`lost` is not empty).
    pub(crate) fn map_outputs_lost(lost: Vec<PathBuf>, message: impl Into<String>) -> Self {
        Failure {
            kind: Kind::MapOutputLost,
            message: message.into(),
            lost_input: lost.first().cloned(),
            also_lost: lost,
        }
    }
}

/// A core error, by whose fault it is: the user's code and input, the
/// engine's I/O and shuffle files, or a cancel.
impl From<gridmr_core::Error> for Failure {
    fn from(e: gridmr_core::Error) -> Self {
        use gridmr_core::Blame;
        // A damaged shuffle input is the engine's here; a reduce reports the map output it
        // could not read itself (`Failure::map_output_lost`).
        let kind = match e.blame() {
            Blame::Cancelled => Kind::Cancelled,
            Blame::Engine | Blame::InputLost(_) => Kind::Engine,
            Blame::User => Kind::Task,
        };
        Self::of(kind, e.to_string())
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
