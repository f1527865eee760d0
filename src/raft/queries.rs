//! Read-only queries (spec §6 "Raft primitives") used by the upper layer and by checkers.

use super::node::RaftNode;
use super::types::{Entry, Index, PeerId, Role, Term};

impl RaftNode {
    pub fn id(&self) -> PeerId {
        self.config.id
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn term(&self) -> Term {
        self.term
    }

    /// Leader AND the post-election apply barrier has been passed (`BecameLeader` emitted).
    pub fn leader(&self) -> bool {
        self.role == Role::Leader && self.leader_signalled
    }

    /// No leader known for the current term.
    pub fn leaderless(&self) -> bool {
        self.leader_id.is_none()
    }

    /// Some leader was ever observed by this incarnation (not persisted across restarts).
    pub fn had_previous_leader(&self) -> bool {
        self.had_leader
    }

    /// A joiner still waiting for a leader to bring it up to its commit (see `wait_for_leader`).
    pub fn waits_for_leader(&self) -> bool {
        self.waiting_for_leader
    }

    /// An election needs every member's vote: a joiner waiting for a leader, or a node on
    /// its own eviction's membership (see [`RaftNode::evict_peers`]).
    pub fn needs_every_vote(&self) -> bool {
        self.waiting_for_leader || self.evicted_membership
    }

    pub fn group_leader(&self) -> Option<PeerId> {
        self.leader_id
    }

    /// False if commit is 0; true if `leader()`; false if another node is the known leader
    /// and we have not heard from it within 2 heartbeats; false while a snapshot install is
    /// being applied; otherwise true iff everything committed has been applied.
    pub fn current(&self, now_ms: u64) -> bool {
        match self.currentness_gates(now_ms) {
            Some(decided) => decided,
            None => self.commit == self.applied,
        }
    }

    /// Like `current`, but a commit/applied gap is tolerated when it shrank since the last `tick`
    /// (forward progress, as NATS's health check allows). A pure query: asking changes nothing.
    pub fn healthy(&self, now_ms: u64) -> bool {
        if let Some(decided) = self.currentness_gates(now_ms) {
            return decided;
        }
        assert!(self.applied <= self.commit);
        let gap = self.commit - self.applied;
        gap == 0 || self.apply_gap_at_tick.is_some_and(|at_tick| gap < at_tick)
    }

    /// The checks shared by `current` and `healthy`; `None` means "decided by the gap".
    fn currentness_gates(&self, now_ms: u64) -> Option<bool> {
        if self.commit == 0 {
            return Some(false);
        }
        if self.leader() {
            return Some(true);
        }
        if self.leader_id.is_some_and(|l| l != self.config.id) {
            let silent_ms = now_ms.saturating_sub(self.leader_contact_ms);
            if self.catchup_to.is_none() && silent_ms > 2 * self.config.heartbeat_ms {
                return Some(false);
            }
        }
        if self.catchup_to.is_some() {
            return Some(false);
        }
        None
    }

    /// A snapshot install is being applied: set when the node accepts a leader's snapshot,
    /// cleared once the upper layer reports it applied.
    pub fn catching_up(&self) -> bool {
        self.catchup_to.is_some()
    }

    /// When this node last heard from its leader, and its latest local time (for reports).
    pub fn leader_contact_ms(&self) -> (u64, u64) {
        (self.leader_contact_ms, self.clock_ms)
    }

    pub fn created_ms(&self) -> u64 {
        self.created_ms
    }

    /// No leader known, and this node has run for longer than the lost-quorum interval: the
    /// test JetStream's API uses before it answers "cluster not available" (NATS
    /// `isLeaderless`), so that a node just started is not taken for a leaderless one.
    pub fn leaderless_for_long(&self, now_ms: u64) -> bool {
        self.leaderless() && now_ms >= self.created_ms.saturating_add(self.config.lost_quorum_ms())
    }

    pub fn commit_index(&self) -> Index {
        self.commit
    }

    pub fn applied_index(&self) -> Index {
        self.applied
    }

    pub fn last_index(&self) -> Index {
        self.log.last_index()
    }

    /// Term of the last log entry: with `last_index`, what a voter compares (Raft §5.4.1).
    pub fn last_term(&self) -> Term {
        self.log.last_term()
    }

    /// On a leader, the highest index known replicated on `peer` (0 when unknown).
    pub fn match_index(&self, peer: PeerId) -> Index {
        self.progress.get(&peer).map_or(0, |pr| pr.match_index)
    }

    /// The current membership, sorted.
    pub fn peers(&self) -> &[PeerId] {
        self.peers_now()
    }

    /// Whether the votes of `voters` (this node's own included if listed) would elect this
    /// node: a quorum of its membership, or of the members left by a removal it appended but
    /// has not committed (NRG counts that removal at once), or every member while it waits
    /// for a leader. `election_votes_needed` is the count for the membership alone.
    pub fn wins_with_votes_of(&self, voters: &[PeerId]) -> bool {
        self.wins_with(|peer| voters.contains(&peer))
    }

    /// Whether `peer` is a member in any membership this node still knows (its snapshot's
    /// and every change after it): a server that finds itself here knows it was removed.
    pub fn was_member(&self, peer: PeerId) -> bool {
        self.membership.iter().any(|(_, peers)| peers.binary_search(&peer).is_ok())
    }

    /// The memberships this node still knows (its snapshot's and every change after it, as
    /// appended), each with the index it took effect at, oldest first.
    pub fn memberships(&self) -> impl Iterator<Item = (Index, &[PeerId])> + '_ {
        self.membership.iter().map(|(at, peers)| (*at, peers.as_slice()))
    }

