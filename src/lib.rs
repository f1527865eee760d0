//! metasim: a JetStream-style cluster metadata layer under deterministic simulation.
//!
//! - [`raft`]: NRG-style consensus, sans-IO, many groups per server.
//! - [`meta`]: the JetStream-style meta layer (assignments, apply, inflight, requests), sans-IO.
//! - [`server`]: the node: one server running its raft groups on the simulator.
//! - [`harness`]: the oracle (ghost state, safety and liveness checks, expectations) and the
//!   workload; it reads servers, never the other way round.
//! - [`sut`]: the systems the CLI drives.
//! - [`scenario`]: scenarios written as Rust tests (a builder that mirrors the file format).

pub mod harness;
pub mod meta;
pub mod prefault;
pub mod raft;
pub mod scenario;
pub mod server;
pub mod sut;
