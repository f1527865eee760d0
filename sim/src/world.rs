//! The world: runs a scenario of a [`System`] inside one madsim runtime.
//!
//! Each server is a madsim node whose task feeds inputs to the system. The world owns what the
//! nodes share: the network model (which decides every message's fate and delay), the disks,
//! the clocks, the trace and the oracle's ghost state. Deliveries, timers and fsyncs are madsim
//! timers, so simulated time only moves when nothing is runnable.

use std::collections::BTreeSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::channel::mpsc;
use futures::StreamExt;
use madsim::runtime::{Handle, NodeHandle, Runtime};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::clock::NodeClock;
use crate::disk::NodeDisk;
use crate::hash;
use crate::net::{Fate, LinkProfile, Network, NodeIndex, HELD_MESSAGES_MAX};
use crate::scenario::{Action, CrashPoints, Scenario};
use crate::system::{Cluster, Env, Fault, NodeStatus, NodeView, Output, System};
use crate::trace::{Trace, TraceEvent, WORLD};

/// The scenario type of a system.
pub type ScenarioOf<S> = Scenario<<S as System>::ClientOp, <S as System>::Expect, <S as System>::Config>;

/// Messages waiting in one node's inbox (e.g. while it is paused) are capped.
pub const INBOX_MAX: usize = 100_000;

/// How a run is observed.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Keep every trace event (for determinism checks and `--trace-out`).
    pub keep_trace: bool,
    /// Keep human-readable detail in trace events.
    pub keep_detail: bool,
    /// Print every trace event as it happens.
    pub log: bool,
    /// Bug switches to turn on, in addition to the scenario's.
    pub bugs: Vec<String>,
    /// Override the scenario's seed.
    pub seed: Option<u64>,
}

/// A failed invariant or expectation, located.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: String,
    pub node: Option<NodeIndex>,
    pub sim_ns: u64,
    pub message: String,
    /// The events just before it, oldest first.
    pub recent: Vec<TraceEvent>,
}

/// The outcome of one run.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub seed: u64,
    pub trace_hash: u64,
    pub events: u64,
    pub sim_ns: u64,
    pub messages_delivered: u64,
    pub violation: Option<Violation>,
    /// The run ended in a panic the system excused (see [`System::excuse_panic`]): the panic
    /// and the excuse. Not a pass: the run did not finish.
    pub excused: Option<String>,
    pub trace: Option<Vec<TraceEvent>>,
}

impl RunReport {
    pub fn passed(&self) -> bool {
        self.violation.is_none() && self.excused.is_none()
    }
}

enum Input<S: System> {
    Message { from: NodeIndex, msg: S::Msg },
    Timer { token: u64 },
    Fsync { token: u64 },
    Client { op: S::ClientOp },
}

struct Slot<S: System> {
    state: Option<S>,
    status: NodeStatus,
    inbox: Option<mpsc::UnboundedSender<Input<S>>>,
    inbox_len: usize,
    incarnation: u64,
}

struct Held<M> {
    from: NodeIndex,
    to: NodeIndex,
    msg: M,
}

struct WorldState<S: System> {
    servers: u32,
    crash_points: Option<CrashPoints>,
    /// Crash points that fired, for the supervisor to carry out.
    crash_requests: Option<mpsc::UnboundedSender<NodeIndex>>,
    rng: ChaCha8Rng,
    net: Network,
    disks: Vec<NodeDisk>,
    clocks: Vec<NodeClock>,
    slots: Vec<Slot<S>>,
    ghost: S::Ghost,
    /// A liveness failure the system excused (see [`System::excuse`]).
    excused: Option<String>,
    config: S::Config,
    bugs: BTreeSet<String>,
    trace: Trace,
    held: Vec<Held<S::Msg>>,
    fsync_latency_ns: u64,
    delivered: u64,
    violation: Option<Violation>,
    stop_waker: Option<Waker>,
    net_node: Option<NodeHandle>,
}

fn now_ns() -> u64 {
    madsim::time::TimeHandle::current().elapsed().as_nanos() as u64
}