    /// Whether `peer` is a member in a membership this node still knows that was in force at
    /// or before `index`: what the upper layer has seen once it applied up to `index` (an
    /// addition committed but not yet applied does not count).
    pub fn was_member_by(&self, index: Index, peer: PeerId) -> bool {
        let index = index.max(self.snapshot_index());
        self.membership.iter().take_while(|(at, _)| *at <= index).any(|(_, peers)| peers.binary_search(&peer).is_ok())
    }

    /// The membership in force at `index` (at least the snapshot point): what the upper layer
    /// has seen once it applied up to `index`, where `peers` may be ahead of it.
    pub fn peers_at_index(&self, index: Index) -> &[PeerId] {
        self.peers_at(index.max(self.snapshot_index()))
    }

    /// Leader only: the members heard from within the lost-quorum window, itself included
    /// (empty on a follower). Placement picks online peers from these.
    pub fn peers_in_contact(&self, now_ms: u64) -> Vec<PeerId> {
        if self.role != Role::Leader {
            return Vec::new();
        }
        let window = self.config.lost_quorum_ms();
        self.peers_now()
            .iter()
            .copied()
            .filter(|&p| {
                p == self.config.id
                    || self.progress.get(&p).is_some_and(|pr| now_ms < pr.contact_ms.saturating_add(window))
            })
            .collect()
    }

    /// Leader only: when `peer` last answered it, on this node's clock; `None` on a follower
    /// or before `peer` answered in this term (unlike the contact [`Self::peers_in_contact`]
    /// counts, the lease's grace at election is no sign of life).
    pub fn heard_at(&self, peer: PeerId) -> Option<u64> {
        if self.role != Role::Leader {
            return None;
        }
        self.progress.get(&peer).filter(|pr| pr.heard).map(|pr| pr.contact_ms)
    }

    /// How often a leader sends to each follower when it has nothing else to send.
    pub fn heartbeat_ms(&self) -> u64 {
        self.config.heartbeat_ms
    }

    /// How long a leader waits for a quorum's answers before it steps down.
    pub fn lost_quorum_ms(&self) -> u64 {
        self.config.lost_quorum_ms()
    }

    /// Votes or acknowledgements a decision needs: a majority of the cluster size, or the
    /// rescued quorum while a rescue is active.
    pub fn quorum_size(&self) -> usize {
        self.quorum()
    }

    /// The lowered quorum of the active meta rescue; `None` when no rescue is active.
    pub fn rescued_quorum(&self) -> Option<usize> {
        self.rescue.map(|r| r.quorum)
    }

    /// Whether applies are paused ([`Self::pause_apply`]).
    pub fn apply_paused(&self) -> bool {
        self.apply_paused
    }

    pub fn is_observer(&self) -> bool {
        self.config.observer
    }

    /// Whether this node would campaign when its election timer fires: a voting member that
    /// is not an observer.
    pub fn may_campaign(&self) -> bool {
        self.can_campaign()
    }

    /// Votes (its own included) this node needs to win an election now: a quorum, or every
    /// member while it waits for a leader's data (see `wait_for_leader`).
    pub fn election_votes_needed(&self) -> usize {
        self.votes_needed()
    }

    /// Term of the entry at `index` if still held (index 0 and the snapshot base included).
    pub fn entry_term(&self, index: Index) -> Option<Term> {
        self.log.term(index)
    }

    /// Entries in `[from, commit]` still in the in-memory log.
    pub fn committed_entries(&self, from: Index) -> Vec<Entry> {
        self.log.slice(from, self.commit, usize::MAX)
    }

    /// Index of the last compacted entry (0 without a snapshot).
    pub fn snapshot_index(&self) -> Index {
        self.log.base_index()
    }
}
