#![doc = include_str!("../README.md")]
//!
//! This facade re-exports the crates a user needs: [`core`] (the job API, shuffle and embedded
//! engine, also re-exported at the top level), [`net`] and [`runtime`] (the cluster), and
//! [`scheduler`] (the master's decisions as a pure state machine).

#![warn(missing_docs)]

pub use gridmr_core as core;
pub use gridmr_core::*;
pub use gridmr_net as net;
pub use gridmr_runtime as runtime;
pub use gridmr_scheduler as scheduler;

#[doc = include_str!("../docs/writing-jobs.md")]
pub mod guide {}