impl<S: System> WorldState<S> {
    fn cluster(&self) -> Cluster<'_, S> {
        Cluster {
            nodes: self
                .slots
                .iter()
                .zip(&self.disks)
                .map(|(slot, disk)| NodeView {
                    state: slot.state.as_ref(),
                    status: &slot.status,
                    disk,
                    incarnation: slot.incarnation,
                })
                .collect(),
            ghost: &self.ghost,
            config: &self.config,
            sim_ns: now_ns(),
        }
    }

    fn record(&mut self, node: u32, kind: &str, digest: u64, detail: impl FnOnce() -> String) {
        self.trace.record(now_ns(), node, kind, digest, detail);
    }

    fn fail(&mut self, invariant: &str, node: Option<NodeIndex>, message: String) {
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

    fn check_safety(&mut self) {
        if self.violation.is_some() {
            return;
        }
        if let Err(f) = S::check_safety(&self.cluster()) {
            self.fail(&f.invariant, f.node, f.message);
        }
    }

    /// Run one handler of node `idx` with an [`Env`] over the world, then the safety checks.
    fn with_node<R>(
        &mut self,
        idx: NodeIndex,
        f: impl FnOnce(Option<&mut S>, &mut Env<'_, S>) -> R,
    ) -> (R, Vec<Output<S::Msg>>) {
        let sim_ns = now_ns();
        let mut outputs = Vec::new();
        let i = idx as usize;
        let result = {
            let mut env = Env {
                node: idx,
                servers: self.servers,
                local_ns: self.clocks[i].local_ns(sim_ns),
                monotonic_ns: self.clocks[i].monotonic_ns(sim_ns),
                sim_ns,
                rng: &mut self.rng,
                disk: &mut self.disks[i],
                outputs: &mut outputs,
                ghost: &mut self.ghost,
                trace: &mut self.trace,
                bugs: &self.bugs,
                config: &self.config,
            };
            f(self.slots[i].state.as_mut(), &mut env)
        };
        self.check_safety();
        (result, outputs)
    }

    fn deliver(&mut self, from: NodeIndex, to: NodeIndex, msg: S::Msg) {
        if self.violation.is_some() {
            return;
        }
        if self.net.is_cut(from, to) {
            let digest = hash::digest(&msg);
            self.record(to, "drop", digest, || format!("from n{from}: partitioned in flight"));
            return;
        }
        if self.net.is_clogged(from, to) {
            if self.held.len() >= HELD_MESSAGES_MAX {
                let old = self.held.remove(0);
                let digest = hash::digest(&old.msg);
                self.record(old.to, "drop", digest, || format!("from n{}: clog buffer full", old.from));
            }
            self.held.push(Held { from, to, msg });
            return;
        }
        let slot = &mut self.slots[to as usize];
        let accepting = matches!(slot.status, NodeStatus::Running | NodeStatus::Paused);
        match (&slot.inbox, accepting) {
            (Some(inbox), true) if slot.inbox_len < INBOX_MAX => {
                slot.inbox_len += 1;
                let _ = inbox.unbounded_send(Input::Message { from, msg });
            }
            _ => {
                let digest = hash::digest(&msg);
                self.record(to, "drop", digest, || format!("from n{from}: receiver down or inbox full"));
            }
        }
    }
}

type World<S> = Arc<Mutex<WorldState<S>>>;

fn lock<S: System>(world: &World<S>) -> MutexGuard<'_, WorldState<S>> {
    // A panic inside a handler poisons the lock; the run is over then, but the report still
    // needs the trace, so take the data anyway.
    world.lock().unwrap_or_else(|e| e.into_inner())
}

