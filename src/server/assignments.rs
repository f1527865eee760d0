//! Each running asset group's assignment, found by the group's slot. The learner sync reads
//! the assignment of every group a server leads on every tick; a walk that stepped along the
//! assignments by name compared names all the way (a tenth of the 1,000-stream scenario's
//! time). This map is built again only when the assignments or the set of groups change.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::group_set::GroupSet;
use super::jetstream::DesiredGroups;
use crate::meta::{RaftGroup, Revision, StreamKey};

/// A stream scaled down whose group has not shrunk yet: the stream and its replicas.
pub type OverPlaced = (StreamKey, usize);

#[derive(Default)]
pub struct AssignmentsBySlot {
    /// The desired groups and the set of groups (its revision) the map was built for. A
    /// change to the applied state or the local assets gives a new desired map (so a new
    /// `Arc`), and so does any change to the over-placed streams, which follow the applied
    /// state.
    built_for: Option<(Arc<DesiredGroups>, Revision)>,
    /// By slot: the group's index in the desired map, and its stream if over-placed.
    by_slot: Vec<Option<(u32, Option<OverPlaced>)>>,
    /// Counts the builds: a walk that remembers what it found under one map knows when it
    /// no longer holds.
    generation: u64,
}

impl AssignmentsBySlot {
    /// Builds the map again unless it was built for `desired` and this set of groups.
    pub fn refresh(
        &mut self,
        desired: &Arc<DesiredGroups>,
        over_placed: &BTreeMap<String, OverPlaced>,
        groups: &GroupSet,
    ) {
        let built = self.built_for.as_ref();
        if built.is_some_and(|(was, revision)| Arc::ptr_eq(was, desired) && *revision == groups.revision()) {
            return;
        }
        self.by_slot.clear();
        self.generation += 1;
        let mut wanted = desired.iter().enumerate().peekable();
        for (name, group) in groups.assets() {
            while wanted.next_if(|(_, want)| want.name.as_str() < name).is_some() {}
            let Some((at, _)) = wanted.next_if(|(_, want)| want.name == name) else { continue };
            let slot = group.slot() as usize;
            if self.by_slot.len() <= slot {
                self.by_slot.resize(slot + 1, None);
            }
            let at = u32::try_from(at).expect("fewer than 2^32 groups");
            self.by_slot[slot] = Some((at, over_placed.get(name).cloned()));
        }
        self.built_for = Some((Arc::clone(desired), groups.revision()));
    }

    /// Changes with every build of the map.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The assignment of the group in `slot`, and its stream if over-placed; `None` when the
    /// server should not run the group. Only for the `desired` map last refreshed with.
    pub fn get<'a>(&'a self, desired: &'a DesiredGroups, slot: u32) -> Option<(&'a RaftGroup, Option<&'a OverPlaced>)> {
        debug_assert!(self.built_for.as_ref().is_some_and(|(was, _)| std::ptr::eq(&**was, desired)));
        let (at, over_placed) = self.by_slot.get(slot as usize)?.as_ref()?;
        Some((desired.at(*at as usize), over_placed.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::raft::{Config, RaftNode};
    use crate::server::group::Group;
    use crate::server::wire::META;

    fn running(name: &str) -> Group {
        let node = RaftNode::new(Config::default(), vec![0, 1, 2], 0, &mut ChaCha8Rng::seed_from_u64(7));
        Group::new(name, node, 0, false)
    }

    fn assigned(names: &[&str]) -> Arc<DesiredGroups> {
        let groups = names.iter().map(|name| RaftGroup::founded(name.to_string(), vec![0, 1, 2], None));
        Arc::new(groups.collect())
    }

    /// Each running group's assignment (its name, and the replicas it is to shrink to), by
    /// the name the map finds for its slot.
    fn found(map: &AssignmentsBySlot, desired: &DesiredGroups, set: &GroupSet) -> Vec<(String, String, Option<usize>)> {
        let found = set.assets().filter_map(|(name, group)| {
            let (want, over_placed) = map.get(desired, group.slot())?;
            Some((name.to_string(), want.name.clone(), over_placed.map(|(_, r)| *r)))
        });
        found.collect()
    }

    #[test]
    fn each_running_group_finds_its_own_assignment_by_slot() {
        let mut set = GroupSet::default();
        for name in ["S-c", "S-a", META, "S-b"] {
            set.insert(name.to_string(), running(name));
        }
        let desired = assigned(&["S-x", "S-b", "S-a"]);
        let over_placed = BTreeMap::from([("S-b".to_string(), (StreamKey::new("A", "B"), 1))]);
        let mut map = AssignmentsBySlot::default();
        map.refresh(&desired, &over_placed, &set);
        let want = |rows: &[(&str, Option<usize>)]| -> Vec<(String, String, Option<usize>)> {
            rows.iter().map(|(n, r)| (n.to_string(), n.to_string(), *r)).collect()
        };
        assert_eq!(found(&map, &desired, &set), want(&[("S-a", None), ("S-b", Some(1))]), "S-c runs unassigned");

        // S-a stops and S-x starts in its slot: the same assignments, a new set of groups.
        let slot_a = set.get("S-a").unwrap().slot();
        set.remove("S-a");
        set.insert("S-x".to_string(), running("S-x"));
        assert_eq!(set.get("S-x").unwrap().slot(), slot_a);
        map.refresh(&desired, &over_placed, &set);
        assert_eq!(found(&map, &desired, &set), want(&[("S-b", Some(1)), ("S-x", None)]));

        // New assignments (a new map, even with the same groups): built again.
        let desired = assigned(&["S-c", "S-x"]);
        map.refresh(&desired, &BTreeMap::new(), &set);
        assert_eq!(found(&map, &desired, &set), want(&[("S-c", None), ("S-x", None)]));
    }
}
