//! The raft groups a server runs, by name, and what the current input may have changed of
//! them.
//!
//! Every mutable access goes through this set, so it knows which groups an input could have
//! touched: the ones handed out by name, those a walk over all of them says it changed (the
//! tick's walks), or all of them when handed out together without saying.
//! The server settles only those after an input, and the oracle re-checks only those; a group
//! nobody touched has no new `Ready`, no new commit and nothing new to check. A revision stamp
//! changes whenever a group comes or goes.

#[cfg(debug_assertions)]
use std::collections::BTreeMap;

use compact_str::CompactString;
use rustc_hash::FxHashMap;

use super::group::Group;
use super::wire::META;
use crate::meta::Revision;
#[cfg(debug_assertions)]
use crate::raft::{Index, Stamp};

/// The meta group's slot; the stream and consumer groups take the others.
const META_SLOT: u32 = 0;
/// The place of a slot that holds no stream or consumer group.
const NO_PLACE: u32 = u32::MAX;

/// A new set counts every group as touched: a new server's first input is its start.
///
/// The meta group, which the server and the oracle look up on nearly every input (the oracle
/// on every server after every event), is kept apart from the stream and consumer groups:
/// [`GroupSet::meta`] finds it without comparing a name, and recording what an input touched
/// costs nothing for it. Every walk still yields all groups in name order, the meta group in
/// its place among the others.
///
/// The stream and consumer groups themselves live in slots (see [`Group::slot`]). An input
/// that names a group finds its slot in a hash map, with one string hashed and one compared.
/// From then on the group is known by slot, and name order by each slot's *place* (its index
/// among the groups in name order). The touched groups are kept by place, so settling and
/// checking them compares integers, not names. Places move only as groups come and go, and
/// then without reordering the groups already there.
pub struct GroupSet {
    /// Every stream and consumer group's slot, by name. Never walked, so its order, which
    /// depends on the hasher, cannot leak into a run; the hasher is a fixed one all the same.
    /// The names are held inline (a group name is 21 bytes): the compare after the hash probe
    /// reads the table's own memory, where a boxed name was a cache miss on every message.
    slot_by_name: FxHashMap<CompactString, u32>,
    /// The stream and consumer groups in name order, with their slots.
    in_order: Vec<(Box<str>, u32)>,
    /// How many of them are named before the meta group's name (all that the meta layer
    /// names: `S-…`, `C-…`): the meta group's place in a walk.
    before_meta: usize,
    /// Each slot's index in `in_order`; `NO_PLACE` for the meta group's slot and free ones.
    place: Vec<u32>,
    /// The stream and consumer groups by slot; `None` for the meta group's slot and for free
    /// ones (in `free`).
    slots: Vec<Option<Group>>,
    free: Vec<u32>,
    meta: Option<Group>,
    /// Stamped anew on every insert, remove and clear.
    revision: Revision,
    /// Every group counts as touched (until the next input begins).
    all_touched: bool,
    /// Otherwise the slots of the asset groups handed out mutably since the input began, in
    /// name order (the meta group always counts as touched). Cleared, not dropped, as an
    /// input begins.
    touched: Vec<u32>,
    /// Inputs begun, counting from 1: what the tick's walks need to know of each group is
    /// whether any input reached it since the tick last looked (see [`GroupSet::tick_walk`]).
    input: u64,
    /// The last input that handed out every group at once.
    all_touched_in: u64,
    /// By slot: what the tick's walks remember of each stream and consumer group.
    ticks: Vec<TickMark>,
    /// The time of the last tick. Every group's clock counts as at least this; the tick leaves
    /// it to [`held_mut`] to raise the clocks of the groups it passes over.
    clock_floor_ms: u64,
    /// Debug builds: each asset group's raft stamp and applied state as the input began, by
    /// slot, so that [`GroupSet::assert_changes_touched`] can prove at its end that every
    /// group it changed counts as touched (what the settle and the check memo rely on).
    #[cfg(debug_assertions)]
    at_input: BTreeMap<u32, (Stamp, Index, u64)>,
}

impl Default for GroupSet {
    fn default() -> Self {
        GroupSet {
            slot_by_name: FxHashMap::default(),
            in_order: Vec::new(),
            before_meta: 0,
            place: vec![NO_PLACE],
            slots: vec![None],
            free: Vec::new(),
            meta: None,
            revision: Revision::default(),
            all_touched: true,
            touched: Vec::new(),
            input: 0,
            all_touched_in: 0,
            ticks: vec![TickMark::default()],
            clock_floor_ms: 0,
            #[cfg(debug_assertions)]
            at_input: BTreeMap::new(),
        }
    }
}

