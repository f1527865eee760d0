//! The raft group names the applied assignments use. A leader naming a new group must know
//! that no assignment uses the name, and walking every stream and consumer for that made a
//! create cost as much as the whole state: thousands of creates walked it thousands of times.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use compact_str::CompactString;
use rustc_hash::FxHashMap;

use super::model::{StreamAssignment, StreamKey};

type Uses = FxHashMap<CompactString, u32>;

/// How many applied assignments use each group name (one, unless a bug gave two the same
/// group), kept as assignments come and go. The names are inline strings, so tens of thousands
/// of groups allocate nothing for them. After a snapshot replaced the assignments, the names
/// are counted again only when first asked for: a follower never asks.
#[derive(Clone, Debug)]
pub(super) struct GroupNames {
    /// Never walked, so the hasher's order cannot leak into a run. Empty: not counted yet.
    uses: OnceCell<Uses>,
}

impl Default for GroupNames {
    fn default() -> Self {
        GroupNames { uses: OnceCell::from(Uses::default()) }
    }
}

impl GroupNames {
    /// Names to count from the assignments when first asked for.
    pub(super) fn uncounted() -> Self {
        GroupNames { uses: OnceCell::new() }
    }

    fn count(streams: &BTreeMap<StreamKey, StreamAssignment>) -> Uses {
        let mut uses = Uses::default();
        uses.reserve(streams.values().map(|sa| 1 + sa.consumers.len()).sum());
        for group in streams.values().flat_map(StreamAssignment::groups) {
            *uses.entry(CompactString::from(group.name.as_str())).or_default() += 1;
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
            *uses.entry(CompactString::from(group)).or_default() += 1;
        }
    }

    pub(super) fn remove(&mut self, group: &str) {
        let Some(uses) = self.uses.get_mut() else { return };
        let count = uses.get_mut(group).expect("a group name removed was added");
        *count -= 1;
        if *count == 0 {
            uses.remove(group);
        }
    }

    /// Whether any of `streams`, the assignments these names were kept for, uses `group`.
    pub(super) fn contains(&self, group: &str, streams: &BTreeMap<StreamKey, StreamAssignment>) -> bool {
        self.uses.get_or_init(|| Self::count(streams)).contains_key(group)
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
