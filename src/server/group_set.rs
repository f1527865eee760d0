//! The raft groups a server runs, by name, with a stamp that changes whenever a group comes or
//! goes, so the oracle can tell "the same groups as last time" without comparing every name.

use std::collections::BTreeMap;

use super::group::Group;
use crate::meta::Revision;

#[derive(Default)]
pub struct GroupSet {
    by_name: BTreeMap<String, Group>,
    /// Stamped anew on every insert, remove and clear.
    revision: Revision,
}

impl GroupSet {
    /// Changes whenever the set of names does (see [`Revision`]).
    pub fn revision(&self) -> Revision {
        self.revision
    }

    pub fn get(&self, name: &str) -> Option<&Group> {
        self.by_name.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Group> {
        self.by_name.get_mut(name)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.by_name.keys()
    }

    pub fn values(&self) -> impl Iterator<Item = &Group> {
        self.by_name.values()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Group> {
        self.by_name.values_mut()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Group)> {
        self.by_name.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut Group)> {
        self.by_name.iter_mut()
    }

    pub fn insert(&mut self, name: String, group: Group) -> Option<Group> {
        self.revision = Revision::fresh();
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
