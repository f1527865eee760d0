//! The node's side of the engine's contract: a per-server state machine driven by inputs
//! (start, message, timer, fsync done, client request).
//!
//! A node acts only through its [`Env`]: send, set a timer, write and sync its disk, mark a
//! crash point, record a trace event, and tell the oracle what it did. It never sees the
//! oracle: [`Env::observe`] is a one-way channel, fed to the harness in order, before the
//! safety checks run. The engine owns time, delivery, the disk and faults.

use std::collections::BTreeSet;
use std::fmt::{Debug, Display};

use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::coverage::Coverage;
use crate::disk::NodeDisk;
use crate::hash;
use crate::net::NodeIndex;
use crate::trace::Trace;

/// The types a node speaks: what travels between nodes, what clients ask of it, its settings
/// (the scenario's `[system]` table) and what it tells the oracle. Kept apart from [`Node`]
/// so the node's own files can name their [`Env`] without naming the node.
pub trait NodeTypes: 'static {
    type Msg: Serialize + Debug + Clone + Send + 'static;
    /// Shown in words (its `Display`) in the event log's `client` lines.
    type ClientOp: Serialize + DeserializeOwned + Debug + Display + Clone + PartialEq + Send + Sync + 'static;
    type Config: Serialize + DeserializeOwned + Debug + Clone + PartialEq + Default + Send + Sync + 'static;
    /// A fact only visible as it happens (a leader elected, an entry applied, a message
    /// acknowledged), which the oracle needs and no node state keeps. Borrowed: observations
    /// are handed over at once, never stored by the engine.
    type Observation<'a>: Debug;

    /// A message in words for the event log (`recv` lines); the trace's digest is the
    /// message's own, whatever the wording. The debug form unless the system says better.
    fn describe_message(msg: &Self::Msg) -> String {
        format!("{msg:?}")
    }
}

