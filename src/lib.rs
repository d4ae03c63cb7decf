//! # GridMR
//!
//! A MapReduce engine for Rust. This facade re-exports the crates a user needs:
//! [`core`] (the job API, shuffle and embedded engine), [`net`] and [`runtime`] (the cluster).
//!
//! See the README for a complete job.

pub use gridmr_core as core;
pub use gridmr_core::*;
pub use gridmr_net as net;
pub use gridmr_runtime as runtime;
