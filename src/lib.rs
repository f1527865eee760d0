//! metasim: a JetStream-style cluster metadata layer under deterministic simulation.
//!
//! - [`raft`]: NRG-style consensus, sans-IO, many groups per server.
//! - [`sut`]: the system the CLI drives.

pub mod raft;
pub mod sut;
