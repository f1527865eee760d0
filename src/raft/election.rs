//! Elections and votes: campaigning, granting and counting votes, the leader lease that lets a
//! follower ignore disruptive candidates, moving between roles, and the apply barrier a new
//! leader waits behind before it signals `BecameLeader`.

use std::collections::BTreeSet;

use rand::{Rng, RngCore};

use super::error::RaftError;
use super::node::RaftNode;
use super::probe::Probe;
use super::progress::Progress;
use super::types::{Applied, Entry, EntryData, Index, Message, PeerId, Role, Signal, Term};

/// NRG's campaign timeout (`randCampaignTimeout`, 100 ms plus up to 700 ms): how soon a node
/// that refused a stale candidate runs itself (see [`RaftNode::handle_vote_request`]), never
/// later than its election timeout.
pub(super) const CAMPAIGN_TIMEOUT_MS_MIN: u64 = 100;
pub(super) const CAMPAIGN_TIMEOUT_MS_MAX: u64 = 800;

impl RaftNode {
    /// A new randomized election deadline: one draw from the caller's RNG.
    pub(super) fn reset_election_timer(&mut self, now: u64, rng: &mut dyn RngCore) {
        let timeout = rng.gen_range(self.config.election_timeout_ms_min..=self.config.election_timeout_ms_max);
        self.election_deadline_ms = now + timeout;
    }

    /// Observers and non-members never start an election, nor does a joiner that holds part of
    /// a leader's log while it waits for a leader to bring it up to its commit: its membership
    /// comes from a prefix of that leader's log, which need not count anyone holding what the
    /// leader committed since (churn seed 16104 of v14: a server taken back after its eviction
    /// replayed the log of a leader that led on its eviction's membership up to the membership
    /// before it, a group of one, itself, and lacked what that leader had committed alone).
    /// An empty joiner still campaigns for every vote (a group whose members all joined before
    /// any data existed), and so does one its own eviction took in.
    pub(super) fn can_campaign(&self) -> bool {
        let waits_holding_entries = self.waiting_for_leader && !self.evicted_membership && self.log.last_index() > 0;
        !self.config.observer && !self.apply_paused && self.is_member(self.config.id) && !waits_holding_entries
    }

    /// NRG `PauseApply`: stop handing committed entries up, and stop campaigning, until
    /// [`Self::resume_apply`]. Refused on a leader; a candidate steps back to follower.
    pub fn pause_apply(&mut self, now_ms: u64, rng: &mut dyn RngCore) -> Result<(), RaftError> {
        let now = self.observe(now_ms);
        if self.role == Role::Leader {
            return Err(RaftError::PauseWhileLeader);
        }
        if self.role == Role::Candidate {
            self.become_follower(self.term, now, rng);
        }
        self.apply_paused = true;
        self.restamp();
        Ok(())
    }

    /// NRG `ResumeApply`: hand up what committed meanwhile, then campaign at once if a leader
    /// handed over while paused, else after a fresh election timeout. No-op when not paused.
    pub fn resume_apply(&mut self, now_ms: u64, rng: &mut dyn RngCore) {
        let now = self.observe(now_ms);
        if !self.apply_paused {
            return;
        }
        self.apply_paused = false;
        self.restamp();
        self.hand_up();
        if std::mem::take(&mut self.transfer_while_paused) && self.role != Role::Leader && self.can_campaign() {
            self.campaign_with(now, rng, true);
        } else {
            self.reset_election_timer(now, rng);
        }
    }

    /// Votes an election needs, of [`Self::voters`]: a quorum, or every one while waiting for
    /// a leader (with no removal pending, of the members).
    pub(super) fn votes_needed(&self) -> usize {
        let voters = self.voters().len();
        if self.needs_every_vote() {
            voters
        } else {
            self.voters_quorum(voters)
        }
    }

    /// This node joins a group that already runs: it votes, but wins an election only with
    /// every member's vote until a leader brought it up to its commit. For a joiner, also one
    /// restarted with part of the leader's log: what it holds need not reach what a leader
    /// committed without it (churn seed 7960: a joiner restarted with 2 of 3 committed entries
    /// could be elected by another joiner whose membership, from the assignment, left out the
    /// leader's).
    pub fn wait_for_leader(&mut self) {
        assert!(!self.had_leader, "a node waits for a leader only at start");
        self.waiting_for_leader = true;
        self.restamp();
    }

