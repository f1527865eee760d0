//! The raft groups a server runs, by name, and what the current input may have changed of
//! them.
//!
//! Every mutable access goes through this set, so it knows which groups an input could have
//! touched: the ones handed out by name, those a walk over all of them says it changed (the
//! tick's walks), or all of them when handed out together without saying.
//! The server settles only those after an input, and the oracle re-checks only those; a group
//! nobody touched has no new `Ready`, no new commit and nothing new to check. A revision stamp
//! changes whenever a group comes or goes.

use std::collections::BTreeMap;

use super::group::Group;
use super::wire::META;
use crate::meta::Revision;
#[cfg(debug_assertions)]
use crate::raft::{Index, Stamp};

/// The meta group's slot; the stream and consumer groups take the others.
const META_SLOT: u32 = 0;

/// A new set counts every group as touched: a new server's first input is its start.
///
/// The meta group, which the server and the oracle look up on nearly every input (the oracle
/// on every server after every event), is kept apart from the stream and consumer groups:
/// [`GroupSet::meta`] finds it without comparing a name, and recording what an input touched
/// costs nothing for it. Every walk still yields all groups in name order, the meta group in
/// its place among the others: the stream and consumer groups are named in two maps, those
/// named before the meta group's name and those after, so no walk looks for its place.
///
/// The stream and consumer groups themselves live in slots (see [`Group::slot`]): a name is
/// looked up once, as an input names its group, and what the input touched is kept by slot,
/// so the settle and the checks reach those groups again without a search by name.
pub struct GroupSet {
    /// The slots of the stream and consumer groups named before the meta group's name (all
    /// that the meta layer names: `S-…`, `C-…`)…
    before_meta: BTreeMap<String, u32>,
    /// …and after it.
    after_meta: BTreeMap<String, u32>,
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
    /// name order, those named before the meta group's name and after it (the meta group
    /// always counts as touched). Cleared, not dropped, as an input begins.
    touched: [Vec<u32>; 2],
    /// Debug builds: each asset group's raft stamp and applied state as the input began, by
    /// slot, so that [`GroupSet::assert_changes_touched`] can prove at its end that every
    /// group it changed counts as touched (what the settle and the check memo rely on).
    #[cfg(debug_assertions)]
    at_input: BTreeMap<u32, (Stamp, Index, u64)>,
}

impl Default for GroupSet {
    fn default() -> Self {
        GroupSet {
            before_meta: BTreeMap::new(),
            after_meta: BTreeMap::new(),
            slots: vec![None],
            free: Vec::new(),
            meta: None,
            revision: Revision::default(),
            all_touched: true,
            touched: [Vec::new(), Vec::new()],
            #[cfg(debug_assertions)]
            at_input: BTreeMap::new(),
        }
    }
}

/// The group in `slot`, which holds one.
fn held(slots: &[Option<Group>], slot: u32) -> &Group {
    slots[slot as usize].as_ref().expect("a named slot holds its group")
}

fn held_mut(slots: &mut [Option<Group>], slot: u32) -> &mut Group {
    slots[slot as usize].as_mut().expect("a named slot holds its group")
}

/// A walk over a name map's entries, yielding each name with its group.
fn named<'a>(slots: &'a [Option<Group>]) -> impl Fn((&'a String, &'a u32)) -> (&'a str, &'a Group) {
    move |(name, &slot)| (name.as_str(), held(slots, slot))
}

