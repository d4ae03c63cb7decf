//! The wire layer of GridMR.
//!
//! - [`proto`]: the master ↔ worker gRPC protocol, generated at build time
//!   from `proto/mapreduce.proto`, which extends the original GridMR's
//!   protocol (same package, service, methods, field names and numbers; new
//!   fields from number 10 up).
//! - [`wire`]: conversions between the protocol messages and the task types
//!   of `gridmr-core`.
//! - [`rest`]: the JSON bodies of the master's REST API.
//! - [`client`]: an async client for that API, used by the CLI, the examples
//!   and the workers (to register and heartbeat).
//!
//! Only paths and small messages cross gRPC; shuffle data moves through the
//! shared folder.

#![warn(missing_docs)]

pub mod auth;
pub mod client;
pub mod error;
pub mod rest;
pub mod wire;

/// Messages, client and server generated from `proto/mapreduce.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("gridmr");
}

pub use client::Client;
pub use error::{Error, Result};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
