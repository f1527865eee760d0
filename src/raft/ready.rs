//! The output loop's interface: whether anything is ready, taking a `Ready` (hard state,
//! entries and snapshot to persist, messages to send, entries to hand up), and the upper
//! layer's answers to what it was handed (`applied_to`, `compact`).

use super::error::RaftError;
use super::node::RaftNode;
use super::types::{Applied, HardState, Index, Message, PeerId, Ready, Role, Snapshot};

impl RaftNode {
    /// True when `ready()` would return something.
    pub fn has_ready(&self) -> bool {
        self.hard_state_to_persist() != self.last_hard_state
            || self.pending_truncate.is_some()
            || self.log.last_index() > self.persisted_last
            || self.pending_snapshot.is_some()
            || self.pending_base.is_some()
            || !self.messages.is_empty()
            || !self.applied_queue.is_empty()
    }

    /// Takes everything produced since the previous call. Entries handed out here count as
    /// durable from the next input on, which may make more committable: loop on `has_ready()`.
    pub fn ready(&mut self) -> Ready {
        let hard_state = self.hard_state_to_persist();
        assert!(hard_state.term >= self.last_hard_state.term, "persisted term decreases");
        assert!(hard_state.commit >= self.last_hard_state.commit, "persisted commit decreases");
        let hard_state_changed = hard_state != self.last_hard_state;
        self.last_hard_state = hard_state;
        let ready = Ready {
            hard_state: hard_state_changed.then_some(hard_state),
            truncate_from: self.pending_truncate.take(),
            entries: self.log.slice(self.persisted_last + 1, self.log.last_index(), usize::MAX),
            snapshot: self.pending_snapshot.take(),
            base_peers: self.pending_base.take(),
            messages: std::mem::take(&mut self.messages),
            applied: std::mem::take(&mut self.applied_queue),
        };
        self.persisted_last = self.log.last_index();
        if self.role == Role::Leader {
            self.maybe_commit();
        }
        self.hand_up();
        ready
    }

    /// The messages of a leader that just stepped down and is about to be dropped (its server
    /// left the group): sent at once, not through a `Ready`, as the node will take no other.
    /// None of them waits on its disk: a leader's hard state was durable before it won, and
    /// what it sends as leader (Appends of entries it holds, refusals, the hand-over) counts
    /// on nothing it has not yet written.
    pub fn take_parting_messages(&mut self) -> Vec<(PeerId, Message)> {
        assert_eq!(self.role, Role::Follower, "only a leader that stepped down parts");
        assert_eq!(self.hard_state_to_persist().term, self.last_hard_state.term, "its term is on disk");
        std::mem::take(&mut self.messages)
    }

    /// The hard state as it should be on disk. Commit only covers entries handed out in an
    /// earlier Ready, so a durable commit never points past the durable log.
    pub(super) fn hard_state_to_persist(&self) -> HardState {
        let voted_for = if self.config.bugs.vote_not_persisted { None } else { self.voted_for };
        HardState { term: self.term, voted_for, commit: self.commit.min(self.persisted_last) }
    }

    /// Queues committed, durable entries for the upper layer.
    pub(super) fn hand_up(&mut self) {
        if self.apply_paused {
            return;
        }
        let to = self.commit.min(self.persisted_last);
        // Bounded by the committed, durable entries not yet handed up.
        while self.handed_up < to {
            let entry = self.log.get(self.handed_up + 1).expect("entry to hand up is held").clone();
            self.applied_queue.push(Applied::Entry(entry));
            self.handed_up += 1;
        }
        assert!(self.handed_up <= self.commit);
    }

    /// The upper layer has applied up to `index` (which it was handed).
    pub fn applied_to(&mut self, index: Index) {
        assert!(index <= self.handed_up, "applied {index} beyond handed-up {}", self.handed_up);
        if index > self.applied {
            self.applied = index;
            self.restamp();
        }
        assert!(self.applied <= self.commit);
        if self.catchup_to.is_some_and(|to| self.applied >= to) {
            self.catchup_to = None;
        }
        self.check_barrier();
    }

    /// The upper layer's state at `index` (<= applied) is `data`: keep it as a snapshot, drop
    /// log entries <= `index`, and hand the snapshot out once in `Ready::snapshot`.
    pub fn compact(&mut self, index: Index, data: Vec<u8>) -> Result<(), RaftError> {
        if index > self.applied {
            return Err(RaftError::CompactBeyondApplied { index, applied: self.applied });
        }
        if index <= self.log.base_index() {
            return Err(RaftError::CompactNotAhead { index, first_kept_after: self.log.base_index() });
        }
        assert!(index <= self.persisted_last, "applied entries are durable");
        let snapshot = Snapshot {
            last_index: index,
            last_term: self.log.term(index).expect("applied entry held"),
            peers: self.peers_at(index).to_vec(),
            data,
        };
        self.probe(super::probe::Probe::SnapshotCompacted);
        self.log.compact_to(index);
        // Keep only the membership in force at `index` and later changes.
        let keep_from = self.membership.iter().rposition(|(at, _)| *at <= index).unwrap_or(0);
        self.membership.drain(..keep_from);
        self.membership[0].0 = index;
        self.snapshot = Some(snapshot.clone());
        self.pending_snapshot = Some(snapshot);
        self.restamp();
        Ok(())
    }
}
