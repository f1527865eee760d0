//! `RaftNode`: the state machine of one group member. Inputs are `step` (a message), `tick`
//! (timers), `propose`, `step_down`, `applied_to` and `compact`; outputs pile up until the driver
//! takes them with `ready()`. This file holds the node's fields, its construction and the inputs;
//! the rest are further `impl RaftNode` blocks, each in a file named after what it holds:
//! `election.rs` (roles, votes, the leader lease), `membership.rs` (members, cluster size,
//! quorum, rescue), `replication.rs` (appends, commits, snapshots), `ready.rs` (the output loop
//! and the upper layer's answers to it) and `queries.rs`.

use std::collections::{BTreeMap, BTreeSet};

use rand::RngCore;

use super::config::Config;
use super::error::{ProposeError, RaftError};
use super::log::RaftLog;
use super::probe::{Probe, PROBES_PENDING_MAX};
use super::progress::Progress;
use super::stamp::Stamp;
use super::types::{Applied, Entry, EntryData, HardState, Index, Message, PeerId, Role, Signal, Snapshot, Term};

/// Upper bound on uncommitted entries a leader accepts (`ProposeError::TooManyPending`).
pub const PROPOSALS_PENDING_MAX: u64 = 4096;

/// Upper bound on the learners a leader replicates to (`set_learners`).
pub const LEARNERS_MAX: usize = 64;

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
    /// The membership is this node's own, from an eviction ([`RaftNode::evict_peers`]), not
    /// one the group agreed on: like a joiner, it wins only with every member's vote until a
    /// leader brings it up to its commit; unlike a joiner, it knows its log and votes by it.
    pub(super) evicted_membership: bool,
    /// NRG `PauseApply`: committed entries are not handed up and the node does not campaign
    /// until `resume_apply`. Not persisted: a restart resumes.
    pub(super) apply_paused: bool,
    /// A leader's hand-over (`TimeoutNow`) arrived while applies were paused: campaign on
    /// resume (NRG `lxfer`).
    pub(super) transfer_while_paused: bool,
    /// When each peer's removal committed here (re-add ban).
    pub(super) removed_at_ms: BTreeMap<PeerId, u64>,
    pub(super) last_hard_state: HardState,
    pub(super) pending_truncate: Option<Index>,
    pub(super) pending_snapshot: Option<Snapshot>,
    /// The membership the log starts from, taken from a leader, not yet handed out to disk.
    pub(super) pending_base: Option<Vec<PeerId>>,
    pub(super) messages: Vec<(PeerId, Message)>,
    pub(super) applied_queue: Vec<Applied>,
    /// The commit - applied gap when `tick` last ran: `healthy()` counts a smaller gap now as
    /// forward progress. Sampled by the node's own tick so that asking changes nothing.
    pub(super) apply_gap_at_tick: Option<Index>,
    /// Coverage probes hit since the driver last drained them ([`Self::take_probes`]).
    pub(super) probes: Vec<Probe>,
    /// See [`Self::stamp`]. Private to this file: the other files restamp through
    /// [`Self::restamp`].
    stamp: Stamp,
}

/// An active meta rescue: the lowered quorum and when it lapses (local time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Rescue {
    pub(super) quorum: usize,
    pub(super) expires_ms: u64,
}

