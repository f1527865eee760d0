//! metasim: a JetStream-style cluster metadata layer under deterministic simulation.
//!
//! - [`raft`]: NRG-style consensus, sans-IO, many groups per server.
//! - [`meta`]: the JetStream-style meta layer (assignments, apply, inflight, requests), sans-IO.
//! - [`server`]: one server running its raft groups on the simulator.
//! - [`checks`]: safety and liveness invariants, and the oracle's ghost state.
//! - [`sut`]: the system the CLI drives.
//! - [`validate`]: load-time checks of the meta system's scenario types.

pub mod checks;
pub mod meta;
pub mod raft;
pub mod server;
pub mod sut;
pub mod validate;
