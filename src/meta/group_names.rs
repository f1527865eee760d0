//! The raft group names the applied assignments use. A leader naming a new group must know
//! that no assignment uses the name, and walking every stream and consumer for that made a
//! create cost as much as the whole state: thousands of creates walked it thousands of times.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use compact_str::CompactString;
use rustc_hash::FxHashMap;

use super::model::{StreamAssignment, StreamKey};

/// How many users each group name has, a name gone once its last user goes. The names are
/// inline strings, so tens of thousands of groups allocate nothing for them. Never walked, so
/// the hasher's order cannot leak into a run; the hasher is a fixed one all the same. The
/// applied state counts its assignments' names with it, and the leader's inflight maps their
/// latest proposals'.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct NameCounts(FxHashMap<CompactString, u32>);

impl NameCounts {
    pub(super) fn with_capacity(names: usize) -> Self {
        let mut counts = FxHashMap::default();
        counts.reserve(names);
        NameCounts(counts)
    }

    pub(super) fn add(&mut self, name: &str) {
        *self.0.entry(CompactString::from(name)).or_default() += 1;
    }

    /// One user of `name` fewer; it must have one.
    pub(super) fn remove(&mut self, name: &str) {
        let count = self.0.get_mut(name).expect("a group name removed was added");
        *count -= 1;
        if *count == 0 {
            self.0.remove(name);
        }
    }

    pub(super) fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }
}

/// How many applied assignments use each group name (one, unless a bug gave two the same
/// group), kept as assignments come and go. After a snapshot replaced the assignments, the
/// names are counted again only when first asked for: a follower never asks.
#[derive(Clone, Debug)]
pub(super) struct GroupNames {
    /// Empty: not counted yet.
    uses: OnceCell<NameCounts>,
}

impl Default for GroupNames {
    fn default() -> Self {
        GroupNames { uses: OnceCell::from(NameCounts::default()) }
    }
}

impl GroupNames {
    /// Names to count from the assignments when first asked for.
    pub(super) fn uncounted() -> Self {
        GroupNames { uses: OnceCell::new() }
    }

    fn count(streams: &BTreeMap<StreamKey, StreamAssignment>) -> NameCounts {
        let mut uses = NameCounts::with_capacity(streams.values().map(|sa| 1 + sa.consumers.len()).sum());
        for group in streams.values().flat_map(StreamAssignment::groups) {
            uses.add(&group.name);
        }
        uses
    }

    /// The stream's group and its consumers' groups.
    pub(super) fn add_stream(&mut self, sa: &StreamAssignment) {
        sa.groups().for_each(|group| self.add(&group.name));
    }

    pub(super) fn remove_stream(&mut self, sa: &StreamAssignment) {
        sa.groups().for_each(|group| self.remove(&group.name));
    }

    pub(super) fn add(&mut self, group: &str) {
        if let Some(uses) = self.uses.get_mut() {
            uses.add(group);
        }
    }

    pub(super) fn remove(&mut self, group: &str) {
        if let Some(uses) = self.uses.get_mut() {
            uses.remove(group);
        }
    }

    /// Whether any of `streams`, the assignments these names were kept for, uses `group`.
    pub(super) fn contains(&self, group: &str, streams: &BTreeMap<StreamKey, StreamAssignment>) -> bool {
        self.uses.get_or_init(|| Self::count(streams)).contains(group)
    }

    /// Whether the names kept match `streams` (or were not counted yet).
    pub(super) fn kept_for(&self, streams: &BTreeMap<StreamKey, StreamAssignment>) -> bool {
        self.uses.get().is_none_or(|uses| *uses == Self::count(streams))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::model::{ConsumerAssignment, RaftGroup};

    fn raft_group(name: &str) -> RaftGroup {
        RaftGroup { name: name.into(), peers: vec![0], preferred: Some(0), joiners: vec![] }
    }

    fn stream(name: &str, group: &str, consumers: &[(&str, &str)]) -> (StreamKey, StreamAssignment) {
        let mut sa = StreamAssignment {
            account: "A".into(),
            name: name.into(),
            created_ms: 1,
            config_json: Vec::new(),
            group: raft_group(group),
            sync: String::new(),
            consumers: BTreeMap::new(),
        };
        for (consumer, group) in consumers {
            let ca = ConsumerAssignment {
                account: "A".into(),
                stream: name.into(),
                name: (*consumer).into(),
                created_ms: 1,
                config_json: Vec::new(),
                group: raft_group(group),
            };
            sa.consumers.insert((*consumer).into(), Box::new(ca));
        }
        (sa.key(), sa)
    }

    #[test]
    fn names_follow_the_assignments_and_a_name_used_twice_stays_until_both_go() {
        let (k1, s1) = stream("S1", "S-1", &[("c", "C-1"), ("d", "dup")]);
        let (k2, s2) = stream("S2", "dup", &[]);
        let mut streams = BTreeMap::new();
        let mut names = GroupNames::default();
        names.add_stream(&s2);
        streams.insert(k2.clone(), s2.clone());
        names.add_stream(&s1);
        streams.insert(k1.clone(), s1.clone());
        assert!(names.kept_for(&streams));
        fn has(names: &GroupNames, streams: &BTreeMap<StreamKey, StreamAssignment>, group: &str) -> bool {
            names.contains(group, streams)
        }
        assert!(has(&names, &streams, "C-1") && has(&names, &streams, "dup") && !has(&names, &streams, "S-2"));
        names.remove_stream(&s1);
        streams.remove(&k1);
        assert!(has(&names, &streams, "dup"), "S2 still uses it");
        assert!(!has(&names, &streams, "C-1") && !has(&names, &streams, "S-1"));
        assert!(names.kept_for(&streams));
        // A snapshot's assignments are counted when first asked about, and kept from then on.
        streams.insert(k1.clone(), s1.clone());
        let mut adopted = GroupNames::uncounted();
        adopted.remove_stream(&s2);
        assert!(has(&adopted, &streams, "C-1") && has(&adopted, &streams, "dup"));
        adopted.remove_stream(&s1);
        streams.remove(&k1);
        assert!(!has(&adopted, &streams, "C-1") && has(&adopted, &streams, "dup"));
        assert!(adopted.kept_for(&streams));
        names.remove_stream(&s2);
        assert!(!names.kept_for(&streams), "S2 is still there");
    }
}