/// Carry out what a node asked for.
fn execute<S: System>(world: &World<S>, idx: NodeIndex, outputs: Vec<Output<S::Msg>>) {
    if outputs.is_empty() {
        return;
    }
    let mut w = lock(world);
    let incarnation = w.slots[idx as usize].incarnation;
    for output in outputs {
        match output {
            Output::Send { to, msg } => {
                let fate = {
                    let WorldState { net, rng, .. } = &mut *w;
                    net.fate(idx, to, rng)
                };
                match fate {
                    Fate::Dropped(reason) => {
                        let digest = hash::digest(&msg);
                        w.record(idx, "drop", digest, || format!("to n{to}: {}", reason.as_str()));
                    }
                    Fate::Deliver(delays) => {
                        let net_node = w.net_node.clone().expect("network node exists");
                        for delay in delays {
                            let world = Arc::downgrade(world);
                            let msg = msg.clone();
                            net_node.spawn(async move {
                                madsim::time::sleep(Duration::from_nanos(delay)).await;
                                if let Some(world) = world.upgrade() {
                                    lock(&world).deliver(idx, to, msg);
                                }
                            });
                        }
                    }
                }
            }
            Output::Timer { delay_ns, token } => {
                let sim_delay = w.clocks[idx as usize].sim_duration_ns(delay_ns);
                let world = Arc::downgrade(world);
                madsim::task::spawn(async move {
                    madsim::time::sleep(Duration::from_nanos(sim_delay)).await;
                    if let Some(world) = world.upgrade() {
                        push_input(&world, idx, incarnation, Input::Timer { token });
                    }
                });
            }
            Output::CrashPoint { name } => {
                let Some(cp) = w.crash_points else { continue };
                if w.violation.is_some() || now_ns() >= cp.until_ms * 1_000_000 {
                    continue;
                }
                if w.rng.gen_range(0..1_000_000) < cp.rate_ppm {
                    w.record(idx, "crash-point", hash::fnv1a64(name.as_bytes()), || name.to_string());
                    if let Some(tx) = &w.crash_requests {
                        let _ = tx.unbounded_send(idx);
                    }
                }
            }
            Output::Fsync { path, token } => {
                let delay = w.fsync_latency_ns + w.disks[idx as usize].faults.slow_ns;
                let world = Arc::downgrade(world);
                madsim::task::spawn(async move {
                    madsim::time::sleep(Duration::from_nanos(delay)).await;
                    let Some(world) = world.upgrade() else { return };
                    let mut w = lock(&world);
                    if w.slots[idx as usize].incarnation != incarnation {
                        return;
                    }
                    let durable = w.disks[idx as usize].fsync(&path);
                    if !durable {
                        let digest = hash::fnv1a64(path.as_bytes());
                        w.record(idx, "fsync-lost", digest, || path.clone());
                        S::on_fault(&mut w.ghost, idx, Fault::LostFsync(&path));
                    }
                    drop(w);
                    push_input(&world, idx, incarnation, Input::Fsync { token });
                });
            }
        }
    }
}

fn push_input<S: System>(world: &World<S>, idx: NodeIndex, incarnation: u64, input: Input<S>) {
    let mut w = lock(world);
    let slot = &mut w.slots[idx as usize];
    if slot.incarnation != incarnation {
        return;
    }
    if let Some(inbox) = &slot.inbox {
        slot.inbox_len += 1;
        let _ = inbox.unbounded_send(input);
    }
}

/// One server process: start against the disk, then handle inputs until killed.
async fn node_main<S: System>(weak: Weak<Mutex<WorldState<S>>>, idx: NodeIndex) {
    let (tx, mut rx) = mpsc::unbounded();
    // Tasks hold the world weakly: madsim does not drop pending tasks with the runtime, and a
    // strong reference from one would keep the whole world alive after the run.
    let Some(world) = weak.upgrade() else { return };
    let outputs = {
        let mut w = lock(&world);
        let slot = &mut w.slots[idx as usize];
        slot.incarnation += 1;
        slot.inbox = Some(tx);
        slot.inbox_len = 0;
        let incarnation = slot.incarnation;
        w.record(idx, "start", incarnation, || format!("incarnation {incarnation}"));
        let (started, outputs) = w.with_node(idx, |_, env| S::start(env));
        match started {
            Ok(state) => {
                let slot = &mut w.slots[idx as usize];
                slot.state = Some(state);
                slot.status = NodeStatus::Running;
            }
            Err(reason) => {
                let digest = hash::fnv1a64(reason.as_bytes());
                w.record(idx, "refused", digest, || reason.clone());
                let slot = &mut w.slots[idx as usize];
                slot.status = NodeStatus::Refused(reason);
                slot.inbox = None;
                return;
            }
        }
        w.check_safety();
        outputs
    };
    execute(&world, idx, outputs);
    drop(world);

    while let Some(input) = rx.next().await {
        let Some(world) = weak.upgrade() else { return };
        let outputs = {
            let mut w = lock(&world);
            w.slots[idx as usize].inbox_len -= 1;
            if w.violation.is_some() {
                continue;
            }
            let ((), outputs) = match input {
                Input::Message { from, msg } => {
                    w.delivered += 1;
                    let digest = hash::digest(&msg);
                    w.record(idx, "recv", digest, || format!("from n{from}: {msg:?}"));
                    w.with_node(idx, |s, env| s.expect("running").on_message(env, from, msg))
                }
                Input::Timer { token } => {
                    w.record(idx, "timer", token, || format!("token {token}"));
                    w.with_node(idx, |s, env| s.expect("running").on_timer(env, token))
                }
                Input::Fsync { token } => {
                    w.record(idx, "fsync-done", token, || format!("token {token}"));
                    w.with_node(idx, |s, env| s.expect("running").on_fsync(env, token))
                }
                Input::Client { op } => {
                    let digest = hash::digest(&op);
                    w.record(idx, "client", digest, || format!("{op:?}"));
                    w.with_node(idx, |s, env| s.expect("running").on_client(env, op))
                }
            };
            outputs
        };
        execute(&world, idx, outputs);
    }
}

