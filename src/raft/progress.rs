//! The leader's view of each follower: what is known to match, what to send next, and when
//! the follower last answered (for the lost-quorum check).

use super::types::Index;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Highest index known to be replicated on the follower.
    pub match_index: Index,
    /// Next index to send. Optimistic: advanced when an Append is sent (pipelining); a
    /// rejection moves it back.
    pub next_index: Index,
    /// Local time of the last AppendResponse from this follower (the leader's election time
    /// until one arrives, so a new leader does not lose its lease at once).
    pub contact_ms: u64,
    /// An AppendResponse arrived from this follower in this leader's term: `contact_ms` is
    /// then a real contact, not the grace given at election.
    pub heard: bool,
}

impl Progress {
    pub fn new(leader_last_index: Index, now_ms: u64) -> Self {
        Progress { match_index: 0, next_index: leader_last_index + 1, contact_ms: now_ms, heard: false }
    }

    /// A successful response: `match_index` only grows (responses may arrive reordered).
    pub fn on_success(&mut self, match_index: Index) {
        self.match_index = self.match_index.max(match_index);
        self.next_index = self.next_index.max(self.match_index + 1);
        assert!(self.next_index > self.match_index);
    }

    /// A rejection of `rejected_prev`. Returns false for a stale rejection (already known to
    /// match there, or already backed off below it); otherwise moves `next_index` back.
    pub fn on_reject(&mut self, rejected_prev: Index, hint: Index) -> bool {
        if rejected_prev < self.match_index || rejected_prev >= self.next_index {
            return false;
        }
        if rejected_prev == self.match_index && rejected_prev > 0 {
            // The follower once acknowledged `rejected_prev` and now lacks it: a disk that lost
            // synced data, or a duplicated old rejection. Probe below it rather than insist on
            // it forever (commit never moves back, so forgetting the match is safe).
            self.match_index = hint.min(rejected_prev - 1);
        }
        let next_before = self.next_index;
        // Retry with prev = hint, but never below what is known to match, and always lower
        // than the rejected prev so the probe makes progress.
        self.next_index = (hint + 1).min(rejected_prev).max(self.match_index + 1);
        assert!(self.next_index <= next_before, "back-off must not move forward");
        assert!(self.next_index > self.match_index);
        true
    }
}

/// The highest index replicated on `quorum` of `match_indexes` (one per voter). `None` when
/// there are fewer voters than that.
pub fn quorum_index(match_indexes: &mut [Index], quorum: usize) -> Option<Index> {
    assert!(quorum >= 1, "a quorum counts at least one voter");
    if match_indexes.len() < quorum {
        return None;
    }
    match_indexes.sort_unstable_by(|a, b| b.cmp(a));
    Some(match_indexes[quorum - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_quorum_and_backoff() {
        assert_eq!(quorum_index(&mut [], 1), None);
        assert_eq!(quorum_index(&mut [5], 1), Some(5));
        assert_eq!(quorum_index(&mut [5, 1, 3], 2), Some(3));
        assert_eq!(quorum_index(&mut [5, 1, 3, 4], 3), Some(3));
        assert_eq!(quorum_index(&mut [2, 2, 1, 0, 0], 3), Some(1));
        // A cold-boot cluster size of two among five peers.
        assert_eq!(quorum_index(&mut [2, 2, 1, 0, 0], 2), Some(2));
        assert_eq!(quorum_index(&mut [7, 0], 3), None);

        let mut pr = Progress::new(10, 0);
        assert_eq!(pr.next_index, 11);
        assert!(pr.on_reject(10, 4));
        assert_eq!(pr.next_index, 5);
        // A rejection for a prev we already backed off from is stale.
        assert!(!pr.on_reject(9, 2));
        pr.on_success(4);
        assert_eq!((pr.match_index, pr.next_index), (4, 5));
        // A rejection below the match is stale.
        assert!(!pr.on_reject(3, 0));
        pr.on_success(2);
        assert_eq!(pr.match_index, 4, "match never decreases");
    }
}
