//! What crosses a server's boundary: messages between servers, client operations, scenario
//! expectations and the scenario's `[system]` settings.

use serde::{Deserialize, Serialize};
use sim::NodeIndex;

use crate::raft::{Index, Message};

/// Messages between servers. Every raft message names its group, so one server can run many.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMsg {
    Raft {
        group: String,
        msg: Message,
    },
    /// A client operation a non-leader passes to the leader it knows (one hop at most).
    Forward {
        op: MetaOp,
    },
}

/// Client operations on the meta group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum MetaOp {
    /// Propose `count` entries through the meta leader.
    Propose {
        count: u32,
    },
    /// Leader steps down, optionally handing over to `preferred`.
    Stepdown {
        #[serde(default)]
        preferred: Option<NodeIndex>,
    },
    AddPeer {
        peer: NodeIndex,
    },
    RemovePeer {
        peer: NodeIndex,
    },
    /// Take a meta snapshot now and compact the log.
    Snapshot {},
}

/// Proposals per client operation are bounded.
pub const PROPOSE_COUNT_MAX: u32 = 1_000;

/// Scenario expectations about the meta group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum MetaExpect {
    /// `leader()` on `node` (true only past the apply barrier).
    Leader {
        node: NodeIndex,
        is: bool,
    },
    /// Exactly one running server is leader, and every running member names it.
    OneLeader {},
    /// `leaderless()` on `node`.
    Leaderless {
        node: NodeIndex,
        is: bool,
    },
    /// `group_leader()` on `node`.
    GroupLeader {
        node: NodeIndex,
        equals: Option<NodeIndex>,
    },
    /// `current()` on `node`.
    Current {
        node: NodeIndex,
        is: bool,
    },
    /// `healthy()` on `node`.
    Healthy {
        node: NodeIndex,
        is: bool,
    },
    HadPreviousLeader {
        node: NodeIndex,
        is: bool,
    },
    /// `node` has applied at least `index`.
    AppliedAtLeast {
        node: NodeIndex,
        index: Index,
    },
    /// `node` holds this membership.
    Peers {
        node: NodeIndex,
        equals: Vec<NodeIndex>,
    },
    /// `node` refused to start its meta group (e.g. a corrupt snapshot or log).
    MetaRefused {
        node: NodeIndex,
        is: bool,
    },
    /// `node` has installed at least `count` snapshots sent by a leader.
    SnapshotsInstalled {
        node: NodeIndex,
        at_least: u64,
    },
    /// `node` has never been leader in this run.
    NeverLeader {
        node: NodeIndex,
    },
    /// At least `count` entries were applied somewhere (the oracle's committed log).
    CommittedAtLeast {
        count: u64,
    },
}

/// The scenario's `[system]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub heartbeat_ms: u64,
    pub election_timeout_ms_min: u64,
    pub election_timeout_ms_max: u64,
    /// How often each server ticks its raft groups, in its own clock.
    pub tick_ms: u64,
    /// Take a snapshot and compact once this many entries were applied since the last one.
    pub snapshot_every: u64,
    /// Entries in one Append at most (1 splits every batch, for hand-built histories).
    pub max_entries_per_append: usize,
    /// Servers that never campaign.
    pub observers: Vec<NodeIndex>,
    /// The meta group's first members; every server when empty. Others join by add-peer.
    pub initial_peers: Vec<NodeIndex>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            heartbeat_ms: 1_000,
            election_timeout_ms_min: 4_000,
            election_timeout_ms_max: 9_000,
            tick_ms: 100,
            snapshot_every: 256,
            max_entries_per_append: 64,
            observers: vec![],
            initial_peers: vec![],
        }
    }
}

impl ServerConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.heartbeat_ms == 0 || self.heartbeat_ms > 60_000 {
            return Err(format!("heartbeat_ms must be between 1 and 60000, got {}", self.heartbeat_ms));
        }
        if self.election_timeout_ms_min <= self.heartbeat_ms {
            return Err(format!(
                "election_timeout_ms_min ({}) must exceed heartbeat_ms ({})",
                self.election_timeout_ms_min, self.heartbeat_ms
            ));
        }
        if self.election_timeout_ms_max < self.election_timeout_ms_min || self.election_timeout_ms_max > 600_000 {
            return Err(format!(
                "election_timeout_ms_max ({}) must be between election_timeout_ms_min ({}) and 600000",
                self.election_timeout_ms_max, self.election_timeout_ms_min
            ));
        }
        if self.tick_ms == 0 || self.tick_ms > self.heartbeat_ms {
            return Err(format!("tick_ms must be between 1 and heartbeat_ms, got {}", self.tick_ms));
        }
        if self.max_entries_per_append == 0 || self.max_entries_per_append > 10_000 {
            return Err(format!(
                "max_entries_per_append must be between 1 and 10000, got {}",
                self.max_entries_per_append
            ));
        }
        if self.snapshot_every == 0 {
            return Err("snapshot_every must be at least 1".into());
        }
        Ok(())
    }
}
