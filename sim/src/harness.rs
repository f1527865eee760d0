//! The oracle's side of the engine's contract: what a run is held to.
//!
//! A harness keeps the oracle's memory of the run (facts nodes observed as they happened,
//! faults the world injected), checks safety after every event and liveness once faults have
//! healed, judges a scenario's expectations, and names the bug switches that prove its checks
//! bite. It reads node state through [`Cluster`], never writes it: checks call pure queries.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::coverage::ProbeInfo;
use crate::disk::{CorruptionReport, NodeDisk};
use crate::net::NodeIndex;
use crate::node::{ClientOpOf, ConfigOf, Node, ObservationOf};

/// A failed check: which invariant, where, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckFailure {
    pub invariant: String,
    pub node: Option<NodeIndex>,
    pub message: String,
}

impl CheckFailure {
    pub fn new(invariant: &str, node: Option<NodeIndex>, message: impl Into<String>) -> Self {
        CheckFailure { invariant: invariant.to_string(), node, message: message.into() }
    }
}

/// What may have changed since the previous safety check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touched {
    /// One node handled an input: only its state, and the harness's memory through the
    /// observations it fed, can have changed.
    Node(NodeIndex),
    /// The world acted (a fault, a restart, a scenario step), or full checks were asked for:
    /// anything may have changed.
    World,
}

/// A named bug switch a system can re-introduce, to prove its checks bite.
#[derive(Clone, Copy, Debug)]
pub struct BugSwitch {
    pub name: &'static str,
    pub what: &'static str,
}

/// The refusal of an unknown bug switch name: the closest known name when there is one, and
/// where the whole list is (it outgrew an error line long ago).
pub fn unknown_bug_message(bug: &str, system: &str, table: &[BugSwitch]) -> String {
    let closest = table
        .iter()
        .map(|b| (strsim::levenshtein(bug, b.name), b.name))
        .filter(|(distance, name)| *distance <= name.len() / 3 || name.contains(bug) && bug.len() >= 4)
        .min();
    let hint = closest.map_or(String::new(), |(_, name)| format!("; did you mean `{name}`?"));
    format!("unknown bug switch `{bug}` for system {system}{hint} (`metasim bugs` lists all {})", table.len())
}

