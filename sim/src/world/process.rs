//! One server process in the world: start against the disk, handle the inputs in its inbox,
//! and carry out what each handler asked for (sends, timers, fsyncs, crash points) by
//! scheduling it.

use rand::Rng;

use super::state::{CrashKind, CrashRequest, Event, Input, WorldState};
use crate::harness::{Fault, NodeStatus, Touched};
use crate::hash;
use crate::net::{Fate, NodeIndex};
use crate::node::{MsgOf, Node, NodeTypes, Output};
use crate::system::System;

/// Carry out what a node asked for.
pub(super) fn execute<S: System>(w: &mut WorldState<S>, idx: NodeIndex, mut outputs: Vec<Output<MsgOf<S::Node>>>) {
    if outputs.is_empty() {
        return;
    }
    let incarnation = w.slots[idx as usize].incarnation;
    for output in outputs.drain(..) {
        match output {
            Output::Send { to, msg } => send(w, idx, to, msg),
            Output::Timer { delay_ns, token } => {
                let sim_delay = w.clocks[idx as usize].sim_duration_ns(delay_ns);
                w.agenda.at(w.now_ns + sim_delay, Event::Timer { node: idx, incarnation, token });
            }
            Output::CrashPoint { name } => crash_point(w, idx, name),
            Output::Fsync { path, token } => {
                let delay = w.fsync_latency_ns + w.disks[idx as usize].faults.slow_ns;
                w.agenda.at(w.now_ns + delay, Event::Fsync { node: idx, incarnation, path, token });
            }
        }
    }
    w.spare_outputs = outputs;
}

/// A message leaves `from`: the network decides its fate, and each copy that survives
/// arrives after its own delay.
fn send<S: System>(w: &mut WorldState<S>, from: NodeIndex, to: NodeIndex, msg: Box<MsgOf<S::Node>>) {
    let fate = {
        let link = super::link_index(w.servers, from, to);
        let WorldState { net, link_rngs, .. } = &mut *w;
        net.fate(from, to, &mut link_rngs[link])
    };
    match fate {
        Fate::Dropped(reason) => {
            let digest = hash::digest(&msg);
            w.record(from, "drop", digest, || format!("to n{to}: {}", reason.as_str()));
        }
        Fate::Deliver { delay_ns, copy_ns } => {
            // Only a duplicate clones the message; it is scheduled second, as it always was.
            let copy = copy_ns.map(|copy_ns| (copy_ns, msg.clone()));
            w.agenda.at(w.now_ns + delay_ns, Event::Deliver { from, to, msg });
            if let Some((copy_ns, copy)) = copy {
                w.agenda.at(w.now_ns + copy_ns, Event::Deliver { from, to, msg: copy });
            }
        }
    }
}

/// A risky moment on `idx`: with crash points on, the node may crash right after this input.
fn crash_point<S: System>(w: &mut WorldState<S>, idx: NodeIndex, name: &'static str) {
    let Some(cp) = w.crash_points else { return };
    if w.violation.is_some() || w.now_ns >= cp.until_ms * 1_000_000 {
        return;
    }
    if w.rng.gen_range(0..1_000_000) < cp.rate_ppm {
        w.record(idx, "crash-point", hash::fnv1a64(name.as_bytes()), || name.to_string());
        // Drawn only where power losses are asked for, so other runs keep their random stream.
        let kind = if cp.power_loss_percent > 0 && w.rng.gen_range(0..100) < cp.power_loss_percent {
            CrashKind::PowerLoss { torn: w.rng.gen_bool(0.5) }
        } else {
            CrashKind::Process
        };
        // The supervisor carries it out once this input's handling is over.
        w.agenda.at(w.now_ns, Event::Crash(CrashRequest { node: idx, kind }));
    }
}

/// An fsync completes after the disk's latency; a lie is reported to the harness by the
/// world, which injected it.
pub(super) fn fsync_done<S: System>(w: &mut WorldState<S>, idx: NodeIndex, incarnation: u64, path: String, token: u64) {
    if w.slots[idx as usize].incarnation != incarnation {
        return;
    }
    let durable = w.disks[idx as usize].sync(&path);
    if !durable {
        let digest = hash::fnv1a64(path.as_bytes());
        w.record(idx, "fsync-lost", digest, || path.clone());
        w.fault(idx, Fault::LostFsync(&path));
    }
    push_input(w, idx, incarnation, Input::Fsync { token });
}

/// Queue a timer or fsync completion for the incarnation that asked for it.
pub(super) fn push_input<S: System>(w: &mut WorldState<S>, idx: NodeIndex, incarnation: u64, input: Input<S::Node>) {
    let slot = &w.slots[idx as usize];
    if slot.incarnation == incarnation && slot.inbox.is_some() {
        w.enqueue(idx, input);
    }
}

/// Start the node's new incarnation, unless a kill or a later restart voided this start.
pub(super) fn start<S: System>(w: &mut WorldState<S>, idx: NodeIndex, start: u64) {
    let slot = &mut w.slots[idx as usize];
    if slot.starts != start {
        return;
    }
    slot.incarnation += 1;
    slot.inbox = Some(Default::default());
    slot.draining = false;
    let incarnation = slot.incarnation;
    w.record(idx, "start", incarnation, || format!("incarnation {incarnation}"));
    let (started, outputs) = w.with_node(idx, |_, env| S::Node::start(env));
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
    w.check_safety(Touched::World);
    execute(w, idx, outputs);
}

/// The process handles the inputs waiting in its inbox, one after another, until it is empty
/// or the run has failed.
pub(super) fn drain<S: System>(w: &mut WorldState<S>, idx: NodeIndex, incarnation: u64) {
    let slot = &mut w.slots[idx as usize];
    if slot.incarnation != incarnation {
        return;
    }
    slot.draining = false;
    while w.violation.is_none() {
        let slot = &mut w.slots[idx as usize];
        // A pause leaves the rest for the resume; nothing inside a drain kills the process.
        if slot.status != NodeStatus::Running {
            break;
        }
        let Some(input) = slot.inbox.as_mut().and_then(|inbox| inbox.pop_front()) else { break };
        let outputs = handle(w, idx, input);
        execute(w, idx, outputs);
    }
}

/// Hand one input to the running node; its outputs, for [`execute`].
fn handle<S: System>(w: &mut WorldState<S>, idx: NodeIndex, input: Input<S::Node>) -> Vec<Output<MsgOf<S::Node>>> {
    let ((), outputs) = match input {
        Input::Message { from, msg } => {
            w.delivered += 1;
            let digest = hash::digest(&msg);
            w.record(idx, "recv", digest, || {
                let words = <<S::Node as Node>::Types as NodeTypes>::describe_message(&msg);
                crate::trace::readable(&format!("from n{from}: {words}"))
            });
            w.with_node(idx, |s, env| s.expect("running").on_message(env, from, *msg))
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
            w.record(idx, "client", digest, || op.to_string());
            w.with_node(idx, |s, env| s.expect("running").on_client(env, *op))
        }
    };
    outputs
}
