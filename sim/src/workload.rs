//! The workload's side of the engine's contract: what a fuzz run asks of the system.
//!
//! The swarm ([`crate::swarm`]) draws the run's faults and timeline; the workload fills in
//! what only the system knows: its `[system]` knobs, its client operations, operational churn,
//! membership changes and bulk loads, and how long it needs to settle before liveness is judged.

use rand::RngCore;

use crate::net::NodeIndex;
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
    /// Make room for a bulk load (profiles with a [`BulkLoad`](crate::swarm::BulkLoad)): lift
    /// the limits drawn into `config` that would refuse most of it. Draws nothing.
    fn bulk_config(_config: &mut ConfigOf<Self::Node>) {}
    /// Run the system at its fastest leadership pace (profiles whose [`Pace`](crate::swarm::Pace)
    /// asks for it): the shortest timers and the smallest replication batches drawn for
    /// `config`, so leaders change often and followers acknowledge a few entries at a time.
    /// A system without such knobs leaves `config` as it is.
    fn hasten_config(_rng: &mut dyn RngCore, _config: &mut ConfigOf<Self::Node>) {}
    /// One operation on data of which a single server holds the only copy (an unreplicated
    /// store, or a write to one), for profiles that weight the workload towards such data:
    /// what a damaged disk can lose for good. `None` when the system has none.
    fn single_copy_op(_rng: &mut dyn RngCore, _config: &ConfigOf<Self::Node>) -> Option<ClientOpOf<Self::Node>> {
        None
    }
    /// Run `nodes` in a limited role (profiles with [`limited`](crate::swarm::Profile::limited)
    /// servers), such as servers that take no part in some subsystem. Draws nothing; a system
    /// without such a role leaves `config` as it is.
    fn limit_servers(_config: &mut ConfigOf<Self::Node>, _nodes: &[NodeIndex]) {}
    /// The client operations of unit `index` of a bulk load, in order: the swarm sends them
    /// `follow_up_ms` apart, so the later ones may build on the first (an object, then what
    /// depends on it). Empty when the system has no bulk load.
    fn bulk_unit(_rng: &mut dyn RngCore, _config: &ConfigOf<Self::Node>, _index: u32) -> Vec<ClientOpOf<Self::Node>> {
        Vec::new()
    }
    /// Start `node` of `servers` outside the system's initial membership, to join it by
    /// itself (profiles with membership changes, in some seeds). Draws nothing; a system
    /// without such joins leaves `config` as it is.
    fn join_later(_config: &mut ConfigOf<Self::Node>, _node: NodeIndex, _servers: u32) {}
    /// One membership change (a peer remove) for profiles with membership changes; `None`
    /// when the system has none.
    fn membership_op(_rng: &mut dyn RngCore, _config: &ConfigOf<Self::Node>) -> Option<ClientOpOf<Self::Node>> {
        None
    }
    /// The membership change that removes `node` from the system's membership (an operator's
    /// peer remove by id), for profiles that remove chosen servers; `None` when the system has
    /// none. Draws nothing.
    fn remove_member_op(_config: &ConfigOf<Self::Node>, _node: NodeIndex) -> Option<ClientOpOf<Self::Node>> {
        None
    }
}
