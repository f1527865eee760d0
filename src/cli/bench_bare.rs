//! The floor of the engine rows: the bench's heartbeat pattern on a bare event loop, a binary
//! heap of timed events and one ChaCha8 stream for latencies, with nothing else (no tasks, no
//! trace, no checks). What the world costs above this is the price of everything else it does.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::net::LinkProfile;

/// One thing that happens at a simulated time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// `node`'s heartbeat timer fires for the `tick`th time.
    Tick { node: u32, tick: u64 },
    /// A heartbeat arrives at `to`.
    Deliver { to: u32, tick: u64 },
}

/// Events by time; the sequence number breaks ties in insertion order, so the loop is as
/// deterministic as the world it is compared with.
#[derive(Default)]
struct Agenda {
    heap: BinaryHeap<Reverse<(u64, u64, Event)>>,
    next_seq: u64,
}

impl Agenda {
    fn at(&mut self, at_ns: u64, event: Event) {
        self.heap.push(Reverse((at_ns, self.next_seq, event)));
        self.next_seq += 1;
    }

    fn pop(&mut self) -> Option<(u64, Event)> {
        self.heap.pop().map(|Reverse((at_ns, _, event))| (at_ns, event))
    }
}

/// The world's latency model (a floor plus an exponential tail, capped at 50 means), worked
/// out by the same function so both loops deliver about as many messages at the same cost each.
fn latency_ns(link: &LinkProfile, rng: &mut ChaCha8Rng) -> u64 {
    sim::net::latency_from_draw_ns(link, rng.gen::<f64>())
}

/// Messages delivered and wall time of `nodes` nodes each sending to every peer every
/// `interval_ms` for `sim_seconds`.
pub fn heartbeats(nodes: u32, sim_seconds: u64, interval_ms: u64, link: LinkProfile) -> (u64, Duration) {
    let started = Instant::now();
    let end_ns = sim_seconds * 1_000_000_000;
    let interval_ns = interval_ms * 1_000_000;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut agenda = Agenda::default();
    for node in 0..nodes {
        agenda.at(interval_ns, Event::Tick { node, tick: 0 });
    }
    let mut delivered = 0u64;
    let mut received_ticks = 0u64;
    while let Some((now, event)) = agenda.pop() {
        if now > end_ns {
            break;
        }
        match event {
            Event::Tick { node, tick } => {
                for to in (0..nodes).filter(|&p| p != node) {
                    agenda.at(now + latency_ns(&link, &mut rng), Event::Deliver { to, tick });
                }
                agenda.at(now + interval_ns, Event::Tick { node, tick: tick + 1 });
            }
            Event::Deliver { to, tick } => {
                delivered += 1;
                // Consumed, so the payload is not optimised away.
                received_ticks = received_ticks.wrapping_add(tick ^ u64::from(to));
            }
        }
    }
    std::hint::black_box(received_ticks);
    (delivered, started.elapsed())
}
