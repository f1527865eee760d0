//! Membership and quorum: who the members are (now, and at an index), the cluster size quorums
//! count against (a cold-boot size, or the size a meta leader chose and replicated), meta
//! rescue, peer eviction, and applying committed membership and peer-state entries.

use super::error::{ProposeError, RaftError};
use super::node::{normalise_peers, RaftNode, Rescue, LEARNERS_MAX};
use super::types::{Entry, EntryData, Index, PeerId, Role, Term};

impl RaftNode {
    /// A voting member of the current membership.
    pub(super) fn is_member(&self, peer: PeerId) -> bool {
        self.peers_now().binary_search(&peer).is_ok()
    }

    /// The members whose votes count in this node's elections: the current membership less a
    /// member whose removal this node has appended but not committed, sorted. NRG tracks a
    /// removal as soon as its entry is in the log, "but waits for commit to be official"
    /// (`sendMembershipChange` on the leader, `processAppendEntry` on a follower, also when it
    /// replays its log at start; a truncation undoes it): its cluster size and quorum drop at
    /// once. Here memberships change on commit; the latest membership in the log decides
    /// elections (see [`Self::votes_win`]) and, for a removal appended in an earlier term, a
    /// leader's commits too (see [`Self::is_quorum`]). A node that evicted peers drops a
    /// pending removal of itself, as NRG's `EvictPeers` reverts one.
    pub(super) fn voters(&self) -> Vec<PeerId> {
        self.voters_before(Term::MAX)
    }

    /// [`Self::voters`], counting only removals appended in terms before `term`.
    fn voters_before(&self, term: Term) -> Vec<PeerId> {
        let me = self.config.id;
        let mut voters = self.peers_now().to_vec();
        // Only the entries that change the voters are visited: the uncommitted tail can be
        // long, but one membership change runs at a time.
        for entry in self.log.voter_changes_after(self.commit) {
            match entry {
                Entry { term: at, data: EntryData::RemovePeer(p), .. }
                    if *at < term && !(*p == me && self.evicted_membership) =>
                {
                    voters.retain(|v| v != p)
                }
                // A leader's list of members replaces what came before it, as NRG's peer-state
                // entry does on append: a removal it follows is no longer pending (churn seed
                // 8971 of v14: n3 counted a removal of n1 that n1's later `Members [1,3]`
                // undid, elected itself alone and committed without n1, while n1 elected
                // itself alone on its own pending removal of n3).
                Entry { term: at, data: EntryData::Members(members), .. } if *at < term => {
                    voters = normalise_peers(members.clone())
                }
                _ => {}
            }
        }
        voters
    }

    /// The quorum of [`Self::voters`] when they are `voters` many: a majority of the cluster
    /// size, capped by them, or the rescued quorum if lower (with no removal pending, the
    /// same as [`Self::quorum`]).
    pub(super) fn voters_quorum(&self, voters: usize) -> usize {
        let size = self.peer_state_cluster_size.or(self.boot_cluster_size).map_or(voters, |size| size.min(voters));
        let natural = size / 2 + 1;
        self.rescue.map_or(natural, |rescue| rescue.quorum.min(natural))
    }

    /// A leader's members that hold a removal appended in an earlier term, not committed: the
    /// members it leaves. `None` when there is none.
    fn inherited_voters(&self) -> Option<Vec<PeerId>> {
        let voters = self.voters_before(self.term);
        (voters.len() != self.peers_now().len() && !voters.is_empty()).then_some(voters)
    }

    /// Whether the peers `agree` picks (acknowledgements, recent contact; this node included
    /// if it agrees) make a leader's quorum: of the current membership, or, while a removal
    /// appended in an earlier term is pending, of the members it leaves, as NRG counts. A
    /// survivor restarted holding its leader's removal of itself, elected alone on the
    /// members that removal leaves, commits it that way; the current membership would wait for
    /// a server that left (churn seed 11446 of v14, 5377's kind). A majority of the members a
    /// removal leaves meets a majority of those before it (they differ by one), so a commit
    /// either way is seen by every candidate that can win. A removal this leader proposed
    /// counts from its commit, as before: counted at once, a leader of two that removes the
    /// other would commit alone (as NRG does), moving the timing of every shrink.
    pub(super) fn is_quorum(&self, agree: impl Fn(PeerId) -> bool) -> bool {
        let members = self.peers_now();
        if members.iter().filter(|p| agree(**p)).count() >= self.quorum() {
            return true;
        }
        self.inherited_voters()
            .is_some_and(|voters| voters.iter().filter(|p| agree(**p)).count() >= self.voters_quorum(voters.len()))
    }

