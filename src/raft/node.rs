//! `RaftNode`: the state machine of one group member. Inputs are `step` (a message), `tick`
//! (timers), `propose`, `step_down`, `applied_to` and `compact`; outputs pile up until the driver
//! takes them with `ready()`. Replication details live in `replication.rs`, queries in
//! `queries.rs`.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, RngCore};

use super::config::Config;
use super::error::{ProposeError, RaftError};
use super::log::RaftLog;
use super::progress::Progress;
use super::types::{Applied, Entry, EntryData, HardState, Index, Message, PeerId, Ready, Role, Signal, Snapshot, Term};

/// Upper bound on uncommitted entries a leader accepts (`ProposeError::TooManyPending`).
pub const PROPOSALS_PENDING_MAX: u64 = 4096;

pub struct RaftNode {
    pub(super) config: Config,
    pub(super) created_ms: u64,
    /// Latest local time seen; time going backwards is treated as no time passing.
    pub(super) clock_ms: u64,
    pub(super) role: Role,
    pub(super) term: Term,
    pub(super) voted_for: Option<PeerId>,
    /// The leader of `term`, once known. At most one per term (asserted).
    pub(super) leader_id: Option<PeerId>,
    pub(super) had_leader: bool,
    pub(super) log: RaftLog,
    /// Latest snapshot held: sent to followers whose next index was compacted away.
    pub(super) snapshot: Option<Snapshot>,
    pub(super) commit: Index,
    /// Entries <= this were handed out in an earlier `Ready`, hence durable now.
    pub(super) persisted_last: Index,
    /// Entries <= this were queued for the upper layer.
    pub(super) handed_up: Index,
    /// Reported by the upper layer through `applied_to`.
    pub(super) applied: Index,
    /// Membership history: (index from which it holds, sorted peers). Last is current.
    pub(super) membership: Vec<(Index, Vec<PeerId>)>,
    pub(super) election_deadline_ms: u64,
    pub(super) heartbeat_due_ms: u64,
    pub(super) leader_contact_ms: u64,
    pub(super) votes: BTreeSet<PeerId>,
    pub(super) progress: BTreeMap<PeerId, Progress>,
    /// Leader only: last index at election time; `BecameLeader` waits for applied >= it.
    pub(super) barrier_index: Index,
    /// Leader only: `BecameLeader` was emitted for this term (`leader()` is true).
    pub(super) leader_signalled: bool,
    /// A snapshot install is being applied by the upper layer (current() is false).
    pub(super) catchup_to: Option<Index>,
    /// Cold-boot override of the cluster size that quorums count against (NRG's
    /// `AdjustBootClusterSize`): set only before any leader was seen, dropped at the first
    /// membership change. Not persisted: every incarnation repeats the cold-boot check.
    pub(super) boot_cluster_size: Option<usize>,
    /// The cluster size a meta leader's `checkClusterSize` chose (NRG `AdjustClusterSize`),
    /// below the member count; it takes precedence over a boot size. The leader sets it and
    /// says so in a peer-state entry, which followers adopt when it commits and again when they
    /// replay their log after a restart (so a restart after the entry was compacted away
    /// forgets it until the next leader's first entry). Unlike NRG, a boot size is never
    /// replicated: a restarted server with a stale membership can count removed servers as
    /// servers without JetStream, and its boot size, replicated once it led, would lower the
    /// quorum of the whole group (peers profile, seeds 87, 120 and 127).
    pub(super) peer_state_cluster_size: Option<usize>,
    /// Operator-driven meta rescue (NRG `RescueQuorum`): a group that permanently lost too many
    /// peers to ever reach a majority again can temporarily count quorums against a lower
    /// value, elect a leader and peer-remove the dead. Only ever lowers the quorum (asserted in
    /// `quorum()`); ends when the natural quorum drops to it, or at `expires_ms`. Not
    /// persisted, as in NRG: a restart comes back with the natural quorum.
    pub(super) rescue: Option<Rescue>,
    /// A member added to a running group starts with an empty log and a membership taken
    /// from the assignment, not from the log: it must not win an election before it holds
    /// what the leader had committed, or it and another empty member could elect it and lose
    /// what the group committed. While set, it wins only with every member's vote: each vote
    /// says the voter's log is no newer than this empty one, so nothing was ever committed
    /// (NRG's "heard from the full cluster" rule for empty logs; it also frees a group whose
    /// members all joined before any data existed). Set by [`RaftNode::wait_for_leader`],
    /// cleared by the first append that brings it up to the leader's commit.
    pub(super) waiting_for_leader: bool,
    /// When each peer's removal committed here (re-add ban).
    pub(super) removed_at_ms: BTreeMap<PeerId, u64>,
    pub(super) last_hard_state: HardState,
    pub(super) pending_truncate: Option<Index>,
    pub(super) pending_snapshot: Option<Snapshot>,
    pub(super) messages: Vec<(PeerId, Message)>,
    pub(super) applied_queue: Vec<Applied>,
    /// commit - applied gap seen by the previous `healthy()` call.
    pub(super) healthy_gap: Cell<Option<Index>>,
}

