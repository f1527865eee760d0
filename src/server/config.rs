//! The scenario's `[system]` table: timers, membership, mixed modes and versions, clusters
//! and capacities, as one server reads them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sim::NodeIndex;

use crate::meta::API_LEVEL;

/// API levels a scenario may give a server (NATS levels are small integers).
pub const API_LEVEL_MAX: i64 = 1_000;

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
    /// Servers running without JetStream: they route and answer server-stats requests but
    /// run no meta group (NATS mixed mode). The cold-boot check shrinks the cluster size to
    /// the JetStream servers so the others can elect a leader.
    pub jetstream_disabled: Vec<NodeIndex>,
    /// Streams per account at most (NATS MaxStreams); none when absent.
    pub max_streams_per_account: Option<u32>,
    /// Servers running another version, with its API level (a mixed-version cluster during
    /// an upgrade or downgrade); the rest run [`API_LEVEL`]. Assets that require a higher
    /// level than a server's are unsupported there (§7).
    pub api_levels: Vec<ServerApiLevel>,
    /// Clusters of a super-cluster, each a list of servers. Empty: one cluster of them all.
    /// A stream without a placement cluster goes to its client's cluster first, then to the
    /// others in this order (NATS client "alternates").
    pub clusters: Vec<ClusterSpec>,
    /// Servers that hold a bounded number of streams; a member at its bound refuses a new
    /// one with "insufficient resources" (§2.7 assignment results).
    pub stream_capacity: Vec<ServerCapacity>,
}

/// Streams one server may hold at most.
pub const STREAM_CAPACITY_MAX: u32 = 10_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    pub name: String,
    pub nodes: Vec<NodeIndex>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerCapacity {
    pub node: NodeIndex,
    pub streams: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerApiLevel {
    pub node: NodeIndex,
    pub level: i64,
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
            jetstream_disabled: vec![],
            max_streams_per_account: None,
            api_levels: vec![],
            clusters: vec![],
            stream_capacity: vec![],
        }
    }
}

impl ServerConfig {
    /// The API level server `node` runs.
    pub fn api_level(&self, node: NodeIndex) -> i64 {
        self.api_levels.iter().find(|l| l.node == node).map_or(API_LEVEL, |l| l.level)
    }

    /// The cluster server `node` is in: its name, or `None` without clusters.
    pub fn cluster_of(&self, node: NodeIndex) -> Option<&str> {
        self.clusters.iter().find(|c| c.nodes.contains(&node)).map(|c| c.name.as_str())
    }

    /// Streams server `node` may hold, if bounded.
    pub fn stream_capacity(&self, node: NodeIndex) -> Option<u32> {
        self.stream_capacity.iter().find(|c| c.node == node).map(|c| c.streams)
    }

    fn validate_clusters(&self, servers: u32) -> Result<(), String> {
        let mut seen = BTreeMap::new();
        for (i, cluster) in self.clusters.iter().enumerate() {
            if !crate::meta::request::valid_name(&cluster.name) {
                return Err(format!("clusters: {:?} is not a valid cluster name", cluster.name));
            }
            if self.clusters[..i].iter().any(|c| c.name == cluster.name) {
                return Err(format!("clusters: cluster {:?} is listed twice", cluster.name));
            }
            if cluster.nodes.is_empty() {
                return Err(format!("clusters: cluster {:?} has no servers", cluster.name));
            }
            for &node in &cluster.nodes {
                if node >= servers {
                    return Err(format!("clusters: no server {node} in a cluster of {servers}"));
                }
                if let Some(other) = seen.insert(node, &cluster.name) {
                    return Err(format!("clusters: server {node} is in both {other:?} and {:?}", cluster.name));
                }
            }
        }
        if !self.clusters.is_empty() && seen.len() != servers as usize {
            let missing = (0..servers).find(|n| !seen.contains_key(n)).expect("fewer seen than servers");
            return Err(format!("clusters: server {missing} is in no cluster"));
        }
        for (i, entry) in self.stream_capacity.iter().enumerate() {
            if entry.node >= servers {
                return Err(format!("stream_capacity: no server {} in a cluster of {servers}", entry.node));
            }
            if entry.streams > STREAM_CAPACITY_MAX {
                return Err(format!(
                    "stream_capacity: {} streams on server {} is above {STREAM_CAPACITY_MAX}",
                    entry.streams, entry.node
                ));
            }
            if self.stream_capacity[..i].iter().any(|e| e.node == entry.node) {
                return Err(format!("stream_capacity: server {} is listed twice", entry.node));
            }
        }
        Ok(())
    }

    pub fn validate(&self, servers: u32) -> Result<(), String> {
        self.validate_clusters(servers)?;
        for (i, entry) in self.api_levels.iter().enumerate() {
            if entry.node >= servers {
                return Err(format!("api_levels: no server {} in a cluster of {servers}", entry.node));
            }
            if !(0..=API_LEVEL_MAX).contains(&entry.level) {
                return Err(format!(
                    "api_levels: level {} of server {} is outside 0..={API_LEVEL_MAX}",
                    entry.level, entry.node
                ));
            }
            if self.api_levels[..i].iter().any(|e| e.node == entry.node) {
                return Err(format!("api_levels: server {} is listed twice", entry.node));
            }
        }
        for (field, list) in [
            ("observers", &self.observers),
            ("initial_peers", &self.initial_peers),
            ("jetstream_disabled", &self.jetstream_disabled),
        ] {
            if let Some(bad) = list.iter().find(|&&n| n >= servers) {
                return Err(format!("{field}: no server {bad} in a cluster of {servers}"));
            }
        }
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