    /// The highest index held by a leader's quorum (see [`Self::is_quorum`]), given each
    /// peer's durable match.
    pub(super) fn quorum_match(&self, match_of: impl Fn(PeerId) -> Index) -> Option<Index> {
        let mut matches: Vec<Index> = self.peers_now().iter().map(|p| match_of(*p)).collect();
        let by_members = super::progress::quorum_index(&mut matches, self.quorum());
        let Some(voters) = self.inherited_voters() else { return by_members };
        let mut matches: Vec<Index> = voters.iter().map(|p| match_of(*p)).collect();
        by_members.max(super::progress::quorum_index(&mut matches, self.voters_quorum(voters.len())))
    }

    /// A leader's commit `candidate` (see [`Self::quorum_match`]), held short of the first
    /// uncommitted `Members` entry that a member it names, and this leader counts, does not
    /// hold yet (`match_of` gives each peer's durable match). Such a list is the membership a
    /// leader took on its own eviction, which the group never agreed on: that leader won only
    /// with every member's vote, and its list commits only with every member's copy too. A
    /// member of the old membership that lacks it still counts the evicted servers, and one
    /// whose meta state is stale still hears them (a server peer-removed while down never
    /// learns it), so with an evicted server's vote it could be elected without what a
    /// majority of the new list committed (churn seed 13788 of v15: n3 evicted n4 from
    /// [0,3,4], took learner n1 in and committed `Members [0,1,3]` with n1's copy while n0,
    /// which had voted for it, crashed before the entry reached it; n0 restarted on a meta
    /// state from before n4's removal, and with n4 was a majority of [0,3,4]). NRG's eviction
    /// takes no learner in, so an R3 group's evicting leader needs the other survivor's copy
    /// for its first entry anyway. Only members this leader counts are waited for (another may
    /// never hear from it); the eviction's survivors are members on the old membership and on
    /// the list alike, so any leader waits for them.
    pub(super) fn held_by_listed_members(&self, candidate: Index, match_of: impl Fn(PeerId) -> Index) -> Index {
        // The uncommitted tail is bounded by the pending proposals.
        for index in self.commit + 1..=candidate {
            if let Some(Entry { data: EntryData::Members(members), .. }) = self.log.get(index) {
                if members.iter().any(|&p| self.is_member(p) && match_of(p) < index) {
                    return index - 1;
                }
            }
        }
        candidate
    }

    /// The current membership, sorted.
    pub(super) fn peers_now(&self) -> &[PeerId] {
        &self.membership.last().expect("membership never empty").1
    }

    /// The membership in force at `index` (what a snapshot taken at `index` records).
    pub(super) fn peers_at(&self, index: Index) -> &[PeerId] {
        let position = self.membership.iter().rposition(|(at, _)| *at <= index).unwrap_or(0);
        &self.membership[position].1
    }

    /// The size quorums count against: the member count unless adjusted (NRG `csz`).
    pub fn cluster_size(&self) -> usize {
        self.peer_state_cluster_size.or(self.boot_cluster_size).unwrap_or(self.peers_now().len())
    }

    /// Whether the cluster size is the one a meta leader chose and replicated (not a local
    /// cold-boot size, nor the member count).
    pub fn cluster_size_replicated(&self) -> bool {
        self.peer_state_cluster_size.is_some()
    }

    /// Votes or acknowledgements a decision needs: every election, commit and leader-lease
    /// count goes through here. A rescue lowers it, never raises it.
    pub(super) fn quorum(&self) -> usize {
        let natural = self.natural_quorum();
        match self.rescue {
            Some(rescue) => {
                assert!(rescue.quorum >= 1, "a rescued quorum counts at least one voter");
                assert!(rescue.quorum <= natural, "rescue {} raises quorum {natural}", rescue.quorum);
                rescue.quorum
            }
            None => natural,
        }
    }