    /// Leader lease (like etcd's check-quorum lease): a follower that heard from its leader
    /// within `election_timeout_ms_min` ignores non-transfer vote requests, so a returning
    /// partitioned node cannot disrupt a healthy leader. A leader ignores them from
    /// non-members (a removed peer never learns its removal and would keep campaigning).
    pub(super) fn ignores_vote_request(&self, from: PeerId, now: u64) -> bool {
        match self.role {
            Role::Follower => {
                self.leader_id.is_some() && now < self.leader_contact_ms + self.config.election_timeout_ms_min
            }
            Role::Leader => !self.is_member(from),
            Role::Candidate => false,
        }
    }

    /// Runs for the next term. `transfer` marks a leader's hand-over: voters that follow a
    /// live leader ignore other vote requests (the lease), but not these.
    pub(super) fn campaign_with(&mut self, now: u64, rng: &mut dyn RngCore, transfer: bool) {
        assert!(self.role != Role::Leader);
        if !self.can_campaign() {
            return;
        }
        let term_before = self.term;
        self.term += 1;
        self.role = Role::Candidate;
        self.restamp();
        self.voted_for = Some(self.config.id);
        self.leader_id = None;
        self.votes = BTreeSet::from([self.config.id]);
        self.reset_election_timer(now, rng);
        assert_eq!(self.term, term_before + 1);
        if self.votes_win() {
            self.probe(Probe::WonWithoutVotes);
            self.become_leader(now);
            return;
        }
        let request = Message::RequestVote {
            term: self.term,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            transfer,
            // Also where a quorum is every member anyway (a group of two): a member still
            // waiting to join grants such a candidate, which would otherwise need the vote of a
            // member that never grants one (churn seeds 2688, 4261, 5619 and 6993 of v14: a
            // group of two, one member an empty joiner, the other holding the log).
            needs_every_vote: self.needs_every_vote() || self.votes_needed() >= self.voters().len(),
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
        if self.role == Role::Leader && term > self.term {
            self.probe(Probe::LeaderSawHigherTerm);
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
        self.restamp();
        if !was_follower {
            self.reset_election_timer(now, rng);
        }
    }

    /// Won the election: track every peer's progress and append the term's first entry.
    fn become_leader(&mut self, now: u64) {
        assert_eq!(self.role, Role::Candidate);
        assert!(self.votes_win());
        let recorded = self.note_leader(self.config.id);
        assert!(recorded, "a node wins at most once per term");
        self.probe(Probe::WonElection);
        self.role = Role::Leader;
        // An evicted membership stays this node's own view until its term commits an entry:
        // winning with every vote does not bring an empty member taken in up to date, and
        // deposed at once (churn seed 662 of v14: by that member's own candidacy, delivered
        // at the heal), the node would need that member's vote without asking for every
        // vote, which a waiting joiner does not grant.
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
        // NRG sends its peer state first; only a replicated size, or members of this node's own
        // eviction, are news to the followers (a group whose members all came from its log, and
        // whose size was never adjusted, keeps the plain no-op).
        let data = match self.peer_state_cluster_size {
            _ if self.evicted_membership => {
                self.probe(Probe::EvictedMembershipLogged);
                EntryData::Members(self.peers_now().to_vec())
            }
            Some(size) => EntryData::PeerState { cluster_size: u32::try_from(size).expect("small") },
            None => EntryData::LeaderNoop,
        };
        self.log.append(Entry { term: self.term, index, data });
        self.restamp();
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

    /// Signals `BecameLeader` once the upper layer applied all the log held at election time
    /// (the apply barrier): proposals are fenced until then.
    pub(super) fn check_barrier(&mut self) {
        if self.role == Role::Leader && !self.leader_signalled && self.applied >= self.barrier_index {
            self.leader_signalled = true;
            self.restamp();
            self.applied_queue.push(Applied::Signal(Signal::BecameLeader { term: self.term }));
        }
    }

    /// A leader that heard from no quorum within `lost_quorum_ms` steps down (checked on tick).
    pub(super) fn leader_has_quorum_contact(&self, now: u64) -> bool {
        let window = self.config.lost_quorum_ms();
        let me = self.config.id;
        let heard = |peer: PeerId| {
            peer == me || self.progress.get(&peer).is_some_and(|pr| now < pr.contact_ms.saturating_add(window))
        };
        self.is_quorum(heard)
    }

    /// Grants a vote to a candidate whose log is at least as up to date, once per term, and
    /// never while a leader of this term is known, nor to a candidate outside this node's
    /// membership: a server dropped from a group that missed its removal counts the old
    /// members, and with one of their votes would lead a group that went on without it.
    pub(super) fn handle_vote_request(
        &mut self,
        from: PeerId,
        last_log_index: Index,
        last_log_term: Term,
        needs_every_vote: bool,
        now: u64,
        rng: &mut dyn RngCore,
    ) {
        let up_to_date = (last_log_term, last_log_index) >= (self.log.last_term(), self.log.last_index());
        let free = self.voted_for == Some(from) || (self.voted_for.is_none() && self.leader_id.is_none());
        // A membership is known from the log: a candidate whose log is strictly newer than
        // this node's has seen changes this node has not, its own addition among them. NRG
        // grants by the log alone (processVoteRequest); refusing such a candidate as a
        // non-member left a stale member and the group's only other member refusing each other
        // for good (churn seed 5624 of v14: n1 on [0,1,4] with 67 entries, n2 on [1,2] with 135).
        let newer = (last_log_term, last_log_index) > (self.log.last_term(), self.log.last_index());
        let member = self.is_member(from) || newer;
        // Raft's learner rule: a joiner knows neither the log nor the membership the group
        // committed, so its vote could elect a stale member that the group left behind
        // (default seed 6944 of v13: a member removed while down, back on the assignment,
        // elected by a joiner's vote without the entries committed since). It grants only a
        // candidate that must win every member's vote anyway (another joiner, or a node on
        // its eviction's membership).
        let learner = self.waiting_for_leader && !needs_every_vote;
        let granted = up_to_date && free && member && !learner && self.role == Role::Follower;
        if granted {
            self.voted_for = Some(from);
            self.reset_election_timer(now, rng);
        }
        self.probe(match (granted, up_to_date, member, learner) {
            (true, ..) => Probe::VoteGranted,
            (false, false, ..) => Probe::VoteRefusedStaleLog,
            (false, true, false, _) => Probe::VoteRefusedNonMember,
            (false, true, true, true) => Probe::VoteRefusedJoiner,
            (false, true, true, false) => Probe::VoteRefusedTaken,
        });
        // The vote goes out in the same Ready as the hard state recording it.
        self.messages.push((from, Message::Vote { term: self.term, granted }));
        // A node on its eviction's membership needs every vote, the stale candidate's too,
        // and that candidate can never win this node's: run soon rather than at the next
        // election timeout, by which the candidate may have taken the next term again (churn
        // seed 14302 of v13: an empty learner an eviction took in outran the evicting member's
        // timer until the liveness deadline). Soon, as NRG's `processVoteRequest` does (a
        // random campaign timeout), not at once: every member of the eviction refuses the same
        // broadcast request, and run at once they would all run in the same term, each needing
        // every vote and giving its own, a split vote the stale candidate's next timeout would
        // repeat (churn seed 19076 of v14: two evicting members of an R3 group split five times
        // in a row after the heal, each time the empty learner timed out first).
        if !up_to_date && self.evicted_membership && self.role == Role::Follower && self.leader_id.is_none() {
            self.probe(Probe::EvictedRunsFirst);
            let soon = now + rng.gen_range(CAMPAIGN_TIMEOUT_MS_MIN..CAMPAIGN_TIMEOUT_MS_MAX);
            self.election_deadline_ms = self.election_deadline_ms.min(soon);
        }
    }

    /// Counts a granted vote from a member; enough of them wins the election.
    pub(super) fn handle_vote(&mut self, from: PeerId, granted: bool, now: u64) {
        if self.role != Role::Candidate || !granted || !self.is_member(from) {
            return;
        }
        self.votes.insert(from);
        if self.votes_win() {
            self.become_leader(now);
        }
    }

    /// The votes granted so far win: a quorum, or every member while waiting for a leader.
    /// Votes count among [`Self::voters`], the latest membership in this node's log, as NRG's
    /// and Raft's do: a candidate that counted against an older one than its leader committed
    /// under could win without what that leader committed (a group of three shrunk to one:
    /// its leader commits the second removal alone, while a member that has not learned the
    /// first committed would count a majority of all three).
    pub(super) fn votes_win(&self) -> bool {
        self.wins_with(|peer| self.votes.contains(&peer))
    }

    /// Whether the votes of the peers `grants` picks, its own included if picked, would elect
    /// this node.
    pub(super) fn wins_with(&self, grants: impl Fn(PeerId) -> bool) -> bool {
        let voters = self.voters();
        !voters.is_empty() && voters.iter().filter(|p| grants(**p)).count() >= self.votes_needed()
    }

    pub(super) fn reply_stale(&mut self, from: PeerId, msg: &Message) {
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
}
