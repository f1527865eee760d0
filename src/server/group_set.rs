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
        self.by_name.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Group> {
        let group = self.by_name.get_mut(name)?;
        if let Some(touched) = &mut self.touched {
            if !touched.contains(name) {
                touched.insert(name.to_string());
            }
        }
        Some(group)
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
