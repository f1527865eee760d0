//! The contract between the engine and a system under test.
//!
//! A system is a per-node state machine driven by inputs (start, message, timer, fsync done,
//! client request). It acts only through its [`Env`]: send, set a timer, write the disk, ask
//! for an fsync, record a trace event. The engine owns time, delivery, the disk and faults.

use std::collections::BTreeSet;
use std::fmt::Debug;

use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::disk::{CorruptionReport, NodeDisk};
use crate::hash;
use crate::net::NodeIndex;
use crate::trace::Trace;

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

/// A named bug switch a system can re-introduce, to prove its checks bite.
#[derive(Clone, Copy, Debug)]
pub struct BugSwitch {
    pub name: &'static str,
    pub what: &'static str,
}

/// Faults the world applied to a node, as an oracle sees them.
#[derive(Clone, Debug)]
pub enum Fault<'a> {
    Crash,
    PowerLoss,
    Corruption(&'a CorruptionReport),
    /// An fsync of this path reported success but persisted nothing.
    LostFsync(&'a str),
}

pub trait System: Sized + Send + 'static {
    type Msg: Serialize + Debug + Clone + Send + 'static;
    type ClientOp: Serialize + DeserializeOwned + Debug + Clone + PartialEq + Send + Sync + 'static;
    type Expect: Serialize + DeserializeOwned + Debug + Clone + PartialEq + Send + Sync + 'static;
    /// The scenario's `[system]` table.
    type Config: Serialize + DeserializeOwned + Debug + Clone + PartialEq + Default + Send + Sync + 'static;
    /// World-wide bookkeeping for oracles (what was acknowledged, committed, ...), which no
    /// single node knows. Handlers update it through [`Env::ghost`].
    type Ghost: Default + Send + 'static;

    /// The system's name, as the CLI shows it.
    const NAME: &'static str;
    /// The file kinds (first path segments) it writes, which disk faults are aimed at.
    const FILE_KINDS: &'static [&'static str];

    /// Start (or restart) a node against what its disk holds. `Err` means the node refuses to
    /// start, with the reason; it stays down until restarted.
    fn start(env: &mut Env<'_, Self>) -> Result<Self, String>;
    fn on_message(&mut self, env: &mut Env<'_, Self>, from: NodeIndex, msg: Self::Msg);
    fn on_timer(&mut self, env: &mut Env<'_, Self>, token: u64);
    /// An fsync asked for with `token` completed (it may have been silently lost).
    fn on_fsync(&mut self, env: &mut Env<'_, Self>, token: u64);
    fn on_client(&mut self, env: &mut Env<'_, Self>, op: Self::ClientOp);

    /// Safety invariants, run after every event.
    fn check_safety(cluster: &Cluster<'_, Self>) -> Result<(), CheckFailure>;
    /// Liveness, run at the end of a run whose faults were healed.
    fn check_liveness(cluster: &Cluster<'_, Self>) -> Result<(), CheckFailure>;
    /// A scenario expectation.
    fn check_expect(cluster: &Cluster<'_, Self>, expect: &Self::Expect) -> Result<(), CheckFailure>;
    /// Tell the oracle a node suffered a fault (so damaged disks are not held to promises).
    fn on_fault(_ghost: &mut Self::Ghost, _node: NodeIndex, _fault: Fault<'_>) {}
    /// Tell the oracle every fault just ended (`heal-all`): the liveness phase starts, on a
    /// network that loses nothing.
    fn on_heal(_ghost: &mut Self::Ghost) {}
    /// Why a panic or a liveness failure is explained by the run's history, if it is: a disk
    /// that lied (lost synced data) can break the assumptions the core asserts and leave a
    /// group unable to recover. Such a run is reported as excused, never as passed.
    fn excuse(_ghost: &Self::Ghost) -> Option<String> {
        None
    }

    /// Draw the `[system]` settings of a fuzz run of `servers` servers (swarm knobs such as
    /// timeouts).
    fn generate_config(_rng: &mut dyn RngCore, _servers: u32) -> Self::Config {
        Self::Config::default()
    }
    /// How long a fuzz run leaves the system without client operations before it ends, so the
    /// liveness phase can settle (e.g. a few election timeouts for work created last).
    fn quiet_tail_ms(_config: &Self::Config) -> u64 {
        0
    }
    /// Draw one client operation for a fuzz run.
    fn generate_client_op(rng: &mut dyn RngCore, config: &Self::Config) -> Self::ClientOp;
    /// One operational-churn op (a leader stepdown, a snapshot) for the `churn` profile;
    /// `None` when the system has none.
    fn generate_churn_op(_rng: &mut dyn RngCore, _config: &Self::Config) -> Option<Self::ClientOp> {
        None
    }
    /// One membership change (a peer remove) for the `peers` profile; `None` when the system
    /// has none.
    fn generate_membership_op(_rng: &mut dyn RngCore, _config: &Self::Config) -> Option<Self::ClientOp> {
        None
    }
    /// Validate the scenario's `[system]` table beyond its types. A message that starts with
    /// a key of the table (`observers: ...`) is reported at that key's line.
    fn validate_config(_config: &Self::Config, _servers: u32) -> Result<(), String> {
        Ok(())
    }
    // Load-time checks of a scenario file's steps, so a bad file is refused with its line
    // instead of doing nothing useful (or panicking) at run time. Errors are `(field,
    // message)`, the field relative to the op or check (`preferred`, `peers`).
    /// Check one client operation beyond its types (node indices, bounds).
    fn validate_client_op(_op: &Self::ClientOp, _servers: u32, _config: &Self::Config) -> Result<(), (String, String)> {
        Ok(())
    }
    /// A client operation that loads but probably does not do what its author meant.
    fn client_op_warning(_op: &Self::ClientOp, _servers: u32) -> Option<(String, String)> {
        None
    }
    /// Check one expectation beyond its types (node indices, names the config must know).
    fn validate_expect(_expect: &Self::Expect, _servers: u32, _config: &Self::Config) -> Result<(), (String, String)> {
        Ok(())
    }
    /// Messages or log entries a client operation asks the system to store (a publish's
    /// count); the loader bounds their sum over a file ([`crate::scenario::CLIENT_MESSAGES_MAX`]).
    fn client_op_messages(_op: &Self::ClientOp) -> u64 {
        0
    }
    /// How long the system needs after a `heal-all` before a liveness check means anything
    /// (e.g. an election timeout); shorter liveness phases are refused.
    fn liveness_settle_ms(_config: &Self::Config) -> u64 {
        0
    }
    /// Every file kind the system writes, which a scenario's disk faults may name;
    /// [`Self::FILE_KINDS`] are the ones fuzzing aims at.
    const KNOWN_FILE_KINDS: &'static [&'static str] = Self::FILE_KINDS;
    /// The bug switches this system knows.
    fn bugs() -> &'static [BugSwitch] {
        &[]
    }
}

/// What a node asked the world to do.
#[derive(Debug)]
pub(crate) enum Output<M> {
    Send { to: NodeIndex, msg: M },
    Timer { delay_ns: u64, token: u64 },
    Fsync { path: String, token: u64 },
    CrashPoint { name: &'static str },
}

/// A node's window on the world while it handles one input.
pub struct Env<'a, S: System> {
    pub(crate) node: NodeIndex,
    pub(crate) servers: u32,
    pub(crate) local_ns: u64,
    pub(crate) monotonic_ns: u64,
    pub(crate) sim_ns: u64,
    pub(crate) rng: &'a mut ChaCha8Rng,
    pub(crate) disk: &'a mut NodeDisk,
    pub(crate) outputs: &'a mut Vec<Output<S::Msg>>,
    pub(crate) ghost: &'a mut S::Ghost,
    pub(crate) trace: &'a mut Trace,
    pub(crate) bugs: &'a BTreeSet<String>,
    pub(crate) config: &'a S::Config,
}

/// Outputs a node may queue while handling one input; a handler that loops forever on sends
/// is a bug, found here rather than as an exhausted host.
pub const OUTPUTS_PER_INPUT_MAX: usize = 100_000;

impl<S: System> Env<'_, S> {
    pub fn node(&self) -> NodeIndex {
        self.node
    }

    pub fn servers(&self) -> u32 {
        self.servers
    }

    /// This node's clock (simulated time through its offset and drift).
    pub fn now_ns(&self) -> u64 {
        self.local_ns
    }

    pub fn now_ms(&self) -> u64 {
        self.local_ns / 1_000_000
    }

    /// This node's monotonic clock: it drifts with the node but ignores clock jumps and
    /// offsets. Timeouts belong on it; timestamps shown to users belong on [`Self::now_ns`].
    pub fn monotonic_ms(&self) -> u64 {
        self.monotonic_ns / 1_000_000
    }

    /// The run's seeded random source.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        self.rng
    }

    /// This node's disk: reads and writes are immediate (page cache); durability needs `fsync`.
    pub fn disk(&mut self) -> &mut NodeDisk {
        self.disk
    }

    pub fn ghost(&mut self) -> &mut S::Ghost {
        self.ghost
    }

    pub fn config(&self) -> &S::Config {
        self.config
    }

    /// Whether the named bug switch is on for this run.
    pub fn bug(&self, name: &str) -> bool {
        self.bugs.contains(name)
    }

    fn push(&mut self, output: Output<S::Msg>) {
        assert!(self.outputs.len() < OUTPUTS_PER_INPUT_MAX, "node {} queued too many outputs", self.node);
        self.outputs.push(output);
    }

    pub fn send(&mut self, to: NodeIndex, msg: S::Msg) {
        assert!(to < self.servers && to != self.node, "node {} sends to {to}", self.node);
        self.push(Output::Send { to, msg });
    }

    /// Send a copy to every other node.
    pub fn broadcast(&mut self, msg: S::Msg) {
        let me = self.node;
        for to in (0..self.servers).filter(|&n| n != me) {
            self.push(Output::Send { to, msg: msg.clone() });
        }
    }

    /// Fire `on_timer(token)` after `delay_ns` of this node's clock. Timers cannot be cancelled;
    /// handlers ignore tokens they no longer care about.
    pub fn set_timer(&mut self, delay_ns: u64, token: u64) {
        self.push(Output::Timer { delay_ns, token });
    }

    /// A risky moment: when the scenario enables crash points, the node may crash right after
    /// this input's outputs went out (its messages sent, its fsyncs not yet done).
    pub fn crash_point(&mut self, name: &'static str) {
        self.push(Output::CrashPoint { name });
    }

    /// Make `path` durable; `on_fsync(token)` follows when done.
    pub fn fsync(&mut self, path: &str, token: u64) {
        self.push(Output::Fsync { path: path.to_string(), token });
    }

    /// Add a system event to the canonical trace.
    pub fn trace<T: Serialize + Debug>(&mut self, kind: &str, payload: &T) {
        let digest = hash::digest(payload);
        self.trace.record(self.sim_ns, self.node, kind, digest, || format!("{payload:?}"));
    }
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
pub struct NodeView<'a, S> {
    pub state: Option<&'a S>,
    pub status: &'a NodeStatus,
    pub disk: &'a NodeDisk,
    /// How many times the node has been started.
    pub incarnation: u64,
}

/// What checks see of the whole cluster.
pub struct Cluster<'a, S: System> {
    pub nodes: Vec<NodeView<'a, S>>,
    pub ghost: &'a S::Ghost,
    pub config: &'a S::Config,
    pub sim_ns: u64,
}

impl<'a, S: System> Cluster<'a, S> {
    /// Running nodes with their index.
    pub fn running(&self) -> impl Iterator<Item = (NodeIndex, &'a S)> + '_ {
        self.nodes.iter().enumerate().filter_map(|(i, n)| match n.status {
            NodeStatus::Running | NodeStatus::Paused => n.state.map(|s| (i as NodeIndex, s)),
            _ => None,
        })
    }

    /// The state of `node` if it is running (or paused).
    pub fn server(&self, node: NodeIndex) -> Option<&'a S> {
        let view = self.nodes.get(node as usize)?;
        match view.status {
            NodeStatus::Running | NodeStatus::Paused => view.state,
            _ => None,
        }
    }
}
