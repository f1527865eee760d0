//! The step driver: plays the scenario's timeline (client requests, expectations, faults),
//! carries out crash points, and judges liveness in the quiet tail.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::mpsc;
use futures::StreamExt;
use madsim::runtime::Handle;
use rand::Rng;

use super::state::{CrashKind, CrashRequest, Input, WorldState};
use super::{lock, now_ns, World};
use crate::harness::{CheckFailure, Fault, Harness, NodeStatus, Touched};
use crate::hash;
use crate::net::{LinkProfile, NodeIndex};
use crate::scenario::Action;
use crate::system::{ExpectOf, ScenarioOf, System};
use crate::trace::WORLD;
use crate::ClientOpOf;

/// How often the liveness phase probes its check.
const LIVENESS_PROBE_NS: u64 = 100_000_000;

type ActionOf<S> = Action<ClientOpOf<<S as System>::Node>, ExpectOf<S>>;

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
pub(super) struct Supervisor<S: System> {
    pub world: World<S>,
    pub handle: Handle,
    pub node_ids: Vec<madsim::task::NodeId>,
    pub scenario: Arc<ScenarioOf<S>>,
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
        if w.slots[node as usize].running() {
            self.kill(w, node);
            w.fault(node, Fault::Crash);
        }
        w.slots[node as usize].status = NodeStatus::Down;
        self.handle.restart(self.node_ids[node as usize]);
    }

    /// Play one step of the timeline, then check safety.
    fn apply(&self, action: &ActionOf<S>) {
        let mut w = lock(&self.world);
        let digest = hash::digest(action);
        w.record(WORLD, action.name(), digest, || action.to_string());
        if let Some(node) = crossed_fault_target(action) {
            w.cover_fault(action.name(), node);
        }
        match action {
            Action::Client { node, op } => {
                let node = node.unwrap_or_else(|| {
                    let servers = w.servers;
                    w.rng.gen_range(0..servers)
                });
                let slot = &mut w.slots[node as usize];
                if slot.accepts() {
                    slot.push(Input::Client { op: op.clone() });
                } else {
                    let digest = hash::digest(op);
                    w.record(node, "client-refused", digest, || "server is not running".into());
                }
                // A request queued changes no node and tells the harness nothing: the checks
                // after the previous event saw this very state. (A full sweep here, after
                // each of thousands of creates, was most of a bulk load's cost.)
                if !w.full_checks {
                    return;
                }
            }
            Action::Expect { check } => {
                let verdict = w.harness.check_expect(&w.cluster(), check);
                if let Err(f) = verdict {
                    w.fail(&format!("expect:{}", f.invariant), f.node, f.message);
                }
            }
            Action::HealAll {} => self.heal_all(&mut w),
            Action::Reseed { seed } => w.rng = super::world_rng(*seed),
            Action::Shutdown { node } => return self.shutdown(w, *node),
            action if is_network_fault(action) => self.apply_network(&mut w, action),
            action => self.apply_node_fault(&mut w, action),
        }
        w.check_safety(Touched::World);
    }

    /// Partitions, clogs and link profiles.
    fn apply_network(&self, w: &mut WorldState<S>, action: &ActionOf<S>) {
        match action {
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
                self.release_held(w);
            }
            Action::ClogLink { from, to } => w.net.clog_link(*from, *to),
            Action::UnclogLink { from, to } => {
                w.net.unclog_link(*from, *to);
                self.release_held(w);
            }
            Action::SetNetwork { profile } => w.net.profile = *profile,
            Action::SetLink { from, to, profile } => {
                w.net.link_overrides.insert((*from, *to), *profile);
            }
            other => unreachable!("{} is not a network fault", other.name()),
        }
    }

    /// Process, power, disk and clock faults on one node.
    fn apply_node_fault(&self, w: &mut WorldState<S>, action: &ActionOf<S>) {
        match action {
            Action::Crash { node } => {
                if w.slots[*node as usize].running() {
                    self.kill(w, *node);
                    w.disks[*node as usize].process_crash();
                    w.fault(*node, Fault::Crash);
                }
            }
            Action::Restart { node } => self.restart(w, *node),
            Action::PowerLoss { node, torn } => self.power_loss(w, *node, *torn),
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
                    let files =
                        if report.paths.is_empty() { String::new() } else { format!(" {}", report.paths.join(", ")) };
                    format!("{}{files}: {}", corruption.name(), report.detail)
                });
                w.fault(*node, Fault::Corruption(&report));
            }
            Action::LostFsync { node, kind, on } => switch(&mut w.disks[*node as usize].faults.lost_fsync, kind, *on),
            Action::NoSpace { node, kind, on } => switch(&mut w.disks[*node as usize].faults.no_space, kind, *on),
            Action::SlowDisk { node, extra_ms } => w.disks[*node as usize].faults.slow_ns = extra_ms * 1_000_000,
            Action::ClockJump { node, by_ms } => w.clocks[*node as usize].offset_ns += by_ms * 1_000_000,
            Action::ClockDrift { node, ppm } => w.clocks[*node as usize].set_drift(now_ns(), *ppm),
            other => unreachable!("{} is not a node fault", other.name()),
        }
    }

    /// `shutdown`: the node's shutdown handler runs and its outputs are carried out (its last
    /// messages leave), then the process stops as a crash stops it. A paused process cannot
    /// run a handler: it is killed. A node that is not running is left as it is.
    fn shutdown(&self, mut w: std::sync::MutexGuard<'_, WorldState<S>>, node: NodeIndex) {
        match w.slots[node as usize].status {
            NodeStatus::Running => {}
            NodeStatus::Paused => {
                w.record(node, "killed", 0, || "paused: no graceful shutdown".into());
                self.kill(&mut w, node);
                w.disks[node as usize].process_crash();
                w.fault(node, Fault::Crash);
                w.check_safety(Touched::World);
                return;
            }
            NodeStatus::Down | NodeStatus::Refused(_) => {
                w.check_safety(Touched::World);
                return;
            }
        }
        let ((), outputs) =
            w.with_node(node, |state, env| crate::node::Node::on_shutdown(state.expect("running"), env));
        if w.violation.is_some() {
            return;
        }
        drop(w);
        super::node_task::execute(&self.world, node, outputs);
        let mut w = lock(&self.world);
        if w.slots[node as usize].running() {
            self.kill(&mut w, node);
            w.disks[node as usize].process_crash();
            w.record(node, "stopped", 0, || "graceful shutdown".into());
            w.fault(node, Fault::Shutdown);
        }
        w.check_safety(Touched::World);
    }

    fn power_loss(&self, w: &mut WorldState<S>, node: NodeIndex, torn: bool) {
        if w.slots[node as usize].running() {
            self.kill(w, node);
        }
        let torn_write = {
            let WorldState { disks, rng, .. } = &mut *w;
            disks[node as usize].power_loss(torn, rng)
        };
        if let Some((path, kept)) = torn_write {
            w.record(node, "torn-write", kept as u64, || format!("{path}: {kept} bytes of the last write survived"));
        }
        w.fault(node, Fault::PowerLoss);
    }

    /// `heal-all`: every fault ends, paused nodes resume, stopped ones restart, and the
    /// liveness phase begins.
    fn heal_all(&self, w: &mut WorldState<S>) {
        w.harness.on_heal();
        w.net.heal_partitions();
        w.net.unclog_all();
        w.net.link_overrides.clear();
        // Loss and duplication are faults too: the liveness phase runs on a clean network
        // with the scenario's latencies.
        w.net.profile = LinkProfile { loss_ppm: 0, duplicate_ppm: 0, ..self.scenario.network };
        self.release_held(w);
        for node in 0..w.servers {
            w.disks[node as usize].faults = Default::default();
            match w.slots[node as usize].status {
                NodeStatus::Paused => {
                    self.handle.resume(self.node_ids[node as usize]);
                    w.slots[node as usize].status = NodeStatus::Running;
                }
                NodeStatus::Down | NodeStatus::Refused(_) => self.restart(w, node),
                NodeStatus::Running => {}
            }
        }
    }

    /// Carries out crash points as they fire: crash now, restart a little later.
    async fn crash_points(self, mut requests: mpsc::UnboundedReceiver<CrashRequest>, restart_after_ms: u64) {
        while let Some(CrashRequest { node, kind }) = requests.next().await {
            {
                let mut w = lock(&self.world);
                if w.violation.is_some() || !matches!(w.slots[node as usize].status, NodeStatus::Running) {
                    continue;
                }
                match kind {
                    CrashKind::Process => {
                        w.record(WORLD, "crash", u64::from(node), || format!("crash point on n{node}"));
                        w.cover_fault("crash-point", node);
                        self.kill(&mut w, node);
                        w.disks[node as usize].process_crash();
                        w.fault(node, Fault::Crash);
                    }
                    CrashKind::PowerLoss { torn } => {
                        w.record(WORLD, "power-loss", u64::from(node), || {
                            format!("crash point on n{node}{}", if torn { ", torn" } else { "" })
                        });
                        w.cover_fault("power-loss-point", node);
                        self.power_loss(&mut w, node, torn);
                    }
                }
                w.check_safety(Touched::World);
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

    pub async fn drive(self) {
        let scenario = self.scenario.clone();
        if let Some(cp) = scenario.crash_points {
            let (tx, rx) = mpsc::unbounded();
            lock(&self.world).crash_requests = Some(tx);
            madsim::task::spawn(self.clone().crash_points(rx, cp.restart_after_ms));
        }
        let mut previous_at_ms = 0;
        for step in &scenario.steps {
            // The scenario parser and the swarm both sort steps; time never runs backwards.
            assert!(step.at_ms >= previous_at_ms, "step at {} ms after one at {previous_at_ms} ms", step.at_ms);
            previous_at_ms = step.at_ms;
            if !sleep_until(&self.world, step.at_ms * 1_000_000).await {
                return;
            }
            self.apply(&step.action);
        }
        let end_ns = scenario.duration_ms * 1_000_000;
        let last_failure = if scenario.liveness {
            match self.probe_liveness(end_ns).await {
                Some(outcome) => outcome,
                None => return,
            }
        } else {
            None
        };
        if !sleep_until(&self.world, end_ns).await {
            return;
        }
        let mut w = lock(&self.world);
        w.record(WORLD, "end", 0, String::new);
        if let Some(f) = last_failure {
            match w.harness.excuse() {
                Some(reason) => {
                    let what = format!("liveness:{}: {}; excused: {reason}", f.invariant, f.message);
                    w.record(f.node.unwrap_or(WORLD), "excused", 0, || what.clone());
                    w.excused = Some(what);
                }
                None => w.fail(&format!("liveness:{}", f.invariant), f.node, f.message),
            }
        }
    }

    /// Liveness is "eventually": after the last step, probe until the run ends; the first
    /// probe that holds settles it, none holding is the finding (the last failure). `None`
    /// when a violation stopped the run first.
    async fn probe_liveness(&self, end_ns: u64) -> Option<Option<CheckFailure>> {
        let mut last_failure = None;
        let mut at = now_ns();
        while at <= end_ns {
            if !sleep_until(&self.world, at).await {
                return None;
            }
            let mut w = lock(&self.world);
            match w.harness.check_liveness(&w.cluster()) {
                Ok(()) => {
                    w.record(WORLD, "liveness-ok", 0, String::new);
                    return Some(None);
                }
                Err(f) => last_failure = Some(f),
            }
            at += LIVENESS_PROBE_NS;
        }
        Some(last_failure)
    }
}

/// The node a fault that coverage crosses with node states strikes
/// ([`crate::coverage::FAULTS_CROSSED`]).
fn crossed_fault_target<C, E>(action: &Action<C, E>) -> Option<NodeIndex> {
    match action {
        Action::Crash { node }
        | Action::PowerLoss { node, .. }
        | Action::Restart { node }
        | Action::Pause { node }
        | Action::Isolate { node }
        | Action::Corrupt { node, .. }
        | Action::ClockJump { node, .. } => Some(*node),
        _ => None,
    }
}

/// Turn a disk fault of one file kind on or off.
fn switch(kinds: &mut std::collections::BTreeSet<String>, kind: &str, on: bool) {
    if on {
        kinds.insert(kind.to_string());
    } else {
        kinds.remove(kind);
    }
}

fn is_network_fault<C, E>(action: &Action<C, E>) -> bool {
    matches!(
        action,
        Action::Partition { .. }
            | Action::PartitionOneWay { .. }
            | Action::Isolate { .. }
            | Action::HealNetwork {}
            | Action::Clog { .. }
            | Action::Unclog { .. }
            | Action::ClogLink { .. }
            | Action::UnclogLink { .. }
            | Action::SetNetwork { .. }
            | Action::SetLink { .. }
    )
}