/// Resolves once a violation has been recorded.
struct Stopped<S: System>(World<S>);

impl<S: System> Future for Stopped<S> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut w = lock(&self.0);
        if w.violation.is_some() {
            Poll::Ready(())
        } else {
            w.stop_waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// Sleep until `at_ns` of simulated time; false if a violation stopped the run first.
async fn sleep_until<S: System>(world: &World<S>, at_ns: u64) -> bool {
    let now = now_ns();
    if now < at_ns {
        let sleep = Box::pin(madsim::time::sleep(Duration::from_nanos(at_ns - now)));
        futures::future::select(sleep, Box::pin(Stopped(world.clone()))).await;
    }
    lock(world).violation.is_none()
}

/// The step driver, running on the supervisor.
struct Supervisor<S: System> {
    world: World<S>,
    handle: Handle,
    node_ids: Vec<madsim::task::NodeId>,
    scenario: Arc<ScenarioOf<S>>,
}

// By hand: a derive would demand `S: Clone`.
impl<S: System> Clone for Supervisor<S> {
    fn clone(&self) -> Self {
        Supervisor {
            world: self.world.clone(),
            handle: self.handle.clone(),
            node_ids: self.node_ids.clone(),
            scenario: self.scenario.clone(),
        }
    }
}

impl<S: System> Supervisor<S> {
    fn kill(&self, w: &mut WorldState<S>, node: NodeIndex) {
        self.handle.kill(self.node_ids[node as usize]);
        let slot = &mut w.slots[node as usize];
        slot.state = None;
        slot.inbox = None;
        slot.inbox_len = 0;
        // Timers and fsyncs of the old incarnation must never reach the new one.
        slot.incarnation += 1;
        slot.status = NodeStatus::Down;
    }

    fn release_held(&self, w: &mut WorldState<S>) {
        let held = std::mem::take(&mut w.held);
        let (release, keep): (Vec<_>, Vec<_>) = held.into_iter().partition(|h| !w.net.is_clogged(h.from, h.to));
        w.held = keep;
        let net_node = w.net_node.clone().expect("network node exists");
        for h in release {
            let delay = {
                let WorldState { net, rng, .. } = &mut *w;
                net.latency_ns(h.from, h.to, rng)
            };
            let world = Arc::downgrade(&self.world);
            net_node.spawn(async move {
                madsim::time::sleep(Duration::from_nanos(delay)).await;
                if let Some(world) = world.upgrade() {
                    lock(&world).deliver(h.from, h.to, h.msg);
                }
            });
        }
    }

    fn restart(&self, w: &mut WorldState<S>, node: NodeIndex) {
        if matches!(w.slots[node as usize].status, NodeStatus::Running | NodeStatus::Paused) {
            self.kill(w, node);
            S::on_fault(&mut w.ghost, node, Fault::Crash);
        }
        w.slots[node as usize].status = NodeStatus::Down;
        self.handle.restart(self.node_ids[node as usize]);
    }

    fn apply(&self, action: &Action<S::ClientOp, S::Expect>) {
        let mut w = lock(&self.world);
        let digest = hash::digest(action);
        w.record(WORLD, action.name(), digest, || format!("{action:?}"));
        match action {
            Action::Client { node, op } => {
                let node = node.unwrap_or_else(|| {
                    let servers = w.servers;
                    w.rng.gen_range(0..servers)
                });
                let slot = &mut w.slots[node as usize];
                match (&slot.inbox, &slot.status) {
                    (Some(inbox), NodeStatus::Running | NodeStatus::Paused) if slot.inbox_len < INBOX_MAX => {
                        slot.inbox_len += 1;
                        let _ = inbox.unbounded_send(Input::Client { op: op.clone() });
                    }
                    _ => {
                        let digest = hash::digest(op);
                        w.record(node, "client-refused", digest, || "server is not running".into());
                    }
                }
            }
            Action::Expect { check } => {
                if let Err(f) = S::check_expect(&w.cluster(), check) {
                    w.fail(&format!("expect:{}", f.invariant), f.node, f.message);
                }
            }
            Action::Partition { groups } => w.net.partition(groups),
            Action::PartitionOneWay { from, to } => w.net.partition_one_way(from, to),
            Action::Isolate { node } => {
                let servers = w.servers;
                w.net.isolate(*node, servers)
            }
            Action::HealNetwork {} => w.net.heal_partitions(),
            Action::Clog { node } => w.net.clog_node(*node),
            Action::Unclog { node } => {
                w.net.unclog_node(*node);
                self.release_held(&mut w);
            }
            Action::ClogLink { from, to } => w.net.clog_link(*from, *to),
            Action::UnclogLink { from, to } => {
                w.net.unclog_link(*from, *to);
                self.release_held(&mut w);
            }
            Action::SetNetwork { profile } => w.net.profile = *profile,
            Action::SetLink { from, to, profile } => {
                w.net.link_overrides.insert((*from, *to), *profile);
            }
            Action::Crash { node } => {
                if matches!(w.slots[*node as usize].status, NodeStatus::Running | NodeStatus::Paused) {
                    self.kill(&mut w, *node);
                    w.disks[*node as usize].process_crash();
                    S::on_fault(&mut w.ghost, *node, Fault::Crash);
                }
            }
            Action::Restart { node } => self.restart(&mut w, *node),
            Action::PowerLoss { node, torn } => {
                if matches!(w.slots[*node as usize].status, NodeStatus::Running | NodeStatus::Paused) {
                    self.kill(&mut w, *node);
                }
                let torn_write = {
                    let WorldState { disks, rng, .. } = &mut *w;
                    disks[*node as usize].power_loss(*torn, rng)
                };
                if let Some((path, kept)) = torn_write {
                    w.record(*node, "torn-write", kept as u64, || {
                        format!("{path}: {kept} bytes of the last write survived")
                    });
                }
                S::on_fault(&mut w.ghost, *node, Fault::PowerLoss);
            }
            Action::Pause { node } => {
                if w.slots[*node as usize].status == NodeStatus::Running {
                    self.handle.pause(self.node_ids[*node as usize]);
                    w.slots[*node as usize].status = NodeStatus::Paused;
                }
            }
            Action::Resume { node } => {
                if w.slots[*node as usize].status == NodeStatus::Paused {
                    self.handle.resume(self.node_ids[*node as usize]);
                    w.slots[*node as usize].status = NodeStatus::Running;
                }
            }
            Action::Corrupt { node, kind, corruption } => {
                let report = {
                    let WorldState { disks, rng, .. } = &mut *w;
                    disks[*node as usize].corrupt(kind, *corruption, rng)
                };
                let digest = hash::digest(&report.paths);
                w.record(*node, "corrupted", digest, || {
                    format!("{:?} {:?}: {}", corruption, report.paths, report.detail)
                });
                S::on_fault(&mut w.ghost, *node, Fault::Corruption(&report));
            }
            Action::LostFsync { node, kind, on } => {
                let faults = &mut w.disks[*node as usize].faults.lost_fsync;
                if *on {
                    faults.insert(kind.clone())
                } else {
                    faults.remove(kind)
                };
            }
            Action::NoSpace { node, kind, on } => {
                let faults = &mut w.disks[*node as usize].faults.no_space;
                if *on {
                    faults.insert(kind.clone())
                } else {
                    faults.remove(kind)
                };
            }
            Action::SlowDisk { node, extra_ms } => w.disks[*node as usize].faults.slow_ns = extra_ms * 1_000_000,
            Action::ClockJump { node, by_ms } => w.clocks[*node as usize].offset_ns += by_ms * 1_000_000,
            Action::ClockDrift { node, ppm } => w.clocks[*node as usize].set_drift(now_ns(), *ppm),
            Action::HealAll {} => {
                S::on_heal(&mut w.ghost);
                w.net.heal_partitions();
                w.net.unclog_all();
                w.net.link_overrides.clear();
                // Loss and duplication are faults too: the liveness phase runs on a clean network
                // with the scenario's latencies.
                w.net.profile = LinkProfile { loss_ppm: 0, duplicate_ppm: 0, ..self.scenario.network };
                self.release_held(&mut w);
                for node in 0..w.servers {
                    w.disks[node as usize].faults = Default::default();
                    match w.slots[node as usize].status {
                        NodeStatus::Paused => {
                            self.handle.resume(self.node_ids[node as usize]);
                            w.slots[node as usize].status = NodeStatus::Running;
                        }
                        NodeStatus::Down | NodeStatus::Refused(_) => self.restart(&mut w, node),
                        NodeStatus::Running => {}
                    }
                }
            }
        }
        w.check_safety();
    }

    /// Carries out crash points as they fire: crash now, restart a little later.
    async fn crash_points(self, mut requests: mpsc::UnboundedReceiver<NodeIndex>, restart_after_ms: u64) {
        while let Some(node) = requests.next().await {
            {
                let mut w = lock(&self.world);
                if w.violation.is_some() || !matches!(w.slots[node as usize].status, NodeStatus::Running) {
                    continue;
                }
                w.record(WORLD, "crash", u64::from(node), || format!("crash point on n{node}"));
                self.kill(&mut w, node);
                w.disks[node as usize].process_crash();
                S::on_fault(&mut w.ghost, node, Fault::Crash);
                w.check_safety();
            }
            let this = self.clone();
            madsim::task::spawn(async move {
                madsim::time::sleep(Duration::from_millis(restart_after_ms)).await;
                let mut w = lock(&this.world);
                // Heal-all or a step may have restarted it already.
                if w.violation.is_none() && w.slots[node as usize].status == NodeStatus::Down {
                    w.record(WORLD, "restart", u64::from(node), || format!("after crash point on n{node}"));
                    this.restart(&mut w, node);
                }
            });
        }
    }

    async fn drive(self) {
        let scenario = self.scenario.clone();
        if let Some(cp) = scenario.crash_points {
            let (tx, rx) = mpsc::unbounded();
            lock(&self.world).crash_requests = Some(tx);
            madsim::task::spawn(self.clone().crash_points(rx, cp.restart_after_ms));
        }
        for step in &scenario.steps {
            if !sleep_until(&self.world, step.at_ms * 1_000_000).await {
                return;
            }
            self.apply(&step.action);
        }
        let end_ns = scenario.duration_ms * 1_000_000;
        if scenario.liveness {
            // Liveness is "eventually": after the last step, probe until the run ends; the
            // first probe that holds settles it, none holding is the finding.
            let mut last_failure = None;
            let mut at = now_ns();
            while at <= end_ns {
                if !sleep_until(&self.world, at).await {
                    return;
                }
                let mut w = lock(&self.world);
                match S::check_liveness(&w.cluster()) {
                    Ok(()) => {
                        w.record(WORLD, "liveness-ok", 0, String::new);
                        last_failure = None;
                        break;
                    }
                    Err(f) => last_failure = Some(f),
                }
                at += LIVENESS_PROBE_NS;
            }
            if !sleep_until(&self.world, end_ns).await {
                return;
            }
            let mut w = lock(&self.world);
            w.record(WORLD, "end", 0, String::new);
            if let Some(f) = last_failure {
                match S::excuse(&w.ghost) {
                    Some(reason) => {
                        let what = format!("liveness:{}: {}; excused: {reason}", f.invariant, f.message);
                        w.record(f.node.unwrap_or(WORLD), "excused", 0, || what.clone());
                        w.excused = Some(what);
                    }
                    None => w.fail(&format!("liveness:{}", f.invariant), f.node, f.message),
                }
            }
            return;
        }
        if !sleep_until(&self.world, end_ns).await {
            return;
        }
        lock(&self.world).record(WORLD, "end", 0, String::new);
    }
}

/// How often the liveness phase probes its check.
const LIVENESS_PROBE_NS: u64 = 100_000_000;

thread_local! {
    static PANIC_AT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

const RUN_THREAD: &str = "metasim-run";

/// Keep panics inside simulation threads quiet: they become findings with a location in the
/// run report instead of a backtrace on stderr. Other threads report as before.
pub fn quiet_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some(RUN_THREAD) {
            let at = info.location().map(|l| format!("{}:{}", l.file(), l.line()));
            PANIC_AT.with(|p| *p.borrow_mut() = at);
        } else {
            previous(info);
        }
    }));
}