/// An active meta rescue: the lowered quorum and when it lapses (local time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Rescue {
    pub(super) quorum: usize,
    pub(super) expires_ms: u64,
}

fn normalise_peers(mut peers: Vec<PeerId>) -> Vec<PeerId> {
    peers.sort_unstable();
    peers.dedup();
    peers
}

impl RaftNode {
    /// A brand new group member. `peers` is the initial membership and normally includes
    /// `config.id` (a node outside it never campaigns). Emits `CatchupDone` at once: there is
    /// nothing to replay. Panics on an invalid config (a programming error).
    pub fn new(config: Config, peers: Vec<PeerId>, now_ms: u64, rng: &mut dyn RngCore) -> Self {
        if let Err(error) = config.validate() {
            panic!("{error}");
        }
        let mut node = RaftNode::blank(config, normalise_peers(peers), 0, now_ms);
        node.reset_election_timer(now_ms, rng);
        node.applied_queue.push(Applied::Signal(Signal::CatchupDone));
        node
    }

    /// Restart from durable state. Nothing counts as applied: the upper layer gets the
    /// snapshot (if any), then every entry up to the durable commit, then `CatchupDone`.
    /// Entries at or below the snapshot's last index are skipped; the rest must be contiguous
    /// from there with non-decreasing terms, and commit must not pass the last index.
    pub fn restore(
        config: Config,
        peers_if_no_snapshot: Vec<PeerId>,
        hard: HardState,
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
        now_ms: u64,
        rng: &mut dyn RngCore,
    ) -> Result<Self, RaftError> {
        config.validate()?;
        let (base_index, base_term, peers) = match &snapshot {
            Some(s) => (s.last_index, s.last_term, s.peers.clone()),
            None => (0, 0, peers_if_no_snapshot),
        };
        let mut log = RaftLog::with_base(base_index, base_term);
        for entry in entries.into_iter().filter(|e| e.index > base_index) {
            if entry.index != log.last_index() + 1 {
                let expected = log.last_index() + 1;
                return Err(RaftError::LogNotContiguous { expected, found: entry.index });
            }
            if entry.term < log.last_term() {
                let previous = log.last_term();
                return Err(RaftError::TermDecreases { index: entry.index, term: entry.term, previous });
            }
            log.append(entry);
        }
        if hard.term < log.last_term() {
            return Err(RaftError::TermBehindLog { term: hard.term, log_term: log.last_term() });
        }
        // A crash between persisting an installed snapshot and the hard state leaves commit
        // behind the snapshot; the snapshot itself is committed.
        let commit = hard.commit.max(base_index);
        if commit > log.last_index() {
            return Err(RaftError::CommitBeyondLog { commit, last: log.last_index() });
        }

        let mut node = RaftNode::blank(config, normalise_peers(peers), base_index, now_ms);
        node.term = hard.term;
        node.voted_for = hard.voted_for;
        node.last_hard_state = hard;
        node.log = log;
        node.persisted_last = node.log.last_index();
        node.handed_up = base_index;
        if let Some(snapshot) = snapshot {
            node.applied_queue.push(Applied::Snapshot(snapshot.clone()));
            node.snapshot = Some(snapshot);
        }
        // Replay membership up to commit; bans are not re-recorded (their times are lost).
        for index in base_index + 1..=commit {
            let data = node.log.get(index).expect("committed entry held").data.clone();
            node.apply_membership(index, &data, false);
        }
        node.commit = commit;
        node.hand_up();
        assert_eq!(node.handed_up, commit, "restart replay hands up every committed entry");
        node.applied_queue.push(Applied::Signal(Signal::CatchupDone));
        node.reset_election_timer(now_ms, rng);
        Ok(node)
    }

