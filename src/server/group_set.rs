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

/// A new set counts every group as touched: a new server's first input is its start.
///
/// The meta group, which the server and the oracle look up on nearly every input (the oracle
/// on every server after every event), is kept apart from the stream and consumer groups:
/// [`GroupSet::meta`] finds it without comparing a name, and recording what an input touched
/// costs nothing for it. Every walk still yields all groups in name order, the meta group in
/// its place among the others: the stream and consumer groups are kept in two maps, those
/// named before the meta group's name and those after, so no walk looks for its place.
pub struct GroupSet {
    /// The stream and consumer groups named before the meta group's name (all that the meta
    /// layer names: `S-…`, `C-…`)…
    before_meta: BTreeMap<String, Group>,
    /// …and after it.
    after_meta: BTreeMap<String, Group>,
    meta: Option<Group>,
    /// Stamped anew on every insert, remove and clear.
    revision: Revision,
    /// Every group counts as touched (until the next input begins).
    all_touched: bool,
    /// Otherwise the asset groups handed out mutably since the input began, in name order
    /// (the meta group always counts as touched). Cleared, not dropped, as an input begins.
    touched_assets: Vec<String>,
    /// The slot the next group inserted gets (see [`Group::slot`]); never reused.
    next_slot: u32,
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
            meta: None,
            revision: Revision::default(),
            all_touched: true,
            touched_assets: Vec::new(),
            next_slot: 0,
            #[cfg(debug_assertions)]
            at_input: BTreeMap::new(),
        }
    }
}

/// Touched names before the meta group's and after it.
fn around_meta(names: &[String]) -> (&[String], &[String]) {
    names.split_at(names.partition_point(|name| name.as_str() < META))
}

fn named<G>((name, group): (&String, G)) -> (&str, G) {
    (name.as_str(), group)
}

