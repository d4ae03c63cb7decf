//! The GridMR cluster: a master, workers, and the `gridmr` command line.
//!
//! A user's crate registers its jobs in a [`Registry`] and hands it to
//! [`main_with`]; its binary then plays every role:
//!
//! ```no_run
//! use gridmr_core::{bundled::wordcount, Registry};
//!
//! fn main() -> std::process::ExitCode {
//!     let mut jobs = Registry::new();
//!     jobs.register(wordcount::job());
//!     gridmr_runtime::main_with(jobs)
//! }
//! ```
//!
//! ```text
//! my-jobs master  --shared-dir /data/shared                  # REST on :8080
//! my-jobs worker  --shared-dir /data/shared --master-http http://master:8080
//! my-jobs submit  --job wordcount --input /data/shared/books --wait
//! my-jobs result  job-000001 > counts.txt
//! my-jobs local   --job wordcount --input books/            # no cluster
//! ```
//!
//! The same pieces start in-process with [`master::start`] and
//! [`worker::start`] (tests and the `wordcount` example do this).
//!
//! Master and workers talk gRPC (`gridmr-net`'s protocol); map output moves
//! through the shared folder, never over the network; clients use the REST
//! API documented in `docs/rest-api.md`.

#![warn(missing_docs)]
#![deny(unsafe_code)]

mod bind;
pub mod cli;
pub mod credentials;
pub mod error;
pub mod master;
pub mod objstore;
pub mod paths;
mod peers;
pub mod security;
pub mod settings;
mod show;
#[allow(unsafe_code)]
mod sys;
pub mod upload;
pub mod worker;

pub use cli::main_with;
pub use error::{Error, Refusal, Result};
pub use gridmr_core::Registry;
pub use security::{AuthSwitch, Security};
pub use settings::{FenceSettings, MasterSettings, SchedulerPolicy, WorkerSettings};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
