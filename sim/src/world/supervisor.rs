//! The step driver: plays the scenario's timeline (client requests, expectations, faults),
//! carries out crash points, and judges liveness in the quiet tail.

use std::sync::Arc;

use rand::Rng;

use super::state::{CrashKind, CrashRequest, Event, Input, WorldState};
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

/// The step driver: where the scenario's timeline has got to.
pub(super) struct Supervisor<S: System> {
    pub scenario: Arc<ScenarioOf<S>>,
    /// The first step not played yet.
    pub next_step: usize,
    /// The last liveness probe's failure, while none has held.
    pub last_failure: Option<CheckFailure>,
}

impl<S: System> Supervisor<S> {
    pub fn new(scenario: Arc<ScenarioOf<S>>) -> Self {
        Supervisor { scenario, next_step: 0, last_failure: None }
    }

    fn release_held(&self, w: &mut WorldState<S>) {
        let held = std::mem::take(&mut w.held);
        let (release, keep): (Vec<_>, Vec<_>) = held.into_iter().partition(|h| !w.net.is_clogged(h.from, h.to));
        w.held = keep;
        for h in release {
            let delay = {
                let link = super::link_index(w.servers, h.from, h.to);
                let WorldState { net, link_rngs, .. } = &mut *w;
                net.latency_ns(h.from, h.to, &mut link_rngs[link])
            };
            w.agenda.at(w.now_ns + delay, Event::Deliver { from: h.from, to: h.to, msg: h.msg });
        }
    }

    fn restart(&self, w: &mut WorldState<S>, node: NodeIndex) {
        if w.slots[node as usize].running() {
            w.slots[node as usize].kill();
            w.fault(node, Fault::Crash);
        }
        w.slots[node as usize].status = NodeStatus::Down;
        w.schedule_start(node);
    }

