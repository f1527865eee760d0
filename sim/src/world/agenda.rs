//! The world's event queue: what happens next, in simulated time.
//!
//! A four-way heap of (time, tie-break) keys with their slots over a slab of events, so a sift
//! moves a key and a slot and never a message. Keys are unique (the tie-break is), so the
//! order events come out in is the keys' order, whatever the heap's shape. An event scheduled
//! earlier than everything waiting (a node's drain, at the instant it was asked for) waits
//! beside the heap and comes out next without a sift.
//!
//! Events of one instant come out in an order drawn from the run's seed: servers that start
//! together tick together, and a fixed order (the first scheduled first) would let the same
//! server act first at every tie, win every close election and never show the schedules where
//! another does. The tie-break is a bijection of the sequence number (splitmix64's step and
//! mix, salted by the seed), so it draws nothing from the world's random stream and no two
//! events share it.

/// Events waiting at once are capped: a run that schedules without end is a finding, not a
/// machine out of memory.
pub const EVENTS_QUEUED_MAX: usize = 20_000_000;

/// splitmix64's increment (odd, so `n * GOLDEN_GAMMA` is a bijection of `n`).
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// Children per heap node: four halves the heap's depth, and the four keys of a node's
/// children share a cache line or two.
const HEAP_ARITY: usize = 4;

/// A heap entry: the event's time in the high half of the key, its tie-break in the low half,
/// so one comparison orders two entries.
#[derive(Clone, Copy)]
struct Keyed {
    key: u128,
    slot: u32,
}

pub(super) struct Agenda<E> {
    /// The earliest entry, when it came in earlier than everything in `heap`.
    front: Option<Keyed>,
    /// A min-heap on `key`: each entry's key is below its children's (and above `front`'s).
    heap: Vec<Keyed>,
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
        Agenda { front: None, heap: Vec::new(), slab: Vec::new(), free: Vec::new(), next_seq: 0, tie_salt }
    }

    /// Schedule `event` at `at_ns` of simulated time.
    pub fn at(&mut self, at_ns: u64, event: E) {
        let tie = self.tie_of(self.next_seq);
        // The last place of an instant is `at_last`'s: the bijection gives it to one sequence
        // number in 2^64, which this run would have to reach.
        assert_ne!(tie, u64::MAX, "the tie-break of the last place");
        self.push(at_ns, tie, event);
        self.next_seq += 1;
    }

    /// The tie-break of the event scheduled `seq`th.
    fn tie_of(&self, seq: u64) -> u64 {
        crate::math::splitmix64(self.tie_salt.wrapping_add(seq.wrapping_mul(GOLDEN_GAMMA)))
    }

    fn push(&mut self, at_ns: u64, tie: u64, event: E) {
        let queued = self.heap.len() + usize::from(self.front.is_some());
        assert!(queued < EVENTS_QUEUED_MAX, "{queued} events queued at once");
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
        let entry = Keyed { key: (u128::from(at_ns) << 64) | u128::from(tie), slot };
        let first_waiting = self.front.or_else(|| self.heap.first().copied());
        if first_waiting.is_some_and(|first| first.key < entry.key) {
            self.heap_push(entry);
            return;
        }
        if let Some(front) = self.front.replace(entry) {
            self.heap_push(front);
        }
    }

    fn heap_push(&mut self, entry: Keyed) {
        debug_assert!(self.front.is_none_or(|front| front.key < entry.key), "the front is the earliest");
        self.heap.push(entry);
        self.sift_up(self.heap.len() - 1);
    }

    /// Move the entry at `at` up past every parent with a later key.
    fn sift_up(&mut self, mut at: usize) {
        let entry = self.heap[at];
        while at > 0 {
            let parent = (at - 1) / HEAP_ARITY;
            if self.heap[parent].key <= entry.key {
                break;
            }
            self.heap[at] = self.heap[parent];
            at = parent;
        }
        self.heap[at] = entry;
    }

    /// Move the entry at `at` down past every child with an earlier key, the earliest first.
    fn sift_down(&mut self, mut at: usize) {
        let entry = self.heap[at];
        let len = self.heap.len();
        loop {
            let first = at * HEAP_ARITY + 1;
            if first >= len {
                break;
            }
            let earliest = if first + HEAP_ARITY <= len {
                // Four children: a tournament of two pairs, whose comparisons do not wait on
                // each other (the linear scan's each waited on the one before).
                let earlier = |a: usize, b: usize| if self.heap[b].key < self.heap[a].key { b } else { a };
                earlier(earlier(first, first + 1), earlier(first + 2, first + 3))
            } else {
                (first + 1..len).fold(first, |earliest, child| {
                    if self.heap[child].key < self.heap[earliest].key {
                        child
                    } else {
                        earliest
                    }
                })
            };
            if self.heap[earliest].key >= entry.key {
                break;
            }
            self.heap[at] = self.heap[earliest];
            at = earliest;
        }
        self.heap[at] = entry;
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
        let Keyed { key, slot } = match self.front.take() {
            Some(front) => front,
            None => {
                let last = self.heap.pop()?;
                match self.heap.first_mut() {
                    Some(first) => {
                        let earliest = std::mem::replace(first, last);
                        self.sift_down(0);
                        earliest
                    }
                    None => last,
                }
            }
        };
        let at_ns = (key >> 64) as u64;
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

    /// Pushes and pops mixed as a run mixes them, against a sorted map of the same keys: every
    /// pop is the earliest key waiting, over heaps a few deep and many deep.
    #[test]
    fn pops_come_out_in_key_order_as_pushes_and_pops_mix() {
        for seed in 0..20u64 {
            let mut agenda = Agenda::new(seed);
            let mut waiting = std::collections::BTreeMap::new();
            let mut draw = seed;
            let mut next = || {
                draw = crate::math::splitmix64(draw.wrapping_add(GOLDEN_GAMMA));
                draw
            };
            let mut now = 0u64;
            for n in 0..5_000u64 {
                // Bursts of pushes, then of pops, so the heap grows and shrinks.
                let pushes = if (n / 500) % 2 == 0 { 3 } else { 1 };
                for _ in 0..pushes {
                    let at = now + next() % 50;
                    let seq = agenda.next_seq;
                    agenda.at(at, seq);
                    waiting.insert((at, agenda.tie_of(seq)), seq);
                }
                for _ in 0..2 {
                    let Some((at, seq)) = agenda.pop() else { break };
                    let (&(want_at, _), &want_seq) = waiting.iter().next().expect("the map holds what the heap does");
                    assert_eq!((at, seq), (want_at, want_seq), "seed {seed}, op {n}");
                    waiting.pop_first();
                    now = at;
                }
            }
            while let Some((at, seq)) = agenda.pop() {
                let ((want_at, _), want_seq) = waiting.pop_first().expect("the map holds what the heap does");
                assert_eq!((at, seq), (want_at, want_seq), "seed {seed}, draining");
            }
            assert!(waiting.is_empty(), "every event came out");
        }
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
