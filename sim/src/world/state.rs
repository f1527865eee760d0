//! What the world holds while a run goes on, and the one way a node's handler runs: with an
//! [`Env`] over the world, its observations fed to the harness as they come, then the safety
//! checks.

use std::collections::{BTreeSet, VecDeque};

use rand_chacha::ChaCha8Rng;

use super::agenda::Agenda;
use super::{Violation, INBOX_MAX};
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

/// What a node's inbox holds. A client op is boxed, as few inputs are client ops and an op is
/// large: unboxed, every input was as large.
pub(super) enum Input<N: Node> {
    Message { from: NodeIndex, msg: Box<MsgOf<N>> },
    Timer { token: u64 },
    Fsync { token: u64 },
    Client { op: Box<ClientOpOf<N>> },
}

/// What the world schedules: every one of them happens at one instant of simulated time.
pub(super) enum Event<N: Node> {
    /// The process of `node` starts, unless a later kill or restart voided this start
    /// (`start` is [`Slot::starts`] when it was asked for).
    Start { node: NodeIndex, start: u64 },
    /// The process of `node` handles the inputs waiting in its inbox.
    Drain { node: NodeIndex, incarnation: u64 },
    /// A message reaches the end of its link. Boxed from the send to the handler: a message is
    /// the largest payload by far, and unboxed it made every event and input as large and was
    /// copied into the agenda and the inbox and out again.
    Deliver { from: NodeIndex, to: NodeIndex, msg: Box<MsgOf<N>> },
    /// A timer the incarnation set fires.
    Timer { node: NodeIndex, incarnation: u64, token: u64 },
    /// An fsync the incarnation asked for completes.
    Fsync { node: NodeIndex, incarnation: u64, path: String, token: u64 },
    /// The scenario's next steps are due.
    Step,
    /// The liveness phase probes its check.
    Probe,
    /// The run's last instant.
    End,
    /// A crash point fired on `node`.
    Crash(CrashRequest),
    /// A node a crash point took down comes back.
    RestartAfterCrash { node: NodeIndex },
}

pub(super) struct Slot<N: Node> {
    pub state: Option<N>,
    pub status: NodeStatus,
    /// Inputs waiting for the process; `None` while no process is started.
    pub inbox: Option<VecDeque<Input<N>>>,
    /// A [`Event::Drain`] of this incarnation is scheduled.
    pub draining: bool,
    pub incarnation: u64,
    /// Starts asked for so far: a kill or a later restart voids a start still scheduled.
    pub starts: u64,
}

impl<N: Node> Slot<N> {
    pub fn running(&self) -> bool {
        matches!(self.status, NodeStatus::Running | NodeStatus::Paused)
    }

    /// Whether the node takes messages and client requests now: it runs (or is paused) and
    /// its inbox has room.
    pub fn accepts(&self) -> bool {
        self.running() && self.inbox.as_ref().is_some_and(|inbox| inbox.len() < INBOX_MAX)
    }

    /// Queue an input for the node's process, which must be started; whether a drain must be
    /// scheduled for it (the process runs and none is scheduled yet).
    fn push(&mut self, input: Input<N>) -> bool {
        let inbox = self.inbox.as_mut().expect("a started node has an inbox");
        assert!(inbox.len() < 2 * INBOX_MAX, "the inbox of a node overflows");
        inbox.push_back(input);
        self.wants_drain()
    }

    /// The process can handle inputs, has some waiting, and no drain is scheduled for them.
    pub fn wants_drain(&self) -> bool {
        self.status == NodeStatus::Running && !self.draining && self.inbox.as_ref().is_some_and(|i| !i.is_empty())
    }

    /// A new start of the process, which voids the ones asked for before: the number its
    /// [`Event::Start`] carries.
    pub fn ask_start(&mut self) -> u64 {
        self.starts += 1;
        self.starts
    }

    /// The process is gone: its state, its inbox and whatever it had scheduled.
    pub fn kill(&mut self) {
        self.state = None;
        self.inbox = None;
        self.draining = false;
        // Timers and fsyncs of the old incarnation must never reach the new one, and a start
        // still scheduled is the old process's.
        self.incarnation += 1;
        self.starts += 1;
        self.status = NodeStatus::Down;
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
    /// Simulated time now: the time of the event being handled. No time passes inside one.
    pub now_ns: u64,
    /// What happens next.
    pub agenda: Agenda<Event<S::Node>>,
    pub crash_points: Option<CrashPoints>,
    /// The world's own draws: faults, crash points, a scenario's `any` node.
    pub rng: ChaCha8Rng,
    /// What each node draws while it handles an input, by node index.
    pub node_rngs: Vec<ChaCha8Rng>,
    /// Each ordered link's message fates and latencies, at [`super::link_index`].
    pub link_rngs: Vec<ChaCha8Rng>,
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
    pub held: Vec<Held<Box<MsgOf<S::Node>>>>,
    pub fsync_latency_ns: u64,
    pub delivered: u64,
    pub violation: Option<Violation>,
    /// Every safety check looks at the whole cluster ([`RunOptions::full_checks`]).
    pub full_checks: bool,
    /// The last handler's outputs list, emptied by [`super::process::execute`] and kept for
    /// the next handler: nearly every input sets a timer or sends, and a fresh list per input
    /// cost an allocation per event.
    pub spare_outputs: Vec<Output<MsgOf<S::Node>>>,
    /// The last safety check's list of node views, emptied, for the next check's: one is built
    /// after every event, and an allocation each time was a tenth of the checks' fixed cost.
    pub spare_views: Vec<NodeView<'static, S::Node>>,
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
        cluster_of(&self.slots, &self.disks, &self.config, self.now_ns)
    }

