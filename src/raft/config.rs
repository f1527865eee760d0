//! Static per-node configuration and fault switches.

use super::error::RaftError;
use super::types::PeerId;

/// Deliberate protocol bugs, for negative simulation scenarios. All off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RaftBugs {
    /// Count replicas of an old-term entry to advance commit (violates Raft Figure 8).
    pub commit_old_term: bool,
    /// Acknowledge appended entries before they are durable (the driver reads this flag).
    pub ack_before_fsync: bool,
    /// Do not persist the vote before answering a vote request: `Ready::hard_state` never
    /// carries `voted_for`, so a crash forgets it.
    pub vote_not_persisted: bool,
    /// Allow the cold-boot cluster size adjustment on a node whose log holds entries, as NRG
    /// does: it keeps "a leader existed" in memory only, so a restarted node with a stale
    /// view may shrink its quorum.
    pub boot_size_after_restart: bool,
}

impl RaftBugs {
    /// True when any bug is switched on. Then conflicting-leader observations are tolerated
    /// (the message is dropped) instead of asserted, so checkers can report them.
    pub fn any(&self) -> bool {
        self.commit_old_term || self.ack_before_fsync || self.vote_not_persisted || self.boot_size_after_restart
    }
}

/// Per-node configuration. Defaults follow NRG (spec §1.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub id: PeerId,
    /// Leader heartbeat period. Default 1000.
    pub heartbeat_ms: u64,
    /// Election timeout is drawn from [min, max] at each reset. Default 4000.
    pub election_timeout_ms_min: u64,
    /// Default 9000.
    pub election_timeout_ms_max: u64,
    /// Never campaigns (still votes and replicates).
    pub observer: bool,
    /// Upper bound on entries in one Append. Default 64.
    pub max_entries_per_append: usize,
    /// A removed peer may not be re-added for this long. Default 300_000.
    pub peer_readd_ban_ms: u64,
    /// A meta rescue (`RaftNode::rescue`) lapses after this long (NRG
    /// `rescueQuorumTimeout`). Default 300_000.
    pub rescue_expiry_ms: u64,
    pub bugs: RaftBugs,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            id: 0,
            heartbeat_ms: 1000,
            election_timeout_ms_min: 4000,
            election_timeout_ms_max: 9000,
            observer: false,
            max_entries_per_append: 64,
            peer_readd_ban_ms: 300_000,
            rescue_expiry_ms: 300_000,
            bugs: RaftBugs::default(),
        }
    }
}

impl Config {
    /// One rule per check; the error names the values.
    pub fn validate(&self) -> Result<(), RaftError> {
        if self.heartbeat_ms == 0 {
            return Err(RaftError::InvalidConfig("heartbeat_ms must be > 0".into()));
        }
        if self.election_timeout_ms_min <= self.heartbeat_ms {
            return Err(RaftError::InvalidConfig(format!(
                "election_timeout_ms_min ({}) must exceed heartbeat_ms ({})",
                self.election_timeout_ms_min, self.heartbeat_ms
            )));
        }
        if self.election_timeout_ms_max < self.election_timeout_ms_min {
            return Err(RaftError::InvalidConfig(format!(
                "election_timeout_ms_max ({}) < election_timeout_ms_min ({})",
                self.election_timeout_ms_max, self.election_timeout_ms_min
            )));
        }
        if self.max_entries_per_append == 0 {
            return Err(RaftError::InvalidConfig("max_entries_per_append must be > 0".into()));
        }
        if self.rescue_expiry_ms == 0 {
            return Err(RaftError::InvalidConfig("rescue_expiry_ms must be > 0".into()));
        }
        Ok(())
    }

    /// A leader that heard from less than a quorum for this long steps down
    /// (NRG `lostQuorumInterval` = 10 heartbeats).
    pub fn lost_quorum_ms(&self) -> u64 {
        self.heartbeat_ms.saturating_mul(10)
    }
}
