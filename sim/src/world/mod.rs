//! The world: runs a scenario of a [`System`] as one loop over timed events.
//!
//! Everything that happens is an event on the world's agenda ([`agenda`]), handled at its
//! instant of simulated time, which jumps from one event to the next. Each server is a process
//! whose inbox feeds inputs to the system's [`crate::Node`] ([`process`]). The world owns what
//! the processes share ([`state`]): the network model (which decides every message's fate and
//! delay), the disks, the clocks, the trace and the harness. The supervisor ([`supervisor`])
//! plays the scenario's steps and judges liveness at the end.

mod agenda;
mod process;
mod state;
mod supervisor;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::clock::NodeClock;
use crate::coverage::Coverage;
use crate::disk::NodeDisk;
use crate::harness::{Harness, NodeStatus};
use crate::net::{Network, NodeIndex};
use crate::system::{ScenarioOf, System};
use crate::trace::{Trace, TraceEvent};
use state::{Event, Slot, WorldState};
use supervisor::Supervisor;

/// Messages waiting in one node's inbox (e.g. while it is paused) are capped.
pub const INBOX_MAX: usize = 100_000;

/// Events handled at one instant of simulated time are capped (a bulk load of thousands of
/// creates at one step stays far below it).
pub const EVENTS_PER_INSTANT_MAX: u64 = 1_000_000;

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

/// The world's random stream for `seed`. (The constant kept it apart from madsim's own
/// stream, seeded with the same number, when the world ran on madsim; it stays so that a seed
/// draws what it drew.)
fn world_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ STREAM_SALT)
}

/// Salts every stream's seed ("metasim!"), the world's and the nodes' and links'.
const STREAM_SALT: u64 = 0x6d65_7461_7369_6d21;

/// One random stream per node (`Stream::Node`) or per ordered link (`Stream::Link`), apart from
/// the world's: a node's inputs and a link's message fates and latencies draw from their own
/// stream, so a step removed from a scenario (as a shrink does) moves the draws of what it
/// touches, not every draw after it. Faults and crash points stay on the world's stream.
fn stream_rngs(seed: u64, stream: Stream, servers: u32) -> Vec<ChaCha8Rng> {
    const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
    let count = match stream {
        Stream::Node => u64::from(servers),
        Stream::Link => u64::from(servers) * u64::from(servers),
    };
    (0..count)
        .map(|i| {
            let tag = (stream as u64) << 56 ^ (i + 1).wrapping_mul(GOLDEN_GAMMA);
            ChaCha8Rng::seed_from_u64(seed ^ STREAM_SALT ^ tag)
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Stream {
    Node = 1,
    Link = 2,
}

/// The index of the ordered link `from -> to` in `WorldState::link_rngs`.
fn link_index(servers: u32, from: NodeIndex, to: NodeIndex) -> usize {
    from as usize * servers as usize + to as usize
}

/// Every stream of the world from `seed` again (a `reseed` step).
fn reseed<S: System>(w: &mut WorldState<S>, seed: u64) {
    w.rng = world_rng(seed);
    w.node_rngs = stream_rngs(seed, Stream::Node, w.servers);
    w.link_rngs = stream_rngs(seed, Stream::Link, w.servers);
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

/// Run a scenario on a fresh OS thread (a deep stack for the system's handlers, and panics
/// caught as findings without a word on stderr) and report what happened.
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
fn new_world<S: System>(scenario: &ScenarioOf<S>, options: &RunOptions, seed: u64) -> WorldState<S> {
    let servers = scenario.servers;
    let mut clocks = vec![NodeClock::default(); servers as usize];
    for c in &scenario.clocks {
        clocks[c.node as usize] = NodeClock::new(c.offset_ms * 1_000_000, c.drift_ppm);
    }
    WorldState {
        servers,
        now_ns: 0,
        agenda: agenda::Agenda::new(seed),
        crash_points: scenario.crash_points,
        rng: world_rng(seed),
        node_rngs: stream_rngs(seed, Stream::Node, servers),
        link_rngs: stream_rngs(seed, Stream::Link, servers),
        net: Network::new(scenario.network),
        disks: vec![NodeDisk::default(); servers as usize],
        clocks,
        slots: (0..servers)
            .map(|_| Slot {
                state: None,
                status: NodeStatus::Down,
                inbox: None,
                draining: false,
                incarnation: 0,
                starts: 0,
            })
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
        full_checks: options.full_checks,
        spare_outputs: Vec::new(),
        spare_views: Vec::new(),
    }
}

fn run_here<S: System>(scenario: Arc<ScenarioOf<S>>, options: &RunOptions) -> RunReport {
    let seed = options.seed.unwrap_or(scenario.seed);
    let mut world = new_world::<S>(&scenario, options, seed);
    let mut supervisor = Supervisor::new(scenario);
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| drive(&mut world, &mut supervisor)));
    let panic = outcome.err().map(|panic| panic_message(panic.as_ref()));
    let sim_ns = world.now_ns;
    world.report(seed, sim_ns, panic)
}

/// The event loop: every server starts at time 0, then each event in turn, until the run's
/// end or its first violation.
fn drive<S: System>(w: &mut WorldState<S>, supervisor: &mut Supervisor<S>) {
    // Before any step: a step at 0 ms (a crash, say) finds the servers up.
    for node in 0..w.servers {
        let start = w.slots[node as usize].ask_start();
        process::start(w, node, start);
        if w.violation.is_some() {
            return;
        }
    }
    supervisor.begin(w);
    let mut events_this_instant = 0u64;
    while let Some((at_ns, event)) = w.agenda.pop() {
        debug_assert!(at_ns >= w.now_ns, "time runs forward");
        events_this_instant = if at_ns == w.now_ns { events_this_instant + 1 } else { 0 };
        // Handlers that keep scheduling at the very instant they run in would stop time: a
        // finding with a seed, not a hang.
        assert!(events_this_instant < EVENTS_PER_INSTANT_MAX, "{events_this_instant} events at {at_ns} ns");
        w.now_ns = at_ns;
        match event {
            Event::Start { node, start } => process::start(w, node, start),
            Event::Drain { node, incarnation } => process::drain(w, node, incarnation),
            Event::Deliver { from, to, msg } => w.deliver(from, to, msg),
            Event::Timer { node, incarnation, token } => {
                process::push_input(w, node, incarnation, state::Input::Timer { token })
            }
            Event::Fsync { node, incarnation, path, token } => process::fsync_done(w, node, incarnation, path, token),
            Event::Step => supervisor.steps(w),
            Event::Probe => supervisor.probe(w),
            Event::Crash(request) => supervisor.crash_point(w, request),
            Event::RestartAfterCrash { node } => supervisor.restart_after_crash(w, node),
            Event::End => {
                supervisor.end(w);
                return;
            }
        }
        if w.violation.is_some() {
            return;
        }
    }
    unreachable!("the run's end is always scheduled");
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
