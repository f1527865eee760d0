//! The raft groups a server runs, by name, and what the current input may have changed of
//! them.
//!
//! Every mutable access goes through this set, so it knows which groups an input could have
//! touched: the ones handed out by name, or all of them when handed out together (the tick).
//! The server settles only those after an input, and the oracle re-checks only those; a group
//! nobody touched has no new `Ready`, no new commit and nothing new to check. A revision stamp
//! changes whenever a group comes or goes.

use std::collections::{BTreeMap, BTreeSet};

use super::group::Group;
use super::wire::META;
use crate::meta::Revision;

/// A new set counts every group as touched: a new server's first input is its start.
///
/// The meta group, which the server and the oracle look up on nearly every input and check,
/// sorts after every stream and consumer group (`S-…`, `C-…`: upper case before lower), so
/// it is looked for at the end first; a name that sorted after it would still be found.
#[derive(Default)]
pub struct GroupSet {
    by_name: BTreeMap<String, Group>,
    /// Stamped anew on every insert, remove and clear.
    revision: Revision,
    /// The groups handed out mutably since the input began; `None` for all of them.
    touched: Option<BTreeSet<String>>,
}

impl GroupSet {
    /// A new input begins: nothing touched yet but the meta group, which every input settles.
    pub fn begin_input(&mut self) {
        self.touched = Some(BTreeSet::from([META.to_string()]));
    }

    /// The groups this input may have changed, in name order (`None`: every group).
    pub fn touched(&self) -> Option<&BTreeSet<String>> {
        self.touched.as_ref()
    }

    /// Changes whenever the set of names does (see [`Revision`]).
    pub fn revision(&self) -> Revision {
        self.revision
    }

    pub fn get(&self, name: &str) -> Option<&Group> {
        match self.by_name.last_key_value() {
            Some((last, group)) if name == META && last == META => Some(group),
            _ => self.by_name.get(name),
        }
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Group> {
        let meta_last = name == META && self.by_name.last_key_value().is_some_and(|(last, _)| last == META);
        let group = if meta_last { self.by_name.values_mut().next_back()? } else { self.by_name.get_mut(name)? };
        if let Some(touched) = &mut self.touched {
            if !touched.contains(name) {
                touched.insert(name.to_string());
            }
        }
        Some(group)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.by_name.keys()
    }

    pub fn values(&self) -> impl Iterator<Item = &Group> {
        self.by_name.values()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Group)> {
        self.by_name.iter()
    }

    /// Every group, mutably: all count as touched.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Group> {
        self.touched = None;
        self.by_name.values_mut()
    }

    /// Every group with its name, mutably: all count as touched.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut Group)> {
        self.touched = None;
        self.by_name.iter_mut()
    }

    /// Each touched group, mutably, in name order (every group when all were touched).
    pub fn for_each_touched(&mut self, mut f: impl FnMut(&mut Group)) {
        match &self.touched {
            None => self.by_name.values_mut().for_each(f),
            Some(names) => {
                for name in names {
                    if let Some(group) = self.by_name.get_mut(name) {
                        f(group);
                    }
                }
            }
        }
    }

    pub fn insert(&mut self, name: String, group: Group) -> Option<Group> {
        self.revision = Revision::fresh();
        if let Some(touched) = &mut self.touched {
            touched.insert(name.clone());
        }
        self.by_name.insert(name, group)
    }

    pub fn remove(&mut self, name: &str) -> Option<Group> {
        self.revision = Revision::fresh();
        self.by_name.remove(name)
    }

    pub fn clear(&mut self) {
        self.revision = Revision::fresh();
        self.by_name.clear();
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
        set.touched().map(|names| names.iter().map(String::as_str).collect())
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
