//! NRG-style Raft consensus core, sans-IO (spec §1.8, §6 "Raft primitives").
//!
//! One `RaftNode` per group member. The driver feeds it inputs and runs the output loop:
//!
//! 1. `step(now, from, msg, rng)` for each received message; `tick(now, rng)` every ~100 ms;
//!    `propose`, `step_down`, `compact` on upper-layer demand.
//! 2. While `has_ready()`: take `ready()`; persist `hard_state`, `snapshot`, apply
//!    `truncate_from`, append `entries`, fsync; then send `messages`; then hand `applied`
//!    to the upper layer in order, calling `applied_to(index)` for each entry or snapshot.
//! 3. Entries count as durable only once handed out in a `Ready`, so commits and applies that
//!    depend on them show up in the following `Ready`: hence the loop in step 2.
//!
//! Time comes in as `now_ms`, randomness as `&mut dyn RngCore`; nothing here reads a clock,
//! spawns, or iterates a hash map.

mod config;
mod election;
mod error;
mod log;
mod membership;
mod node;
mod probe;
mod progress;
mod queries;
mod ready;
mod replication;
mod stamp;
mod types;

#[cfg(test)]
mod harness;
#[cfg(test)]
mod tests;

pub use config::{Config, RaftBugs};
pub use error::{ProposeError, RaftError};
pub use node::{RaftNode, PROPOSALS_PENDING_MAX};
pub use probe::{Probe, PROBES_PENDING_MAX};
pub use stamp::Stamp;
pub use types::{Applied, Entry, EntryData, HardState, Index, Message, PeerId, Ready, Role, Signal, Snapshot, Term};
