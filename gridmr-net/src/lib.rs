//! # gridmr-net
//!
//! The wire layer of GridMR's cluster: the gRPC protocol between master and workers, the REST
//! types of the master's API, and a client. Not written yet: the cluster is the next milestone
//! (see the README); this crate holds its place in the workspace so the dependency direction
//! (runtime → net → core) is fixed from the start.

pub use gridmr_core as core;
