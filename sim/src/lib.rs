//! A generic deterministic simulation engine: one seeded event loop.
//!
//! It runs N server processes of a [`System`] under a seeded schedule of messages, timers and
//! disk completions, with a fault-injecting network ([`net`]), a disk with a durability model
//! ([`disk`]), per-node clocks ([`clock`]), scenario files ([`scenario`]), seed-driven fault
//! schedules ([`swarm`]) and a canonical, hashed trace ([`trace`]). A system comes in three
//! parts that the engine keeps apart: the [`Node`] each server runs, the [`Harness`] that
//! checks it, and the [`Workload`] fuzz runs draw from. The engine knows nothing about what
//! any of them model.

pub mod clock;
pub mod coverage;
pub mod disk;
pub mod fixture;
pub mod guided;
pub mod harness;
pub mod hash;
pub mod math;
pub mod net;
pub mod node;
pub mod scenario;
pub mod swarm;
pub mod system;
pub mod trace;
pub mod workload;
pub mod world;

pub use harness::{BugSwitch, CheckFailure, Cluster, Fault, Harness, NodeStatus, NodeView, Touched};
pub use net::NodeIndex;
pub use node::{ClientOpOf, ConfigOf, Env, MsgOf, Node, NodeTypes, ObservationOf};
pub use scenario::{Action, Scenario, ScenarioError, Step, Verdict};
pub use system::{ExpectOf, ScenarioOf, System};
pub use workload::Workload;
pub use world::{run, RunOptions, RunReport, Violation};
