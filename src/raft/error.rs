//! Operating errors. Broken invariants are panics (assertions), not errors.

use super::types::{Index, PeerId, Term};

/// Errors from building, restoring or compacting a node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RaftError {
    #[error("invalid raft config: {0}")]
    InvalidConfig(String),
    #[error("log not contiguous: expected index {expected}, found {found}")]
    LogNotContiguous { expected: Index, found: Index },
    #[error("log term decreases at index {index}: term {term} after term {previous}")]
    TermDecreases { index: Index, term: Term, previous: Term },
    #[error("commit index {commit} beyond last log index {last}")]
    CommitBeyondLog { commit: Index, last: Index },
    #[error("hard state term {term} behind last log term {log_term}")]
    TermBehindLog { term: Term, log_term: Term },
    #[error("cannot compact to {index}: applied index is {applied}")]
    CompactBeyondApplied { index: Index, applied: Index },
    #[error("cluster size cannot be adjusted: a leader was already seen")]
    LeaderAlreadySeen,
    #[error("cluster size cannot be adjusted: the log holds entries up to {last_index}, so a leader existed")]
    LogShowsLeader { last_index: Index },
    #[error("cluster size {size} above the {peers} known peers")]
    ClusterSizeAbovePeers { size: usize, peers: usize },
    #[error("cannot compact to {index}: log already starts after {first_kept_after}")]
    CompactNotAhead { index: Index, first_kept_after: Index },
    #[error("rescue quorum {quorum} must be between 1 and the current quorum {current}")]
    RescueBadQuorum { quorum: usize, current: usize },
    #[error("rescue refused: leader {leader} is known")]
    RescueLeaderKnown { leader: PeerId },
    #[error("rescue refused: not a voting member")]
    RescueNotVoting,
    #[error("rescue refused: the log is empty")]
    RescueEmptyLog,
    #[error("eviction refused: the log is empty")]
    EvictEmptyLog,
    #[error("eviction refused: leader {leader} is known")]
    EvictLeaderKnown { leader: PeerId },
    #[error("eviction refused: the {remaining} peers left could still reach quorum without this node")]
    EvictQuorumPossible { remaining: usize },
    #[error("pausing applies refused: this node is the leader")]
    PauseWhileLeader,
}

/// Why a proposal was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("not leader (or leader apply barrier not passed)")]
    NotLeader,
    #[error("stale term: proposal for term {proposed}, current term {current}")]
    StaleTerm { proposed: Term, current: Term },
    #[error("a membership change is still uncommitted")]
    MembershipChangePending,
    #[error("peer {peer} was removed recently; re-add allowed at {allowed_at_ms} ms")]
    PeerBanned { peer: PeerId, allowed_at_ms: u64 },
    #[error("too many uncommitted proposals ({pending})")]
    TooManyPending { pending: u64 },
}