/// What the tick's walks know of a group without reading it: kept densely by slot, because a
/// server with thousands of groups would otherwise pull every one of them through the cache on
/// every tick, to find that most of them have nothing due.
#[derive(Clone, Copy, Debug, Default)]
struct TickMark {
    /// The input that last handed the group out mutably.
    touched_in: u64,
    /// The input whose tick last visited it (0: never).
    visited_in: u64,
    /// Its [`Group::tick_due_ms`] after that visit.
    due_ms: u64,
    /// Whether it led its raft group after that visit.
    leading: bool,
    /// The input whose walk over the leaders last found nothing to do for it (0: none since a
    /// visit that did something), and the generation of the assignments it went by.
    quiet_in: u64,
    quiet_generation: u64,
}

/// What a walk over the leaders ([`GroupSet::maybe_leaders_marking`]) did with a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaderVisit {
    /// Changed it: it counts as touched.
    Changed,
    /// Nothing, and nothing would come of a visit while no input reaches the group and the
    /// assignments stay the same.
    Quiet,
    /// Nothing it counts as a change, but it is to be visited again on the next walk.
    Again,
}

impl LeaderVisit {
    /// `Changed` or `Quiet`.
    pub fn after(changed: bool) -> Self {
        if changed {
            LeaderVisit::Changed
        } else {
            LeaderVisit::Quiet
        }
    }

    /// `Changed` or `Again`.
    pub fn again(changed: bool) -> Self {
        if changed {
            LeaderVisit::Changed
        } else {
            LeaderVisit::Again
        }
    }
}

/// The group in `slot`, which holds one.
fn held(slots: &[Option<Group>], slot: u32) -> &Group {
    slots[slot as usize].as_ref().expect("a named slot holds its group")
}

/// The group in `slot`, to change: its clock first raised to `clock_floor_ms`, the time of
/// the last tick, which passes over most groups without raising their clocks (see
/// [`GroupSet::tick_walk`]).
fn held_mut(slots: &mut [Option<Group>], slot: u32, clock_floor_ms: u64) -> &mut Group {
    let group = slots[slot as usize].as_mut().expect("a named slot holds its group");
    group.node.raise_clock_to(clock_floor_ms);
    group
}

/// A walk over the groups in name order, yielding each name with its group.
fn named<'a>(slots: &'a [Option<Group>]) -> impl Fn(&'a (Box<str>, u32)) -> (&'a str, &'a Group) + Copy {
    move |(name, slot)| (&**name, held(slots, *slot))
}

impl GroupSet {
    /// A new input begins: nothing touched yet but the meta group, which every input settles.
    pub fn begin_input(&mut self) {
        self.input += 1;
        self.all_touched = false;
        self.touched.clear();
        #[cfg(debug_assertions)]
        {
            let groups = self.assets().map(|(_, group)| Self::as_input_began(group));
            self.at_input = groups.collect();
        }
    }

    #[cfg(debug_assertions)]
    fn as_input_began(group: &Group) -> (u32, (Stamp, Index, u64)) {
        (group.slot(), (group.node.stamp(), group.applied.index, group.applied.chain))
    }

    /// Debug builds: asserts that every asset group whose raft stamp or applied state moved
    /// since the input began counts as touched: a walk that changed a group and said it did
    /// not would leave it unsettled and unchecked. Nothing in release builds.
    pub fn assert_changes_touched(&self) {
        #[cfg(debug_assertions)]
        {
            if self.all_touched {
                return;
            }
            let places: Vec<u32> = self.touched.iter().map(|&slot| self.place[slot as usize]).collect();
            assert!(places.windows(2).all(|w| w[0] < w[1]), "touched groups out of name order: {places:?}");
            for (name, group) in self.assets() {
                if self.touched.contains(&group.slot()) {
                    continue;
                }
                let began = self.at_input.get(&group.slot());
                let now = Self::as_input_began(group).1;
                assert!(began == Some(&now), "group {name} changed without being touched: {began:?} -> {now:?}");
            }
        }
    }

    /// The touched slots named before the meta group's name, and those after.
    fn touched_sides(&self) -> (&[u32], &[u32]) {
        let before = self.touched.partition_point(|&slot| (self.place[slot as usize] as usize) < self.before_meta);
        self.touched.split_at(before)
    }

    /// The groups this input may have changed, in name order (`None`: every group).
    pub fn touched(&self) -> Option<impl Iterator<Item = &Group>> {
        if self.all_touched {
            return None;
        }
        let (before, after) = self.touched_sides();
        let group = |&slot: &u32| held(&self.slots, slot);
        Some(before.iter().map(group).chain(&self.meta).chain(after.iter().map(group)))
    }

    /// Changes whenever the set of names does (see [`Revision`]).
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// The meta group, if this server runs one.
    pub fn meta(&self) -> Option<&Group> {
        self.meta.as_ref()
    }

    /// The meta group, mutably (every input counts it as touched).
    pub fn meta_mut(&mut self) -> Option<&mut Group> {
        self.meta.as_mut()
    }

    /// The time of the last tick, to which the clocks of the groups it passed over are raised
    /// when they are handed out.
    pub fn clock_floor_ms(&self) -> u64 {
        self.clock_floor_ms
    }