    /// The majority of the cluster size, ignoring any rescue.
    pub(super) fn natural_quorum(&self) -> usize {
        self.cluster_size() / 2 + 1
    }

    /// NRG `recalcQuorum`: after the cluster size changed, a rescue ends once the natural
    /// quorum is at or below the rescued one (its job is done: the dead were removed).
    pub(super) fn end_rescue_if_natural_quorum_reached(&mut self) {
        if self.rescue.is_some_and(|r| self.natural_quorum() <= r.quorum) {
            self.rescue = None;
            self.restamp();
        }
    }

    /// Cold boot in a mixed cluster: when only `size` of the configured servers can ever join
    /// (the others run without JetStream), count quorums against `size` (at least 2) so the
    /// group can elect a leader. Refused once any leader has been seen, as NRG refuses it.
    pub fn adjust_boot_cluster_size(&mut self, size: usize) -> Result<(), RaftError> {
        self.boot_cluster_size_adjustable()?;
        let size = size.max(2);
        if size > self.peers_now().len() {
            return Err(RaftError::ClusterSizeAbovePeers { size, peers: self.peers_now().len() });
        }
        self.boot_cluster_size = Some(size);
        self.restamp();
        self.end_rescue_if_natural_quorum_reached();
        Ok(())
    }

    /// Whether this is still a cold boot: no leader seen by this incarnation, and (unlike NRG,
    /// which keeps that fact in memory only) none in the durable log either. Every entry was
    /// written by some leader, so a restarted member whose log holds one is not booting cold;
    /// shrinking its quorum from a stale view of the members could elect it without entries a
    /// real quorum committed while it was away (churn seed 1568 of generator 12).
    pub fn boot_cluster_size_adjustable(&self) -> Result<(), RaftError> {
        if self.had_leader {
            return Err(RaftError::LeaderAlreadySeen);
        }
        let last_index = self.last_index();
        if last_index > 0 && !self.config.bugs.boot_size_after_restart {
            return Err(RaftError::LogShowsLeader { last_index });
        }
        Ok(())
    }

    /// NRG `AdjustClusterSize`, for the meta leader's `checkClusterSize` (§8.4): count quorums
    /// against `size` (at least 2) from now on, and tell the followers with a peer-state entry,
    /// which they adopt once it commits. Only a leader past its apply barrier, for its own
    /// term.
    pub fn adjust_cluster_size(&mut self, now_ms: u64, term: Term, size: usize) -> Result<Index, ProposeError> {
        // Never below NRG's floor, never above the members (which it would not lower).
        let size = size.max(2).min(self.peers_now().len().max(2));
        let cluster_size = u32::try_from(size).expect("a cluster size fits in u32");
        let index = self.propose(now_ms, term, EntryData::PeerState { cluster_size })?;
        self.adopt_cluster_size(size);
        Ok(index)
    }

    /// The cluster size a meta leader chose and replicated, as this node counts it (`None`:
    /// the member count, or a cold-boot size), for the server to keep on disk.
    pub fn replicated_cluster_size(&self) -> Option<usize> {
        self.peer_state_cluster_size
    }

    /// A restarted member takes back the replicated size it had adopted: the peer-state entry
    /// that carried it may be inside its snapshot by now (NRG reads it from its peer-state
    /// file).
    pub fn restore_replicated_cluster_size(&mut self, size: usize) {
        assert_ne!(self.role, Role::Leader, "only at start");
        self.adopt_cluster_size(size);
    }

    /// Count quorums against the leader's `size` (the natural size when it covers every
    /// member), and end a rescue the new quorum makes unnecessary (NRG `recalcQuorum`).
    fn adopt_cluster_size(&mut self, size: usize) {
        self.peer_state_cluster_size = (size < self.peers_now().len()).then_some(size);
        self.restamp();
        self.end_rescue_if_natural_quorum_reached();
    }

