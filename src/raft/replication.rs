//! Log replication: the leader's Append/InstallSnapshot sending and commit rule, and the
//! follower's consistency check, conflict truncation and snapshot install.

use rand::RngCore;

use super::node::RaftNode;
use super::probe::Probe;
use super::types::{Applied, Entry, EntryData, Index, Message, PeerId, Role, Signal, Snapshot, Term};

impl RaftNode {
    /// Sends `peer` the entries from its next index (at most `max_entries_per_append`), or the
    /// snapshot when those entries were compacted away. Advances next optimistically.
    pub(super) fn send_append(&mut self, peer: PeerId) {
        assert_eq!(self.role, Role::Leader);
        let Some(pr) = self.progress.get(&peer).copied() else { return };
        assert!(pr.next_index >= 1);
        if pr.next_index <= self.log.base_index() {
            let snapshot = self.snapshot.clone().expect("a compacted log has a snapshot");
            assert_eq!(snapshot.last_index, self.log.base_index());
            let next_index = snapshot.last_index + 1;
            self.probe(Probe::SnapshotSent);
            self.messages.push((peer, Message::InstallSnapshot { term: self.term, snapshot }));
            self.progress.get_mut(&peer).expect("peer tracked").next_index = next_index;
            self.restate_cluster_size_after_snapshot();
            return;
        }
        let prev_index = pr.next_index - 1;
        let prev_term = self.log.term(prev_index).expect("prev entry held by the leader");
        let entries = self.log.slice(pr.next_index, self.log.last_index(), self.config.max_entries_per_append);
        assert!(entries.len() <= self.config.max_entries_per_append);
        let next_index = pr.next_index + entries.len() as Index;
        let base = (prev_index == 0).then(|| self.peers_at(0).to_vec());
        let append = Message::Append { term: self.term, prev_index, prev_term, entries, commit: self.commit, base };
        self.messages.push((peer, append));
        self.progress.get_mut(&peer).expect("peer tracked").next_index = next_index;
    }

    /// A snapshot carries no cluster size (NRG's carries its peer state): a member that catches
    /// up from one learns a replicated size only from a peer-state entry after it. So when the
    /// log holds none past the snapshot point, the leader states its size again (mixed seed
    /// 147: a follower caught up by a snapshot kept counting against five servers). Only a
    /// leader with a replicated size appends anything here.
    fn restate_cluster_size_after_snapshot(&mut self) {
        let Some(size) = self.peer_state_cluster_size else { return };
        // Read in place: the log past the snapshot holds at most `snapshot_every` applied
        // entries and the uncommitted ones, and none needs copying.
        let stated = (self.log.base_index() + 1..=self.log.last_index())
            .any(|i| self.log.get(i).is_some_and(|e| matches!(e.data, EntryData::PeerState { .. })));
        if stated {
            return;
        }
        let cluster_size = u32::try_from(size).expect("a cluster size fits in u32");
        let index = self.log.last_index() + 1;
        self.probe(Probe::ClusterSizeRestated);
        self.log.append(Entry { term: self.term, index, data: EntryData::PeerState { cluster_size } });
        self.restamp();
    }

    /// An Append that is this leader's last word to `peer`: it starts right after what the peer
    /// acknowledged (if it acknowledged anything), so it is accepted whatever became of the
    /// Appends still in flight. NRG's routes deliver in order, so its last Append finds the
    /// earlier ones already there; our network reorders, and a last Append that assumed them
    /// could be refused with no leader left to retry (churn seed 1471: a lone survivor never
    /// learned that the removal of the other member committed).
    fn send_last_append(&mut self, peer: PeerId) {
        let Some(pr) = self.progress.get_mut(&peer) else { return };
        if pr.match_index > 0 {
            pr.next_index = pr.match_index + 1;
        }
        self.send_append(peer);
    }

    /// Sends every follower what it lacks; an empty Append is the heartbeat.
    pub(super) fn broadcast_append(&mut self) {
        let peers: Vec<PeerId> = self.progress.keys().copied().collect();
        for peer in peers {
            self.send_append(peer);
        }
    }

