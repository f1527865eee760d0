//! Coverage probes: behaviours of the consensus core worth knowing a run reached (the cause of
//! each role change, which commit rule fired, which snapshot-install path a follower took).
//! The core only queues them (bounded); the driver hands them to the engine's coverage map,
//! naming the meta group's apart from the asset groups'. They change nothing in the run.

/// Probes queued between two drains, at most: one input hits a handful; the rest are dropped
/// (coverage counts, it does not decide).
pub const PROBES_PENDING_MAX: usize = 1_024;

macro_rules! probes {
    ($($variant:ident => $slug:literal, $what:literal;)*) => {
        /// A behaviour of the consensus core.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Probe {
            $($variant,)*
        }

        impl Probe {
            pub const ALL: &'static [Probe] = &[$(Probe::$variant,)*];

            /// The probe's name in the meta group (`meta = true`) or in an asset group.
            pub fn name(self, meta: bool) -> &'static str {
                match (self, meta) {
                    $(
                        (Probe::$variant, true) => concat!("raft.meta.", $slug),
                        (Probe::$variant, false) => concat!("raft.asset.", $slug),
                    )*
                }
            }

            pub fn what(self) -> &'static str {
                match self {
                    $(Probe::$variant => $what,)*
                }
            }
        }
    };
}

probes! {
    CampaignTimeout => "campaign.election-timeout", "a follower's election timer ran out and it campaigns";
    CampaignAgain => "campaign.candidate-again", "a candidate's election timed out (a split vote or no quorum) and it campaigns again";
    CampaignTransfer => "campaign.transfer", "a leader handed over: the chosen peer campaigns at once";
    WonElection => "leader.won", "a candidate won an election";
    WonWithoutVotes => "leader.won-alone", "a member won with its own vote alone (a group of one)";
    LeaderSawHigherTerm => "leader.deposed-by-higher-term", "a leader heard a higher term and became a follower";
    LeaderLostQuorum => "leader.lost-quorum", "a leader heard from no quorum in time and stepped down";
    LeaderRemovedItself => "leader.removed-itself", "a leader committed its own removal and left";
    CandidateHeardLeader => "candidate.heard-leader", "a candidate heard from this term's leader and follows it";
    StepDownHandOver => "stepdown.hand-over", "a leader stepped down, handing over to a caught-up peer";
    StepDownNoPeerCaughtUp => "stepdown.no-peer-caught-up", "a leader stepped down with no caught-up peer to hand over to";
    StepDownFollowerLags => "stepdown.follower-lags", "a leader stepped down while a follower lagged behind its log";
    VoteGranted => "vote.granted", "a vote was granted";
    VoteRefusedStaleLog => "vote.refused-stale-log", "a vote was refused: the candidate's log is behind";
    VoteRefusedTaken => "vote.refused-already-voted", "a vote was refused: already voted or a leader is known this term";
    VoteRefusedNonMember => "vote.refused-non-member", "a vote was refused: the candidate is not a member here";
    MembershipRebased => "membership.rebased", "a member took the membership its leader's log starts from";
    VoteRefusedJoiner => "vote.refused-joiner", "a joiner waiting for a leader refused a candidate that is no joiner";
    EvictedRunsFirst => "vote.evicted-runs-first", "a node on its eviction's membership refused a stale candidate and runs soon";
    VoteIgnoredLease => "vote.ignored-lease", "a vote request was ignored under the leader lease";
    StaleTerm => "message.stale-term", "a message of an older term was answered with the newer term";
    CommitCurrentTerm => "commit.current-term", "a leader committed on a quorum of an entry of its term";
    CommitOldTermHeldBack => "commit.old-term-held-back", "a quorum held an older term's entry the leader may not commit by counting (Raft's Figure 8)";
    CommitOldTerm => "commit.old-term", "a leader committed an older term's entry by counting (only with the bug switch)";
    CommitFollower => "commit.follower", "a follower learned a higher commit from its leader";
    AppendMismatch => "append.mismatch", "a follower refused an append whose previous entry it does not hold";
    AppendTruncated => "append.truncate-conflict", "a follower truncated a conflicting suffix of its log";
    AppendBelowSnapshot => "append.below-snapshot", "a follower skipped entries already in its snapshot";
    SnapshotSent => "snapshot.sent", "a leader sent a snapshot to a follower behind its compacted log";
    ClusterSizeRestated => "snapshot.cluster-size-restated", "a leader with a replicated cluster size stated it again after sending a snapshot";
    SnapshotCompacted => "snapshot.compacted", "the log was compacted into a snapshot";
    InstallStale => "snapshot.install-stale", "a follower got a snapshot at or below its commit";
    InstallLogHoldsPoint => "snapshot.install-log-holds-point", "a follower got a snapshot whose last entry its log holds: keeps the suffix";
    InstallReplacesLog => "snapshot.install-replaces-log", "a follower with a snapshot replaced its log with the leader's snapshot";
    InstallFirst => "snapshot.install-first", "a follower with no snapshot of its own installed the leader's";
    MembershipAdded => "membership.add-committed", "a peer's addition committed";
    MembershipRemoved => "membership.remove-committed", "a peer's removal committed";
    EvictedMembershipLogged => "membership.eviction-logged", "a leader elected on its own eviction's membership put those members in its log";
    MembershipReplaced => "membership.members-committed", "a leader's list of members committed";
    JoinerCaughtUp => "joiner.caught-up", "a joining member caught up and may campaign";
    RestoredFromSnapshot => "restart.from-snapshot", "a member restarted from a snapshot and a log";
    RestoredFromLog => "restart.from-log", "a member restarted from its log alone";
}

impl Probe {
    /// Whether the meta group (`meta = true`) or an asset group can reach this probe at all.
    /// Only asset groups join as learners (a scale-up's new member waits for its leader; the
    /// meta group starts every server on one membership and adds peers by entries) and evict
    /// removed members (so only they log `Members` entries); only the meta group replicates a
    /// cluster size.
    pub fn reachable_in(self, meta: bool) -> bool {
        match self {
            Probe::JoinerCaughtUp
            | Probe::VoteRefusedJoiner
            | Probe::MembershipRebased
            | Probe::EvictedMembershipLogged
            | Probe::MembershipReplaced
            | Probe::EvictedRunsFirst => !meta,
            Probe::ClusterSizeRestated => meta,
            _ => true,
        }
    }

    /// Reached only with a bug switch on.
    pub fn bug_switch_only(self) -> bool {
        self == Probe::CommitOldTerm
    }
}