/// Run a scenario on a fresh OS thread (madsim's std-hasher and thread-local RNG interception
/// is deterministic only in the first runtime of a thread) and report what happened.
pub fn run<S: System>(scenario: &ScenarioOf<S>, options: &RunOptions) -> RunReport {
    let scenario = Arc::new(scenario.clone());
    let options = options.clone();
    std::thread::Builder::new()
        .name(RUN_THREAD.into())
        .stack_size(64 << 20)
        .spawn(move || run_here::<S>(scenario, &options))
        .expect("spawn the simulation thread")
        .join()
        .unwrap_or_else(|_| unreachable!("run_here catches panics"))
}

fn run_here<S: System>(scenario: Arc<ScenarioOf<S>>, options: &RunOptions) -> RunReport {
    let seed = options.seed.unwrap_or(scenario.seed);
    let servers = scenario.servers;
    let mut clocks = vec![NodeClock::default(); servers as usize];
    for c in &scenario.clocks {
        clocks[c.node as usize] = NodeClock::new(c.offset_ms * 1_000_000, c.drift_ppm);
    }
    let world: World<S> = Arc::new(Mutex::new(WorldState {
        servers,
        crash_points: scenario.crash_points,
        crash_requests: None,
        // Domain-separated from madsim's own RNG, which is seeded with the same number.
        rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6d65_7461_7369_6d21),
        net: Network::new(scenario.network),
        disks: vec![NodeDisk::default(); servers as usize],
        clocks,
        slots: (0..servers)
            .map(|_| Slot { state: None, status: NodeStatus::Down, inbox: None, inbox_len: 0, incarnation: 0 })
            .collect(),
        ghost: S::Ghost::default(),
        excused: None,
        config: scenario.system.clone(),
        bugs: scenario.bugs.iter().chain(&options.bugs).cloned().collect(),
        trace: Trace::new(options.keep_trace, options.keep_detail, options.log),
        held: Vec::new(),
        fsync_latency_ns: scenario.disk.fsync_latency_us * 1_000,
        delivered: 0,
        violation: None,
        stop_waker: None,
        net_node: None,
    }));

    let runtime = Runtime::with_seed_and_config(seed, madsim::Config::default());
    let net_node = runtime.create_node().name("network").build();
    lock(&world).net_node = Some(net_node);
    let node_ids = (0..servers)
        .map(|i| {
            let world = Arc::downgrade(&world);
            runtime.create_node().name(format!("n{i}")).init(move || node_main::<S>(world.clone(), i)).build().id()
        })
        .collect();
    let supervisor = Supervisor { world: world.clone(), handle: runtime.handle().clone(), node_ids, scenario };
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(supervisor.drive())));
    let sim_ns = std::panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(async { now_ns() }))).unwrap_or(0);
    // The world holds the network node's handle and the nodes' inboxes, whose tasks hold the
    // world: break the cycle so a worker running thousands of seeds does not keep every world.
    {
        let mut w = lock(&world);
        w.net_node = None;
        for slot in &mut w.slots {
            slot.inbox = None;
            slot.state = None;
        }
        w.held.clear();
    }
    drop(runtime);

    let mut w = lock(&world);
    let mut excused = w.excused.take();
    if let Err(panic) = outcome {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic".into());
        let message = match PANIC_AT.with(|p| p.borrow_mut().take()) {
            Some(at) => format!("{message} (at {at})"),
            None => message,
        };
        if w.violation.is_none() {
            match S::excuse(&w.ghost) {
                Some(reason) => excused = Some(format!("{message}; excused: {reason}")),
                None => {
                    let recent = w.trace.recent();
                    w.violation = Some(Violation { invariant: "panic".into(), node: None, sim_ns, message, recent });
                }
            }
        }
    }
    RunReport {
        seed,
        trace_hash: w.trace.hash(),
        events: w.trace.len(),
        sim_ns,
        messages_delivered: w.delivered,
        violation: w.violation.take(),
        excused,
        trace: w.trace.take_full(),
    }
}