    /// Play one step of the timeline, then check safety.
    fn apply(&self, w: &mut WorldState<S>, action: &ActionOf<S>) {
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
                if w.slots[node as usize].accepts() {
                    w.enqueue(node, Input::Client { op: Box::new(op.clone()) });
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
            Action::HealAll {} => self.heal_all(w),
            Action::Reseed { seed } => super::reseed(w, *seed),
            Action::Shutdown { node } => return self.shutdown(w, *node),
            action if is_network_fault(action) => self.apply_network(w, action),
            action => self.apply_node_fault(w, action),
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
                    w.slots[*node as usize].kill();
                    w.disks[*node as usize].process_crash();
                    w.fault(*node, Fault::Crash);
                }
            }
            Action::Restart { node } => self.restart(w, *node),
            Action::PowerLoss { node, torn } => self.power_loss(w, *node, *torn),
            Action::Pause { node } => {
                if w.slots[*node as usize].status == NodeStatus::Running {
                    w.slots[*node as usize].status = NodeStatus::Paused;
                }
            }
            Action::Resume { node } => resume(w, *node),
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
            Action::ClockDrift { node, ppm } => w.clocks[*node as usize].set_drift(w.now_ns, *ppm),
            other => unreachable!("{} is not a node fault", other.name()),
        }
    }

    /// `shutdown`: the node's shutdown handler runs and its outputs are carried out (its last
    /// messages leave), then the process stops as a crash stops it. A paused process cannot
    /// run a handler: it is killed. A node that is not running is left as it is.
    fn shutdown(&self, w: &mut WorldState<S>, node: NodeIndex) {
        match w.slots[node as usize].status {
            NodeStatus::Running => {}
            NodeStatus::Paused => {
                w.record(node, "killed", 0, || "paused: no graceful shutdown".into());
                w.slots[node as usize].kill();
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
        super::process::execute(w, node, outputs);
        if w.slots[node as usize].running() {
            w.slots[node as usize].kill();
            w.disks[node as usize].process_crash();
            w.record(node, "stopped", 0, || "graceful shutdown".into());
            w.fault(node, Fault::Shutdown);
        }
        w.check_safety(Touched::World);
    }

    fn power_loss(&self, w: &mut WorldState<S>, node: NodeIndex, torn: bool) {
        if w.slots[node as usize].running() {
            w.slots[node as usize].kill();
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
                NodeStatus::Paused => resume(w, node),
                NodeStatus::Down | NodeStatus::Refused(_) => self.restart(w, node),
                NodeStatus::Running => {}
            }
        }
    }

    /// A crash point fired: crash the node now, restart it a little later.
    pub fn crash_point(&self, w: &mut WorldState<S>, CrashRequest { node, kind }: CrashRequest) {
        if !matches!(w.slots[node as usize].status, NodeStatus::Running) {
            return;
        }
        match kind {
            CrashKind::Process => {
                w.record(WORLD, "crash", u64::from(node), || format!("crash point on n{node}"));
                w.cover_fault("crash-point", node);
                w.slots[node as usize].kill();
                w.disks[node as usize].process_crash();
                w.fault(node, Fault::Crash);
            }
            CrashKind::PowerLoss { torn } => {
                w.record(WORLD, "power-loss", u64::from(node), || {
                    format!("crash point on n{node}{}", if torn { ", torn" } else { "" })
                });
                w.cover_fault("power-loss-point", node);
                self.power_loss(w, node, torn);
            }
        }
        w.check_safety(Touched::World);
        let restart_after_ms = self.scenario.crash_points.expect("crash points are on").restart_after_ms;
        w.agenda.at(w.now_ns + restart_after_ms * 1_000_000, Event::RestartAfterCrash { node });
    }

    pub fn restart_after_crash(&self, w: &mut WorldState<S>, node: NodeIndex) {
        // Heal-all or a step may have restarted it already.
        if w.slots[node as usize].status == NodeStatus::Down {
            w.record(WORLD, "restart", u64::from(node), || format!("after crash point on n{node}"));
            self.restart(w, node);
        }
    }

    /// Before the first event: the first step, or the run's tail.
    pub fn begin(&mut self, w: &mut WorldState<S>) {
        self.schedule_next(w);
    }

    /// Play every step due now, back to back, then wait for the next.
    pub fn steps(&mut self, w: &mut WorldState<S>) {
        let scenario = self.scenario.clone();
        while let Some(step) = scenario.steps.get(self.next_step) {
            if step.at_ms * 1_000_000 > w.now_ns {
                break;
            }
            if let Some(previous) = self.next_step.checked_sub(1).map(|i| &scenario.steps[i]) {
                // The scenario parser and the swarm both sort steps; time never runs backwards.
                assert!(step.at_ms >= previous.at_ms, "step at {} ms after one at {} ms", step.at_ms, previous.at_ms);
            }
            self.next_step += 1;
            self.apply(w, &step.action);
            if w.violation.is_some() {
                return;
            }
        }
        self.schedule_next(w);
    }

    /// What comes after the steps played so far: the next step, or, after the last, the
    /// liveness phase (probes from now until the end) or the end.
    fn schedule_next(&self, w: &mut WorldState<S>) {
        let now = w.now_ns;
        let end_ns = self.scenario.duration_ms * 1_000_000;
        match self.scenario.steps.get(self.next_step) {
            Some(step) => w.agenda.at(now.max(step.at_ms * 1_000_000), Event::Step),
            None if self.scenario.liveness && now <= end_ns => w.agenda.at(now, Event::Probe),
            None => w.agenda.at_last(now.max(end_ns), Event::End),
        }
    }

    /// Liveness is "eventually": after the last step, probe until the run ends; the first
    /// probe that holds settles it, none holding is the finding (the last failure).
    pub fn probe(&mut self, w: &mut WorldState<S>) {
        let end_ns = self.scenario.duration_ms * 1_000_000;
        match w.harness.check_liveness(&w.cluster()) {
            Ok(()) => {
                w.record(WORLD, "liveness-ok", 0, String::new);
                self.last_failure = None;
                w.agenda.at_last(end_ns.max(w.now_ns), Event::End);
            }
            Err(f) => {
                self.last_failure = Some(f);
                let next = w.now_ns + LIVENESS_PROBE_NS;
                if next <= end_ns {
                    w.agenda.at(next, Event::Probe);
                } else {
                    w.agenda.at_last(end_ns.max(w.now_ns), Event::End);
                }
            }
        }
    }

    /// The run's last instant: a liveness failure nothing settled is the finding.
    pub fn end(&mut self, w: &mut WorldState<S>) {
        w.record(WORLD, "end", 0, String::new);
        if let Some(f) = self.last_failure.take() {
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
}

/// A paused process runs again, and handles what waited for it.
fn resume<S: System>(w: &mut WorldState<S>, node: NodeIndex) {
    if w.slots[node as usize].status == NodeStatus::Paused {
        w.slots[node as usize].status = NodeStatus::Running;
        if w.slots[node as usize].wants_drain() {
            w.schedule_drain(node);
        }
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
