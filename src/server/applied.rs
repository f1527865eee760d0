//! A hash chain over every entry a raft group applied: equal chains at equal indexes mean
//! equal histories, which is what the raft checks compare. The meta layer's own state lives in
//! `jetstream`.

use serde::{Deserialize, Serialize};
use sim::hash::{digest, Fnv64};

use crate::raft::{Entry, Index, Term};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedLog {
    pub index: Index,
    pub term: Term,
    /// FNV-1a chain over (previous chain, index, term, entry digest).
    pub chain: u64,
    /// Messages the normal (client) entries applied stand for: one per entry, or what a carry
    /// entry carried (a stream scaled up from one replica, see `scale`).
    pub normal_entries: u64,
}

impl AppliedLog {
    pub fn apply(&mut self, entry: &Entry) -> u64 {
        assert_eq!(entry.index, self.index + 1, "entries are applied in order, without gaps");
        let entry_digest = digest(entry);
        let mut h = Fnv64::default();
        h.write_u64(self.chain);
        h.write_u64(entry.index);
        h.write_u64(entry.term);
        h.write_u64(entry_digest);
        self.chain = h.finish();
        self.index = entry.index;
        self.term = entry.term;
        if let crate::raft::EntryData::Normal(payload) = &entry.data {
            self.normal_entries += super::scale::messages_in(payload);
        }
        entry_digest
    }
}
