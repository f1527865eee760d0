//! Wire and storage types: ids, log entries, hard state, snapshots, messages, and the
//! `Ready` batch handed to the driver.

use serde::{Deserialize, Serialize};

/// A server index; unique inside one group.
pub type PeerId = u32;
/// A Raft term. Never decreases inside one node.
pub type Term = u64;
/// A log index. Index 0 is the empty prefix; the first real entry has index 1.
pub type Index = u64;

/// What one log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryData {
    /// Opaque upper-layer payload. Encoded as bytes (the same bytes in bincode as a sequence
    /// of `u8`), so that a digest over every message takes it in one write, not one per byte.
    Normal(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Add a peer to the group; takes effect when committed.
    AddPeer(PeerId),
    /// Remove a peer from the group; takes effect when committed.
    RemovePeer(PeerId),
    /// First entry of every leader's term (NRG sends peer state here). Committing it commits
    /// every earlier-term entry (Raft Figure 8). It is handed up like any entry so the upper
    /// layer can report `applied_to` past it; the upper layer ignores its content.
    LeaderNoop,
    /// NRG's peer state when the leader counts quorums against an adjusted cluster size
    /// (`AdjustClusterSize`, or a cold-boot size it led with): followers adopt the size once
    /// it commits. Stands in for `LeaderNoop` as the first entry of such a leader's term, so
    /// a group whose size was never adjusted never writes one. Last variant: the encoding of
    /// the others is unchanged.
    PeerState { cluster_size: u32 },
    /// NRG's peer state with its known peers, for a leader elected on its own eviction's
    /// membership ([`super::RaftNode::evict_peers`]): the first entry of its term, in place of
    /// `LeaderNoop`, so that the membership it leads becomes the group's, in the log. Followers
    /// (and the leader, replaying its log after a restart) take these members when it commits.
    /// Without it the log kept describing the membership before the eviction, and a server
    /// that took its membership from that log could count a group of one, itself, that never
    /// held what the evicting leader committed alone (churn seed 16104 of v14). Last variant:
    /// the encoding of the others is unchanged.
    Members(Vec<PeerId>),
}

impl EntryData {
    /// True for entries that change the membership when committed.
    pub fn is_membership(&self) -> bool {
        matches!(self, EntryData::AddPeer(_) | EntryData::RemovePeer(_) | EntryData::Members(_))
    }

    /// True for entries that change the group's configuration when committed: its members or
    /// the cluster size its quorums count against.
    pub fn is_config(&self) -> bool {
        self.is_membership() || matches!(self, EntryData::PeerState { .. })
    }
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub index: Index,
    pub data: EntryData,
}

/// The state that must be durable before messages go out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<PeerId>,
    pub commit: Index,
}

/// The upper layer's state at `last_index`, plus the membership in force there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub last_index: Index,
    pub last_term: Term,
    /// Membership in force at `last_index`, sorted.
    pub peers: Vec<PeerId>,
    /// Upper layer's state at `last_index`; opaque to Raft. Encoded as bytes, as
    /// [`EntryData::Normal`].
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// Messages between group members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    RequestVote {
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
        /// Set when a leader hands over (stepdown to a preferred peer): voters skip their
        /// leader-lease check.
        transfer: bool,
        /// The candidate wins only with every member's vote (a joiner still waiting for a
        /// leader, or a node on its own eviction's membership), so a joiner may grant it
        /// (see `handle_vote_request`).
        needs_every_vote: bool,
    },
    Vote {
        term: Term,
        granted: bool,
    },
    Append {
        term: Term,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: Index,
        /// The membership the leader's log starts from, sent with an append from the log's
        /// first entry (`prev_index` 0): a joiner started from the assignment's peers, which
        /// need not be the ones the group's log starts from, and counts its membership from it.
        base: Option<Vec<PeerId>>,
    },
    AppendResponse {
        term: Term,
        success: bool,
        /// On success: the follower's last index known to match the leader.
        /// On failure: the rejected `prev_index`, so the leader can discard stale rejections.
        match_index: Index,
        /// On failure: the leader should retry with `prev_index = hint` (the follower's last
        /// index, or the index before the first entry of the conflicting term). 0 on success.
        hint: Index,
    },
    InstallSnapshot {
        term: Term,
        snapshot: Snapshot,
    },
    TimeoutNow {
        term: Term,
    },
}

impl Message {
    /// The sender's term, carried by every message.
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote { term, .. }
            | Message::Vote { term, .. }
            | Message::Append { term, .. }
            | Message::AppendResponse { term, .. }
            | Message::InstallSnapshot { term, .. }
            | Message::TimeoutNow { term } => *term,
        }
    }
}

/// A node's role in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// Upper-layer signals, ordered relative to committed entries inside `Ready::applied`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// This node became leader AND has applied (reported through `applied_to`) every entry up
    /// to its last index at election time: the apply barrier. Only then is `leader()` true.
    BecameLeader { term: Term },
    /// This node stopped being leader. Emitted only after a `BecameLeader` for that term.
    SteppedDown { term: Term },
    /// A snapshot install started: what follows is catch-up.
    CatchupStarted,
    /// Replay/catch-up finished (the NRG `nil` entry): once after start (new or restored)
    /// when everything committed at start has been handed up, and after each catch-up.
    CatchupDone,
}

/// `became leader t2`, `stepped down t2`, `catch-up started`, `catch-up done`.
impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signal::BecameLeader { term } => write!(f, "became leader t{term}"),
            Signal::SteppedDown { term } => write!(f, "stepped down t{term}"),
            Signal::CatchupStarted => write!(f, "catch-up started"),
            Signal::CatchupDone => write!(f, "catch-up done"),
        }
    }
}

/// One item of the ordered stream to the upper layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    Entry(Entry),
    Snapshot(Snapshot),
    Signal(Signal),
}

/// Everything produced since the previous `ready()`. The driver handles the fields in order:
/// persist `hard_state`; persist `snapshot` (then drop log entries <= its last index); apply
/// `truncate_from`; append `entries` (they continue the log after the snapshot, if any);
/// fsync; send `messages`; hand `applied` to the upper layer (calling `applied_to` as it
/// goes). Then it asks `has_ready()` again: entries become committable and appliable only
/// once they were handed out in an earlier `Ready`. `hard_state.commit` never points past
/// entries handed out in an earlier `Ready`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Must be durable (fsynced) BEFORE any message in `messages` is sent.
    pub hard_state: Option<HardState>,
    /// Remove every persisted entry with index >= this before appending `entries`.
    pub truncate_from: Option<Index>,
    /// Append to the durable log, contiguous and ascending; durable before `messages` are
    /// sent (unless `bugs.ack_before_fsync`, which the driver honours).
    pub entries: Vec<Entry>,
    /// A snapshot (installed from the leader or taken by compaction) to persist; persisted log
    /// entries <= its last index may be dropped.
    pub snapshot: Option<Snapshot>,
    /// The membership the log starts from changed (a joiner took its leader's): record it
    /// before the log entries, as a restart counts its membership from it.
    pub base_peers: Option<Vec<PeerId>>,
    pub messages: Vec<(PeerId, Message)>,
    /// In order: committed entries, snapshots and signals for the upper layer.
    pub applied: Vec<Applied>,
}

impl Ready {
    /// True when the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.truncate_from.is_none()
            && self.entries.is_empty()
            && self.snapshot.is_none()
            && self.base_peers.is_none()
            && self.messages.is_empty()
            && self.applied.is_empty()
    }
}
