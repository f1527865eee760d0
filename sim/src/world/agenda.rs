//! The world's event queue: what happens next, in simulated time.
//!
//! A binary heap of (time, tie-break, slot) keys over a slab of events, so a sift moves three
//! integers and never a message. Events of one instant come out in an order drawn from the
//! run's seed: servers that start together tick together, and a fixed order (the first
//! scheduled first) would let the same server act first at every tie, win every close
//! election and never show the schedules where another does. The tie-break is a bijection
//! of the sequence number (splitmix64's step and mix, salted by the seed), so it draws
//! nothing from the world's random stream and no two events share it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Events waiting at once are capped: a run that schedules without end is a finding, not a
/// machine out of memory.
pub const EVENTS_QUEUED_MAX: usize = 20_000_000;

/// splitmix64's increment (odd, so `n * GOLDEN_GAMMA` is a bijection of `n`).
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

pub(super) struct Agenda<E> {
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    /// The events by slot; `None` marks a free slot (listed in `free`).
    slab: Vec<Option<E>>,
    free: Vec<u32>,
    next_seq: u64,
    /// Where the run's tie-breaks start.
    tie_salt: u64,
}

impl<E> Agenda<E> {
    /// An empty agenda whose ties are broken in an order drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        let tie_salt = crate::math::splitmix64(seed ^ 0x7469_652d_6272_6b21);
        Agenda { heap: BinaryHeap::new(), slab: Vec::new(), free: Vec::new(), next_seq: 0, tie_salt }
    }

    /// Schedule `event` at `at_ns` of simulated time.
    pub fn at(&mut self, at_ns: u64, event: E) {
        let tie = crate::math::splitmix64(self.tie_salt.wrapping_add(self.next_seq.wrapping_mul(GOLDEN_GAMMA)));
        // The last place of an instant is `at_last`'s: the bijection gives it to one sequence
        // number in 2^64, which this run would have to reach.
        assert_ne!(tie, u64::MAX, "the tie-break of the last place");
        self.push(at_ns, tie, event);
        self.next_seq += 1;
    }

    fn push(&mut self, at_ns: u64, tie: u64, event: E) {
        assert!(self.heap.len() < EVENTS_QUEUED_MAX, "{} events queued at once", self.heap.len());
        let slot = match self.free.pop() {
            Some(slot) => {
                debug_assert!(self.slab[slot as usize].is_none(), "a free slot is empty");
                self.slab[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slab.push(Some(event));
                u32::try_from(self.slab.len() - 1).expect("slots fit in u32")
            }
        };
        self.heap.push(Reverse((at_ns, tie, slot)));
    }

    /// Schedule `event` at `at_ns`, after everything else scheduled for that instant, whenever
    /// it was scheduled. For the run's end: what is due at its last instant still happens.
    /// Only one such event may wait at once.
    pub fn at_last(&mut self, at_ns: u64, event: E) {
        self.push(at_ns, u64::MAX, event);
        self.next_seq += 1;
    }

    /// The earliest event and its time (of events at one instant, the one the tie-break puts
    /// first).
    pub fn pop(&mut self) -> Option<(u64, E)> {
        let Reverse((at_ns, _, slot)) = self.heap.pop()?;
        let event = self.slab[slot as usize].take().expect("a queued slot holds its event");
        self.free.push(slot);
        Some((at_ns, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(agenda: &mut Agenda<&'static str>) -> Vec<(u64, &'static str)> {
        std::iter::from_fn(|| agenda.pop()).collect()
    }

    #[test]
    fn events_come_out_by_time_and_ties_in_an_order_drawn_from_the_seed() {
        let schedule = |seed| {
            let mut agenda = Agenda::new(seed);
            agenda.at(30, "c");
            for tied in ["a1", "a2", "a3", "a4", "a5", "a6"] {
                agenda.at(10, tied);
            }
            agenda.at(20, "b");
            agenda
        };
        let mut one = schedule(1);
        let first = one.pop().expect("queued");
        assert_eq!(first.0, 10);
        // A slot a pop freed is reused.
        one.at(10, "a7");
        let mut order = vec![first];
        order.extend(drain(&mut one));
        assert_eq!(one.slab.len(), 8, "the freed slot was reused");
        let times: Vec<u64> = order.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, [10, 10, 10, 10, 10, 10, 10, 20, 30]);
        let mut tied: Vec<&str> = order[..7].iter().map(|(_, e)| *e).collect();
        // The same seed breaks the ties the same way; some seed breaks them another way.
        let again: Vec<&str> = drain(&mut schedule(1)).into_iter().map(|(_, e)| e).take(6).collect();
        let without_a7: Vec<&str> = tied.iter().copied().filter(|e| *e != "a7").collect();
        assert_eq!(again, without_a7);
        let orders: std::collections::BTreeSet<Vec<&str>> =
            (0..20).map(|seed| drain(&mut schedule(seed)).into_iter().map(|(_, e)| e).take(6).collect()).collect();
        assert!(orders.len() > 10, "ties keep one order across seeds: {orders:?}");
        // The last place of an instant goes to `at_last`, scheduled first or not.
        let mut ends = Agenda::new(7);
        ends.at(10, "before");
        ends.at_last(20, "end");
        for tied in ["t1", "t2", "t3"] {
            ends.at(20, tied);
        }
        ends.at(30, "after");
        let order: Vec<&str> = drain(&mut ends).into_iter().map(|(_, e)| e).collect();
        assert_eq!(order[0], "before");
        assert_eq!(order[4..], ["end", "after"]);
        tied.sort();
        assert_eq!(tied, ["a1", "a2", "a3", "a4", "a5", "a6", "a7"], "every tied event comes out once");
    }
}