    /// NRG `EvictPeers`: a leaderless node drops `peers` (servers the meta layer removed for
    /// good) from its own membership, so a group that lost its quorum to peer removals can
    /// elect again. Only when the peers left besides this node could not reach a quorum
    /// without it: otherwise they might commit entries this node would never see. Never
    /// evicts this node, never empties the group, never from an empty log. Local and not
    /// persisted (the caller repeats it after a restart). Returns the peers evicted.
    ///
    /// `learners` are the servers the group's assignment names that are no members yet: the
    /// membership left takes them in, as NATS's would (it learns peers from the assignment).
    /// A leader replicates to a learner before it adds it, so a learner may hold committed
    /// entries this node lacks; left out, this node could elect itself without them (churn
    /// seed 8372 of v13: a member down while its group committed entry 4 evicted the two
    /// others and led alone, while a caught-up learner held entry 4). For the same reason a
    /// learner evicts too, taking itself in, so that it can campaign with what it holds.
    ///
    /// The membership left is this node's own view, not one the group agreed on, so until a
    /// leader brings it up to its commit the node wins only with every member's vote (each
    /// voter checks its own log, so the winner holds the most of what survives), and joiners
    /// grant it their votes (an empty learner taken in would otherwise refuse it for good:
    /// churn seed 8372 again, with the learners taken in). It still votes by its log as any
    /// member does (refusing members as a joiner does left churn 3659 with two candidates
    /// that refused each other for good).
    pub fn evict_peers(&mut self, peers: &[PeerId], learners: &[PeerId]) -> Result<Vec<PeerId>, RaftError> {
        let me = self.config.id;
        if let Some(leader) = self.leader_id {
            return Err(RaftError::EvictLeaderKnown { leader });
        }
        assert_ne!(self.role, Role::Leader, "a leader knows itself as leader");
        // As for a rescue: an empty node left alone could be elected and lose what the
        // evicted peers held.
        if self.log.last_index() == 0 {
            return Err(RaftError::EvictEmptyLog);
        }
        let voting = self.peers_now().to_vec();
        if !voting.contains(&me) && !learners.contains(&me) {
            return Ok(Vec::new());
        }
        let remaining = voting.iter().filter(|p| **p != me && !peers.contains(p)).count();
        let quorum = voting.len() / 2 + 1;
        if remaining >= quorum {
            return Err(RaftError::EvictQuorumPossible { remaining });
        }
        let evicted: Vec<PeerId> = voting.iter().copied().filter(|p| *p != me && peers.contains(p)).collect();
        let mut kept: Vec<PeerId> = voting.iter().copied().filter(|p| !evicted.contains(p)).collect();
        kept.extend(learners.iter().filter(|p| !peers.contains(p)));
        kept.sort_unstable();
        kept.dedup();
        if evicted.is_empty() || kept.is_empty() {
            return Ok(Vec::new());
        }
        assert!(kept.len() <= LEARNERS_MAX + voting.len(), "bounded by the learners' limit");
        let at = self.membership.last().map_or(0, |(at, _)| *at).max(self.commit);
        self.membership.push((at, kept));
        self.evicted_membership = true;
        self.restamp();
        self.end_rescue_if_natural_quorum_reached();
        Ok(evicted)
    }

    /// Meta rescue (NRG `RescueQuorum`, disaster recovery): count quorums against `quorum`
    /// until `config.rescue_expiry_ms` from now, or until membership changes bring the natural
    /// quorum down to it. Checked in NRG's order: `quorum` must be 1..=the current quorum (it
    /// only lowers; re-issuing restarts the expiry and may lower further); no leader may be
    /// known (this node leading included); this node must be a voting member with a
    /// non-empty log (an empty one could be elected and lose the data the dead peers held).
    pub fn rescue(&mut self, now_ms: u64, quorum: usize) -> Result<(), RaftError> {
        let now = self.observe(now_ms);
        let current = self.quorum();
        if quorum == 0 || quorum > current {
            return Err(RaftError::RescueBadQuorum { quorum, current });
        }
        if let Some(leader) = self.leader_id {
            return Err(RaftError::RescueLeaderKnown { leader });
        }
        assert!(self.role != Role::Leader, "a leader knows itself as leader");
        if !self.can_campaign() {
            return Err(RaftError::RescueNotVoting);
        }
        if self.log.last_index() == 0 {
            return Err(RaftError::RescueEmptyLog);
        }
        // The election timer is left as is: a leaderless node already campaigns when it fires.
        self.rescue = Some(Rescue { quorum, expires_ms: now.saturating_add(self.config.rescue_expiry_ms) });
        self.restamp();
        assert!(self.quorum() == quorum && quorum <= self.natural_quorum());
        Ok(())
    }