    /// The slot of the asset group named `name` (not the meta group's name).
    fn slot_of(&self, name: &str) -> Option<u32> {
        self.slot_by_name.get(name).copied()
    }

    pub fn get(&self, name: &str) -> Option<&Group> {
        if name == META {
            return self.meta();
        }
        self.slot_of(name).map(|slot| held(&self.slots, slot))
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Group> {
        if name == META {
            return self.meta_mut();
        }
        let slot = self.slot_of(name)?;
        self.touch(slot);
        Some(held_mut(&mut self.slots, slot, self.clock_floor_ms))
    }

    /// Records the live asset group in `slot` as touched, in name order.
    fn touch(&mut self, slot: u32) {
        self.ticks[slot as usize].touched_in = self.input;
        if self.all_touched {
            return;
        }
        let place = &self.place;
        if let Err(at) = self.touched.binary_search_by_key(&place[slot as usize], |&other| place[other as usize]) {
            self.touched.insert(at, slot);
        }
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every group's name, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(name, _)| name)
    }

    pub fn values(&self) -> impl Iterator<Item = &Group> {
        self.iter().map(|(_, group)| group)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Group)> {
        let meta = self.meta.as_ref().map(|group| (META, group));
        let (before, after) = self.in_order.split_at(self.before_meta);
        let named = named(&self.slots);
        before.iter().map(named).chain(meta).chain(after.iter().map(named))
    }

    /// The stream and consumer groups (every group but the meta group), in name order: the
    /// tick's walks over them need not step over the meta group by name.
    pub fn assets(&self) -> impl Iterator<Item = (&str, &Group)> {
        self.in_order.iter().map(named(&self.slots))
    }

    /// Whether any stream or consumer group satisfies `pred`. The groups are taken in slot
    /// order, not name order: the tick's cheap tests before a walk need no order.
    pub fn any_asset(&self, pred: impl FnMut(&Group) -> bool) -> bool {
        self.slots.iter().flatten().any(pred)
    }

    /// `f` on every group, mutably, in name order: all count as touched.
    pub fn for_each_mut(&mut self, mut f: impl FnMut(&str, &mut Group)) {
        self.all_touched = true;
        self.all_touched_in = self.input;
        let (before, after) = self.in_order.split_at(self.before_meta);
        for (name, slot) in before {
            f(name, held_mut(&mut self.slots, *slot, self.clock_floor_ms));
        }
        if let Some(meta) = self.meta.as_mut() {
            f(META, meta);
        }
        for (name, slot) in after {
            f(name, held_mut(&mut self.slots, *slot, self.clock_floor_ms));
        }
    }

    /// Every group, mutably, in name order; `f` says whether it changed the group, and those it
    /// changed count as touched (the meta group always does). A walk over every group then
    /// costs the settling and checking of the few it changed, not of all.
    pub fn for_each_marking(&mut self, mut f: impl FnMut(&mut Group) -> bool) {
        let mut changed = Vec::new();
        let (before, after) = self.in_order.split_at(self.before_meta);
        for (_, slot) in before {
            if f(held_mut(&mut self.slots, *slot, self.clock_floor_ms)) {
                changed.push(*slot);
            }
        }
        if let Some(meta) = self.meta.as_mut() {
            f(meta);
        }
        for (_, slot) in after {
            if f(held_mut(&mut self.slots, *slot, self.clock_floor_ms)) {
                changed.push(*slot);
            }
        }
        self.mark_touched(changed);
    }

    /// The stream and consumer groups, mutably, in name order, as [`Self::for_each_marking`].
    pub fn assets_marking(&mut self, mut f: impl FnMut(&str, &mut Group) -> bool) {
        let mut changed = Vec::new();
        for (name, slot) in &self.in_order {
            if f(name, held_mut(&mut self.slots, *slot, self.clock_floor_ms)) {
                changed.push(*slot);
            }
        }
        self.mark_touched(changed);
    }

    /// Whether an input may have changed the group in `slot` since (or during) input `since`.
    fn reached_since(&self, slot: u32, since: u64) -> bool {
        self.ticks[slot as usize].touched_in >= since || self.all_touched_in >= since
    }

    /// The tick's walk over every group, in name order, as [`Self::for_each_marking`], with
    /// `f(Some(group))` for a group that is due: one an input reached since the tick's last
    /// visit, or whose [`Group::tick_due_ms`] has come (the meta group always is). `f` does the
    /// tick's work and says whether it changed the group. Nothing about any other group moved
    /// since a visit that found nothing to do before its due time, so the tick would only raise
    /// its clock: `f(None)` stands for it, and the walk reads nothing of the group, told so
    /// from a dense mark (reading a whole group of thousands was most of a tick). Its clock is
    /// raised when it is next handed out (see [`held_mut`]).
    pub fn tick_walk(&mut self, now_ms: u64, mut f: impl FnMut(Option<&mut Group>) -> bool) {
        assert!(now_ms >= self.clock_floor_ms, "the tick's clock went back");
        self.clock_floor_ms = now_ms;
        let mut changed = Vec::new();
        for at in 0..=self.in_order.len() {
            if at == self.before_meta {
                if let Some(meta) = self.meta.as_mut() {
                    f(Some(meta));
                }
            }
            let Some(&(_, slot)) = self.in_order.get(at) else { break };
            let mark = self.ticks[slot as usize];
            let due = mark.due_ms <= now_ms || self.reached_since(slot, mark.visited_in);
            if !due {
                if cfg!(debug_assertions) {
                    let group = held(&self.slots, slot);
                    assert!(!group.settle_due() && group.node.leader() == mark.leading, "{}", group.name);
                    assert!(now_ms < group.node.tick_due_ms(), "{}: passed over with a tick due", group.name);
                }
                let acted = f(None);
                debug_assert!(!acted, "a group passed over changed");
                continue;
            }
            let group = held_mut(&mut self.slots, slot, self.clock_floor_ms);
            if f(Some(group)) {
                changed.push(slot);
            }
            let leading = group.node.leader();
            self.ticks[slot as usize] =
                TickMark { visited_in: self.input, due_ms: group.tick_due_ms(), leading, ..mark };
        }
        self.mark_touched(changed);
    }

    /// [`Self::assets_marking`] over the groups that may lead, for a walk that goes by
    /// assignments of `generation`: it passes over a group that did not lead at the tick's
    /// last visit and that no input reached since (nothing else can make it lead), and one the
    /// walk found [`LeaderVisit::Quiet`] under the same assignments with no input since. Debug
    /// builds visit the quiet ones all the same, to prove them quiet. The groups passed over.
    pub fn maybe_leaders_marking(
        &mut self,
        generation: u64,
        mut f: impl FnMut(&str, &mut Group) -> LeaderVisit,
    ) -> usize {
        let mut changed = Vec::new();
        let mut passed = 0;
        for (name, slot) in &self.in_order {
            let slot = *slot;
            let mark = self.ticks[slot as usize];
            if !self.reached_since(slot, mark.visited_in) && !mark.leading {
                debug_assert!(!held(&self.slots, slot).node.leader(), "{name} leads unseen");
                passed += 1;
                continue;
            }
            if mark.quiet_in != 0 && mark.quiet_generation == generation && !self.reached_since(slot, mark.quiet_in) {
                debug_assert_eq!(
                    f(name, held_mut(&mut self.slots, slot, self.clock_floor_ms)),
                    LeaderVisit::Quiet,
                    "{name} was quiet"
                );
                passed += 1;
                continue;
            }
            let visit = f(name, held_mut(&mut self.slots, slot, self.clock_floor_ms));
            let (quiet_in, quiet_generation) = match visit {
                LeaderVisit::Quiet => (self.input, generation),
                LeaderVisit::Changed | LeaderVisit::Again => (0, 0),
            };
            self.ticks[slot as usize].quiet_in = quiet_in;
            self.ticks[slot as usize].quiet_generation = quiet_generation;
            if visit == LeaderVisit::Changed {
                changed.push(slot);
            }
        }
        self.mark_touched(changed);
        passed
    }

    /// Adds `changed` (live asset groups' slots in name order) to the touched ones: the two
    /// lists merged by place, as a tick may change hundreds of groups.
    fn mark_touched(&mut self, changed: Vec<u32>) {
        for &slot in &changed {
            self.ticks[slot as usize].touched_in = self.input;
        }
        if self.all_touched || changed.is_empty() {
            return;
        }
        if self.touched.is_empty() {
            self.touched = changed;
            return;
        }
        let place = |slot: u32| self.place[slot as usize];
        let mut merged = Vec::with_capacity(self.touched.len() + changed.len());
        let (mut before, mut now) = (self.touched.iter().copied().peekable(), changed.into_iter().peekable());
        loop {
            let next = match (before.peek(), now.peek()) {
                (Some(&a), Some(&b)) if a == b => {
                    now.next();
                    before.next()
                }
                (Some(&a), Some(&b)) if place(a) < place(b) => before.next(),
                (Some(_), Some(_)) | (None, Some(_)) => now.next(),
                (Some(_), None) => before.next(),
                (None, None) => break,
            };
            merged.extend(next);
        }
        self.touched = merged;
    }

    /// Each touched group, mutably, in name order (every group when all were touched).
    pub fn for_each_touched(&mut self, mut f: impl FnMut(&mut Group)) {
        if self.all_touched {
            return self.for_each_marking(|group| {
                f(group);
                true
            });
        }
        let split = self.touched_sides().0.len();
        let (before, after) = self.touched.split_at(split);
        for &slot in before {
            f(held_mut(&mut self.slots, slot, self.clock_floor_ms));
        }
        if let Some(meta) = self.meta.as_mut() {
            f(meta);
        }
        for &slot in after {
            f(held_mut(&mut self.slots, slot, self.clock_floor_ms));
        }
    }

    pub fn insert(&mut self, name: String, mut group: Group) -> Option<Group> {
        self.revision = Revision::fresh();
        if name == META {
            group.set_slot(META_SLOT);
            return self.meta.replace(group);
        }
        if let Some(slot) = self.slot_of(&name) {
            // The name's slot takes the new group; the old one goes back to the caller.
            group.set_slot(slot);
            let old = self.slots[slot as usize].replace(group);
            self.touch(slot);
            return self.handed_back(old);
        }
        let slot = self.hold_new(&name, group);
        let at = self.in_order.partition_point(|(other, _)| **other < *name);
        self.in_order.insert(at, (name.into_boxed_str(), slot));
        self.renumber_from(at);
        self.touch(slot);
        None
    }

    /// [`Self::insert`] of groups under names none has yet, all at once: the name order and
    /// the places are rebuilt once. One at a time, every insert renumbered the groups after
    /// it, and a server starting a create burst's thousand groups renumbered most of its
    /// groups a thousand times.
    pub fn insert_new(&mut self, groups: Vec<(String, Group)>) {
        if groups.is_empty() {
            return;
        }
        self.revision = Revision::fresh();
        let mut added: Vec<(Box<str>, u32)> = Vec::with_capacity(groups.len());
        for (name, group) in groups {
            assert!(name != META && self.slot_of(&name).is_none(), "{name} is a new asset group");
            let slot = self.hold_new(&name, group);
            added.push((name.into_boxed_str(), slot));
        }
        added.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        assert!(added.windows(2).all(|w| w[0].0 < w[1].0), "new groups have distinct names");
        let first = self.in_order.partition_point(|(other, _)| **other < *added[0].0);
        // Merge the two name orders from the first new name on.
        let tail = self.in_order.split_off(first);
        let mut tail = tail.into_iter().peekable();
        for new in added.iter().cloned() {
            self.in_order.extend(std::iter::from_fn(|| tail.next_if(|(other, _)| *other < new.0)));
            self.in_order.push(new);
        }
        self.in_order.extend(tail);
        self.renumber_from(first);
        for (_, slot) in added {
            self.touch(slot);
        }
    }

    /// Puts `group` in a free slot under `name`, which no group has, and counts it before
    /// the meta group or after; the caller gives it its place in the name order.
    fn hold_new(&mut self, name: &str, mut group: Group) -> u32 {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.place.push(NO_PLACE);
                self.ticks.push(TickMark::default());
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 groups at once")
            }
        };
        group.set_slot(slot);
        self.slots[slot as usize] = Some(group);
        // A slot taken again forgets its last group's visits.
        self.ticks[slot as usize] = TickMark::default();
        self.before_meta += usize::from(name < META);
        self.slot_by_name.insert(CompactString::from(name), slot);
        slot
    }

    pub fn remove(&mut self, name: &str) -> Option<Group> {
        self.revision = Revision::fresh();
        if name == META {
            return self.meta.take();
        }
        let slot = self.slot_by_name.remove(name)?;
        let at = self.place[slot as usize] as usize;
        self.in_order.remove(at);
        self.before_meta -= usize::from(name < META);
        self.place[slot as usize] = NO_PLACE;
        // A removed group is no longer there to settle or check.
        self.touched.retain(|&touched| touched != slot);
        self.renumber_from(at);
        self.free.push(slot);
        let group = self.slots[slot as usize].take();
        self.handed_back(group)
    }

    /// A group that leaves the set, its clock raised as [`held_mut`] raises it.
    fn handed_back(&self, mut group: Option<Group>) -> Option<Group> {
        if let Some(group) = &mut group {
            group.node.raise_clock_to(self.clock_floor_ms);
        }
        group
    }

    /// The places of the groups from `at` on, after one came or went there. The groups keep
    /// their order, so the touched list stays in order too.
    fn renumber_from(&mut self, at: usize) {
        for (place, (_, slot)) in self.in_order.iter().enumerate().skip(at) {
            self.place[*slot as usize] = u32::try_from(place).expect("fewer than 2^32 groups at once");
        }
    }

    pub fn clear(&mut self) {
        self.revision = Revision::fresh();
        self.slot_by_name.clear();
        self.in_order.clear();
        self.before_meta = 0;
        self.place.truncate(1);
        self.slots.truncate(1);
        self.ticks.truncate(1);
        self.free.clear();
        self.touched.clear();
        self.meta = None;
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::raft::{Config, RaftNode, Role};

    fn group(name: &str) -> Group {
        let node = RaftNode::new(Config::default(), vec![0, 1, 2], 0, &mut ChaCha8Rng::seed_from_u64(7));
        Group::new(name, node, 0, false)
    }

    fn touched(set: &GroupSet) -> Option<Vec<&str>> {
        set.touched().map(|groups| groups.map(|g| g.name.as_str()).collect())
    }

    /// Groups put in together hold what they would one at a time: the same slots, name order,
    /// places and touched groups, with the meta group counted among the names.
    #[test]
    fn groups_inserted_together_are_held_as_one_at_a_time() {
        let build = || {
            let mut set = GroupSet::default();
            for name in ["S-b", "S-d", META, "x", "S-gone"] {
                set.insert(name.to_string(), group(name));
            }
            set.remove("S-gone");
            set.begin_input();
            set
        };
        let new = ["S-c", "S-a", "S-e", "y", "C-a"];
        let mut one_at_a_time = build();
        for name in new {
            one_at_a_time.insert(name.to_string(), group(name));
        }
        let mut together = build();
        together.insert_new(new.iter().map(|name| (name.to_string(), group(name))).collect());
        assert_eq!(together.keys().collect::<Vec<_>>(), ["C-a", "S-a", "S-b", "S-c", "S-d", "S-e", META, "x", "y"]);
        assert_eq!(together.in_order, one_at_a_time.in_order, "name order and slots");
        assert_eq!(together.place, one_at_a_time.place);
        assert_eq!(together.before_meta, one_at_a_time.before_meta);
        assert_eq!(touched(&together), touched(&one_at_a_time));
        for name in new {
            assert_eq!(together.slot_of(name), one_at_a_time.slot_of(name), "{name}");
            assert_eq!(together.get(name).map(|g| g.slot()), together.slot_of(name), "{name} knows its slot");
        }
        together.insert_new(Vec::new());
        assert_eq!(together.in_order, one_at_a_time.in_order, "nothing to insert");
    }

    #[test]
    fn records_the_groups_an_input_was_handed() {
        let mut set = GroupSet::default();
        assert_eq!(touched(&set), None, "a new set counts everything as touched");
        for name in ["S-b", "S-a", META] {
            set.insert(name.to_string(), group(name));
        }
        set.begin_input();
        assert_eq!(touched(&set), Some(vec![META]), "every input settles the meta group");
        let _ = set.get("S-a");
        assert_eq!(touched(&set), Some(vec![META]), "a shared look changes nothing");
        let _ = set.get_mut("S-b");
        let _ = set.get_mut("S-x");
        assert_eq!(touched(&set), Some(vec!["S-b", META]), "handed out mutably, or absent");
        let mut settled = Vec::new();
        set.for_each_touched(|g| settled.push(g.name.clone()));
        assert_eq!(settled, ["S-b", META], "settles what was touched, in name order");
        set.for_each_mut(|_, _| {});
        assert_eq!(touched(&set), None, "all handed out together: all touched");
    }

    /// What the server's settle does for a group that stands alone: its Ready taken and
    /// applied, its probes and its lead reported.
    fn settle(g: &mut Group) {
        while g.node.has_ready() {
            let _ = g.node.ready();
            g.node.applied_to(g.node.commit_index());
        }
        g.node.take_probes().for_each(drop);
        g.reported_lead = (g.node.role() == Role::Leader).then(|| (g.node.term(), g.node.commit_index()));
    }

    /// One tick's walk, visiting as the server's tick does: the groups it found due.
    fn tick(set: &mut GroupSet, now_ms: u64) -> Vec<String> {
        set.begin_input();
        let mut due = Vec::new();
        set.tick_walk(now_ms, |g| {
            let Some(g) = g else { return false };
            due.push(g.name.clone());
            settle(g);
            g.node.tick(now_ms, &mut ChaCha8Rng::seed_from_u64(now_ms));
            settle(g);
            false
        });
        due
    }

    /// The tick visits a group an input reached since its last visit, or whose timer came;
    /// it passes over the others, and a walk over the leaders passes over a group that did
    /// not lead then and was not reached since, or that it found quiet under the same
    /// assignments.
    #[test]
    fn the_tick_passes_over_groups_nothing_reached_with_nothing_due() {
        let mut set = GroupSet::default();
        for name in ["S-a", "S-b", META, "x"] {
            set.insert(name.to_string(), group(name));
        }
        let mut sole = RaftNode::new(Config::default(), vec![0], 0, &mut ChaCha8Rng::seed_from_u64(7));
        sole.campaign(0, &mut ChaCha8Rng::seed_from_u64(7));
        assert!(sole.leader());
        set.insert("S-l".to_string(), Group::new("S-l", sole, 0, false));
        let all = ["S-a", "S-b", "S-l", META, "x"];
        assert_eq!(tick(&mut set, 100), all, "never visited");
        assert_eq!(tick(&mut set, 200), [META], "nothing reached, nothing due (elections from 4 s)");
        set.begin_input();
        let _ = set.get_mut("S-b");
        assert_eq!(tick(&mut set, 300), ["S-b", META], "reached by the input before the tick's");
        set.begin_input();
        set.for_each_mut(|_, _| {});
        assert_eq!(tick(&mut set, 400), all, "every group handed out");
        let due_ms = set.get("S-l").unwrap().tick_due_ms();
        assert_eq!(due_ms, 1_000, "the leader's heartbeat");
        assert_eq!(tick(&mut set, due_ms - 100), [META]);
        assert_eq!(tick(&mut set, due_ms), ["S-l", META], "its timer came");
        assert_eq!(tick(&mut set, 10_000), all, "election timers came");

        // S-a, S-b and x did not lead at the last tick; S-l did.
        let leaders = |set: &mut GroupSet, generation: u64| {
            set.begin_input();
            set.maybe_leaders_marking(generation, |_, _| LeaderVisit::Quiet)
        };
        assert_eq!(leaders(&mut set, 1), 3, "all but the leader of the last tick");
        assert_eq!(leaders(&mut set, 1), 4, "the leader too: quiet under the same assignments");
        assert_eq!(leaders(&mut set, 2), 3, "new assignments");
        set.begin_input();
        let _ = set.get_mut("S-l");
        let _ = set.get_mut("x");
        assert_eq!(leaders(&mut set, 2), 2, "reached since: x may lead now, and S-l may have work");
    }

    /// A group the tick passes over reads its clock as of that tick once it is handed out,
    /// by any way out of the set, as if the tick had raised it.
    #[test]
    fn a_group_passed_over_has_its_clock_raised_when_handed_out() {
        let clock = |g: &Group| g.node.leader_contact_ms().1;
        let mut set = GroupSet::default();
        for name in ["S-a", "S-b", "S-c", "S-d"] {
            set.insert(name.to_string(), group(name));
        }
        assert_eq!(tick(&mut set, 100).len(), 4, "never visited");
        assert_eq!(tick(&mut set, 700), Vec::<String>::new());
        assert_eq!(clock(set.get("S-a").unwrap()), 100, "passed over: not raised yet");
        assert_eq!(clock(set.get_mut("S-a").unwrap()), 700, "raised when handed out");
        let mut seen = Vec::new();
        set.for_each_mut(|name, g| seen.push((name.to_string(), clock(g))));
        assert!(seen.iter().all(|(_, ms)| *ms == 700), "{seen:?}");
        assert_eq!(tick(&mut set, 800).len(), 4, "all handed out since");
        assert_eq!(tick(&mut set, 900), Vec::<String>::new());
        assert_eq!(clock(&set.remove("S-b").unwrap()), 900, "raised when taken out");
        let old = set.insert("S-c".to_string(), group("S-c")).expect("replaced");
        assert_eq!(clock(&old), 900, "raised when replaced");
    }

    #[test]
    fn a_touched_group_removed_in_the_same_input_leaves_the_rest_touched() {
        let mut set = GroupSet::default();
        for name in ["S-a", "S-b", "S-c", META] {
            set.insert(name.to_string(), group(name));
        }
        set.begin_input();
        let _ = set.get_mut("S-a");
        let _ = set.get_mut("S-b");
        let _ = set.get_mut("S-c");
        set.remove("S-b");
        assert_eq!(touched(&set), Some(vec!["S-a", "S-c", META]), "the meta group is settled and checked still");
        let mut settled = Vec::new();
        set.for_each_touched(|g| settled.push(g.name.clone()));
        assert_eq!(settled, ["S-a", "S-c", META]);
    }

    #[test]
    fn every_live_group_has_a_slot_of_its_own() {
        let mut set = GroupSet::default();
        for name in ["S-b", META, "S-a", "x"] {
            set.insert(name.to_string(), group(name));
        }
        let slots = |set: &GroupSet| set.iter().map(|(name, g)| (name.to_string(), g.slot())).collect::<Vec<_>>();
        let names = |slots: &[(String, u32)]| slots.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        let held = slots(&set);
        assert_eq!(names(&held), ["S-a", "S-b", META, "x"]);
        let distinct: std::collections::BTreeSet<u32> = held.iter().map(|(_, s)| *s).collect();
        assert_eq!(distinct.len(), 4, "{held:?}");
        assert_eq!(set.get(META).map(Group::slot), Some(META_SLOT));
        set.remove("S-b");
        set.insert("S-c".to_string(), group("S-c"));
        assert_eq!(
            set.get("S-c").map(Group::slot),
            held.iter().find(|(n, _)| n == "S-b").map(|(_, s)| *s),
            "a freed slot is given again"
        );
        let replaced = set.insert("S-a".to_string(), group("S-a")).expect("S-a was there");
        assert_eq!(replaced.slot(), set.get("S-a").unwrap().slot(), "a group put in place of one keeps its slot");
        set.clear();
        set.insert("S-a".to_string(), group("S-a"));
        assert_eq!(names(&slots(&set)), ["S-a"]);
    }

    /// A walk may change hundreds of groups of one input that touched others already: the
    /// lists merge in name order, each group once.
    #[test]
    fn touched_lists_merge_in_name_order() {
        let mut set = GroupSet::default();
        let names: Vec<String> = (0..40).map(|i| format!("S-{i:02}")).collect();
        for name in names.iter().rev() {
            set.insert(name.clone(), group(name));
        }
        set.insert(META.to_string(), group(META));
        set.begin_input();
        for name in ["S-03", "S-20", "S-39"] {
            let _ = set.get_mut(name);
        }
        set.assets_marking(|name, _| name.ends_with('0') || name.ends_with('3'));
        let want: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| n.ends_with('0') || n.ends_with('3') || *n == "S-39")
            .chain([META])
            .collect();
        assert_eq!(touched(&set), Some(want));
    }

    /// Groups come and go while others count as touched: the places move, the touched ones
    /// stay in name order, and a walk still goes in name order.
    #[test]
    fn places_follow_groups_that_come_and_go() {
        let mut set = GroupSet::default();
        for name in ["S-b", "S-d", META, "x"] {
            set.insert(name.to_string(), group(name));
        }
        set.begin_input();
        let _ = set.get_mut("S-d");
        let _ = set.get_mut("x");
        set.insert("S-c".to_string(), group("S-c"));
        set.insert("S-a".to_string(), group("S-a"));
        assert_eq!(touched(&set), Some(vec!["S-a", "S-c", "S-d", META, "x"]));
        set.remove("S-b");
        set.remove("S-c");
        set.insert("w".to_string(), group("w"));
        let _ = set.get_mut("S-b");
        assert_eq!(touched(&set), Some(vec!["S-a", "S-d", META, "w", "x"]));
        set.assets_marking(|name, _| name == "S-d" || name == "y");
        set.assert_changes_touched();
        assert_eq!(set.keys().collect::<Vec<_>>(), ["S-a", "S-d", META, "w", "x"]);
        let mut settled = Vec::new();
        set.for_each_touched(|g| settled.push(g.name.clone()));
        assert_eq!(settled, ["S-a", "S-d", META, "w", "x"]);
    }

    #[test]
    fn a_walk_marks_only_what_it_changed() {
        let mut set = GroupSet::default();
        for name in ["x-after-meta", "S-a", "S-b", "S-c", META] {
            set.insert(name.to_string(), group(name));
        }
        set.begin_input();
        let _ = set.get_mut("S-c");
        let mut walked = Vec::new();
        set.for_each_marking(|g| {
            walked.push(g.name.clone());
            g.name == "S-a" || g.name == META || g.name == "x-after-meta"
        });
        let in_order = ["S-a", "S-b", "S-c", META, "x-after-meta"];
        assert_eq!(walked, in_order, "every group, in name order");
        assert_eq!(set.keys().collect::<Vec<_>>(), in_order);
        let mut settled = Vec::new();
        set.for_each_touched(|g| settled.push(g.name.clone()));
        assert_eq!(settled, ["S-a", "S-c", META, "x-after-meta"], "the changed ones join those touched before");
        set.for_each_mut(|_, _| {});
        let mut settled = Vec::new();
        set.for_each_touched(|g| settled.push(g.name.clone()));
        assert_eq!(settled, in_order, "all touched: all settled, in name order");
        set.begin_input();
        set.assets_marking(|name, _| name == "S-b");
        assert_eq!(touched(&set), Some(vec!["S-b", META]));
    }

    /// A walk that changes a group and says it did not is caught at the end of the input
    /// (debug builds); one that says so passes.
    #[test]
    #[cfg(debug_assertions)]
    fn a_change_left_untouched_is_caught() {
        let mut set = GroupSet::default();
        for name in ["S-a", "S-b", META] {
            set.insert(name.to_string(), group(name));
        }
        let campaign = |g: &mut Group| {
            g.node.campaign(1_000, &mut ChaCha8Rng::seed_from_u64(1));
            true
        };
        set.begin_input();
        set.for_each_marking(|g| g.name == "S-a" && campaign(g));
        set.assert_changes_touched();
        set.begin_input();
        set.for_each_marking(|g| g.name == "S-b" && !campaign(g));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| set.assert_changes_touched()));
        let message = caught.expect_err("the change was hidden");
        let message = message.downcast_ref::<String>().expect("a formatted message");
        assert!(message.contains("group S-b changed without being touched"), "{message}");
    }

    #[test]
    fn the_revision_moves_when_a_group_comes_or_goes() {
        let mut set = GroupSet::default();
        let before = set.revision();
        set.insert("S-a".into(), group("S-a"));
        let inserted = set.revision();
        assert_ne!(before, inserted);
        set.begin_input();
        let _ = set.get_mut("S-a");
        assert_eq!(set.revision(), inserted, "a group's own changes leave the set's revision");
        set.remove("S-a");
        assert_ne!(set.revision(), inserted);
    }
}
