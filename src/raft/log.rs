//! The in-memory log: a snapshot base (index and term of the last compacted entry) followed
//! by contiguous entries. Durability is the driver's job; this only holds what the node knows.

use super::types::{Entry, EntryData, Index, Term};

#[derive(Clone, Debug, Default)]
pub struct RaftLog {
    /// Index of the last entry covered by the snapshot (0 when none).
    base_index: Index,
    /// Term of the entry at `base_index` (0 when none).
    base_term: Term,
    /// Entries `base_index + 1 ..= last_index`, contiguous, terms non-decreasing.
    entries: Vec<Entry>,
    /// Indices of the held entries that change the voters (a peer's removal, a leader's list
    /// of members), ascending. Counting the voters looks past the commit index for them, on
    /// every acknowledgement a leader counts, and a leader's uncommitted tail can hold a
    /// create burst's thousand entries.
    voter_changes: Vec<Index>,
}

/// Whether `data` changes whom the voters are counted among before it commits.
fn changes_voters(data: &EntryData) -> bool {
    matches!(data, EntryData::RemovePeer(_) | EntryData::Members(_))
}

impl RaftLog {
    /// An empty log on top of a snapshot base (0, 0 for a brand new log).
    pub fn with_base(base_index: Index, base_term: Term) -> Self {
        assert!(base_index > 0 || base_term == 0, "base term without base index");
        RaftLog { base_index, base_term, entries: Vec::new(), voter_changes: Vec::new() }
    }

    pub fn base_index(&self) -> Index {
        self.base_index
    }

    pub fn base_term(&self) -> Term {
        self.base_term
    }

