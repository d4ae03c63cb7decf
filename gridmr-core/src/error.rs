//! The error type of `gridmr-core`.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in the core: bad input, I/O, corrupt shuffle files, user code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation on `path` failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`"open"`, `"read"`, `"rename"`…).
        op: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A shuffle file (data or index) is damaged: bad checksum, truncated, wrong magic.
    #[error("corrupt shuffle file {path} at byte {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset where the damage was found.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A record could not be encoded or decoded.
    #[error("record codec: {0}")]
    Codec(String),
    /// The job's input specification matched nothing or is malformed.
    #[error("input {spec}: {reason}")]
    Input {
        /// The input as the user gave it.
        spec: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A job setting is out of range.
    #[error("invalid setting {name}: {reason}")]
    Setting {
        /// The setting's name.
        name: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// The attempt was cancelled (its job was deleted or failed).
    #[error("the task was cancelled")]
    Cancelled,
    /// No job of that name is registered.
    #[error("unknown job {0:?}")]
    UnknownJob(String),
    /// User code (mapper, combiner, reducer, hooks) returned an error or panicked.
    #[error("{phase} task failed: {message}")]
    Task {
        /// `"map"` or `"reduce"`.
        phase: &'static str,
        /// The user's message or panic payload.
        message: String,
    },
    /// A task failed on every allowed attempt, so the job failed.
    #[error("job {job_id} failed: task {task} gave up after {attempts} attempt(s): {last_error}")]
    JobFailed {
        /// The job.
        job_id: String,
        /// The task that failed, e.g. `map-00003`.
        task: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        last_error: String,
    },
}

impl Error {
    /// Builds an [`Error::Io`] for `path`.
    pub fn io(op: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// Builds an [`Error::Corrupt`] for `path`.
    pub fn corrupt(path: impl AsRef<Path>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.as_ref().to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }

    /// Builds an [`Error::Setting`].
    pub fn setting(name: &'static str, reason: impl Into<String>) -> Self {
        Error::Setting {
            name,
            reason: reason.into(),
        }
    }
}

/// Whose fault an error is: what decides whether a failed attempt counts
/// against its task, and which HTTP status or gRPC failure kind reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blame {
    /// The job's code, its input or its settings.
    User,
    /// The engine or the machine it runs on (I/O, a full disk, a bug).
    Engine,
    /// Nobody's: the attempt was cancelled.
    Cancelled,
    /// A shuffle input (a map output) is damaged or gone: the map that
    /// wrote it runs again, and the reader is not charged.
    InputLost(PathBuf),
}

impl Error {
    /// Whose fault this error is.
    pub fn blame(&self) -> Blame {
        match self {
            Error::Io { .. } | Error::Codec(_) => Blame::Engine,
            Error::Corrupt { path, .. } => Blame::InputLost(path.clone()),
            Error::Cancelled => Blame::Cancelled,
            Error::Input { .. }
            | Error::Setting { .. }
            | Error::UnknownJob(_)
            | Error::Task { .. }
            | Error::JobFailed { .. } => Blame::User,
        }
    }

    /// Whether the job's code, input or settings caused it.
    pub fn is_user(&self) -> bool {
        self.blame() == Blame::User
    }

    /// Whether an I/O operation failed (the file and the operation are in the message).
    pub fn is_io(&self) -> bool {
        matches!(self, Error::Io { .. })
    }

    /// Whether a file that should be there is not (an I/O error of kind
    /// `NotFound`).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// Whether a shuffle file is damaged.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }

    /// Whether the attempt was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Cancelled)
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error type user code returns from [`crate::Mapper::map`] and friends.
///
/// Any `std::error::Error` converts into it with `?`; a plain message with
/// [`UserError::msg`].
#[derive(Debug)]
pub struct UserError(Box<dyn std::error::Error + Send + Sync>);

impl UserError {
    /// An error carrying just a message.
    pub fn msg(message: impl Into<String>) -> Self {
        UserError(message.into().into())
    }

    /// The engine's own error, when user code passed one on with `?` (a spill that hit a
    /// full disk inside `ctx.emit(..)?`, say): it stays the engine's, not the user's.
    pub fn into_engine(self) -> std::result::Result<Error, UserError> {
        self.0.downcast::<Error>().map(|e| *e).map_err(UserError)
    }
}

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for UserError {
    fn from(e: E) -> Self {
        UserError(Box::new(e))
    }
}

/// What user code returns.
pub type UserResult<T = ()> = std::result::Result<T, UserError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_error_passed_on_by_user_code_stays_the_engines() {
        let disk_full = Error::io(
            "write",
            "/spill/run-1",
            io::Error::from(io::ErrorKind::StorageFull),
        );
        let passed_on: UserError = disk_full.into();
        let back = passed_on.into_engine().expect("still the engine's");
        assert!(back.is_io());
        assert_eq!(back.blame(), Blame::Engine);
        let own = UserError::msg("bad record");
        assert!(
            own.into_engine().is_err(),
            "the user's own error stays the user's"
        );
    }

    #[test]
    fn blame_follows_the_variant() {
        assert_eq!(
            Error::corrupt("/s/map-00001-a1.index", 8, "crc").blame(),
            Blame::InputLost(PathBuf::from("/s/map-00001-a1.index"))
        );
        assert_eq!(Error::Cancelled.blame(), Blame::Cancelled);
        assert!(Error::setting("partitions", "0").is_user());
        assert!(Error::Cancelled.is_cancelled());
    }
}