    fn blank(config: Config, peers: Vec<PeerId>, base_index: Index, now_ms: u64) -> Self {
        RaftNode {
            config,
            created_ms: now_ms,
            clock_ms: now_ms,
            role: Role::Follower,
            term: 0,
            voted_for: None,
            leader_id: None,
            had_leader: false,
            log: RaftLog::default(),
            snapshot: None,
            commit: 0,
            persisted_last: 0,
            handed_up: 0,
            applied: 0,
            membership: vec![(base_index, peers)],
            election_deadline_ms: now_ms,
            heartbeat_due_ms: now_ms,
            leader_contact_ms: now_ms,
            votes: BTreeSet::new(),
            progress: BTreeMap::new(),
            barrier_index: 0,
            leader_signalled: false,
            catchup_to: None,
            boot_cluster_size: None,
            peer_state_cluster_size: None,
            rescue: None,
            waiting_for_leader: false,
            removed_at_ms: BTreeMap::new(),
            last_hard_state: HardState::default(),
            pending_truncate: None,
            pending_snapshot: None,
            messages: Vec::new(),
            applied_queue: Vec::new(),
            healthy_gap: Cell::new(None),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Inputs.

    /// Handles one message from `from`.
    pub fn step(&mut self, now_ms: u64, from: PeerId, msg: Message, rng: &mut dyn RngCore) {
        let now = self.observe(now_ms);
        if from == self.config.id {
            return; // Nothing is ever sent to self; a looped-back message is ignored.
        }
        let msg_term = msg.term();
        if msg_term > self.term {
            if let Message::RequestVote { transfer: false, .. } = msg {
                if self.ignores_vote_request(from, now) {
                    return;
                }
            }
            self.become_follower(msg_term, now, rng);
        } else if msg_term < self.term {
            self.reply_stale(from, &msg);
            return;
        }
        assert_eq!(msg_term, self.term);
        match msg {
            Message::RequestVote { last_log_index, last_log_term, transfer, .. } => {
                if !transfer && self.ignores_vote_request(from, now) {
                    return;
                }
                self.handle_vote_request(from, last_log_index, last_log_term, now, rng);
            }
            Message::Vote { granted, .. } => self.handle_vote(from, granted, now),
            Message::Append { prev_index, prev_term, entries, commit, .. } => {
                self.handle_append(from, prev_index, prev_term, entries, commit, now, rng);
            }
            Message::AppendResponse { success, match_index, hint, .. } => {
                self.handle_append_response(from, success, match_index, hint, now);
            }
            Message::InstallSnapshot { snapshot, .. } => {
                self.handle_install_snapshot(from, snapshot, now, rng);
            }
            Message::TimeoutNow { .. } => {
                if self.role != Role::Leader {
                    self.campaign_with(now, rng, true);
                }
            }
        }
    }

    /// Timers: elections for followers and candidates, heartbeats and the lost-quorum check
    /// for leaders. Call every ~100 ms of local time.
    pub fn tick(&mut self, now_ms: u64, rng: &mut dyn RngCore) {
        let now = self.observe(now_ms);
        if self.role == Role::Leader {
            if !self.leader_has_quorum_contact(now) {
                self.become_follower(self.term, now, rng);
                return;
            }
            if now >= self.heartbeat_due_ms {
                self.heartbeat_due_ms = now + self.config.heartbeat_ms;
                self.broadcast_append();
            }
        } else if now >= self.election_deadline_ms {
            if self.can_campaign() {
                self.campaign_with(now, rng, false);
            } else {
                self.reset_election_timer(now, rng);
            }
        }
    }

    /// Starts an election now (e.g. bootstrap of a fresh group). No-op for observers,
    /// non-members and leaders. Extra to the brief's API; `tick` does the same on timeout.
    pub fn campaign(&mut self, now_ms: u64, rng: &mut dyn RngCore) {
        let now = self.observe(now_ms);
        if self.role != Role::Leader {
            self.campaign_with(now, rng, false);
        }
    }

    /// Appends `data` as a new entry of `term`. Fenced: only a leader past its apply barrier,
    /// and only for its own term. `NotLeader` is checked before `StaleTerm`.
    pub fn propose(&mut self, now_ms: u64, term: Term, data: EntryData) -> Result<Index, ProposeError> {
        let now = self.observe(now_ms);
        if !self.leader() {
            return Err(ProposeError::NotLeader);
        }
        if term != self.term {
            return Err(ProposeError::StaleTerm { proposed: term, current: self.term });
        }
        let pending = self.log.last_index() - self.commit;
        if pending >= PROPOSALS_PENDING_MAX {
            return Err(ProposeError::TooManyPending { pending });
        }
        if let EntryData::AddPeer(peer) | EntryData::RemovePeer(peer) = data {
            if self.membership_change_pending() {
                return Err(ProposeError::MembershipChangePending);
            }
            if let (EntryData::AddPeer(_), Some(&removed_ms)) = (&data, self.removed_at_ms.get(&peer)) {
                let allowed_at_ms = removed_ms.saturating_add(self.config.peer_readd_ban_ms);
                if now < allowed_at_ms {
                    return Err(ProposeError::PeerBanned { peer, allowed_at_ms });
                }
            }
        }
        let index = self.log.last_index() + 1;
        self.log.append(Entry { term: self.term, index, data });
        self.broadcast_append();
        Ok(index)
    }

    /// Cold boot in a mixed cluster: when only `size` of the configured servers can ever join
    /// (the others run without JetStream), count quorums against `size` (at least 2) so the
    /// group can elect a leader. Refused once any leader has been seen, as NRG refuses it.
    pub fn adjust_boot_cluster_size(&mut self, size: usize) -> Result<(), RaftError> {
        if self.had_leader {
            return Err(RaftError::LeaderAlreadySeen);
        }
        let size = size.max(2);
        if size > self.peers_now().len() {
            return Err(RaftError::ClusterSizeAbovePeers { size, peers: self.peers_now().len() });
        }
        self.boot_cluster_size = Some(size);
        self.end_rescue_if_natural_quorum_reached();
        Ok(())
    }

    /// NRG `EvictPeers`: a leaderless member drops `peers` (servers the meta layer removed for
    /// good) from its own membership, so a group that lost its quorum to peer removals can
    /// elect again. Only when the peers left besides this node could not reach a quorum
    /// without it: otherwise they might commit entries this node would never see. Never
    /// evicts this node, never empties the group, never from an empty log. Local and not persisted (the caller repeats
    /// it after a restart). Returns the peers evicted.
    pub fn evict_peers(&mut self, peers: &[PeerId]) -> Result<Vec<PeerId>, RaftError> {
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
        if !voting.contains(&me) {
            return Ok(Vec::new());
        }
        let remaining = voting.iter().filter(|p| **p != me && !peers.contains(p)).count();
        let quorum = voting.len() / 2 + 1;
        if remaining >= quorum {
            return Err(RaftError::EvictQuorumPossible { remaining });
        }
        let (evicted, kept): (Vec<PeerId>, Vec<PeerId>) = voting.iter().partition(|p| **p != me && peers.contains(p));
        if evicted.is_empty() || kept.is_empty() {
            return Ok(Vec::new());
        }
        let at = self.membership.last().map_or(0, |(at, _)| *at).max(self.commit);
        self.membership.push((at, kept));
        self.end_rescue_if_natural_quorum_reached();
        Ok(evicted)
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

    /// Count quorums against the leader's `size` (the natural size when it covers every
    /// member), and end a rescue the new quorum makes unnecessary (NRG `recalcQuorum`).
    fn adopt_cluster_size(&mut self, size: usize) {
        self.peer_state_cluster_size = (size < self.peers_now().len()).then_some(size);
        self.end_rescue_if_natural_quorum_reached();
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
        assert!(self.quorum() == quorum && quorum <= self.natural_quorum());
        Ok(())
    }

    /// Stop campaigning for good (NRG observer mode after a meta apply error); a leader steps
    /// down at once.
    pub fn become_observer(&mut self, now_ms: u64, rng: &mut dyn RngCore) {
        self.config.observer = true;
        if self.role == Role::Leader {
            self.step_down(now_ms, None, rng);
        }
    }

    /// Leader steps down. With `Some(preferred)` it first sends `preferred` what it lacks and
    /// `TimeoutNow`, so that peer campaigns at once (its vote requests carry `transfer`).
    pub fn step_down(&mut self, now_ms: u64, preferred: Option<PeerId>, rng: &mut dyn RngCore) {
        let now = self.observe(now_ms);
        if self.role != Role::Leader {
            return;
        }
        // NRG hands over even without a preference: to a peer that holds the whole log and was
        // heard from within an election timeout, drawn at random (Go map order). An observer
        // ignores the hand-over, and an election follows.
        let preferred = preferred.or_else(|| {
            let last = self.log.last_index();
            let recent = now.saturating_sub(self.config.election_timeout_ms_min);
            let current: Vec<PeerId> = self
                .progress
                .iter()
                .filter(|(id, pr)| **id != self.config.id && pr.match_index == last && pr.contact_ms >= recent)
                .map(|(id, _)| *id)
                .collect();
            (!current.is_empty()).then(|| current[(rng.next_u64() % current.len() as u64) as usize])
        });
        if let Some(peer) = preferred.filter(|p| *p != self.config.id) {
            if self.progress.contains_key(&peer) {
                self.send_append(peer);
            }
            self.messages.push((peer, Message::TimeoutNow { term: self.term }));
        }
        self.become_follower(self.term, now, rng);
    }

    /// The upper layer has applied up to `index` (which it was handed).
    pub fn applied_to(&mut self, index: Index) {
        assert!(index <= self.handed_up, "applied {index} beyond handed-up {}", self.handed_up);
        self.applied = self.applied.max(index);
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
        self.log.compact_to(index);
        // Keep only the membership in force at `index` and later changes.
        let keep_from = self.membership.iter().rposition(|(at, _)| *at <= index).unwrap_or(0);
        self.membership.drain(..keep_from);
        self.membership[0].0 = index;
        self.snapshot = Some(snapshot.clone());
        self.pending_snapshot = Some(snapshot);
        Ok(())
    }

    /// True when `ready()` would return something.
    pub fn has_ready(&self) -> bool {
        self.hard_state_to_persist() != self.last_hard_state
            || self.pending_truncate.is_some()
            || self.log.last_index() > self.persisted_last
            || self.pending_snapshot.is_some()
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

    // ---------------------------------------------------------------------------------------
    // Roles and elections.

    /// Advances the local clock; a rescue whose time is up lapses here, so no input is ever
    /// handled under an expired rescue.
    fn observe(&mut self, now_ms: u64) -> u64 {
        self.clock_ms = self.clock_ms.max(now_ms);
        if self.rescue.is_some_and(|r| self.clock_ms >= r.expires_ms) {
            self.rescue = None;
        }
        self.clock_ms
    }

    pub(super) fn reset_election_timer(&mut self, now: u64, rng: &mut dyn RngCore) {
        let timeout = rng.gen_range(self.config.election_timeout_ms_min..=self.config.election_timeout_ms_max);
        self.election_deadline_ms = now + timeout;
    }

    pub(super) fn is_member(&self, peer: PeerId) -> bool {
        self.peers_now().binary_search(&peer).is_ok()
    }

    pub(super) fn peers_now(&self) -> &[PeerId] {
        &self.membership.last().expect("membership never empty").1
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
        }
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

    pub(super) fn can_campaign(&self) -> bool {
        !self.config.observer && self.is_member(self.config.id)
    }

    /// Votes an election needs: a quorum, or every member while waiting for a leader.
    pub(super) fn votes_needed(&self) -> usize {
        if self.waiting_for_leader {
            self.peers_now().len()
        } else {
            self.quorum()
        }
    }

    /// This node joins a group that already runs: it votes, but wins an election only with
    /// every member's vote until a leader brought it up to its commit. Only for a node with
    /// nothing in its log (a joiner).
    pub fn wait_for_leader(&mut self) {
        assert_eq!(self.log.last_index(), 0, "only an empty node waits to hear from a leader");
        self.waiting_for_leader = true;
    }

    /// Leader lease (like etcd's check-quorum lease): a follower that heard from its leader
    /// within `election_timeout_ms_min` ignores non-transfer vote requests, so a returning
    /// partitioned node cannot disrupt a healthy leader. A leader ignores them from
    /// non-members (a removed peer never learns its removal and would keep campaigning).
    fn ignores_vote_request(&self, from: PeerId, now: u64) -> bool {
        match self.role {
            Role::Follower => {
                self.leader_id.is_some() && now < self.leader_contact_ms + self.config.election_timeout_ms_min
            }
            Role::Leader => !self.is_member(from),
            Role::Candidate => false,
        }
    }

    fn campaign_with(&mut self, now: u64, rng: &mut dyn RngCore, transfer: bool) {
        assert!(self.role != Role::Leader);
        if !self.can_campaign() {
            return;
        }
        let term_before = self.term;
        self.term += 1;
        self.role = Role::Candidate;
        self.voted_for = Some(self.config.id);
        self.leader_id = None;
        self.votes = BTreeSet::from([self.config.id]);
        self.reset_election_timer(now, rng);
        assert_eq!(self.term, term_before + 1);
        if self.votes.len() >= self.votes_needed() {
            self.become_leader(now);
            return;
        }
        let request = Message::RequestVote {
            term: self.term,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            transfer,
        };
        let voters: Vec<PeerId> = self.peers_now().iter().copied().filter(|p| *p != self.config.id).collect();
        for peer in voters {
            self.messages.push((peer, request.clone()));
        }
    }

    /// Moves to follower in `term` (>= current). Same-term calls are stepdowns or a candidate
    /// learning the leader.
    pub(super) fn become_follower(&mut self, term: Term, now: u64, rng: &mut dyn RngCore) {
        assert!(term >= self.term, "terms never decrease ({} -> {term})", self.term);
        if self.role == Role::Leader && self.leader_signalled {
            self.applied_queue.push(Applied::Signal(Signal::SteppedDown { term: self.term }));
        }
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.leader_id = None;
        } else if self.role == Role::Leader {
            self.leader_id = None;
        }
        // A follower keeps its election deadline when a higher term arrives: a candidate with a
        // stale log would otherwise silence everyone with each new term and never let an
        // up-to-date node time out (a livelock). Granting a vote or hearing a leader resets it.
        let was_follower = self.role == Role::Follower;
        self.role = Role::Follower;
        self.votes.clear();
        self.progress.clear();
        self.leader_signalled = false;
        self.barrier_index = 0;
        if !was_follower {
            self.reset_election_timer(now, rng);
        }
    }

    fn become_leader(&mut self, now: u64) {
        assert_eq!(self.role, Role::Candidate);
        assert!(self.votes.len() >= self.votes_needed());
        let recorded = self.note_leader(self.config.id);
        assert!(recorded, "a node wins at most once per term");
        self.role = Role::Leader;
        self.barrier_index = self.log.last_index();
        self.leader_signalled = false;
        let last_before_noop = self.log.last_index();
        self.progress = self
            .peers_now()
            .iter()
            .filter(|p| **p != self.config.id)
            .map(|p| (*p, Progress::new(last_before_noop, now)))
            .collect();
        let index = self.log.last_index() + 1;
        // NRG sends its peer state first; only a replicated size is news to the followers (a
        // group that never adjusted keeps the plain no-op).
        let data = match self.peer_state_cluster_size {
            Some(size) => EntryData::PeerState { cluster_size: u32::try_from(size).expect("small") },
            None => EntryData::LeaderNoop,
        };
        self.log.append(Entry { term: self.term, index, data });
        self.heartbeat_due_ms = now + self.config.heartbeat_ms;
        self.broadcast_append();
        self.check_barrier();
    }

    /// Records `leader` as the leader of the current term. Two different leaders in one term
    /// is a safety violation: asserted, unless a deliberate bug is switched on (then the
    /// message is dropped and checkers report the divergence).
    pub(super) fn note_leader(&mut self, leader: PeerId) -> bool {
        if let Some(known) = self.leader_id {
            if known != leader {
                assert!(
                    self.config.bugs.any(),
                    "node {}: two leaders ({known}, {leader}) in term {}",
                    self.config.id,
                    self.term
                );
                return false;
            }
        }
        self.leader_id = Some(leader);
        self.had_leader = true;
        true
    }

    pub(super) fn check_barrier(&mut self) {
        if self.role == Role::Leader && !self.leader_signalled && self.applied >= self.barrier_index {
            self.leader_signalled = true;
            self.applied_queue.push(Applied::Signal(Signal::BecameLeader { term: self.term }));
        }
    }

    fn leader_has_quorum_contact(&self, now: u64) -> bool {
        let window = self.config.lost_quorum_ms();
        let mut heard = usize::from(self.is_member(self.config.id));
        for (peer, pr) in &self.progress {
            if self.is_member(*peer) && now < pr.contact_ms.saturating_add(window) {
                heard += 1;
            }
        }
        heard >= self.quorum()
    }

    fn handle_vote_request(
        &mut self,
        from: PeerId,
        last_log_index: Index,
        last_log_term: Term,
        now: u64,
        rng: &mut dyn RngCore,
    ) {
        let up_to_date = (last_log_term, last_log_index) >= (self.log.last_term(), self.log.last_index());
        let free = self.voted_for == Some(from) || (self.voted_for.is_none() && self.leader_id.is_none());
        let granted = up_to_date && free && self.role == Role::Follower;
        if granted {
            self.voted_for = Some(from);
            self.reset_election_timer(now, rng);
        }
        // The vote goes out in the same Ready as the hard state recording it.
        self.messages.push((from, Message::Vote { term: self.term, granted }));
    }

    fn handle_vote(&mut self, from: PeerId, granted: bool, now: u64) {
        if self.role != Role::Candidate || !granted || !self.is_member(from) {
            return;
        }
        self.votes.insert(from);
        let counted = self.votes.iter().filter(|p| self.is_member(**p)).count();
        if counted >= self.votes_needed() {
            self.become_leader(now);
        }
    }

    fn reply_stale(&mut self, from: PeerId, msg: &Message) {
        // Tell a stale leader or candidate about the newer term so it steps down.
        let reply = match msg {
            Message::Append { .. } | Message::InstallSnapshot { .. } => {
                Message::AppendResponse { term: self.term, success: false, match_index: 0, hint: 0 }
            }
            Message::RequestVote { .. } => Message::Vote { term: self.term, granted: false },
            _ => return,
        };
        self.messages.push((from, reply));
    }

    // ---------------------------------------------------------------------------------------
    // Persistence bookkeeping.

    /// The hard state as it should be on disk. Commit only covers entries handed out in an
    /// earlier Ready, so a durable commit never points past the durable log.
    pub(super) fn hard_state_to_persist(&self) -> HardState {
        let voted_for = if self.config.bugs.vote_not_persisted { None } else { self.voted_for };
        HardState { term: self.term, voted_for, commit: self.commit.min(self.persisted_last) }
    }

    fn membership_change_pending(&self) -> bool {
        // Bounded by PROPOSALS_PENDING_MAX uncommitted entries.
        self.log
            .slice(self.commit + 1, self.log.last_index(), usize::MAX)
            .iter()
            .any(|e| matches!(e.data, EntryData::AddPeer(_) | EntryData::RemovePeer(_)))
    }

    pub(super) fn peers_at(&self, index: Index) -> &[PeerId] {
        let position = self.membership.iter().rposition(|(at, _)| *at <= index).unwrap_or(0);
        &self.membership[position].1
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
        self.end_rescue_if_natural_quorum_reached();
    }

    /// Queues committed, durable entries for the upper layer.
    pub(super) fn hand_up(&mut self) {
        let to = self.commit.min(self.persisted_last);
        // Bounded by the committed, durable entries not yet handed up.
        while self.handed_up < to {
            let entry = self.log.get(self.handed_up + 1).expect("entry to hand up is held").clone();
            self.applied_queue.push(Applied::Entry(entry));
            self.handed_up += 1;
        }
        assert!(self.handed_up <= self.commit);
    }
}
