//! A generic deterministic simulation engine on madsim.
//!
//! It runs N server processes of a [`system::System`] under a seeded schedule of messages,
//! timers and disk completions, with a fault-injecting network ([`net`]), a disk with a
//! durability model ([`disk`]), per-node clocks ([`clock`]), scenario files ([`scenario`]),
//! seed-driven fault schedules ([`swarm`]) and a canonical, hashed trace ([`trace`]).
//! It knows nothing about the system it runs.

pub mod clock;
pub mod disk;
pub mod fixture;
pub mod hash;
pub mod math;
pub mod net;
pub mod scenario;
pub mod swarm;
pub mod system;
pub mod trace;
pub mod world;

pub use net::NodeIndex;
pub use scenario::{Action, Scenario, ScenarioError, Step, Verdict};
pub use system::{BugSwitch, CheckFailure, Cluster, Env, Fault, NodeStatus, System};
pub use world::{run, RunOptions, RunReport, ScenarioOf, Violation};
