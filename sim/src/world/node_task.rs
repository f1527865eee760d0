//! One server process inside madsim: start against the disk, then handle inputs until killed,
//! and carry out what each handler asked for (sends, timers, fsyncs, crash points).

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::channel::mpsc;
use futures::StreamExt;
use rand::Rng;

use super::state::{CrashKind, CrashRequest, Input, WorldState};
use super::{lock, now_ns, World};
use crate::harness::{Fault, NodeStatus, Touched};
use crate::hash;
use crate::net::{Fate, NodeIndex};
use crate::node::{MsgOf, Node, NodeTypes, Output};
use crate::system::System;

/// Carry out what a node asked for.
pub(super) fn execute<S: System>(world: &World<S>, idx: NodeIndex, mut outputs: Vec<Output<MsgOf<S::Node>>>) {
    if outputs.is_empty() {
        return;
    }
    let mut w = lock(world);
    let incarnation = w.slots[idx as usize].incarnation;
    for output in outputs.drain(..) {
        match output {
            Output::Send { to, msg } => send(world, &mut w, idx, to, msg),
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
            Output::CrashPoint { name } => crash_point(&mut w, idx, name),
            Output::Fsync { path, token } => fsync(world, &w, idx, incarnation, path, token),
        }
    }
    w.spare_outputs = outputs;
}

/// A message leaves `from`: the network decides its fate, and each copy that survives
/// arrives after its own delay.
fn send<S: System>(world: &World<S>, w: &mut WorldState<S>, from: NodeIndex, to: NodeIndex, msg: MsgOf<S::Node>) {
    let fate = {
        let WorldState { net, rng, .. } = &mut *w;
        net.fate(from, to, rng)
    };
    match fate {
        Fate::Dropped(reason) => {
            let digest = hash::digest(&msg);
            w.record(from, "drop", digest, || format!("to n{to}: {}", reason.as_str()));
        }
        Fate::Deliver(delays) => {
            let net_node = w.net_node.clone().expect("network node exists");
            // Only a duplicate clones the message: the last copy takes it.
            let copies = delays.len();
            let mut msg = Some(msg);
            for (copy, delay) in delays.into_iter().enumerate() {
                let world = Arc::downgrade(world);
                let msg = if copy + 1 == copies { msg.take() } else { msg.clone() }.expect("kept for the last copy");
                net_node.spawn(async move {
                    madsim::time::sleep(Duration::from_nanos(delay)).await;
                    if let Some(world) = world.upgrade() {
                        lock(&world).deliver(from, to, msg);
                    }
                });
            }
        }
    }
}

/// A risky moment on `idx`: with crash points on, the node may crash right after this input.
fn crash_point<S: System>(w: &mut WorldState<S>, idx: NodeIndex, name: &'static str) {
    let Some(cp) = w.crash_points else { return };
    if w.violation.is_some() || now_ns() >= cp.until_ms * 1_000_000 {
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
        if let Some(tx) = &w.crash_requests {
            let _ = tx.unbounded_send(CrashRequest { node: idx, kind });
        }
    }
}

/// An fsync completes after the disk's latency; a lie is reported to the harness by the
/// world, which injected it.
fn fsync<S: System>(world: &World<S>, w: &WorldState<S>, idx: NodeIndex, incarnation: u64, path: String, token: u64) {
    let delay = w.fsync_latency_ns + w.disks[idx as usize].faults.slow_ns;
    let world = Arc::downgrade(world);
    madsim::task::spawn(async move {
        madsim::time::sleep(Duration::from_nanos(delay)).await;
        let Some(world) = world.upgrade() else { return };
        let mut w = lock(&world);
        if w.slots[idx as usize].incarnation != incarnation {
            return;
        }
        let durable = w.disks[idx as usize].sync(&path);
        if !durable {
            let digest = hash::fnv1a64(path.as_bytes());
            w.record(idx, "fsync-lost", digest, || path.clone());
            w.fault(idx, Fault::LostFsync(&path));
        }
        drop(w);
        push_input(&world, idx, incarnation, Input::Fsync { token });
    });
}

/// Queue a timer or fsync completion for the incarnation that asked for it.
fn push_input<S: System>(world: &World<S>, idx: NodeIndex, incarnation: u64, input: Input<S::Node>) {
    let mut w = lock(world);
    let slot = &mut w.slots[idx as usize];
    if slot.incarnation == incarnation && slot.inbox.is_some() {
        slot.push(input);
    }
}

/// One server process: start against the disk, then handle inputs until killed.
pub(super) async fn node_main<S: System>(weak: Weak<std::sync::Mutex<WorldState<S>>>, idx: NodeIndex) {
    let (tx, mut rx) = mpsc::unbounded();
    // Tasks hold the world weakly: madsim does not drop pending tasks with the runtime, and a
    // strong reference from one would keep the whole world alive after the run.
    let Some(world) = weak.upgrade() else { return };
    let Some(outputs) = start(&mut lock(&world), idx, tx) else { return };
    execute(&world, idx, outputs);
    drop(world);

    while let Some(input) = rx.next().await {
        let Some(world) = weak.upgrade() else { return };
        let outputs = handle(&mut lock(&world), idx, input);
        execute(&world, idx, outputs);
    }
}

/// Start the node's new incarnation; `None` when it refused to start.
fn start<S: System>(
    w: &mut WorldState<S>,
    idx: NodeIndex,
    inbox: mpsc::UnboundedSender<Input<S::Node>>,
) -> Option<Vec<Output<MsgOf<S::Node>>>> {
    let slot = &mut w.slots[idx as usize];
    slot.incarnation += 1;
    slot.inbox = Some(inbox);
    slot.inbox_len = 0;
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
            return None;
        }
    }
    w.check_safety(Touched::World);
    Some(outputs)
}

/// Hand one input to the running node; its outputs, for [`execute`].
fn handle<S: System>(w: &mut WorldState<S>, idx: NodeIndex, input: Input<S::Node>) -> Vec<Output<MsgOf<S::Node>>> {
    w.slots[idx as usize].inbox_len -= 1;
    if w.violation.is_some() {
        return Vec::new();
    }
    // Read once: no simulated time passes while the input is handled.
    let now = now_ns();
    let ((), outputs) = match input {
        Input::Message { from, msg } => {
            w.delivered += 1;
            let digest = hash::digest(&msg);
            w.record_at(now, idx, "recv", digest, || {
                let words = <<S::Node as Node>::Types as NodeTypes>::describe_message(&msg);
                crate::trace::readable(&format!("from n{from}: {words}"))
            });
            w.with_node_at(now, idx, |s, env| s.expect("running").on_message(env, from, msg))
        }
        Input::Timer { token } => {
            w.record_at(now, idx, "timer", token, || format!("token {token}"));
            w.with_node_at(now, idx, |s, env| s.expect("running").on_timer(env, token))
        }
        Input::Fsync { token } => {
            w.record_at(now, idx, "fsync-done", token, || format!("token {token}"));
            w.with_node_at(now, idx, |s, env| s.expect("running").on_fsync(env, token))
        }
        Input::Client { op } => {
            let digest = hash::digest(&op);
            w.record_at(now, idx, "client", digest, || op.to_string());
            w.with_node_at(now, idx, |s, env| s.expect("running").on_client(env, op))
        }
    };
    outputs
}
