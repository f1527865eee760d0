//! What the world holds while a run goes on, and the one way a node's handler runs: with an
//! [`Env`] over the world, its observations fed to the harness as they come, then the safety
//! checks.

use std::collections::BTreeSet;
use std::task::Waker;

use futures::channel::mpsc;
use madsim::runtime::NodeHandle;
use rand_chacha::ChaCha8Rng;

use super::{now_ns, Violation, INBOX_MAX};
use crate::clock::NodeClock;
use crate::coverage::{self, Coverage};
use crate::disk::NodeDisk;
use crate::harness::{Cluster, Fault, Harness, NodeStatus, NodeView, Touched};
use crate::hash;
use crate::net::{Network, NodeIndex};
use crate::node::{ClientOpOf, ConfigOf, Env, MsgOf, Node, ObservationOf, Observer, Output};
use crate::scenario::CrashPoints;
use crate::system::System;
use crate::trace::{Trace, WORLD};

/// Random words one handler may draw: a bound on every loop that draws, so a runaway one is
/// a finding rather than a hang.
pub const RNG_WORDS_PER_INPUT_MAX: u128 = 10_000_000;

pub(super) enum Input<N: Node> {
    Message { from: NodeIndex, msg: MsgOf<N> },
    Timer { token: u64 },
    Fsync { token: u64 },
    Client { op: ClientOpOf<N> },
}

pub(super) struct Slot<N: Node> {
    pub state: Option<N>,
    pub status: NodeStatus,
    pub inbox: Option<mpsc::UnboundedSender<Input<N>>>,
    pub inbox_len: usize,
    pub incarnation: u64,
}

impl<N: Node> Slot<N> {
    pub fn running(&self) -> bool {
        matches!(self.status, NodeStatus::Running | NodeStatus::Paused)
    }

    /// Whether the node takes messages and client requests now: it runs (or is paused) and
    /// its inbox has room.
    pub fn accepts(&self) -> bool {
        self.inbox.is_some() && self.running() && self.inbox_len < INBOX_MAX
    }

    /// Queue an input for the node's task, which must be started.
    pub fn push(&mut self, input: Input<N>) {
        let inbox = self.inbox.as_ref().expect("a started node has an inbox");
        assert!(self.inbox_len < 2 * INBOX_MAX, "the inbox of a node overflows");
        self.inbox_len += 1;
        let _ = inbox.unbounded_send(input);
    }
}

pub(super) struct Held<M> {
    pub from: NodeIndex,
    pub to: NodeIndex,
    pub msg: M,
}

/// A crash point that fired on `node`, and how the node goes down.
#[derive(Clone, Copy, Debug)]
pub(super) struct CrashRequest {
    pub node: NodeIndex,
    pub kind: CrashKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CrashKind {
    /// The process dies; what it wrote stays in the page cache.
    Process,
    /// The machine loses power: unsynced writes are gone (with `torn`, the last one survives
    /// in part).
    PowerLoss { torn: bool },
}

pub(super) struct WorldState<S: System> {
    pub servers: u32,
    pub crash_points: Option<CrashPoints>,
    /// Crash points that fired, for the supervisor to carry out.
    pub crash_requests: Option<mpsc::UnboundedSender<CrashRequest>>,
    pub rng: ChaCha8Rng,
    pub net: Network,
    pub disks: Vec<NodeDisk>,
    pub clocks: Vec<NodeClock>,
    pub slots: Vec<Slot<S::Node>>,
    pub harness: S::Harness,
    /// A liveness failure the harness excused (see [`Harness::excuse`]).
    pub excused: Option<String>,
    pub config: ConfigOf<S::Node>,
    pub bugs: BTreeSet<String>,
    pub trace: Trace,
    /// The probes this run hit ([`crate::coverage`]).
    pub coverage: Coverage,
    pub held: Vec<Held<MsgOf<S::Node>>>,
    pub fsync_latency_ns: u64,
    pub delivered: u64,
    pub violation: Option<Violation>,
    pub stop_waker: Option<Waker>,
    pub net_node: Option<NodeHandle>,
    /// Every safety check looks at the whole cluster ([`RunOptions::full_checks`]).
    pub full_checks: bool,
    /// The last handler's outputs list, emptied by [`super::node_task::execute`] and kept for
    /// the next handler: nearly every input sets a timer or sends, and a fresh list per input
    /// cost an allocation per event.
    pub spare_outputs: Vec<Output<MsgOf<S::Node>>>,
}

/// The harness behind a node's [`Env`]: observations and disk lies go in, nothing comes out.
struct Feed<'h, H>(&'h mut H);

