//! The world: runs a scenario of a [`System`] inside one madsim runtime.
//!
//! Each server is a madsim node whose task feeds inputs to the system's [`crate::Node`]
//! ([`node_task`]). The world owns what the nodes share ([`state`]): the network model (which
//! decides every message's fate and delay), the disks, the clocks, the trace and the harness.
//! The supervisor ([`supervisor`]) plays the scenario's steps and judges liveness at the end.
//! Deliveries, timers and fsyncs are madsim timers, so simulated time only moves when nothing
//! is runnable.

mod node_task;
mod state;
mod supervisor;

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};

use madsim::runtime::Runtime;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::clock::NodeClock;
use crate::coverage::Coverage;
use crate::disk::NodeDisk;
use crate::harness::{Harness, NodeStatus};
use crate::net::{Network, NodeIndex};
use crate::system::{ScenarioOf, System};
use crate::trace::{Trace, TraceEvent};
use state::{Slot, WorldState};
use supervisor::Supervisor;

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
    /// Check the whole cluster after every event instead of what the event touched (the
    /// reference the incremental checks are compared with).
    pub full_checks: bool,
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
    /// The run ended in a panic or a liveness failure the harness excused (see
    /// [`Harness::excuse`]): what happened and the excuse. Not a pass: the run did not finish.
    pub excused: Option<String>,
    pub trace: Option<Vec<TraceEvent>>,
    /// The probes the run hit ([`crate::coverage`]).
    pub coverage: Coverage,
}

impl RunReport {
    pub fn passed(&self) -> bool {
        self.violation.is_none() && self.excused.is_none()
    }
}

type World<S> = Arc<Mutex<WorldState<S>>>;

/// The world's random stream for `seed`: domain-separated from madsim's own RNG, which is
/// seeded with the same number.
fn world_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ 0x6d65_7461_7369_6d21)
}

fn lock<S: System>(world: &World<S>) -> MutexGuard<'_, WorldState<S>> {
    // A panic inside a handler poisons the lock; the run is over then, but the report still
    // needs the trace, so take the data anyway.
    world.lock().unwrap_or_else(|e| e.into_inner())
}

/// Simulated time now.
fn now_ns() -> u64 {
    madsim::time::TimeHandle::current().elapsed().as_nanos() as u64
}

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

/// The world of a run before its first event.
fn new_world<S: System>(scenario: &ScenarioOf<S>, options: &RunOptions, seed: u64) -> World<S> {
    let servers = scenario.servers;
    let mut clocks = vec![NodeClock::default(); servers as usize];
    for c in &scenario.clocks {
        clocks[c.node as usize] = NodeClock::new(c.offset_ms * 1_000_000, c.drift_ppm);
    }
    Arc::new(Mutex::new(WorldState {
        servers,
        crash_points: scenario.crash_points,
        crash_requests: None,
        rng: world_rng(seed),
        net: Network::new(scenario.network),
        disks: vec![NodeDisk::default(); servers as usize],
        clocks,
        slots: (0..servers)
            .map(|_| Slot { state: None, status: NodeStatus::Down, inbox: None, inbox_len: 0, incarnation: 0 })
            .collect(),
        harness: S::Harness::default(),
        excused: None,
        config: scenario.system.clone(),
        bugs: scenario.bugs.iter().chain(&options.bugs).cloned().collect(),
        trace: Trace::new(options.keep_trace, options.keep_detail, options.log),
        coverage: Coverage::default(),
        held: Vec::new(),
        fsync_latency_ns: scenario.disk.fsync_latency_us * 1_000,
        delivered: 0,
        violation: None,
        stop_waker: None,
        net_node: None,
        full_checks: options.full_checks,
        spare_outputs: Vec::new(),
    }))
}

fn run_here<S: System>(scenario: Arc<ScenarioOf<S>>, options: &RunOptions) -> RunReport {
    let seed = options.seed.unwrap_or(scenario.seed);
    let world = new_world::<S>(&scenario, options, seed);
    let runtime = Runtime::with_seed_and_config(seed, madsim::Config::default());
    let net_node = runtime.create_node().name("network").build();
    lock(&world).net_node = Some(net_node);
    let node_ids = (0..scenario.servers)
        .map(|i| {
            let world = Arc::downgrade(&world);
            let main = move || node_task::node_main::<S>(world.clone(), i);
            runtime.create_node().name(format!("n{i}")).init(main).build().id()
        })
        .collect();
    let supervisor = Supervisor { world: world.clone(), handle: runtime.handle().clone(), node_ids, scenario };
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(supervisor.drive())));
    let sim_ns = std::panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(async { now_ns() }))).unwrap_or(0);
    lock(&world).break_cycles();
    drop(runtime);
    let mut w = lock(&world);
    let panic = outcome.err().map(|panic| panic_message(panic.as_ref()));
    w.report(seed, sim_ns, panic)
}

/// A panic's message and, when the hook caught it, where it happened.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "non-string panic".into());
    match PANIC_AT.with(|p| p.borrow_mut().take()) {
        Some(at) => format!("{message} (at {at})"),
        None => message,
    }
}

impl<S: System> WorldState<S> {
    /// The run's report, once the runtime is gone. A panic is a finding unless the harness
    /// excuses it.
    fn report(&mut self, seed: u64, sim_ns: u64, panic: Option<String>) -> RunReport {
        let mut excused = self.excused.take();
        if let Some(message) = panic.filter(|_| self.violation.is_none()) {
            match self.harness.excuse() {
                Some(reason) => excused = Some(format!("{message}; excused: {reason}")),
                None => {
                    let recent = self.trace.recent();
                    self.violation = Some(Violation { invariant: "panic".into(), node: None, sim_ns, message, recent });
                }
            }
        }
        RunReport {
            seed,
            trace_hash: self.trace.hash(),
            events: self.trace.len(),
            sim_ns,
            messages_delivered: self.delivered,
            violation: self.violation.take(),
            excused,
            trace: self.trace.take_full(),
            coverage: std::mem::take(&mut self.coverage),
        }
    }
}