    /// Leader only: replicate to `learners` too, servers about to join that are no members
    /// yet (Raft's learners, etcd's), so that one is added only once it holds the log (see
    /// [`RaftNode::match_index`]). A member added while it could not catch up could leave the
    /// group waiting on a vote it does not give (a joiner votes for no member before a leader
    /// brought it the log: default seed 352 of v13). Learners neither vote nor count toward
    /// a quorum; the set replaces the previous one. Whether anything changed (a learner
    /// dropped or taken on).
    pub fn set_learners(&mut self, learners: &[PeerId]) -> bool {
        if self.role != Role::Leader {
            return false;
        }
        assert!(learners.len() <= LEARNERS_MAX, "{} learners", learners.len());
        let (last, now, me) = (self.log.last_index(), self.clock_ms, self.config.id);
        // The members are read in place (this runs on every tick of every leader of a group).
        let members = &self.membership.last().expect("membership never empty").1;
        let before = self.progress.len();
        self.progress.retain(|p, _| members.contains(p) || learners.contains(p));
        let mut changed = self.progress.len() != before;
        for &learner in learners {
            if learner == me || self.peers_now().contains(&learner) {
                continue;
            }
            if let std::collections::btree_map::Entry::Vacant(slot) = self.progress.entry(learner) {
                slot.insert(super::progress::Progress::new(last, now));
                self.send_append(learner);
                changed = true;
            }
        }
        changed
    }

    /// A membership change is appended but not yet committed. One runs at a time: another
    /// waits until none is left.
    pub fn membership_change_pending(&self) -> bool {
        // Bounded by PROPOSALS_PENDING_MAX uncommitted entries.
        self.log.held(self.commit + 1, self.log.last_index()).iter().any(|e| e.data.is_membership())
    }

    /// Applies a committed membership or peer-state entry at `index`. `record_ban` is false on
    /// restart replay.
    pub(super) fn apply_membership(&mut self, index: Index, data: &EntryData, record_ban: bool) {
        let mut peers = self.peers_now().to_vec();
        match data {
            EntryData::AddPeer(peer) => peers.push(*peer),
            EntryData::RemovePeer(peer) => {
                peers.retain(|p| p != peer);
                if record_ban {
                    let now = self.clock_ms;
                    let ban_ms = self.config.peer_readd_ban_ms;
                    // Forget expired bans so the map stays bounded by recent removals.
                    self.removed_at_ms.retain(|_, at| at.saturating_add(ban_ms) > now);
                    self.removed_at_ms.insert(*peer, now);
                }
            }
            // The members a leader elected on its own eviction led with (NRG
            // `processPeerState`): the group's from here, whatever the log said before.
            EntryData::Members(members) => peers = members.clone(),
            EntryData::PeerState { cluster_size } => {
                // A leader counts against its own size; a follower takes the leader's (NRG
                // `processPeerState`), also when replaying its log after a restart.
                if self.role != Role::Leader {
                    self.adopt_cluster_size(*cluster_size as usize);
                }
                return;
            }
            EntryData::Normal(_) | EntryData::LeaderNoop => return,
        }
        let peers = normalise_peers(peers);
        assert!(self.membership.last().is_some_and(|(at, _)| *at < index));
        // An adjusted size counts servers that run: an added peer was heard from, so it grows;
        // a removed one may never have run, so it only caps. It gives way to the membership
        // once they agree.
        let (before, after) = (self.peers_now().len(), peers.len());
        let moved = |size: usize| {
            let size = if after > before { size + 1 } else { size.min(after) };
            (size < after).then_some(size)
        };
        self.boot_cluster_size = self.boot_cluster_size.and_then(moved);
        self.peer_state_cluster_size = self.peer_state_cluster_size.and_then(moved);
        self.membership.push((index, peers));
        self.restamp();
        self.end_rescue_if_natural_quorum_reached();
    }
}