impl<H: Harness> Observer<<H::Node as Node>::Types> for Feed<'_, H> {
    fn observe(&mut self, node: NodeIndex, observation: ObservationOf<'_, H::Node>) {
        self.0.observe(node, observation);
    }

    fn disk_lied(&mut self, node: NodeIndex, path: &str) {
        self.0.on_fault(node, Fault::LostFsync(path));
    }
}

impl<S: System> WorldState<S> {
    pub fn cluster(&self) -> Cluster<'_, S::Node> {
        cluster_of(&self.slots, &self.disks, &self.config, now_ns())
    }

    pub fn record(&mut self, node: u32, kind: &str, digest: u64, detail: impl FnOnce() -> String) {
        self.record_at(now_ns(), node, kind, digest, detail);
    }

    /// [`Self::record`] at `sim_ns`, the simulated time now, for callers that have it already:
    /// asking madsim for it is a good part of what an event costs.
    pub fn record_at(&mut self, sim_ns: u64, node: u32, kind: &str, digest: u64, detail: impl FnOnce() -> String) {
        self.trace.record(sim_ns, node, kind, digest, detail);
    }

    pub fn fail(&mut self, invariant: &str, node: Option<NodeIndex>, message: String) {
        if self.violation.is_some() {
            return;
        }
        let digest = hash::fnv1a64(invariant.as_bytes());
        self.record(node.unwrap_or(WORLD), "violation", digest, || format!("{invariant}: {message}"));
        self.violation = Some(Violation {
            invariant: invariant.to_string(),
            node,
            sim_ns: now_ns(),
            message,
            recent: self.trace.recent(),
        });
        if let Some(w) = self.stop_waker.take() {
            w.wake();
        }
    }

    /// The safety checks after something `touched` the cluster.
    pub fn check_safety(&mut self, touched: Touched) {
        self.check_safety_at(now_ns(), touched);
    }

    /// [`Self::check_safety`] at `sim_ns`, the simulated time now.
    fn check_safety_at(&mut self, sim_ns: u64, touched: Touched) {
        if self.violation.is_some() {
            return;
        }
        let touched = if self.full_checks { Touched::World } else { touched };
        let cluster = cluster_of(&self.slots, &self.disks, &self.config, sim_ns);
        if let Err(f) = self.harness.check_safety(&cluster, touched) {
            self.fail(&f.invariant, f.node, f.message);
        }
    }

    /// Coverage of `action` striking `node` in the states the harness names.
    pub fn cover_fault(&mut self, action: &str, node: NodeIndex) {
        let mut states = Vec::new();
        S::Harness::coverage_states(&self.cluster(), node, &mut states);
        let sim_ns = now_ns();
        for state in states {
            self.coverage.hit_owned(coverage::fault_probe(action, state), sim_ns, node);
        }
    }

    /// Tell the harness about a fault the world injected on `node`.
    pub fn fault(&mut self, node: NodeIndex, fault: Fault<'_>) {
        self.harness.on_fault(node, fault);
    }

    /// Run one handler of node `idx` with an [`Env`] over the world, then the safety checks.
    pub fn with_node<R>(
        &mut self,
        idx: NodeIndex,
        f: impl FnOnce(Option<&mut S::Node>, &mut Env<'_, <S::Node as Node>::Types>) -> R,
    ) -> (R, Vec<Output<MsgOf<S::Node>>>) {
        self.with_node_at(now_ns(), idx, f)
    }

    /// [`Self::with_node`] at `sim_ns`, the simulated time now: no simulated time passes
    /// inside a handler, so one reading serves the handler, its trace record and the checks.
    pub fn with_node_at<R>(
        &mut self,
        sim_ns: u64,
        idx: NodeIndex,
        f: impl FnOnce(Option<&mut S::Node>, &mut Env<'_, <S::Node as Node>::Types>) -> R,
    ) -> (R, Vec<Output<MsgOf<S::Node>>>) {
        let mut outputs = std::mem::take(&mut self.spare_outputs);
        debug_assert!(outputs.is_empty(), "spare outputs are emptied");
        let i = idx as usize;
        let words_before = self.rng.get_word_pos();
        let result = {
            let WorldState { servers, rng, disks, clocks, slots, harness, trace, coverage, bugs, config, .. } = self;
            let mut feed = Feed(harness);
            let mut env = Env {
                node: idx,
                servers: *servers,
                local_ns: clocks[i].local_ns(sim_ns),
                monotonic_ns: clocks[i].monotonic_ns(sim_ns),
                sim_ns,
                rng,
                disk: &mut disks[i],
                outputs: &mut outputs,
                observer: &mut feed,
                trace,
                coverage,
                bugs,
                config,
            };
            let result = f(slots[i].state.as_mut(), &mut env);
            env.report_disk_lies();
            result
        };
        let words = self.rng.get_word_pos() - words_before;
        assert!(words <= RNG_WORDS_PER_INPUT_MAX, "node {idx} drew {words} random words for one input");
        self.check_safety_at(sim_ns, Touched::Node(idx));
        (result, outputs)
    }

    pub fn deliver(&mut self, from: NodeIndex, to: NodeIndex, msg: MsgOf<S::Node>) {
        if self.violation.is_some() {
            return;
        }
        if self.net.is_cut(from, to) {
            let digest = hash::digest(&msg);
            self.record(to, "drop", digest, || format!("from n{from}: partitioned in flight"));
            return;
        }
        if self.net.is_clogged(from, to) {
            if self.held.len() >= crate::net::HELD_MESSAGES_MAX {
                let old = self.held.remove(0);
                let digest = hash::digest(&old.msg);
                self.record(old.to, "drop", digest, || format!("from n{}: clog buffer full", old.from));
            }
            self.held.push(Held { from, to, msg });
            return;
        }
        let slot = &mut self.slots[to as usize];
        if slot.accepts() {
            slot.push(Input::Message { from, msg });
            self.harness.on_delivery(from, to);
        } else {
            let digest = hash::digest(&msg);
            self.record(to, "drop", digest, || format!("from n{from}: receiver down or inbox full"));
        }
    }

    /// The world holds the network node's handle and the nodes' inboxes, whose tasks hold the
    /// world: break the cycle so a worker running thousands of seeds does not keep every world.
    pub fn break_cycles(&mut self) {
        self.net_node = None;
        for slot in &mut self.slots {
            slot.inbox = None;
            slot.state = None;
        }
        self.held.clear();
    }
}

/// The harness's view of the world: borrowed from the slots, disks and config alone, so the
/// harness itself can be borrowed mutably beside it.
fn cluster_of<'a, N: Node>(
    slots: &'a [Slot<N>],
    disks: &'a [NodeDisk],
    config: &'a ConfigOf<N>,
    sim_ns: u64,
) -> Cluster<'a, N> {
    Cluster {
        nodes: slots
            .iter()
            .zip(disks)
            .map(|(slot, disk)| NodeView {
                state: slot.state.as_ref(),
                status: &slot.status,
                disk,
                incarnation: slot.incarnation,
            })
            .collect(),
        config,
        sim_ns,
    }
}