    pub fn last_index(&self) -> Index {
        self.base_index + self.entries.len() as Index
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.base_term, |e| e.term)
    }

    /// Term at `index`: known for the base and for entries still held.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.base_index {
            return Some(self.base_term);
        }
        self.get(index).map(|e| e.term)
    }

    pub fn get(&self, index: Index) -> Option<&Entry> {
        if index <= self.base_index || index > self.last_index() {
            return None;
        }
        let entry = &self.entries[(index - self.base_index - 1) as usize];
        assert_eq!(entry.index, index, "log slot holds the wrong index");
        Some(entry)
    }

    /// Appends one entry right after the last one.
    pub fn append(&mut self, entry: Entry) {
        assert_eq!(entry.index, self.last_index() + 1, "append must be contiguous");
        assert!(entry.term >= self.last_term(), "terms in the log never decrease");
        if changes_voters(&entry.data) {
            self.voter_changes.push(entry.index);
        }
        self.entries.push(entry);
    }

    /// Removes every entry with index >= `from` (which must be above the base).
    pub fn truncate_from(&mut self, from: Index) {
        assert!(from > self.base_index, "cannot truncate into the snapshot");
        assert!(from <= self.last_index(), "truncation point beyond the log");
        self.entries.truncate((from - self.base_index - 1) as usize);
        let kept = self.voter_changes.partition_point(|&index| index < from);
        self.voter_changes.truncate(kept);
        assert_eq!(self.last_index(), from - 1);
    }

    /// Entries in `[from, to]` (clamped to what is held), at most `count_max` of them.
    pub fn slice(&self, from: Index, to: Index, count_max: usize) -> Vec<Entry> {
        let held = self.held(from, to);
        held[..held.len().min(count_max)].to_vec()
    }

    /// The entries held from `from` through `to`, borrowed (what [`Self::slice`] copies).
    pub fn held(&self, from: Index, to: Index) -> &[Entry] {
        let from = from.max(self.base_index + 1);
        let to = to.min(self.last_index());
        if from > to {
            return &[];
        }
        let start = (from - self.base_index - 1) as usize;
        &self.entries[start..(to - self.base_index) as usize]
    }

    /// Drops entries <= `index`, which becomes the new base. `index` must be held.
    pub fn compact_to(&mut self, index: Index) {
        assert!(index > self.base_index, "compaction must move the base forward");
        let term = self.term(index).expect("compaction point must be in the log");
        self.entries.drain(..(index - self.base_index) as usize);
        let dropped = self.voter_changes.partition_point(|&at| at <= index);
        self.voter_changes.drain(..dropped);
        self.base_index = index;
        self.base_term = term;
        assert!(self.entries.first().is_none_or(|e| e.index == index + 1));
    }

    /// The held entries after `index` that change the voters, in log order.
    pub fn voter_changes_after(&self, index: Index) -> impl Iterator<Item = &Entry> {
        let first = self.voter_changes.partition_point(|&at| at <= index);
        let changes = &self.voter_changes[first..];
        debug_assert!(
            changes.iter().copied().eq(self
                .held(index + 1, self.last_index())
                .iter()
                .filter(|e| changes_voters(&e.data))
                .map(|e| e.index)),
            "the voter changes after {index} are those the held entries hold"
        );
        changes.iter().map(|&at| self.get(at).expect("a voter change is held"))
    }

    /// The index of the first entry whose term equals the term at `index`, scanning back at
    /// most to the base. Used for the fast back-off hint.
    pub fn first_index_of_term_at(&self, index: Index) -> Index {
        let term = self.term(index).expect("index must be held");
        let mut first = index;
        // Bounded by the number of entries held.
        while first > self.base_index + 1 && self.term(first - 1) == Some(term) {
            first -= 1;
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::EntryData;

    fn entry(index: Index, term: Term) -> Entry {
        Entry { term, index, data: EntryData::Normal(vec![index as u8]) }
    }

    #[test]
    fn log_append_truncate_slice_compact() {
        let mut log = RaftLog::default();
        for (i, t) in [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3)] {
            log.append(entry(i, t));
        }
        assert_eq!(log.last_index(), 5);
        assert_eq!(log.term(0), Some(0));
        assert_eq!(log.term(3), Some(2));
        assert_eq!(log.term(6), None);
        assert_eq!(log.first_index_of_term_at(4), 3);
        assert_eq!(log.slice(2, 5, 2).iter().map(|e| e.index).collect::<Vec<_>>(), vec![2, 3]);
        log.truncate_from(4);
        assert_eq!(log.last_index(), 3);
        log.compact_to(2);
        assert_eq!((log.base_index(), log.base_term()), (2, 1));
        assert_eq!(log.term(1), None);
        assert_eq!(log.term(2), Some(1));
        assert_eq!(log.slice(1, 9, 10).len(), 1);
        assert_eq!(log.first_index_of_term_at(3), 3);
    }

    /// The voter changes are found as a walk over the held entries finds them, through
    /// appends, truncations and compactions.
    #[test]
    fn voter_changes_follow_appends_truncations_and_compactions() {
        let data = |i: Index| match i % 4 {
            0 => EntryData::RemovePeer(i as u32),
            1 => EntryData::Members(vec![1, 2, i as u32]),
            2 => EntryData::AddPeer(i as u32),
            _ => EntryData::Normal(vec![]),
        };
        let found = |log: &RaftLog, after: Index| log.voter_changes_after(after).map(|e| e.index).collect::<Vec<_>>();
        let mut log = RaftLog::default();
        for i in 1..=12 {
            log.append(Entry { term: 1, index: i, data: data(i) });
        }
        assert_eq!(found(&log, 0), vec![1, 4, 5, 8, 9, 12]);
        assert_eq!(found(&log, 5), vec![8, 9, 12]);
        log.truncate_from(9);
        assert_eq!(found(&log, 0), vec![1, 4, 5, 8]);
        log.append(Entry { term: 2, index: 9, data: EntryData::Normal(vec![]) });
        log.compact_to(4);
        assert_eq!(found(&log, 0), vec![5, 8]);
        assert_eq!(found(&log, 8), Vec::<Index>::new());
    }
}
