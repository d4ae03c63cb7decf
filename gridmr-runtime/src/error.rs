//! Errors of the master, the worker and the command line.

use std::net::SocketAddr;

/// Everything that can stop a GridMR process or a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error of the engine (input, shuffle, output, a task).
    #[error(transparent)]
    Core(#[from] gridmr_core::Error),
    /// An error talking to a master.
    #[error(transparent)]
    Net(#[from] gridmr_net::Error),
    /// A listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A server stopped with an error.
    #[error("{what} server on {addr}: {reason}")]
    Serve {
        /// `REST` or `gRPC`.
        what: &'static str,
        /// Its address.
        addr: SocketAddr,
        /// Why it stopped.
        reason: String,
    },
    /// A setting with an impossible value.
    #[error("invalid setting {name}: {reason}")]
    Setting {
        /// The setting (its environment name).
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A file-system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A request the master refuses; the reason decides the HTTP status.
    #[error("{message}")]
    Refused {
        /// Why.
        reason: Refusal,
        /// What to tell the caller.
        message: String,
    },
    /// A job finished without committing its output.
    #[error("job {job_id} {status}: {message}")]
    JobNotSucceeded {
        /// The job.
        job_id: String,
        /// Its final state.
        status: &'static str,
        /// Its error.
        message: String,
    },
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It is malformed or names something it may not (HTTP 400).
    Invalid,
    /// It names something that does not exist (404).
    NotFound,
    /// It clashes with what exists (409).
    Conflict,
    /// It is larger than allowed (413).
    TooLarge,
}

impl Error {
    pub(crate) fn refused(reason: Refusal, message: impl Into<String>) -> Self {
        Error::Refused {
            reason,
            message: message.into(),
        }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl AsRef<std::path::Path>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            op,
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    pub(crate) fn setting(name: &'static str, reason: impl Into<String>) -> Self {
        Error::Setting {
            name,
            reason: reason.into(),
        }
    }
}

/// `Result` with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
