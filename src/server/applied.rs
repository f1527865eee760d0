//! The state the meta group's entries build, as the layer above raft sees it. For now a hash
//! chain over every applied entry: equal chains at equal indexes mean equal histories, which
//! is what the checks compare. The JetStream assignments replace it (issue 4).

use serde::{Deserialize, Serialize};
use sim::hash::{digest, Fnv64};

use crate::raft::{Entry, Index, Term};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedLog {
    pub index: Index,
    pub term: Term,
    /// FNV-1a chain over (previous chain, index, term, entry digest).
    pub chain: u64,
    /// Normal (client) entries applied.
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
        if matches!(entry.data, crate::raft::EntryData::Normal(_)) {
            self.normal_entries += 1;
        }
        entry_digest
    }

    pub fn encode(&self) -> Vec<u8> {
        bincode::serialize(self).expect("plain data encodes")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        bincode::deserialize(bytes).map_err(|e| format!("meta snapshot state does not decode: {e}"))
    }
}