/// Faults the world applied to a node, as an oracle sees them.
#[derive(Clone, Debug)]
pub enum Fault<'a> {
    Crash,
    /// A graceful stop: like a crash for memory and disk, after the node's shutdown handler.
    Shutdown,
    PowerLoss,
    Corruption(&'a CorruptionReport),
    /// An fsync of this path reported success but persisted nothing.
    LostFsync(&'a str),
}

pub trait Harness: Default + Send + 'static {
    type Node: Node;
    /// A scenario expectation (`action = "expect"`).
    type Expect: Serialize + DeserializeOwned + Debug + Clone + PartialEq + Send + Sync + 'static;

    /// A node observed something as it happened (see [`crate::node::NodeTypes::Observation`]).
    fn observe(&mut self, node: NodeIndex, observation: ObservationOf<'_, Self::Node>);
    /// A node suffered a fault (so damaged disks are not held to promises).
    fn on_fault(&mut self, _node: NodeIndex, _fault: Fault<'_>) {}
    /// A message from `from` reached the inbox of `to`, now (the safety check after this event
    /// runs at the same simulated time): who heard whom, as the network saw it. Messages held
    /// by a clog arrive when it lifts, whatever became of their sender meanwhile.
    fn on_delivery(&mut self, _from: NodeIndex, _to: NodeIndex) {}
    /// Every fault just ended (`heal-all`): the liveness phase starts, on a network that loses
    /// nothing.
    fn on_heal(&mut self) {}
    /// Why a panic or a liveness failure is explained by the run's history, if it is: a disk
    /// that lied (lost synced data) can break the assumptions the core asserts and leave a
    /// group unable to recover. Such a run is reported as excused, never as passed.
    fn excuse(&self) -> Option<String> {
        None
    }

    /// Safety invariants, run after every event. `touched` says what the event may have
    /// changed: a harness may check only that, provided the verdict is the one a check of the
    /// whole cluster would give (`--full-checks` runs every check as `Touched::World`, and the
    /// two must agree). It may keep memos of what it saw, hence `&mut self`.
    fn check_safety(&mut self, cluster: &Cluster<'_, Self::Node>, touched: Touched) -> Result<(), CheckFailure>;
    /// Liveness, probed once faults were healed until it holds or the run ends.
    fn check_liveness(&self, cluster: &Cluster<'_, Self::Node>) -> Result<(), CheckFailure>;
    /// A scenario expectation.
    fn check_expect(&self, cluster: &Cluster<'_, Self::Node>, expect: &Self::Expect) -> Result<(), CheckFailure>;

    /// Validate the scenario's `[system]` table beyond its types. A message that starts with
    /// a key of the table (`observers: ...`) is reported at that key's line.
    fn validate_config(_config: &ConfigOf<Self::Node>, _servers: u32) -> Result<(), String> {
        Ok(())
    }
    // Load-time checks of a scenario file's steps, so a bad file is refused with its line
    // instead of doing nothing useful (or panicking) at run time. Errors are `(field,
    // message)`, the field relative to the op or check (`preferred`, `peers`).
    /// Check one client operation beyond its types (node indices, bounds).
    fn validate_client_op(
        _op: &ClientOpOf<Self::Node>,
        _servers: u32,
        _config: &ConfigOf<Self::Node>,
    ) -> Result<(), (String, String)> {
        Ok(())
    }
    /// A client operation that loads but probably does not do what its author meant.
    fn client_op_warning(_op: &ClientOpOf<Self::Node>, _servers: u32) -> Option<(String, String)> {
        None
    }
    /// Check one expectation beyond its types (node indices, names the config must know).
    fn validate_expect(
        _expect: &Self::Expect,
        _servers: u32,
        _config: &ConfigOf<Self::Node>,
    ) -> Result<(), (String, String)> {
        Ok(())
    }
    /// Messages or log entries a client operation asks the system to store (a publish's
    /// count); the loader bounds their sum over a file ([`crate::scenario::CLIENT_MESSAGES_MAX`]).
    fn client_op_messages(_op: &ClientOpOf<Self::Node>) -> u64 {
        0
    }
    /// How long the system needs after a `heal-all` before a liveness check means anything
    /// (e.g. an election timeout); shorter liveness phases are refused.
    fn liveness_settle_ms(_config: &ConfigOf<Self::Node>) -> u64 {
        0
    }
    /// The bug switches the system knows.
    fn bugs() -> &'static [BugSwitch] {
        &[]
    }

    /// The coverage probes the system's nodes can hit ([`crate::coverage`]), for reports of
    /// what a campaign never reached.
    fn probes() -> Vec<ProbeInfo> {
        Vec::new()
    }
    /// The node states coverage crosses with faults, with what each means
    /// ([`Self::coverage_states`] names only these).
    fn coverage_state_names() -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// The states `node` is in now, as the world is about to strike it with a fault: each
    /// becomes a probe `fault:<action>@<state>`. A pure query, like every check.
    fn coverage_states(_cluster: &Cluster<'_, Self::Node>, _node: NodeIndex, _states: &mut Vec<&'static str>) {}
}

/// Where a node is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeStatus {
    /// Killed (crash or power loss) or not yet started.
    Down,
    Running,
    Paused,
    /// Its start-up code refused to run, with the reason.
    Refused(String),
}

/// What checks see of one node.
pub struct NodeView<'a, N> {
    pub state: Option<&'a N>,
    pub status: &'a NodeStatus,
    pub disk: &'a NodeDisk,
    /// How many times the node has been started.
    pub incarnation: u64,
}

/// What checks see of the whole cluster.
pub struct Cluster<'a, N: Node> {
    pub nodes: Vec<NodeView<'a, N>>,
    pub config: &'a ConfigOf<N>,
    pub sim_ns: u64,
}

impl<'a, N: Node> Cluster<'a, N> {
    /// Running nodes with their index.
    pub fn running(&self) -> impl Iterator<Item = (NodeIndex, &'a N)> + '_ {
        self.nodes.iter().enumerate().filter_map(|(i, n)| match n.status {
            NodeStatus::Running | NodeStatus::Paused => n.state.map(|s| (i as NodeIndex, s)),
            _ => None,
        })
    }

    /// The state of `node` if it is running (or paused).
    pub fn server(&self, node: NodeIndex) -> Option<&'a N> {
        let view = self.nodes.get(node as usize)?;
        match view.status {
            NodeStatus::Running | NodeStatus::Paused => view.state,
            _ => None,
        }
    }

    /// What `node`'s view says, if the node exists.
    pub fn view(&self, node: NodeIndex) -> Option<&NodeView<'a, N>> {
        self.nodes.get(node as usize)
    }
}
