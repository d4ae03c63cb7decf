//! # gridmr-runtime
//!
//! GridMR's master, workers and CLI. Not written yet: the cluster is the next milestone (see the
//! README); until then the embedded engine of `gridmr-core` runs jobs in one process.

pub use gridmr_net as net;