impl GroupSet {
    /// A new input begins: nothing touched yet but the meta group, which every input settles.
    pub fn begin_input(&mut self) {
        self.all_touched = false;
        self.touched_assets.clear();
        #[cfg(debug_assertions)]
        {
            let groups = self.before_meta.values().chain(self.after_meta.values()).map(Self::as_input_began);
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
                if self.touched_assets.binary_search_by(|n| n.as_str().cmp(name)).is_ok() {
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
        let (before, after) = around_meta(&self.touched_assets);
        let before = before.iter().filter_map(|name| self.before_meta.get(name));
        let after = after.iter().filter_map(|name| self.after_meta.get(name));
        Some(before.chain(&self.meta).chain(after))
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

    /// The map an asset group of this name belongs in (not the meta group's name).
    fn side(&self, name: &str) -> &BTreeMap<String, Group> {
        if name < META {
            &self.before_meta
        } else {
            &self.after_meta
        }
    }

    fn side_mut(&mut self, name: &str) -> &mut BTreeMap<String, Group> {
        if name < META {
            &mut self.before_meta
        } else {
            &mut self.after_meta
        }
    }

    pub fn get(&self, name: &str) -> Option<&Group> {
        if name == META {
            self.meta()
        } else {
            self.side(name).get(name)
        }
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Group> {
        if name == META {
            return self.meta_mut();
        }
        // The fields apart, so the group found and the touched list are borrowed together.
        let side = if name < META { &mut self.before_meta } else { &mut self.after_meta };
        let group = side.get_mut(name)?;
        if !self.all_touched {
            if let Err(at) = self.touched_assets.binary_search_by(|n| n.as_str().cmp(name)) {
                self.touched_assets.insert(at, name.to_string());
            }
        }
        Some(group)
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
        self.before_meta.iter().map(named).chain(meta).chain(self.after_meta.iter().map(named))
    }

    /// The stream and consumer groups (every group but the meta group), in name order: the
    /// tick's walks over them need not step over the meta group by name.
    pub fn assets(&self) -> impl Iterator<Item = (&str, &Group)> {
        self.before_meta.iter().chain(&self.after_meta).map(named)
    }

    /// Every group, mutably: all count as touched.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Group> {
        self.iter_mut().map(|(_, group)| group)
    }

    /// Every group with its name, mutably: all count as touched.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Group)> {
        self.all_touched = true;
        let meta = self.meta.as_mut().map(|group| (META, group));
        self.before_meta.iter_mut().map(named).chain(meta).chain(self.after_meta.iter_mut().map(named))
    }

    /// Every group, mutably, in name order; `f` says whether it changed the group, and those it
    /// changed count as touched (the meta group always does). A walk over every group then
    /// costs the settling and checking of the few it changed, not of all.
    pub fn for_each_marking(&mut self, mut f: impl FnMut(&mut Group) -> bool) {
        let mut changed = Vec::new();
        let meta = self.meta.as_mut().map(|group| (META, group));
        let all = self.before_meta.iter_mut().map(named).chain(meta).chain(self.after_meta.iter_mut().map(named));
        for (name, group) in all {
            if f(group) && name != META {
                changed.push(name.to_string());
            }
        }
        self.mark_touched(changed);
    }

    /// The stream and consumer groups, mutably, in name order, as [`Self::for_each_marking`].
    pub fn assets_marking(&mut self, mut f: impl FnMut(&str, &mut Group) -> bool) {
        let mut changed = Vec::new();
        for (name, group) in self.before_meta.iter_mut().chain(&mut self.after_meta) {
            if f(name, group) {
                changed.push(name.clone());
            }
        }
        self.mark_touched(changed);
    }

    /// Adds `names` (in name order, each a live asset group) to the touched ones.
    fn mark_touched(&mut self, names: Vec<String>) {
        if self.all_touched || names.is_empty() {
            return;
        }
        if self.touched_assets.is_empty() {
            self.touched_assets.extend(names);
            return;
        }
        for name in names {
            if let Err(at) = self.touched_assets.binary_search(&name) {
                self.touched_assets.insert(at, name);
            }
        }
    }

    /// Each touched group, mutably, in name order (every group when all were touched).
    pub fn for_each_touched(&mut self, mut f: impl FnMut(&mut Group)) {
        if self.all_touched {
            self.before_meta.values_mut().for_each(&mut f);
            self.meta.iter_mut().for_each(&mut f);
            self.after_meta.values_mut().for_each(&mut f);
            return;
        }
        let (before, after) = around_meta(&self.touched_assets);
        for name in before {
            if let Some(group) = self.before_meta.get_mut(name) {
                f(group);
            }
        }
        self.meta.iter_mut().for_each(&mut f);
        for name in after {
            if let Some(group) = self.after_meta.get_mut(name) {
                f(group);
            }
        }
    }

    pub fn insert(&mut self, name: String, mut group: Group) -> Option<Group> {
        self.revision = Revision::fresh();
        group.set_slot(self.next_slot);
        self.next_slot = self.next_slot.checked_add(1).expect("fewer than 2^32 groups started");
        if name == META {
            return self.meta.replace(group);
        }
        if !self.all_touched {
            if let Err(at) = self.touched_assets.binary_search(&name) {
                self.touched_assets.insert(at, name.clone());
            }
        }
        self.side_mut(&name).insert(name, group)
    }

    pub fn remove(&mut self, name: &str) -> Option<Group> {
        self.revision = Revision::fresh();
        if name == META {
            return self.meta.take();
        }
        // A removed group is no longer there to settle or check.
        if let Ok(at) = self.touched_assets.binary_search_by(|n| n.as_str().cmp(name)) {
            self.touched_assets.remove(at);
        }
        self.side_mut(name).remove(name)
    }

    pub fn clear(&mut self) {
        self.revision = Revision::fresh();
        self.before_meta.clear();
        self.after_meta.clear();
        self.touched_assets.clear();
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
        let _ = set.values_mut().count();
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
    fn every_group_inserted_gets_a_slot_of_its_own() {
        let mut set = GroupSet::default();
        for name in ["S-b", META, "S-a"] {
            set.insert(name.to_string(), group(name));
        }
        let slots = |set: &GroupSet| set.iter().map(|(name, g)| (name.to_string(), g.slot())).collect::<Vec<_>>();
        assert_eq!(slots(&set), [("S-a".to_string(), 2), ("S-b".to_string(), 0), (META.to_string(), 1)]);
        set.remove("S-b");
        set.insert("S-b".to_string(), group("S-b"));
        set.clear();
        set.insert("S-a".to_string(), group("S-a"));
        assert_eq!(slots(&set), [("S-a".to_string(), 4)], "a slot is never given twice");
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
        set.values_mut().for_each(drop);
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