    /// Leader commit rule: the highest index on a majority (own match counts only durable
    /// entries), and not past an eviction's list of members some counted member lacks,
    /// commits if it is from the current term (Figure 8), unless `bugs.commit_old_term`.
    pub(super) fn maybe_commit(&mut self) {
        assert_eq!(self.role, Role::Leader);
        let own_match = self.persisted_last.min(self.log.last_index());
        let match_of = |peer: PeerId| {
            if peer == self.config.id {
                own_match
            } else {
                self.progress.get(&peer).map_or(0, |pr| pr.match_index)
            }
        };
        let Some(candidate) = self.quorum_match(match_of) else { return };
        let candidate = self.held_by_listed_members(candidate, match_of);
        if candidate <= self.commit {
            return;
        }
        let current_term = self.log.term(candidate) == Some(self.term);
        if current_term {
            self.probe(Probe::CommitCurrentTerm);
            self.set_commit(candidate);
        } else if self.config.bugs.commit_old_term {
            self.probe(Probe::CommitOldTerm);
            self.set_commit(candidate);
        } else {
            self.probe(Probe::CommitOldTermHeldBack);
        }
    }

    /// Advances commit (never backwards), applying membership changes as they commit.
    pub(super) fn set_commit(&mut self, commit: Index) {
        assert!(commit <= self.log.last_index(), "commit {commit} beyond last index");
        if commit <= self.commit {
            return;
        }
        let from = self.commit + 1;
        for index in from..=commit {
            let entry = self.log.get(index).expect("newly committed entry held");
            if entry.data.is_config() {
                let data = entry.data.clone();
                self.probe(match data {
                    EntryData::AddPeer(_) => Probe::MembershipAdded,
                    EntryData::Members(_) => Probe::MembershipReplaced,
                    _ => Probe::MembershipRemoved,
                });
                self.on_membership_committed(index, &data);
            }
        }
        self.commit = commit;
        // A leader whose term committed an entry has brought a quorum up to it: the group agreed
        // on its membership, and that quorum elects without a member still waiting to join.
        // Nor does it wait for a leader any more itself (a joiner that won with every vote): it
        // holds all its group committed, and a joiner holding entries does not campaign, so
        // once deposed it could otherwise never run again.
        if self.role == Role::Leader && self.entry_term(commit) == Some(self.term) {
            self.evicted_membership = false;
            self.waiting_for_leader = false;
        }
        self.restamp();
        self.hand_up();
        if self.role == Role::Leader && !self.is_member(self.config.id) {
            // Committed our own removal: step down and never campaign again (not a member).
            self.probe(Probe::LeaderRemovedItself);
            self.leave_leadership_removed();
        }
    }

    fn on_membership_committed(&mut self, index: Index, data: &super::types::EntryData) {
        let before = self.peers_now().to_vec();
        self.apply_membership(index, data, true);
        if self.role != Role::Leader {
            return;
        }
        let after = self.peers_now().to_vec();
        let last = self.log.last_index();
        let now = self.clock_ms;
        for peer in after.iter().filter(|p| **p != self.config.id && !before.contains(p)) {
            // A learner added keeps the progress it made as one.
            self.progress.entry(*peer).or_insert_with(|| super::progress::Progress::new(last, now));
        }
        for peer in before.iter().filter(|p| !after.contains(p)) {
            if self.progress.contains_key(peer) {
                // One last Append so the removed peer may learn its removal and stop campaigning.
                self.commit = self.commit.max(index);
                self.restamp();
                self.send_last_append(*peer);
                self.progress.remove(peer);
            }
        }
    }

