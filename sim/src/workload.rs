//! The workload's side of the engine's contract: what a fuzz run asks of the system.
//!
//! The swarm ([`crate::swarm`]) draws the run's faults and timeline; the workload fills in
//! what only the system knows: its `[system]` knobs, its client operations, operational churn
//! and membership changes, and how long it needs to settle before liveness is judged.

use rand::RngCore;

use crate::node::{ClientOpOf, ConfigOf, Node};

pub trait Workload: 'static {
    type Node: Node;

    /// Draw the `[system]` settings of a fuzz run of `servers` servers (swarm knobs such as
    /// timeouts).
    fn generate_config(_rng: &mut dyn RngCore, _servers: u32) -> ConfigOf<Self::Node> {
        ConfigOf::<Self::Node>::default()
    }
    /// How long a fuzz run leaves the system without client operations before it ends, so the
    /// liveness phase can settle (e.g. a few election timeouts for work created last).
    fn quiet_tail_ms(_config: &ConfigOf<Self::Node>) -> u64 {
        0
    }
    /// Draw one client operation.
    fn client_op(rng: &mut dyn RngCore, config: &ConfigOf<Self::Node>) -> ClientOpOf<Self::Node>;
    /// One operational-churn op (a leader stepdown, a snapshot) for profiles with churn;
    /// `None` when the system has none.
    fn churn_op(_rng: &mut dyn RngCore, _config: &ConfigOf<Self::Node>) -> Option<ClientOpOf<Self::Node>> {
        None
    }
    /// One membership change (a peer remove) for profiles with membership changes; `None`
    /// when the system has none.
    fn membership_op(_rng: &mut dyn RngCore, _config: &ConfigOf<Self::Node>) -> Option<ClientOpOf<Self::Node>> {
        None
    }
}
