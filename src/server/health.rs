//! Health on a server: the sans-IO checks of [`crate::meta::queries`] fed with facts about the
//! raft groups this server runs. The adapter only reads; like NATS healthz it never starts,
//! stops or repairs anything.

use super::group_set::GroupSet;
use super::jetstream::MetaLayer;
use super::wire::META;
use super::Server;
use crate::meta::queries::{self, HealthContext, NodeFacts};
use crate::meta::{ConsumerKey, LocalAssets, MetaState, StreamKey};
use crate::raft::RaftNode;

/// [`NodeFacts`] over one server's groups, at that server's clock. A group this server does
/// not run (R1 assets, non-members, a group whose files refused to load) has no facts.
pub struct GroupFacts<'a> {
    groups: &'a GroupSet,
    /// The server's monotonic clock: raft's leader-contact times are on it.
    now_ms: u64,
}

impl<'a> GroupFacts<'a> {
    pub fn new(groups: &'a GroupSet, now_ms: u64) -> Self {
        GroupFacts { groups, now_ms }
    }

    fn node(&self, group: &str) -> Option<&'a RaftNode> {
        self.groups.get(group).map(|g| &g.node)
    }
}

impl NodeFacts for GroupFacts<'_> {
    fn leader(&self, group: &str) -> Option<bool> {
        self.node(group).map(RaftNode::leader)
    }

    fn current(&self, group: &str) -> Option<bool> {
        self.node(group).map(|n| n.current(self.now_ms))
    }

    fn healthy(&self, group: &str) -> Option<bool> {
        self.node(group).map(|n| n.healthy(self.now_ms))
    }

    fn leaderless(&self, group: &str) -> Option<bool> {
        self.node(group).map(RaftNode::leaderless)
    }

    fn catching_up(&self, group: &str) -> Option<bool> {
        // The node, not the Catchup signals: it hands both signals up in one batch, so the
        // upper layer never sees the window between them, while the node knows until the
        // snapshot is applied.
        self.node(group).map(RaftNode::catching_up)
    }

    fn had_previous_leader(&self, group: &str) -> Option<bool> {
        self.node(group).map(RaftNode::had_previous_leader)
    }

    fn created_ms(&self, group: &str) -> Option<u64> {
        self.node(group).map(RaftNode::created_ms)
    }

    fn write_error(&self, group: &str) -> Option<String> {
        self.groups.get(group).and_then(|g| g.write_error().map(str::to_string))
    }
}

impl Server {
    /// Facts about this server's groups at its last input.
    pub fn facts(&self) -> GroupFacts<'_> {
        GroupFacts::new(&self.groups, self.now_ms)
    }

    /// healthz as this server would answer it (§6): the meta layer, then unless `meta_only`
    /// every stream and consumer it is a member of.
    pub fn healthz(&self, meta_only: bool) -> Result<(), String> {
        let meta = self.groups.meta();
        let ctx = HealthContext {
            me: self.me,
            now_ms: self.wall_ms,
            meta_group: META,
            // The meta layer stages its replay at start; until the flush the applied state
            // is partial (§3.5).
            recovering: meta.and_then(|g| g.meta.as_deref()).is_some_and(MetaLayer::startup_recovering),
            meta_only,
        };
        let (state, local) = self.meta_views();
        queries::healthz(&state, &local, &self.facts(), &ctx)
    }

    /// The health of stream `key` on this server (§6 `isStreamHealthy`).
    pub fn stream_health(&self, key: &StreamKey) -> Result<(), String> {
        let (state, local) = self.meta_views();
        queries::stream_health(&state, &local, &self.facts(), key)
    }

    /// The health of consumer `key` on this server (§6 `isConsumerHealthy`).
    pub fn consumer_health(&self, key: &ConsumerKey) -> Result<(), String> {
        let (state, local) = self.meta_views();
        queries::consumer_health(&state, &local, &self.facts(), key, self.wall_ms)
    }

    /// The meta layer's applied state and local assets, or empty ones when the meta group is
    /// not running here (the checks then report that first).
    fn meta_views(&self) -> (std::borrow::Cow<'_, MetaState>, std::borrow::Cow<'_, LocalAssets>) {
        use std::borrow::Cow;
        match self.groups.meta().and_then(|g| g.meta.as_deref()) {
            Some(m) => (Cow::Borrowed(&m.state), Cow::Borrowed(&m.local)),
            None => (Cow::Owned(MetaState::default()), Cow::Owned(LocalAssets::default())),
        }
    }
}