impl GroupSet {
    /// A new input begins: nothing touched yet but the meta group, which every input settles.
    pub fn begin_input(&mut self) {
        self.all_touched = false;
        self.touched.iter_mut().for_each(Vec::clear);
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
            for (name, group) in self.assets() {
                if self.touched.iter().flatten().any(|&slot| slot == group.slot()) {
                    continue;
                }
                let began = self.at_input.get(&group.slot());
                let now = Self::as_input_began(group).1;
                assert!(began == Some(&now), "group {name} changed without being touched: {began:?} -> {now:?}");
            }
        }
    }

    /// The groups this input may have changed, in name order (`None`: every group).
    pub fn touched(&self) -> Option<impl Iterator<Item = &Group>> {
        if self.all_touched {
            return None;
        }
        let [before, after] = &self.touched;
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

    /// The slot of the asset group named `name` (not the meta group's name).
    fn slot_of(&self, name: &str) -> Option<u32> {
        let side = if name < META { &self.before_meta } else { &self.after_meta };
        side.get(name).copied()
    }

    /// The name map an asset group named `name` belongs in.
    fn names_mut(&mut self, name: &str) -> &mut BTreeMap<String, u32> {
        if name < META {
            &mut self.before_meta
        } else {
            &mut self.after_meta
        }
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
        Some(held_mut(&mut self.slots, slot))
    }

    /// Records the live asset group in `slot` as touched, in name order.
    fn touch(&mut self, slot: u32) {
        if self.all_touched {
            return;
        }
        let slots = &self.slots;
        let name = held(slots, slot).name.as_str();
        let touched = &mut self.touched[usize::from(name > META)];
        if let Err(at) = touched.binary_search_by(|&other| held(slots, other).name.as_str().cmp(name)) {
            touched.insert(at, slot);
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
        let (before, after) = (named(&self.slots), named(&self.slots));
        self.before_meta.iter().map(before).chain(meta).chain(self.after_meta.iter().map(after))
    }

    /// The stream and consumer groups (every group but the meta group), in name order: the
    /// tick's walks over them need not step over the meta group by name.
    pub fn assets(&self) -> impl Iterator<Item = (&str, &Group)> {
        let named = named(&self.slots);
        self.before_meta.iter().chain(&self.after_meta).map(named)
    }

    /// Whether any stream or consumer group satisfies `pred`. The groups are taken in slot
    /// order, not name order: the tick's cheap tests before a walk need no order, and the
    /// slots lie in one array, where the names lie in a tree.
    pub fn any_asset(&self, pred: impl FnMut(&Group) -> bool) -> bool {
        self.slots.iter().flatten().any(pred)
    }

    /// `f` on every group, mutably, in name order: all count as touched.
    pub fn for_each_mut(&mut self, mut f: impl FnMut(&str, &mut Group)) {
        self.all_touched = true;
        for (name, &slot) in &self.before_meta {
            f(name, held_mut(&mut self.slots, slot));
        }
        if let Some(meta) = self.meta.as_mut() {
            f(META, meta);
        }
        for (name, &slot) in &self.after_meta {
            f(name, held_mut(&mut self.slots, slot));
        }
    }

    /// Every group, mutably, in name order; `f` says whether it changed the group, and those it
    /// changed count as touched (the meta group always does). A walk over every group then
    /// costs the settling and checking of the few it changed, not of all.
    pub fn for_each_marking(&mut self, mut f: impl FnMut(&mut Group) -> bool) {
        let mut changed = [Vec::new(), Vec::new()];
        for &slot in self.before_meta.values() {
            if f(held_mut(&mut self.slots, slot)) {
                changed[0].push(slot);
            }
        }
        if let Some(meta) = self.meta.as_mut() {
            f(meta);
        }
        for &slot in self.after_meta.values() {
            if f(held_mut(&mut self.slots, slot)) {
                changed[1].push(slot);
            }
        }
        self.mark_touched(changed);
    }

    /// The stream and consumer groups, mutably, in name order, as [`Self::for_each_marking`].
    pub fn assets_marking(&mut self, mut f: impl FnMut(&str, &mut Group) -> bool) {
        let mut changed = [Vec::new(), Vec::new()];
        for (side, names) in [&self.before_meta, &self.after_meta].into_iter().enumerate() {
            for (name, &slot) in names {
                if f(name, held_mut(&mut self.slots, slot)) {
                    changed[side].push(slot);
                }
            }
        }
        self.mark_touched(changed);
    }

    /// Adds `changed` (each side in name order, each a live asset group's slot) to the touched
    /// ones: the lists merged by name, as a tick may change hundreds of groups.
    fn mark_touched(&mut self, changed: [Vec<u32>; 2]) {
        if self.all_touched {
            return;
        }
        for (touched, changed) in self.touched.iter_mut().zip(changed) {
            if changed.is_empty() {
                continue;
            }
            if touched.is_empty() {
                touched.extend(changed);
                continue;
            }
            let name = |slot: u32| held(&self.slots, slot).name.as_str();
            let mut merged = Vec::with_capacity(touched.len() + changed.len());
            let (mut before, mut now) = (touched.iter().copied().peekable(), changed.into_iter().peekable());
            loop {
                let next = match (before.peek(), now.peek()) {
                    (Some(&a), Some(&b)) if a == b => {
                        now.next();
                        before.next()
                    }
                    (Some(&a), Some(&b)) if name(a) < name(b) => before.next(),
                    (Some(_), Some(_)) | (None, Some(_)) => now.next(),
                    (Some(_), None) => before.next(),
                    (None, None) => break,
                };
                merged.extend(next);
            }
            *touched = merged;
        }
    }

    /// Each touched group, mutably, in name order (every group when all were touched).
    pub fn for_each_touched(&mut self, mut f: impl FnMut(&mut Group)) {
        if self.all_touched {
            return self.for_each_marking(|group| {
                f(group);
                true
            });
        }
        for &slot in &self.touched[0] {
            f(held_mut(&mut self.slots, slot));
        }
        if let Some(meta) = self.meta.as_mut() {
            f(meta);
        }
        for &slot in &self.touched[1] {
            f(held_mut(&mut self.slots, slot));
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
            return old;
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 groups at once")
            }
        };
        group.set_slot(slot);
        self.slots[slot as usize] = Some(group);
        self.names_mut(&name).insert(name, slot);
        self.touch(slot);
        None
    }

    pub fn remove(&mut self, name: &str) -> Option<Group> {
        self.revision = Revision::fresh();
        if name == META {
            return self.meta.take();
        }
        let slot = self.names_mut(name).remove(name)?;
        // A removed group is no longer there to settle or check.
        self.touched[usize::from(name > META)].retain(|&touched| touched != slot);
        self.free.push(slot);
        self.slots[slot as usize].take()
    }

    pub fn clear(&mut self) {
        self.revision = Revision::fresh();
        self.before_meta.clear();
        self.after_meta.clear();
        self.slots.truncate(1);
        self.free.clear();
        self.touched.iter_mut().for_each(Vec::clear);
        self.meta = None;
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::raft::{Config, RaftNode};

    fn group(name: &str) -> Group {
        let node = RaftNode::new(Config::default(), vec![0, 1, 2], 0, &mut ChaCha8Rng::seed_from_u64(7));
        Group::new(name, node, 0, false)
    }

    fn touched(set: &GroupSet) -> Option<Vec<&str>> {
        set.touched().map(|groups| groups.map(|g| g.name.as_str()).collect())
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