/// One server process of the system under test.
pub trait Node: Sized + Send + 'static {
    type Types: NodeTypes;

    /// The file kinds (first path segments) it writes, which disk faults are aimed at.
    const FILE_KINDS: &'static [&'static str];
    /// Every file kind the node writes, which a scenario's disk faults may name;
    /// [`Self::FILE_KINDS`] are the ones fuzzing aims at.
    const KNOWN_FILE_KINDS: &'static [&'static str] = Self::FILE_KINDS;

    /// Start (or restart) a node against what its disk holds. `Err` means the node refuses to
    /// start, with the reason; it stays down until restarted.
    fn start(env: &mut Env<'_, Self::Types>) -> Result<Self, String>;
    fn on_message(&mut self, env: &mut Env<'_, Self::Types>, from: NodeIndex, msg: MsgOf<Self>);
    fn on_timer(&mut self, env: &mut Env<'_, Self::Types>, token: u64);
    /// An fsync asked for with `token` completed (it may have been silently lost).
    fn on_fsync(&mut self, env: &mut Env<'_, Self::Types>, token: u64);
    fn on_client(&mut self, env: &mut Env<'_, Self::Types>, op: ClientOpOf<Self>);
    /// A graceful stop (`shutdown`), the process's last input: what it sends still leaves,
    /// then it stops (memory gone, files as the handler left them). A node that does nothing
    /// special stops as if crashed.
    fn on_shutdown(&mut self, _env: &mut Env<'_, Self::Types>) {}
}

pub type MsgOf<N> = <<N as Node>::Types as NodeTypes>::Msg;
pub type ClientOpOf<N> = <<N as Node>::Types as NodeTypes>::ClientOp;
pub type ConfigOf<N> = <<N as Node>::Types as NodeTypes>::Config;
pub type ObservationOf<'a, N> = <<N as Node>::Types as NodeTypes>::Observation<'a>;

/// What a node asked the world to do. A message is boxed as the node sends it: it is the
/// largest output by far, and the box carries it to the handler (the agenda and the inbox hold
/// it boxed too).
#[derive(Debug)]
pub(crate) enum Output<M> {
    Send { to: NodeIndex, msg: Box<M> },
    Timer { delay_ns: u64, token: u64 },
    Fsync { path: String, token: u64 },
    CrashPoint { name: &'static str },
}

/// Where a node's observations go: the harness, behind the engine. Write-only by design.
pub(crate) trait Observer<T: NodeTypes> {
    fn observe(&mut self, node: NodeIndex, observation: T::Observation<'_>);
    /// The node's disk swallowed an fsync it was asked for (a lie the world injected).
    fn disk_lied(&mut self, node: NodeIndex, path: &str);
}

/// A node's window on the world while it handles one input.
pub struct Env<'a, T: NodeTypes> {
    pub(crate) node: NodeIndex,
    pub(crate) servers: u32,
    pub(crate) local_ns: u64,
    pub(crate) monotonic_ns: u64,
    pub(crate) sim_ns: u64,
    pub(crate) rng: &'a mut ChaCha8Rng,
    pub(crate) disk: &'a mut NodeDisk,
    pub(crate) outputs: &'a mut Vec<Output<T::Msg>>,
    pub(crate) observer: &'a mut dyn Observer<T>,
    pub(crate) trace: &'a mut Trace,
    pub(crate) coverage: &'a mut Coverage,
    pub(crate) bugs: &'a BTreeSet<String>,
    pub(crate) config: &'a T::Config,
}

/// Outputs a node may queue while handling one input; a handler that loops forever on sends
/// is a bug, found here rather than as an exhausted host.
pub const OUTPUTS_PER_INPUT_MAX: usize = 100_000;

impl<T: NodeTypes> Env<'_, T> {
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

    pub fn config(&self) -> &T::Config {
        self.config
    }

    /// Whether the named bug switch is on for this run.
    pub fn bug(&self, name: &str) -> bool {
        self.bugs.contains(name)
    }

    fn push(&mut self, output: Output<T::Msg>) {
        assert!(self.outputs.len() < OUTPUTS_PER_INPUT_MAX, "node {} queued too many outputs", self.node);
        self.outputs.push(output);
    }

    pub fn send(&mut self, to: NodeIndex, msg: T::Msg) {
        assert!(to < self.servers && to != self.node, "node {} sends to {to}", self.node);
        self.push(Output::Send { to, msg: Box::new(msg) });
    }

    /// Send a copy to every other node.
    pub fn broadcast(&mut self, msg: T::Msg) {
        let me = self.node;
        for to in (0..self.servers).filter(|&n| n != me) {
            self.push(Output::Send { to, msg: Box::new(msg.clone()) });
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

    /// Add a system event to the canonical trace. Its detail is the payload's debug form, with
    /// byte arrays that hold text shown as text ([`crate::trace::readable`]).
    pub fn trace<P: Serialize + Debug>(&mut self, kind: &'static str, payload: &P) {
        self.coverage.hit(kind, self.sim_ns, self.node);
        let digest = hash::digest(payload);
        self.trace.record(self.sim_ns, self.node, kind, digest, || crate::trace::readable(&format!("{payload:?}")));
    }

    /// Add a system event whose detail the caller words itself; the digest is the payload's, as
    /// with [`Self::trace`], so the trace hash does not depend on the wording. `detail` runs
    /// only when the trace keeps details.
    pub fn trace_with<P: Serialize>(&mut self, kind: &'static str, payload: &P, detail: impl FnOnce() -> String) {
        self.coverage.hit(kind, self.sim_ns, self.node);
        let digest = hash::digest(payload);
        self.trace.record(self.sim_ns, self.node, kind, digest, detail);
    }

    /// Add a system event whose payload is already words (a reason, a name): the detail is
    /// the text itself, unquoted; the digest is the text's, as [`Self::trace`] gives it.
    pub fn trace_text(&mut self, kind: &'static str, text: &str) {
        self.trace_with(kind, &text, || text.to_string());
    }

    /// A behaviour worth covering happened here ([`crate::coverage`]). Every trace event is
    /// one already (its kind); this is for behaviours the trace does not tell apart. It
    /// changes nothing in the run.
    pub fn probe(&mut self, name: &'static str) {
        self.coverage.hit(name, self.sim_ns, self.node);
    }

    /// Whether the trace keeps details (worth formatting them).
    pub fn wants_detail(&self) -> bool {
        self.trace.wants_detail()
    }

    /// Tell the oracle something that happened here. The oracle hears of it at once, after
    /// any disk lie this input met before it, so it sees events in the order they happened.
    pub fn observe(&mut self, observation: T::Observation<'_>) {
        self.report_disk_lies();
        self.observer.observe(self.node, observation);
    }

    /// Pass on the fsyncs the disk swallowed since the last report: the world injected those
    /// lies, so the oracle learns of them from the engine, never from the node.
    pub(crate) fn report_disk_lies(&mut self) {
        if !self.disk.has_lies() {
            return;
        }
        for path in self.disk.take_lies() {
            self.observer.disk_lied(self.node, &path);
        }
    }
}