    pub fn record(&mut self, node: u32, kind: &'static str, digest: u64, detail: impl FnOnce() -> String) {
        self.trace.record(self.now_ns, node, kind, digest, detail);
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
            sim_ns: self.now_ns,
            message,
            recent: self.trace.recent(),
        });
    }

    /// The safety checks after something `touched` the cluster.
    pub fn check_safety(&mut self, touched: Touched) {
        if self.violation.is_some() {
            return;
        }
        let touched = if self.full_checks { Touched::World } else { touched };
        let views = recycled(std::mem::take(&mut self.spare_views));
        let cluster = cluster_in(views, &self.slots, &self.disks, &self.config, self.now_ns);
        let verdict = self.harness.check_safety(&cluster, touched);
        self.spare_views = recycled(cluster.nodes);
        if let Err(f) = verdict {
            self.fail(&f.invariant, f.node, f.message);
        }
    }

    /// Coverage of `action` striking `node` in the states the harness names.
    pub fn cover_fault(&mut self, action: &str, node: NodeIndex) {
        let mut states = Vec::new();
        S::Harness::coverage_states(&self.cluster(), node, &mut states);
        let sim_ns = self.now_ns;
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
        let mut outputs = std::mem::take(&mut self.spare_outputs);
        debug_assert!(outputs.is_empty(), "spare outputs are emptied");
        let i = idx as usize;
        let sim_ns = self.now_ns;
        let words_before = self.node_rngs[i].get_word_pos();
        let result = {
            let WorldState { servers, node_rngs, disks, clocks, slots, harness, trace, coverage, bugs, config, .. } =
                self;
            let rng = &mut node_rngs[i];
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
        let words = self.node_rngs[i].get_word_pos() - words_before;
        assert!(words <= RNG_WORDS_PER_INPUT_MAX, "node {idx} drew {words} random words for one input");
        self.check_safety(Touched::Node(idx));
        (result, outputs)
    }

    pub fn deliver(&mut self, from: NodeIndex, to: NodeIndex, msg: Box<MsgOf<S::Node>>) {
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
        if self.slots[to as usize].accepts() {
            self.enqueue(to, Input::Message { from, msg });
            self.harness.on_delivery(from, to);
        } else {
            let digest = hash::digest(&msg);
            self.record(to, "drop", digest, || format!("from n{from}: receiver down or inbox full"));
        }
    }

    /// Queue an input for node `idx`, which must accept it, and have the process drain its
    /// inbox now if nothing else will.
    pub fn enqueue(&mut self, idx: NodeIndex, input: Input<S::Node>) {
        if self.slots[idx as usize].push(input) {
            self.schedule_drain(idx);
        }
    }

    /// Have the process of `idx` handle its inbox later at this instant.
    pub fn schedule_drain(&mut self, idx: NodeIndex) {
        let slot = &mut self.slots[idx as usize];
        debug_assert!(slot.wants_drain(), "a drain is scheduled only for a running node with inputs");
        slot.draining = true;
        let incarnation = slot.incarnation;
        self.agenda.at(self.now_ns, Event::Drain { node: idx, incarnation });
    }

    /// Start the process of `node` later at this instant, voiding any start asked for before.
    pub fn schedule_start(&mut self, node: NodeIndex) {
        let start = self.slots[node as usize].ask_start();
        self.agenda.at(self.now_ns, Event::Start { node, start });
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
    cluster_in(Vec::new(), slots, disks, config, sim_ns)
}

/// [`cluster_of`], its views put in `views` (empty).
fn cluster_in<'a, N: Node>(
    mut views: Vec<NodeView<'a, N>>,
    slots: &'a [Slot<N>],
    disks: &'a [NodeDisk],
    config: &'a ConfigOf<N>,
    sim_ns: u64,
) -> Cluster<'a, N> {
    debug_assert!(views.is_empty(), "the views are built afresh");
    views.extend(slots.iter().zip(disks).map(|(slot, disk)| NodeView {
        state: slot.state.as_ref(),
        status: &slot.status,
        disk,
        incarnation: slot.incarnation,
    }));
    Cluster { nodes: views, config, sim_ns }
}

/// `views` emptied, as views of another lifetime, in the same allocation: collecting a
/// vector's own iterator into items of the same size reuses its buffer, and with no item
/// left no borrow is carried over.
fn recycled<'b, N: Node>(mut views: Vec<NodeView<'_, N>>) -> Vec<NodeView<'b, N>> {
    views.clear();
    views.into_iter().map(|_| unreachable!("emptied above")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::ping::Ping;

    /// The checks' list of views outlives each check's borrows in its allocation only.
    #[test]
    fn recycled_views_keep_their_allocation_and_nothing_else() {
        let (status, disk) = (NodeStatus::Running, NodeDisk::default());
        let view = || NodeView::<Ping> { state: None, status: &status, disk: &disk, incarnation: 1 };
        let views: Vec<NodeView<'_, Ping>> = (0..5).map(|_| view()).collect();
        let (buffer, capacity) = (views.as_ptr() as usize, views.capacity());
        let spare: Vec<NodeView<'static, Ping>> = recycled(views);
        assert!(spare.is_empty());
        assert_eq!((spare.as_ptr() as usize, spare.capacity()), (buffer, capacity), "the same buffer");
    }
}