/// Members as the node keeps them: sorted, each once (membership lookups binary-search).
pub(super) fn normalise_peers(mut peers: Vec<PeerId>) -> Vec<PeerId> {
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
        node.probe(if snapshot.is_some() { Probe::RestoredFromSnapshot } else { Probe::RestoredFromLog });
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
        node.restamp();
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
            evicted_membership: false,
            apply_paused: false,
            transfer_while_paused: false,
            removed_at_ms: BTreeMap::new(),
            last_hard_state: HardState::default(),
            pending_truncate: None,
            pending_snapshot: None,
            pending_base: None,
            messages: Vec::new(),
            applied_queue: Vec::new(),
            apply_gap_at_tick: None,
            probes: Vec::new(),
            stamp: Stamp::fresh(),
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
            self.probe(Probe::StaleTerm);
            self.reply_stale(from, &msg);
            return;
        }
        assert_eq!(msg_term, self.term);
        match msg {
            Message::RequestVote { last_log_index, last_log_term, transfer, needs_every_vote, .. } => {
                if !transfer && self.ignores_vote_request(from, now) {
                    self.probe(Probe::VoteIgnoredLease);
                    return;
                }
                self.handle_vote_request(from, last_log_index, last_log_term, needs_every_vote, now, rng);
            }
            Message::Vote { granted, .. } => self.handle_vote(from, granted, now),
            Message::Append { prev_index, prev_term, entries, commit, base, .. } => {
                self.handle_append(from, prev_index, prev_term, entries, commit, base, now, rng);
            }
            Message::AppendResponse { success, match_index, hint, .. } => {
                self.handle_append_response(from, success, match_index, hint, now);
            }
            Message::InstallSnapshot { snapshot, .. } => {
                self.handle_install_snapshot(from, snapshot, now, rng);
            }
            Message::TimeoutNow { .. } => {
                if self.apply_paused {
                    self.transfer_while_paused = true;
                } else if self.role != Role::Leader {
                    self.probe(Probe::CampaignTransfer);
                    self.campaign_with(now, rng, true);
                }
            }
        }
    }

    /// Timers: elections for followers and candidates, heartbeats and the lost-quorum check
    /// for leaders. Call every ~100 ms of local time.
    pub fn tick(&mut self, now_ms: u64, rng: &mut dyn RngCore) {
        let now = self.observe(now_ms);
        assert!(self.applied <= self.commit);
        self.apply_gap_at_tick = Some(self.commit - self.applied);
        if self.role == Role::Leader {
            if !self.leader_has_quorum_contact(now) {
                self.probe(Probe::LeaderLostQuorum);
                self.become_follower(self.term, now, rng);
                return;
            }
            if now >= self.heartbeat_due_ms {
                self.heartbeat_due_ms = now + self.config.heartbeat_ms;
                self.broadcast_append();
            }
        } else if now >= self.election_deadline_ms {
            if self.can_campaign() {
                let again = self.role == Role::Candidate;
                self.probe(if again { Probe::CampaignAgain } else { Probe::CampaignTimeout });
                self.campaign_with(now, rng, false);
            } else {
                self.reset_election_timer(now, rng);
            }
        }
    }

    /// The earliest local time at which [`Self::tick`] may do more than [`Self::raise_clock_to`]
    /// does, while no input reaches the node: its heartbeat or election deadline, the first
    /// time a follower's contact could lapse (a leader then tests its quorum), a rescue's
    /// expiry; 0 when the gap the last tick recorded is not today's. Early, never late: a tick
    /// before it only raises the clock, so a server may skip it (see `GroupSet::tick_walk`).
    pub fn tick_due_ms(&self) -> u64 {
        if self.apply_gap_at_tick != Some(self.commit - self.applied) {
            return 0;
        }
        let timer_ms = if self.role == Role::Leader {
            let window = self.config.lost_quorum_ms();
            let lapse_ms = self.progress.values().map(|pr| pr.contact_ms.saturating_add(window)).min();
            lapse_ms.map_or(self.heartbeat_due_ms, |lapse| lapse.min(self.heartbeat_due_ms))
        } else {
            self.election_deadline_ms
        };
        self.rescue.map_or(timer_ms, |r| timer_ms.min(r.expires_ms))
    }

    /// What a tick before [`Self::tick_due_ms`] does: the local clock moves on. A driver may
    /// do it late, before the node's next input, as no output depends on it till then.
    pub fn raise_clock_to(&mut self, now_ms: u64) {
        self.clock_ms = self.clock_ms.max(now_ms);
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
        self.restamp();
        self.broadcast_append();
        Ok(index)
    }

    /// NRG `trackPeer` for a group that keeps its own membership (the meta group): its leader
    /// proposes to add a server it heard from that is no member, unless that server's removal
    /// committed here within the re-add ban ([`Config::peer_readd_ban_ms`]). `Ok(None)`:
    /// nothing to add (not leader, or already a member).
    pub fn add_unknown_peer(&mut self, now_ms: u64, peer: PeerId) -> Result<Option<Index>, ProposeError> {
        if self.role != Role::Leader || peer == self.config.id || self.is_member(peer) {
            return Ok(None);
        }
        self.propose(now_ms, self.term, EntryData::AddPeer(peer)).map(Some)
    }

    /// Stop campaigning for good (NRG observer mode after a meta apply error); a leader steps
    /// down at once.
    pub fn become_observer(&mut self, now_ms: u64, rng: &mut dyn RngCore) {
        self.config.observer = true;
        self.restamp();
        if self.role == Role::Leader {
            self.step_down(now_ms, None, rng);
        }
    }

    /// Leader steps down and hands over to a peer that can win: `preferred` if it is caught up
    /// and was heard from within three heartbeats, else one such peer at random. It sends the
    /// heir what it lacks and `TimeoutNow`, so the heir campaigns at once (its vote requests
    /// carry `transfer`). Returns the peer it handed over to, if any.
    pub fn step_down(&mut self, now_ms: u64, preferred: Option<PeerId>, rng: &mut dyn RngCore) -> Option<PeerId> {
        let now = self.observe(now_ms);
        if self.role != Role::Leader {
            return None;
        }
        // NRG takes a preferred peer heard from within three heartbeats, else the first healthy
        // one (Go map order), and hands over with an entry its in-order routes deliver after
        // everything the heir lacks. Our network reorders, so a lagging heir could campaign
        // before it catches up and lose: only a caught-up peer is an heir here (the rule
        // raft-handover-heir-wins checks). An observer ignores the hand-over, and an election
        // follows.
        let last = self.log.last_index();
        let recent = now.saturating_sub(3 * self.config.heartbeat_ms);
        let me = self.config.id;
        // A learner (see `set_learners`) has progress but no vote.
        let members = self.peers_now().to_vec();
        let can_win = |id: PeerId, pr: &Progress| {
            id != me && members.contains(&id) && pr.match_index == last && pr.contact_ms >= recent
        };
        let preferred = preferred.filter(|p| self.progress.get(p).is_some_and(|pr| can_win(*p, pr))).or_else(|| {
            let current: Vec<PeerId> =
                self.progress.iter().filter(|(id, pr)| can_win(**id, pr)).map(|(id, _)| *id).collect();
            (!current.is_empty()).then(|| current[(rng.next_u64() % current.len() as u64) as usize])
        });
        let last = self.log.last_index();
        if self.progress.iter().any(|(id, pr)| members.contains(id) && pr.match_index < last) {
            self.probe(Probe::StepDownFollowerLags);
        }
        let heir = preferred.filter(|p| *p != self.config.id);
        self.probe(if heir.is_some() { Probe::StepDownHandOver } else { Probe::StepDownNoPeerCaughtUp });
        if let Some(peer) = heir {
            if self.progress.contains_key(&peer) {
                self.send_append(peer);
            }
            self.messages.push((peer, Message::TimeoutNow { term: self.term }));
        }
        self.become_follower(self.term, now, rng);
        heir
    }

    /// Moves whenever anything these queries answer may have changed: `term`, `role`,
    /// `leader`, `commit_index`, `applied_index`, `last_index`, `last_term`, `snapshot_index`,
    /// `peers`, `may_campaign`, `election_votes_needed`, `quorum_size`, `cluster_size` (so a
    /// reader that remembered them may skip reading them again while it holds). Timers, votes,
    /// progress, the known leader and the output queues are not covered.
    pub fn stamp(&self) -> Stamp {
        self.stamp
    }

    /// After any write to what [`Self::stamp`] covers.
    pub(super) fn restamp(&mut self) {
        self.stamp = Stamp::fresh();
    }

    /// Queue a coverage probe (dropped beyond [`PROBES_PENDING_MAX`]: coverage never decides).
    pub(super) fn probe(&mut self, probe: Probe) {
        if self.probes.len() < PROBES_PENDING_MAX {
            self.probes.push(probe);
        }
    }

    /// Whether coverage probes wait to be taken.
    pub fn has_probes(&self) -> bool {
        !self.probes.is_empty()
    }

    /// The coverage probes hit since the last call, oldest first.
    pub fn take_probes(&mut self) -> std::vec::Drain<'_, Probe> {
        self.probes.drain(..)
    }

    /// Advances the local clock; a rescue whose time is up lapses here, so no input is ever
    /// handled under an expired rescue.
    pub(super) fn observe(&mut self, now_ms: u64) -> u64 {
        self.clock_ms = self.clock_ms.max(now_ms);
        if self.rescue.is_some_and(|r| self.clock_ms >= r.expires_ms) {
            self.rescue = None;
            self.restamp();
        }
        self.clock_ms
    }
}