    fn leave_leadership_removed(&mut self) {
        assert_eq!(self.role, Role::Leader);
        // Tell the members left that the removal committed: memberships change on commit
        // here, so a lone survivor of a two-member group could otherwise never learn it and
        // never reach its new quorum of one.
        let members: Vec<PeerId> = self.progress.keys().copied().filter(|p| self.is_member(*p)).collect();
        for peer in members {
            self.send_last_append(peer);
        }
        if self.leader_signalled {
            self.applied_queue.push(Applied::Signal(Signal::SteppedDown { term: self.term }));
        }
        self.role = Role::Follower;
        self.leader_id = None;
        self.leader_signalled = false;
        self.barrier_index = 0;
        self.restamp();
        self.progress.clear();
        self.votes.clear();
        // Not a member any more: tick() keeps resetting the timer without campaigning.
        self.election_deadline_ms = self.clock_ms;
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_append(
        &mut self,
        from: PeerId,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
        base: Option<Vec<PeerId>>,
        now: u64,
        rng: &mut dyn RngCore,
    ) {
        if !self.accept_leader(from, now, rng) {
            return;
        }
        if let Some(peers) = base {
            self.rebase_membership(peers);
        }
        for (offset, entry) in entries.iter().enumerate() {
            assert_eq!(entry.index, prev_index + 1 + offset as Index, "Append entries not contiguous");
        }
        // Entries at or below our snapshot base are committed, hence identical: skip them.
        let base = self.log.base_index();
        let (prev_index, prev_term, entries) = if prev_index < base {
            self.probe(Probe::AppendBelowSnapshot);
            let kept: Vec<Entry> = entries.into_iter().filter(|e| e.index > base).collect();
            if kept.is_empty() {
                self.respond_append(from, true, base, 0);
                return;
            }
            (base, self.log.base_term(), kept)
        } else {
            (prev_index, prev_term, entries)
        };
        if self.log.term(prev_index) != Some(prev_term) {
            self.probe(Probe::AppendMismatch);
            let hint = self.backoff_hint(prev_index);
            self.respond_append(from, false, prev_index, hint);
            return;
        }
        let mut last_new = prev_index;
        for entry in entries {
            last_new = entry.index;
            match self.log.term(entry.index) {
                Some(term) if term == entry.term => {}
                Some(_) => {
                    if entry.index <= self.commit {
                        // Only reachable when a deliberate bug let a leader overwrite a
                        // committed entry; the checkers report it.
                        assert!(self.config.bugs.any(), "conflict inside the committed prefix");
                        return;
                    }
                    self.probe(Probe::AppendTruncated);
                    self.truncate_log_from(entry.index);
                    self.log.append(entry);
                    self.restamp();
                }
                None => {
                    self.log.append(entry);
                    self.restamp();
                }
            }
        }
        if leader_commit > self.commit && last_new > self.commit {
            self.probe(Probe::CommitFollower);
        }
        if leader_commit > self.commit {
            self.set_commit(leader_commit.min(last_new));
        }
        // A joiner may campaign once it holds all the leader had committed. A new leader's
        // commit index lags until it commits an entry of its own term; only then does it cover
        // everything committed before (churn seed 11289: a joiner that caught up to a new
        // leader's commit of 1 stopped waiting without the committed entry 5).
        // The same for a node on its eviction's membership: the leader's log carries the
        // membership the group agreed on from here.
        if last_new >= leader_commit && self.entry_term(leader_commit) == Some(self.term) {
            if self.waiting_for_leader {
                self.probe(Probe::JoinerCaughtUp);
                self.waiting_for_leader = false;
                self.restamp();
            }
            if self.evicted_membership {
                self.evicted_membership = false;
                self.restamp();
            }
        }
        self.respond_append(from, true, last_new, 0);
    }

    /// Takes the membership the leader's log starts from. Members share it; a joiner started
    /// from the assignment's peers, and counted from those, a membership change in the log
    /// could leave it a group of one that elects itself (churn seed 7841 of v13: started on
    /// [1, 4], it replayed the group's `RemovePeer(4)` and needed only its own vote). Only a
    /// log that starts at index 1 (no snapshot) has such a base.
    fn rebase_membership(&mut self, peers: Vec<PeerId>) {
        let peers = super::node::normalise_peers(peers);
        if self.log.base_index() != 0 || self.membership[0].1 == peers {
            return;
        }
        assert!(!peers.is_empty(), "a leader's log starts from a membership");
        self.probe(Probe::MembershipRebased);
        self.membership = vec![(0, peers.clone())];
        self.restamp();
        // Bounded by the committed entries held.
        for index in 1..=self.commit {
            let data = self.log.get(index).expect("committed entry held").data.clone();
            if data.is_membership() {
                self.apply_membership(index, &data, false);
            }
        }
        self.pending_base = Some(peers);
    }

    /// Follower-side bookkeeping shared by Append and InstallSnapshot from the leader of the
    /// current term. False if the message must be dropped.
    fn accept_leader(&mut self, from: PeerId, now: u64, rng: &mut dyn RngCore) -> bool {
        if !self.note_leader(from) {
            return false;
        }
        if self.role == Role::Candidate {
            self.probe(Probe::CandidateHeardLeader);
            self.become_follower(self.term, now, rng);
            self.leader_id = Some(from);
        }
        assert_eq!(self.role, Role::Follower, "a leader never accepts another leader's Append");
        self.leader_contact_ms = now;
        self.reset_election_timer(now, rng);
        true
    }

    /// Where the leader should retry: our last index if `prev_index` is beyond it, else the
    /// index before the first entry of the conflicting term (never below our commit, whose
    /// entries match any leader).
    fn backoff_hint(&self, prev_index: Index) -> Index {
        let hint = if prev_index > self.log.last_index() {
            self.log.last_index()
        } else {
            self.log.first_index_of_term_at(prev_index) - 1
        };
        let hint = hint.max(self.commit).min(prev_index.saturating_sub(1));
        assert!(hint < prev_index);
        hint
    }

    fn truncate_log_from(&mut self, from: Index) {
        assert!(from > self.commit, "never truncate committed entries");
        self.log.truncate_from(from);
        self.restamp();
        self.pending_truncate = Some(self.pending_truncate.map_or(from, |t| t.min(from)));
        self.persisted_last = self.persisted_last.min(from - 1);
    }

    fn respond_append(&mut self, to: PeerId, success: bool, match_index: Index, hint: Index) {
        let response = Message::AppendResponse { term: self.term, success, match_index, hint };
        self.messages.push((to, response));
    }

    pub(super) fn handle_append_response(
        &mut self,
        from: PeerId,
        success: bool,
        match_index: Index,
        hint: Index,
        now: u64,
    ) {
        if self.role != Role::Leader {
            return;
        }
        let last = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else { return };
        pr.contact_ms = now;
        pr.heard = true;
        if success {
            assert!(match_index <= last, "follower {from} matches {match_index} beyond leader's {last}");
            pr.on_success(match_index);
            let behind = pr.next_index <= last;
            self.maybe_commit();
            if behind && self.progress.contains_key(&from) {
                self.send_append(from);
            }
        } else if pr.on_reject(match_index, hint) {
            self.send_append(from);
        }
    }

    pub(super) fn handle_install_snapshot(
        &mut self,
        from: PeerId,
        snapshot: Snapshot,
        now: u64,
        rng: &mut dyn RngCore,
    ) {
        if !self.accept_leader(from, now, rng) {
            return;
        }
        let last_index = snapshot.last_index;
        if last_index <= self.commit {
            // Already have it (a duplicate or a stale send); our commit matches any leader.
            self.probe(Probe::InstallStale);
            self.respond_append(from, true, self.commit, 0);
            return;
        }
        if self.log.term(last_index) == Some(snapshot.last_term) {
            // Our log already holds the snapshot point: keep the suffix (we may have acked it).
            self.probe(Probe::InstallLogHoldsPoint);
            self.set_commit(last_index);
            self.respond_append(from, true, last_index, 0);
            return;
        }
        // Replace the whole log. Everything dropped is above our commit.
        self.pending_truncate = Some(self.pending_truncate.map_or(last_index + 1, |t| t.min(last_index + 1)));
        self.persisted_last = self.persisted_last.min(last_index);
        self.log = super::log::RaftLog::with_base(last_index, snapshot.last_term);
        self.membership = vec![(last_index, snapshot.peers.clone())];
        self.end_rescue_if_natural_quorum_reached();
        self.commit = last_index;
        self.handed_up = last_index;
        self.catchup_to = Some(last_index);
        // NRG: a follower with no snapshot of its own stages the leader's as part of the
        // catch-up; one that had a snapshot applies the new one first, then catches up.
        self.probe(if self.snapshot.is_some() { Probe::InstallReplacesLog } else { Probe::InstallFirst });
        if self.snapshot.is_some() {
            self.applied_queue.push(Applied::Snapshot(snapshot.clone()));
            self.applied_queue.push(Applied::Signal(Signal::CatchupStarted));
        } else {
            self.applied_queue.push(Applied::Signal(Signal::CatchupStarted));
            self.applied_queue.push(Applied::Snapshot(snapshot.clone()));
        }
        self.applied_queue.push(Applied::Signal(Signal::CatchupDone));
        self.snapshot = Some(snapshot.clone());
        self.pending_snapshot = Some(snapshot);
        self.restamp();
        self.respond_append(from, true, last_index, 0);
    }
}
