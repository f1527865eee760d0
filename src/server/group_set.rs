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
use std::ops::Bound;

use super::group::Group;
use super::wire::META;
use crate::meta::Revision;

/// A new set counts every group as touched: a new server's first input is its start.
///
/// The meta group, which the server and the oracle look up on nearly every input (the oracle
/// on every server after every event), is kept apart from the stream and consumer groups:
/// [`GroupSet::meta`] finds it without comparing a name, and recording what an input touched
/// costs nothing for it. Every walk still yields all groups in name order, the meta group in
/// its place among the others.
pub struct GroupSet {
    /// The stream and consumer groups.
    assets: BTreeMap<String, Group>,
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
}

impl Default for GroupSet {
    fn default() -> Self {
        GroupSet {
            assets: BTreeMap::new(),
            meta: None,
            revision: Revision::default(),
            all_touched: true,
            touched_assets: Vec::new(),
            next_slot: 0,
        }
    }
}

/// `assets` (in name order) with the meta group put in its place by name.
fn in_name_order<'a, G>(
    assets: impl Iterator<Item = (&'a String, G)>,
    mut meta: Option<G>,
) -> impl Iterator<Item = (&'a str, G)> {
    let mut assets = assets.peekable();
    std::iter::from_fn(move || {
        if meta.is_some() && assets.peek().is_none_or(|(name, _)| name.as_str() > META) {
            return meta.take().map(|group| (META, group));
        }
        assets.next().map(|(name, group)| (name.as_str(), group))
    })
}

/// The asset groups named before the meta group's name and after it (no asset group shares it).
type Around = ((Bound<&'static str>, Bound<&'static str>), (Bound<&'static str>, Bound<&'static str>));
const AROUND_META: Around = ((Bound::Unbounded, Bound::Excluded(META)), (Bound::Excluded(META), Bound::Unbounded));

/// `f` on every group, mutably, in name order: the asset groups on either side of the meta
/// group's name found once, rather than each name compared with it.
fn each_in_name_order_mut(
    assets: &mut BTreeMap<String, Group>,
    meta: Option<&mut Group>,
    mut f: impl FnMut(&str, &mut Group),
) {
    let (before, after) = AROUND_META;
    assets.range_mut::<str, _>(before).for_each(|(name, group)| f(name, group));
    if let Some(meta) = meta {
        f(META, meta);
    }
    assets.range_mut::<str, _>(after).for_each(|(name, group)| f(name, group));
}

/// Touched names before the meta group's and after it.
fn around_meta(names: &[String]) -> (&[String], &[String]) {
    names.split_at(names.partition_point(|name| name.as_str() < META))
}

impl GroupSet {
    /// A new input begins: nothing touched yet but the meta group, which every input settles.
    pub fn begin_input(&mut self) {
        self.all_touched = false;
        self.touched_assets.clear();
    }

    /// The groups this input may have changed, in name order (`None`: every group).
    pub fn touched(&self) -> Option<impl Iterator<Item = &Group>> {
        if self.all_touched {
            return None;
        }
        let live = self.touched_assets.iter().filter_map(|name| self.assets.get_key_value(name));
        Some(in_name_order(live, self.meta.as_ref()).map(|(_, group)| group))
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

    pub fn get(&self, name: &str) -> Option<&Group> {
        if name == META {
            self.meta()
        } else {
            self.assets.get(name)
        }
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Group> {
        if name == META {
            return self.meta_mut();
        }
        let group = self.assets.get_mut(name)?;
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
        let (before, after) = AROUND_META;
        let meta = self.meta.as_ref().map(|group| (META, group));
        let before = self.assets.range::<str, _>(before).map(|(name, group)| (name.as_str(), group));
        let after = self.assets.range::<str, _>(after).map(|(name, group)| (name.as_str(), group));
        before.chain(meta).chain(after)
    }

    /// The stream and consumer groups (every group but the meta group), in name order: the
    /// tick's walks over them need not step over the meta group by name.
    pub fn assets(&self) -> impl Iterator<Item = (&str, &Group)> {
        self.assets.iter().map(|(name, group)| (name.as_str(), group))
    }

    /// The stream and consumer groups, mutably: all count as touched.
    pub fn assets_mut(&mut self) -> impl Iterator<Item = (&str, &mut Group)> {
        self.all_touched = true;
        self.assets.iter_mut().map(|(name, group)| (name.as_str(), group))
    }

    /// Every group, mutably: all count as touched.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Group> {
        self.iter_mut().map(|(_, group)| group)
    }

    /// Every group with its name, mutably: all count as touched.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Group)> {
        self.all_touched = true;
        in_name_order(self.assets.iter_mut(), self.meta.as_mut())
    }

    /// Every group, mutably, in name order; `f` says whether it changed the group, and those it
    /// changed count as touched (the meta group always does). A walk over every group then
    /// costs the settling and checking of the few it changed, not of all.
    pub fn for_each_marking(&mut self, mut f: impl FnMut(&mut Group) -> bool) {
        let mut changed = Vec::new();
        each_in_name_order_mut(&mut self.assets, self.meta.as_mut(), |name, group| {
            if f(group) && name != META {
                changed.push(name.to_string());
            }
        });
        self.mark_touched(changed);
    }

    /// The stream and consumer groups, mutably, in name order, as [`Self::for_each_marking`].
    pub fn assets_marking(&mut self, mut f: impl FnMut(&str, &mut Group) -> bool) {
        let mut changed = Vec::new();
        for (name, group) in self.assets.iter_mut() {
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
            return each_in_name_order_mut(&mut self.assets, self.meta.as_mut(), |_, group| f(group));
        }
        let (before, after) = around_meta(&self.touched_assets);
        for name in before {
            if let Some(group) = self.assets.get_mut(name) {
                f(group);
            }
        }
        if let Some(meta) = &mut self.meta {
            f(meta);
        }
        for name in after {
            if let Some(group) = self.assets.get_mut(name) {
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
        self.assets.insert(name, group)
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
        self.assets.remove(name)
    }

    pub fn clear(&mut self) {
        self.revision = Revision::fresh();
        self.assets.clear();
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
